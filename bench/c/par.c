/* K processes doing file work at once, each printing nothing; the parent prints
 * "<name> <value> <unit>" for all of them together:
 *   par stat K DIR N     child c stats DIR/f<c*N> .. DIR/f<c*N+N-1>   -> ns per stat
 *   par read K FILE LEN  child c preads bytes [c*LEN, (c+1)*LEN) of FILE
 *                        in 1 MiB reads                              -> MB/s, all together
 *   par syncstat K DIR N SYNCDIR
 *                        child 0 writes 4 KiB to SYNCDIR/sync and fsyncs it, over and over,
 *                        until SYNCDIR/stop exists; children 1..K-1 stat N files each as
 *                        in `stat`                          -> ns per stat, stat children
 * The time is wall-clock from before the first fork to after the last (stat) child is
 * reaped, so it includes the forks (small against the work: see the harness). Children
 * use fork() and waitpid() only: no pipes or signals, which the sandbox may not have yet;
 * the fsync child is stopped by a file the parent creates. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int do_stat(const char *dir, long first, long n) {
    char path[4096];
    struct stat st;
    for (long i = first; i < first + n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, i);
        if (stat(path, &st) != 0) { perror(path); return 1; }
        if (st.st_size != 1) { fprintf(stderr, "%s: size %ld\n", path, (long)st.st_size); return 1; }
    }
    return 0;
}

static int do_read(const char *file, long long first, long long len) {
    static char buf[1 << 20];
    int fd = open(file, O_RDONLY);
    if (fd < 0) { perror(file); return 1; }
    long long done = 0;
    while (done < len) {
        long long want = len - done < (long long)sizeof buf ? len - done : (long long)sizeof buf;
        ssize_t r = pread(fd, buf, want, first + done);
        if (r <= 0) { perror("pread"); return 1; }
        if (buf[0] != 0x5a || buf[r - 1] != 0x5a) { fprintf(stderr, "bad data\n"); return 1; }
        done += r;
    }
    close(fd);
    return 0;
}

/* Writes and fsyncs DIR/sync until DIR/stop exists. */
static int do_sync(const char *dir) {
    char path[4096], stop[4096], block[4096];
    snprintf(path, sizeof path, "%s/sync", dir);
    snprintf(stop, sizeof stop, "%s/stop", dir);
    memset(block, 'y', sizeof block);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) { perror(path); return 1; }
    struct stat st;
    while (stat(stop, &st) != 0) {
        if (pwrite(fd, block, sizeof block, 0) != sizeof block) { perror("pwrite"); return 1; }
        if (fsync(fd) != 0) { perror("fsync"); return 1; }
    }
    close(fd);
    return 0;
}

static int reap(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) < 0) { perror("waitpid"); return 1; }
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv) {
    int sync_mode = argc == 6 && !strcmp(argv[1], "syncstat");
    int stat_mode = argc == 5 && !strcmp(argv[1], "stat");
    int read_mode = argc == 5 && !strcmp(argv[1], "read");
    if (!sync_mode && !stat_mode && !read_mode) {
        fprintf(stderr, "usage: par stat K DIR N | read K FILE LEN | syncstat K DIR N SYNCDIR\n");
        return 2;
    }
    int k = atoi(argv[2]);
    long long n = atoll(argv[4]);
    if (k < 1 + sync_mode || k > 64 || n < 1) { fprintf(stderr, "par: bad K or N\n"); return 2; }
    char stop[4096] = "";
    if (sync_mode) {
        snprintf(stop, sizeof stop, "%s/stop", argv[5]);
        unlink(stop);
    }
    pid_t pids[64];
    double a = now_ns();
    for (int c = 0; c < k; c++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            if (sync_mode)
                _exit(c == 0 ? do_sync(argv[5]) : do_stat(argv[3], (c - 1) * n, n));
            _exit(stat_mode ? do_stat(argv[3], c * n, n) : do_read(argv[3], c * n, n));
        }
        pids[c] = pid;
    }
    int failed = 0;
    /* The workers first (in sync mode, all but the fsync child), then the time. */
    for (int c = sync_mode; c < k; c++) failed |= reap(pids[c]);
    double elapsed = now_ns() - a;
    if (sync_mode) {
        int fd = open(stop, O_CREAT | O_WRONLY, 0644);
        if (fd < 0) { perror(stop); return 1; }
        close(fd);
        failed |= reap(pids[0]);
        unlink(stop);
    }
    if (failed) { fprintf(stderr, "par: a child failed\n"); return 1; }
    if (read_mode)
        printf("read %.0f MB/s\n", k * n / 1e6 / (elapsed / 1e9));
    else
        printf("stat %.0f ns/stat\n", elapsed / ((k - sync_mode) * n));
    return 0;
}
