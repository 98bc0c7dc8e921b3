/* wait4(2) and waitid(2): which children are waited for, what is reported, and errors. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child_exiting(int code) {
    pid_t pid = fork();
    if (pid == 0) _exit(code);
    return pid;
}

/* "ECHILD ... The calling process does not have any unwaited-for children." */
TEST(echild_without_children) {
    CHECK_ERR(waitpid(-1, NULL, 0), ECHILD);
    CHECK_ERR(waitpid(-1, NULL, WNOHANG), ECHILD);
    siginfo_t info;
    CHECK_ERR(waitid(P_ALL, 0, &info, WEXITED), ECHILD);
}

/* WEXITSTATUS: "the least significant 8 bits of the status argument that the child
 * specified in a call to exit(3) or _exit(2)". */
TEST(exit_status_is_reported) {
    pid_t pid = child_exiting(300 + 42);
    CHECK(pid > 0);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), (300 + 42) & 0xff);
}

/* A child killed by a signal: WIFSIGNALED, WTERMSIG. */
TEST(a_child_killed_by_a_fault_is_signaled) {
    pid_t pid = fork();
    if (pid == 0) {
        volatile int *null = NULL;
        *null = 1;
        _exit(0);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(WTERMSIG(status), SIGSEGV);
}

/* WNOHANG: "return immediately if no child has exited"; then a blocking wait gets it. */
TEST(wnohang_returns_zero_while_the_child_runs) {
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        _exit(3);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 3);
}

/* A pid > 0 waits for that child only; -1 for any; 0 for any in the caller's group. */
TEST(pid_argument_selects_children) {
    pid_t a = child_exiting(1), b = child_exiting(2);
    CHECK(a > 0 && b > 0);
    int status = 0;
    CHECK_EQ(waitpid(b, &status, 0), b);
    CHECK_EQ(WEXITSTATUS(status), 2);
    CHECK_EQ(waitpid(0, &status, 0), a);
    CHECK_EQ(WEXITSTATUS(status), 1);
    CHECK_ERR(waitpid(a, &status, 0), ECHILD);
    CHECK_ERR(waitpid(getpid(), &status, 0), ECHILD);
}

/* "EINVAL The options argument was invalid." */
TEST(unknown_options_are_einval) {
    CHECK_ERR(syscall(SYS_wait4, -1, NULL, 0x40, NULL), EINVAL);
    siginfo_t info;
    CHECK_ERR(waitid(P_ALL, 0, &info, 0), EINVAL);
    CHECK_ERR(waitid(P_ALL, 0, &info, WNOHANG), EINVAL);
    CHECK_ERR(waitid((idtype_t)77, 0, &info, WEXITED), EINVAL);
}

/* waitid fills si_pid, si_uid, si_signo (SIGCHLD), si_status and si_code (CLD_EXITED). */
TEST(waitid_fills_siginfo) {
    pid_t pid = child_exiting(5);
    siginfo_t info;
    memset(&info, 0xff, sizeof info);
    CHECK_OK(waitid(P_PID, pid, &info, WEXITED));
    CHECK_EQ(info.si_signo, SIGCHLD);
    CHECK_EQ(info.si_code, CLD_EXITED);
    CHECK_EQ(info.si_pid, pid);
    CHECK_EQ(info.si_uid, getuid());
    CHECK_EQ(info.si_status, 5);
}

/* WNOWAIT: "Leave the child in a waitable state; a later wait call can be used to again
 * retrieve the child status information." */
TEST(wnowait_leaves_the_child_waitable) {
    pid_t pid = child_exiting(6);
    siginfo_t info;
    CHECK_OK(waitid(P_PID, pid, &info, WEXITED | WNOWAIT));
    CHECK_EQ(info.si_pid, pid);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 6);
}

/* waitid with WNOHANG and no exited child: returns 0 with si_pid zero. */
TEST(waitid_wnohang_zeroes_si_pid) {
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    siginfo_t info;
    memset(&info, 0xff, sizeof info);
    CHECK_OK(waitid(P_PID, pid, &info, WEXITED | WNOHANG));
    CHECK_EQ(info.si_pid, 0);
    CHECK_EQ(waitpid(pid, NULL, 0), pid);
}

