/* getrlimit(2), setrlimit(2), prlimit64: resource limits, through the raw system calls. */
#include "harness.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct lim {
    uint64_t cur, max;
};

static long get(int res, struct lim *l) {
    return syscall(SYS_getrlimit, res, l);
}
static long set(int res, const struct lim *l) {
    return syscall(SYS_setrlimit, res, l);
}
static long pl(pid_t pid, int res, const struct lim *n, struct lim *o) {
    return syscall(SYS_prlimit64, pid, res, n, o);
}

#define INF ((uint64_t)RLIM_INFINITY)

#define GIB (1UL << 30)
#define RW (PROT_READ | PROT_WRITE)
#define ANON_NORESERVE (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

static uintptr_t kbrk(uintptr_t addr) {
    return (uintptr_t)syscall(SYS_brk, addr);
}

TEST(stack_limit_readable) {
    struct lim l = {1, 0};
    CHECK_EQ(get(RLIMIT_STACK, &l), 0);
    CHECK(l.cur == INF || l.cur <= l.max);
    /* A process needs some stack: the soft limit is at least a page. */
    CHECK(l.cur >= 4096);
}

TEST(nofile_limit_readable) {
    struct lim l = {1, 0};
    CHECK_EQ(get(RLIMIT_NOFILE, &l), 0);
    CHECK(l.cur <= l.max);
    CHECK(l.cur >= 3);
    CHECK(l.cur != INF);
}

TEST(every_resource_readable) {
    for (int r = 0; r < RLIM_NLIMITS; r++) {
        struct lim l;
        memset(&l, 0xa5, sizeof l);
        CHECK_EQ(get(r, &l), 0);
        CHECK(l.max == INF || l.cur <= l.max);
    }
}

TEST(resource_out_of_range_is_einval) {
    struct lim l;
    CHECK_ERR(get(RLIM_NLIMITS, &l), EINVAL);
    CHECK_ERR(get(1000, &l), EINVAL);
    CHECK_ERR(get(-1, &l), EINVAL);
    CHECK_EQ(get(RLIMIT_CORE, &l), 0);
    CHECK_ERR(set(RLIM_NLIMITS, &l), EINVAL);
    CHECK_ERR(pl(0, RLIM_NLIMITS, NULL, &l), EINVAL);
    CHECK_ERR(pl(0, -1, NULL, &l), EINVAL);
}

/* "EINVAL ... rlim->rlim_cur was greater than rlim->rlim_max." */
TEST(soft_above_hard_is_einval) {
    struct lim old, bad, now;
    CHECK_EQ(get(RLIMIT_NOFILE, &old), 0);
    bad.max = old.cur;
    bad.cur = old.cur + 1;
    CHECK_ERR(set(RLIMIT_NOFILE, &bad), EINVAL);
    CHECK_ERR(pl(0, RLIMIT_NOFILE, &bad, NULL), EINVAL);
    CHECK_EQ(get(RLIMIT_NOFILE, &now), 0);
    CHECK_EQ(now.cur, old.cur);
    CHECK_EQ(now.max, old.max);
}

TEST(lower_soft_limit_and_read_back) {
    struct lim old, l, now;
    CHECK_EQ(get(RLIMIT_NOFILE, &old), 0);
    l.cur = 64 < old.cur ? 64 : old.cur - 1;
    l.max = old.max;
    CHECK_EQ(set(RLIMIT_NOFILE, &l), 0);
    CHECK_EQ(get(RLIMIT_NOFILE, &now), 0);
    CHECK_EQ(now.cur, l.cur);
    CHECK_EQ(now.max, old.max);
    /* Raising the soft limit back up to the hard limit is always allowed. */
    CHECK_EQ(set(RLIMIT_NOFILE, &old), 0);
    CHECK_EQ(get(RLIMIT_NOFILE, &now), 0);
    CHECK_EQ(now.cur, old.cur);
}

