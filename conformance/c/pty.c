/* Pseudo-terminals and the terminal line discipline: pty(7), termios(3), tty_ioctl(2),
 * credentials(7)'s job control. Pairs come from /dev/ptmx (openpty(3), posix_openpt(3));
 * cases that need a session with the slave as its controlling terminal fork a child that
 * calls setsid(2) and TIOCSCTTY, and report a failed check as the child's exit status
 * (`CHILD_CHECK`: the status is the line modulo 250, plus one, and the line goes to stderr).
 *
 * The kernel moves bytes between the two sides of a pty asynchronously, so a side that
 * expects bytes waits for them with poll(2) (`read_for`) instead of reading at once. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* The kernel's struct termios2 and TCGETS2 (<asm/termbits.h> clashes with <termios.h>). */
struct ktermios2 {
    unsigned c_iflag, c_oflag, c_cflag, c_lflag;
    unsigned char c_line, c_cc[19];
    unsigned c_ispeed, c_ospeed;
};
#define K_TCGETS2 0x802c542a

#define CHILD_CHECK(cond)                                                                 \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "child line %d: %s (errno %s)\n", __LINE__, #cond,            \
                    strerrorname_np(errno));                                              \
            _exit(__LINE__ % 250 + 1);                                                    \
        }                                                                                 \
    } while (0)

/* How a child ended: its exit status, or minus the signal that killed it. */
static int child_status(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1000;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/* Reads from `fd` until `want` bytes came or `ms` milliseconds passed with none coming;
 * returns how many were read. */
static int read_for(int fd, char *buf, int want, int ms) {
    int got = 0;
    while (got < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) <= 0 || !(p.revents & POLLIN)) break;
        int n = read(fd, buf + got, want - got);
        if (n <= 0) break;
        got += n;
    }
    return got;
}

/* The events poll(2) reports for `fd` within `ms` milliseconds. */
static int revents(int fd, short events, int ms) {
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, ms) < 0) return -1;
    return p.revents;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Puts the slave in raw mode (cfmakeraw) with these VMIN and VTIME. */
static int make_raw(int fd, int vmin, int vtime) {
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return -1;
    cfmakeraw(&t);
    t.c_cc[VMIN] = vmin;
    t.c_cc[VTIME] = vtime;
    return tcsetattr(fd, TCSANOW, &t);
}

/* In a forked child: a new session whose controlling terminal is `slave`. */
static int take_terminal(int slave) {
    if (setsid() < 0) return -1;
    return ioctl(slave, TIOCSCTTY, 0);
}

/* Waits (at most 5 s) for one byte on `fd`: a child saying it is ready. */
static int wait_ready(int fd) {
    char c;
    return read_for(fd, &c, 1, 5000) == 1 ? 0 : -1;
}

static volatile sig_atomic_t caught[65];
static void catch(int sig) { caught[sig]++; }

/* Installs `catch` for `sig`, without SA_RESTART. */
static void on(int sig) {
    struct sigaction sa = {.sa_handler = catch};
    sigaction(sig, &sa, NULL);
}

/* Waits (at most 5 s) until `sig` was caught. */
static int wait_caught(int sig) {
    for (int i = 0; i < 500 && !caught[sig]; i++) usleep(10000);
    return caught[sig] ? 0 : -1;
}

/* pty(7): "a pair of virtual character devices"; opening /dev/ptmx makes one, and the
 * slave is /dev/pts/N where N is what TIOCGPTN says; ptsname(3) and ttyname(3) name it. */
