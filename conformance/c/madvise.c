/* madvise(2): what each advice does to the contents of private, shared and file mappings,
 * and the argument checks. MADV_DONTFORK and MADV_WIPEONFORK are in cow.c. */
#include "mm.h"

/* MADV_DONTNEED: "subsequent accesses of pages in the range will succeed, but will result in
 * ... zero-fill-on-demand pages for anonymous private mappings." */
TEST(dontneed_private_anonymous_reads_zero) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x5a, 3 * PAGE);
    CHECK_EQ(madvise(p + PAGE, PAGE, MADV_DONTNEED), 0);
    CHECK(all_are(p, PAGE, 0x5a));
    CHECK(all_are(p + PAGE, PAGE, 0));
    CHECK(all_are(p + 2 * PAGE, PAGE, 0x5a));
    p[PAGE] = 1;
    CHECK_EQ(p[PAGE], 1);
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* "... repopulating the memory contents from the up-to-date contents of the underlying mapped
 * file (for shared file mappings, shared anonymous mappings, and shmem-based techniques such
 * as System V shared memory segments)": a private file mapping loses its copies and shows
 * the file again. */
TEST(dontneed_private_file_mapping_reads_file_again) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 'p', 2 * PAGE);
    CHECK_EQ(madvise(p, 2 * PAGE, MADV_DONTNEED), 0);
    CHECK(all_are(p, PAGE, 'A'));
    CHECK(all_are(p + PAGE, PAGE, 'B'));
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd);
}

/* Shared mappings keep their contents: they live in the file or the shared object. */
TEST(dontneed_shared_mappings_keep_contents) {
    unsigned char *a = mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    memset(a, 0x77, PAGE);
    CHECK_EQ(madvise(a, PAGE, MADV_DONTNEED), 0);
    CHECK(all_are(a, PAGE, 0x77));
    CHECK_OK(munmap(a, PAGE));
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    unsigned char *s = mmap(NULL, PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED);
    s[1] = 's';
    CHECK_EQ(madvise(s, PAGE, MADV_DONTNEED), 0);
    CHECK_EQ(s[0], 'A');
    CHECK_EQ(s[1], 's');
    CHECK_OK(munmap(s, PAGE));
    close(fd);
}

/* "EINVAL advice is MADV_DONTNEED or MADV_REMOVE and the specified address range includes
 * locked, Huge TLB pages, or VM_PFNMAP pages." */
TEST(dontneed_on_locked_range_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x21, 2 * PAGE);
    CHECK_OK(mlock(p + PAGE, PAGE));
    CHECK_ERR(madvise(p + PAGE, PAGE, MADV_DONTNEED), EINVAL);
    CHECK(all_are(p + PAGE, PAGE, 0x21));
    CHECK_OK(munlock(p + PAGE, PAGE));
    CHECK_EQ(madvise(p + PAGE, PAGE, MADV_DONTNEED), 0);
    CHECK(all_are(p + PAGE, PAGE, 0));
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* MADV_FREE: "The application no longer requires the pages ... the kernel can free these
 * pages, but the freeing could be delayed until memory pressure occurs. ... If there is a
 * subsequent write ... the kernel can't free the pages": each page reads either as it was or
 * as zeros, and a new store sticks. */
TEST(free_on_private_anonymous) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x3c, 2 * PAGE);
    CHECK_EQ(madvise(p, 2 * PAGE, MADV_FREE), 0);
    CHECK(all_are(p, PAGE, 0x3c) || all_are(p, PAGE, 0));
    CHECK(all_are(p + PAGE, PAGE, 0x3c) || all_are(p + PAGE, PAGE, 0));
    memset(p, 0x4d, 2 * PAGE);
    CHECK(all_are(p, 2 * PAGE, 0x4d));
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "EINVAL advice is MADV_FREE or MADV_WIPEONFORK and the specified address range includes
 * file, Huge TLB, MAP_SHARED, or VM_PFNMAP ranges." */
