/* Signals interrupting blocking calls (signal(7), "Interruption of system calls and library
 * functions by signal handlers"): EINTR without SA_RESTART, transparent restart with it for
 * the calls that allow it, never for the ones that do not; partial transfers; and the timers
 * that raise the signals: alarm(2), setitimer(2), timer_create(2). */
#include "sig.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/time.h>

static volatile int hits;
static int go_fd = -1;

static void count(int sig) {
    (void)sig;
    hits++;
}

/* The handler that also tells a helper child to go on. */
static void count_and_go(int sig) {
    (void)sig;
    hits++;
    if (go_fd >= 0) write_byte(go_fd, 'g');
}

/* SIGALRM every 20 ms until disarmed. The thread may be preempted between arming and
 * blocking, so the first alarm can come too early; a later one then interrupts the call,
 * and no case depends on timing. */
static int alarm_every_20ms(void) {
    struct itimerval it = {{0, 20000}, {0, 20000}};
    return setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void) {
    struct itimerval zero = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &zero, NULL);
}

/* A child that writes one byte to fd after BOUND_MS, so that a blocking call a signal never
 * interrupts still returns (and the case fails instead of hanging). */
static pid_t watchdog(int fd) {
    pid_t pid = fork_quiet();
    if (pid == 0) {
        msleep(BOUND_MS);
        write_byte(fd, 'w');
        _exit(0);
    }
    return pid;
}

static void stop_watchdog(pid_t pid) {
    if (pid > 0) {
        kill(pid, SIGKILL);
        reap(pid);
    }
}

/* A child that waits (bounded) for a go-ahead on go[0] -- from the handler or the case --
 * then runs the statements and exits with 0 if the go-ahead came, 1 if it did not. */
#define HELPER(go, ...)                                                                   \
    ({                                                                                    \
        pid_t _pid = fork_quiet();                                                        \
        if (_pid == 0) {                                                                  \
            int _got = read_byte_within((go)[0], BOUND_MS) == 'g';                        \
            __VA_ARGS__;                                                                  \
            _exit(_got ? 0 : 1);                                                          \
        }                                                                                 \
        _pid;                                                                             \
    })

/* Runs `call` (an expression) with SIGALRM arriving every 20 ms, and stores its result and
 * errno in r and e; the timer is off again afterwards. */
#define INTERRUPTED(r, e, call)                                                           \
    do {                                                                                  \
        CHECK_OK(alarm_every_20ms());                                                     \
        errno = 0;                                                                        \
        r = (long)(call);                                                                 \
        e = errno;                                                                        \
        disarm();                                                                         \
    } while (0)

/* ---- read ---- */

/* signal(7): without SA_RESTART a blocked read "fails with the error EINTR". */
TEST(read_is_eintr_without_sa_restart) {
    int p[2];
    CHECK_OK(pipe(p));
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count, 0));
    pid_t wd = watchdog(p[1]);
    char c;
    long r;
    int e;
    INTERRUPTED(r, e, read(p[0], &c, 1));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    CHECK(hits >= 1);
    stop_watchdog(wd);
    close(p[0]);
    close(p[1]);
    CHECK_OK(set_default(SIGALRM));
}

/* "If a blocked call to one of the following interfaces is interrupted by a signal handler,
 * then the call is automatically restarted after the signal handler returns if the
 * SA_RESTART flag was used": read(2) on a pipe goes on waiting and returns the data a child
 * writes after the handler ran. */
TEST(read_is_restarted_with_sa_restart) {
    int p[2], go[2];
    CHECK_OK(pipe(p));
    CHECK_OK(pipe(go));
    hits = 0;
    go_fd = go[1];
    CHECK_OK(on_signal(SIGALRM, count_and_go, SA_RESTART));
    pid_t pid = HELPER(go, write(p[1], "hello", 5));
    char buf[16];
    long r;
    int e;
    INTERRUPTED(r, e, read(p[0], buf, sizeof buf));
    CHECK_EQ(r, 5);
    CHECK_EQ(e, 0);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK(hits >= 1);
    CHECK_EQ(exit_code_of(pid), 0);
    go_fd = -1;
    close(p[0]), close(p[1]), close(go[0]), close(go[1]);
    CHECK_OK(set_default(SIGALRM));
}

/* ---- write ---- */

