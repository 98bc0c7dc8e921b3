/* dup(2), dup2(2) and dup3(2) on file descriptors for regular files. Each case works in its
 * own scratch directory under /tmp. */
#include "scratch.h"

#include <sys/resource.h>

static long kdup(int fd) {
    return syscall(SYS_dup, fd);
}
static long kdup2(int fd, int newfd) {
    return syscall(SYS_dup2, fd, newfd);
}
static long kdup3(int fd, int newfd, int flags) {
    return syscall(SYS_dup3, fd, newfd, flags);
}

/* dup(2): "Since the two file descriptors refer to the same open file description, they share
 * file offset and file status flags". */
TEST(dup_shares_offset_and_status_flags) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    int d = kdup(fd);
    CHECK(d >= 0);
    CHECK(d != fd);
    CHECK_EQ(lseek(fd, 4, SEEK_SET), 4);
    CHECK_EQ(lseek(d, 0, SEEK_CUR), 4);
    char c;
    CHECK_EQ(read(d, &c, 1), 1);
    CHECK_EQ(c, '4');
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
    CHECK_EQ(write(fd, "X", 1), 1);
    CHECK_EQ(read(d, &c, 1), 1);
    CHECK_EQ(c, '6');
    CHECK_OK(fcntl(fd, F_SETFL, O_APPEND));
    CHECK_EQ(fcntl(d, F_GETFL) & O_APPEND, O_APPEND);
    /* Closing one leaves the other working. */
    CHECK_OK(close(fd));
    CHECK_EQ(lseek(d, 0, SEEK_CUR), 7);
    CHECK_EQ(write(d, "E", 1), 1);
    CHECK_EQ(lseek(d, 0, SEEK_CUR), 11);
    CHECK_OK(close(d));
    char buf[16];
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 11);
    CHECK(!strcmp(buf, "01234X6789E"));
}

/* dup(2): "The two file descriptors do not share file descriptor flags (the close-on-exec
 * flag). The close-on-exec flag (FD_CLOEXEC; see fcntl(2)) for the duplicate descriptor is
 * off." */
TEST(dup_clears_cloexec) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    int d = kdup(fd);
    CHECK(d >= 0);
    CHECK_EQ(fcntl(d, F_GETFD), 0);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    int d2 = kdup2(fd, d + 1);
    CHECK_EQ(d2, d + 1);
    CHECK_EQ(fcntl(d2, F_GETFD), 0);
    CHECK_OK(fcntl(d, F_SETFD, FD_CLOEXEC));
    CHECK_EQ(fcntl(d2, F_GETFD), 0);
    CHECK_OK(close(d2));
    CHECK_OK(close(d));
    CHECK_OK(close(fd));
}

/* dup2(2): "If the file descriptor newfd was previously open, it is closed before being
 * reused; the close is performed silently"; newfd then refers to oldfd's file. */
TEST(dup2_replaces_open_newfd) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "aaaa"), 4);
    CHECK_EQ(put_file(P("b"), "bbbb"), 4);
    int a = open(P("a"), O_RDONLY);
    int b = open(P("b"), O_RDONLY);
    CHECK(a >= 0 && b >= 0);
    CHECK_EQ(lseek(a, 2, SEEK_SET), 2);
    CHECK_EQ(kdup2(a, b), b);
    char c;
    CHECK_EQ(read(b, &c, 1), 1);
    CHECK_EQ(c, 'a');
    CHECK_EQ(lseek(a, 0, SEEK_CUR), 3);
    /* A free newfd far above the others is fine too. */
    CHECK_EQ(kdup2(a, 200), 200);
    CHECK_EQ(lseek(200, 0, SEEK_CUR), 3);
    CHECK_OK(close(200));
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* dup2(2): "If oldfd is a valid file descriptor, and newfd has the same value as oldfd, then
 * dup2() does nothing, and returns newfd" (and the close-on-exec flag is kept). "If oldfd is
 * not a valid file descriptor, then the call fails, and newfd is not closed." */
TEST(dup2_onto_itself_returns_it) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(kdup2(fd, fd), fd);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_OK(fcntl(fd, F_GETFL));
    CHECK_ERR(kdup2(1000, 1000), EBADF);
    CHECK_ERR(kdup2(1000, fd), EBADF);
    CHECK_OK(fcntl(fd, F_GETFD));
    CHECK_OK(close(fd));
}

