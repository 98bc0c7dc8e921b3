/* epoll(7): epoll_create(2), epoll_create1(2), epoll_ctl(2), epoll_wait(2), epoll_pwait(2)
 * and epoll_pwait2(2), with pipes (and eventfds and timerfds) as the watched files. Waits that
 * must block are woken by a forked child. */
#include "scratch.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

/* Milliseconds on the monotonic clock. */
static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds `fd` to `ep` for `events`, with `fd` as the data. */
static int add(int ep, int fd, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* What epoll_wait reports at once: the count, and the first event in *first. */
static int ready(int ep, struct epoll_event *first) {
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, 0);
    if (n > 0 && first) *first = evs[0];
    return n;
}

/* Waits for `pid` and returns its exit status, or -1 if it did not exit normally. */
static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* A child that writes one byte to `fd` after `ms` milliseconds and exits. */
static pid_t write_later(int fd, int ms) {
    pid_t pid = fork();
    if (pid == 0) {
        usleep(ms * 1000);
        _exit(write(fd, "x", 1) == 1 ? 0 : 1);
    }
    return pid;
}

/* "epoll_create() ... the size argument is ignored, but must be greater than zero";
 * epoll_create1's one flag is EPOLL_CLOEXEC; the file is open O_RDWR. */
TEST(create_checks_size_and_flags) {
    CHECK_ERR(epoll_create(0), EINVAL);
    CHECK_ERR(epoll_create(-1), EINVAL);
    int a = epoll_create(1);
    CHECK(a >= 0);
    CHECK_EQ(fcntl(a, F_GETFD), 0);
    CHECK_EQ(fcntl(a, F_GETFL), O_RDWR);
    int b = epoll_create1(EPOLL_CLOEXEC);
    CHECK(b >= 0);
    CHECK_EQ(fcntl(b, F_GETFD), FD_CLOEXEC);
    CHECK_ERR(epoll_create1(O_NONBLOCK), EINVAL);
    CHECK_ERR(epoll_create1(1), EINVAL);
    close(a);
    close(b);
}

/* epoll_ctl(2) ERRORS: EBADF for bad descriptors, EINVAL when epfd is no epoll or is fd
 * itself, EPERM for files that do not support poll (regular files, directories), EEXIST,
 * ENOENT, EINVAL for an unknown op, EFAULT for a bad event. */
TEST(ctl_errors) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    struct epoll_event ev = {.events = EPOLLIN};
    CHECK_ERR(epoll_ctl(-1, EPOLL_CTL_ADD, p[0], &ev), EBADF);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF);
    CHECK_ERR(epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], &ev), EINVAL);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    scratch();
    int file = open(P("f"), O_CREAT | O_RDWR, 0600);
    CHECK(file >= 0);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, file, &ev), EPERM);
    int dir = open(P(""), O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, dir, &ev), EPERM);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), ENOENT);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL), ENOENT);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], (void *)8), EFAULT);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
    CHECK_ERR(epoll_ctl(ep, 42, p[0], &ev), EINVAL);
    /* "the event argument is ignored and can be NULL" for EPOLL_CTL_DEL. */
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL), ENOENT);
    close(file);
    close(dir);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* "EINVAL: EPOLLEXCLUSIVE was specified in event and fd refers to an epoll instance", or
 * with flags beyond EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLWAKEUP, EPOLLET; and
 * "op was EPOLL_CTL_MOD and the ... fd has previously been registered with
 * EPOLLEXCLUSIVE". */
TEST(exclusive_rules) {
    int ep = epoll_create1(0), inner = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(add(ep, p[0], EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT), EINVAL);
    CHECK_ERR(add(ep, inner, EPOLLIN | EPOLLEXCLUSIVE), EINVAL);
    CHECK_OK(add(ep, p[0], EPOLLIN | EPOLLET | EPOLLEXCLUSIVE));
    struct epoll_event ev = {.events = EPOLLIN};
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), EINVAL);
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), EINVAL);
    /* It still works as an ordinary interest. */
    CHECK_EQ(write(p[1], "a", 1), 1);
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLIN);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    close(p[0]);
    close(p[1]);
    close(inner);
    close(ep);
}