/* pipe(7): a blocking write larger than the free space writes what fits and waits; a signal
 * then ends it with the partial count (signal(7): "If the call ... has already transferred
 * some data, the call returns a success status") -- SA_RESTART or not. */
TEST(write_to_a_full_pipe_returns_the_partial_count) {
    int p[2];
    CHECK_OK(pipe(p));
    long cap = fcntl(p[1], F_GETPIPE_SZ);
    CHECK_EQ(cap, 65536);
    static char buf[131072];
    long filled = cap - 4096;
    CHECK_EQ(write(p[1], buf, filled), filled);
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count, SA_RESTART));
    long r;
    int e;
    INTERRUPTED(r, e, write(p[1], buf, sizeof buf));
    CHECK_EQ(r, cap - filled);
    CHECK(hits >= 1);
    /* Nothing written at all: EINTR without SA_RESTART. */
    CHECK_OK(on_signal(SIGALRM, count, 0));
    INTERRUPTED(r, e, write(p[1], buf, 1));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    close(p[0]);
    close(p[1]);
    CHECK_OK(set_default(SIGALRM));
}

/* With SA_RESTART, a write to a full pipe that has written nothing is restarted and
 * completes once a reader makes room. */
TEST(write_to_a_full_pipe_is_restarted_with_sa_restart) {
    int p[2], go[2];
    CHECK_OK(pipe(p));
    CHECK_OK(pipe(go));
    long cap = fcntl(p[1], F_GETPIPE_SZ);
    CHECK(cap > 0);
    static char buf[65536 * 4];
    CHECK(cap <= (long)sizeof buf);
    CHECK_OK(fcntl(p[1], F_SETFL, O_NONBLOCK));
    CHECK_EQ(write(p[1], buf, cap), cap);
    CHECK_OK(fcntl(p[1], F_SETFL, 0));
    hits = 0;
    go_fd = go[1];
    CHECK_OK(on_signal(SIGALRM, count_and_go, SA_RESTART));
    pid_t pid = HELPER(go, {
        long drained = 0;
        while (drained < cap + 100) {
            long n = read(p[0], buf, sizeof buf);
            if (n <= 0) break;
            drained += n;
        }
        if (drained != cap + 100) _exit(2);
    });
    long r;
    int e;
    INTERRUPTED(r, e, write(p[1], buf, 100));
    CHECK_EQ(r, 100);
    CHECK_EQ(e, 0);
    CHECK(hits >= 1);
    CHECK_EQ(exit_code_of(pid), 0);
    go_fd = -1;
    close(p[0]), close(p[1]), close(go[0]), close(go[1]);
    CHECK_OK(set_default(SIGALRM));
}

/* ---- wait4 ---- */

/* wait(2) is in signal(7)'s list of restartable calls: with SA_RESTART it goes on waiting
 * for the child (which exits once the handler has run); without, EINTR. */
TEST(wait4_is_eintr_without_and_restarted_with_sa_restart) {
    int go[2];
    CHECK_OK(pipe(go));
    go_fd = go[1];
    long r;
    int e, status = 0;
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count, 0));
    pid_t pid = HELPER(go, (void)0);
    INTERRUPTED(r, e, waitpid(pid, &status, 0));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    CHECK(hits >= 1);
    CHECK_OK(write_byte(go[1], 'g'));
    CHECK_EQ(exit_code_of(pid), 0);
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count_and_go, SA_RESTART));
    pid = HELPER(go, (void)0);
    INTERRUPTED(r, e, waitpid(pid, &status, 0));
    CHECK_EQ(r, pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK(hits >= 1);
    go_fd = -1;
    close(go[0]), close(go[1]);
    CHECK_OK(set_default(SIGALRM));
}

/* ---- futex ---- */

/* signal(7) lists "futex(2) FUTEX_WAIT (since Linux 2.6.22 ...)" among the restarted calls:
 * a wait without a timeout is EINTR without SA_RESTART, and with it is restarted (and then
 * sees the word a child changes after the handler ran: 0 or EAGAIN). */
