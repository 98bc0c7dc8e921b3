/* mprotect(2). Access is probed through system calls, which fail with EFAULT instead of
 * raising a signal: clock_gettime writes 16 bytes, nanosleep reads 16 bytes. */
#include "scratch.h"

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

/* Reads a zero timespec at p (the memory must hold zeros, so the sleep is empty). */
static long kread(void *p) {
    return syscall(SYS_nanosleep, p, NULL);
}

TEST(unaligned_address_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(mprotect(p + 1, PAGE, PROT_READ), EINVAL);
    CHECK_ERR(mprotect(p + PAGE / 2, PAGE, PROT_READ), EINVAL);
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "EINVAL prot is invalid". PROT_SEM is accepted on x86; anything else unknown is not. */
TEST(unknown_prot_bits_are_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(mprotect(p, PAGE, PROT_READ | 0x10), EINVAL);
    CHECK_ERR(mprotect(p, PAGE, PROT_READ | 0x100), EINVAL);
    CHECK_ERR(mprotect(p, PAGE, 0x40000000), EINVAL);
    /* PROT_GROWSDOWN and PROT_GROWSUP together are contradictory. */
    CHECK_ERR(mprotect(p, PAGE, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP), EINVAL);
    /* The protection is unchanged. */
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* "ENOMEM Addresses in the range [addr, addr+len-1] are invalid for the address space of the
 * process, or specify one or more pages that are not mapped." */
TEST(range_not_fully_mapped_is_enomem) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PAGE, PAGE));
    CHECK_ERR(mprotect(p, 3 * PAGE, PROT_READ), ENOMEM);
    CHECK_ERR(mprotect(p + PAGE, PAGE, PROT_READ), ENOMEM);
    CHECK_OK(munmap(p, 3 * PAGE));
    CHECK_ERR(mprotect(p, PAGE, PROT_READ), ENOMEM);
}

TEST(range_wrapping_address_space_is_enomem) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(mprotect(p, -PAGE, PROT_READ), ENOMEM);
    CHECK_ERR(mprotect((void *)0xffff800000000000UL, PAGE, PROT_READ), ENOMEM);
    CHECK_OK(munmap(p, PAGE));
}

TEST(zero_length_is_ok) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mprotect(p, 0, PROT_READ), 0);
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, PAGE));
    /* Even where nothing is mapped. */
    CHECK_EQ(mprotect(p, 0, PROT_READ), 0);
}

TEST(read_only_then_read_write_keeps_contents) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    for (size_t i = 0; i < 2 * PAGE; i++) p[i] = (unsigned char)i;
    CHECK_EQ(mprotect(p, 2 * PAGE, PROT_READ), 0);
    CHECK_ERR(kwrite(p + 100), EFAULT);
    for (size_t i = 0; i < 2 * PAGE; i++) CHECK_EQ(p[i], (unsigned char)i);
    CHECK_EQ(mprotect(p, 2 * PAGE, RW), 0);
    for (size_t i = 0; i < 2 * PAGE; i++) CHECK_EQ(p[i], (unsigned char)i);
    CHECK_EQ(kwrite(p + 100), 0);
    p[0] = 0xff;
    CHECK_EQ(p[0], 0xff);
    CHECK_OK(munmap(p, 2 * PAGE));
}

TEST(prot_none_then_back_keeps_contents) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p + 64, 0x5c, 64);
    CHECK_EQ(mprotect(p, PAGE, PROT_NONE), 0);
    CHECK_ERR(kread(p), EFAULT);
    CHECK_ERR(kwrite(p), EFAULT);
    CHECK_EQ(mprotect(p, PAGE, PROT_READ), 0);
    CHECK_EQ(kread(p), 0);
    CHECK_EQ(p[64], 0x5c);
    CHECK_EQ(p[127], 0x5c);
    CHECK_ERR(kwrite(p), EFAULT);
    CHECK_OK(munmap(p, PAGE));
}

TEST(protect_part_of_a_mapping) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mprotect(p + PAGE, PAGE, PROT_READ), 0);
    CHECK_EQ(kwrite(p), 0);
    CHECK_EQ(kwrite(p + PAGE - 16), 0);
    CHECK_ERR(kwrite(p + PAGE), EFAULT);
    CHECK_ERR(kwrite(p + 2 * PAGE - 16), EFAULT);
    CHECK_EQ(kwrite(p + 2 * PAGE), 0);
    CHECK_EQ(kwrite(p + 3 * PAGE - 16), 0);
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* The length is rounded up to whole pages. */
TEST(length_rounded_up_to_page) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mprotect(p, 1, PROT_READ), 0);
    CHECK_ERR(kwrite(p + PAGE - 16), EFAULT);
    CHECK_EQ(kwrite(p + PAGE), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* A range over two adjacent mappings is protected as a whole. */
TEST(protect_across_adjacent_mappings) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(mmap(p + PAGE, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p + PAGE);
    CHECK_EQ(mprotect(p, 2 * PAGE, PROT_READ), 0);
    CHECK_ERR(kwrite(p), EFAULT);
    CHECK_ERR(kwrite(p + PAGE), EFAULT);
    CHECK_EQ(mprotect(p, 2 * PAGE, RW), 0);
    CHECK_EQ(kwrite(p), 0);
    CHECK_EQ(kwrite(p + PAGE), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* Write permission without read permission still lets the kernel write (on x86, PROT_WRITE
 * implies PROT_READ). */
TEST(write_only_is_writable) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mprotect(p, PAGE, PROT_WRITE), 0);
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* "EACCES The memory cannot be given the specified access. This can happen, for example, if
 * you mmap(2) a file to which you have read-only access, then ask mprotect() to mark it
 * PROT_WRITE." That holds for a shared mapping; a private one may become writable, its
 * writes being its own. */
TEST(shared_mapping_of_read_only_file_cannot_become_writable) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "contents"), 8);
    int fd = open(P("f"), O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    unsigned char *s = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED);
    CHECK_ERR(mprotect(s, PAGE, RW), EACCES);
    CHECK_ERR(mprotect(s, PAGE, PROT_WRITE), EACCES);
    CHECK_ERR(kwrite(s), EFAULT);
    CHECK_EQ(mprotect(s, PAGE, PROT_NONE), 0);
    CHECK_EQ(mprotect(s, PAGE, PROT_READ), 0);
    CHECK_EQ(s[0], 'c');
    CHECK_OK(munmap(s, PAGE));
    unsigned char *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mprotect(p, PAGE, RW), 0);
    p[0] = 'C';
    CHECK_EQ(p[0], 'C');
    char buf[16];
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 8);
    CHECK(strcmp(buf, "contents") == 0);
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}