TEST(free_on_shared_or_file_mapping_is_einval) {
    unsigned char *a = mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    a[0] = 1;
    CHECK_ERR(madvise(a, PAGE, MADV_FREE), EINVAL);
    CHECK_EQ(a[0], 1);
    CHECK_OK(munmap(a, PAGE));
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(madvise(p, PAGE, MADV_FREE), EINVAL);
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* MADV_REMOVE: "Free up a given range of pages and its associated backing store ...
 * Subsequent accesses in the specified address range will see bytes containing zero." */
TEST(remove_on_shared_anonymous_reads_zero) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x66, 2 * PAGE);
    CHECK_EQ(madvise(p, PAGE, MADV_REMOVE), 0);
    CHECK(all_are(p, PAGE, 0));
    CHECK(all_are(p + PAGE, PAGE, 0x66));
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "EACCES advice is MADV_REMOVE, but the specified address range is not a shared writable
 * mapping." */
TEST(remove_on_private_file_mapping_is_eacces) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(madvise(p, PAGE, MADV_REMOVE), EACCES);
    CHECK_EQ(p[0], 'A');
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* The hints change no contents: MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
 * MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_COLD, MADV_PAGEOUT. */
TEST(hints_accepted_and_keep_contents) {
    static const int hints[] = {MADV_NORMAL,   MADV_RANDOM,    MADV_SEQUENTIAL, MADV_WILLNEED,
                                MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP,  MADV_DODUMP,
                                MADV_COLD,     MADV_PAGEOUT};
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x19, 4 * PAGE);
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
        CHECK_EQ(madvise(p, 4 * PAGE, hints[i]), 0);
        CHECK(all_are(p, 4 * PAGE, 0x19));
    }
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* MADV_WILLNEED on a file mapping: "Expect access in the near future", the data unchanged. */
TEST(willneed_on_file_mapping) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 3);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(madvise(p, 3 * PAGE, MADV_WILLNEED), 0);
    CHECK_EQ(madvise(p, 3 * PAGE, MADV_SEQUENTIAL), 0);
    CHECK(all_are(p + 2 * PAGE, PAGE, 'C'));
    CHECK_OK(munmap(p, 3 * PAGE));
    close(fd);
}

/* MADV_POPULATE_WRITE: "Populate (prefault) page tables writable, faulting-in all pages in
 * the range just as if manually writing to each page": they are resident, and still zero. */
TEST(populate_write_makes_pages_resident) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(madvise(p, 4 * PAGE, MADV_POPULATE_WRITE), 0);
    unsigned char vec[4] = {0};
    CHECK_EQ(mincore(p, 4 * PAGE, vec), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(vec[i] & 1, 1);
    CHECK(all_are(p, 4 * PAGE, 0));
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* "EINVAL advice is not a valid." */
TEST(unknown_advice_is_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(madvise(p, PAGE, 5), EINVAL);
    CHECK_ERR(madvise(p, PAGE, 7), EINVAL);
    CHECK_ERR(madvise(p, PAGE, 1000), EINVAL);
    CHECK_ERR(madvise(p, PAGE, -1), EINVAL);
    CHECK_OK(munmap(p, PAGE));
}

/* "EINVAL addr is not page-aligned or length is negative." */
TEST(unaligned_address_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[1] = 1;
    CHECK_ERR(madvise(p + 1, PAGE, MADV_DONTNEED), EINVAL);
    CHECK_ERR(madvise(p + PAGE / 2, PAGE, MADV_WILLNEED), EINVAL);
    CHECK_EQ(p[1], 1);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "ENOMEM Addresses in the specified range are not currently mapped, or are outside the
 * address space of the process." */
TEST(unmapped_range_is_enomem) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PAGE, PAGE));
    CHECK_ERR(madvise(p + PAGE, PAGE, MADV_NORMAL), ENOMEM);
    CHECK_ERR(madvise(p, 3 * PAGE, MADV_WILLNEED), ENOMEM);
    CHECK_ERR(madvise(p, 3 * PAGE, MADV_DONTNEED), ENOMEM);
    CHECK_OK(munmap(p, 3 * PAGE));
    CHECK_ERR(madvise(p, PAGE, MADV_DONTNEED), ENOMEM);
    CHECK_ERR(madvise((void *)0xffff800000000000UL, PAGE, MADV_NORMAL), ENOMEM);
}
