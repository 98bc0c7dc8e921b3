/* read(2), write(2), writev(2), close(2) on the standard descriptors. Output written by the
 * cases is short and starts with '#', so it cannot be mistaken for a PASS or FAIL line. */
#include "harness.h"

#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* The harness prints with stdio; flush it so the raw writes below do not interleave with
 * buffered output. */
static void flush(void) {
    fflush(stdout);
    fflush(stderr);
}

TEST(write_stdout_returns_count) {
    static const char msg[] = "# write to stdout\n";
    flush();
    CHECK_EQ(syscall(SYS_write, 1, msg, sizeof msg - 1), sizeof msg - 1);
}

TEST(write_stderr_returns_count) {
    static const char msg[] = "# write to stderr\n";
    flush();
    CHECK_EQ(syscall(SYS_write, 2, msg, sizeof msg - 1), sizeof msg - 1);
}

/* "If count is zero and fd refers to a file other than a regular file, the results are not
 * specified"; Linux returns 0 for pipes and files without touching the buffer. */
TEST(write_zero_count_returns_zero) {
    flush();
    CHECK_EQ(syscall(SYS_write, 1, "x", 0), 0);
    CHECK_EQ(syscall(SYS_write, 1, NULL, 0), 0);
    CHECK_EQ(syscall(SYS_write, 2, NULL, 0), 0);
}

TEST(write_bad_fd_is_ebadf) {
    CHECK_ERR(syscall(SYS_write, 99, "x", 1), EBADF);
    CHECK_ERR(syscall(SYS_write, -1, "x", 1), EBADF);
    CHECK_ERR(syscall(SYS_write, INT_MAX, "x", 1), EBADF);
    /* Even with nothing to write. */
    CHECK_ERR(syscall(SYS_write, 99, NULL, 0), EBADF);
}

/* "EFAULT buf is outside your accessible address space." */
TEST(write_bad_buffer_is_efault) {
    flush();
    CHECK_ERR(syscall(SYS_write, 1, (void *)1, 10), EFAULT);
    CHECK_ERR(syscall(SYS_write, 1, NULL, 10), EFAULT);
}

TEST(write_unreadable_buffer_is_efault) {
    void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    flush();
    CHECK_ERR(syscall(SYS_write, 1, p, 16), EFAULT);
    CHECK_OK(munmap(p, 4096));
}

/* writev(2) "writes iovcnt buffers of data ... to the file": the result is the total. */
TEST(writev_returns_total) {
    char a[] = "# wr", b[] = "itev", c[] = " ok\n";
    struct iovec iov[4] = {{a, 4}, {NULL, 0}, {b, 4}, {c, 4}};
    flush();
    CHECK_EQ(syscall(SYS_writev, 1, iov, 4), 12);
}

TEST(writev_zero_iovcnt_returns_zero) {
    struct iovec iov[1] = {{"x", 1}};
    CHECK_EQ(syscall(SYS_writev, 1, iov, 0), 0);
    CHECK_EQ(syscall(SYS_writev, 1, NULL, 0), 0);
}

/* "EINVAL iovcnt is less than zero or greater than the permitted maximum" (IOV_MAX, 1024). */
TEST(writev_iovcnt_out_of_range_is_einval) {
    static struct iovec iov[1025];
    for (int i = 0; i < 1025; i++) iov[i] = (struct iovec){"", 0};
    CHECK_ERR(syscall(SYS_writev, 1, iov, 1025), EINVAL);
    CHECK_ERR(syscall(SYS_writev, 1, iov, -1), EINVAL);
    /* 1024 empty buffers are fine. */
    CHECK_EQ(syscall(SYS_writev, 1, iov, 1024), 0);
}

/* "EINVAL The sum of the iov_len values overflows an ssize_t value." Linux checks each length
 * as a signed value: one that is negative as an ssize_t is EINVAL. */
TEST(writev_negative_length_is_einval) {
    struct iovec one[1] = {{"x", (size_t)SSIZE_MAX + 1}};
    CHECK_ERR(syscall(SYS_writev, 1, one, 1), EINVAL);
    struct iovec two[2] = {{"x", 1}, {"y", SIZE_MAX}};
    CHECK_ERR(syscall(SYS_writev, 1, two, 2), EINVAL);
}

/* Lengths that are each valid but run past the end of the address space are EFAULT (buffer
 * "outside your accessible address space"), checked before the total is formed: Linux never
 * reaches an ssize_t overflow with such lengths. */
TEST(writev_buffer_past_address_space_is_efault) {
    struct iovec iov[2] = {{"x", SSIZE_MAX}, {"y", SSIZE_MAX}};
    flush();
    CHECK_ERR(syscall(SYS_writev, 1, iov, 2), EFAULT);
}

TEST(writev_bad_pointers) {
    flush();
    CHECK_ERR(syscall(SYS_writev, 1, (void *)1, 1), EFAULT);
    struct iovec bad[1] = {{(void *)1, 8}};
    CHECK_ERR(syscall(SYS_writev, 1, bad, 1), EFAULT);
    struct iovec iov[1] = {{"x", 1}};
    CHECK_ERR(syscall(SYS_writev, 99, iov, 1), EBADF);
}

TEST(read_bad_fd_is_ebadf) {
    char buf[8];
    CHECK_ERR(syscall(SYS_read, 99, buf, sizeof buf), EBADF);
    CHECK_ERR(syscall(SYS_read, -1, buf, sizeof buf), EBADF);
    CHECK_ERR(syscall(SYS_read, 99, buf, 0), EBADF);
}

/* "If count is zero, read() may detect the errors described below. In the absence of any
 * errors ... returns zero and has no other effects." */
TEST(read_zero_count_returns_zero) {
    char b = 'q';
    CHECK_EQ(syscall(SYS_read, 0, &b, 0), 0);
    CHECK_EQ(b, 'q');
    CHECK_EQ(syscall(SYS_read, 0, NULL, 0), 0);
}

TEST(close_bad_fd_is_ebadf) {
    CHECK_ERR(syscall(SYS_close, 99), EBADF);
    CHECK_ERR(syscall(SYS_close, -1), EBADF);
    CHECK_ERR(syscall(SYS_close, INT_MAX), EBADF);
}