TEST(openpty_makes_a_numbered_pair) {
    int m, s;
    char name[64], want[64];
    CHECK_OK(openpty(&m, &s, name, NULL, NULL));
    unsigned n = 0;
    CHECK_OK(ioctl(m, TIOCGPTN, &n));
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    CHECK(!strcmp(name, want));
    CHECK(!strcmp(ptsname(m), name));
    CHECK(ttyname(s) && !strcmp(ttyname(s), name));
    CHECK(isatty(m) && isatty(s));
    struct stat st, fst;
    CHECK_OK(stat(name, &st));
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(major(st.st_rdev), 136);
    CHECK_EQ(minor(st.st_rdev), n);
    CHECK_OK(fstat(s, &fst));
    CHECK_EQ(fst.st_rdev, st.st_rdev);
    CHECK_OK(fstat(m, &fst));
    CHECK_EQ(fst.st_rdev, makedev(5, 2));
    /* /dev/pts lists it. */
    DIR *d = opendir("/dev/pts");
    CHECK(d != NULL);
    int listed = 0;
    for (struct dirent *e; (e = readdir(d));) listed |= !strcmp(e->d_name, name + 9);
    closedir(d);
    CHECK(listed);
    /* TIOCGPTN is the master's. */
    CHECK_ERR(ioctl(s, TIOCGPTN, &n), ENOTTY);
    close(s);
    close(m);
}

/* unlockpt(3): the slave cannot be opened (EIO) until the master unlocks it (TIOCSPTLCK);
 * TIOCGPTLCK says whether it is locked, TIOCGPTPEER opens it without a path. */
TEST(slave_is_locked_until_unlockpt) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK_OK(m);
    int lock = 0;
    CHECK_OK(ioctl(m, TIOCGPTLCK, &lock));
    CHECK_EQ(lock, 1);
    char name[64];
    CHECK_OK(ptsname_r(m, name, sizeof name));
    CHECK_ERR(open(name, O_RDWR | O_NOCTTY), EIO);
    CHECK_ERR(ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY), EIO);
    CHECK_OK(grantpt(m));
    CHECK_OK(unlockpt(m));
    CHECK_OK(ioctl(m, TIOCGPTLCK, &lock));
    CHECK_EQ(lock, 0);
    int s = open(name, O_RDWR | O_NOCTTY);
    CHECK_OK(s);
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK_OK(peer);
    CHECK_EQ(fcntl(peer, F_GETFD), FD_CLOEXEC);
    struct stat a, b;
    CHECK_OK(fstat(s, &a));
    CHECK_OK(fstat(peer, &b));
    CHECK_EQ(a.st_rdev, b.st_rdev);
    /* Both are the same terminal: what the master writes, either reads. */
    CHECK_EQ(write(m, "x\n", 2), 2);
    char buf[8];
    CHECK_EQ(read_for(peer, buf, 2, 2000), 2);
    close(peer);
    close(s);
    close(m);
}

/* Closing the master removes /dev/pts/N and hangs the slave up: it polls POLLHUP, reads
 * end of file, and fails writes and terminal requests with EIO. */
TEST(closing_the_master_hangs_up_the_slave) {
    int m, s;
    char name[64];
    CHECK_OK(openpty(&m, &s, name, NULL, NULL));
    CHECK_OK(close(m));
    struct stat st;
    CHECK_ERR(stat(name, &st), ENOENT);
    CHECK(revents(s, POLLIN | POLLOUT, 0) & POLLHUP);
    char buf[8];
    CHECK_EQ(read(s, buf, sizeof buf), 0);
    CHECK_ERR(write(s, "x", 1), EIO);
    struct termios t;
    CHECK_ERR(tcgetattr(s, &t), EIO);
    close(s);
}

/* Once the last slave file closes, the master reads what is left, then fails with EIO and
 * polls POLLHUP. */
TEST(closing_the_slave_gives_the_master_eio) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    CHECK_EQ(write(s, "x", 1), 1);
    CHECK_OK(close(s));
    char buf[8];
    CHECK_EQ(read_for(m, buf, 1, 2000), 1);
    CHECK_EQ(buf[0], 'x');
    CHECK_ERR(read(m, buf, sizeof buf), EIO);
    CHECK(revents(m, POLLIN, 0) & POLLHUP);
    close(m);
}