TEST(futex_wait_is_eintr_without_and_restarted_with_sa_restart) {
    int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(word != MAP_FAILED);
    int go[2];
    CHECK_OK(pipe(go));
    go_fd = go[1];
    for (int restart = 0; restart < 2; restart++) {
        *word = 0;
        hits = 0;
        CHECK_OK(on_signal(SIGALRM, restart ? count_and_go : count, restart ? SA_RESTART : 0));
        pid_t pid = HELPER(go, {
            __atomic_store_n(word, 1, __ATOMIC_SEQ_CST);
            futex(word, FUTEX_WAKE, 1, NULL, NULL, 0);
        });
        long r;
        int e;
        INTERRUPTED(r, e, futex(word, FUTEX_WAIT, 0, NULL, NULL, 0));
        if (restart) {
            CHECK(r == 0 || (r == -1 && e == EAGAIN));
        } else {
            CHECK_EQ(r, -1);
            CHECK_EQ(e, EINTR);
            CHECK_OK(write_byte(go[1], 'g'));
        }
        CHECK(hits >= 1);
        CHECK_EQ(exit_code_of(pid), 0);
    }
    go_fd = -1;
    close(go[0]), close(go[1]);
    munmap(word, 4096);
    CHECK_OK(set_default(SIGALRM));
}

/* A FUTEX_WAIT with a timeout is not restarted after a handler: EINTR even with
 * SA_RESTART (futex(2): "EINTR A FUTEX_WAIT or FUTEX_WAIT_BITSET operation was interrupted by
 * a signal"). */
TEST(futex_wait_with_timeout_is_eintr_even_with_sa_restart) {
    int word = 0;
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count, SA_RESTART));
    struct timespec ts = {2, 0};
    long start = now_ns(CLOCK_MONOTONIC);
    long r;
    int e;
    INTERRUPTED(r, e, futex(&word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    CHECK(now_ns(CLOCK_MONOTONIC) - start < 1000000000L);
    CHECK(hits >= 1);
    CHECK_OK(set_default(SIGALRM));
}

/* ---- calls never restarted ---- */

/* nanosleep(2): "EINTR The pause has been interrupted by a signal handler", and "the
 * remaining time is written into the structure pointed to by rem"; never restarted.
 * clock_nanosleep(2) returns EINTR as its result, and leaves rem alone for TIMER_ABSTIME. */
TEST(nanosleep_is_eintr_with_the_remaining_time) {
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count, SA_RESTART));
    struct timespec req = {1, 0}, rem = {-1, -1};
    long r;
    int e;
    INTERRUPTED(r, e, nanosleep(&req, &rem));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    CHECK(hits >= 1);
    CHECK(rem.tv_sec == 0 && rem.tv_nsec > 500 * 1000 * 1000);
    CHECK(rem.tv_nsec < 1000 * 1000 * 1000);
    rem.tv_sec = rem.tv_nsec = -1;
    INTERRUPTED(r, e, clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem));
    CHECK_EQ(r, EINTR);
    CHECK(rem.tv_sec == 0 && rem.tv_nsec > 500 * 1000 * 1000);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 1;
    rem.tv_sec = 77;
    rem.tv_nsec = 77;
    INTERRUPTED(r, e, clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, &rem));
    CHECK_EQ(r, EINTR);
    CHECK_EQ(rem.tv_sec, 77);
    CHECK_EQ(rem.tv_nsec, 77);
    CHECK_OK(set_default(SIGALRM));
}

/* pause(2) "returns only when a signal was caught and the signal-catching function
 * returned. In this case, pause() returns -1, and errno is set to EINTR." */
TEST(pause_returns_eintr_after_the_handler) {
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count, SA_RESTART));
    long r;
    int e;
    INTERRUPTED(r, e, pause());
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    CHECK(hits >= 1);
    CHECK_OK(set_default(SIGALRM));
}

/* signal(7): "The following interfaces are never restarted after being interrupted by a
 * signal handler, regardless of the use of SA_RESTART; they always fail with the error EINTR
 * ...: File descriptor multiplexing interfaces: epoll_wait(2), epoll_pwait(2), poll(2),
 * ppoll(2), select(2), and pselect(2)." */
TEST(poll_select_epoll_are_eintr_even_with_sa_restart) {
    int p[2];
    CHECK_OK(pipe(p));
    hits = 0;
    CHECK_OK(on_signal(SIGALRM, count, SA_RESTART));
    pid_t wd = watchdog(p[1]);
    long r;
    int e;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    INTERRUPTED(r, e, poll(&pfd, 1, -1));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    INTERRUPTED(r, e, ppoll(&pfd, 1, NULL, NULL));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    fd_set set;
    FD_ZERO(&set);
    FD_SET(p[0], &set);
    INTERRUPTED(r, e, select(p[0] + 1, &set, NULL, NULL, NULL));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    FD_ZERO(&set);
    FD_SET(p[0], &set);
    INTERRUPTED(r, e, pselect(p[0] + 1, &set, NULL, NULL, NULL, NULL));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    int ep = epoll_create1(0);
    CHECK(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]}, out;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    INTERRUPTED(r, e, epoll_wait(ep, &out, 1, -1));
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    CHECK(hits >= 5);
    stop_watchdog(wd);
    close(ep);
    close(p[0]);
    close(p[1]);
    CHECK_OK(set_default(SIGALRM));
}

