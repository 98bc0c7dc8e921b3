/* select(2), pselect6 and ppoll(2) with pipes, eventfds and timerfds; poll(2)'s POLLNVAL.
 * Waits that must block are ended by a forked child. */
#include "scratch.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* select with a zero timeout of `rfd` for reading and `wfd` for writing (-1: none); the
 * result, with what stays set in *r and *w. */
static int probe(int rfd, int wfd, int *r, int *w) {
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    if (rfd >= 0) FD_SET(rfd, &rs);
    if (wfd >= 0) FD_SET(wfd, &ws);
    struct timeval tv = {0, 0};
    int n = select((rfd > wfd ? rfd : wfd) + 1, &rs, &ws, NULL, &tv);
    *r = rfd >= 0 && FD_ISSET(rfd, &rs);
    *w = wfd >= 0 && FD_ISSET(wfd, &ws);
    return n;
}

/* "select() ... returns the number of file descriptors contained in the three returned
 * descriptor sets", each set showing which are ready: a pipe's read end once it holds
 * data, its write end while there is room. */
TEST(pipe_readiness) {
    int p[2], r, w;
    CHECK_OK(pipe(p));
    CHECK_EQ(probe(p[0], p[1], &r, &w), 1);
    CHECK(!r && w);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(probe(p[0], p[1], &r, &w), 2);
    CHECK(r && w);
    /* One fd in two sets counts twice. */
    int q[2];
    CHECK_OK(pipe(q));
    fd_set rs, ws, es;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    FD_SET(p[0], &rs);
    FD_SET(p[0], &ws);
    FD_SET(p[1], &es);
    struct timeval tv = {0, 0};
    /* A read end is never writable, a pipe never exceptional. */
    CHECK_EQ(select(p[1] + 1, &rs, &ws, &es, &tv), 1);
    CHECK(FD_ISSET(p[0], &rs) && !FD_ISSET(p[0], &ws) && !FD_ISSET(p[1], &es));
    close(q[0]);
    close(q[1]);
    close(p[0]);
    close(p[1]);
}

/* A hung-up pipe is readable (end of file) and a write end without readers writable (the
 * write fails at once): POLLHUP and POLLERR are in select's sets. */
TEST(hangups_count_as_ready) {
    int p[2], q[2], r, w;
    CHECK_OK(pipe(p));
    CHECK_OK(pipe(q));
    close(p[1]);
    close(q[0]);
    CHECK_EQ(probe(p[0], q[1], &r, &w), 2);
    CHECK(r && w);
    close(p[0]);
    close(q[1]);
}

/* "On Linux, select() modifies timeout to reflect the amount of time not slept"; a timeout
 * of zero returns at once. */
TEST(timeout_is_written_back) {
    int p[2];
    CHECK_OK(pipe(p));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 60000};
    long start = now_ms();
    CHECK_EQ(select(p[0] + 1, &rs, NULL, NULL, &tv), 0);
    CHECK(now_ms() - start >= 50);
    CHECK(tv.tv_sec == 0 && tv.tv_usec == 0);
    CHECK(!FD_ISSET(p[0], &rs));
    /* Ready at once: most of the time is left. */
    FD_SET(p[1], &rs);
    tv.tv_sec = 5;
    tv.tv_usec = 0;
    CHECK_EQ(select(p[1] + 1, NULL, &rs, NULL, &tv), 1);
    CHECK(tv.tv_sec >= 4 && tv.tv_sec <= 5);
    /* Microseconds beyond a second carry over. */
    tv.tv_sec = 0;
    tv.tv_usec = 1500000;
    CHECK_EQ(select(p[1] + 1, NULL, &rs, NULL, &tv), 1);
    CHECK(tv.tv_sec == 1);
    close(p[0]);
    close(p[1]);
}

/* select(2) ERRORS: "EBADF An invalid file descriptor was given in one of the sets",
 * "EINVAL nfds is negative or ... the value contained within timeout is invalid". */