/* A new pty's slave is in cooked mode (termios(3)'s defaults for a pty); settings made with
 * tcsetattr come back from tcgetattr, through either side, and TCGETS2 shows the speeds. */
TEST(termios_round_trip) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    struct termios t;
    CHECK_OK(tcgetattr(s, &t));
    CHECK(t.c_lflag & ICANON);
    CHECK(t.c_lflag & ECHO);
    CHECK(t.c_lflag & ISIG);
    CHECK(t.c_iflag & ICRNL);
    CHECK(t.c_oflag & OPOST);
    CHECK(t.c_oflag & ONLCR);
    CHECK_EQ(t.c_cc[VINTR], 3);
    CHECK_EQ(t.c_cc[VERASE], 0177);
    CHECK_EQ(t.c_cc[VKILL], 025);
    CHECK_EQ(t.c_cc[VEOF], 4);
    CHECK_EQ(t.c_cc[VMIN], 1);
    CHECK_EQ(cfgetospeed(&t), B38400);
    struct termios raw = t;
    cfmakeraw(&raw);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 5;
    CHECK_OK(cfsetspeed(&raw, B9600));
    CHECK_OK(tcsetattr(s, TCSANOW, &raw));
    struct termios got;
    CHECK_OK(tcgetattr(s, &got));
    CHECK_EQ(got.c_iflag, raw.c_iflag);
    CHECK_EQ(got.c_oflag, raw.c_oflag);
    CHECK_EQ(got.c_cflag, raw.c_cflag);
    CHECK_EQ(got.c_lflag, raw.c_lflag);
    CHECK(!memcmp(got.c_cc, raw.c_cc, NCCS < 19 ? NCCS : 19));
    CHECK_EQ(cfgetospeed(&got), B9600);
    struct ktermios2 t2;
    CHECK_OK(ioctl(s, K_TCGETS2, &t2));
    CHECK_EQ(t2.c_ospeed, 9600);
    CHECK_EQ(t2.c_lflag, raw.c_lflag);
    /* The master shows and changes the slave's settings. */
    CHECK_OK(tcgetattr(m, &got));
    CHECK_EQ(got.c_lflag, raw.c_lflag);
    CHECK_OK(tcsetattr(m, TCSAFLUSH, &t));
    CHECK_OK(tcgetattr(s, &got));
    CHECK_EQ(got.c_lflag, t.c_lflag);
    CHECK_EQ(cfgetospeed(&got), B38400);
    close(s);
    close(m);
}

/* Canonical mode: a read returns at most one line, and only a finished one; ERASE and KILL
 * edit the line, EOF ends it without itself (alone: a read of 0), ICRNL makes CR a NL. */
TEST(canonical_reads_return_edited_lines) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    CHECK_OK(fcntl(s, F_SETFL, O_NONBLOCK));
    char buf[64];
    CHECK_EQ(write(m, "abc\ndef", 7), 7);
    CHECK_EQ(read_for(s, buf, 4, 2000), 4);
    CHECK(!memcmp(buf, "abc\n", 4));
    CHECK_ERR(read(s, buf, sizeof buf), EAGAIN);
    int n = -1;
    CHECK_OK(ioctl(s, FIONREAD, &n));
    CHECK_EQ(n, 0);
    CHECK_EQ(write(m, "\n", 1), 1);
    CHECK_EQ(read_for(s, buf, 64, 2000), 4);
    CHECK(!memcmp(buf, "def\n", 4));
    CHECK_EQ(write(m, "abx\177c\n", 6), 6);
    CHECK_EQ(read_for(s, buf, 64, 2000), 4);
    CHECK(!memcmp(buf, "abc\n", 4));
    CHECK_EQ(write(m, "junk\025ok\n", 8), 8);
    CHECK_EQ(read_for(s, buf, 64, 2000), 3);
    CHECK(!memcmp(buf, "ok\n", 3));
    CHECK_EQ(write(m, "ab\004", 3), 3);
    CHECK_EQ(read_for(s, buf, 64, 2000), 2);
    CHECK(!memcmp(buf, "ab", 2));
    CHECK_EQ(write(m, "\004", 1), 1);
    CHECK(revents(s, POLLIN, 2000) & POLLIN);
    CHECK_EQ(read(s, buf, sizeof buf), 0);
    CHECK_EQ(write(m, "cr\r", 3), 3);
    CHECK_EQ(read_for(s, buf, 64, 2000), 3);
    CHECK(!memcmp(buf, "cr\n", 3));
    /* A read smaller than the line takes part of it. */
    CHECK_EQ(write(m, "long line\n", 10), 10);
    CHECK(revents(s, POLLIN, 2000) & POLLIN);
    CHECK_EQ(read(s, buf, 4), 4);
    CHECK(!memcmp(buf, "long", 4));
    CHECK_EQ(read(s, buf, sizeof buf), 6);
    CHECK(!memcmp(buf, " line\n", 6));
    close(s);
    close(m);
}

