/* eventfd(2): a 64-bit counter as a file. Waits that must block are ended by a forked
 * child. */
#include "scratch.h"

#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/wait.h>

static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The events poll(2) reports at once for `fd`. */
static int revents(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) < 0) return -1;
    return p.revents;
}

/* "EINVAL An unsupported value was specified in flags"; EFD_CLOEXEC and EFD_NONBLOCK act
 * as O_CLOEXEC and O_NONBLOCK; the file is open O_RDWR. */
TEST(flags) {
    CHECK_ERR(eventfd(0, 0x10), EINVAL);
    CHECK_ERR(eventfd(0, O_APPEND), EINVAL);
    int a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(a >= 0);
    CHECK_EQ(fcntl(a, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(a, F_GETFL), O_RDWR | O_NONBLOCK);
    int b = eventfd(0, 0);
    CHECK_EQ(fcntl(b, F_GETFD), 0);
    CHECK_EQ(fcntl(b, F_GETFL), O_RDWR);
    /* The old eventfd(2) takes no flags. */
    int c = syscall(SYS_eventfd, 3);
    CHECK(c >= 0);
    uint64_t v;
    CHECK_EQ(read(c, &v, 8), 8);
    CHECK_EQ(v, 3);
    close(a);
    close(b);
    close(c);
}

/* "read(2) returns an 8-byte integer ... the counter's value is returned, and the counter
 * is reset to zero"; "If the eventfd counter is zero ... fails with the error EAGAIN if
 * the file descriptor has been made nonblocking"; "write(2) ... adds the 8-byte integer
 * value supplied in its buffer to the counter". */
TEST(read_takes_the_count_write_adds) {
    int fd = eventfd(5, EFD_NONBLOCK);
    uint64_t v = 0;
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 5);
    CHECK_ERR(read(fd, &v, 8), EAGAIN);
    v = 2;
    CHECK_EQ(write(fd, &v, 8), 8);
    v = 40;
    CHECK_EQ(write(fd, &v, 8), 8);
    /* A buffer bigger than 8 bytes still moves 8. */
    uint64_t big[4] = {0};
    CHECK_EQ(read(fd, big, sizeof big), 8);
    CHECK_EQ(big[0], 42);
    close(fd);
}

/* EFD_SEMAPHORE: "read(2) returns 8 bytes containing the value 1, and the counter's value
 * is decremented by 1." */
TEST(semaphore_mode) {
    int fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    uint64_t v;
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK_ERR(read(fd, &v, 8), EAGAIN);
    close(fd);
}

/* "EINVAL ... the size of the supplied buffer is less than 8 bytes", and for a write of
 * 0xffffffffffffffff. A readv of 8 bytes in two iovecs is fine. */
TEST(sizes_and_the_largest_value) {
    int fd = eventfd(1, EFD_NONBLOCK);
    char small[4];
    CHECK_ERR(read(fd, small, 4), EINVAL);
    CHECK_ERR(write(fd, small, 4), EINVAL);
    uint64_t v = UINT64_MAX;
    CHECK_ERR(write(fd, &v, 8), EINVAL);
    v = 0x0000000200000001ull;
    CHECK_EQ(write(fd, &v, 8), 8);
    uint32_t halves[2];
    struct iovec iov[2] = {{&halves[0], 4}, {&halves[1], 4}};
    CHECK_EQ(readv(fd, iov, 2), 8);
    CHECK_EQ(halves[0], 2);
    CHECK_EQ(halves[1], 2);
    CHECK_ERR(pread(fd, &v, 8, 0), ESPIPE);
    close(fd);
}

/* "the maximum value that may be stored in the counter is ... 0xfffffffffffffffe": a write
 * that would exceed it blocks or fails with EAGAIN; poll shows POLLOUT only while a write
 * of 1 fits and POLLIN while the counter is not zero. */
TEST(overflow_and_poll) {
    int fd = eventfd(0, EFD_NONBLOCK);
    CHECK_EQ(revents(fd, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM), POLLOUT);
    uint64_t v = UINT64_MAX - 2;
    CHECK_EQ(write(fd, &v, 8), 8);
    CHECK_EQ(revents(fd, POLLIN | POLLOUT), POLLIN | POLLOUT);
    v = 1;
    CHECK_EQ(write(fd, &v, 8), 8);
    CHECK_EQ(revents(fd, POLLIN | POLLOUT), POLLIN);
    CHECK_ERR(write(fd, &v, 8), EAGAIN);
    /* Adding 0 always fits. */
    v = 0;
    CHECK_EQ(write(fd, &v, 8), 8);
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, UINT64_MAX - 1);
    CHECK_EQ(revents(fd, POLLIN | POLLOUT), POLLOUT);
    close(fd);
}

/* A read of a zero counter "blocks until the counter becomes nonzero". */
TEST(read_blocks_until_a_write) {
    int fd = eventfd(0, 0);
    long start = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        uint64_t v = 9;
        _exit(write(fd, &v, 8) == 8 ? 0 : 1);
    }
    uint64_t v = 0;
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 9);
    CHECK(now_ms() - start >= 40);
    CHECK_EQ(exit_code(pid), 0);
    close(fd);
}

/* A write that would overflow "blocks until a read(2) is performed". */
TEST(write_blocks_until_a_read) {
    int fd = eventfd(0, 0);
    uint64_t v = UINT64_MAX - 1;
    CHECK_EQ(write(fd, &v, 8), 8);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        uint64_t got;
        _exit(read(fd, &got, 8) == 8 && got == UINT64_MAX - 1 ? 0 : 1);
    }
    v = 7;
    CHECK_EQ(write(fd, &v, 8), 8);
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 7);
    close(fd);
}

/* /proc/self/fd names it "anon_inode:[eventfd]"; fdinfo shows the count in hex. */
TEST(proc_entries) {
    int fd = eventfd(0x2a, EFD_SEMAPHORE);
    char path[64], link[64] = {0};
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    CHECK(readlink(path, link, sizeof link - 1) > 0);
    CHECK(!strcmp(link, "anon_inode:[eventfd]"));
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int info = open(path, O_RDONLY);
    CHECK(info >= 0);
    char text[512] = {0};
    CHECK(read(info, text, sizeof text - 1) > 0);
    CHECK(strstr(text, "eventfd-count:               2a\n") != NULL);
    CHECK(strstr(text, "eventfd-semaphore: 1\n") != NULL);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode, 0600);
    close(info);
    close(fd);
}