TEST(core_limit_round_trip) {
    struct lim old, l, now;
    CHECK_EQ(get(RLIMIT_CORE, &old), 0);
    l.cur = 0;
    l.max = old.max;
    CHECK_EQ(set(RLIMIT_CORE, &l), 0);
    CHECK_EQ(get(RLIMIT_CORE, &now), 0);
    CHECK_EQ(now.cur, 0);
    CHECK_EQ(now.max, old.max);
    CHECK_EQ(set(RLIMIT_CORE, &old), 0);
}

/* prlimit: "If the old_limit argument is a not NULL, then a successful call to prlimit() places
 * the previous soft and hard limits for resource in the rlimit structure pointed to by
 * old_limit." The new limits take effect in the same call. */
TEST(prlimit64_old_and_new_in_one_call) {
    struct lim orig, l, old, now;
    CHECK_EQ(get(RLIMIT_NOFILE, &orig), 0);
    l.cur = orig.cur - 1;
    l.max = orig.max;
    memset(&old, 0, sizeof old);
    CHECK_EQ(pl(0, RLIMIT_NOFILE, &l, &old), 0);
    CHECK_EQ(old.cur, orig.cur);
    CHECK_EQ(old.max, orig.max);
    CHECK_EQ(get(RLIMIT_NOFILE, &now), 0);
    CHECK_EQ(now.cur, orig.cur - 1);
    CHECK_EQ(pl(0, RLIMIT_NOFILE, &orig, &old), 0);
    CHECK_EQ(old.cur, orig.cur - 1);
    CHECK_EQ(get(RLIMIT_NOFILE, &now), 0);
    CHECK_EQ(now.cur, orig.cur);
}

TEST(prlimit64_pid_zero_and_own_pid_agree) {
    struct lim a, b, c;
    CHECK_EQ(get(RLIMIT_STACK, &a), 0);
    CHECK_EQ(pl(0, RLIMIT_STACK, NULL, &b), 0);
    CHECK_EQ(pl(getpid(), RLIMIT_STACK, NULL, &c), 0);
    CHECK_EQ(b.cur, a.cur);
    CHECK_EQ(b.max, a.max);
    CHECK_EQ(c.cur, a.cur);
    CHECK_EQ(c.max, a.max);
}

TEST(prlimit64_set_on_own_pid) {
    struct lim orig, l, now;
    CHECK_EQ(get(RLIMIT_NOFILE, &orig), 0);
    l.cur = orig.cur - 2;
    l.max = orig.max;
    CHECK_EQ(pl(getpid(), RLIMIT_NOFILE, &l, NULL), 0);
    CHECK_EQ(get(RLIMIT_NOFILE, &now), 0);
    CHECK_EQ(now.cur, orig.cur - 2);
    CHECK_EQ(pl(getpid(), RLIMIT_NOFILE, &orig, NULL), 0);
}

TEST(prlimit64_both_null_is_ok) {
    CHECK_EQ(pl(0, RLIMIT_NOFILE, NULL, NULL), 0);
}

TEST(bad_pointers_are_efault) {
    CHECK_ERR(get(RLIMIT_NOFILE, (void *)1), EFAULT);
    CHECK_ERR(set(RLIMIT_NOFILE, (void *)1), EFAULT);
    CHECK_ERR(pl(0, RLIMIT_NOFILE, NULL, (void *)1), EFAULT);
    CHECK_ERR(pl(0, RLIMIT_NOFILE, (void *)1, NULL), EFAULT);
}

/* "ESRCH Could not find a process with the ID specified in pid." */
TEST(prlimit64_unknown_pid_is_esrch) {
    struct lim l;
    CHECK_ERR(pl(0x7ffffff0, RLIMIT_NOFILE, NULL, &l), ESRCH);
}

/* The glibc wrappers agree with the raw calls. */
TEST(glibc_getrlimit_agrees) {
    struct rlimit r;
    struct lim l;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &r));
    CHECK_EQ(get(RLIMIT_NOFILE, &l), 0);
    CHECK_EQ(r.rlim_cur, l.cur);
    CHECK_EQ(r.rlim_max, l.max);
}

