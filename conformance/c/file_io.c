/* read/write on regular files: pread64/pwrite64, lseek, readv/writev, preadv/pwritev,
 * preadv2/pwritev2, holes and end of file; copy_file_range, fallocate, sync and syncfs. Each
 * case works in its own scratch directory under /tmp. */
#include "scratch.h"

#include <sys/uio.h>

static int all_zero(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* A new file in the scratch directory holding s, open read-write at offset 0. */
static int file_with(const char *s) {
    int fd = open(P("f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    if (write(fd, s, strlen(s)) != (long)strlen(s) || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* pread(2): "reads up to count bytes from file descriptor fd at offset offset (from the start
 * of the file) into the buffer starting at buf. The file offset is not changed." */
TEST(pread_does_not_move_offset) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 3, SEEK_SET), 3);
    char buf[16] = {0};
    CHECK_EQ(syscall(SYS_pread64, fd, buf, 4, 5), 4);
    CHECK(!memcmp(buf, "5678", 4));
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    /* Short read at the end; zero past it. */
    CHECK_EQ(syscall(SYS_pread64, fd, buf, 16, 8), 2);
    CHECK(!memcmp(buf, "89", 2));
    CHECK_EQ(syscall(SYS_pread64, fd, buf, 16, 10), 0);
    CHECK_EQ(syscall(SYS_pread64, fd, buf, 16, 1000), 0);
    /* The ordinary read continues from where the offset was. */
    CHECK_EQ(read(fd, buf, 2), 2);
    CHECK(!memcmp(buf, "34", 2));
    CHECK_OK(close(fd));
}

/* pwrite(2): "writes up to count bytes from the buffer starting at buf to the file descriptor
 * fd at offset offset. The file offset is not changed." Writing past the end leaves a hole
 * that reads as zeros. */
TEST(pwrite_does_not_move_offset) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 4, SEEK_SET), 4);
    CHECK_EQ(syscall(SYS_pwrite64, fd, "ab", 2, 1), 2);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
    CHECK_EQ(syscall(SYS_pwrite64, fd, "Z", 1, 20), 1);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 21);
    char buf[32];
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 21);
    CHECK(!memcmp(buf, "0ab3456789", 10));
    CHECK(all_zero(buf + 10, 10));
    CHECK_EQ(buf[20], 'Z');
    CHECK_OK(close(fd));
}

/* pread/pwrite fail with the errors of read, write and lseek: EINVAL for a negative offset
 * (as lseek: "the resulting file offset would be negative"), "EBADF fd is not a valid file
 * descriptor or is not open for reading" (writing), "EISDIR fd refers to a directory". */
TEST(pread_pwrite_errors) {
    const char *dir = scratch();
    CHECK(dir);
    int fd = file_with("abc");
    CHECK(fd >= 0);
    char buf[4];
    CHECK_ERR(syscall(SYS_pread64, fd, buf, 1, -1L), EINVAL);
    CHECK_ERR(syscall(SYS_pwrite64, fd, "x", 1, -1L), EINVAL);
    CHECK_ERR(syscall(SYS_pread64, 1000, buf, 1, 0), EBADF);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_WRONLY);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_pread64, fd, buf, 1, 0), EBADF);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_pwrite64, fd, "x", 1, 0), EBADF);
    CHECK_OK(close(fd));
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_pread64, fd, buf, 1, 0), EISDIR);
    CHECK_ERR(read(fd, buf, 1), EISDIR);
    CHECK_OK(close(fd));
}

/* lseek(2): SEEK_SET "The file offset is set to offset bytes", SEEK_CUR "to its current
 * location plus offset bytes", SEEK_END "to the size of the file plus offset bytes"; "Upon
 * successful completion, lseek() returns the resulting offset location". */
TEST(lseek_set_cur_end) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    char c;
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_EQ(lseek(fd, 7, SEEK_SET), 7);
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK_EQ(c, '7');
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 8);
    CHECK_EQ(lseek(fd, -3, SEEK_CUR), 5);
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK_EQ(c, '5');
    CHECK_EQ(lseek(fd, 2, SEEK_CUR), 8);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
    CHECK_EQ(lseek(fd, -1, SEEK_END), 9);
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK_EQ(c, '9');
    /* Seeking past the end is allowed and does not change the size. */
    CHECK_EQ(lseek(fd, 100, SEEK_END), 110);
    CHECK_EQ(lseek(fd, 1000, SEEK_SET), 1000);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 10);
    CHECK_EQ(read(fd, &c, 1), 0);
    /* The raw system call agrees with the wrapper. */
    CHECK_EQ(syscall(SYS_lseek, fd, 4, SEEK_SET), 4);
    CHECK_OK(close(fd));
}