/* ECHO sends input back to the master, through output processing (ONLCR makes NL CR NL);
 * ECHOE erases with BS SP BS; ECHOCTL shows control characters as ^X. What the slave
 * writes reaches the master with ONLCR applied while OPOST is set. */
TEST(echo_and_output_processing) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    char buf[64];
    CHECK_EQ(write(m, "hi\n", 3), 3);
    CHECK_EQ(read_for(s, buf, 3, 2000), 3);
    CHECK_EQ(read_for(m, buf, 4, 2000), 4);
    CHECK(!memcmp(buf, "hi\r\n", 4));
    CHECK_EQ(write(m, "x\177\n", 3), 3);
    CHECK_EQ(read_for(m, buf, 6, 2000), 6);
    CHECK(!memcmp(buf, "x\b \b\r\n", 6));
    CHECK_EQ(read_for(s, buf, 1, 2000), 1);
    CHECK_EQ(write(m, "\001\n", 2), 2);
    CHECK_EQ(read_for(m, buf, 4, 2000), 4);
    CHECK(!memcmp(buf, "^A\r\n", 4));
    CHECK_EQ(read_for(s, buf, 2, 2000), 2);
    CHECK(!memcmp(buf, "\001\n", 2));
    CHECK_EQ(write(s, "a\nb", 3), 3);
    CHECK_EQ(read_for(m, buf, 4, 2000), 4);
    CHECK(!memcmp(buf, "a\r\nb", 4));
    struct termios t;
    CHECK_OK(tcgetattr(s, &t));
    t.c_oflag &= ~OPOST;
    t.c_lflag &= ~ECHO;
    CHECK_OK(tcsetattr(s, TCSANOW, &t));
    CHECK_EQ(write(s, "a\nb", 3), 3);
    CHECK_EQ(read_for(m, buf, 3, 2000), 3);
    CHECK(!memcmp(buf, "a\nb", 3));
    /* No echo now. */
    CHECK_EQ(write(m, "q\n", 2), 2);
    CHECK_EQ(read_for(s, buf, 2, 2000), 2);
    CHECK_EQ(read_for(m, buf, 1, 100), 0);
    close(s);
    close(m);
}

/* Non-canonical mode (termios(3) "MIN == 0, TIME == 0" and friends): VMIN 0 VTIME 0 never
 * waits; VMIN 0 VTIME T waits up to T tenths for a byte; VMIN N waits for N bytes. ISIG and
 * ICRNL are off in raw mode, so ^C and CR arrive as bytes. */
