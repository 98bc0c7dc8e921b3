/* fcntl(2) on regular files: duplicating (F_DUPFD, F_DUPFD_CLOEXEC), descriptor flags
 * (F_GETFD/F_SETFD) and file status flags (F_GETFL/F_SETFL). Each case works in its own
 * scratch directory under /tmp. */
#include "scratch.h"

#include <sys/resource.h>

static long kfcntl(int fd, int cmd, long arg) {
    return syscall(SYS_fcntl, fd, cmd, arg);
}

/* F_DUPFD: "Duplicate the file descriptor fd using the lowest-numbered available file
 * descriptor greater than or equal to arg." The copy shares the offset, and its close-on-exec
 * flag is clear. */
TEST(dupfd_lowest_at_least_arg) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(kfcntl(fd, F_DUPFD, 100), 100);
    CHECK_EQ(kfcntl(fd, F_DUPFD, 100), 101);
    CHECK_EQ(kfcntl(fd, F_DUPFD, 99), 99);
    CHECK_EQ(kfcntl(fd, F_DUPFD, 99), 102);
    CHECK_OK(close(101));
    CHECK_EQ(kfcntl(fd, F_DUPFD, 98), 98);
    CHECK_EQ(kfcntl(fd, F_DUPFD, 100), 101);
    CHECK_EQ(fcntl(101, F_GETFD), 0);
    CHECK_EQ(lseek(fd, 5, SEEK_SET), 5);
    CHECK_EQ(lseek(101, 0, SEEK_CUR), 5);
    /* With arg 0 it is dup(2): the lowest free descriptor overall. */
    int d = kfcntl(fd, F_DUPFD, 0);
    CHECK(d > fd && d < 98);
    for (int i = 98; i <= 102; i++) CHECK_OK(close(i));
    CHECK_OK(close(d));
    CHECK_OK(close(fd));
}

/* F_DUPFD_CLOEXEC: "As for F_DUPFD, but additionally set the close-on-exec flag for the
 * duplicate file descriptor." */
TEST(dupfd_cloexec) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(kfcntl(fd, F_DUPFD_CLOEXEC, 50), 50);
    CHECK_EQ(fcntl(50, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    CHECK_EQ(kfcntl(fd, F_DUPFD_CLOEXEC, 50), 51);
    CHECK_OK(close(50));
    CHECK_OK(close(51));
    CHECK_OK(close(fd));
}

/* "EINVAL cmd is F_DUPFD and arg is negative or is greater than the maximum allowable value
 * (see the discussion of RLIMIT_NOFILE in getrlimit(2))"; "EBADF fd is not an open file
 * descriptor". */
TEST(dupfd_bad_arg_is_einval) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    struct rlimit rl;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    CHECK_ERR(kfcntl(fd, F_DUPFD, -1), EINVAL);
    CHECK_ERR(kfcntl(fd, F_DUPFD, (long)rl.rlim_cur), EINVAL);
    CHECK_ERR(kfcntl(fd, F_DUPFD_CLOEXEC, -1), EINVAL);
    CHECK_ERR(kfcntl(1000, F_DUPFD, 0), EBADF);
    CHECK_OK(close(fd));
}

/* F_GETFD: "Return (as the function result) the file descriptor flags"; F_SETFD: "Set the file
 * descriptor flags to the value specified by arg." FD_CLOEXEC is the only flag: other bits
 * are ignored. */
TEST(getfd_setfd) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(kfcntl(fd, F_GETFD, 0), 0);
    CHECK_EQ(kfcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    CHECK_EQ(kfcntl(fd, F_GETFD, 0), FD_CLOEXEC);
    CHECK_EQ(kfcntl(fd, F_SETFD, 0), 0);
    CHECK_EQ(kfcntl(fd, F_GETFD, 0), 0);
    CHECK_EQ(kfcntl(fd, F_SETFD, 0xfe), 0);
    CHECK_EQ(kfcntl(fd, F_GETFD, 0), 0);
    CHECK_EQ(kfcntl(fd, F_SETFD, 0xff), 0);
    CHECK_EQ(kfcntl(fd, F_GETFD, 0), FD_CLOEXEC);
    /* The flag belongs to the descriptor, not to the open file. */
    int d = dup(fd);
    CHECK(d >= 0);
    CHECK_EQ(kfcntl(d, F_GETFD, 0), 0);
    CHECK_OK(close(d));
    CHECK_OK(close(fd));
}

/* F_GETFL: "Return (as the function result) the file access mode and the file status flags";
 * the file creation flags (O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC) are not kept. On 64-bit Linux
 * every file is opened with O_LARGEFILE, and F_GETFL shows it. */
