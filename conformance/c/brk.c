/* brk(2): the program break, through the raw system call. The kernel's brk returns the new
 * break on success and the current (unchanged) break on failure; it never returns -1.
 * Every case puts the break back where it found it, so glibc's malloc is not disturbed. */
#include "harness.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static uintptr_t kbrk(uintptr_t addr) {
    return (uintptr_t)syscall(SYS_brk, addr);
}

static uintptr_t page_up(uintptr_t a) {
    return (a + PAGE - 1) & ~(PAGE - 1);
}

/* Can the kernel write 16 bytes at a? (clock_gettime fails with EFAULT where it cannot.) */
static long kwrite(uintptr_t a) {
    return syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)a);
}

TEST(brk_zero_returns_current_break) {
    uintptr_t a = kbrk(0);
    CHECK(a != 0);
    CHECK(a != (uintptr_t)-1);
    CHECK_EQ(kbrk(0), a);
    /* glibc's sbrk(0) tracks the same break. */
    CHECK_EQ((uintptr_t)sbrk(0), a);
}

TEST(brk_is_above_program_data) {
    static int in_bss;
    static int in_data = 1;
    uintptr_t a = kbrk(0);
    CHECK(a > (uintptr_t)&in_bss);
    CHECK(a > (uintptr_t)&in_data);
}

TEST(grow_returns_new_break_zeroed_and_writable) {
    uintptr_t cur = kbrk(0);
    uintptr_t want = cur + 3 * PAGE;
    CHECK_EQ(kbrk(want), want);
    CHECK_EQ(kbrk(0), want);
    unsigned char *p = (unsigned char *)cur;
    for (uintptr_t i = 0; i < 3 * PAGE; i++) CHECK_EQ(p[i], 0);
    memset(p, 0xa5, 3 * PAGE);
    CHECK_EQ(p[0], 0xa5);
    CHECK_EQ(p[3 * PAGE - 1], 0xa5);
    CHECK_EQ(kbrk(cur), cur);
}

/* The break need not be page-aligned: the kernel returns exactly what was asked for. */
TEST(unaligned_break_returned_exactly) {
    uintptr_t cur = kbrk(0);
    CHECK_EQ(kbrk(cur + 100), cur + 100);
    CHECK_EQ(kbrk(0), cur + 100);
    /* The whole page holding the break is usable. */
    ((volatile unsigned char *)cur)[99] = 1;
    CHECK_EQ(kbrk(cur + 5000), cur + 5000);
    ((volatile unsigned char *)cur)[4999] = 2;
    CHECK_EQ(kbrk(cur), cur);
}

TEST(shrink_returns_lower_break) {
    uintptr_t cur = kbrk(0);
    CHECK_EQ(kbrk(cur + 8 * PAGE), cur + 8 * PAGE);
    CHECK_EQ(kbrk(cur + 2 * PAGE), cur + 2 * PAGE);
    CHECK_EQ(kbrk(0), cur + 2 * PAGE);
    CHECK_EQ(kbrk(cur), cur);
    CHECK_EQ(kbrk(0), cur);
}

/* Pages given back by shrinking are freed; growing again yields fresh zeroed memory. */
TEST(regrow_after_shrink_is_zeroed) {
    uintptr_t cur = kbrk(0);
    uintptr_t base = page_up(cur);
    CHECK_EQ(kbrk(base + 2 * PAGE), base + 2 * PAGE);
    unsigned char *p = (unsigned char *)base;
    memset(p, 0x5a, 2 * PAGE);
    CHECK_EQ(kbrk(base), base);
    CHECK_EQ(kbrk(base + 2 * PAGE), base + 2 * PAGE);
    for (uintptr_t i = 0; i < 2 * PAGE; i++) CHECK_EQ(p[i], 0);
    CHECK_EQ(kbrk(cur), cur);
}

/* Below the start of the heap the request is refused: the current break comes back. */
TEST(below_start_returns_current_break) {
    uintptr_t cur = kbrk(0);
    CHECK_EQ(kbrk(1), cur);
    CHECK_EQ(kbrk(PAGE), cur);
    CHECK_EQ(kbrk(0), cur);
}