TEST(raw_reads_follow_vmin_and_vtime) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    char buf[64];
    CHECK_OK(make_raw(s, 0, 0));
    CHECK_EQ(read(s, buf, sizeof buf), 0);
    CHECK_OK(make_raw(s, 0, 2));
    double start = now_ms();
    CHECK_EQ(read(s, buf, sizeof buf), 0);
    double took = now_ms() - start;
    CHECK(took >= 150 && took < 2000);
    CHECK_EQ(write(m, "x\003\r", 3), 3);
    CHECK_EQ(read_for(s, buf, 3, 2000), 3);
    CHECK(!memcmp(buf, "x\003\r", 3));
    CHECK_OK(make_raw(s, 2, 0));
    pid_t pid = fork();
    if (pid == 0) {
        write(m, "a", 1);
        usleep(100000);
        write(m, "b", 1);
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_EQ(read(s, buf, sizeof buf), 2);
    CHECK(!memcmp(buf, "ab", 2));
    CHECK_EQ(child_status(pid), 0);
    close(s);
    close(m);
}

/* ISIG: INTR, QUIT and SUSP typed on the terminal send SIGINT, SIGQUIT and SIGTSTP to its
 * foreground process group, here a child leading a new session whose controlling terminal
 * is the slave (TIOCSCTTY). The master sees the group and the session (TIOCGPGRP,
 * TIOCGSID), and the ^C echo. */
TEST(isig_signals_the_foreground_group) {
    int m, s, ready[2];
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    CHECK_OK(pipe(ready));
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        on(SIGINT);
        on(SIGQUIT);
        on(SIGTSTP);
        CHILD_CHECK(take_terminal(s) == 0);
        CHILD_CHECK(write(ready[1], "r", 1) == 1);
        CHILD_CHECK(wait_caught(SIGINT) == 0);
        CHILD_CHECK(wait_caught(SIGQUIT) == 0);
        CHILD_CHECK(wait_caught(SIGTSTP) == 0);
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_OK(wait_ready(ready[0]));
    int pgrp = 0, sid = 0;
    CHECK_OK(ioctl(m, TIOCGPGRP, &pgrp));
    CHECK_EQ(pgrp, pid);
    CHECK_OK(ioctl(m, TIOCGSID, &sid));
    CHECK_EQ(sid, pid);
    /* Not this process's terminal: the slave does not tell it. */
    CHECK_ERR(ioctl(s, TIOCGPGRP, &pgrp), ENOTTY);
    CHECK_EQ(write(m, "\003", 1), 1);
    char buf[8];
    CHECK_EQ(read_for(m, buf, 2, 2000), 2);
    CHECK(!memcmp(buf, "^C", 2));
    CHECK_EQ(write(m, "\034\032", 2), 2);
    CHECK_EQ(child_status(pid), 0);
    close(s);
    close(m);
}

/* TIOCSPGRP: a session leader moves its terminal's foreground to another group of its
 * session (ESRCH for a group that does not exist, EPERM for one of another session); a
 * background process that does it gets SIGTTOU unless it blocks that signal. */
TEST(tiocspgrp_moves_the_foreground) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    CHECK_EQ(child_status(gone), 0);
    pid_t outside = getpgrp();
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        CHILD_CHECK(take_terminal(s) == 0);
        int pgrp = 0, sid = 0;
        CHILD_CHECK(ioctl(s, TIOCGPGRP, &pgrp) == 0 && pgrp == getpid());
        CHILD_CHECK(tcgetsid(s) == getpid());
        CHILD_CHECK(ioctl(s, TIOCGSID, &sid) == 0 && sid == getpid());
        pid_t job = fork();
        if (job == 0) {
            setpgid(0, 0);
            pause();
            _exit(0);
        }
        CHILD_CHECK(job > 0);
        setpgid(job, job);
        CHILD_CHECK(tcsetpgrp(s, job) == 0);
        CHILD_CHECK(tcgetpgrp(s) == job);
        /* In the background now: changing the foreground needs SIGTTOU blocked, as a
         * job-control shell does (Linux checks that before the group). */
        sigset_t ttou;
        sigemptyset(&ttou);
        sigaddset(&ttou, SIGTTOU);
        sigprocmask(SIG_BLOCK, &ttou, NULL);
        errno = 0;
        CHILD_CHECK(tcsetpgrp(s, gone) == -1 && errno == ESRCH);
        errno = 0;
        CHILD_CHECK(tcsetpgrp(s, outside) == -1 && errno == EPERM);
        errno = 0;
        CHILD_CHECK(tcsetpgrp(s, -1) == -1 && errno == EINVAL);
        CHILD_CHECK(tcsetpgrp(s, getpgrp()) == 0);
        CHILD_CHECK(tcgetpgrp(s) == getpid());
        kill(job, SIGKILL);
        waitpid(job, NULL, 0);
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_EQ(child_status(pid), 0);
    close(s);
    close(m);
}

