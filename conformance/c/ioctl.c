/* ioctl(2) on the standard descriptors. The runner connects fds 0-2 to pipes, files or
 * /dev/null, never to a terminal, so terminal requests fail with ENOTTY ("The specified
 * request does not apply to the kind of object that the file descriptor fd references"). */
#include "harness.h"

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
