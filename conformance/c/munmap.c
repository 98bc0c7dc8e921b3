/* munmap(2). Whether a page is still mapped is observed without touching it: a system call
 * that writes there (clock_gettime) fails with EFAULT when it is not, and
 * mmap(MAP_FIXED_NOREPLACE) fails with EEXIST when it is. */
#include "harness.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static long kwrite(void *p) {
    return syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p);
}

/* 1 if [p, p+len) is entirely free, 0 if some of it is mapped; maps nothing in either case. */
static int is_free(void *p, size_t len) {
    void *q = mmap(p, len, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
    if (q == MAP_FAILED) return 0;
    munmap(q, len);
    return q == p;
}

TEST(unmap_then_range_is_free) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(!is_free(p, PAGE));
    CHECK_EQ(munmap(p, 2 * PAGE), 0);
    CHECK(is_free(p, 2 * PAGE));
    CHECK_ERR(kwrite(p), EFAULT);
}

TEST(unaligned_address_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(munmap(p + 1, PAGE), EINVAL);
    CHECK_ERR(munmap(p + PAGE / 2, PAGE), EINVAL);
    /* Nothing was unmapped. */
    CHECK_EQ(kwrite(p), 0);
    CHECK_EQ(kwrite(p + PAGE), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
}

TEST(zero_length_is_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(munmap(p, 0), EINVAL);
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* "It is not an error if the indicated range does not contain any mapped pages." */
TEST(unmapping_a_hole_is_ok) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, 4 * PAGE));
    CHECK_EQ(munmap(p, 4 * PAGE), 0);
    CHECK_EQ(munmap(p + PAGE, PAGE), 0);
}

/* A range outside the user address space is invalid. */
TEST(range_beyond_address_space_is_einval) {
    CHECK_ERR(munmap((void *)0xffff800000000000UL, PAGE), EINVAL);
    CHECK_ERR(munmap((void *)0x7ffffffff000UL, 1UL << 62), EINVAL);
    CHECK_ERR(munmap((void *)PAGE, -PAGE), EINVAL);
}

TEST(partial_unmap_leaves_the_rest_usable) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x44, 3 * PAGE);
    CHECK_EQ(munmap(p + PAGE, PAGE), 0);
    CHECK(is_free(p + PAGE, PAGE));
    CHECK_ERR(kwrite(p + PAGE), EFAULT);
    CHECK_EQ(p[0], 0x44);
    CHECK_EQ(p[PAGE - 1], 0x44);
    CHECK_EQ(p[2 * PAGE], 0x44);
    CHECK_EQ(p[3 * PAGE - 1], 0x44);
    p[0] = 1;
    p[2 * PAGE] = 2;
    CHECK_EQ(kwrite(p), 0);
    CHECK_EQ(kwrite(p + 2 * PAGE), 0);
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* The length is rounded up to whole pages. */
TEST(length_rounded_up_to_page) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[PAGE] = 6;
    CHECK_EQ(munmap(p, 1), 0);
    CHECK(is_free(p, PAGE));
    CHECK(!is_free(p + PAGE, PAGE));
    CHECK_EQ(p[PAGE], 6);
    CHECK_OK(munmap(p + PAGE, PAGE));
}

/* One call may span several mappings and the holes between them. */
TEST(unmap_spanning_several_mappings) {
    unsigned char *p = mmap(NULL, 5 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PAGE, PAGE));
    /* Different protections make separate mappings. */
    CHECK_OK(mprotect(p + 3 * PAGE, PAGE, PROT_READ));
    CHECK_EQ(munmap(p, 5 * PAGE), 0);
    CHECK(is_free(p, 5 * PAGE));
}

TEST(mmap_after_munmap_reuses_range_zeroed) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x77, 2 * PAGE);
    CHECK_OK(munmap(p, 2 * PAGE));
    unsigned char *q = mmap(p, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ((uintptr_t)q, (uintptr_t)p);
    for (size_t i = 0; i < 2 * PAGE; i++) CHECK_EQ(q[i], 0);
    CHECK_OK(munmap(q, 2 * PAGE));
}

/* Unmapping shared anonymous memory works the same way. */
TEST(unmap_shared_anonymous) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 1;
    CHECK_EQ(munmap(p, PAGE), 0);
    CHECK(is_free(p, PAGE));
    p[PAGE] = 2;
    CHECK_EQ(p[PAGE], 2);
    CHECK_OK(munmap(p + PAGE, PAGE));
}