/* Job control on reads and writes: a process of a background group reading its
 * controlling terminal gets SIGTTIN (the read fails with EINTR once a handler ran; with
 * SIGTTIN ignored it fails with EIO). Writing is allowed unless TOSTOP is set; then it
 * gets SIGTTOU (EINTR after a handler; allowed if SIGTTOU is ignored). */
TEST(background_reads_and_writes_get_sigttin_and_sigttou) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        CHILD_CHECK(take_terminal(s) == 0);
        pid_t job = fork();
        if (job == 0) {
            char buf[8];
            setpgid(0, 0);
            on(SIGTTIN);
            errno = 0;
            CHILD_CHECK(read(s, buf, sizeof buf) == -1 && errno == EINTR);
            CHILD_CHECK(caught[SIGTTIN] == 1);
            signal(SIGTTIN, SIG_IGN);
            errno = 0;
            CHILD_CHECK(read(s, buf, sizeof buf) == -1 && errno == EIO);
            CHILD_CHECK(write(s, "w", 1) == 1);
            _exit(0);
        }
        CHILD_CHECK(job > 0);
        CHILD_CHECK(child_status(job) == 0);
        struct termios t;
        CHILD_CHECK(tcgetattr(s, &t) == 0);
        t.c_lflag |= TOSTOP;
        CHILD_CHECK(tcsetattr(s, TCSANOW, &t) == 0);
        job = fork();
        if (job == 0) {
            setpgid(0, 0);
            on(SIGTTOU);
            errno = 0;
            CHILD_CHECK(write(s, "w", 1) == -1 && errno == EINTR);
            CHILD_CHECK(caught[SIGTTOU] == 1);
            signal(SIGTTOU, SIG_IGN);
            CHILD_CHECK(write(s, "w", 1) == 1);
            _exit(0);
        }
        CHILD_CHECK(job > 0);
        CHILD_CHECK(child_status(job) == 0);
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_EQ(child_status(pid), 0);
    char buf[8];
    CHECK_EQ(read_for(m, buf, 2, 2000), 2);
    CHECK(!memcmp(buf, "ww", 2));
    close(s);
    close(m);
}

/* TIOCSWINSZ sets the window size TIOCGWINSZ reports (through either side) and sends
 * SIGWINCH to the foreground process group. */
TEST(window_size_and_sigwinch) {
    int m, s, ready[2];
    struct winsize w = {.ws_row = 24, .ws_col = 80};
    CHECK_OK(openpty(&m, &s, NULL, NULL, &w));
    struct winsize got;
    CHECK_OK(ioctl(s, TIOCGWINSZ, &got));
    CHECK_EQ(got.ws_row, 24);
    CHECK_EQ(got.ws_col, 80);
    CHECK_OK(pipe(ready));
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        on(SIGWINCH);
        CHILD_CHECK(take_terminal(s) == 0);
        CHILD_CHECK(write(ready[1], "r", 1) == 1);
        CHILD_CHECK(wait_caught(SIGWINCH) == 0);
        struct winsize now;
        CHILD_CHECK(ioctl(s, TIOCGWINSZ, &now) == 0);
        CHILD_CHECK(now.ws_row == 30 && now.ws_col == 100);
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_OK(wait_ready(ready[0]));
    w.ws_row = 30;
    w.ws_col = 100;
    CHECK_OK(ioctl(m, TIOCSWINSZ, &w));
    CHECK_EQ(child_status(pid), 0);
    CHECK_OK(ioctl(m, TIOCGWINSZ, &got));
    CHECK_EQ(got.ws_col, 100);
    close(s);
    close(m);
}

