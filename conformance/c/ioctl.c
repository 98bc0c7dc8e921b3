/* ioctl(2) on the standard descriptors. The runner connects fds 0-2 to pipes, files or
 * /dev/null, never to a terminal, so terminal requests fail with ENOTTY ("The specified
 * request does not apply to the kind of object that the file descriptor fd references").
 * Also the generic requests of ioctl_fionread / do_vfs_ioctl on pipes and files (FIONREAD,
 * FIONBIO, FIOCLEX, FIONCLEX), in scratch directories under /tmp. */
#include "scratch.h"

#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

static long kioctl(int fd, unsigned long req, void *arg) {
    return syscall(SYS_ioctl, fd, req, arg);
}

TEST(tcgets_on_stdout_is_enotty) {
    struct termios t;
    CHECK_ERR(kioctl(1, TCGETS, &t), ENOTTY);
}

TEST(tcgets_on_stdin_and_stderr_is_enotty) {
    struct termios t;
    CHECK_ERR(kioctl(0, TCGETS, &t), ENOTTY);
    CHECK_ERR(kioctl(2, TCGETS, &t), ENOTTY);
}

TEST(tiocgwinsz_on_std_fds_is_enotty) {
    struct winsize w;
    CHECK_ERR(kioctl(0, TIOCGWINSZ, &w), ENOTTY);
    CHECK_ERR(kioctl(1, TIOCGWINSZ, &w), ENOTTY);
    CHECK_ERR(kioctl(2, TIOCGWINSZ, &w), ENOTTY);
}

/* Other terminal requests likewise. */
TEST(other_tty_requests_are_enotty) {
    int pgrp;
    struct termios t;
    memset(&t, 0, sizeof t);
    CHECK_ERR(kioctl(1, TIOCGPGRP, &pgrp), ENOTTY);
    CHECK_ERR(kioctl(1, TCSETS, &t), ENOTTY);
}

/* The file kind is checked before the argument: a bad pointer still gives ENOTTY. */
TEST(non_tty_check_precedes_pointer_check) {
    CHECK_ERR(kioctl(1, TCGETS, (void *)1), ENOTTY);
    CHECK_ERR(kioctl(1, TIOCGWINSZ, NULL), ENOTTY);
}

/* isatty(3) is built on TCGETS: 0 with errno ENOTTY. */
TEST(isatty_is_false_with_enotty) {
    errno = 0;
    CHECK_EQ(isatty(1), 0);
    CHECK_EQ(errno, ENOTTY);
    errno = 0;
    CHECK_EQ(isatty(2), 0);
    CHECK_EQ(errno, ENOTTY);
}

/* "EBADF fd is not a valid file descriptor." */
TEST(bad_fd_is_ebadf) {
    struct termios t;
    CHECK_ERR(kioctl(99, TCGETS, &t), EBADF);
    CHECK_ERR(kioctl(-1, TCGETS, &t), EBADF);
    CHECK_ERR(kioctl(99, TIOCGWINSZ, &t), EBADF);
    CHECK_ERR(kioctl(99, FIOCLEX, NULL), EBADF);
    errno = 0;
    CHECK_EQ(isatty(99), 0);
    CHECK_EQ(errno, EBADF);
}

/* An unknown request on a non-terminal is ENOTTY. */
TEST(unknown_request_is_enotty) {
    CHECK_ERR(kioctl(1, 0x7f7f, NULL), ENOTTY);
    CHECK_ERR(kioctl(2, 0x7f7f, NULL), ENOTTY);
}

/* FIOCLEX and FIONCLEX work on any descriptor (they set and clear close-on-exec). */
TEST(fioclex_fionclex_succeed) {
    CHECK_EQ(kioctl(1, FIOCLEX, NULL), 0);
    CHECK_EQ(kioctl(1, FIONCLEX, NULL), 0);
}

/* FIONREAD on a pipe: "the number of unread bytes" it holds, from either end. */
TEST(fionread_on_a_pipe_counts_unread_bytes) {
    int p[2];
    CHECK_OK(pipe(p));
    int n = -1;
    CHECK_EQ(kioctl(p[0], FIONREAD, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(write(p[1], "12345", 5), 5);
    CHECK_EQ(kioctl(p[0], FIONREAD, &n), 0);
    CHECK_EQ(n, 5);
    char buf[2];
    CHECK_EQ(read(p[0], buf, 2), 2);
    CHECK_EQ(kioctl(p[1], FIONREAD, &n), 0);
    CHECK_EQ(n, 3);
    CHECK_ERR(kioctl(p[0], FIONREAD, (void *)1), EFAULT);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* FIONREAD on a regular file: the bytes from the file offset to the end (an int; Linux
 * computes size - offset, so past the end it is negative). Other files (directories, /dev/null)
 * do not answer it: ENOTTY. */
TEST(fionread_on_a_file_counts_to_the_end) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    int n = -1;
    CHECK_EQ(kioctl(fd, FIONREAD, &n), 0);
    CHECK_EQ(n, 10);
    CHECK_EQ(lseek(fd, 4, SEEK_SET), 4);
    CHECK_EQ(kioctl(fd, FIONREAD, &n), 0);
    CHECK_EQ(n, 6);
    CHECK_EQ(lseek(fd, 100, SEEK_SET), 100);
    CHECK_EQ(kioctl(fd, FIONREAD, &n), 0);
    CHECK_EQ(n, -90);
    CHECK_OK(close(fd));
    int dir = open(P(""), O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    CHECK_ERR(kioctl(dir, FIONREAD, &n), ENOTTY);
    CHECK_OK(close(dir));
    int null = open("/dev/null", O_RDONLY);
    CHECK(null >= 0);
    CHECK_ERR(kioctl(null, FIONREAD, &n), ENOTTY);
    CHECK_OK(close(null));
}

/* FIONBIO: "Set or clear non-blocking I/O mode" from the int argp points to, as F_SETFL with
 * O_NONBLOCK does; on any file. A bad pointer is EFAULT. */
TEST(fionbio_sets_and_clears_nonblock) {
    int p[2];
    CHECK_OK(pipe(p));
    int on = 1;
    CHECK_EQ(kioctl(p[0], FIONBIO, &on), 0);
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    char c;
    CHECK_ERR(read(p[0], &c, 1), EAGAIN);
    on = 0;
    CHECK_EQ(kioctl(p[0], FIONBIO, &on), 0);
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    CHECK_ERR(kioctl(p[0], FIONBIO, NULL), EFAULT);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* FIOCLEX and FIONCLEX change the descriptor's close-on-exec flag, as F_SETFD does. */
TEST(fioclex_fionclex_change_getfd) {
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(kioctl(p[1], FIOCLEX, NULL), 0);
    CHECK_EQ(fcntl(p[1], F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(p[0], F_GETFD), 0);
    CHECK_EQ(kioctl(p[1], FIONCLEX, NULL), 0);
    CHECK_EQ(fcntl(p[1], F_GETFD), 0);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* ioctl on an O_PATH descriptor is EBADF: it allows no operation on the file. */
TEST(o_path_descriptor_is_ebadf) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    int fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    int n;
    CHECK_ERR(kioctl(fd, FIONREAD, &n), EBADF);
    CHECK_ERR(kioctl(fd, FIOCLEX, NULL), EBADF);
    CHECK_OK(close(fd));
}