/* "lseek() allows the file offset to be set beyond the end of the file ... If data is later
 * written at this point, subsequent reads of the data in the gap (a "hole") return null bytes
 * ('\0') until data is actually written into the gap." */
TEST(seek_past_end_then_write_leaves_zero_hole) {
    CHECK(scratch());
    int fd = file_with("head");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 8192, SEEK_END), 8196);
    CHECK_EQ(write(fd, "tail", 4), 4);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 8200);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 8200);
    static char buf[8300];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 8200);
    CHECK(!memcmp(buf, "head", 4));
    CHECK(all_zero(buf + 4, 8192));
    CHECK(!memcmp(buf + 8196, "tail", 4));
    CHECK_EQ(buf[8200], 'x');
    CHECK_OK(close(fd));
}

/* "EINVAL ... the resulting file offset would be negative"; the offset stays where it was. */
TEST(negative_offset_is_einval) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 4, SEEK_SET), 4);
    CHECK_ERR(lseek(fd, -1, SEEK_SET), EINVAL);
    CHECK_ERR(lseek(fd, -5, SEEK_CUR), EINVAL);
    CHECK_ERR(lseek(fd, -11, SEEK_END), EINVAL);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
    CHECK_EQ(lseek(fd, -4, SEEK_CUR), 0);
    CHECK_EQ(lseek(fd, -10, SEEK_END), 0);
    CHECK_OK(close(fd));
}

/* "EINVAL whence is not valid." SEEK_DATA (3) and SEEK_HOLE (4) are valid; 5 and up are not.
 * "EBADF fd is not an open file descriptor." */
TEST(bad_whence_is_einval) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
    CHECK_ERR(lseek(fd, 0, 5), EINVAL);
    CHECK_ERR(lseek(fd, 0, 100), EINVAL);
    CHECK_ERR(lseek(fd, 0, -1), EINVAL);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 2);
    CHECK_ERR(lseek(1000, 0, SEEK_SET), EBADF);
    CHECK_ERR(lseek(-1, 0, SEEK_SET), EBADF);
    CHECK_OK(close(fd));
}

/* SEEK_DATA: "Adjust the file offset to the next location in the file greater than or equal
 * to offset containing data"; SEEK_HOLE: "... to the next hole", where "there is an implicit
 * hole at the end of any file"; "ENXIO whence is SEEK_DATA or SEEK_HOLE, and offset is beyond
 * the end of the file". A file without holes is data up to its size whatever the file
 * system. */
TEST(seek_data_and_hole_on_dense_file) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 0, SEEK_DATA), 0);
    CHECK_EQ(lseek(fd, 3, SEEK_DATA), 3);
    CHECK_EQ(lseek(fd, 0, SEEK_HOLE), 10);
    CHECK_EQ(lseek(fd, 9, SEEK_HOLE), 10);
    CHECK_ERR(lseek(fd, 10, SEEK_DATA), ENXIO);
    CHECK_ERR(lseek(fd, 10, SEEK_HOLE), ENXIO);
    CHECK_ERR(lseek(fd, 50, SEEK_DATA), ENXIO);
    CHECK_ERR(lseek(fd, -1, SEEK_DATA), ENXIO);
    /* The failed seeks left the offset where the last good one (SEEK_HOLE) put it. */
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 10);
    CHECK_OK(close(fd));
}