/* The master's close hangs up the session it controls: its leader gets SIGHUP, then
 * reads end of file and polls POLLHUP on its slave. */
TEST(master_close_sends_sighup_to_the_session) {
    int m, s, ready[2];
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    CHECK_OK(pipe(ready));
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        on(SIGHUP);
        close(m);
        CHILD_CHECK(take_terminal(s) == 0);
        CHILD_CHECK(write(ready[1], "r", 1) == 1);
        CHILD_CHECK(wait_caught(SIGHUP) == 0);
        char buf[8];
        CHILD_CHECK(read(s, buf, sizeof buf) == 0);
        CHILD_CHECK(revents(s, POLLIN, 0) & POLLHUP);
        _exit(0);
    }
    CHECK(pid > 0);
    close(s);
    CHECK_OK(wait_ready(ready[0]));
    CHECK_OK(close(m));
    CHECK_EQ(child_status(pid), 0);
}

/* /dev/tty is the opener's controlling terminal (ENXIO without one); TIOCNOTTY gives it
 * up (a session leader's foreground group gets SIGHUP then). A session leader that opens a
 * slave without O_NOCTTY and has no terminal gets that one; TIOCSCTTY needs a session
 * leader (EPERM) and a terminal no other session has (EPERM). */
TEST(controlling_terminal_and_dev_tty) {
    int m, s;
    char name[64];
    CHECK_OK(openpty(&m, &s, name, NULL, NULL));
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        errno = 0;
        CHILD_CHECK(ioctl(s, TIOCSCTTY, 0) == -1 && errno == EPERM);
        CHILD_CHECK(setsid() == getpid());
        errno = 0;
        CHILD_CHECK(open("/dev/tty", O_RDWR) == -1 && errno == ENXIO);
        int fd = open(name, O_RDWR);
        CHILD_CHECK(fd >= 0);
        int sid = 0;
        CHILD_CHECK(ioctl(fd, TIOCGSID, &sid) == 0 && sid == getpid());
        int tty = open("/dev/tty", O_RDWR);
        CHILD_CHECK(tty >= 0);
        struct stat st;
        CHILD_CHECK(fstat(tty, &st) == 0 && st.st_rdev == makedev(5, 0));
        CHILD_CHECK(write(tty, "via tty", 7) == 7);
        /* Another session cannot have it. */
        pid_t other = fork();
        if (other == 0) {
            CHILD_CHECK(setsid() == getpid());
            int fd2 = open(name, O_RDWR);
            CHILD_CHECK(fd2 >= 0);
            errno = 0;
            CHILD_CHECK(ioctl(fd2, TIOCGSID, &sid) == -1 && errno == ENOTTY);
            errno = 0;
            CHILD_CHECK(ioctl(fd2, TIOCSCTTY, 0) == -1 && errno == EPERM);
            _exit(0);
        }
        CHILD_CHECK(child_status(other) == 0);
        on(SIGHUP);
        CHILD_CHECK(ioctl(tty, TIOCNOTTY) == 0);
        CHILD_CHECK(wait_caught(SIGHUP) == 0);
        errno = 0;
        CHILD_CHECK(open("/dev/tty", O_RDWR) == -1 && errno == ENXIO);
        errno = 0;
        CHILD_CHECK(ioctl(fd, TIOCGSID, &sid) == -1 && errno == ENOTTY);
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_EQ(child_status(pid), 0);
    char buf[16];
    CHECK_EQ(read_for(m, buf, 7, 2000), 7);
    CHECK(!memcmp(buf, "via tty", 7));
    close(s);
    close(m);
}

