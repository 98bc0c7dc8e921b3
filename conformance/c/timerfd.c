/* timerfd_create(2), timerfd_settime(2), timerfd_gettime(2): timers read as a count of
 * expirations. Timing checks leave room for a loaded machine. */
#include "scratch.h"

#include <poll.h>
#include <stdint.h>
#include <sys/timerfd.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct itimerspec spec_ms(long value, long interval) {
    struct itimerspec its = {
        .it_value = {value / 1000, (value % 1000) * 1000000},
        .it_interval = {interval / 1000, (interval % 1000) * 1000000},
    };
    return its;
}

static long ms(struct timespec ts) { return ts.tv_sec * 1000 + ts.tv_nsec / 1000000; }

/* "EINVAL The clockid is not valid" or flags are; TFD_CLOEXEC and TFD_NONBLOCK act as
 * O_CLOEXEC and O_NONBLOCK. */
TEST(create_checks_clock_and_flags) {
    CHECK_ERR(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0), EINVAL);
    CHECK_ERR(timerfd_create(CLOCK_MONOTONIC_RAW, 0), EINVAL);
    CHECK_ERR(timerfd_create(99, 0), EINVAL);
    CHECK_ERR(timerfd_create(CLOCK_MONOTONIC, O_APPEND), EINVAL);
    int clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    for (int i = 0; i < 3; i++) {
        int fd = timerfd_create(clocks[i], TFD_CLOEXEC | TFD_NONBLOCK);
        CHECK(fd >= 0);
        CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
        CHECK_EQ(fcntl(fd, F_GETFL), O_RDWR | O_NONBLOCK);
        close(fd);
    }
}

/* A new timer is disarmed: gettime shows zeros, a non-blocking read fails with EAGAIN. */
TEST(new_timer_is_disarmed) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its;
    memset(&its, 0xff, sizeof its);
    CHECK_OK(timerfd_gettime(fd, &its));
    CHECK(its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0);
    CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 0);
    uint64_t n;
    CHECK_ERR(read(fd, &n, 8), EAGAIN);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);
    close(fd);
}

/* A relative one-shot timer: a read "blocks until the timer next expires" and returns the
 * number of expirations (1); afterwards the timer is disarmed. */
TEST(one_shot_relative) {
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = spec_ms(50, 0), cur;
    long start = now_ms();
    CHECK_OK(timerfd_settime(fd, 0, &its, NULL));
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK(ms(cur.it_value) > 0 && ms(cur.it_value) <= 50);
    uint64_t n = 0;
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK_EQ(n, 1);
    CHECK(now_ms() - start >= 45);
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    close(fd);
}

/* A periodic timer counts every expiration since the last read. */
TEST(periodic_counts_expirations) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = spec_ms(20, 20), cur;
    CHECK_OK(timerfd_settime(fd, 0, &its, NULL));
    usleep(110000);
    uint64_t n = 0;
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK(n >= 4 && n <= 7);
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK_EQ(ms(cur.it_interval), 20);
    CHECK(ms(cur.it_value) <= 20);
    /* The next read waits for the next period. */
    int blocking = fcntl(fd, F_GETFL) & ~O_NONBLOCK;
    CHECK_OK(fcntl(fd, F_SETFL, blocking));
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK(n >= 1 && n <= 2);
    close(fd);
}

/* TFD_TIMER_ABSTIME: "the new value is interpreted as an absolute value for the clock",
 * for each clock. */
TEST(absolute_times) {
    int clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    for (int i = 0; i < 3; i++) {
        int fd = timerfd_create(clocks[i], 0);
        struct timespec now;
        clock_gettime(clocks[i], &now);
        struct itimerspec its = {.it_value = now};
        its.it_value.tv_nsec += 40000000;
        if (its.it_value.tv_nsec >= 1000000000) {
            its.it_value.tv_sec++;
            its.it_value.tv_nsec -= 1000000000;
        }
        long start = now_ms();
        CHECK_OK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL));
        struct itimerspec cur;
        CHECK_OK(timerfd_gettime(fd, &cur));
        /* gettime answers relative to now. */
        CHECK(cur.it_value.tv_sec == 0 && ms(cur.it_value) <= 40);
        uint64_t n = 0;
        CHECK_EQ(read(fd, &n, 8), 8);
        CHECK_EQ(n, 1);
        CHECK(now_ms() - start >= 30);
        close(fd);
    }
}