/* wait4 writes a struct rusage for the reaped child. */
TEST(wait4_writes_rusage) {
    pid_t pid = child_exiting(0);
    struct rusage usage;
    memset(&usage, 0xff, sizeof usage);
    int status;
    CHECK_EQ(wait4(pid, &status, 0, &usage), pid);
    CHECK(usage.ru_utime.tv_sec >= 0 && usage.ru_utime.tv_usec >= 0);
    CHECK(usage.ru_utime.tv_usec < 1000000);
}

/* A bad status pointer is EFAULT, and (as Linux does it) the child is reaped all the
 * same. */
TEST(bad_status_pointer_is_efault_and_reaps_the_child) {
    pid_t pid = child_exiting(4);
    CHECK_ERR(waitpid(pid, (int *)8, 0), EFAULT);
    CHECK_ERR(waitpid(pid, NULL, 0), ECHILD);
}

/* "POSIX.1-2001 specifies that if the disposition of SIGCHLD is set to SIG_IGN ... children
 * that terminate do not become zombies and a call to wait() or waitpid() will block until
 * all children have terminated, and then fail with errno set to ECHILD." */
TEST(ignored_sigchld_reaps_children) {
    signal(SIGCHLD, SIG_IGN);
    pid_t pid = child_exiting(0);
    CHECK(pid > 0);
    CHECK_ERR(waitpid(-1, NULL, 0), ECHILD);
    signal(SIGCHLD, SIG_DFL);
}

/* Process groups: a child starts in its parent's group; setpgid moves it; getpgid and
 * getsid report; setsid fails for a group leader. */
TEST(process_groups_and_sessions) {
    CHECK_EQ(getpgid(0), getpgrp());
    CHECK_EQ(getsid(0), getsid(getpid()));
    CHECK_ERR(getpgid(-5), ESRCH);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = getpgrp() == getpgid(getppid());
        ok = ok && setpgid(0, 0) == 0 && getpgrp() == getpid();
        /* A group leader cannot start a session... */
        ok = ok && setsid() == -1 && errno == EPERM;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 0);
    pid = fork();
    if (pid == 0) {
        /* ...but a child that is not one can, and then leads both. */
        pid_t sid = setsid();
        _exit(sid == getpid() && getsid(0) == getpid() && getpgrp() == getpid() ? 0 : 1);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 0);
    /* pgid 0 means pid, here -1: EINVAL before the pid is looked up. */
    CHECK_ERR(setpgid(-1, 0), EINVAL);
    CHECK_ERR(setpgid(-1, 5), ESRCH);
    CHECK_ERR(setpgid(0, -1), EINVAL);
}

/* A child made by a raw clone with exit signal 0: a "clone child" in wait(2)'s terms. */
static pid_t clone_child_exiting(int code) {
    fflush(stdout);
    long pid = syscall(SYS_clone, 0 /* no flags, exit signal 0 */, 0, 0, 0, 0);
    if (pid == 0) _exit(code);
    return (pid_t)pid;
}

/* wait(2): "__WCLONE Wait for 'clone' children only ... A clone child is one which delivers
 * no signal, or a signal other than SIGCHLD to its parent upon termination"; without it only
 * the others are waited for (even by pid: ECHILD); "__WALL Wait for all children, regardless
 * of type". */
TEST(wclone_and_wall_select_clone_children) {
    pid_t c = clone_child_exiting(5);
    CHECK(c > 0);
    int status = 0;
    CHECK_ERR(waitpid(c, &status, WNOHANG), ECHILD);
    CHECK_ERR(waitpid(-1, &status, WNOHANG), ECHILD);
    CHECK_EQ(waitpid(c, &status, __WCLONE), c);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 5);
    pid_t n = child_exiting(6);
    CHECK(n > 0);
    CHECK_ERR(waitpid(n, &status, __WCLONE | WNOHANG), ECHILD);
    c = clone_child_exiting(7);
    CHECK(c > 0);
    /* __WALL: both kinds, in either order. */
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        pid_t got = waitpid(-1, &status, __WALL);
        CHECK(got == c || got == n);
        CHECK_EQ(WEXITSTATUS(status), got == c ? 7 : 6);
        seen |= got == c ? 1 : 2;
    }
    CHECK_EQ(seen, 3);
    CHECK_ERR(waitpid(-1, &status, __WALL | WNOHANG), ECHILD);
}