/* dup3(2): "If oldfd equals newfd, then dup3() fails with the error EINVAL"; "EINVAL (dup3())
 * flags contain an invalid value." */
TEST(dup3_same_fd_is_einval) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_ERR(kdup3(fd, fd, 0), EINVAL);
    CHECK_ERR(kdup3(fd, fd, O_CLOEXEC), EINVAL);
    CHECK_ERR(kdup3(fd, fd + 1, O_APPEND), EINVAL);
    CHECK_ERR(kdup3(fd, fd + 1, 1), EINVAL);
    CHECK_ERR(fcntl(fd + 1, F_GETFD), EBADF);
    CHECK_OK(close(fd));
}

/* dup3(2): "The caller can force the close-on-exec flag to be set for the new file descriptor
 * by specifying O_CLOEXEC in flags." Without it the flag is clear. */
TEST(dup3_cloexec) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(kdup3(fd, 100, O_CLOEXEC), 100);
    CHECK_EQ(fcntl(100, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    /* Replacing an open descriptor, without the flag this time. */
    CHECK_EQ(kdup3(fd, 100, 0), 100);
    CHECK_EQ(fcntl(100, F_GETFD), 0);
    CHECK_EQ(lseek(fd, 3, SEEK_SET), 3);
    CHECK_EQ(lseek(100, 0, SEEK_CUR), 3);
    CHECK_OK(close(100));
    CHECK_OK(close(fd));
}

/* "EBADF oldfd isn't an open file descriptor", "EBADF newfd is out of the allowed range for
 * file descriptors (see the discussion of RLIMIT_NOFILE in getrlimit(2))." */
TEST(bad_fds_are_ebadf) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    struct rlimit rl;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    CHECK_ERR(kdup(1000), EBADF);
    CHECK_ERR(kdup(-1), EBADF);
    CHECK_ERR(kdup2(1000, 50), EBADF);
    CHECK_ERR(kdup2(fd, -1), EBADF);
    CHECK_ERR(kdup2(fd, (int)rl.rlim_cur), EBADF);
    CHECK_ERR(kdup3(1000, 50, 0), EBADF);
    CHECK_ERR(kdup3(fd, -1, 0), EBADF);
    CHECK_ERR(kdup3(fd, (int)rl.rlim_cur, 0), EBADF);
    CHECK_ERR(fcntl(50, F_GETFD), EBADF);
    CHECK_EQ(kdup2(fd, (int)rl.rlim_cur - 1), rl.rlim_cur - 1);
    CHECK_OK(close((int)rl.rlim_cur - 1));
    CHECK_OK(close(fd));
}

/* open(2): "The file descriptor returned by a successful call will be the lowest-numbered
 * file descriptor not currently open for the process"; dup(2): "The new file descriptor number
 * is guaranteed to be the lowest-numbered file descriptor that was unused in the calling
 * process." */
TEST(lowest_free_descriptor_is_used) {
    CHECK(scratch());
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = open(P("f"), O_RDWR | O_CREAT, 0644);
        CHECK(fds[i] >= 0);
        if (i) CHECK_EQ(fds[i], fds[i - 1] + 1);
    }
    CHECK_OK(close(fds[1]));
    CHECK_OK(close(fds[3]));
    CHECK_EQ(kdup(fds[4]), fds[1]);
    CHECK_EQ(open(P("f"), O_RDONLY), fds[3]);
    CHECK_EQ(kdup(fds[0]), fds[4] + 1);
    CHECK_OK(close(fds[2]));
    CHECK_EQ(open(P("f"), O_RDONLY | O_CLOEXEC), fds[2]);
    for (int i = 0; i < 5; i++) CHECK_OK(close(fds[i]));
    CHECK_OK(close(fds[4] + 1));
    /* Descriptor 0 is reused once closed. */
    int saved = kdup(0);
    CHECK(saved >= 0);
    CHECK_OK(close(0));
    CHECK_EQ(open(P("f"), O_RDONLY), 0);
    CHECK_EQ(kdup2(saved, 0), 0);
    CHECK_OK(close(saved));
}