/* Level-triggered (the default): "epoll_wait ... will return as long as the file is
 * ready", with the data given at EPOLL_CTL_ADD and only the events asked for. */
TEST(level_triggered_pipe) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ull};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    CHECK_OK(add(ep, p[1], EPOLLOUT));
    struct epoll_event evs[4];
    CHECK_EQ(epoll_wait(ep, evs, 4, 0), 1);
    CHECK_EQ(evs[0].events, EPOLLOUT);
    CHECK_EQ(evs[0].data.u64, (uint64_t)p[1]);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    CHECK_EQ(epoll_wait(ep, evs, 4, 0), 0);
    CHECK_EQ(write(p[1], "ab", 2), 2);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(epoll_wait(ep, evs, 4, 0), 1);
        CHECK_EQ(evs[0].events, EPOLLIN);
        CHECK_EQ(evs[0].data.u64, 0x1122334455667788ull);
    }
    char buf[2];
    CHECK_EQ(read(p[0], buf, 2), 2);
    CHECK_EQ(epoll_wait(ep, evs, 4, 0), 0);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* EPOLLET: an event is reported once per change; "epoll_wait ... will not report again
 * while the data remains unread" until more arrives. */
TEST(edge_triggered_pipe) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN | EPOLLET));
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 0);
    CHECK_EQ(write(p[1], "abc", 3), 3);
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLIN);
    CHECK_EQ(ready(ep, NULL), 0);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(ready(ep, NULL), 0);
    CHECK_EQ(write(p[1], "d", 1), 1);
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(ready(ep, NULL), 0);
    /* The writer going away is an edge, with EPOLLHUP. */
    close(p[1]);
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLIN | EPOLLHUP);
    CHECK_EQ(ready(ep, NULL), 0);
    close(p[0]);
    close(ep);
}

/* EPOLLET on a write end: writing makes no EPOLLOUT edge, making room in a full pipe does. */
TEST(edge_triggered_write_end) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK_OK(add(ep, p[1], EPOLLOUT | EPOLLET));
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLOUT);
    CHECK_EQ(write(p[1], "a", 1), 1);
    CHECK_EQ(ready(ep, NULL), 0);
    static char big[65536];
    while (write(p[1], big, sizeof big) > 0) {
    }
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(ready(ep, NULL), 0);
    CHECK_EQ(read(p[0], big, 4096), 4096);
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLOUT);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* EPOLLONESHOT: "after an event is pulled out with epoll_wait(2) the associated file
 * descriptor is internally disabled ... The user must call epoll_ctl() with EPOLL_CTL_MOD
 * to rearm". */
TEST(oneshot_until_rearmed) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN | EPOLLONESHOT));
    CHECK_EQ(write(p[1], "a", 1), 1);
    CHECK_EQ(ready(ep, NULL), 1);
    CHECK_EQ(ready(ep, NULL), 0);
    CHECK_EQ(write(p[1], "b", 1), 1);
    CHECK_EQ(ready(ep, NULL), 0);
    /* Disabled is not deleted. */
    CHECK_ERR(add(ep, p[0], EPOLLIN), EEXIST);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 77};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.data.u64, 77);
    CHECK_EQ(ready(ep, NULL), 0);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* "EPOLLERR ... epoll_wait(2) will always wait for this event; it is not necessary to set
 * it in events" — and the same for EPOLLHUP. Pipes report no EPOLLRDHUP. */
TEST(hup_and_err_are_always_reported) {
    int ep = epoll_create1(0), p[2], q[2];
    CHECK_OK(pipe(p));
    CHECK_OK(pipe(q));
    CHECK_OK(add(ep, p[0], EPOLLRDHUP));
    CHECK_OK(add(ep, q[1], 0));
    CHECK_EQ(ready(ep, NULL), 0);
    close(p[1]);
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLHUP);
    CHECK_EQ(got.data.u64, (uint64_t)p[0]);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    close(q[0]);
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLERR);
    close(p[0]);
    close(q[1]);
    close(ep);
}

/* "up to maxevents are returned"; the rest wait for the next call, which reports them
 * before the ones just reported. */
