/* sched_getaffinity(2), sched_setaffinity(2), getcpu(2), sched_yield(2), the scheduling
 * policy calls (sched_setscheduler(2) and friends) and the nice value (getpriority(2)).
 * The raw sched_getaffinity returns the number of bytes it copied into the mask ("the raw
 * system call returns the size (in bytes) of the cpumask_t data type"), unlike the glibc
 * wrapper which returns 0. */
#include "harness.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long getaff(pid_t pid, size_t len, void *mask) {
    return syscall(SYS_sched_getaffinity, pid, len, mask);
}

static int count_bits(const unsigned char *m, long n) {
    int c = 0;
    for (long i = 0; i < n; i++) c += __builtin_popcount(m[i]);
    return c;
}

TEST(getaffinity_returns_byte_count) {
    unsigned char mask[128];
    long n = getaff(0, sizeof mask, mask);
    CHECK(n > 0);
    CHECK_EQ(n % 8, 0);
    CHECK(n <= (long)sizeof mask);
}

TEST(getaffinity_has_at_least_one_cpu) {
    unsigned char mask[128];
    memset(mask, 0, sizeof mask);
    long n = getaff(0, sizeof mask, mask);
    CHECK(n > 0);
    int cpus = count_bits(mask, n);
    CHECK(cpus > 0);
    CHECK(cpus <= n * 8);
}

/* Only the returned number of bytes is written. */
TEST(getaffinity_writes_only_returned_bytes) {
    unsigned char mask[128];
    memset(mask, 0xff, sizeof mask);
    long n = getaff(0, sizeof mask, mask);
    CHECK(n > 0 && n < (long)sizeof mask);
    for (long i = n; i < (long)sizeof mask; i++) CHECK_EQ(mask[i], 0xff);
}

/* "If pid is zero, then the mask of the calling thread is returned." */
TEST(getaffinity_own_pid_matches_zero) {
    unsigned char a[128], b[128];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    long na = getaff(0, sizeof a, a);
    long nb = getaff(getpid(), sizeof b, b);
    CHECK(na > 0);
    CHECK_EQ(nb, na);
    CHECK(memcmp(a, b, na) == 0);
}

TEST(glibc_wrapper_agrees) {
    cpu_set_t set;
    unsigned char raw[128];
    CPU_ZERO(&set);
    memset(raw, 0, sizeof raw);
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    long n = getaff(0, sizeof raw, raw);
    CHECK(n > 0);
    CHECK_EQ(CPU_COUNT(&set), count_bits(raw, n));
    CHECK(memcmp(&set, raw, n) == 0);
}

/* "EINVAL ... cpusetsize is smaller than the size of the affinity mask used by the kernel",
 * and the size must be a multiple of sizeof(long). */
TEST(getaffinity_bad_size_is_einval) {
    unsigned char mask[128];
    CHECK_ERR(getaff(0, 12, mask), EINVAL);
    CHECK_ERR(getaff(0, 4, mask), EINVAL);
    CHECK_ERR(getaff(0, 1, mask), EINVAL);
    CHECK_ERR(getaff(0, 0, mask), EINVAL);
    CHECK_ERR(getaff(0, 127, mask), EINVAL);
}

TEST(getaffinity_unknown_pid_is_esrch) {
    unsigned char mask[128];
    CHECK_ERR(getaff(0x7ffffff0, sizeof mask, mask), ESRCH);
}

TEST(getaffinity_bad_pointer_is_efault) {
    CHECK_ERR(getaff(0, 128, (void *)1), EFAULT);
    CHECK_ERR(getaff(0, 128, NULL), EFAULT);
}

/* getcpu(2): the CPU the thread is running on, which must be one it may run on. */
TEST(getcpu_within_affinity_mask) {
    unsigned char mask[128];
    memset(mask, 0, sizeof mask);
    long n = getaff(0, sizeof mask, mask);
    CHECK(n > 0);
    unsigned cpu = 0xffffffff, node = 0xffffffff;
    CHECK_EQ(syscall(SYS_getcpu, &cpu, &node, NULL), 0);
    CHECK(cpu < (unsigned)n * 8);
    CHECK(mask[cpu / 8] & (1 << (cpu % 8)));
    CHECK(node != 0xffffffff);
}