TEST(errors) {
    int p[2];
    CHECK_OK(pipe(p));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 0};
    CHECK_ERR(select(-1, &rs, NULL, NULL, &tv), EINVAL);
    tv.tv_usec = -1;
    CHECK_ERR(select(p[0] + 1, &rs, NULL, NULL, &tv), EINVAL);
    tv.tv_usec = 0;
    tv.tv_sec = -1;
    CHECK_ERR(select(p[0] + 1, &rs, NULL, NULL, &tv), EINVAL);
    tv.tv_sec = 0;
    int closed = dup(p[0]);
    close(closed);
    FD_SET(closed, &rs);
    CHECK_ERR(select(closed + 1, &rs, NULL, NULL, &tv), EBADF);
    /* Only descriptors below nfds are looked at. */
    FD_ZERO(&rs);
    FD_SET(p[1], &rs);
    FD_SET(closed, &rs);
    CHECK_EQ(select(p[1] + 1, NULL, &rs, NULL, &tv), 1);
    CHECK_ERR(select(p[0] + 1, (fd_set *)8, NULL, NULL, &tv), EFAULT);
    close(p[0]);
    close(p[1]);
}

/* With no sets, select sleeps out its timeout. */
TEST(no_sets_sleeps) {
    struct timeval tv = {0, 50000};
    long start = now_ms();
    CHECK_EQ(select(0, NULL, NULL, NULL, &tv), 0);
    CHECK(now_ms() - start >= 40);
}

/* A NULL timeout waits until a descriptor is ready (written by another process). */
TEST(blocks_until_ready) {
    int p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        _exit(write(p[1], "x", 1) == 1 ? 0 : 1);
    }
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    long start = now_ms();
    CHECK_EQ(select(p[0] + 1, &rs, NULL, NULL, NULL), 1);
    CHECK(FD_ISSET(p[0], &rs));
    CHECK(now_ms() - start >= 40);
    CHECK_EQ(exit_code(pid), 0);
    close(p[0]);
    close(p[1]);
}

/* eventfds and timerfds work with select: readable when their count is not zero. */
TEST(eventfd_and_timerfd) {
    int efd = eventfd(0, 0), tfd = timerfd_create(CLOCK_MONOTONIC, 0), r, w;
    CHECK_EQ(probe(efd, efd, &r, &w), 1);
    CHECK(!r && w);
    uint64_t one = 1;
    CHECK_EQ(write(efd, &one, 8), 8);
    CHECK_EQ(probe(efd, -1, &r, &w), 1);
    CHECK(r);
    struct itimerspec its = {.it_value = {0, 30000000}};
    CHECK_OK(timerfd_settime(tfd, 0, &its, NULL));
    CHECK_EQ(probe(tfd, -1, &r, &w), 0);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(tfd, &rs);
    struct timeval tv = {5, 0};
    CHECK_EQ(select(tfd + 1, &rs, NULL, NULL, &tv), 1);
    CHECK(FD_ISSET(tfd, &rs));
    close(efd);
    close(tfd);
}

/* The raw pselect6: a timespec timeout, written back like select's, and a sixth argument
 * pointing at { const sigset_t *ss; size_t ss_len }, whose ss_len must be sigset_t's. */
TEST(pselect6_raw) {
    int p[2];
    CHECK_OK(pipe(p));
    fd_set rs;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    struct {
        sigset_t *ss;
        size_t len;
    } arg = {&mask, 8};
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timespec ts = {0, 50000000};
    long start = now_ms();
    CHECK_EQ(syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &arg), 0);
    CHECK(now_ms() - start >= 40);
    CHECK(ts.tv_sec == 0 && ts.tv_nsec == 0);
    arg.len = 4;
    FD_SET(p[0], &rs);
    CHECK_ERR(syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &arg), EINVAL);
    arg.ss = NULL;
    CHECK_EQ(syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &arg), 0);
    CHECK_ERR(syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, (void *)8), EFAULT);
    ts.tv_nsec = 1000000000;
    CHECK_ERR(syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, NULL), EINVAL);
    close(p[0]);
    close(p[1]);
}

