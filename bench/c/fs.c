/* File system benchmarks, each printing "<name> <value> <unit>":
 *   fs stat DIR N         stat DIR/f0 .. DIR/f<N-1> once each        -> ns per stat
 *   fs read FILE          read FILE to the end in 1 MiB reads         -> MB/s
 *   fs create DIR N       create, write 100 bytes, close N files, then unlink them
 *                                                                     -> ns per file
 * The files for stat and read are made by the harness beforehand. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fs stat DIR N | read FILE | create DIR N\n");
        return 2;
    }
    char path[4096];
    if (!strcmp(argv[1], "stat") && argc == 4) {
        long n = atol(argv[3]);
        struct stat st;
        double a = now_ns();
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/f%ld", argv[2], i);
            if (stat(path, &st) != 0) { perror(path); return 1; }
        }
        printf("stat %.0f ns/stat\n", (now_ns() - a) / n);
    } else if (!strcmp(argv[1], "read")) {
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) { perror(argv[2]); return 1; }
        static char buf[1 << 20];
        long long total = 0;
        ssize_t r;
        double a = now_ns();
        while ((r = read(fd, buf, sizeof buf)) > 0) total += r;
        double secs = (now_ns() - a) / 1e9;
        if (r < 0) { perror("read"); return 1; }
        printf("read %.0f MB/s\n", total / 1e6 / secs);
    } else if (!strcmp(argv[1], "create") && argc == 4) {
        long n = atol(argv[3]);
        char data[100];
        memset(data, 'x', sizeof data);
        double a = now_ns();
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/c%ld", argv[2], i);
            int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
            if (fd < 0 || write(fd, data, sizeof data) != sizeof data) { perror(path); return 1; }
            close(fd);
        }
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/c%ld", argv[2], i);
            if (unlink(path) != 0) { perror(path); return 1; }
        }
        printf("create %.0f ns/file\n", (now_ns() - a) / n);
    } else {
        fprintf(stderr, "fs: bad arguments\n");
        return 2;
    }
    return 0;
}
