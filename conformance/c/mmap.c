/* mmap(2): anonymous mappings. Memory the process cannot write is probed with a system call
 * that writes to it (clock_gettime), which fails with EFAULT instead of raising a signal. */
#include "harness.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Can the kernel write 16 bytes at p? */
static long kwrite(void *p) {
    return syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p);
}

TEST(private_anonymous_is_zeroed_and_writable) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(all_zero(p, 4 * PAGE));
    memset(p, 0x11, 4 * PAGE);
    CHECK_EQ(p[0], 0x11);
    CHECK_EQ(p[4 * PAGE - 1], 0x11);
    CHECK_EQ(kwrite(p + PAGE), 0);
    CHECK_OK(munmap(p, 4 * PAGE));
}

TEST(shared_anonymous_is_zeroed_and_writable) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(all_zero(p, 4 * PAGE));
    memset(p, 0x22, 4 * PAGE);
    CHECK_EQ(p[2 * PAGE + 7], 0x22);
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, 4 * PAGE));
}

TEST(result_is_page_aligned) {
    for (size_t len = 1; len <= 3 * PAGE; len += 1000) {
        void *p = mmap(NULL, len, RW, ANON, -1, 0);
        CHECK(p != MAP_FAILED);
        CHECK(p != NULL);
        CHECK_EQ((uintptr_t)p % PAGE, 0);
        CHECK_OK(munmap(p, len));
    }
}

/* A length that is not a page multiple maps whole pages. */
TEST(length_rounded_up_to_pages) {
    unsigned char *p = mmap(NULL, PAGE + 1, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[2 * PAGE - 1] = 3;
    CHECK_EQ(p[2 * PAGE - 1], 3);
    CHECK_OK(munmap(p, 2 * PAGE));
}

TEST(read_only_memory_reads_zero_and_rejects_writes) {
    unsigned char *p = mmap(NULL, PAGE, PROT_READ, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(all_zero(p, PAGE));
    CHECK_ERR(kwrite(p), EFAULT);
    CHECK(all_zero(p, PAGE));
    CHECK_OK(munmap(p, PAGE));
}

/* PROT_NONE memory cannot even be read: nanosleep cannot fetch its argument from it. */
TEST(prot_none_memory_rejects_reads) {
    void *p = mmap(NULL, PAGE, PROT_NONE, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(syscall(SYS_nanosleep, p, NULL), EFAULT);
    CHECK_ERR(kwrite(p), EFAULT);
    CHECK_OK(munmap(p, PAGE));
}

/* MAP_FIXED: "any overlapped part of the existing mapping(s) will be discarded". */
TEST(map_fixed_replaces_part_of_mapping) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x33, 3 * PAGE);
    unsigned char *q = mmap(p + PAGE, PAGE, RW, ANON | MAP_FIXED, -1, 0);
    CHECK_EQ((uintptr_t)q, (uintptr_t)(p + PAGE));
    CHECK(all_zero(q, PAGE));
    CHECK_EQ(p[0], 0x33);
    CHECK_EQ(p[PAGE - 1], 0x33);
    CHECK_EQ(p[2 * PAGE], 0x33);
    CHECK_EQ(p[3 * PAGE - 1], 0x33);
    CHECK_OK(munmap(p, 3 * PAGE));
}

TEST(map_fixed_unaligned_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(mmap(p + 1, PAGE, RW, ANON | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* MAP_FIXED_NOREPLACE: "If the requested range would collide with an existing mapping, then
 * this call fails with the error EEXIST." */
TEST(map_fixed_noreplace_over_mapping_is_eexist) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[PAGE] = 9;
    CHECK_ERR(mmap(p + PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED ? -1 : 0,
              EEXIST);
    /* Partial overlap collides too. */
    CHECK_OK(munmap(p + 2 * PAGE, PAGE));
    CHECK_ERR(mmap(p + PAGE, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED
                  ? -1 : 0,
              EEXIST);
    CHECK_EQ(p[PAGE], 9);
    CHECK_OK(munmap(p, 2 * PAGE));
}

TEST(map_fixed_noreplace_on_free_range_maps_there) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, 2 * PAGE));
    unsigned char *q = mmap(p, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ((uintptr_t)q, (uintptr_t)p);
    CHECK(all_zero(q, 2 * PAGE));
    q[0] = 1;
    CHECK_OK(munmap(q, 2 * PAGE));
}

/* Without MAP_FIXED the address is a hint, taken when the range is free. */
TEST(hint_address_honoured_when_free) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, 4 * PAGE));
    unsigned char *q = mmap(p + PAGE, 2 * PAGE, RW, ANON, -1, 0);
    CHECK_EQ((uintptr_t)q, (uintptr_t)(p + PAGE));
    CHECK_OK(munmap(q, 2 * PAGE));
}

