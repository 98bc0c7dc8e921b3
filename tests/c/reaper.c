/* reaper SECONDS PROG ARGS...: runs PROG as the only child of a child subreaper
 * (prctl(PR_SET_CHILD_SUBREAPER)), so that every process PROG starts and leaves behind is
 * re-parented here, never to the host's init, and can be found without looking at anyone
 * else's processes. The tests run `runsc-rs do` under it: the Sentry is runsc-rs itself,
 * the gofers and stubs its children.
 *
 * - PROG's exit status is passed through: its exit code, or its death signal raised again
 *   on the reaper (with core dumps off).
 * - PROG still running after SECONDS is SIGKILLed, and "reaper: PROG timed out after
 *   SECONDS s" goes to stderr: a hang becomes a failure a test can see.
 * - Processes PROG left behind have 5 s to end after it does; any still there then are
 *   named on stderr, "reaper: left behind: PID (COMM) STATE", and SIGKILLed.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRACE_MS 5000

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Names every process whose parent is the reaper (alive or zombie) on stderr and, if
 * `kill_them`, SIGKILLs it. Returns how many there were. */
static int children(int kill_them) {
    pid_t me = getpid();
    int n = 0;
    DIR *proc = opendir("/proc");
    if (!proc) return 0;
    struct dirent *e;
    while ((e = readdir(proc))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[len] = 0;
        /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
        char *close = strrchr(stat, ')');
        char *open = strchr(stat, '(');
        char state;
        long ppid;
        if (!close || !open || sscanf(close + 1, " %c %ld", &state, &ppid) != 2) continue;
        if (ppid != me || state == 'Z') continue;
        *close = 0;
        fprintf(stderr, "reaper: left behind: %ld (%s) %c\n", pid, open + 1, state);
        if (kill_them) kill((pid_t)pid, SIGKILL);
        n++;
    }
    closedir(proc);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: reaper SECONDS PROG ARGS...\n");
        return 2;
    }
    double limit_ms = atof(argv[1]) * 1e3;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("reaper: PR_SET_CHILD_SUBREAPER");
        return 2;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("reaper: fork");
        return 2;
    }
    if (child == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "reaper: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0;
    double start = now_ms();
    int timed_out = 0;
    for (;;) {
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child) break;
        if (r < 0 && errno != EINTR) {
            perror("reaper: waitpid");
            return 2;
        }
        if (!timed_out && now_ms() - start > limit_ms) {
            fprintf(stderr, "reaper: %s timed out after %s s\n", argv[2], argv[1]);
            kill(child, SIGKILL);
            timed_out = 1;
        }
        usleep(5000);
    }
    /* What PROG left behind: reap what ends within the grace period. */
    double left = now_ms();
    for (;;) {
        int st;
        pid_t r = waitpid(-1, &st, WNOHANG);
        if (r > 0) continue;
        if (r < 0 && errno == ECHILD) break;
        if (now_ms() - left > GRACE_MS) {
            children(1);
            while (waitpid(-1, &st, 0) > 0 || errno == EINTR) {}
            break;
        }
        usleep(5000);
    }
    if (WIFSIGNALED(status)) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        signal(WTERMSIG(status), SIG_DFL);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        raise(WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}
