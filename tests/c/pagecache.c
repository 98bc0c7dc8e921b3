/* Page-cache sharing: maps a 64 MiB file and reads every page, then a child maps the same
 * file on its own and reads every page too. Prints how much the sandbox's memory grew with
 * each ("used" is MemTotal - MemFree of /proc/meminfo), in KiB:
 *   first=N second=M
 * With a shared page cache the second mapping costs (almost) nothing. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (64L << 20)

static long used_kb(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long total = -1, free_kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "MemTotal: %ld kB", &total);
        sscanf(line, "MemFree: %ld kB", &free_kb);
    }
    fclose(f);
    return total - free_kb;
}

static unsigned long touch(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror("open"); exit(2); }
    volatile unsigned char *p = mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    unsigned long sum = 0;
    for (long i = 0; i < SIZE; i += 4096) sum += p[i];
    return sum;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/pagecache.data";
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) { perror("create"); return 2; }
    static char buf[1 << 20];
    for (long done = 0; done < SIZE; done += sizeof buf) {
        memset(buf, (int)(done >> 20) + 1, sizeof buf);
        if (write(fd, buf, sizeof buf) != sizeof buf) { perror("write"); return 2; }
    }
    close(fd);
    long before = used_kb();
    unsigned long a = touch(path);
    long after_first = used_kb();
    int pipefd[2];
    if (pipe(pipefd)) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        unsigned long b = touch(path);
        long after_second = used_kb();
        if (b != a) _exit(3);
        if (write(pipefd[1], &after_second, sizeof after_second) != sizeof after_second) _exit(4);
        _exit(0);
    }
    long after_second = 0;
    if (read(pipefd[0], &after_second, sizeof after_second) != sizeof after_second) return 2;
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 5;
    printf("first=%ld second=%ld\n", after_first - before, after_second - after_first);
    return 0;
}
