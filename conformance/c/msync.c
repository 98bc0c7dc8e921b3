/* msync(2): flushing a file mapping back to the file, and the argument checks. */
#include "mm.h"

/* "MS_SYNC Requests an update and waits for it to complete": afterwards the file holds what
 * was stored through the mapping, as seen through a new open file description. */
TEST(ms_sync_writes_shared_mapping_to_file) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    memcpy(p + PAGE + 7, "synced", 6);
    CHECK_EQ(msync(p, 2 * PAGE, MS_SYNC), 0);
    CHECK_OK(close(fd));
    char buf[PAGE * 2 + 1];
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 2 * PAGE);
    CHECK(memcmp(buf + PAGE + 7, "synced", 6) == 0);
    CHECK_EQ(buf[PAGE + 6], 'B');
    CHECK_EQ(buf[0], 'A');
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* "MS_ASYNC Specifies that an update be scheduled, but the call returns immediately." */
TEST(ms_async_and_invalidate_are_accepted) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 'a';
    CHECK_EQ(msync(p, PAGE, MS_ASYNC), 0);
    CHECK_EQ(msync(p, PAGE, MS_SYNC | MS_INVALIDATE), 0);
    CHECK_EQ(msync(p, PAGE, MS_ASYNC | MS_INVALIDATE), 0);
    /* The data stays what was stored. */
    CHECK_EQ(p[0], 'a');
    char c;
    CHECK_EQ(pread(fd, &c, 1, 0), 1);
    CHECK_EQ(c, 'a');
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* Anonymous memory has nothing to write back: msync succeeds and changes nothing. */
TEST(anonymous_mapping_is_ok) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 1;
    CHECK_EQ(msync(p, 2 * PAGE, MS_SYNC), 0);
    CHECK_EQ(msync(p, 2 * PAGE, MS_ASYNC), 0);
    CHECK_EQ(p[0], 1);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* MAP_PRIVATE changes "are not carried through to the underlying file", msync or not. */
TEST(private_mapping_changes_not_written) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 'p', PAGE);
    CHECK_EQ(msync(p, PAGE, MS_SYNC), 0);
    char c;
    CHECK_EQ(pread(fd, &c, 1, 100), 1);
    CHECK_EQ(c, 'A');
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* "EINVAL ... flags specifies both MS_SYNC and MS_ASYNC." */
TEST(async_and_sync_together_is_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(msync(p, PAGE, MS_ASYNC | MS_SYNC), EINVAL);
    CHECK_ERR(msync(p, PAGE, MS_ASYNC | MS_SYNC | MS_INVALIDATE), EINVAL);
    CHECK_OK(munmap(p, PAGE));
}

/* "EINVAL addr is not a multiple of PAGESIZE; or any bit other than MS_ASYNC | MS_INVALIDATE
 * | MS_SYNC is set in flags." */
TEST(unaligned_address_is_einval) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(msync(p + 1, PAGE, MS_SYNC), EINVAL);
    CHECK_ERR(msync(p + PAGE / 2, PAGE, MS_ASYNC), EINVAL);
    CHECK_OK(munmap(p, 2 * PAGE));
}

TEST(unknown_flag_bits_are_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(msync(p, PAGE, MS_SYNC | 0x8), EINVAL);
    CHECK_ERR(msync(p, PAGE, MS_ASYNC | 0x100), EINVAL);
    CHECK_ERR(msync(p, PAGE, 0x40000000), EINVAL);
    CHECK_OK(munmap(p, PAGE));
}

/* "ENOMEM The indicated memory (or part of it) was not mapped." */
TEST(unmapped_range_is_enomem) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PAGE, PAGE));
    CHECK_ERR(msync(p + PAGE, PAGE, MS_SYNC), ENOMEM);
    CHECK_ERR(msync(p, 3 * PAGE, MS_SYNC), ENOMEM);
    CHECK_ERR(msync(p, 3 * PAGE, MS_ASYNC), ENOMEM);
    CHECK_EQ(msync(p, PAGE, MS_SYNC), 0);
    CHECK_OK(munmap(p, 3 * PAGE));
    CHECK_ERR(msync(p, PAGE, MS_SYNC), ENOMEM);
}

/* "EBUSY MS_INVALIDATE was specified in flags, and a memory lock exists for the specified
 * address range." */
TEST(invalidate_on_locked_range_is_ebusy) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(mlock(p + PAGE, PAGE));
    CHECK_ERR(msync(p, 2 * PAGE, MS_SYNC | MS_INVALIDATE), EBUSY);
    CHECK_ERR(msync(p + PAGE, PAGE, MS_ASYNC | MS_INVALIDATE), EBUSY);
    CHECK_EQ(msync(p, PAGE, MS_SYNC | MS_INVALIDATE), 0);
    CHECK_EQ(msync(p, 2 * PAGE, MS_SYNC), 0);
    CHECK_OK(munlock(p + PAGE, PAGE));
    CHECK_EQ(msync(p, 2 * PAGE, MS_SYNC | MS_INVALIDATE), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd);
}