/* Directories can be seeked (to restart a listing); reading them with read(2) is EISDIR. */
TEST(lseek_on_directory_works) {
    const char *dir = scratch();
    CHECK(dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    char buf[1024];
    CHECK(syscall(SYS_getdents64, fd, buf, sizeof buf) > 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_ERR(lseek(fd, -1, SEEK_SET), EINVAL);
    CHECK_ERR(read(fd, buf, sizeof buf), EISDIR);
    CHECK_OK(close(fd));
}

/* read(2): "On success, the number of bytes read is returned (zero indicates end of file)";
 * reads do not go past the end and keep returning 0 there. */
TEST(read_at_eof_returns_zero) {
    CHECK(scratch());
    int fd = file_with("abc");
    CHECK(fd >= 0);
    char buf[16];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), 3);
    CHECK(!memcmp(buf, "abcx", 4));
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    /* Data appended (through the same descriptor) is then readable. */
    CHECK_EQ(pwrite(fd, "de", 2, 3), 2);
    CHECK_EQ(read(fd, buf, sizeof buf), 2);
    CHECK(!memcmp(buf, "de", 2));
    /* An empty file is at end of file straight away. */
    int e = open(P("empty"), O_RDWR | O_CREAT, 0644);
    CHECK(e >= 0);
    CHECK_EQ(read(e, buf, sizeof buf), 0);
    CHECK_OK(close(e));
    CHECK_OK(close(fd));
}

/* Writes move the offset by the count written and overwrite in place; the size is the
 * largest offset written. */
TEST(write_overwrites_and_extends) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 8, SEEK_SET), 8);
    CHECK_EQ(write(fd, "abcd", 4), 4);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 12);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(write(fd, "X", 1), 1);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 12);
    char buf[16] = {0};
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 12);
    CHECK(!strcmp(buf, "X1234567abcd"));
    /* A write of 0 bytes changes nothing. */
    CHECK_EQ(write(fd, "", 0), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 1);
    CHECK_OK(close(fd));
}

/* writev(2) "writes iovcnt buffers of data described by iov to the file", in order;
 * readv(2) "reads iovcnt buffers from the file ... into the buffers described by iov",
 * filling each before the next. Both move the offset. */
TEST(readv_writev_on_files) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    char a[] = "hello", b[] = ", ", c[] = "world";
    struct iovec wv[4] = {{a, 5}, {NULL, 0}, {b, 2}, {c, 5}};
    CHECK_EQ(writev(fd, wv, 4), 12);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 12);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char x[3], y[4], z[10];
    memset(z, '#', sizeof z);
    struct iovec rv[3] = {{x, 3}, {y, 4}, {z, 10}};
    CHECK_EQ(readv(fd, rv, 3), 12);
    CHECK(!memcmp(x, "hel", 3));
    CHECK(!memcmp(y, "lo, ", 4));
    CHECK(!memcmp(z, "world#", 6));
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 12);
    CHECK_EQ(readv(fd, rv, 3), 0);
    CHECK_OK(close(fd));
}

/* preadv(2)/pwritev(2): "The preadv() system call combines the functionality of readv() and
 * pread(2) ... the file offset is not changed." */
TEST(preadv_pwritev) {
    CHECK(scratch());
    int fd = file_with("..........");
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 1, SEEK_SET), 1);
    char a[] = "AB", b[] = "CDE";
    struct iovec wv[2] = {{a, 2}, {b, 3}};
    CHECK_EQ(pwritev(fd, wv, 2, 4), 5);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 1);
    /* Past the end: a hole, then the data. */
    CHECK_EQ(pwritev(fd, wv, 1, 14), 2);
    char x[6], y[12];
    memset(y, '#', sizeof y);
    struct iovec rv[2] = {{x, 6}, {y, 12}};
    CHECK_EQ(preadv(fd, rv, 2, 2), 14);
    CHECK(!memcmp(x, "..ABCD", 6));
    CHECK(!memcmp(y, "E.", 2));
    CHECK(all_zero(y + 2, 4));
    CHECK(!memcmp(y + 6, "AB##", 4));
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 1);
    CHECK_EQ(preadv(fd, rv, 2, 16), 0);
    CHECK_ERR(preadv(fd, rv, 2, -1), EINVAL);
    CHECK_OK(close(fd));
}

/* copy_file_range(2): "copies up to len bytes of data from the source file descriptor fd_in to
 * the target file descriptor fd_out ... If off_in is NULL, then bytes are read from fd_in
 * starting from the file offset, and the file offset is adjusted by the number of bytes
 * copied." With off_in given, "*off_in is adjusted by the number of bytes copied" and the file
 * offset is untouched (likewise for the output). It stops at the end of the input. */