/* A break the address space cannot hold is refused the same way. */
TEST(impossible_break_returns_current_break) {
    uintptr_t cur = kbrk(0);
    CHECK_EQ(kbrk((uintptr_t)-PAGE), cur);
    CHECK_EQ(kbrk(1UL << 60), cur);
    CHECK_EQ(kbrk(0), cur);
}

TEST(same_break_is_a_no_op) {
    uintptr_t cur = kbrk(0);
    CHECK_EQ(kbrk(cur), cur);
    CHECK_EQ(kbrk(0), cur);
}

TEST(large_grow_is_usable_end_to_end) {
    uintptr_t cur = kbrk(0);
    uintptr_t want = cur + 16 * 1024 * 1024;
    CHECK_EQ(kbrk(want), want);
    volatile unsigned char *p = (volatile unsigned char *)cur;
    for (uintptr_t off = 0; off < 16 * 1024 * 1024; off += 1024 * 1024) {
        CHECK_EQ(p[off], 0);
        p[off] = (unsigned char)(off >> 20);
    }
    p[16 * 1024 * 1024 - 1] = 7;
    for (uintptr_t off = 0; off < 16 * 1024 * 1024; off += 1024 * 1024)
        CHECK_EQ(p[off], (unsigned char)(off >> 20));
    CHECK_EQ(kbrk(cur), cur);
}

/* sbrk(3) is built on brk: increments return the old break and move it. */
TEST(sbrk_round_trip) {
    void *old = sbrk(0);
    CHECK_EQ((uintptr_t)old, kbrk(0));
    void *p = sbrk(8192);
    CHECK(p != (void *)-1);
    CHECK_EQ((uintptr_t)p, (uintptr_t)old);
    CHECK_EQ((uintptr_t)sbrk(0), (uintptr_t)old + 8192);
    CHECK_EQ(kbrk(0), (uintptr_t)old + 8192);
    memset(p, 1, 8192);
    CHECK_EQ((uintptr_t)sbrk(-8192), (uintptr_t)old + 8192);
    CHECK_EQ((uintptr_t)sbrk(0), (uintptr_t)old);
    CHECK_EQ(kbrk(0), (uintptr_t)old);
}

/* Shrinking the break gives the pages above it back: they are no longer mapped. */
TEST(shrink_unmaps_pages_above_break) {
    uintptr_t cur = kbrk(0);
    uintptr_t base = page_up(cur);
    CHECK_EQ(kbrk(base + 4 * PAGE), base + 4 * PAGE);
    memset((void *)base, 1, 4 * PAGE);
    CHECK_EQ(kwrite(base + 3 * PAGE), 0);
    CHECK_EQ(kbrk(base + PAGE), base + PAGE);
    CHECK_EQ(kwrite(base), 0);
    CHECK_ERR(kwrite(base + PAGE), EFAULT);
    CHECK_ERR(kwrite(base + 3 * PAGE), EFAULT);
    CHECK_EQ(kbrk(cur), cur);
    CHECK_ERR(kwrite(base + PAGE), EFAULT);
}

/* proc_pid_maps(5): "[heap] The process's heap": the mapping that ends at the page holding
 * the current break. */
TEST(heap_shown_in_proc_maps) {
    static char maps[1 << 16];
    uintptr_t cur = kbrk(0);
    uintptr_t want = page_up(cur) + 2 * PAGE;
    CHECK_EQ(kbrk(want), want);
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    long n = 0, r;
    while (n < (long)sizeof maps - 1 && (r = read(fd, maps + n, sizeof maps - 1 - n)) > 0) n += r;
    close(fd);
    maps[n] = 0;
    CHECK_EQ(kbrk(cur), cur);
    int found = 0;
    for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, " [heap]")) continue;
        char *dash;
        unsigned long start = strtoul(line, &dash, 16);
        unsigned long end = strtoul(dash + 1, NULL, 16);
        CHECK(start < want);
        CHECK_EQ(end, want);
        CHECK(strstr(line, " rw-p ") != NULL);
        found++;
    }
    CHECK_EQ(found, 1);
}
