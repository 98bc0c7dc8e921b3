/* sched_getaffinity(2) and getcpu(2). The raw sched_getaffinity returns the number of bytes
 * it copied into the mask ("the raw system call returns the size (in bytes) of the cpumask_t
 * data type"), unlike the glibc wrapper which returns 0. */
#include "harness.h"

#include <sched.h>
#include <sys/syscall.h>
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