/* The raw ppoll: the timeout is written back too; a sigmask must have sigset_t's size. */
TEST(ppoll_raw) {
    int p[2];
    CHECK_OK(pipe(p));
    struct pollfd pfd = {.fd = p[1], .events = POLLOUT};
    struct timespec ts = {5, 0};
    sigset_t mask;
    sigemptyset(&mask);
    CHECK_EQ(syscall(SYS_ppoll, &pfd, 1, &ts, &mask, 8), 1);
    CHECK(ts.tv_sec >= 4 && ts.tv_sec <= 5);
    CHECK_ERR(syscall(SYS_ppoll, &pfd, 1, &ts, &mask, 16), EINVAL);
    pfd.fd = p[0];
    pfd.events = POLLIN;
    ts.tv_sec = 0;
    ts.tv_nsec = 30000000;
    CHECK_EQ(syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 0), 0);
    CHECK(ts.tv_sec == 0 && ts.tv_nsec == 0);
    close(p[0]);
    close(p[1]);
}

/* poll(2): "POLLNVAL Invalid request: fd not open", counted as ready; a negative fd is
 * skipped. */
TEST(poll_invalid_and_negative_fds) {
    int closed = dup(0);
    close(closed);
    struct pollfd fds[2] = {{.fd = closed, .events = POLLIN}, {.fd = -5, .events = POLLIN}};
    CHECK_EQ(poll(fds, 2, 1000), 1);
    CHECK_EQ(fds[0].revents, POLLNVAL);
    CHECK_EQ(fds[1].revents, 0);
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

/* Installs on_usr1 for SIGUSR1 with `flags`, blocks SIGUSR1, and saves the old mask. */
static void catch_usr1(int flags, sigset_t *old) {
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = flags};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, old);
    handled = 0;
}

static int usr1_blocked(void) {
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    return sigismember(&now, SIGUSR1);
}

/* signal(7): select and poll "are never restarted after being interrupted by a signal
 * handler, regardless of the use of SA_RESTART; they always fail with the error EINTR". */
TEST(a_handler_interrupts_select_and_poll_despite_sa_restart) {
    sigset_t old;
    catch_usr1(SA_RESTART, &old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    int p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        _exit(kill(getppid(), SIGUSR1) == 0 ? 0 : 1);
    }
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    CHECK_ERR(select(p[0] + 1, &rs, NULL, NULL, NULL), EINTR);
    CHECK_EQ(handled, 1);
    CHECK_EQ(exit_code(pid), 0);
    pid = fork();
    if (pid == 0) {
        usleep(50000);
        _exit(kill(getppid(), SIGUSR1) == 0 ? 0 : 1);
    }
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    CHECK_ERR(poll(&pfd, 1, -1), EINTR);
    CHECK_EQ(handled, 2);
    CHECK_EQ(exit_code(pid), 0);
    signal(SIGUSR1, SIG_DFL);
    close(p[0]);
    close(p[1]);
}

/* pselect6's mask replaces the thread's for the wait: a pending signal it unblocks
 * interrupts at once and its handler runs; the old mask is back afterwards. */
TEST(pselect6_mask_unblocks_a_pending_signal) {
    sigset_t old, during;
    catch_usr1(0, &old);
    raise(SIGUSR1);
    CHECK_EQ(handled, 0);
    int p[2];
    CHECK_OK(pipe(p));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    sigemptyset(&during);
    struct {
        sigset_t *ss;
        size_t len;
    } arg = {&during, 8};
    struct timespec ts = {5, 0};
    CHECK_ERR(syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &arg), EINTR);
    CHECK_EQ(handled, 1);
    CHECK(usr1_blocked());
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR1, SIG_DFL);
    close(p[0]);
    close(p[1]);
}

/* When ppoll returns with something ready, the old mask is back at once: a signal its mask
 * unblocked stays pending until the thread unblocks it. */
TEST(ppoll_ready_keeps_the_signal_pending) {
    sigset_t old, during;
    catch_usr1(0, &old);
    raise(SIGUSR1);
    int p[2];
    CHECK_OK(pipe(p));
    struct pollfd pfd = {.fd = p[1], .events = POLLOUT};
    sigemptyset(&during);
    struct timespec ts = {5, 0};
    CHECK_EQ(syscall(SYS_ppoll, &pfd, 1, &ts, &during, 8), 1);
    CHECK_EQ(handled, 0);
    CHECK(usr1_blocked());
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK_EQ(handled, 1);
    signal(SIGUSR1, SIG_DFL);
    close(p[0]);
    close(p[1]);
}