TEST(copy_file_range_copies_and_moves_offsets) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("src"), "0123456789"), 10);
    int in = open(P("src"), O_RDONLY);
    int out = open(P("dst"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(in >= 0 && out >= 0);
    CHECK_EQ(copy_file_range(in, NULL, out, NULL, 4, 0), 4);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 4);
    CHECK_EQ(lseek(out, 0, SEEK_CUR), 4);
    loff_t off_in = 6, off_out = 10;
    CHECK_EQ(copy_file_range(in, &off_in, out, &off_out, 100, 0), 4);
    CHECK_EQ(off_in, 10);
    CHECK_EQ(off_out, 14);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 4);
    CHECK_EQ(lseek(out, 0, SEEK_CUR), 4);
    /* At or past the end of the input there is nothing to copy. */
    CHECK_EQ(copy_file_range(in, &off_in, out, NULL, 5, 0), 0);
    off_in = 100;
    CHECK_EQ(copy_file_range(in, &off_in, out, NULL, 5, 0), 0);
    CHECK_EQ(off_in, 100);
    CHECK_EQ(copy_file_range(in, NULL, out, NULL, 0, 0), 0);
    char buf[32] = {0};
    CHECK_EQ(pread(out, buf, sizeof buf, 0), 14);
    CHECK(!memcmp(buf, "0123\0\0\0\0\0\0" "6789", 14));
    CHECK_OK(close(in));
    CHECK_OK(close(out));
}

/* copy_file_range(2) errors: "EINVAL The flags argument is not 0"; "EBADF One or more file
 * descriptors are not valid; or fd_in is not open for reading; or fd_out is not open for
 * writing"; "EBADF The O_APPEND flag is set for the open file description referred to by the
 * file descriptor fd_out"; "EISDIR Either fd_in or fd_out refers to a directory"; "EINVAL
 * Either fd_in or fd_out is not a regular file"; "EINVAL fd_in and fd_out refer to the same
 * file and the source and target ranges overlap"; "EFAULT" for a bad offset pointer. */
TEST(copy_file_range_errors) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("src"), "0123456789"), 10);
    int in = open(P("src"), O_RDONLY);
    int out = open(P("dst"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    int app = open(P("dst"), O_WRONLY | O_APPEND);
    int dir = open(P(""), O_RDONLY | O_DIRECTORY);
    int rw = open(P("src"), O_RDWR);
    CHECK(in >= 0 && out >= 0 && app >= 0 && dir >= 0 && rw >= 0);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(copy_file_range(in, NULL, out, NULL, 4, 1), EINVAL);
    CHECK_ERR(copy_file_range(1000, NULL, out, NULL, 4, 0), EBADF);
    CHECK_ERR(copy_file_range(in, NULL, 1000, NULL, 4, 0), EBADF);
    CHECK_ERR(copy_file_range(out, NULL, in, NULL, 4, 0), EBADF);
    CHECK_ERR(copy_file_range(in, NULL, app, NULL, 4, 0), EBADF);
    CHECK_ERR(copy_file_range(dir, NULL, out, NULL, 4, 0), EISDIR);
    CHECK_ERR(copy_file_range(in, NULL, dir, NULL, 4, 0), EISDIR);
    CHECK_ERR(copy_file_range(p[0], NULL, out, NULL, 4, 0), EINVAL);
    CHECK_ERR(copy_file_range(in, NULL, p[1], NULL, 4, 0), EINVAL);
    CHECK_ERR(copy_file_range(in, (loff_t *)1, out, NULL, 4, 0), EFAULT);
    /* Negative offsets: EINVAL, except that Linux first checks "offsets don't wrap" on them as
     * unsigned numbers, which -1 plus a length does (EOVERFLOW). */
    loff_t neg = -100;
    CHECK_ERR(copy_file_range(in, &neg, out, NULL, 4, 0), EINVAL);
    CHECK_ERR(copy_file_range(in, NULL, out, &neg, 4, 0), EINVAL);
    neg = -1;
    CHECK_ERR(copy_file_range(in, &neg, out, NULL, 4, 0), EOVERFLOW);
    CHECK_ERR(copy_file_range(in, &neg, out, NULL, 0, 0), EINVAL);
    /* Within one file: overlapping ranges are refused, separate ones copy. */
    loff_t a = 0, b = 2;
    CHECK_ERR(copy_file_range(rw, &a, rw, &b, 4, 0), EINVAL);
    b = 6;
    CHECK_EQ(copy_file_range(rw, &a, rw, &b, 4, 0), 4);
    char buf[16];
    CHECK_EQ(get_file(P("src"), buf, sizeof buf), 10);
    CHECK(!strcmp(buf, "0123450123"));
    int fds[] = {in, out, app, dir, rw, p[0], p[1]};
    for (unsigned i = 0; i < sizeof fds / sizeof *fds; i++) CHECK_OK(close(fds[i]));
}

/* fallocate(2): "The default operation (i.e., mode is zero) of fallocate() allocates the disk
 * space within the range specified by offset and len. The file size ... will be changed if
 * offset+len is greater than the file size"; "If the FALLOC_FL_KEEP_SIZE flag is specified in
 * mode ... the file size will not be changed." Allocated bytes read as zeros. */
TEST(fallocate_allocates_and_grows) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "abc", 3), 3);
    CHECK_OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8192));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 3);
    CHECK_OK(fallocate(fd, 0, 100, 50));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 150);
    /* Inside the file it changes nothing. */
    CHECK_OK(fallocate(fd, 0, 0, 10));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 150);
    char buf[150];
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 150);
    CHECK(!memcmp(buf, "abc", 3) && all_zero(buf + 3, 147));
    CHECK_OK(close(fd));
}