/* An absolute time already past expires at once; a periodic one counts the periods that
 * passed. */
TEST(absolute_time_in_the_past) {
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec its = {.it_value = {now.tv_sec - 1, now.tv_nsec},
                             .it_interval = {0, 100000000}};
    CHECK_OK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 2000), 1);
    uint64_t n = 0;
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK(n >= 10 && n <= 12);
    close(fd);
}

/* timerfd_settime returns the old setting in old_value; setting a zero it_value disarms;
 * a new setting forgets expirations not yet read. */
TEST(settime_old_value_disarm_and_reset) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = spec_ms(10000, 5000), old;
    CHECK_OK(timerfd_settime(fd, 0, &its, NULL));
    struct itimerspec zero = spec_ms(0, 0);
    CHECK_OK(timerfd_settime(fd, 0, &zero, &old));
    CHECK(ms(old.it_value) > 9000 && ms(old.it_value) <= 10000);
    CHECK_EQ(ms(old.it_interval), 5000);
    CHECK_OK(timerfd_gettime(fd, &old));
    CHECK_EQ(ms(old.it_value), 0);
    its = spec_ms(1, 0);
    CHECK_OK(timerfd_settime(fd, 0, &its, NULL));
    usleep(30000);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 1);
    its = spec_ms(10000, 0);
    CHECK_OK(timerfd_settime(fd, 0, &its, NULL));
    uint64_t n;
    CHECK_ERR(read(fd, &n, 8), EAGAIN);
    close(fd);
}

/* timerfd_settime ERRORS: EINVAL for bad flags or "new_value is not properly initialized
 * (one of the tv_nsec falls outside the range zero to 999,999,999)", EBADF, "EINVAL fd is
 * not a valid timerfd file descriptor", EFAULT. */
TEST(settime_and_gettime_errors) {
    int fd = timerfd_create(CLOCK_MONOTONIC, 0), p[2];
    CHECK_OK(pipe(p));
    struct itimerspec its = spec_ms(100, 0), bad = spec_ms(100, 0);
    CHECK_ERR(timerfd_settime(fd, 4, &its, NULL), EINVAL);
    bad.it_value.tv_nsec = 1000000000;
    CHECK_ERR(timerfd_settime(fd, 0, &bad, NULL), EINVAL);
    bad = spec_ms(100, 0);
    bad.it_interval.tv_nsec = -1;
    CHECK_ERR(timerfd_settime(fd, 0, &bad, NULL), EINVAL);
    bad = spec_ms(100, 0);
    bad.it_value.tv_sec = -1;
    CHECK_ERR(timerfd_settime(fd, 0, &bad, NULL), EINVAL);
    CHECK_ERR(timerfd_settime(-1, 0, &its, NULL), EBADF);
    CHECK_ERR(timerfd_settime(p[0], 0, &its, NULL), EINVAL);
    CHECK_ERR(timerfd_settime(fd, 0, NULL, NULL), EFAULT);
    CHECK_ERR(timerfd_gettime(p[0], &its), EINVAL);
    CHECK_ERR(timerfd_gettime(fd, NULL), EFAULT);
    CHECK_OK(timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL));
    close(p[0]);
    close(p[1]);
    close(fd);
}

/* Reads need 8 bytes ("EINVAL ... buffer ... less than 8 bytes"); writes are refused. */
TEST(read_size_and_no_write) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    char small[4];
    CHECK_ERR(read(fd, small, 4), EINVAL);
    uint64_t n = 1;
    CHECK_ERR(write(fd, &n, 8), EINVAL);
    close(fd);
}

/* /proc/self/fd names it "anon_inode:[timerfd]"; fdinfo shows the clock and the count. */
TEST(proc_entries) {
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = spec_ms(100000, 3000);
    CHECK_OK(timerfd_settime(fd, 0, &its, NULL));
    char path[64], link[64] = {0};
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    CHECK(readlink(path, link, sizeof link - 1) > 0);
    CHECK(!strcmp(link, "anon_inode:[timerfd]"));
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int info = open(path, O_RDONLY);
    CHECK(info >= 0);
    char text[512] = {0};
    CHECK(read(info, text, sizeof text - 1) > 0);
    CHECK(strstr(text, "clockid: 1\nticks: 0\nsettime flags: 00\nit_value: (99, ") != NULL);
    CHECK(strstr(text, "it_interval: (3, 0)\n") != NULL);
    close(info);
    close(fd);
}