/* Either pointer may be NULL. */
TEST(getcpu_null_arguments_ok) {
    unsigned cpu = 0xffffffff, node = 0xffffffff;
    CHECK_EQ(syscall(SYS_getcpu, &cpu, NULL, NULL), 0);
    CHECK(cpu != 0xffffffff);
    CHECK_EQ(syscall(SYS_getcpu, NULL, &node, NULL), 0);
    CHECK(node != 0xffffffff);
    CHECK_EQ(syscall(SYS_getcpu, NULL, NULL, NULL), 0);
}

TEST(getcpu_bad_pointer_is_efault) {
    unsigned node;
    CHECK_ERR(syscall(SYS_getcpu, (void *)1, &node, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_getcpu, &node, (void *)1, NULL), EFAULT);
}

/* sched_getcpu(3) (which glibc may answer from the rseq area) is also within the mask. */
TEST(sched_getcpu_within_affinity_mask) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    int cpu = sched_getcpu();
    CHECK(cpu >= 0);
    CHECK(cpu < CPU_SETSIZE);
    CHECK(CPU_ISSET(cpu, &set));
}

/* sched_setaffinity(2). */
static long setaff(pid_t pid, size_t len, const void *mask) {
    return syscall(SYS_sched_setaffinity, pid, len, mask);
}

/* The lowest CPU set in a mask of n bytes, or -1. */
static int first_cpu(const unsigned char *m, long n) {
    for (int c = 0; c < n * 8; c++)
        if (m[c / 8] & (1 << (c % 8))) return c;
    return -1;
}

/* A mask of one allowed CPU reads back as that CPU alone, and the thread then runs there. */
TEST(setaffinity_round_trip) {
    unsigned char orig[128], one[128], got[128];
    memset(orig, 0, sizeof orig);
    long n = getaff(0, sizeof orig, orig);
    CHECK(n > 0);
    int cpu = first_cpu(orig, n);
    CHECK(cpu >= 0);
    memset(one, 0, sizeof one);
    one[cpu / 8] = 1 << (cpu % 8);
    CHECK_EQ(setaff(0, sizeof one, one), 0);
    memset(got, 0xff, sizeof got);
    CHECK_EQ(getaff(0, sizeof got, got), n);
    CHECK(memcmp(got, one, n) == 0);
    unsigned now_on = 0xffffffff;
    CHECK_EQ(syscall(SYS_getcpu, &now_on, NULL, NULL), 0);
    CHECK_EQ(now_on, cpu);
    CHECK_EQ(sched_getcpu(), cpu);
    /* By pid too. */
    memset(got, 0, sizeof got);
    CHECK_EQ(getaff(getpid(), sizeof got, got), n);
    CHECK(memcmp(got, one, n) == 0);
    CHECK_EQ(setaff(getpid(), sizeof orig, orig), 0);
    CHECK_EQ(getaff(0, sizeof got, got), n);
    CHECK(memcmp(got, orig, n) == 0);
}

/* CPUs that do not exist (or are not allowed) are dropped from the mask; a mask with no
 * usable CPU is EINVAL. */
TEST(setaffinity_drops_missing_cpus) {
    unsigned char orig[128], all[128], got[128];
    memset(orig, 0, sizeof orig);
    long n = getaff(0, sizeof orig, orig);
    CHECK(n > 0);
    memset(all, 0xff, sizeof all);
    CHECK_EQ(setaff(0, sizeof all, all), 0);
    memset(got, 0, sizeof got);
    CHECK_EQ(getaff(0, sizeof got, got), n);
    for (long i = 0; i < n; i++) CHECK_EQ(got[i] & orig[i], orig[i]);
    unsigned char none[128];
    memset(none, 0, sizeof none);
    CHECK_ERR(setaff(0, sizeof none, none), EINVAL);
    CHECK_ERR(setaff(0, 0, all), EINVAL);
}