/* ---- alarm and setitimer ---- */

/* alarm(2): "returns the number of seconds remaining until any previously scheduled alarm
 * was due to be delivered, or zero if there was no previously scheduled alarm"; alarm(0)
 * cancels. alarm and ITIMER_REAL are the same timer. */
TEST(alarm_returns_the_seconds_left) {
    alarm(0);
    CHECK_EQ(alarm(10), 0);
    CHECK_EQ(alarm(5), 10);
    struct itimerval it;
    CHECK_OK(getitimer(ITIMER_REAL, &it));
    CHECK(it.it_value.tv_sec == 4 || it.it_value.tv_sec == 5);
    CHECK_EQ(it.it_interval.tv_sec, 0);
    CHECK_EQ(it.it_interval.tv_usec, 0);
    CHECK_EQ(alarm(0), 5);
    CHECK_OK(getitimer(ITIMER_REAL, &it));
    CHECK_EQ(it.it_value.tv_sec, 0);
    CHECK_EQ(it.it_value.tv_usec, 0);
}

/* setitimer(2): getitimer reports the time left and the interval as set; setitimer returns
 * the old value; a zero it_value disarms. For all three timers. */
TEST(setitimer_and_getitimer_round_trip) {
    int which[3] = {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF};
    for (int i = 0; i < 3; i++) {
        struct itimerval set = {{1, 250000}, {10, 0}}, old, now;
        CHECK_OK(setitimer(which[i], &set, &old));
        CHECK_EQ(old.it_value.tv_sec, 0);
        CHECK_EQ(old.it_value.tv_usec, 0);
        CHECK_OK(getitimer(which[i], &now));
        CHECK_EQ(now.it_interval.tv_sec, 1);
        CHECK_EQ(now.it_interval.tv_usec, 250000);
        /* The CPU-time timers may round up by a tick. */
        CHECK(now.it_value.tv_sec == 9 || now.it_value.tv_sec == 10);
        struct itimerval zero = {{0, 0}, {0, 0}};
        CHECK_OK(setitimer(which[i], &zero, &old));
        CHECK_EQ(old.it_interval.tv_sec, 1);
        CHECK_EQ(old.it_interval.tv_usec, 250000);
        CHECK(old.it_value.tv_sec >= 9);
        CHECK_OK(getitimer(which[i], &now));
        CHECK_EQ(now.it_value.tv_sec, 0);
        CHECK_EQ(now.it_value.tv_usec, 0);
        CHECK_EQ(now.it_interval.tv_sec, 0);
    }
}

/* setitimer(2): "EINVAL which is not one of ITIMER_REAL, ITIMER_VIRTUAL, or ITIMER_PROF; or
 * ... new_value.it_value.tv_usec is outside the range [0, 999999]". */
TEST(setitimer_errors) {
    struct itimerval it = {{0, 0}, {1, 0}};
    CHECK_ERR(setitimer(3, &it, NULL), EINVAL);
    CHECK_ERR(getitimer(3, &it), EINVAL);
    it.it_value.tv_usec = 1000000;
    CHECK_ERR(setitimer(ITIMER_REAL, &it, NULL), EINVAL);
    it.it_value.tv_usec = -1;
    CHECK_ERR(setitimer(ITIMER_REAL, &it, NULL), EINVAL);
    it.it_value.tv_usec = 0;
    it.it_interval.tv_usec = 1000000;
    CHECK_ERR(setitimer(ITIMER_REAL, &it, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_getitimer, ITIMER_REAL, (void *)8), EFAULT);
    struct itimerval now;
    CHECK_OK(getitimer(ITIMER_REAL, &now));
    CHECK_EQ(now.it_value.tv_sec, 0);
}

