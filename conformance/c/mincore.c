/* mincore(2): which pages are resident, and the argument checks. "The least significant bit
 * of each byte will be set if the corresponding page is currently resident in memory, and be
 * clear otherwise. (The settings of the other bits in each byte are undefined.)" */
#include "mm.h"

TEST(written_pages_are_resident) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 1;
    p[2 * PAGE + 5] = 1;
    unsigned char vec[4] = {0};
    CHECK_EQ(mincore(p, 4 * PAGE, vec), 0);
    CHECK_EQ(vec[0] & 1, 1);
    CHECK_EQ(vec[2] & 1, 1);
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* Anonymous memory gets its pages on the first touch: before that none is resident, and
 * MADV_DONTNEED gives the page back. */
TEST(untouched_and_dropped_anonymous_pages_are_not_resident) {
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[PAGE] = 1;
    unsigned char vec[4] = {0};
    CHECK_EQ(mincore(p, 4 * PAGE, vec), 0);
    CHECK_EQ(vec[0] & 1, 0);
    CHECK_EQ(vec[1] & 1, 1);
    CHECK_EQ(vec[2] & 1, 0);
    CHECK_EQ(vec[3] & 1, 0);
    CHECK_OK(madvise(p + PAGE, PAGE, MADV_DONTNEED));
    CHECK_EQ(resident(p + PAGE), 0);
    CHECK_OK(munmap(p, 4 * PAGE));
}

/* A file mapping reports the file's pages in the page cache, touched through it or not: the
 * file was just written, so all of it is in memory. */
TEST(file_pages_in_page_cache_are_resident) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 3);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    unsigned char vec[3] = {0};
    CHECK_EQ(mincore(p, 3 * PAGE, vec), 0);
    for (int i = 0; i < 3; i++) CHECK_EQ(vec[i] & 1, 1);
    CHECK_OK(munmap(p, 3 * PAGE));
    close(fd);
}

/* "vec must point to an array containing at least (length+PAGE_SIZE-1) / PAGE_SIZE bytes":
 * one byte per page, the length rounded up, and nothing written past them. */
TEST(one_byte_per_page_length_rounded_up) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 1, 3 * PAGE);
    unsigned char vec[4] = {0, 0, 0xa5, 0xa5};
    CHECK_EQ(mincore(p, PAGE + 1, vec), 0);
    CHECK_EQ(vec[0] & 1, 1);
    CHECK_EQ(vec[1] & 1, 1);
    CHECK_EQ(vec[2], 0xa5);
    CHECK_EQ(vec[3], 0xa5);
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* "EINVAL addr is not a multiple of the page size." */
TEST(unaligned_address_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    unsigned char vec[2];
    CHECK_ERR(mincore(p + 1, PAGE, vec), EINVAL);
    CHECK_ERR(mincore(p + PAGE / 2, PAGE, vec), EINVAL);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "ENOMEM length is greater than (TASK_SIZE - addr). ... or addr to addr + length contained
 * unmapped memory." */
TEST(unmapped_range_is_enomem) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PAGE, PAGE));
    unsigned char vec[3];
    CHECK_ERR(mincore(p + PAGE, PAGE, vec), ENOMEM);
    CHECK_ERR(mincore(p, 3 * PAGE, vec), ENOMEM);
    CHECK_EQ(mincore(p, PAGE, vec), 0);
    CHECK_ERR(mincore(p, 1UL << 50, vec), ENOMEM);
    CHECK_OK(munmap(p, 3 * PAGE));
    CHECK_ERR(mincore(p, PAGE, vec), ENOMEM);
}

/* "EFAULT vec points to an invalid address." */
TEST(bad_vector_is_efault) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    unsigned char *ro = mmap(NULL, PAGE, PROT_READ, ANON, -1, 0);
    CHECK(ro != MAP_FAILED);
    CHECK_ERR(mincore(p, 2 * PAGE, (unsigned char *)8), EFAULT);
    CHECK_ERR(mincore(p, 2 * PAGE, ro), EFAULT);
    CHECK_OK(munmap(ro, PAGE));
    CHECK_OK(munmap(p, 2 * PAGE));
}