/* poll(2): a canonical slave is readable once a line is finished; the master is writable
 * and readable once there is echo. */
TEST(poll_follows_the_line_discipline) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    CHECK_EQ(revents(s, POLLIN, 0), 0);
    CHECK(revents(m, POLLOUT, 0) & POLLOUT);
    CHECK(revents(s, POLLOUT, 0) & POLLOUT);
    CHECK_EQ(write(m, "x", 1), 1);
    CHECK(revents(m, POLLIN, 2000) & POLLIN);
    CHECK_EQ(revents(s, POLLIN, 100), 0);
    CHECK_EQ(write(m, "\n", 1), 1);
    CHECK(revents(s, POLLIN, 2000) & POLLIN);
    close(s);
    close(m);
}

/* FIONREAD counts what a read could take; TCFLSH drops input (TCIFLUSH on the master drops
 * what the slave wrote); TIOCOUTQ is 0 on a pty; tcflow and tcdrain are accepted. */
TEST(queues_and_flushing) {
    int m, s;
    CHECK_OK(openpty(&m, &s, NULL, NULL, NULL));
    struct termios t;
    CHECK_OK(tcgetattr(s, &t));
    t.c_lflag &= ~ECHO;
    CHECK_OK(tcsetattr(s, TCSANOW, &t));
    CHECK_EQ(write(m, "abc\n", 4), 4);
    CHECK(revents(s, POLLIN, 2000) & POLLIN);
    int n = -1;
    CHECK_OK(ioctl(s, FIONREAD, &n));
    CHECK_EQ(n, 4);
    CHECK_OK(tcflush(s, TCIFLUSH));
    CHECK_OK(ioctl(s, FIONREAD, &n));
    CHECK_EQ(n, 0);
    CHECK_EQ(revents(s, POLLIN, 0), 0);
    CHECK_OK(tcflow(s, TCOOFF));
    CHECK_OK(tcflow(s, TCOON));
    CHECK_OK(tcdrain(s));
    CHECK_EQ(write(s, "xyz", 3), 3);
    CHECK(revents(m, POLLIN, 2000) & POLLIN);
    CHECK_OK(ioctl(m, FIONREAD, &n));
    CHECK_EQ(n, 3);
    CHECK_OK(ioctl(s, TIOCOUTQ, &n));
    CHECK_EQ(n, 0);
    CHECK_OK(tcflush(m, TCIFLUSH));
    CHECK_OK(ioctl(m, FIONREAD, &n));
    CHECK_EQ(n, 0);
    CHECK_ERR(ioctl(s, TCFLSH, 7), EINVAL);
    close(s);
    close(m);
}

static int hup_pipe = -1;
static void say_hup(int sig) {
    (void)sig;
    write(hup_pipe, "h", 1);
    _exit(0);
}

/* POSIX: when a process group becomes orphaned (no member's parent is in another group of
 * its session) while a member is stopped, every member gets SIGHUP and then SIGCONT. */
TEST(an_orphaned_stopped_group_gets_sighup_and_sigcont) {
    int p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        CHILD_CHECK(setsid() == getpid());
        pid_t job = fork();
        if (job == 0) {
            alarm(10);
            hup_pipe = p[1];
            signal(SIGHUP, say_hup);
            setpgid(0, 0);
            raise(SIGSTOP);
            _exit(1);
        }
        CHILD_CHECK(job > 0);
        setpgid(job, job);
        usleep(200000);
        _exit(0);
    }
    CHECK(pid > 0);
    close(p[1]);
    CHECK_EQ(child_status(pid), 0);
    char c = 0;
    CHECK_EQ(read_for(p[0], &c, 1, 5000), 1);
    CHECK_EQ(c, 'h');
}
