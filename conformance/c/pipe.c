/* Pipes and fifos: pipe(2), pipe2(2), pipe(7) and fifo(7) semantics, poll(2) on them. A case
 * runs in one process with one thread, so every case that would have to wait uses O_NONBLOCK
 * and checks EAGAIN instead (the waiting itself is covered by the Sentry's unit tests). Fifos
 * are made in a scratch directory under /tmp. */
#include "scratch.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#define PAGE 4096

/* Fills a non-blocking pipe with writes of `chunk` bytes; returns the total written. */
static long fill(int wfd, size_t chunk) {
    static char buf[65536];
    long total = 0;
    for (;;) {
        long n = write(wfd, buf, chunk);
        if (n < 0) return errno == EAGAIN ? total : -1;
        total += n;
    }
}

/* The events poll(2) reports at once for `fd` asked for `events`. */
static int revents(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) < 0) return -1;
    return p.revents;
}

/* pipe(2): "creates a pipe, a unidirectional data channel ... pipefd[0] refers to the read end
 * of the pipe. pipefd[1] refers to the write end." Data comes out in the order it went in. */
TEST(bytes_flow_from_write_end_to_read_end) {
    int p[2];
    CHECK_OK(pipe(p));
    CHECK(p[0] >= 0 && p[1] >= 0 && p[0] != p[1]);
    CHECK_EQ(write(p[1], "hello ", 6), 6);
    CHECK_EQ(write(p[1], "world", 5), 5);
    char buf[32] = {0};
    CHECK_EQ(read(p[0], buf, 3), 3);
    CHECK(!memcmp(buf, "hel", 3));
    CHECK_EQ(read(p[0], buf, sizeof buf), 8);
    CHECK(!memcmp(buf, "lo world", 8));
    /* The ends go one way only. */
    CHECK_ERR(write(p[0], "x", 1), EBADF);
    CHECK_ERR(read(p[1], buf, 1), EBADF);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* pipe2(2): O_CLOEXEC and O_NONBLOCK apply to both new descriptors; the ends are O_RDONLY and
 * O_WRONLY. */
TEST(pipe2_flags_apply_to_both_ends) {
    int p[2];
    CHECK_OK(pipe2(p, O_CLOEXEC | O_NONBLOCK));
    CHECK_EQ(fcntl(p[0], F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(p[1], F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(p[0], F_GETFL), O_RDONLY | O_NONBLOCK);
    CHECK_EQ(fcntl(p[1], F_GETFL), O_WRONLY | O_NONBLOCK);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
    CHECK_OK(pipe2(p, 0));
    CHECK_EQ(fcntl(p[0], F_GETFD), 0);
    CHECK_EQ(fcntl(p[1], F_GETFL), O_WRONLY);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* "EINVAL (pipe2()) Invalid value in flags." */
TEST(pipe2_unknown_flags_are_einval) {
    int p[2];
    CHECK_ERR(syscall(SYS_pipe2, p, O_APPEND), EINVAL);
    CHECK_ERR(syscall(SYS_pipe2, p, O_WRONLY), EINVAL);
    CHECK_ERR(syscall(SYS_pipe2, p, O_TRUNC | O_NONBLOCK), EINVAL);
}

/* "EFAULT pipefd is not valid." No descriptor is left behind. */
TEST(bad_pointer_is_efault_and_leaks_nothing) {
    int before = dup(0);
    CHECK(before >= 0);
    CHECK_OK(close(before));
    CHECK_ERR(syscall(SYS_pipe, (int *)1), EFAULT);
    CHECK_ERR(syscall(SYS_pipe2, (int *)8, O_CLOEXEC), EFAULT);
    int after = dup(0);
    CHECK_EQ(after, before);
    CHECK_OK(close(after));
}

/* pipe(7): "If a process attempts to read from an empty pipe, then read(2) will block until
 * data is available" -- or with O_NONBLOCK "fails with the error EAGAIN". "If all file
 * descriptors referring to the write end of a pipe have been closed, then an attempt to
 * read(2) from the pipe will see end-of-file (read(2) will return 0)." */
TEST(empty_pipe_is_eagain_then_eof_after_last_writer_closes) {
    int p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK));
    char buf[8];
    CHECK_ERR(read(p[0], buf, sizeof buf), EAGAIN);
    /* A read of nothing returns 0 even then. */
    CHECK_EQ(read(p[0], buf, 0), 0);
    int w2 = dup(p[1]);
    CHECK(w2 >= 0);
    CHECK_EQ(write(w2, "ab", 2), 2);
    CHECK_OK(close(p[1]));
    /* One write end is still open: data, then EAGAIN, not end of file. */
    CHECK_EQ(read(p[0], buf, sizeof buf), 2);
    CHECK_ERR(read(p[0], buf, sizeof buf), EAGAIN);
    CHECK_OK(close(w2));
    CHECK_EQ(read(p[0], buf, sizeof buf), 0);
    CHECK_OK(close(p[0]));
}

/* pipe(7): "If all file descriptors referring to the read end of a pipe have been closed, then
 * a write(2) will cause a SIGPIPE signal to be generated for the calling process. If the
 * calling process is ignoring this signal, then write(2) fails with the error EPIPE." A write
 * of nothing writes nothing and succeeds. */
TEST(write_without_readers_is_epipe) {
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(close(p[0]));
    CHECK_ERR(write(p[1], "x", 1), EPIPE);
    CHECK_EQ(write(p[1], "", 0), 0);
    CHECK_OK(close(p[1]));
}

/* pipe(7): "Since Linux 2.6.11, the pipe capacity is 16 pages (i.e., 65,536 bytes in a system
 * with a page size of 4096 bytes)." A full non-blocking pipe takes nothing more. The capacity
 * is pages: small writes share a page only while they fit in it whole, so writes of 1000 bytes
 * fill 16 pages with 4000 bytes each. */
TEST(default_capacity_is_65536_bytes) {
    int p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK_EQ(fill(p[1], 1024), 65536);
    CHECK_ERR(write(p[1], "x", 1), EAGAIN);
    int n = -1;
    CHECK_OK(ioctl(p[0], FIONREAD, &n));
    CHECK_EQ(n, 65536);
    CHECK_EQ(revents(p[1], POLLOUT), 0);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK_EQ(fill(p[1], 1000), 64000);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* pipe(7), PIPE_BUF: "O_NONBLOCK enabled, n <= PIPE_BUF: If there is room to write n bytes to
 * the pipe, then write(2) succeeds immediately, writing all n bytes; otherwise write(2) fails,
 * with errno set to EAGAIN." "O_NONBLOCK enabled, n > PIPE_BUF: If there is no room to write
 * data, then write(2) fails with the error EAGAIN. Otherwise, some number of bytes between 1
 * and n may be written (i.e., a "partial write" may occur)." On Linux the room is counted in
 * pages: reading part of the first page frees none of it. */
TEST(small_writes_are_atomic_big_ones_partial) {
    int p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK_EQ(fill(p[1], PAGE), 65536);
    static char buf[3 * PAGE];
    CHECK_EQ(read(p[0], buf, 50), 50);
    CHECK_ERR(write(p[1], buf, 100), EAGAIN);
    CHECK_ERR(write(p[1], buf, PIPE_BUF), EAGAIN);
    CHECK_EQ(read(p[0], buf, PAGE - 50), PAGE - 50);
    /* A page is free: a big write fills it and says so. */
    CHECK_EQ(write(p[1], buf, 3 * PAGE), PAGE);
    CHECK_ERR(write(p[1], buf, 1), EAGAIN);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* Writes of at most PIPE_BUF bytes are never interleaved: each read returns whole messages
 * when the writes were whole, including a writev made of several buffers. */
TEST(writev_to_a_pipe_is_one_write) {
    int p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK | O_DIRECT));
    struct iovec iov[3] = {{"one ", 4}, {"two ", 4}, {"three", 5}};
    CHECK_EQ(writev(p[1], iov, 3), 13);
    CHECK_EQ(write(p[1], "four", 4), 4);
    char buf[64] = {0};
    /* In packet mode a read returns one write: the writev came as one. */
    CHECK_EQ(read(p[0], buf, sizeof buf), 13);
    CHECK(!memcmp(buf, "one two three", 13));
    CHECK_EQ(read(p[0], buf, sizeof buf), 4);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* pipe2(2), O_DIRECT: "Create a pipe that performs I/O in "packet" mode. Each write(2) to the
 * pipe is dealt with as a separate packet, and read(2)s from the pipe will read one packet at
 * a time." "If a read(2) specifies a buffer size that is smaller than the next packet, then the
 * requested number of bytes are read, and the excess bytes in the packet are discarded."
 * "Writes greater than PIPE_BUF bytes ... will be split into multiple packets." */
TEST(packet_mode_reads_one_write_at_a_time) {
    int p[2];
    CHECK_OK(pipe2(p, O_DIRECT | O_NONBLOCK));
    CHECK_EQ(fcntl(p[1], F_GETFL) & O_DIRECT, O_DIRECT);
    CHECK_EQ(write(p[1], "abc", 3), 3);
    CHECK_EQ(write(p[1], "defg", 4), 4);
    static char big[PIPE_BUF + 10];
    memset(big, 'z', sizeof big);
    CHECK_EQ(write(p[1], big, sizeof big), (long)sizeof big);
    char buf[PIPE_BUF * 2];
    CHECK_EQ(read(p[0], buf, sizeof buf), 3);
    CHECK_EQ(read(p[0], buf, 2), 2);
    CHECK(!memcmp(buf, "de", 2));
    CHECK_EQ(read(p[0], buf, sizeof buf), PIPE_BUF);
    CHECK_EQ(read(p[0], buf, sizeof buf), 10);
    CHECK_ERR(read(p[0], buf, sizeof buf), EAGAIN);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* fcntl(2) F_SETFL can turn packet mode on and off on a pipe ("O_DIRECT ... can be changed"). */
TEST(setfl_switches_packet_mode) {
    int p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK_OK(fcntl(p[1], F_SETFL, O_NONBLOCK | O_DIRECT));
    CHECK_EQ(fcntl(p[1], F_GETFL), O_WRONLY | O_NONBLOCK | O_DIRECT);
    CHECK_EQ(write(p[1], "ab", 2), 2);
    CHECK_EQ(write(p[1], "cd", 2), 2);
    char buf[8];
    CHECK_EQ(read(p[0], buf, sizeof buf), 2);
    CHECK_EQ(read(p[0], buf, sizeof buf), 2);
    CHECK_OK(fcntl(p[1], F_SETFL, O_NONBLOCK));
    CHECK_EQ(write(p[1], "ef", 2), 2);
    CHECK_EQ(write(p[1], "gh", 2), 2);
    CHECK_EQ(read(p[0], buf, sizeof buf), 4);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* fstat(2) on a pipe: a FIFO (S_IFIFO) with mode 0600, one link, the same inode for both ends
 * and another inode for another pipe. */
TEST(fstat_shows_a_fifo) {
    int p[2], q[2];
    CHECK_OK(pipe(p));
    CHECK_OK(pipe(q));
    struct stat r, w, other;
    CHECK_OK(fstat(p[0], &r));
    CHECK_OK(fstat(p[1], &w));
    CHECK_OK(fstat(q[0], &other));
    CHECK(S_ISFIFO(r.st_mode));
    CHECK_EQ(r.st_mode & 07777, 0600);
    CHECK_EQ(r.st_nlink, 1);
    CHECK_EQ(r.st_size, 0);
    CHECK_EQ(r.st_uid, geteuid());
    CHECK_EQ(r.st_ino, w.st_ino);
    CHECK_EQ(r.st_dev, w.st_dev);
    CHECK(r.st_ino != other.st_ino);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(close(p[i]));
        CHECK_OK(close(q[i]));
    }
}

/* lseek(2): "ESPIPE fd is associated with a pipe, socket, or FIFO"; likewise pread and pwrite. */
TEST(seeking_a_pipe_is_espipe) {
    int p[2];
    CHECK_OK(pipe(p));
    char buf[4];
    CHECK_ERR(lseek(p[0], 0, SEEK_SET), ESPIPE);
    CHECK_ERR(lseek(p[1], 0, SEEK_CUR), ESPIPE);
    CHECK_ERR(pread(p[0], buf, 1, 0), ESPIPE);
    CHECK_ERR(pwrite(p[1], "x", 1, 0), ESPIPE);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* poll(2) on pipes: the read end is readable (POLLIN) when data waits and hung up (POLLHUP) when
 * no writer is left; the write end is writable (POLLOUT) while there is room and in error
 * (POLLERR) when no reader is left. */
TEST(poll_reports_pipe_readiness) {
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(revents(p[0], POLLIN), 0);
    CHECK_EQ(revents(p[1], POLLOUT), POLLOUT);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(revents(p[0], POLLIN | POLLOUT), POLLIN);
    CHECK_OK(close(p[1]));
    CHECK_EQ(revents(p[0], POLLIN), POLLIN | POLLHUP);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    /* POLLHUP is reported even when not asked for. */
    CHECK_EQ(revents(p[0], 0), POLLHUP);
    CHECK_OK(close(p[0]));
    CHECK_OK(pipe(p));
    CHECK_OK(close(p[0]));
    CHECK_EQ(revents(p[1], POLLOUT), POLLOUT | POLLERR);
    CHECK_OK(close(p[1]));
}

/* poll(2) "blocks until one of the events occurs or the timeout expires": on an empty pipe it
 * returns 0 after the timeout. */
TEST(poll_on_an_empty_pipe_times_out) {
    int p[2];
    CHECK_OK(pipe(p));
    struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    struct timespec t0, t1;
    CHECK_OK(clock_gettime(CLOCK_MONOTONIC, &t0));
    CHECK_EQ(poll(fds, 2, 50), 0);
    CHECK_OK(clock_gettime(CLOCK_MONOTONIC, &t1));
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 45);
    CHECK_EQ(fds[0].revents, 0);
    CHECK_EQ(fds[1].revents, 0);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* preadv2(2) with RWF_NOWAIT: "Do not wait for data which is not immediately available" -- on a
 * pipe, EAGAIN; with offset -1 the call reads at the current position, as a pipe needs. */
TEST(preadv2_nowait_on_an_empty_pipe_is_eagain) {
    int p[2];
    CHECK_OK(pipe(p));
    char buf[8];
    struct iovec iov = {buf, sizeof buf};
    CHECK_ERR(preadv2(p[0], &iov, 1, -1, RWF_NOWAIT), EAGAIN);
    CHECK_ERR(preadv2(p[0], &iov, 1, 0, 0), ESPIPE);
    CHECK_EQ(write(p[1], "abc", 3), 3);
    CHECK_EQ(preadv2(p[0], &iov, 1, -1, RWF_NOWAIT), 3);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

/* pwritev2(2) RWF_NOSIGNAL (Linux 6.18): a write to a pipe without readers fails with EPIPE but
 * raises no SIGPIPE, whose default action would end this process. Older kernels refuse the flag
 * with EOPNOTSUPP. */
TEST(pwritev2_nosignal_spares_the_sigpipe) {
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(close(p[0]));
    struct iovec iov = {"x", 1};
    errno = 0;
    long r = pwritev2(p[1], &iov, 1, -1, 0x100 /* RWF_NOSIGNAL */);
    CHECK_EQ(r, -1);
    CHECK(errno == EPIPE || errno == EOPNOTSUPP);
    CHECK_OK(close(p[1]));
}

/* mknod(2) and mkfifo(3) make a FIFO in the file system; stat shows S_IFIFO. */
TEST(mkfifo_makes_a_fifo) {
    CHECK(scratch());
    CHECK_OK(mkfifo(P("f"), 0640));
    CHECK_OK(mknod(P("g"), S_IFIFO | 0600, 0));
    struct stat st;
    CHECK_OK(stat(P("f"), &st));
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0640 & ~umask(022));
    CHECK_OK(stat(P("g"), &st));
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_ERR(mkfifo(P("f"), 0600), EEXIST);
}

/* fifo(7): "A process can open a FIFO in nonblocking mode. In this case, opening for read-only
 * succeeds even if no one has opened on the write side yet and opening for write-only fails
 * with ENXIO (no such device or address) unless the other end has already been opened." Both
 * ends then share one pipe. */
TEST(fifo_nonblocking_opens) {
    CHECK(scratch());
    CHECK_OK(mkfifo(P("f"), 0600));
    CHECK_ERR(open(P("f"), O_WRONLY | O_NONBLOCK), ENXIO);
    int r = open(P("f"), O_RDONLY | O_NONBLOCK);
    CHECK(r >= 0);
    int w = open(P("f"), O_WRONLY | O_NONBLOCK);
    CHECK(w >= 0);
    CHECK_EQ(write(w, "through", 7), 7);
    char buf[16] = {0};
    CHECK_EQ(read(r, buf, sizeof buf), 7);
    CHECK(!memcmp(buf, "through", 7));
    CHECK_ERR(read(r, buf, sizeof buf), EAGAIN);
    struct stat by_path, by_fd;
    CHECK_OK(stat(P("f"), &by_path));
    CHECK_OK(fstat(r, &by_fd));
    CHECK(S_ISFIFO(by_fd.st_mode));
    CHECK_EQ(by_fd.st_ino, by_path.st_ino);
    CHECK_ERR(lseek(r, 0, SEEK_SET), ESPIPE);
    CHECK_OK(close(w));
    CHECK_EQ(read(r, buf, sizeof buf), 0);
    CHECK_OK(close(r));
}

/* A reader that opened before any writer reads end of file and is not hung up: Linux reports
 * POLLHUP only once a writer has come and gone. */
TEST(fifo_reader_without_writer_sees_eof_but_no_hangup) {
    CHECK(scratch());
    CHECK_OK(mkfifo(P("f"), 0600));
    int r = open(P("f"), O_RDONLY | O_NONBLOCK);
    CHECK(r >= 0);
    char c;
    CHECK_EQ(read(r, &c, 1), 0);
    CHECK_EQ(revents(r, POLLIN), 0);
    int w = open(P("f"), O_WRONLY | O_NONBLOCK);
    CHECK(w >= 0);
    CHECK_OK(close(w));
    CHECK_EQ(revents(r, POLLIN), POLLHUP);
    CHECK_OK(close(r));
}

/* fifo(7): "Under Linux, opening a FIFO for read and write will succeed both in blocking and
 * nonblocking mode." Every opener shares the one pipe; what it held is gone once every end is
 * closed. */
TEST(fifo_rdwr_opens_share_one_pipe) {
    CHECK(scratch());
    CHECK_OK(mkfifo(P("f"), 0600));
    int a = open(P("f"), O_RDWR);
    CHECK(a >= 0);
    int b = open(P("f"), O_RDWR | O_NONBLOCK);
    CHECK(b >= 0);
    CHECK_EQ(write(a, "shared", 6), 6);
    int n = -1;
    CHECK_OK(ioctl(b, FIONREAD, &n));
    CHECK_EQ(n, 6);
    char buf[16];
    CHECK_EQ(read(b, buf, 2), 2);
    CHECK_OK(close(b));
    CHECK_OK(close(a));
    a = open(P("f"), O_RDWR | O_NONBLOCK);
    CHECK(a >= 0);
    CHECK_ERR(read(a, buf, sizeof buf), EAGAIN);
    CHECK_OK(close(a));
}

/* A FIFO's ends follow the pipe rules: a writer whose readers are gone gets EPIPE. */
TEST(fifo_writer_after_readers_left_is_epipe) {
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    CHECK(scratch());
    CHECK_OK(mkfifo(P("f"), 0600));
    int r = open(P("f"), O_RDONLY | O_NONBLOCK);
    CHECK(r >= 0);
    int w = open(P("f"), O_WRONLY);
    CHECK(w >= 0);
    CHECK_OK(close(r));
    CHECK_ERR(write(w, "x", 1), EPIPE);
    CHECK_EQ(revents(w, POLLOUT), POLLOUT | POLLERR);
    CHECK_OK(close(w));
}
