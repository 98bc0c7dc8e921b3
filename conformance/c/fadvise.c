/* fadvise64(2) (posix_fadvise(3)): advice is accepted for files, refused for pipes. */
#include "scratch.h"

#include <sys/syscall.h>

static long fadv(int fd, long offset, long len, long advice) {
    return syscall(SYS_fadvise64, fd, offset, len, advice);
}

TEST(every_advice_on_a_file) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "hello"), 5);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    int advice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_RANDOM,   POSIX_FADV_SEQUENTIAL,
                    POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE};
    for (unsigned i = 0; i < sizeof advice / sizeof advice[0]; i++)
        CHECK_EQ(fadv(fd, 0, 0, advice[i]), 0);
    /* A range past the end, or starting before 0, is fine. */
    CHECK_EQ(fadv(fd, 1 << 20, 4096, POSIX_FADV_WILLNEED), 0);
    CHECK_EQ(fadv(fd, -100, 10, POSIX_FADV_DONTNEED), 0);
    /* The advice is an int: the upper half of the register is not looked at. */
    CHECK_EQ(fadv(fd, 0, 0, 0x100000000L | POSIX_FADV_SEQUENTIAL), 0);
    close(fd);
}

/* "EINVAL An invalid value was specified for advice." */
TEST(unknown_advice_is_einval) {
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(fadv(fd, 0, 0, 6), EINVAL);
    CHECK_ERR(fadv(fd, 0, 0, 77), EINVAL);
    CHECK_ERR(fadv(fd, 0, 0, -1), EINVAL);
    close(fd);
}

TEST(negative_len_is_einval) {
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(fadv(fd, 0, -1, POSIX_FADV_NORMAL), EINVAL);
    close(fd);
}

/* "ESPIPE The specified file descriptor refers to a pipe or FIFO", before the other
 * checks. */
TEST(pipe_is_espipe) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_ERR(fadv(p[0], 0, 0, POSIX_FADV_NORMAL), ESPIPE);
    CHECK_ERR(fadv(p[1], 0, -1, 77), ESPIPE);
    /* posix_fadvise returns the error number instead of setting errno. */
    CHECK_EQ(posix_fadvise(p[0], 0, 0, POSIX_FADV_SEQUENTIAL), ESPIPE);
    close(p[0]);
    close(p[1]);
}

TEST(directory_and_device_accept_advice) {
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    CHECK_EQ(fadv(dir, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(dir);
    int null = open("/dev/null", O_RDONLY);
    CHECK(null >= 0);
    CHECK_EQ(posix_fadvise(null, 0, 0, POSIX_FADV_SEQUENTIAL), 0);
    close(null);
}

TEST(bad_or_path_descriptor_is_ebadf) {
    CHECK_ERR(fadv(-1, 0, 0, POSIX_FADV_NORMAL), EBADF);
    CHECK_ERR(fadv(999, 0, 0, 77), EBADF);
    int fd = open("/", O_PATH);
    CHECK(fd >= 0);
    CHECK_ERR(fadv(fd, 0, 0, POSIX_FADV_NORMAL), EBADF);
    close(fd);
}