/* Reads the {pid, ppid} a grandchild reports over fd, waiting at most a few seconds. */
static int read_ids(int fd, pid_t ids[2]) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return -1;
    return read(fd, ids, 2 * sizeof(pid_t)) == 2 * sizeof(pid_t) ? 0 : -1;
}

/* Forks A, which forks G and exits at once; G waits until it is re-parented, then writes
 * {its pid, its new ppid} to fd and exits with 9. Returns A's exit code (0 expected). */
static int orphan_a_grandchild(int fd) {
    fflush(stdout);
    pid_t a = fork();
    if (a == 0) {
        pid_t parent = getpid();
        pid_t g = fork();
        if (g == 0) {
            for (int i = 0; i < 3000 && getppid() == parent; i++) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            }
            pid_t ids[2] = {getpid(), getppid()};
            write(fd, ids, sizeof ids);
            _exit(9);
        }
        _exit(g > 0 ? 0 : 1);
    }
    int status = 0;
    if (waitpid(a, &status, 0) != a || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* prctl(2) PR_SET_CHILD_SUBREAPER: "When a process becomes orphaned ... that process will be
 * reparented to the nearest still living ancestor subreaper", which can then wait for it. */
TEST(orphans_are_reparented_to_a_subreaper) {
    int on = -1;
    CHECK_OK(prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0));
    CHECK_EQ(on, 0);
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
    CHECK_OK(prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0));
    CHECK_EQ(on, 1);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(orphan_a_grandchild(p[1]), 0);
    pid_t ids[2];
    CHECK_OK(read_ids(p[0], ids));
    CHECK_EQ(ids[1], getpid());
    int status = 0;
    CHECK_EQ(waitpid(ids[0], &status, 0), ids[0]);
    CHECK_EQ(WEXITSTATUS(status), 9);
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0));
    close(p[0]);
    close(p[1]);
}

/* Without a subreaper the orphan goes to init (pid 1 of the namespace) -- which is this
 * process when it runs as the sandbox's init, so then it reaps the orphan itself. Natively
 * the new parent is init or some subreaper above us, never us. */
TEST(orphans_are_reparented_to_init_without_a_subreaper) {
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ(orphan_a_grandchild(p[1]), 0);
    pid_t ids[2];
    CHECK_OK(read_ids(p[0], ids));
    if (getpid() == 1) {
        CHECK_EQ(ids[1], 1);
        int status = 0;
        CHECK_EQ(waitpid(ids[0], &status, 0), ids[0]);
        CHECK_EQ(WEXITSTATUS(status), 9);
    } else {
        CHECK(ids[1] != getpid());
        CHECK_ERR(waitpid(ids[0], NULL, WNOHANG), ECHILD);
    }
    close(p[0]);
    close(p[1]);
}

/* waitid(2): "P_PGID Wait for any child whose process group ID matches id. Since Linux 5.4,
 * if id is zero, then wait for any child that is in the same process group as the caller's
 * process group"; waitpid(-pgid) likewise. */
TEST(waitid_p_pgid_selects_by_process_group) {
    int p[2];
    CHECK_OK(pipe(p));
    fflush(stdout);
    pid_t a = fork();
    if (a == 0) {
        setpgid(0, 0);
        write(p[1], "r", 1);
        _exit(3);
    }
    CHECK(a > 0);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    pid_t b = child_exiting(4);
    CHECK(b > 0);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    CHECK_OK(waitid(P_PGID, a, &info, WEXITED));
    CHECK_EQ(info.si_pid, a);
    CHECK_EQ(info.si_status, 3);
    CHECK_ERR(waitid(P_PGID, a, &info, WEXITED | WNOHANG), ECHILD);
    memset(&info, 0, sizeof info);
    CHECK_OK(waitid(P_PGID, 0, &info, WEXITED));
    CHECK_EQ(info.si_pid, b);
    CHECK_EQ(info.si_status, 4);
    pid_t d = fork();
    if (d == 0) {
        setpgid(0, 0);
        write(p[1], "r", 1);
        _exit(5);
    }
    CHECK(d > 0);
    CHECK_EQ(read(p[0], &c, 1), 1);
    int status = 0;
    CHECK_EQ(waitpid(-d, &status, 0), d);
    CHECK_EQ(WEXITSTATUS(status), 5);
    close(p[0]);
    close(p[1]);
}