/* fallocate(2), FALLOC_FL_PUNCH_HOLE: "Deallocates space (i.e., creates a hole) in the byte
 * range starting at offset and continuing for len bytes. Within the specified range, partial
 * filesystem blocks are zeroed ... The FALLOC_FL_PUNCH_HOLE flag must be ORed with
 * FALLOC_FL_KEEP_SIZE in mode"; the size never changes, even for a range past the end. */
TEST(fallocate_punches_holes) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    CHECK_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3));
    CHECK_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8, 100));
    char buf[16];
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 10);
    CHECK(!memcmp(buf, "01\0\0\0" "567\0\0", 10));
    CHECK_ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 1), EOPNOTSUPP);
    CHECK_OK(close(fd));
}

/* fallocate(2) errors: "EINVAL offset was less than 0, or len was less than or equal to 0";
 * "EBADF fd is not a valid file descriptor, or is not opened for writing"; "ESPIPE fd refers
 * to a pipe or FIFO"; "ENODEV fd does not refer to a regular file or a directory"; "EFBIG
 * offset+len exceeds the maximum file size"; "EOPNOTSUPP The filesystem containing the file
 * referred to by fd does not support this operation; or the mode is not supported". */
TEST(fallocate_errors) {
    CHECK(scratch());
    int fd = file_with("data");
    int ro = open(P("f"), O_RDONLY);
    int null = open("/dev/null", O_WRONLY);
    CHECK(fd >= 0 && ro >= 0 && null >= 0);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(fallocate(fd, 0, 0, 0), EINVAL);
    CHECK_ERR(fallocate(fd, 0, 0, -1), EINVAL);
    CHECK_ERR(fallocate(fd, 0, -1, 1), EINVAL);
    CHECK_ERR(fallocate(ro, 0, 0, 1), EBADF);
    CHECK_ERR(fallocate(1000, 0, 0, 1), EBADF);
    CHECK_ERR(fallocate(p[1], 0, 0, 1), ESPIPE);
    CHECK_ERR(fallocate(p[0], 0, 0, 1), EBADF);
    CHECK_ERR(fallocate(null, 0, 0, 1), ENODEV);
    CHECK_ERR(fallocate(fd, 0, 0x7fffffffffffffffL, 1), EFBIG);
    CHECK_ERR(fallocate(fd, 0x100, 0, 1), EOPNOTSUPP);
    CHECK_ERR(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096), EOPNOTSUPP);
    int fds[] = {fd, ro, null, p[0], p[1]};
    for (unsigned i = 0; i < sizeof fds / sizeof *fds; i++) CHECK_OK(close(fds[i]));
}

/* sync(2) "causes all pending modifications to filesystem metadata and cached file data to be
 * written to the underlying filesystems" and always succeeds; syncfs(2) does so for the file
 * system holding fd: "EBADF fd is not a valid file descriptor." */
