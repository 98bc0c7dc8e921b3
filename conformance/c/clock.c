/* clock_gettime(2), clock_getres(2), gettimeofday(2), time(2): reading the system clocks. */
#include "harness.h"

#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long ns(const struct timespec *t) {
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* Raw syscalls: glibc's wrappers may answer from the vDSO instead of the kernel. */
static long gettime(clockid_t id, struct timespec *t) {
    return syscall(SYS_clock_gettime, id, t);
}

/* Spins for about `ms` milliseconds of CLOCK_MONOTONIC time. */
static void busy(int ms) {
    struct timespec a, b;
    volatile unsigned long sink = 0;
    gettime(CLOCK_MONOTONIC, &a);
    do {
        for (int i = 0; i < 10000; i++) sink += i;
        gettime(CLOCK_MONOTONIC, &b);
    } while (ns(&b) - ns(&a) < ms * 1000000LL);
}

TEST(realtime_is_plausible) {
    struct timespec t;
    CHECK_EQ(gettime(CLOCK_REALTIME, &t), 0);
    CHECK(t.tv_nsec >= 0 && t.tv_nsec < 1000000000);
    /* After 2020-01-01 and before 2200. */
    CHECK(t.tv_sec > 1577836800LL);
    CHECK(t.tv_sec < 7258118400LL);
}

TEST(every_clock_has_tv_nsec_in_range) {
    static const clockid_t ids[] = {
        CLOCK_REALTIME,        CLOCK_MONOTONIC,        CLOCK_PROCESS_CPUTIME_ID,
        CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW,  CLOCK_REALTIME_COARSE,
        CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,
    };
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct timespec t = {-1, -1};
        CHECK_EQ(gettime(ids[i], &t), 0);
        CHECK(t.tv_sec >= 0);
        CHECK(t.tv_nsec >= 0 && t.tv_nsec < 1000000000);
    }
}

TEST(monotonic_clocks_never_go_back) {
    static const clockid_t ids[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
                                    CLOCK_MONOTONIC_COARSE};
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct timespec prev, cur;
        CHECK_EQ(gettime(ids[i], &prev), 0);
        for (int n = 0; n < 2000; n++) {
            CHECK_EQ(gettime(ids[i], &cur), 0);
            CHECK(ns(&cur) >= ns(&prev));
            prev = cur;
        }
    }
}

TEST(monotonic_advances_with_time) {
    struct timespec a, b;
    CHECK_EQ(gettime(CLOCK_MONOTONIC, &a), 0);
    busy(5);
    CHECK_EQ(gettime(CLOCK_MONOTONIC, &b), 0);
    CHECK(ns(&b) - ns(&a) >= 5000000LL);
    CHECK(ns(&b) - ns(&a) < 5000000000LL);
}

/* CLOCK_BOOTTIME is CLOCK_MONOTONIC plus time spent suspended: never behind it. */
TEST(boottime_not_behind_monotonic) {
    struct timespec m, b;
    CHECK_EQ(gettime(CLOCK_MONOTONIC, &m), 0);
    CHECK_EQ(gettime(CLOCK_BOOTTIME, &b), 0);
    CHECK(ns(&b) >= ns(&m));
}

/* A coarse clock is its precise clock as of the last tick: read first, it is not ahead. */
TEST(coarse_clocks_not_ahead_of_precise) {
    struct timespec c, f, res;
    CHECK_EQ(gettime(CLOCK_MONOTONIC_COARSE, &c), 0);
    CHECK_EQ(gettime(CLOCK_MONOTONIC, &f), 0);
    CHECK(ns(&c) <= ns(&f));
    CHECK_EQ(syscall(SYS_clock_getres, CLOCK_MONOTONIC_COARSE, &res), 0);
    /* ... and not behind by much more than its resolution. */
    CHECK(ns(&f) - ns(&c) <= ns(&res) + 100000000LL);
    CHECK_EQ(gettime(CLOCK_REALTIME_COARSE, &c), 0);
    CHECK_EQ(gettime(CLOCK_REALTIME, &f), 0);
    CHECK(ns(&c) <= ns(&f));
    CHECK(ns(&f) - ns(&c) <= ns(&res) + 100000000LL);
}

TEST(process_cputime_grows_after_busy_work) {
    struct timespec c0, c1, w0, w1;
    CHECK_EQ(gettime(CLOCK_PROCESS_CPUTIME_ID, &c0), 0);
    CHECK_EQ(gettime(CLOCK_MONOTONIC, &w0), 0);
    busy(30);
    CHECK_EQ(gettime(CLOCK_PROCESS_CPUTIME_ID, &c1), 0);
    CHECK_EQ(gettime(CLOCK_MONOTONIC, &w1), 0);
    CHECK(ns(&c1) > ns(&c0));
    /* One thread cannot use more CPU time than the wall time that passed. */
    CHECK(ns(&c1) - ns(&c0) <= ns(&w1) - ns(&w0) + 10000000LL);
}