/* An ITIMER_REAL with an interval "reloads" and keeps sending SIGALRM (si_code SI_KERNEL). */
TEST(itimer_real_with_an_interval_fires_repeatedly) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    struct itimerval it = {{0, 5000}, {0, 5000}};
    CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
    struct timespec bound = {BOUND_MS / 1000, 0};
    for (int i = 0; i < 3; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        CHECK_EQ(sigtimedwait(&set, &si, &bound), SIGALRM);
        CHECK_EQ(si.si_code, SI_KERNEL);
    }
    disarm();
    struct timespec zero = {0, 0};
    sigtimedwait(&set, NULL, &zero);
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
}

static volatile int vt_hits, prof_hits;
static void on_vtalrm(int sig) {
    (void)sig;
    vt_hits++;
}
static void on_prof(int sig) {
    (void)sig;
    prof_hits++;
}

/* ITIMER_VIRTUAL "counts down against the user-mode CPU time consumed by the process" and
 * sends SIGVTALRM; ITIMER_PROF counts user and system time and sends SIGPROF. */
TEST(itimer_virtual_and_prof_fire_after_cpu_time) {
    vt_hits = prof_hits = 0;
    CHECK_OK(on_signal(SIGVTALRM, on_vtalrm, 0));
    CHECK_OK(on_signal(SIGPROF, on_prof, 0));
    struct itimerval it = {{0, 0}, {0, 10000}};
    CHECK_OK(setitimer(ITIMER_VIRTUAL, &it, NULL));
    CHECK_OK(setitimer(ITIMER_PROF, &it, NULL));
    long start = now_ns(CLOCK_MONOTONIC);
    volatile unsigned long spin = 0;
    while ((!vt_hits || !prof_hits) && now_ns(CLOCK_MONOTONIC) - start < BOUND_MS * 1000000L)
        spin++;
    CHECK_EQ(vt_hits, 1);
    CHECK_EQ(prof_hits, 1);
    CHECK_OK(set_default(SIGVTALRM));
    CHECK_OK(set_default(SIGPROF));
}

/* getitimer(2)/fork(2): "A child created via fork(2) does not inherit its parent's interval
 * timers"; nor its POSIX timers (timer_create(2)). */
TEST(timers_are_not_inherited_by_fork) {
    struct itimerval it = {{0, 0}, {10, 0}};
    CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    int id = -1;
    CHECK_OK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id));
    pid_t pid = fork_quiet();
    if (pid == 0) {
        struct itimerval now;
        struct itimerspec ts;
        int ok = getitimer(ITIMER_REAL, &now) == 0 && now.it_value.tv_sec == 0 &&
                 now.it_value.tv_usec == 0 && syscall(SYS_timer_gettime, id, &ts) == -1 &&
                 errno == EINVAL;
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ(exit_code_of(pid), 0);
    disarm();
    CHECK_OK(syscall(SYS_timer_delete, id));
}

/* ---- POSIX timers (raw system calls, so timer ids are the kernel's) ---- */

static int timer_new(clockid_t clock, int notify, int sig, int value, pid_t tid) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = notify;
    sev.sigev_signo = sig;
    sev.sigev_value.sival_int = value;
    sev._sigev_un._tid = tid;
    int id = -1;
    if (syscall(SYS_timer_create, clock, &sev, &id)) return -1;
    return id;
}

static long timer_arm(int id, long value_ns, long interval_ns, int flags) {
    struct itimerspec ts = {{interval_ns / 1000000000L, interval_ns % 1000000000L},
                            {value_ns / 1000000000L, value_ns % 1000000000L}};
    return syscall(SYS_timer_settime, id, flags, &ts, NULL);
}

/* timer_create(2) SIGEV_SIGNAL: "Upon timer expiration, generate the signal sigev_signo ...
 * the si_code field of the siginfo_t structure will be set to SI_TIMER", with si_value the
 * sigev_value and si_timerid the timer. */
TEST(sigev_signal_timer_sends_si_timer_with_value) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    int id = timer_new(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 42, 0);
    CHECK(id >= 0);
    CHECK_OK(timer_arm(id, 10 * 1000 * 1000, 0, 0));
    struct timespec bound = {BOUND_MS / 1000, 0};
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&set, &si, &bound), SIGUSR1);
    CHECK_EQ(si.si_code, SI_TIMER);
    CHECK_EQ(si.si_value.sival_int, 42);
    CHECK_EQ(si.si_timerid, id);
    CHECK_EQ(si.si_overrun, 0);
    CHECK_OK(syscall(SYS_timer_delete, id));
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
}