TEST(maxevents_limits_and_rotates) {
    int ep = epoll_create1(0), p[3][2];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(pipe(p[i]));
        CHECK_OK(add(ep, p[i][0], EPOLLIN));
        CHECK_EQ(write(p[i][1], "x", 1), 1);
    }
    struct epoll_event a[2], b[3];
    CHECK_EQ(epoll_wait(ep, a, 2, 0), 2);
    CHECK_EQ(epoll_wait(ep, b, 3, 0), 3);
    CHECK(b[0].data.u64 != a[0].data.u64 && b[0].data.u64 != a[1].data.u64);
    CHECK(a[0].data.u64 != a[1].data.u64);
    for (int i = 0; i < 3; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
    close(ep);
}

/* epoll_wait(2) ERRORS: "EINVAL ... maxevents is less than or equal to zero", "epfd is not
 * an epoll file descriptor"; EBADF; EFAULT when events cannot be written. */
TEST(wait_errors) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    struct epoll_event evs[2];
    CHECK_ERR(epoll_wait(ep, evs, 0, 0), EINVAL);
    CHECK_ERR(syscall(SYS_epoll_wait, ep, evs, -1, 0), EINVAL);
    CHECK_ERR(epoll_wait(-1, evs, 2, 0), EBADF);
    CHECK_ERR(epoll_wait(p[0], evs, 2, 0), EINVAL);
    /* Nothing to report: nothing is written. */
    CHECK_EQ(syscall(SYS_epoll_wait, ep, NULL, 2, 0), 0);
    CHECK_OK(add(ep, p[1], EPOLLOUT));
    CHECK_ERR(syscall(SYS_epoll_wait, ep, NULL, 2, 0), EFAULT);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* "The timeout argument specifies the number of milliseconds that epoll_wait() will
 * block"; the call returns 0 when it expires. */
TEST(wait_times_out) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN));
    struct epoll_event ev;
    long start = now_ms();
    CHECK_EQ(epoll_wait(ep, &ev, 1, 60), 0);
    CHECK(now_ms() - start >= 50);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* A wait with timeout -1 blocks until a file becomes ready (here written by another
 * process). */
TEST(wait_blocks_until_ready) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN));
    long start = now_ms();
    pid_t pid = write_later(p[1], 50);
    CHECK(pid > 0);
    struct epoll_event ev;
    CHECK_EQ(epoll_wait(ep, &ev, 1, -1), 1);
    CHECK(now_ms() - start >= 40);
    CHECK_EQ(ev.events, EPOLLIN);
    CHECK_EQ(exit_code(pid), 0);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* "the close of a file descriptor cause[s] it to be removed from all epoll interest lists"
 * only when it is the last reference to the open file description: a dup keeps the
 * interest, which still reports the old data and can no longer be deleted by its fd. */
TEST(interest_lives_with_the_open_file_description) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_OK(add(ep, p[0], EPOLLIN));
    int copy = dup(p[0]);
    CHECK(copy >= 0);
    int old = p[0];
    close(old);
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.data.u64, (uint64_t)old);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, old, NULL), EBADF);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, copy, NULL), ENOENT);
    /* The last reference goes: the interest with it, though the pipe still holds data. */
    close(copy);
    CHECK_EQ(ready(ep, NULL), 0);
    /* A new file at the same number is a new interest. */
    int q[2];
    CHECK_OK(pipe(q));
    CHECK_EQ(q[0], old);
    CHECK_OK(add(ep, q[0], EPOLLIN));
    close(q[0]);
    close(q[1]);
    close(p[1]);
    close(ep);
}

/* The same open file under two descriptors is two interests. */
TEST(one_file_two_descriptors) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    int copy = dup(p[0]);
    CHECK_OK(add(ep, p[0], EPOLLIN));
    CHECK_OK(add(ep, copy, EPOLLIN));
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(ready(ep, NULL), 2);
    close(copy);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* An epoll file is itself pollable: readable while events are ready. It can be watched by
 * another epoll, which reports it with its own data. */
