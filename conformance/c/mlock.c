/* mlock(2), mlock2, munlock, mlockall, munlockall, and MAP_LOCKED. Locked memory is counted
 * in "VmLck: Locked memory size" of /proc/self/status (proc_pid_status(5)). The tests run as
 * root here, so RLIMIT_MEMLOCK does not apply (CAP_IPC_LOCK). */
#include "mm.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

static long kmlock2(void *addr, size_t len, unsigned flags) {
    return syscall(SYS_mlock2, addr, len, flags);
}

TEST(mlock_counts_in_vmlck_until_munlock) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    long before = status_kb("VmLck");
    CHECK(before >= 0);
    CHECK_EQ(mlock(p, 4 * PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before + 16);
    /* Locking again counts nothing twice. */
    CHECK_EQ(mlock(p, 2 * PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before + 16);
    CHECK_EQ(munlock(p + PAGE, PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before + 12);
    CHECK_EQ(munlock(p, 4 * PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before);
    /* Unlocking memory that is not locked is fine. */
    CHECK_EQ(munlock(p, 4 * PAGE), 0);
    p[0] = 1;
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* "All pages that contain a part of the specified address range are guaranteed to be resident
 * in RAM when the call returns successfully". */
TEST(mlock_makes_pages_resident) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mlock(p, 4 * PAGE), 0);
    unsigned char vec[4] = {0};
    CHECK_EQ(mincore(p, 4 * PAGE, vec), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(vec[i] & 1, 1);
    CHECK(all_are(p, 4 * PAGE, 0));
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* Unmapping locked memory unlocks it. */
TEST(munmap_drops_the_lock) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    long before = status_kb("VmLck");
    CHECK_EQ(mlock(p, 2 * PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before + 8);
    CHECK_OK(munmap(p, 2 * PAGE));
    CHECK_EQ(status_kb("VmLck"), before);
}

/* "On Linux, mlock(), mlock2(), and munlock() automatically round addr down to the nearest
 * page boundary." The length then covers every page holding part of the range. */
TEST(unaligned_address_rounded_down) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    long before = status_kb("VmLck");
    CHECK_EQ(mlock(p + 100, PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before + 8);
    CHECK_EQ(munlock(p + 100, 1), 0);
    CHECK_EQ(status_kb("VmLck"), before + 4);
    CHECK_EQ(munlock(p + PAGE + 1, 1), 0);
    CHECK_EQ(status_kb("VmLck"), before);
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* MLOCK_ONFAULT: "Lock pages that are currently resident and mark the entire range so that
 * the remaining nonresident pages are locked when they are populated by a page fault." The
 * whole range counts as locked; untouched pages stay out of memory. */
TEST(mlock2_onfault_locks_without_populating) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    long before = status_kb("VmLck");
    p[0] = 1;
    CHECK_EQ(kmlock2(p, 4 * PAGE, MLOCK_ONFAULT), 0);
    CHECK_EQ(status_kb("VmLck"), before + 16);
    unsigned char vec[4] = {0};
    CHECK_EQ(mincore(p, 4 * PAGE, vec), 0);
    CHECK_EQ(vec[0] & 1, 1);
    CHECK_EQ(vec[3] & 1, 0);
    p[3 * PAGE] = 1;
    CHECK_EQ(resident(p + 3 * PAGE), 1);
    CHECK_EQ(munlock(p, 4 * PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before);
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* "If flags is 0, mlock2() behaves exactly the same as mlock()." */
TEST(mlock2_without_flags_is_mlock) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    long before = status_kb("VmLck");
    CHECK_EQ(kmlock2(p, 2 * PAGE, 0), 0);
    CHECK_EQ(status_kb("VmLck"), before + 8);
    CHECK_EQ(resident(p + PAGE), 1);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "EINVAL (mlock2()) Unknown flags were specified." */
TEST(mlock2_unknown_flags_are_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    long before = status_kb("VmLck");
    CHECK_ERR(kmlock2(p, PAGE, 0x2), EINVAL);
    CHECK_ERR(kmlock2(p, PAGE, MLOCK_ONFAULT | 0x100), EINVAL);
    CHECK_EQ(status_kb("VmLck"), before);
    CHECK_OK(munmap(p, PAGE));
}

/* "ENOMEM Some of the specified address range does not correspond to mapped pages in the
 * address space of the process." */
TEST(unmapped_range_is_enomem) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PAGE, PAGE));
    CHECK_ERR(munlock(p + PAGE, PAGE), ENOMEM);
    CHECK_ERR(munlock(p, 3 * PAGE), ENOMEM);
    CHECK_ERR(mlock(p + PAGE, PAGE), ENOMEM);
    CHECK_ERR(mlock(p, 3 * PAGE), ENOMEM);
    CHECK_ERR(kmlock2(p + PAGE, PAGE, MLOCK_ONFAULT), ENOMEM);
    /* The mapped pages alone are fine. */
    CHECK_EQ(mlock(p + 2 * PAGE, PAGE), 0);
    CHECK_EQ(munlock(p, PAGE), 0);
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* "EINVAL (mlock(), mlock2(), and munlock()) The result of the addition addr+len was less
 * than addr (e.g., the addition may have resulted in an overflow)." */
TEST(wrapping_range_is_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(mlock(p, -PAGE), EINVAL);
    CHECK_ERR(munlock(p, -PAGE), EINVAL);
    CHECK_ERR(kmlock2(p, -PAGE, 0), EINVAL);
    CHECK_OK(munmap(p, PAGE));
}

/* mlockall(MCL_CURRENT) "Lock all pages which are currently mapped into the address space of
 * the process"; munlockall "unlocks all pages mapped into the address space". */
TEST(mlockall_current_then_munlockall) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mlockall(MCL_CURRENT), 0);
    long locked = status_kb("VmLck");
    CHECK(locked >= 16);
    CHECK_EQ(resident(p + 3 * PAGE), 1);
    /* Not a future mapping. */
    unsigned char *q = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(q != MAP_FAILED);
    CHECK_EQ(status_kb("VmLck"), locked);
    CHECK_EQ(munlockall(), 0);
    CHECK_EQ(status_kb("VmLck"), 0);
    CHECK_OK(munmap(q, 4 * PAGE));
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* MCL_FUTURE: "Lock all pages which will become mapped into the address space of the process
 * in the future." */
TEST(mlockall_future_locks_new_mappings) {
    long before = status_kb("VmLck");
    CHECK_EQ(mlockall(MCL_FUTURE), 0);
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(status_kb("VmLck"), before + 16);
    CHECK_EQ(resident(p + 2 * PAGE), 1);
    CHECK_EQ(munlockall(), 0);
    CHECK_EQ(status_kb("VmLck"), 0);
    unsigned char *q = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(q != MAP_FAILED);
    CHECK_EQ(status_kb("VmLck"), 0);
    CHECK_OK(munmap(q, 4 * PAGE));
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* "EINVAL Unknown flags were specified or MCL_ONFAULT was specified without either MCL_FUTURE
 * or MCL_CURRENT." */
TEST(mlockall_bad_flags_are_einval) {
    CHECK_ERR(mlockall(0), EINVAL);
    CHECK_ERR(mlockall(MCL_ONFAULT), EINVAL);
    CHECK_ERR(mlockall(MCL_CURRENT | 0x10), EINVAL);
    CHECK_ERR(mlockall(0x100), EINVAL);
    CHECK_EQ(status_kb("VmLck"), 0);
}

/* MAP_LOCKED: "Mark the mapped region to be locked in the same way as mlock(2)." */
TEST(map_locked_counts_in_vmlck) {
    long before = status_kb("VmLck");
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON | MAP_LOCKED, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(status_kb("VmLck"), before + 16);
    CHECK_EQ(munlock(p, 4 * PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before);
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* "Memory locks are not inherited by a child created via fork(2)". */
TEST(locks_not_inherited_by_fork) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    long before = status_kb("VmLck");
    CHECK_EQ(mlock(p, 4 * PAGE), 0);
    CHECK_EQ(status_kb("VmLck"), before + 16);
    pid_t pid = fork_child();
    if (pid == 0) _exit(status_kb("VmLck") == 0 && p[3 * PAGE] == 0 ? 0 : 1);
    CHECK_EQ(wait_signal(pid), 0);
    CHECK_EQ(status_kb("VmLck"), before + 16);
    CHECK_OK(munmap(p, 4 * PAGE));
}