/* "EPERM ... the caller tried to increase the maximum RLIMIT_NOFILE limit above the current
 * kernel maximum (NR_OPEN)" (even with privilege): infinity is above it. */
TEST(nofile_infinity_is_eperm) {
    struct lim old, inf = {INF, INF}, now;
    CHECK_EQ(get(RLIMIT_NOFILE, &old), 0);
    CHECK_ERR(set(RLIMIT_NOFILE, &inf), EPERM);
    CHECK_EQ(get(RLIMIT_NOFILE, &now), 0);
    CHECK_EQ(now.cur, old.cur);
    CHECK_EQ(now.max, old.max);
}

/* RLIMIT_AS: "This limit affects calls to brk(2), mmap(2), and mremap(2), which fail with the
 * error ENOMEM upon exceeding this limit." Every mapping counts, reserved or not. */
TEST(as_limit_fails_mmap_mremap_and_brk) {
    struct lim old, l;
    CHECK_EQ(get(RLIMIT_AS, &old), 0);
    l.cur = GIB;
    l.max = old.max;
    CHECK_EQ(set(RLIMIT_AS, &l), 0);
    CHECK_ERR(syscall(SYS_mmap, 0, 2 * GIB, RW, ANON_NORESERVE, -1, 0), ENOMEM);
    CHECK_ERR(syscall(SYS_mmap, 0, 2 * GIB, PROT_NONE, ANON_NORESERVE, -1, 0), ENOMEM);
    CHECK_ERR(syscall(SYS_mmap, 0, 2 * GIB, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0), ENOMEM);
    void *p = mmap(NULL, 1 << 20, RW, ANON_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(syscall(SYS_mremap, p, 1 << 20, 2 * GIB, MREMAP_MAYMOVE), ENOMEM);
    uintptr_t cur = kbrk(0);
    CHECK_EQ(kbrk(cur + 2 * GIB), cur);
    CHECK_EQ(kbrk(cur + 4096), cur + 4096);
    CHECK_EQ(kbrk(cur), cur);
    CHECK_OK(munmap(p, 1 << 20));
    /* Raised again, the same mapping is fine. */
    CHECK_EQ(set(RLIMIT_AS, &old), 0);
    p = mmap(NULL, 2 * GIB, PROT_NONE, ANON_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, 2 * GIB));
}

/* RLIMIT_DATA: "the maximum size of the process's data segment (initialized data,
 * uninitialized data, and heap) ... This limit affects calls to brk(2), sbrk(2), and (since
 * Linux 4.7) mmap(2), which fail with the error ENOMEM upon encountering the soft limit".
 * mmap counts private writable memory only (mm/mmap.c, is_data_mapping), so reserving
 * address space without access is not refused. */
TEST(data_limit_fails_private_writable_mmap_and_brk) {
    struct lim old, l;
    CHECK_EQ(get(RLIMIT_DATA, &old), 0);
    l.cur = GIB;
    l.max = old.max;
    CHECK_EQ(set(RLIMIT_DATA, &l), 0);
    CHECK_ERR(syscall(SYS_mmap, 0, 2 * GIB, RW, ANON_NORESERVE, -1, 0), ENOMEM);
    uintptr_t cur = kbrk(0);
    CHECK_EQ(kbrk(cur + 2 * GIB), cur);
    CHECK_EQ(kbrk(cur + 4096), cur + 4096);
    CHECK_EQ(kbrk(cur), cur);
    void *p = mmap(NULL, 1 << 20, RW, ANON_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, 1 << 20));
    p = mmap(NULL, 2 * GIB, PROT_NONE, ANON_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, 2 * GIB));
    CHECK_EQ(set(RLIMIT_DATA, &old), 0);
    p = mmap(NULL, 2 * GIB, RW, ANON_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, 2 * GIB));
}