TEST(thread_cputime_grows_after_busy_work) {
    struct timespec c0, c1, p;
    CHECK_EQ(gettime(CLOCK_THREAD_CPUTIME_ID, &c0), 0);
    busy(30);
    CHECK_EQ(gettime(CLOCK_THREAD_CPUTIME_ID, &c1), 0);
    CHECK(ns(&c1) > ns(&c0));
    /* The process's CPU time includes this (only) thread's. */
    CHECK_EQ(gettime(CLOCK_PROCESS_CPUTIME_ID, &p), 0);
    CHECK(ns(&p) >= ns(&c1));
}

TEST(getres_is_positive_and_below_a_second) {
    static const clockid_t ids[] = {
        CLOCK_REALTIME,        CLOCK_MONOTONIC,        CLOCK_PROCESS_CPUTIME_ID,
        CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW,  CLOCK_REALTIME_COARSE,
        CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,
    };
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct timespec r = {-1, -1};
        CHECK_EQ(syscall(SYS_clock_getres, ids[i], &r), 0);
        CHECK_EQ(r.tv_sec, 0);
        CHECK(r.tv_nsec > 0 && r.tv_nsec < 1000000000);
    }
}

/* clock_getres(2): "If res is NULL, the resolution is not returned." */
TEST(getres_null_res_is_ok) {
    CHECK_EQ(syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL), 0);
    CHECK_EQ(syscall(SYS_clock_getres, CLOCK_REALTIME, NULL), 0);
}

TEST(coarse_resolution_not_finer_than_precise) {
    struct timespec fine, coarse;
    CHECK_EQ(syscall(SYS_clock_getres, CLOCK_MONOTONIC, &fine), 0);
    CHECK_EQ(syscall(SYS_clock_getres, CLOCK_MONOTONIC_COARSE, &coarse), 0);
    CHECK(ns(&coarse) >= ns(&fine));
}

TEST(invalid_clock_is_einval) {
    struct timespec t;
    CHECK_ERR(gettime(16, &t), EINVAL);
    CHECK_ERR(gettime(1000, &t), EINVAL);
    CHECK_ERR(syscall(SYS_clock_getres, 16, &t), EINVAL);
    CHECK_ERR(syscall(SYS_clock_getres, 1000, &t), EINVAL);
}

TEST(bad_pointer_is_efault) {
    CHECK_ERR(gettime(CLOCK_REALTIME, (void *)1), EFAULT);
    CHECK_ERR(gettime(CLOCK_MONOTONIC, (void *)1), EFAULT);
    CHECK_ERR(gettime(CLOCK_PROCESS_CPUTIME_ID, (void *)1), EFAULT);
    CHECK_ERR(syscall(SYS_clock_getres, CLOCK_REALTIME, (void *)1), EFAULT);
}

TEST(gettimeofday_agrees_with_realtime) {
    struct timeval tv;
    struct timespec a, b;
    CHECK_EQ(gettime(CLOCK_REALTIME, &a), 0);
    CHECK_EQ(syscall(SYS_gettimeofday, &tv, NULL), 0);
    CHECK_EQ(gettime(CLOCK_REALTIME, &b), 0);
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    long long t = (long long)tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
    CHECK(t >= ns(&a) - 1000);
    CHECK(t <= ns(&b));
}

TEST(gettimeofday_fills_timezone) {
    struct timeval tv;
    struct timezone tz;
    memset(&tz, 0x7f, sizeof tz);
    CHECK_EQ(syscall(SYS_gettimeofday, &tv, &tz), 0);
    /* The kernel's sys_tz: a plausible offset in minutes, and written. */
    CHECK(tz.tz_minuteswest >= -24 * 60 && tz.tz_minuteswest <= 24 * 60);
    CHECK(tz.tz_dsttime != 0x7f7f7f7f);
}

/* gettimeofday(2): either argument may be NULL. */
TEST(gettimeofday_null_arguments_ok) {
    struct timezone tz;
    CHECK_EQ(syscall(SYS_gettimeofday, NULL, &tz), 0);
    CHECK_EQ(syscall(SYS_gettimeofday, NULL, NULL), 0);
}

TEST(gettimeofday_bad_pointer_is_efault) {
    struct timeval tv;
    CHECK_ERR(syscall(SYS_gettimeofday, (void *)1, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_gettimeofday, &tv, (void *)1), EFAULT);
}

/* time(2): returns the seconds since the Epoch, also stored in *tloc when not NULL. */
TEST(time_with_and_without_pointer) {
    time_t stored = -1;
    struct timespec rt;
    long a = syscall(SYS_time, NULL);
    CHECK(a > 1577836800L);
    CHECK_EQ(gettime(CLOCK_REALTIME, &rt), 0);
    long b = syscall(SYS_time, &stored);
    CHECK_EQ(b, stored);
    CHECK(a <= b);
    /* time() may lag CLOCK_REALTIME by up to a tick, never lead it. */
    CHECK(a <= rt.tv_sec);
    CHECK(rt.tv_sec <= b + 1);
    CHECK(b - a <= 1);
}

TEST(time_bad_pointer_is_efault) {
    CHECK_ERR(syscall(SYS_time, (void *)1), EFAULT);
}