/* A mask shorter than the kernel's is padded with zeros. */
TEST(setaffinity_short_mask) {
    unsigned char orig[128], got[128];
    memset(orig, 0, sizeof orig);
    long n = getaff(0, sizeof orig, orig);
    CHECK(n > 0);
    int cpu = first_cpu(orig, n);
    CHECK(cpu >= 0);
    if (cpu >= 8) return; /* Needs a CPU among the first eight. */
    unsigned char byte = 1 << cpu;
    CHECK_EQ(setaff(0, 1, &byte), 0);
    memset(got, 0xff, sizeof got);
    CHECK_EQ(getaff(0, sizeof got, got), n);
    CHECK_EQ(got[0], byte);
    for (long i = 1; i < n; i++) CHECK_EQ(got[i], 0);
}

TEST(setaffinity_errors) {
    unsigned char mask[128];
    memset(mask, 0xff, sizeof mask);
    CHECK_ERR(setaff(0, sizeof mask, (void *)1), EFAULT);
    CHECK_ERR(setaff(0x7ffffff0, sizeof mask, mask), ESRCH);
}

/* A child inherits its parent's affinity. */
TEST(affinity_inherited_by_fork) {
    unsigned char orig[128], one[128];
    memset(orig, 0, sizeof orig);
    long n = getaff(0, sizeof orig, orig);
    CHECK(n > 0);
    int cpu = first_cpu(orig, n);
    memset(one, 0, sizeof one);
    one[cpu / 8] = 1 << (cpu % 8);
    CHECK_EQ(setaff(0, sizeof one, one), 0);
    pid_t child = fork();
    if (child == 0) {
        unsigned char got[128];
        memset(got, 0, sizeof got);
        _exit(getaff(0, sizeof got, got) == n && memcmp(got, one, n) == 0 ? 0 : 1);
    }
    CHECK(child > 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

TEST(sched_yield_succeeds) {
    CHECK_EQ(syscall(SYS_sched_yield), 0);
    CHECK_EQ(sched_yield(), 0);
}

/* sched_get_priority_max/min(2): 1..99 for the real-time policies, 0 for the others. */
TEST(priority_ranges) {
    CHECK_EQ(sched_get_priority_max(SCHED_FIFO), 99);
    CHECK_EQ(sched_get_priority_min(SCHED_FIFO), 1);
    CHECK_EQ(sched_get_priority_max(SCHED_RR), 99);
    CHECK_EQ(sched_get_priority_min(SCHED_RR), 1);
    int others[] = {SCHED_OTHER, SCHED_BATCH, SCHED_IDLE};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sched_get_priority_max(others[i]), 0);
        CHECK_EQ(sched_get_priority_min(others[i]), 0);
    }
    CHECK_ERR(sched_get_priority_max(4), EINVAL);
    CHECK_ERR(sched_get_priority_min(-1), EINVAL);
    CHECK_ERR(sched_get_priority_max(99), EINVAL);
}

TEST(default_policy_is_other) {
    struct sched_param p = {.sched_priority = 42};
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    CHECK_EQ(sched_getscheduler(getpid()), SCHED_OTHER);
    CHECK_EQ(sched_getparam(0, &p), 0);
    CHECK_EQ(p.sched_priority, 0);
}

TEST(set_batch_and_back) {
    struct sched_param p = {.sched_priority = 0};
    CHECK_EQ(sched_setscheduler(0, SCHED_BATCH, &p), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_BATCH);
    /* sched_setparam keeps the policy. */
    CHECK_EQ(sched_setparam(0, &p), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_BATCH);
    CHECK_EQ(sched_setscheduler(0, SCHED_OTHER, &p), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
}

/* "EINVAL Invalid arguments: pid is negative or param is NULL", an unknown policy, or a
 * priority that does not fit the policy. */
TEST(setscheduler_invalid_arguments) {
    struct sched_param zero = {.sched_priority = 0}, one = {.sched_priority = 1};
    struct sched_param high = {.sched_priority = 100}, neg = {.sched_priority = -1};
    CHECK_ERR(sched_setscheduler(0, 4, &zero), EINVAL);
    CHECK_ERR(sched_setscheduler(0, -1, &zero), EINVAL);
    CHECK_ERR(sched_setscheduler(0, 77, &zero), EINVAL);
    CHECK_ERR(sched_setscheduler(0, SCHED_OTHER, &one), EINVAL);
    CHECK_ERR(sched_setscheduler(0, SCHED_BATCH, &neg), EINVAL);
    CHECK_ERR(sched_setscheduler(0, SCHED_FIFO, &zero), EINVAL);
    CHECK_ERR(sched_setscheduler(0, SCHED_RR, &high), EINVAL);
    CHECK_ERR(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL), EINVAL);
    CHECK_ERR(sched_setscheduler(-1, SCHED_OTHER, &zero), EINVAL);
    CHECK_ERR(sched_setparam(0, &one), EINVAL);
    CHECK_ERR(syscall(SYS_sched_setparam, 0, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getparam, 0, NULL), EINVAL);
    CHECK_ERR(sched_getparam(-1, &zero), EINVAL);
    CHECK_ERR(sched_getscheduler(-1), EINVAL);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
}