TEST(nested_epoll) {
    int outer = epoll_create1(0), inner = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(inner, p[0], EPOLLIN));
    CHECK_OK(add(outer, inner, EPOLLIN));
    struct pollfd pfd = {.fd = inner, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    CHECK_EQ(ready(outer, NULL), 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(poll(&pfd, 1, 0), 1);
    CHECK_EQ(pfd.revents, POLLIN);
    struct epoll_event got;
    CHECK_EQ(ready(outer, &got), 1);
    CHECK_EQ(got.events, EPOLLIN);
    CHECK_EQ(got.data.u64, (uint64_t)inner);
    /* The outer one's report takes nothing from the inner one. */
    CHECK_EQ(ready(inner, &got), 1);
    CHECK_EQ(got.data.u64, (uint64_t)p[0]);
    close(p[0]);
    close(p[1]);
    close(inner);
    close(outer);
}

/* A wait on an outer epoll is woken by a change two levels down. */
TEST(nested_epoll_wakes_the_outer_waiter) {
    int outer = epoll_create1(0), inner = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(inner, p[0], EPOLLIN));
    CHECK_OK(add(outer, inner, EPOLLIN | EPOLLET));
    pid_t pid = write_later(p[1], 50);
    struct epoll_event got;
    CHECK_EQ(epoll_wait(outer, &got, 1, 5000), 1);
    CHECK_EQ(got.data.u64, (uint64_t)inner);
    CHECK_EQ(exit_code(pid), 0);
    close(p[0]);
    close(p[1]);
    close(inner);
    close(outer);
}

/* "ELOOP fd refers to an epoll instance and this EPOLL_CTL_ADD operation would result in a
 * circular loop of epoll instances monitoring one another or a nesting depth of epoll
 * instances greater than 5." */
TEST(nesting_loops_and_depth) {
    int e[7];
    for (int i = 0; i < 7; i++) CHECK((e[i] = epoll_create1(0)) >= 0);
    CHECK_OK(add(e[1], e[0], EPOLLIN));
    CHECK_ERR(add(e[0], e[1], EPOLLIN), ELOOP);
    /* A chain of five: e0 in e1 in e2 in e3 in e4. */
    for (int i = 1; i < 4; i++) CHECK_OK(add(e[i + 1], e[i], EPOLLIN));
    CHECK_ERR(add(e[0], e[4], EPOLLIN), ELOOP);
    CHECK_ERR(add(e[5], e[4], EPOLLIN), ELOOP);
    /* The levels above the epoll added to count too: e5 is watched by e6. */
    CHECK_OK(add(e[6], e[5], EPOLLIN));
    CHECK_OK(add(e[5], e[1], EPOLLIN)); /* e0 e1 e5 e6: four levels */
    CHECK_OK(add(e[5], e[2], EPOLLIN)); /* e0 e1 e2 e5 e6: five */
    CHECK_ERR(add(e[5], e[3], EPOLLIN), ELOOP); /* six */
    for (int i = 0; i < 7; i++) close(e[i]);
}

/* eventfds and timerfds are pollable like pipes. */
TEST(eventfd_and_timerfd) {
    int ep = epoll_create1(0);
    int efd = eventfd(0, EFD_NONBLOCK);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    CHECK(efd >= 0 && tfd >= 0);
    CHECK_OK(add(ep, efd, EPOLLIN | EPOLLOUT));
    CHECK_OK(add(ep, tfd, EPOLLIN));
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLOUT);
    uint64_t one = 1;
    CHECK_EQ(write(efd, &one, 8), 8);
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.events, EPOLLIN | EPOLLOUT);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL));
    struct itimerspec its = {.it_value = {.tv_nsec = 30 * 1000000}};
    CHECK_OK(timerfd_settime(tfd, 0, &its, NULL));
    CHECK_EQ(epoll_wait(ep, &got, 1, 5000), 1);
    CHECK_EQ(got.data.u64, (uint64_t)tfd);
    CHECK_EQ(got.events, EPOLLIN);
    close(efd);
    close(tfd);
    close(ep);
}

/* epoll_pwait(2): the sigmask must have sigset_t's size when given; with NULL it is
 * epoll_wait. */
TEST(pwait_sigmask_argument) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[1], EPOLLOUT));
    struct epoll_event ev;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    CHECK_EQ(syscall(SYS_epoll_pwait, ep, &ev, 1, 0, NULL, 1), 1);
    CHECK_EQ(syscall(SYS_epoll_pwait, ep, &ev, 1, 0, &mask, 8), 1);
    CHECK_ERR(syscall(SYS_epoll_pwait, ep, &ev, 1, 0, &mask, 4), EINVAL);
    CHECK_ERR(syscall(SYS_epoll_pwait, ep, &ev, 1, 0, (void *)8, 8), EFAULT);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* epoll_pwait2(2): a timespec timeout; NULL waits for ever, {0, 0} not at all, an invalid
 * one is EINVAL. */
