/* mremap(2): growing, shrinking and moving mappings, and the argument checks. Whether a range
 * is still mapped is observed without touching it (is_free, kwrite). */
#include "mm.h"

/* Where nothing is mapped: a range of `len` bytes that was mapped and given back. */
static unsigned char *free_range(size_t len) {
    unsigned char *p = mmap(NULL, len, PROT_NONE, ANON, -1, 0);
    if (p == MAP_FAILED) return NULL;
    munmap(p, len);
    return p;
}

/* Fills each page k of [p, p+pages*PAGE) with 'a' + k. */
static void fill_pages(unsigned char *p, int pages) {
    for (int k = 0; k < pages; k++) memset(p + k * PAGE, 'a' + k, PAGE);
}

static int pages_are(const unsigned char *p, int pages) {
    for (int k = 0; k < pages; k++)
        if (!all_are(p + k * PAGE, PAGE, 'a' + k)) return 0;
    return 1;
}

/* "mremap() expands (or shrinks) an existing memory mapping": with room after it, in place;
 * the contents stay and the new pages are zero-filled. */
TEST(grow_in_place_keeps_contents) {
    unsigned char *r = free_range(4 * PAGE);
    CHECK(r != NULL);
    unsigned char *p = mmap(r, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(p == r);
    fill_pages(p, 2);
    unsigned char *q = mremap(p, 2 * PAGE, 4 * PAGE, 0);
    CHECK_EQ((uintptr_t)q, (uintptr_t)p);
    CHECK(pages_are(q, 2));
    CHECK(all_are(q + 2 * PAGE, 2 * PAGE, 0));
    q[4 * PAGE - 1] = 9;
    CHECK_EQ(q[4 * PAGE - 1], 9);
    CHECK_OK(munmap(q, 4 * PAGE));
}

/* Shrinking keeps the start and unmaps the tail. */
TEST(shrink_unmaps_the_tail) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    fill_pages(p, 4);
    unsigned char *q = mremap(p, 4 * PAGE, 2 * PAGE, 0);
    CHECK_EQ((uintptr_t)q, (uintptr_t)p);
    CHECK(pages_are(q, 2));
    CHECK(is_free(p + 2 * PAGE, 2 * PAGE));
    CHECK_ERR(kwrite(p + 2 * PAGE), EFAULT);
    /* Shrinking with MREMAP_MAYMOVE does not move either. */
    q = mremap(p, 2 * PAGE, PAGE, MREMAP_MAYMOVE);
    CHECK_EQ((uintptr_t)q, (uintptr_t)p);
    CHECK(is_free(p + PAGE, PAGE));
    CHECK_OK(munmap(p, PAGE));
}

/* "By default, if there is not sufficient space to expand a mapping at its current location,
 * then mremap() fails" with ENOMEM ("The memory area cannot be expanded at the current
 * virtual address, and the MREMAP_MAYMOVE flag is not set"). */
TEST(grow_blocked_without_maymove_is_enomem) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(mprotect(p + 2 * PAGE, PAGE, PROT_READ));
    p[0] = 5;
    CHECK_ERR(mremap(p, PAGE, 3 * PAGE, 0) == MAP_FAILED ? -1 : 0, ENOMEM);
    CHECK_ERR(mremap(p, 2 * PAGE, 4 * PAGE, 0) == MAP_FAILED ? -1 : 0, ENOMEM);
    CHECK_EQ(p[0], 5);
    CHECK_EQ(kwrite(p + PAGE), 0);
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* "MREMAP_MAYMOVE ... the kernel is permitted to relocate the mapping to a new virtual
 * address": the contents move with it and the old range is unmapped. */
TEST(maymove_relocates_with_contents) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    /* A different protection after two pages blocks growth in place. */
    CHECK_OK(mprotect(p + 2 * PAGE, PAGE, PROT_READ));
    fill_pages(p, 2);
    unsigned char *q = mremap(p, 2 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED);
    CHECK(q != p);
    CHECK(pages_are(q, 2));
    CHECK(all_are(q + 2 * PAGE, 6 * PAGE, 0));
    q[8 * PAGE - 1] = 1;
    CHECK(is_free(p, 2 * PAGE));
    CHECK_ERR(kwrite(p + 2 * PAGE - 16), EFAULT);
    CHECK_OK(munmap(q, 8 * PAGE));
    CHECK_OK(munmap(p + 2 * PAGE, PAGE));
}

/* Only the given part of a mapping moves; the rest stays where it was. */
TEST(move_part_of_a_mapping) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    fill_pages(p, 4);
    unsigned char *t = free_range(2 * PAGE);
    CHECK(t != NULL);
    unsigned char *q = mremap(p + PAGE, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, t);
    CHECK_EQ((uintptr_t)q, (uintptr_t)t);
    CHECK(all_are(q, PAGE, 'b'));
    CHECK(all_are(q + PAGE, PAGE, 'c'));
    CHECK(is_free(p + PAGE, 2 * PAGE));
    CHECK(all_are(p, PAGE, 'a'));
    CHECK(all_are(p + 3 * PAGE, PAGE, 'd'));
    CHECK_OK(munmap(p, 4 * PAGE));
    CHECK_OK(munmap(q, 2 * PAGE));
}

/* "MREMAP_FIXED ... any previous mapping at the address range specified by new_address and
 * new_size is unmapped." */
