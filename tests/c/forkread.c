/* forkread K ROUNDS FILE...: K child processes at once (fork, then waitpid), each ROUNDS
 * times stat'ing and reading every FILE to the end; each child prints one line per FILE,
 * "<child> <path> <size> <fnv1a of the contents>", in one write, after checking that every
 * round saw the same. Exits 0 only if every child did. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(int c, int rounds, int nfiles, char **files) {
    static char buf[65536];
    for (int f = 0; f < nfiles; f++) {
        uint64_t first = 0;
        long long size = -1;
        for (int r = 0; r < rounds; r++) {
            struct stat st;
            if (stat(files[f], &st) != 0) { perror(files[f]); return 1; }
            int fd = open(files[f], O_RDONLY);
            if (fd < 0) { perror(files[f]); return 1; }
            uint64_t h = 1469598103934665603ULL;
            long long total = 0;
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0) {
                for (ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
                total += n;
            }
            close(fd);
            if (n < 0) { perror("read"); return 1; }
            if (total != st.st_size) {
                fprintf(stderr, "%s: read %lld bytes, stat says %lld\n", files[f], total,
                        (long long)st.st_size);
                return 1;
            }
            if (r == 0) { first = h; size = total; }
            else if (h != first || total != size) { fprintf(stderr, "%s changed\n", files[f]); return 1; }
        }
        char line[4200];
        int len = snprintf(line, sizeof line, "%d %s %lld %016llx\n", c, files[f], size,
                           (unsigned long long)first);
        if (write(1, line, len) != len) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: forkread K ROUNDS FILE...\n"); return 2; }
    int k = atoi(argv[1]), rounds = atoi(argv[2]);
    for (int c = 0; c < k; c++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) _exit(child(c, rounds, argc - 3, argv + 3));
    }
    int failed = 0;
    for (int c = 0; c < k; c++) {
        int status;
        if (wait(&status) < 0) { perror("wait"); return 1; }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    return failed;
}