TEST(scheduler_errors) {
    struct sched_param p = {.sched_priority = 0};
    CHECK_ERR(sched_getscheduler(0x7ffffff0), ESRCH);
    CHECK_ERR(sched_getparam(0x7ffffff0, &p), ESRCH);
    CHECK_ERR(sched_setscheduler(0x7ffffff0, SCHED_OTHER, &p), ESRCH);
    CHECK_ERR(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, (void *)1), EFAULT);
    CHECK_ERR(syscall(SYS_sched_getparam, 0, (void *)1), EFAULT);
}

/* SCHED_RESET_ON_FORK is reported with the policy, and a child starts without it. */
TEST(reset_on_fork) {
    struct sched_param p = {.sched_priority = 0};
    CHECK_EQ(sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &p), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_BATCH | SCHED_RESET_ON_FORK);
    pid_t child = fork();
    if (child == 0) _exit(sched_getscheduler(0) == SCHED_BATCH ? 0 : 1);
    CHECK(child > 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK_EQ(sched_setscheduler(0, SCHED_OTHER, &p), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
}

/* getpriority(2): the raw call returns 20 - nice, so that it is never negative. */
TEST(priority_raw_and_wrapper_agree) {
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, 0);
    CHECK_EQ(errno, 0);
    CHECK_EQ(syscall(SYS_getpriority, PRIO_PROCESS, 0), 20 - nice_now);
    CHECK_EQ(syscall(SYS_getpriority, PRIO_PROCESS, getpid()), 20 - nice_now);
    /* The highest priority among the group's processes: at least this one's. */
    CHECK(syscall(SYS_getpriority, PRIO_PGRP, 0) >= 20 - nice_now);
    CHECK(syscall(SYS_getpriority, PRIO_USER, 0) >= 20 - nice_now);
}

/* Raising the nice value is always allowed; values past 19 are clamped. */
TEST(setpriority_raises_nice) {
    int nice_now = getpriority(PRIO_PROCESS, 0);
    if (nice_now >= 19) return;
    CHECK_EQ(setpriority(PRIO_PROCESS, 0, nice_now + 1), 0);
    CHECK_EQ(getpriority(PRIO_PROCESS, 0), nice_now + 1);
    CHECK_EQ(setpriority(PRIO_PROCESS, getpid(), 100), 0);
    CHECK_EQ(getpriority(PRIO_PROCESS, 0), 19);
    /* A child inherits it. */
    pid_t child = fork();
    if (child == 0) _exit(getpriority(PRIO_PROCESS, 0) == 19 ? 0 : 1);
    CHECK(child > 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

TEST(priority_errors) {
    CHECK_ERR(syscall(SYS_getpriority, 3, 0), EINVAL);
    CHECK_ERR(syscall(SYS_getpriority, -1, 0), EINVAL);
    CHECK_ERR(syscall(SYS_setpriority, 3, 0, 0), EINVAL);
    CHECK_ERR(syscall(SYS_getpriority, PRIO_PROCESS, 0x7ffffff0), ESRCH);
    CHECK_ERR(syscall(SYS_getpriority, PRIO_PGRP, 0x7ffffff0), ESRCH);
    CHECK_ERR(syscall(SYS_setpriority, PRIO_PROCESS, 0x7ffffff0, 0), ESRCH);
    CHECK_ERR(syscall(SYS_getpriority, PRIO_USER, 0x7ffffff0), ESRCH);
}