TEST(fixed_moves_over_an_existing_mapping) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    unsigned char *t = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED && t != MAP_FAILED);
    fill_pages(p, 2);
    memset(t, 0xee, 4 * PAGE);
    unsigned char *q = mremap(p, 2 * PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, t + PAGE);
    CHECK_EQ((uintptr_t)q, (uintptr_t)(t + PAGE));
    CHECK(pages_are(q, 2));
    CHECK(all_are(q + 2 * PAGE, PAGE, 0));
    CHECK(all_are(t, PAGE, 0xee));
    CHECK(is_free(p, 2 * PAGE));
    CHECK_OK(munmap(t, 4 * PAGE));
}

/* "MREMAP_DONTUNMAP ... the mapping is moved to a new address but the old mapping is not
 * unmapped"; for private anonymous memory the old range is then zero-filled on access. It
 * "can be used only with private anonymous mappings" (before Linux 5.13) and "old_size must
 * equal new_size". */
TEST(dontunmap_leaves_old_range_zero_filled) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    fill_pages(p, 2);
    unsigned char *q = mremap(p, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    CHECK(q != MAP_FAILED);
    CHECK(q != p);
    CHECK(pages_are(q, 2));
    CHECK(!is_free(p, 2 * PAGE));
    CHECK(all_are(p, 2 * PAGE, 0));
    p[0] = 3;
    CHECK_EQ(p[0], 3);
    CHECK_EQ(q[0], 'a');
    CHECK_OK(munmap(p, 2 * PAGE));
    CHECK_OK(munmap(q, 2 * PAGE));
}

/* "If the value of old_size is zero, and old_address refers to a shareable mapping (see the
 * description of MAP_SHARED in mmap(2)), then mremap() will create a new mapping of the same
 * pages." */
TEST(zero_old_size_duplicates_shared_mapping) {
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    p[10] = 'x';
    unsigned char *q = mremap(p, 0, PAGE, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED);
    CHECK(q != p);
    CHECK_EQ(q[10], 'x');
    q[11] = 'y';
    CHECK_EQ(p[11], 'y');
    CHECK_OK(munmap(p, PAGE));
    CHECK_EQ(q[10], 'x');
    CHECK_OK(munmap(q, PAGE));
}

/* A moved file mapping keeps its file offset: grown and moved, it maps the pages that follow
 * in the file, and its stores still reach the file. */
TEST(moved_file_mapping_keeps_offsets) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 4);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, PAGE);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[0], 'B');
    unsigned char *t = free_range(3 * PAGE);
    CHECK(t != NULL);
    unsigned char *q = mremap(p, 2 * PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, t);
    CHECK_EQ((uintptr_t)q, (uintptr_t)t);
    CHECK(all_are(q, PAGE, 'B'));
    CHECK(all_are(q + PAGE, PAGE, 'C'));
    CHECK(all_are(q + 2 * PAGE, PAGE, 'D'));
    q[2 * PAGE] = 'm';
    char c;
    CHECK_EQ(pread(fd, &c, 1, 3 * PAGE), 1);
    CHECK_EQ(c, 'm');
    CHECK_OK(munmap(q, 3 * PAGE));
    close(fd);
}

/* "EINVAL ... a value other than MREMAP_MAYMOVE or MREMAP_FIXED or MREMAP_DONTUNMAP was
 * specified in flags". */
TEST(unknown_flags_are_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, PAGE, 0x8), EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, 2 * PAGE, MREMAP_MAYMOVE | 0x100), EINVAL);
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* "EINVAL old_address was not page aligned" */
TEST(unaligned_old_address_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(syscall(SYS_mremap, p + 1, PAGE, PAGE, 0), EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p + 100, PAGE, 2 * PAGE, MREMAP_MAYMOVE), EINVAL);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "EINVAL ... MREMAP_FIXED or MREMAP_DONTUNMAP was specified without also specifying
 * MREMAP_MAYMOVE"; "MREMAP_DONTUNMAP was specified and old_size was not equal to new_size";
 * "new_size was zero"; "old_size was zero and old_address does not refer to a shareable
 * mapping"; "the new address range ... overlapped the old address range". */
TEST(inconsistent_arguments_are_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    unsigned char *t = free_range(4 * PAGE);
    CHECK(p != MAP_FAILED && t != NULL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, PAGE, MREMAP_FIXED, t), EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, PAGE, MREMAP_DONTUNMAP), EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, 0, MREMAP_MAYMOVE), EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p, 0, PAGE, MREMAP_MAYMOVE), EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, p + PAGE),
              EINVAL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, t + 1), EINVAL);
    CHECK(is_free(t, 4 * PAGE));
    CHECK_EQ(kwrite(p), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "EFAULT Some address in the range old_address to old_address+old_size is an invalid virtual
 * memory address for this process." */
TEST(unmapped_old_range_is_efault) {
    unsigned char *p = free_range(4 * PAGE);
    CHECK(p != NULL);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, 2 * PAGE, 0), EFAULT);
    CHECK_ERR(syscall(SYS_mremap, p, PAGE, 2 * PAGE, MREMAP_MAYMOVE), EFAULT);
    CHECK_ERR(syscall(SYS_mremap, p, 2 * PAGE, PAGE, 0), EFAULT);
    CHECK(is_free(p, 4 * PAGE));
}
