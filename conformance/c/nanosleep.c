/* nanosleep(2), clock_nanosleep(2): high-resolution sleep. Sleeps are kept short. */
#include "harness.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(clockid_t id) {
    struct timespec t;
    syscall(SYS_clock_gettime, id, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long cns(clockid_t id, int flags, const struct timespec *req, struct timespec *rem) {
    return syscall(SYS_clock_nanosleep, id, flags, req, rem);
}

#define MS 1000000LL

/* nanosleep(2): "suspends the execution of the calling thread until either at least the time
 * specified in *req has elapsed" (or a signal arrives; none here). */
TEST(nanosleep_sleeps_at_least_requested) {
    struct timespec req = {0, 10 * MS};
    long long t0 = now(CLOCK_MONOTONIC);
    CHECK_EQ(syscall(SYS_nanosleep, &req, NULL), 0);
    long long dt = now(CLOCK_MONOTONIC) - t0;
    CHECK(dt >= 10 * MS);
    CHECK(dt < 2000 * MS);
}

TEST(nanosleep_zero_returns_at_once) {
    struct timespec req = {0, 0}, rem;
    long long t0 = now(CLOCK_MONOTONIC);
    CHECK_EQ(syscall(SYS_nanosleep, &req, &rem), 0);
    CHECK(now(CLOCK_MONOTONIC) - t0 < 1000 * MS);
}

/* "EINVAL The value in the tv_nsec field was not in the range [0, 999999999] or tv_sec was
 * negative." */
TEST(nanosleep_bad_timespec_is_einval) {
    struct timespec big = {0, 1000000000}, neg_ns = {0, -1}, neg_s = {-1, 0};
    CHECK_ERR(syscall(SYS_nanosleep, &big, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_nanosleep, &neg_ns, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_nanosleep, &neg_s, NULL), EINVAL);
}

TEST(nanosleep_bad_pointer_is_efault) {
    CHECK_ERR(syscall(SYS_nanosleep, (void *)1, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_nanosleep, NULL, NULL), EFAULT);
}

TEST(clock_nanosleep_relative_monotonic) {
    struct timespec req = {0, 10 * MS};
    long long t0 = now(CLOCK_MONOTONIC);
    CHECK_EQ(cns(CLOCK_MONOTONIC, 0, &req, NULL), 0);
    long long dt = now(CLOCK_MONOTONIC) - t0;
    CHECK(dt >= 10 * MS);
    CHECK(dt < 2000 * MS);
}

TEST(clock_nanosleep_relative_realtime_and_boottime) {
    struct timespec req = {0, 5 * MS};
    long long t0 = now(CLOCK_MONOTONIC);
    CHECK_EQ(cns(CLOCK_REALTIME, 0, &req, NULL), 0);
    CHECK(now(CLOCK_MONOTONIC) - t0 >= 5 * MS);
    t0 = now(CLOCK_MONOTONIC);
    CHECK_EQ(cns(CLOCK_BOOTTIME, 0, &req, NULL), 0);
    CHECK(now(CLOCK_MONOTONIC) - t0 >= 5 * MS);
}

/* TIMER_ABSTIME: "request is interpreted as an absolute time as measured by the clock". */
TEST(clock_nanosleep_abstime_reaches_deadline) {
    long long deadline = now(CLOCK_MONOTONIC) + 15 * MS;
    struct timespec req = {deadline / 1000000000LL, deadline % 1000000000LL};
    CHECK_EQ(cns(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL), 0);
    CHECK(now(CLOCK_MONOTONIC) >= deadline);
}

TEST(clock_nanosleep_abstime_realtime_reaches_deadline) {
    long long deadline = now(CLOCK_REALTIME) + 10 * MS;
    struct timespec req = {deadline / 1000000000LL, deadline % 1000000000LL};
    CHECK_EQ(cns(CLOCK_REALTIME, TIMER_ABSTIME, &req, NULL), 0);
    CHECK(now(CLOCK_REALTIME) >= deadline);
}

/* "If ... the specified time has already passed, then clock_nanosleep() returns immediately." */
TEST(clock_nanosleep_abstime_in_past_returns_at_once) {
    struct timespec past = {1, 0};
    long long t0 = now(CLOCK_MONOTONIC);
    CHECK_EQ(cns(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL), 0);
    CHECK(now(CLOCK_MONOTONIC) - t0 < 1000 * MS);
}

/* A CPU-time clock of the process is a permitted clockid; a deadline of 0 has passed. */
TEST(clock_nanosleep_process_cputime_abstime_past) {
    struct timespec zero = {0, 0};
    CHECK_EQ(cns(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &zero, NULL), 0);
}

TEST(clock_nanosleep_bad_timespec_is_einval) {
    struct timespec big = {0, 1000000000}, neg_ns = {0, -1}, neg_s = {-1, 0};
    CHECK_ERR(cns(CLOCK_MONOTONIC, 0, &big, NULL), EINVAL);
    CHECK_ERR(cns(CLOCK_MONOTONIC, 0, &neg_ns, NULL), EINVAL);
    CHECK_ERR(cns(CLOCK_MONOTONIC, 0, &neg_s, NULL), EINVAL);
    CHECK_ERR(cns(CLOCK_REALTIME, TIMER_ABSTIME, &big, NULL), EINVAL);
}

TEST(clock_nanosleep_invalid_clock_is_einval) {
    struct timespec req = {0, 1000};
    CHECK_ERR(cns(16, 0, &req, NULL), EINVAL);
    CHECK_ERR(cns(100, 0, &req, NULL), EINVAL);
}

/* clock_nanosleep(2): CLOCK_THREAD_CPUTIME_ID "is not a permitted value for clockid". glibc
 * reports EINVAL itself; the kernel has no sleep for that clock and says EOPNOTSUPP (ENOTSUP:
 * "The kernel does not support sleeping against this clockid"). */
TEST(clock_nanosleep_thread_cputime_rejected) {
    struct timespec req = {0, 1000};
    CHECK_EQ(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL), EINVAL);
    CHECK_ERR(cns(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL), EOPNOTSUPP);
}