TEST(pwait2_timespec_timeout) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN));
    struct epoll_event ev;
    struct timespec zero = {0, 0}, bad = {0, 1000000000}, short_wait = {0, 50000000};
    CHECK_EQ(syscall(SYS_epoll_pwait2, ep, &ev, 1, &zero, NULL, 8), 0);
    CHECK_ERR(syscall(SYS_epoll_pwait2, ep, &ev, 1, &bad, NULL, 8), EINVAL);
    long start = now_ms();
    CHECK_EQ(syscall(SYS_epoll_pwait2, ep, &ev, 1, &short_wait, NULL, 8), 0);
    CHECK(now_ms() - start >= 40);
    pid_t pid = write_later(p[1], 30);
    CHECK_EQ(syscall(SYS_epoll_pwait2, ep, &ev, 1, NULL, NULL, 8), 1);
    CHECK_EQ(exit_code(pid), 0);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* The interest list belongs to the open file description, which fork shares: what a child
 * adds, the parent sees. */
TEST(fork_shares_the_interest_list) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) _exit(add(ep, p[1], EPOLLOUT) == 0 ? 0 : 1);
    CHECK_EQ(exit_code(pid), 0);
    struct epoll_event got;
    CHECK_EQ(ready(ep, &got), 1);
    CHECK_EQ(got.data.u64, (uint64_t)p[1]);
    close(p[0]);
    close(p[1]);
    close(ep);
}

/* An epoll file: "anon_inode:[eventpoll]" in /proc/self/fd, one "tfd:" line per interest in
 * fdinfo, a mode with no file type, and no read(2). */
TEST(proc_fstat_and_read) {
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN | EPOLLET));
    char path[64], link[64] = {0};
    snprintf(path, sizeof path, "/proc/self/fd/%d", ep);
    CHECK(readlink(path, link, sizeof link - 1) > 0);
    CHECK(!strcmp(link, "anon_inode:[eventpoll]"));
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
    int info = open(path, O_RDONLY);
    CHECK(info >= 0);
    char text[1024] = {0};
    CHECK(read(info, text, sizeof text - 1) > 0);
    char want[64];
    snprintf(want, sizeof want, "tfd: %8d events: %8x data: %16llx", p[0],
             EPOLLIN | EPOLLET | EPOLLERR | EPOLLHUP, (unsigned long long)p[0]);
    CHECK(strstr(text, want) != NULL);
    CHECK(strstr(text, "flags:\t02\n") != NULL);
    struct stat st;
    CHECK_OK(fstat(ep, &st));
    CHECK_EQ(st.st_mode, 0600);
    char c;
    CHECK_ERR(read(ep, &c, 1), EINVAL);
    close(info);
    close(p[0]);
    close(p[1]);
    close(ep);
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

/* "epoll_wait ... will never be restarted after being interrupted by a signal handler,
 * regardless of the use of SA_RESTART"; epoll_pwait's mask lets the signal in for the
 * wait only. */
TEST(pwait_mask_lets_a_signal_interrupt_the_wait) {
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, old, during;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    sigemptyset(&during);
    handled = 0;
    int ep = epoll_create1(0), p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        _exit(kill(getppid(), SIGUSR1) == 0 ? 0 : 1);
    }
    struct epoll_event ev;
    CHECK_ERR(epoll_pwait(ep, &ev, 1, 5000, &during), EINTR);
    CHECK_EQ(handled, 1);
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1));
    CHECK_EQ(exit_code(pid), 0);
    /* A ready event wins over a signal the mask lets in, which stays pending. */
    raise(SIGUSR1);
    CHECK_OK(add(ep, p[1], EPOLLOUT));
    CHECK_EQ(epoll_pwait(ep, &ev, 1, 5000, &during), 1);
    CHECK_EQ(handled, 1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK_EQ(handled, 2);
    signal(SIGUSR1, SIG_DFL);
    close(p[0]);
    close(p[1]);
    close(ep);
}
