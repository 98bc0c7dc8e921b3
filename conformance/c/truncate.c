/* truncate(2) and ftruncate(2): growing and shrinking regular files, and the errors. Each
 * case works in its own scratch directory under /tmp. */
#include "scratch.h"

static long ktruncate(const char *path, long len) {
    return syscall(SYS_truncate, path, len);
}
static long kftruncate(int fd, long len) {
    return syscall(SYS_ftruncate, fd, len);
}

static long size_of(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : st.st_size;
}

static int all_zero(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* "If the file previously was shorter, it is extended, and the extended part reads as null
 * bytes ('\0')." */
TEST(ftruncate_grows_with_zeros) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "abc"), 3);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(kftruncate(fd, 10000), 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 10000);
    static char buf[10100];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), 10000);
    CHECK(!memcmp(buf, "abc", 3));
    CHECK(all_zero(buf + 3, 9997));
    CHECK_EQ(buf[10000], 'x');
    CHECK_OK(close(fd));
}

/* "If the file previously was larger than this size, the extra data is lost." Growing it again
 * brings back zeros, not the old data. */
TEST(ftruncate_shrinks_and_old_data_is_gone) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(kftruncate(fd, 4), 0);
    CHECK_EQ(size_of(P("f")), 4);
    char buf[16];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), 4);
    CHECK(!memcmp(buf, "0123x", 5));
    CHECK_EQ(kftruncate(fd, 8), 0);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 8);
    CHECK(!memcmp(buf, "0123", 4));
    CHECK(all_zero(buf + 4, 4));
    CHECK_EQ(kftruncate(fd, 0), 0);
    CHECK_EQ(size_of(P("f")), 0);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 0);
    CHECK_OK(close(fd));
}

/* The file offset is not changed by truncation: "If the size changed ... the file offset is
 * not changed", so a read past the new end returns 0 and a write there leaves a hole. */
TEST(offset_is_unchanged) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 8, SEEK_SET), 8);
    CHECK_EQ(kftruncate(fd, 2), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 8);
    char buf[16];
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_EQ(write(fd, "Z", 1), 1);
    CHECK_EQ(size_of(P("f")), 9);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 9);
    CHECK(!memcmp(buf, "01", 2));
    CHECK(all_zero(buf + 2, 6));
    CHECK_EQ(buf[8], 'Z');
    CHECK_OK(close(fd));
}

/* truncate(2) by path does the same, following symbolic links. */
TEST(truncate_by_path) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    CHECK_OK(symlink("f", P("l")));
    CHECK_EQ(ktruncate(P("f"), 3), 0);
    CHECK_EQ(size_of(P("f")), 3);
    CHECK_EQ(ktruncate(P("l"), 6), 0);
    CHECK_EQ(size_of(P("f")), 6);
    struct stat st;
    CHECK_OK(lstat(P("l"), &st));
    CHECK_EQ(st.st_size, 1);
    char buf[16];
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 6);
    CHECK(!memcmp(buf, "012\0\0\0", 6));
    /* Truncating to the current size changes nothing. */
    CHECK_EQ(ktruncate(P("f"), 6), 0);
    CHECK_EQ(size_of(P("f")), 6);
}

/* "EINVAL The argument length is negative or larger than the maximum file size." */
TEST(negative_length_is_einval) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "abc"), 3);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_ERR(kftruncate(fd, -1), EINVAL);
    CHECK_ERR(ktruncate(P("f"), -1), EINVAL);
    CHECK_ERR(ktruncate(P("f"), -4096), EINVAL);
    CHECK_EQ(size_of(P("f")), 3);
    CHECK_OK(close(fd));
}

/* ftruncate(2): "EINVAL or EBADF The file descriptor fd is not open for writing. POSIX permits,
 * and portable applications should handle, either error for this case. (Linux produces
 * EINVAL.)" A directory or an O_PATH descriptor cannot be truncated either. */
TEST(ftruncate_read_only_fd_is_einval) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("f"), "abc"), 3);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(kftruncate(fd, 0), EINVAL);
    CHECK_ERR(kftruncate(fd, 10), EINVAL);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("f")), 3);
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_ERR(kftruncate(fd, 0), EINVAL);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    CHECK_ERR(kftruncate(fd, 0), EBADF);
    CHECK_OK(close(fd));
    CHECK_ERR(kftruncate(1000, 0), EBADF);
    /* Write-only is enough. */
    fd = open(P("f"), O_WRONLY);
    CHECK(fd >= 0);
    CHECK_EQ(kftruncate(fd, 1), 0);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("f")), 1);
}

/* truncate(2): "EISDIR The named file is a directory"; "ENOENT The named file does not
 * exist"; "ENOTDIR A component of the path prefix is not a directory". */
TEST(truncate_path_errors) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("f"), "abc"), 3);
    CHECK_ERR(ktruncate(P("d"), 0), EISDIR);
    CHECK_ERR(ktruncate(P("missing"), 0), ENOENT);
    CHECK_ERR(ktruncate(P("f/x"), 0), ENOTDIR);
    CHECK_ERR(ktruncate("", 0), ENOENT);
    CHECK_ERR(ktruncate(NULL, 0), EFAULT);
    CHECK(!exists(P("missing")));
}

/* "If the size changed, then the st_ctime and st_mtime fields ... for the file are
 * updated". */
TEST(truncate_updates_times) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    struct stat a, b;
    CHECK_OK(stat(P("f"), &a));
    sleep_ms(30);
    CHECK_EQ(ktruncate(P("f"), 5), 0);
    CHECK_OK(stat(P("f"), &b));
    CHECK(b.st_mtim.tv_sec > a.st_mtim.tv_sec ||
          (b.st_mtim.tv_sec == a.st_mtim.tv_sec && b.st_mtim.tv_nsec > a.st_mtim.tv_nsec));
    CHECK(b.st_ctim.tv_sec > a.st_ctim.tv_sec ||
          (b.st_ctim.tv_sec == a.st_ctim.tv_sec && b.st_ctim.tv_nsec > a.st_ctim.tv_nsec));
}

/* A file opened O_APPEND can be truncated, and the next append lands at the new end. */
TEST(append_after_truncate_lands_at_new_end) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_EQ(kftruncate(fd, 4), 0);
    CHECK_EQ(write(fd, "ab", 2), 2);
    CHECK_OK(close(fd));
    char buf[16];
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 6);
    CHECK(!strcmp(buf, "0123ab"));
}

/* truncate(2): "EACCES ... The named file is not writable by the user" (root bypasses
 * permission bits). ftruncate(2) checks only how the descriptor was opened: a file made
 * read-only after opening can still be truncated through it. */
TEST(truncate_needs_write_permission) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_OK(chmod(P("f"), 0444));
    if (geteuid() == 0) {
        CHECK_EQ(ktruncate(P("f"), 8), 0);
        CHECK_EQ(size_of(P("f")), 8);
    } else {
        CHECK_ERR(ktruncate(P("f"), 8), EACCES);
        CHECK_EQ(size_of(P("f")), 10);
    }
    CHECK_EQ(kftruncate(fd, 2), 0);
    CHECK_EQ(size_of(P("f")), 2);
    CHECK_OK(close(fd));
}