/* "If sevp is specified as NULL, then the default is ... SIGEV_SIGNAL, SIGALRM, and
 * sigev_value.sival_int = the timer ID." A handler sees the same. */
TEST(null_sigevent_means_sigalrm_with_the_timer_id) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    int id = -1;
    CHECK_OK(syscall(SYS_timer_create, CLOCK_REALTIME, NULL, &id));
    CHECK_OK(timer_arm(id, 5 * 1000 * 1000, 0, 0));
    struct timespec bound = {BOUND_MS / 1000, 0};
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&set, &si, &bound), SIGALRM);
    CHECK_EQ(si.si_code, SI_TIMER);
    CHECK_EQ(si.si_value.sival_int, id);
    CHECK_OK(syscall(SYS_timer_delete, id));
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
}

/* timer_settime(2)/timer_gettime: the time left and the interval; the old setting is
 * returned; an it_value of zero disarms; TIMER_ABSTIME takes an absolute time, and one in the
 * past expires at once. */
TEST(timer_settime_gettime_round_trip) {
    /* SIGEV_SIGNAL: a disarmed SIGEV_NONE timer may still report its old expiry on Linux. */
    int id = timer_new(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR2, 0, 0);
    CHECK(id >= 0);
    struct itimerspec ts, old, now;
    memset(&now, 0xff, sizeof now);
    CHECK_OK(syscall(SYS_timer_gettime, id, &now));
    CHECK_EQ(now.it_value.tv_sec, 0);
    CHECK_EQ(now.it_value.tv_nsec, 0);
    ts.it_value.tv_sec = 10;
    ts.it_value.tv_nsec = 0;
    ts.it_interval.tv_sec = 2;
    ts.it_interval.tv_nsec = 500;
    CHECK_OK(syscall(SYS_timer_settime, id, 0, &ts, &old));
    CHECK_EQ(old.it_value.tv_sec, 0);
    CHECK_EQ(old.it_value.tv_nsec, 0);
    CHECK_OK(syscall(SYS_timer_gettime, id, &now));
    CHECK_EQ(now.it_interval.tv_sec, 2);
    CHECK_EQ(now.it_interval.tv_nsec, 500);
    CHECK(now.it_value.tv_sec == 9 || (now.it_value.tv_sec == 10 && now.it_value.tv_nsec == 0));
    struct itimerspec zero;
    memset(&zero, 0, sizeof zero);
    CHECK_OK(syscall(SYS_timer_settime, id, 0, &zero, &old));
    CHECK_EQ(old.it_interval.tv_sec, 2);
    CHECK(old.it_value.tv_sec >= 9);
    CHECK_OK(syscall(SYS_timer_gettime, id, &now));
    CHECK_EQ(now.it_value.tv_sec, 0);
    CHECK_EQ(now.it_value.tv_nsec, 0);
    /* Absolute: now + 10 s reads as about 10 s left. */
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    ts.it_value.tv_sec = t.tv_sec + 10;
    ts.it_value.tv_nsec = t.tv_nsec;
    ts.it_interval.tv_sec = ts.it_interval.tv_nsec = 0;
    CHECK_OK(syscall(SYS_timer_settime, id, TIMER_ABSTIME, &ts, NULL));
    CHECK_OK(syscall(SYS_timer_gettime, id, &now));
    CHECK(now.it_value.tv_sec == 9 || now.it_value.tv_sec == 10);
    CHECK_OK(syscall(SYS_timer_delete, id));
}

/* SIGEV_NONE: "Don't asynchronously notify when the timer expires. Progress of the timer can
 * be monitored using timer_gettime(2)": it counts down to zero and no signal comes. */
TEST(sigev_none_timer_counts_down_without_a_signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    sev.sigev_signo = SIGALRM;
    int id = -1;
    CHECK_OK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id));
    CHECK_OK(timer_arm(id, 20 * 1000 * 1000, 0, 0));
    struct itimerspec now;
    CHECK_OK(syscall(SYS_timer_gettime, id, &now));
    CHECK(now.it_value.tv_sec == 0 && now.it_value.tv_nsec > 0);
    CHECK(now.it_value.tv_nsec <= 20 * 1000 * 1000);
    msleep(40);
    CHECK_OK(syscall(SYS_timer_gettime, id, &now));
    CHECK_EQ(now.it_value.tv_sec, 0);
    CHECK_EQ(now.it_value.tv_nsec, 0);
    CHECK(!is_pending(SIGALRM));
    CHECK_OK(syscall(SYS_timer_delete, id));
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
}