TEST(sync_and_syncfs) {
    CHECK(scratch());
    int fd = file_with("data");
    CHECK(fd >= 0);
    CHECK_EQ(syscall(SYS_sync), 0);
    CHECK_OK(syncfs(fd));
    CHECK_ERR(syncfs(1000), EBADF);
    CHECK_ERR(syncfs(-1), EBADF);
    CHECK_OK(close(fd));
}

/* preadv2/pwritev2: "If the offset argument is -1, then the current file offset is used and
 * updated"; any other offset leaves the file offset alone; "EINVAL ... offset is less than
 * zero" otherwise. */
TEST(preadv2_pwritev2_offsets) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    char buf[4] = {0};
    struct iovec iov = {buf, 3};
    CHECK_EQ(preadv2(fd, &iov, 1, -1, 0), 3);
    CHECK(!memcmp(buf, "012", 3));
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    CHECK_EQ(preadv2(fd, &iov, 1, 7, RWF_HIPRI), 3);
    CHECK(!memcmp(buf, "789", 3));
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    struct iovec w = {"ab", 2};
    CHECK_EQ(pwritev2(fd, &w, 1, -1, RWF_DSYNC), 2);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
    CHECK_EQ(pwritev2(fd, &w, 1, 0, RWF_SYNC), 2);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
    CHECK_ERR(preadv2(fd, &iov, 1, -2, 0), EINVAL);
    CHECK_ERR(pwritev2(fd, &w, 1, -5, 0), EINVAL);
    /* The offset is checked before the descriptor. */
    CHECK_ERR(preadv2(1000, &iov, 1, -2, 0), EINVAL);
    char all[16];
    CHECK_EQ(pread(fd, all, sizeof all, 0), 10);
    CHECK(!memcmp(all, "ab2ab56789", 10));
    CHECK_OK(close(fd));
}

/* pwritev2 RWF_APPEND: "The data is always appended to the end of the file. However, if the
 * offset argument is -1, the current file offset is updated." RWF_NOAPPEND (Linux 6.9) does the
 * opposite for a descriptor opened O_APPEND; both at once is EINVAL. */
TEST(pwritev2_append_flags) {
    CHECK(scratch());
    int fd = file_with("0123");
    CHECK(fd >= 0);
    struct iovec w = {"X", 1};
    CHECK_EQ(pwritev2(fd, &w, 1, 0, RWF_APPEND), 1);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_EQ(pwritev2(fd, &w, 1, -1, RWF_APPEND), 1);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 6);
    CHECK_ERR(pwritev2(fd, &w, 1, 0, RWF_APPEND | 0x20), EINVAL);
    int app = open(P("f"), O_WRONLY | O_APPEND);
    CHECK(app >= 0);
    errno = 0;
    long r = pwritev2(app, &w, 1, 1, 0x20 /* RWF_NOAPPEND */);
    CHECK(r == 1 || (r == -1 && errno == EOPNOTSUPP));
    char buf[16] = {0};
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 6);
    CHECK(!memcmp(buf, r == 1 ? "0X23XX" : "0123XX", 6));
    CHECK_OK(close(app));
    CHECK_OK(close(fd));
}

/* preadv2/pwritev2 flags: RWF_NOWAIT on a regular file reads what is there; "EOPNOTSUPP An
 * unknown flag is specified in flags"; RWF_ATOMIC asks for untorn writes, which a read cannot
 * have (EOPNOTSUPP). */
TEST(preadv2_flags) {
    CHECK(scratch());
    int fd = file_with("0123456789");
    CHECK(fd >= 0);
    char buf[4];
    struct iovec iov = {buf, sizeof buf};
    CHECK_EQ(preadv2(fd, &iov, 1, 0, RWF_NOWAIT), 4);
    CHECK_ERR(preadv2(fd, &iov, 1, 0, 0x40 /* RWF_ATOMIC */), EOPNOTSUPP);
    CHECK_ERR(preadv2(fd, &iov, 1, 0, 0x200), EOPNOTSUPP);
    CHECK_ERR(preadv2(fd, &iov, 1, 0, 1 << 30), EOPNOTSUPP);
    CHECK_ERR(pwritev2(fd, &iov, 1, 0, 0x200), EOPNOTSUPP);
    CHECK_ERR(preadv2(1000, &iov, 1, 0, 0), EBADF);
    CHECK_OK(close(fd));
}
