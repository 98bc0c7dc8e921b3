/* getrusage(2) and times(2): the CPU time of the caller and of the children it reaped. */
#include "harness.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_seconds(const struct rusage *ru) {
    return ru->ru_utime.tv_sec + ru->ru_stime.tv_sec +
           (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

static double now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Spins for `seconds` of this process's CPU time. */
static volatile unsigned long sink;
static void burn(double seconds) {
    double until = now(CLOCK_PROCESS_CPUTIME_ID) + seconds;
    while (now(CLOCK_PROCESS_CPUTIME_ID) < until)
        for (int i = 0; i < 100000; i++) sink += i;
}

TEST(self_time_grows_with_work) {
    struct rusage before, after;
    CHECK_EQ(getrusage(RUSAGE_SELF, &before), 0);
    burn(0.05);
    CHECK_EQ(getrusage(RUSAGE_SELF, &after), 0);
    CHECK(cpu_seconds(&after) >= cpu_seconds(&before) + 0.03);
    CHECK(after.ru_utime.tv_usec >= 0 && after.ru_utime.tv_usec < 1000000);
    CHECK(after.ru_stime.tv_usec >= 0 && after.ru_stime.tv_usec < 1000000);
}

/* The process's CPU clock and getrusage count the same time. */
TEST(self_time_agrees_with_cpu_clock) {
    struct rusage ru;
    burn(0.02);
    double clock_before = now(CLOCK_PROCESS_CPUTIME_ID);
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    double clock_after = now(CLOCK_PROCESS_CPUTIME_ID);
    CHECK(cpu_seconds(&ru) <= clock_after + 0.02);
    CHECK(cpu_seconds(&ru) >= clock_before - 0.02);
}

/* One thread: RUSAGE_THREAD counts what RUSAGE_SELF does. */
TEST(thread_time_is_self_time) {
    struct rusage self, thread;
    burn(0.02);
    CHECK_EQ(getrusage(RUSAGE_THREAD, &thread), 0);
    CHECK_EQ(getrusage(RUSAGE_SELF, &self), 0);
    CHECK(cpu_seconds(&thread) > 0);
    CHECK(cpu_seconds(&self) >= cpu_seconds(&thread));
    CHECK(cpu_seconds(&self) <= cpu_seconds(&thread) + 0.02);
}

/* "ru_maxrss: the maximum resident set size used (in kilobytes)": a running program has
 * some. */
TEST(self_maxrss_is_positive) {
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    CHECK(ru.ru_maxrss > 0);
}

/* RUSAGE_CHILDREN: "all descendants of the calling process that have terminated and been
 * waited for" -- none yet, then the reaped child's time. */
TEST(children_time_counts_reaped_children) {
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_CHILDREN, &ru), 0);
    CHECK_EQ(cpu_seconds(&ru), 0);
    pid_t child = fork();
    if (child == 0) {
        burn(0.05);
        _exit(0);
    }
    CHECK(child > 0);
    /* Not yet reaped: not counted. */
    siginfo_t si;
    CHECK_EQ(waitid(P_PID, child, &si, WEXITED | WNOWAIT), 0);
    CHECK_EQ(getrusage(RUSAGE_CHILDREN, &ru), 0);
    CHECK_EQ(cpu_seconds(&ru), 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EQ(getrusage(RUSAGE_CHILDREN, &ru), 0);
    CHECK(cpu_seconds(&ru) >= 0.03);
}

TEST(bad_who_is_einval) {
    struct rusage ru;
    CHECK_ERR(syscall(SYS_getrusage, 2, &ru), EINVAL);
    CHECK_ERR(syscall(SYS_getrusage, -2, &ru), EINVAL);
    CHECK_ERR(syscall(SYS_getrusage, 99, &ru), EINVAL);
}

TEST(bad_pointer_is_efault) {
    CHECK_ERR(syscall(SYS_getrusage, RUSAGE_SELF, (void *)1), EFAULT);
    CHECK_ERR(syscall(SYS_getrusage, RUSAGE_CHILDREN, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_times, (void *)1), EFAULT);
}

/* times(2) returns "the number of clock ticks that have elapsed since an arbitrary point in
 * the past", which advances at sysconf(_SC_CLK_TCK) a second. */
TEST(times_return_value_counts_ticks) {
    long hz = sysconf(_SC_CLK_TCK);
    CHECK_EQ(hz, 100);
    long t0 = syscall(SYS_times, NULL);
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    long t1 = syscall(SYS_times, NULL);
    CHECK(t1 - t0 >= 8);
    CHECK(t1 - t0 <= 100);
}

/* tms_utime + tms_stime is the process's CPU time in ticks. */
TEST(times_fills_cpu_ticks) {
    struct tms before, after;
    memset(&before, 0xa5, sizeof before);
    CHECK(syscall(SYS_times, &before) != -1);
    burn(0.1);
    CHECK(syscall(SYS_times, &after) != -1);
    long used = (after.tms_utime + after.tms_stime) - (before.tms_utime + before.tms_stime);
    CHECK(used >= 6);
    CHECK(used <= 40);
    CHECK_EQ(after.tms_cutime, 0);
    CHECK_EQ(after.tms_cstime, 0);
}

TEST(times_counts_reaped_children) {
    pid_t child = fork();
    if (child == 0) {
        burn(0.1);
        _exit(0);
    }
    CHECK(child > 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    struct tms t;
    CHECK(times(&t) != (clock_t)-1);
    CHECK(t.tms_cutime + t.tms_cstime >= 6);
}