TEST(getfl_shows_access_mode_and_status_flags) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDONLY | O_CREAT | O_EXCL | O_TRUNC, 0644);
    CHECK(fd >= 0);
    long fl = kfcntl(fd, F_GETFL, 0);
    CHECK_EQ(fl & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fl & (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY), 0);
    CHECK_EQ(fl, O_RDONLY | 0100000 /* O_LARGEFILE */);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    fl = kfcntl(fd, F_GETFL, 0);
    CHECK_EQ(fl & O_ACCMODE, O_WRONLY);
    CHECK_EQ(fl & O_APPEND, O_APPEND);
    CHECK_EQ(fl & O_NONBLOCK, 0);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    CHECK(fd >= 0);
    fl = kfcntl(fd, F_GETFL, 0);
    CHECK_EQ(fl & O_ACCMODE, O_RDWR);
    CHECK_EQ(fl & O_NONBLOCK, O_NONBLOCK);
    CHECK_EQ(fl & O_APPEND, 0);
    CHECK_EQ(fl & O_CLOEXEC, 0);
    CHECK_OK(close(fd));
    fd = open(P(""), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    fl = kfcntl(fd, F_GETFL, 0);
    CHECK_EQ(fl & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fl & O_DIRECTORY, O_DIRECTORY);
    CHECK_OK(close(fd));
}

/* "F_SETFL: ... On Linux, this command can change only the O_APPEND, O_ASYNC, O_DIRECT,
 * O_NOATIME, and O_NONBLOCK flags." The change is seen by writes at once. */
TEST(setfl_sets_and_clears_append_and_nonblock) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(kfcntl(fd, F_SETFL, O_APPEND), 0);
    CHECK_EQ(kfcntl(fd, F_GETFL, 0) & (O_APPEND | O_NONBLOCK), O_APPEND);
    CHECK_EQ(write(fd, "A", 1), 1);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 11);
    CHECK_EQ(kfcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK), 0);
    CHECK_EQ(kfcntl(fd, F_GETFL, 0) & (O_APPEND | O_NONBLOCK), O_APPEND | O_NONBLOCK);
    CHECK_EQ(kfcntl(fd, F_SETFL, O_NONBLOCK), 0);
    CHECK_EQ(kfcntl(fd, F_GETFL, 0) & (O_APPEND | O_NONBLOCK), O_NONBLOCK);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(write(fd, "B", 1), 1);
    CHECK_EQ(kfcntl(fd, F_SETFL, 0), 0);
    CHECK_EQ(kfcntl(fd, F_GETFL, 0) & (O_APPEND | O_NONBLOCK), 0);
    CHECK_OK(close(fd));
    char buf[16];
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 11);
    CHECK(!strcmp(buf, "B123456789A"));
}

/* F_SETFL: "File access mode (O_RDONLY, O_WRONLY, O_RDWR) and file creation flags (i.e.,
 * O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC) in arg are ignored." */
TEST(setfl_cannot_change_access_mode) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "data"), 4);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    long before = kfcntl(fd, F_GETFL, 0);
    CHECK_EQ(kfcntl(fd, F_SETFL, O_RDWR), 0);
    CHECK_EQ(kfcntl(fd, F_GETFL, 0), before);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    CHECK_EQ(kfcntl(fd, F_SETFL, O_WRONLY | O_TRUNC | O_CREAT | O_EXCL), 0);
    CHECK_EQ(kfcntl(fd, F_GETFL, 0), before);
    char buf[8];
    CHECK_EQ(read(fd, buf, sizeof buf), 4);
    CHECK_OK(close(fd));
    struct stat st;
    CHECK_OK(stat(P("f"), &st));
    CHECK_EQ(st.st_size, 4);
}

/* "EINVAL The value specified in cmd is not recognized by this kernel." */
TEST(unknown_command_is_einval) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_ERR(kfcntl(fd, 9999, 0), EINVAL);
    CHECK_ERR(kfcntl(fd, -1, 0), EINVAL);
    CHECK_ERR(kfcntl(fd, 0x7fffffff, 0), EINVAL);
    CHECK_OK(close(fd));
}