/* Likewise CLOCK_MONOTONIC_RAW and the coarse clocks cannot drive timers: EOPNOTSUPP. */
TEST(clock_nanosleep_raw_and_coarse_clocks_unsupported) {
    struct timespec req = {0, 1000};
    CHECK_ERR(cns(CLOCK_MONOTONIC_RAW, 0, &req, NULL), EOPNOTSUPP);
    CHECK_ERR(cns(CLOCK_MONOTONIC_COARSE, 0, &req, NULL), EOPNOTSUPP);
    CHECK_ERR(cns(CLOCK_REALTIME_COARSE, 0, &req, NULL), EOPNOTSUPP);
}

/* Linux does not validate flags: only TIMER_ABSTIME is looked at, other bits are ignored and
 * the sleep is relative. */
TEST(clock_nanosleep_unknown_flags_ignored) {
    struct timespec req = {0, 2 * MS};
    long long t0 = now(CLOCK_MONOTONIC);
    CHECK_EQ(cns(CLOCK_MONOTONIC, 2, &req, NULL), 0);
    CHECK(now(CLOCK_MONOTONIC) - t0 >= 2 * MS);
    CHECK_EQ(cns(CLOCK_MONOTONIC, 0x100, &req, NULL), 0);
}

TEST(clock_nanosleep_bad_pointer_is_efault) {
    CHECK_ERR(cns(CLOCK_MONOTONIC, 0, (void *)1, NULL), EFAULT);
    CHECK_ERR(cns(CLOCK_MONOTONIC, TIMER_ABSTIME, NULL, NULL), EFAULT);
}

/* The glibc wrapper returns the error number instead of setting errno. */
TEST(clock_nanosleep_wrapper_returns_error_number) {
    struct timespec big = {0, 1000000000}, ok = {0, 1000};
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &big, NULL), EINVAL);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &ok, NULL), 0);
}

/* signal(7): a sleep interrupted by a stop and continued (no handler runs) goes on through
 * restart_syscall to its first deadline (ERESTART_RESTARTBLOCK), rather than sleeping its
 * whole length again. */
TEST(a_stopped_and_continued_sleep_keeps_its_deadline) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        long long start = now(CLOCK_MONOTONIC);
        struct timespec req = {0, 600 * MS};
        if (nanosleep(&req, NULL) != 0) _exit(2);
        long long took = (now(CLOCK_MONOTONIC) - start) / MS;
        /* 600 ms, and the 300 ms stop inside it is not added again. */
        _exit(took >= 600 && took < 850 ? 0 : 1);
    }
    close(p[1]);
    struct timespec gap = {0, 200 * MS};
    nanosleep(&gap, NULL);
    CHECK_EQ(kill(pid, SIGSTOP), 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status));
    gap.tv_nsec = 300 * MS;
    nanosleep(&gap, NULL);
    CHECK_EQ(kill(pid, SIGCONT), 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}