/* timer_getoverrun(2): while the signal is pending, further expirations are not queued but
 * counted; the count is in si_overrun and returned by timer_getoverrun for the last signal
 * delivered. */
TEST(timer_overruns_are_counted) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    int id = timer_new(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR2, 0, 0);
    CHECK(id >= 0);
    CHECK_OK(timer_arm(id, 1000000, 1000000, 0));
    msleep(50);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec bound = {BOUND_MS / 1000, 0};
    CHECK_EQ(sigtimedwait(&set, &si, &bound), SIGUSR2);
    CHECK_EQ(si.si_code, SI_TIMER);
    CHECK(si.si_overrun >= 10);
    CHECK_EQ(syscall(SYS_timer_getoverrun, id), si.si_overrun);
    CHECK_OK(syscall(SYS_timer_delete, id));
    struct timespec zero = {0, 0};
    sigtimedwait(&set, NULL, &zero);
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
}

static volatile pid_t handled_on;
static void note_tid(int sig) {
    (void)sig;
    handled_on = gettid_();
}

static volatile int thread_tid, thread_stop;
static void *idle_thread(void *arg) {
    (void)arg;
    thread_tid = gettid_();
    while (!__atomic_load_n(&thread_stop, __ATOMIC_SEQ_CST)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* SIGEV_THREAD_ID: "the signal is targeted at the thread whose ID is given in
 * sigev_notify_thread_id, which must be a thread in the same process as the caller." */
TEST(sigev_thread_id_timer_signals_that_thread) {
    CHECK_OK(on_signal(SIGUSR1, note_tid, 0));
    thread_tid = 0;
    thread_stop = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, idle_thread, NULL), 0);
    CHECK(wait_flag(&thread_tid, BOUND_MS));
    /* The main thread blocks it, so only the targeting can bring it to the other thread. */
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    int id = timer_new(CLOCK_MONOTONIC, SIGEV_SIGNAL | SIGEV_THREAD_ID, SIGUSR1, 0, thread_tid);
    CHECK(id >= 0);
    handled_on = 0;
    CHECK_OK(timer_arm(id, 5 * 1000 * 1000, 0, 0));
    CHECK(wait_flag((volatile int *)&handled_on, BOUND_MS));
    CHECK_EQ(handled_on, thread_tid);
    CHECK_OK(syscall(SYS_timer_delete, id));
    thread_stop = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_OK(set_default(SIGUSR1));
}

/* timer_create(2): "EINVAL Clock ID, sigev_notify, sigev_signo, or sigev_notify_thread_id is
 * invalid"; the other calls: EINVAL for a timer id that does not exist, and for a tv_nsec
 * out of range. */
TEST(timer_errors) {
    int id = -1;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    CHECK_ERR(syscall(SYS_timer_create, 99, &sev, &id), EINVAL);
    sev.sigev_signo = 0;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id), EINVAL);
    sev.sigev_signo = 65;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id), EINVAL);
    sev.sigev_signo = SIGUSR1;
    sev.sigev_notify = 99;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id), EINVAL);
    /* A thread id that is not a thread of this process. */
    pid_t pid = fork_quiet();
    if (pid == 0) _exit(0);
    CHECK_EQ(exit_code_of(pid), 0);
    sev.sigev_notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
    sev._sigev_un._tid = pid;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id), EINVAL);
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, (void *)8, &id), EFAULT);
    sev.sigev_notify = SIGEV_NONE;
    CHECK_OK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id));
    struct itimerspec ts = {{0, 0}, {1, 1000000000}};
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, &ts, NULL), EINVAL);
    ts.it_value.tv_nsec = -1;
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, &ts, NULL), EINVAL);
    CHECK_OK(syscall(SYS_timer_delete, id));
    CHECK_ERR(syscall(SYS_timer_delete, id), EINVAL);
    ts.it_value.tv_nsec = 0;
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, &ts, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_timer_gettime, id, &ts), EINVAL);
    CHECK_ERR(syscall(SYS_timer_getoverrun, id), EINVAL);
    CHECK_ERR(syscall(SYS_timer_delete, 123456), EINVAL);
}