/* "EBADF fd is not an open file descriptor", for every command. */
TEST(bad_fd_is_ebadf) {
    CHECK_ERR(kfcntl(1000, F_GETFD, 0), EBADF);
    CHECK_ERR(kfcntl(1000, F_SETFD, FD_CLOEXEC), EBADF);
    CHECK_ERR(kfcntl(1000, F_GETFL, 0), EBADF);
    CHECK_ERR(kfcntl(1000, F_SETFL, O_APPEND), EBADF);
    CHECK_ERR(kfcntl(1000, F_DUPFD_CLOEXEC, 0), EBADF);
    CHECK_ERR(kfcntl(-1, F_GETFD, 0), EBADF);
}

/* An O_PATH descriptor allows only "operations that act purely at the file descriptor level":
 * F_DUPFD, F_GETFD/F_SETFD and F_GETFL (which shows O_PATH) work; F_SETFL is EBADF. */
TEST(o_path_descriptor) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    int fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    CHECK_EQ(kfcntl(fd, F_GETFL, 0) & O_PATH, O_PATH);
    CHECK_EQ(kfcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    CHECK_EQ(kfcntl(fd, F_GETFD, 0), FD_CLOEXEC);
    int d = kfcntl(fd, F_DUPFD, 0);
    CHECK(d >= 0);
    CHECK_EQ(kfcntl(d, F_GETFL, 0) & O_PATH, O_PATH);
    CHECK_ERR(kfcntl(fd, F_SETFL, O_APPEND), EBADF);
    CHECK_OK(close(d));
    CHECK_OK(close(fd));
}

/* F_GETPIPE_SZ: "Return (as the function result) the capacity of the pipe referred to by fd";
 * a new pipe holds 65536 bytes. F_SETPIPE_SZ: "Change the capacity of the pipe referred to by
 * fd to be at least arg bytes", rounded up to a power-of-two number of pages ("the kernel may
 * use a capacity larger than arg"), at least a page; the call returns the capacity. The
 * argument is an unsigned int. Both ends see the change. */
TEST(pipe_size_get_and_set) {
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(kfcntl(p[0], F_GETPIPE_SZ, 0), 65536);
    CHECK_EQ(kfcntl(p[1], F_SETPIPE_SZ, 0), 4096);
    CHECK_EQ(kfcntl(p[0], F_GETPIPE_SZ, 0), 4096);
    CHECK_EQ(kfcntl(p[0], F_SETPIPE_SZ, 5000), 8192);
    CHECK_EQ(kfcntl(p[0], F_SETPIPE_SZ, 1 << 20), 1 << 20);
    CHECK_EQ(kfcntl(p[1], F_GETPIPE_SZ, 0), 1 << 20);
    CHECK_EQ(kfcntl(p[0], F_SETPIPE_SZ, (1L << 32) + 8192), 8192);
    /* A 4096-byte pipe takes 4096 bytes and no more. */
    CHECK_EQ(kfcntl(p[0], F_SETPIPE_SZ, 4096), 4096);
    CHECK_OK(kfcntl(p[1], F_SETFL, O_NONBLOCK));
    static char buf[8192];
    CHECK_EQ(write(p[1], buf, sizeof buf), 4096);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* F_SETPIPE_SZ: "EBUSY ... the caller attempted to reduce the pipe capacity to an amount that
 * is less than the amount of buffer space currently used to store data in the pipe", and
 * EINVAL for a size the kernel cannot round (above 2^31). Neither changes the capacity. */
TEST(pipe_size_errors) {
    int p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK));
    static char buf[3 * 4096];
    CHECK_EQ(write(p[1], buf, sizeof buf), (long)sizeof buf);
    CHECK_ERR(kfcntl(p[0], F_SETPIPE_SZ, 8192), EBUSY);
    CHECK_EQ(kfcntl(p[0], F_GETPIPE_SZ, 0), 65536);
    CHECK_EQ(kfcntl(p[0], F_SETPIPE_SZ, 16384), 16384);
    CHECK_ERR(kfcntl(p[0], F_SETPIPE_SZ, (1L << 31) + 1), EINVAL);
    CHECK_EQ(kfcntl(p[0], F_GETPIPE_SZ, 0), 16384);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* F_GETPIPE_SZ and F_SETPIPE_SZ on something that is not a pipe: EBADF (Linux's pipe_fcntl),
 * O_PATH descriptors included. */
TEST(pipe_size_of_a_file_is_ebadf) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_ERR(kfcntl(fd, F_GETPIPE_SZ, 0), EBADF);
    CHECK_ERR(kfcntl(fd, F_SETPIPE_SZ, 4096), EBADF);
    int o = open(P("f"), O_PATH);
    CHECK(o >= 0);
    CHECK_ERR(kfcntl(o, F_GETPIPE_SZ, 0), EBADF);
    CHECK_OK(close(o));
    CHECK_OK(close(fd));
}
