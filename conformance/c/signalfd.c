/* signalfd(2): the reading thread takes its pending signals of the file's mask as
 * signalfd_siginfo records, instead of having them delivered. */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static int block(int sig, sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, sig);
    return sigprocmask(SIG_BLOCK, set, NULL);
}

/* A blocked signal sent to the caller is read from the file with its sender. */
TEST(reads_a_blocked_signal_with_its_sender) {
    sigset_t set;
    CHECK_EQ(block(SIGUSR1, &set), 0);
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    struct signalfd_siginfo si;
    CHECK_EQ(read(fd, &si, sizeof si), (ssize_t)sizeof si);
    CHECK_EQ(si.ssi_signo, SIGUSR1);
    CHECK_EQ(si.ssi_code, SI_USER);
    CHECK_EQ(si.ssi_pid, getpid());
    CHECK_EQ(si.ssi_uid, getuid());
    /* Taken: no longer pending. */
    sigset_t pending;
    CHECK_EQ(sigpending(&pending), 0);
    CHECK(!sigismember(&pending, SIGUSR1));
    close(fd);
}

/* "EINVAL ... the size of the supplied buffer is less than sizeof(struct
 * signalfd_siginfo)"; with nothing pending a non-blocking read is EAGAIN. */
TEST(short_buffers_and_empty_nonblocking_reads) {
    sigset_t set;
    CHECK_EQ(block(SIGUSR2, &set), 0);
    int fd = signalfd(-1, &set, SFD_NONBLOCK);
    CHECK(fd >= 0);
    char small[64];
    CHECK_ERR(read(fd, small, sizeof small), EINVAL);
    struct signalfd_siginfo si;
    CHECK_ERR(read(fd, &si, sizeof si), EAGAIN);
    CHECK_ERR(signalfd(-1, &set, 0x1), EINVAL);
    close(fd);
}

/* The file polls readable while a signal of its mask is pending; a second call with the
 * file replaces the mask. */
TEST(poll_readiness_and_a_new_mask) {
    sigset_t set, both;
    CHECK_EQ(block(SIGUSR1, &set), 0);
    CHECK_EQ(block(SIGUSR2, &set), 0);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    int fd = signalfd(-1, &set, SFD_NONBLOCK);
    CHECK(fd >= 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK_EQ(poll(&p, 1, 0), 0);
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    CHECK_EQ(signalfd(fd, &both, 0), fd);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN);
    struct signalfd_siginfo si[2];
    CHECK_EQ(read(fd, si, sizeof si), (ssize_t)sizeof si[0]);
    CHECK_EQ(si[0].ssi_signo, SIGUSR2);
    CHECK_EQ(si[0].ssi_code, SI_TKILL);
    close(fd);
}

/* A blocking read waits for the signal; SIGCHLD carries the child's pid and status. */
TEST(blocking_read_gets_sigchld_with_the_status) {
    sigset_t set;
    CHECK_EQ(block(SIGCHLD, &set), 0);
    int fd = signalfd(-1, &set, 0);
    CHECK(fd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        _exit(7);
    }
    struct signalfd_siginfo si;
    CHECK_EQ(read(fd, &si, sizeof si), (ssize_t)sizeof si);
    CHECK_EQ(si.ssi_signo, SIGCHLD);
    CHECK_EQ(si.ssi_code, CLD_EXITED);
    CHECK_EQ(si.ssi_pid, pid);
    CHECK_EQ(si.ssi_status, 7);
    CHECK_EQ(waitpid(pid, NULL, 0), pid);
    close(fd);
}

/* sigqueue's value arrives as ssi_int and ssi_ptr. */
TEST(queued_values_arrive) {
    sigset_t set;
    CHECK_EQ(block(SIGRTMIN, &set), 0);
    int fd = signalfd(-1, &set, SFD_NONBLOCK);
    CHECK(fd >= 0);
    CHECK_EQ(sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 42}), 0);
    CHECK_EQ(sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 43}), 0);
    struct signalfd_siginfo si[4];
    CHECK_EQ(read(fd, si, sizeof si), (ssize_t)(2 * sizeof si[0]));
    CHECK_EQ(si[0].ssi_code, SI_QUEUE);
    CHECK_EQ(si[0].ssi_int, 42);
    CHECK_EQ(si[1].ssi_int, 43);
    close(fd);
}
