/* Helpers for the signal, thread, futex and wait areas.
 *
 * Waits on children and on other threads are bounded (a few seconds), so that a case whose
 * signal is never delivered fails quickly instead of hanging until the runner's timeout;
 * the bound is never what orders events. Children report through their exit status, never
 * through output.
 *
 * Included by the area files only (it is not an area: the runner builds `*.c`). */
#ifndef CONFORMANCE_SIG_H
#define CONFORMANCE_SIG_H

#include "harness.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a bounded wait lasts before it gives up. */
#define BOUND_MS 5000

__attribute__((unused)) static void msleep(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

__attribute__((unused)) static long now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Installs a plain handler with `flags` and an empty sa_mask; 0 or -1. */
__attribute__((unused)) static int on_signal(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

/* Installs an SA_SIGINFO handler with `flags` and sa_mask `mask` (NULL: empty). */
__attribute__((unused)) static int on_siginfo(int sig, void (*fn)(int, siginfo_t *, void *),
                                              int flags, const sigset_t *mask) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = flags | SA_SIGINFO;
    if (mask)
        sa.sa_mask = *mask;
    else
        sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

__attribute__((unused)) static int set_default(int sig) {
    return on_signal(sig, SIG_DFL, 0);
}

/* Blocks (how = SIG_BLOCK) or unblocks (SIG_UNBLOCK) one signal. */
__attribute__((unused)) static int mask_one(int how, int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return sigprocmask(how, &s, NULL);
}

/* Is sig in the calling thread's signal mask? */
__attribute__((unused)) static int is_blocked(int sig) {
    sigset_t s;
    sigprocmask(SIG_BLOCK, NULL, &s);
    return sigismember(&s, sig);
}

/* Is sig pending for the calling thread (or its process)? */
__attribute__((unused)) static int is_pending(int sig) {
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, sig);
}

/* Children made by fork_quiet and not yet reaped: killed when the case's process exits, so
 * that a case that fails half-way (a CHECK returns early) leaves no child behind. */
static pid_t live_children[64];
static int n_live_children;

static void kill_live_children(void) {
    for (int i = 0; i < n_live_children; i++) {
        siginfo_t si;
        /* Only a pid that is still our child (not reaped elsewhere, so not reusable). */
        if (live_children[i] > 0 &&
            waitid(P_PID, live_children[i], &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT) == 0)
            kill(live_children[i], SIGKILL);
    }
}

static void forget_child(pid_t pid) {
    for (int i = 0; i < n_live_children; i++)
        if (live_children[i] == pid) live_children[i] = 0;
}

/* fork() with no core dumps in the child (the deaths it is made for are expected), and
 * stdout flushed so that the child cannot repeat buffered output. Children leave with
 * _exit, never exit, so that they do not run the parent's atexit handlers. */
__attribute__((unused)) static pid_t fork_quiet(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        n_live_children = 0;
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    } else if (pid > 0 && n_live_children < 64) {
        if (n_live_children == 0) atexit(kill_live_children);
        live_children[n_live_children++] = pid;
    }
    return pid;
}

/* waitpid(pid, status, options) that gives up after `ms`: the pid, 0 on time-out, -1 on
 * error. Polls with WNOHANG, so it never blocks for good. */
__attribute__((unused)) static pid_t waitpid_within(pid_t pid, int *status, int options,
                                                    long ms) {
    for (long waited = 0;; waited++) {
        pid_t r = waitpid(pid, status, options | WNOHANG);
        if (r != 0 || waited >= ms) return r;
        msleep(1);
    }
}

/* Waits (bounded) for a child to end and returns its raw wait status; on time-out kills it
 * with SIGKILL and returns -1. */
__attribute__((unused)) static int reap(pid_t pid) {
    int status = 0;
    pid_t r = waitpid_within(pid, &status, 0, BOUND_MS);
    if (r == pid) {
        forget_child(pid);
        return status;
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        if (waitpid_within(pid, &status, 0, 1000) == pid) forget_child(pid);
    }
    return -1;
}

/* The exit code of a child that exited, or -1 (killed, timed out, no such child). */
__attribute__((unused)) static int exit_code_of(pid_t pid) {
    int status = reap(pid);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The signal that killed a child, or -1 (exited, timed out, no such child). */
__attribute__((unused)) static int term_signal_of(pid_t pid) {
    int status = reap(pid);
    return status != -1 && WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

/* Reads one byte from fd, waiting at most `ms`: the byte, or -1. */
__attribute__((unused)) static int read_byte_within(int fd, long ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        int r = poll(&p, 1, (int)ms);
        if (r < 0 && errno == EINTR) continue;
        if (r != 1) return -1;
        unsigned char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        return n == 1 ? c : -1;
    }
}

__attribute__((unused)) static int write_byte(int fd, int c) {
    unsigned char b = (unsigned char)c;
    return write(fd, &b, 1) == 1 ? 0 : -1;
}

/* Spins (yielding, then sleeping) until *flag is nonzero or `ms` pass: 1 if set. For
 * waiting on something another thread or a handler does, where no handshake exists. */
__attribute__((unused)) static int wait_flag(volatile int *flag, long ms) {
    long start = now_ns(CLOCK_MONOTONIC);
    while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST)) {
        if (now_ns(CLOCK_MONOTONIC) - start > ms * 1000000L) return 0;
        sched_yield();
    }
    return 1;
}

__attribute__((unused)) static long futex(void *uaddr, int op, long val, const void *timeout,
                                          void *uaddr2, long val3) {
    return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

__attribute__((unused)) static pid_t gettid_(void) {
    return (pid_t)syscall(SYS_gettid);
}

__attribute__((unused)) static long tgkill_(pid_t tgid, pid_t tid, int sig) {
    return syscall(SYS_tgkill, tgid, tid, sig);
}

#endif
