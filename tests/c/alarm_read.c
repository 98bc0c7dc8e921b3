/* SIGALRM interrupting a read(2) of an empty pipe, without and with SA_RESTART
 * (signal(7), "Interruption of system calls and library functions by signal handlers"):
 *   - without SA_RESTART the read fails with EINTR after the handler has run once;
 *   - with SA_RESTART the read goes on after each handler; an interval timer fires three
 *     times, and the third handler stops it and writes a byte into the pipe, which the
 *     read returns.
 * The same for a read of a unix socket pair; and nanosleep, which a handler interrupts even
 * with SA_RESTART (EINTR, the time left filled in). Exits 0 only if all held. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;
static int wake_fd = -1;

static void disarm(void);

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
    if (alarms == 3 && wake_fd >= 0) {
        char c = 'x';
        disarm();
        (void)!write(wake_fd, &c, 1);
    }
}

static void arm(int interval_ms) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 50 * 1000;
    it.it_interval.tv_usec = interval_ms * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
}

static void handler(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
}

/* One blocking read of fds[0]; the writer end is fds[1]. */
static int one(const char *kind, int fds[2], int restart) {
    char c = 0;
    alarms = 0;
    handler(restart ? SA_RESTART : 0);
    wake_fd = restart ? fds[1] : -1;
    arm(restart ? 50 : 0);
    ssize_t n = read(fds[0], &c, 1);
    int err = errno;
    disarm();
    wake_fd = -1;
    int ok;
    if (restart) {
        printf("%s, SA_RESTART: read = %zd '%c' after %d alarms\n", kind, n, n == 1 ? c : '?',
               (int)alarms);
        ok = n == 1 && c == 'x' && alarms == 3;
    } else {
        printf("%s, no SA_RESTART: read = %zd %s after %d alarm\n", kind, n,
               n < 0 ? strerror(err) : "", (int)alarms);
        ok = n == -1 && err == EINTR && alarms == 1;
    }
    return ok;
}

int main(void) {
    int ok = 1;
    int p[2], s[2];
    if (pipe(p) != 0) { perror("pipe"); return 1; }
    ok &= one("pipe", p, 0);
    ok &= one("pipe", p, 1);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0) {
        ok &= one("socket", s, 0);
        ok &= one("socket", s, 1);
    } else {
        printf("socketpair: %s\n", strerror(errno));
        ok = 0;
    }
    /* nanosleep is never restarted after a handler, SA_RESTART or not. */
    handler(SA_RESTART);
    alarms = 0;
    arm(0);
    struct timespec req = {5, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    int err = errno;
    disarm();
    printf("nanosleep, SA_RESTART: %d %s after %d alarm, remaining between 4 and 5 s: %s\n", r,
           r < 0 ? strerror(err) : "", (int)alarms,
           rem.tv_sec == 4 && rem.tv_nsec > 0 ? "yes" : "no");
    ok &= r == -1 && err == EINTR && alarms == 1 && rem.tv_sec == 4;
    printf("%s\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