/* ... and not taken when the range is in use: the mapping goes elsewhere, the old one stays. */
TEST(hint_over_mapping_goes_elsewhere) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 5;
    unsigned char *q = mmap(p, PAGE, RW, ANON, -1, 0);
    CHECK(q != MAP_FAILED);
    CHECK(q != p);
    CHECK_EQ(p[0], 5);
    CHECK_EQ(q[0], 0);
    CHECK_OK(munmap(q, PAGE));
    CHECK_OK(munmap(p, PAGE));
}

TEST(zero_length_is_einval) {
    CHECK_ERR(mmap(NULL, 0, RW, ANON, -1, 0) == MAP_FAILED ? -1 : 0, EINVAL);
    CHECK_ERR(mmap(NULL, 0, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0,
              EINVAL);
}

TEST(unaligned_offset_is_einval) {
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, ANON, -1, 1), EINVAL);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, ANON, -1, PAGE + 512), EINVAL);
}

/* "EINVAL flags contained none of MAP_PRIVATE, MAP_SHARED, or MAP_SHARED_VALIDATE." */
TEST(no_mapping_type_is_einval) {
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, MAP_ANONYMOUS, -1, 0), EINVAL);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, MAP_ANONYMOUS | 0xf, -1, 0), EINVAL);
}

/* MAP_SHARED_VALIDATE's EOPNOTSUPP for unknown flags applies to file mappings only; an
 * anonymous mapping accepts only MAP_SHARED or MAP_PRIVATE as its type, so Linux rejects
 * MAP_SHARED_VALIDATE | MAP_ANONYMOUS with EINVAL whatever the other flags are. */
TEST(shared_validate_anonymous_is_einval) {
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0),
              EINVAL);
    CHECK_ERR(
        syscall(SYS_mmap, 0, PAGE, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x400000, -1, 0),
        EINVAL);
}

TEST(huge_length_is_enomem) {
    CHECK_ERR(syscall(SYS_mmap, 0, 1UL << 50, RW, ANON | MAP_NORESERVE, -1, 0), ENOMEM);
    CHECK_ERR(syscall(SYS_mmap, 0, -PAGE, RW, ANON | MAP_NORESERVE, -1, 0), ENOMEM);
    /* A length that overflows when rounded up to a page. */
    CHECK_ERR(syscall(SYS_mmap, 0, -100UL, RW, ANON | MAP_NORESERVE, -1, 0), ENOMEM);
}

TEST(file_mapping_with_bad_fd_is_ebadf) {
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_PRIVATE, 99, 0), EBADF);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_SHARED, -1, 0), EBADF);
}

/* MAP_ANONYMOUS: "The fd argument is ignored" (and the offset should be zero; Linux ignores
 * an aligned one). */
TEST(anonymous_ignores_fd_and_offset) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, 99, 0);
    CHECK(p != MAP_FAILED);
    CHECK(all_zero(p, PAGE));
    CHECK_OK(munmap(p, PAGE));
    p = mmap(NULL, PAGE, RW, ANON, -1, 16 * PAGE);
    CHECK(p != MAP_FAILED);
    CHECK(all_zero(p, PAGE));
    CHECK_OK(munmap(p, PAGE));
}

TEST(large_noreserve_mapping_touched_sparsely) {
    size_t len = 256UL << 20;
    volatile unsigned char *p = mmap(NULL, len, RW, ANON | MAP_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED);
    for (size_t off = 0; off < len; off += 16UL << 20) {
        CHECK_EQ(p[off], 0);
        p[off] = (unsigned char)(1 + (off >> 24));
    }
    p[len - 1] = 0xee;
    for (size_t off = 0; off < len; off += 16UL << 20)
        CHECK_EQ(p[off], (unsigned char)(1 + (off >> 24)));
    CHECK_EQ(p[len - 1], 0xee);
    CHECK_OK(munmap((void *)p, len));
}

/* MAP_32BIT: "Put the mapping into the first 2 Gigabytes of the process address space." */
TEST(map_32bit_is_below_2gib) {
    unsigned char *maps[4];
    for (int i = 0; i < 4; i++) {
        unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON | MAP_32BIT, -1, 0);
        CHECK(p != MAP_FAILED);
        CHECK(p != NULL);
        CHECK((uintptr_t)p + 2 * PAGE <= 0x80000000UL);
        CHECK(all_zero(p, 2 * PAGE));
        CHECK_EQ(kwrite(p + PAGE), 0);
        maps[i] = p;
    }
    for (int i = 0; i < 4; i++) CHECK_OK(munmap(maps[i], 2 * PAGE));
}

/* MAP_POPULATE: "Populate (prefault) page tables for a mapping": every page is resident
 * (mincore(2)) before it is touched, and still zero. */
TEST(map_populate_pages_are_resident) {
    unsigned char *p = mmap(NULL, 8 * PAGE, RW, ANON | MAP_POPULATE, -1, 0);
    CHECK(p != MAP_FAILED);
    unsigned char vec[8] = {0};
    CHECK_EQ(mincore(p, 8 * PAGE, vec), 0);
    for (int i = 0; i < 8; i++) CHECK_EQ(vec[i] & 1, 1);
    CHECK(all_zero(p, 8 * PAGE));
    CHECK_OK(munmap(p, 8 * PAGE));
}
