/* File locks: flock(2), and fcntl(2) record locks, classic POSIX (F_GETLK, F_SETLK, F_SETLKW)
 * and open file description locks (F_OFD_*). A case runs in one process, so conflicts are made
 * between open file descriptions of that process (flock, OFD locks) and between its POSIX
 * locks and OFD locks, which Linux treats as different owners; a request that would wait is
 * made non-blocking and checked for EAGAIN (waiting is covered by the Sentry's unit tests).
 * Each case works on a file in its own scratch directory under /tmp. */
#include "scratch.h"

#include <sys/file.h>

/* Two open file descriptions of one new file, read-write, in *a and *b. */
static int two_opens(int *a, int *b) {
    *a = open(P("f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    *b = open(P("f"), O_RDWR);
    return *a >= 0 && *b >= 0 ? 0 : -1;
}

static int lk(int fd, int cmd, short type, short whence, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = whence, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

/* What F_GETLK-style `cmd` on fd says about a `type` lock of [start, start+len). */
static struct flock probe(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &fl) != 0) fl.l_type = -1;
    return fl;
}

/* flock(2): "LOCK_SH Place a shared lock. More than one process may hold a shared lock for a
 * given file at a given time. LOCK_EX Place an exclusive lock. Only one process may hold an
 * exclusive lock"; "EWOULDBLOCK The file is locked and the LOCK_NB flag was selected." Locks
 * belong to open file descriptions. */
TEST(flock_shared_and_exclusive) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_OK(flock(a, LOCK_SH));
    CHECK_OK(flock(b, LOCK_SH | LOCK_NB));
    CHECK_ERR(flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK_OK(flock(b, LOCK_UN));
    CHECK_OK(flock(a, LOCK_EX | LOCK_NB));
    CHECK_ERR(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    CHECK_ERR(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    /* Locking again what one holds is no conflict; unlocking what one lacks is no error. */
    CHECK_OK(flock(a, LOCK_EX | LOCK_NB));
    CHECK_OK(flock(b, LOCK_UN));
    CHECK_OK(flock(a, LOCK_UN));
    CHECK_OK(flock(b, LOCK_EX | LOCK_NB));
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* flock(2): "Locks created by flock() are associated with an open file description. This means
 * that duplicate file descriptors (created by, for example, fork(2) or dup(2)) refer to the
 * same lock ... the lock is released either by an explicit LOCK_UN operation on any of these
 * duplicate file descriptors, or when all such file descriptors have been closed." */
TEST(flock_belongs_to_the_open_file_description) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    int d = dup(a);
    CHECK(d >= 0);
    CHECK_OK(flock(a, LOCK_EX));
    CHECK_OK(flock(d, LOCK_EX | LOCK_NB));
    CHECK_OK(flock(d, LOCK_UN));
    CHECK_OK(flock(b, LOCK_SH | LOCK_NB));
    CHECK_OK(flock(b, LOCK_UN));
    CHECK_OK(flock(d, LOCK_EX));
    CHECK_OK(close(a));
    CHECK_ERR(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK_OK(close(d));
    CHECK_OK(flock(b, LOCK_EX | LOCK_NB));
    CHECK_OK(close(b));
}

/* flock(2): "Converting a lock (shared to exclusive, or vice versa) is not guaranteed to be
 * atomic: the existing lock is first removed, and then a new lock is established." A failed
 * conversion leaves no lock. */
TEST(flock_conversion_drops_the_old_lock) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_OK(flock(a, LOCK_SH));
    CHECK_OK(flock(b, LOCK_SH));
    CHECK_ERR(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK_OK(flock(a, LOCK_EX | LOCK_NB));
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* flock(2): "EINVAL operation is invalid"; "EBADF fd is not an open file descriptor" (an O_PATH
 * one included). The operation is checked first. LOCK_MAND has been ignored since Linux 5.15:
 * the call succeeds without doing anything. */
TEST(flock_errors) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_ERR(flock(a, 0), EINVAL);
    CHECK_ERR(flock(a, LOCK_SH | LOCK_EX), EINVAL);
    CHECK_ERR(flock(a, LOCK_NB), EINVAL);
    CHECK_ERR(flock(a, 64), EINVAL);
    CHECK_ERR(flock(1000, LOCK_SH), EBADF);
    CHECK_ERR(flock(1000, 7), EINVAL);
    CHECK_OK(flock(1000, 32 /* LOCK_MAND */));
    int o = open(P("f"), O_PATH);
    CHECK(o >= 0);
    CHECK_ERR(flock(o, LOCK_SH), EBADF);
    CHECK_OK(close(o));
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* flock locks and fcntl record locks do not see each other on Linux ("flock() and fcntl(2)
 * locks have different semantics with respect to forked processes and dup(2)"; they are
 * independent). */
TEST(flock_and_record_locks_are_independent) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_OK(flock(a, LOCK_EX));
    CHECK_OK(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    CHECK_OK(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 10, 0));
    CHECK_OK(flock(b, LOCK_UN));
    CHECK_ERR(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* fcntl(2): F_SETLK "If a conflicting lock is held by another process, this call returns -1
 * and sets errno to EACCES or EAGAIN" (Linux: EAGAIN). F_GETLK "If the lock could be placed,
 * fcntl() does not actually place it, but returns F_UNLCK in the l_type field of lock and
 * leaves the other fields of the structure unchanged. If one or more incompatible locks would
 * prevent this lock being placed, then fcntl() returns details about one of those locks in
 * the l_type, l_whence, l_start, and l_len fields of lock" -- with the holder's pid for a
 * POSIX lock and -1 for an OFD lock. POSIX and OFD locks conflict with each other. */
TEST(posix_and_ofd_locks_conflict_and_report_their_holder) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_OK(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 10, 10));
    struct flock fl = probe(b, F_OFD_GETLK, F_RDLCK, 0, 0);
    CHECK_EQ(fl.l_type, F_WRLCK);
    CHECK_EQ(fl.l_whence, SEEK_SET);
    CHECK_EQ(fl.l_start, 10);
    CHECK_EQ(fl.l_len, 10);
    CHECK_EQ(fl.l_pid, getpid());
    CHECK_ERR(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 15, 1), EAGAIN);
    CHECK_OK(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 10));
    CHECK_OK(lk(b, F_OFD_SETLKW, F_RDLCK, SEEK_SET, 20, 5));
    /* The process's own POSIX query sees the OFD lock, with pid -1. */
    fl = probe(a, F_GETLK, F_WRLCK, 0, 0);
    CHECK_EQ(fl.l_type, F_RDLCK);
    CHECK_EQ(fl.l_start, 0);
    CHECK_EQ(fl.l_len, 10);
    CHECK_EQ(fl.l_pid, -1);
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* A process's own POSIX locks never conflict with its POSIX requests, whichever descriptor they
 * come through: a new lock replaces what it overlaps. F_GETLK with nothing in the way returns
 * F_UNLCK and leaves the other fields alone. */
TEST(own_posix_locks_never_conflict) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_OK(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    CHECK_OK(lk(b, F_SETLK, F_RDLCK, SEEK_SET, 5, 5));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 3, .l_len = 7,
                       .l_pid = 1234};
    CHECK_OK(fcntl(b, F_GETLK, &fl));
    CHECK_EQ(fl.l_type, F_UNLCK);
    CHECK_EQ(fl.l_whence, SEEK_CUR);
    CHECK_EQ(fl.l_start, 3);
    CHECK_EQ(fl.l_len, 7);
    CHECK_EQ(fl.l_pid, 1234);
    /* An OFD query sees what the process holds now: a write lock, split by the read lock. */
    fl = probe(b, F_OFD_GETLK, F_RDLCK, 0, 0);
    CHECK_EQ(fl.l_type, F_WRLCK);
    CHECK_EQ(fl.l_start, 0);
    CHECK_EQ(fl.l_len, 5);
    fl = probe(b, F_OFD_GETLK, F_RDLCK, 5, 10);
    CHECK_EQ(fl.l_type, F_WRLCK);
    CHECK_EQ(fl.l_start, 10);
    CHECK_EQ(fl.l_len, 0);
    fl = probe(b, F_OFD_GETLK, F_RDLCK, 5, 5);
    CHECK_EQ(fl.l_type, F_UNLCK);
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* OFD locks: "conflicting lock combinations ... on the same file ... are compatible or
 * incompatible in the same way as traditional record locks", owned by the open file
 * description: two descriptions conflict, dup'ed descriptors share. */
TEST(ofd_locks_of_two_descriptions_conflict) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    int d = dup(a);
    CHECK(d >= 0);
    CHECK_OK(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    CHECK_OK(lk(d, F_OFD_SETLK, F_WRLCK, SEEK_SET, 5, 10));
    CHECK_ERR(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 14, 1), EAGAIN);
    CHECK_ERR(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 1), EAGAIN);
    CHECK_OK(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 15, 5));
    struct flock fl = probe(a, F_OFD_GETLK, F_RDLCK, 0, 0);
    CHECK_EQ(fl.l_type, F_WRLCK);
    CHECK_EQ(fl.l_start, 15);
    CHECK_EQ(fl.l_pid, -1);
    CHECK_OK(close(a));
    CHECK_OK(close(d));
    CHECK_OK(close(b));
}

/* Record locks split when part of them changes or is unlocked, and an owner's neighbouring
 * locks of one type merge: "the number of locks on a file ... may be increased by F_SETLK
 * splitting an existing lock" / "adjacent or overlapping locks of the same type are merged". */
TEST(ranges_split_and_merge) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_OK(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 100));
    CHECK_OK(lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 40, 20));
    CHECK_EQ(probe(b, F_OFD_GETLK, F_WRLCK, 40, 20).l_type, F_UNLCK);
    struct flock fl = probe(b, F_OFD_GETLK, F_WRLCK, 0, 0);
    CHECK_EQ(fl.l_start, 0);
    CHECK_EQ(fl.l_len, 40);
    fl = probe(b, F_OFD_GETLK, F_WRLCK, 50, 0);
    CHECK_EQ(fl.l_start, 60);
    CHECK_EQ(fl.l_len, 40);
    /* Filling the gap merges all three into one lock. */
    CHECK_OK(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 40, 20));
    fl = probe(b, F_OFD_GETLK, F_WRLCK, 50, 1);
    CHECK_EQ(fl.l_start, 0);
    CHECK_EQ(fl.l_len, 100);
    /* A read lock in the middle splits it into three of two types. */
    CHECK_OK(lk(a, F_OFD_SETLK, F_RDLCK, SEEK_SET, 40, 20));
    CHECK_OK(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 45, 10));
    fl = probe(b, F_OFD_GETLK, F_WRLCK, 40, 20);
    CHECK_EQ(fl.l_type, F_RDLCK);
    CHECK_EQ(fl.l_start, 40);
    CHECK_EQ(fl.l_len, 20);
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* fcntl(2): "l_start is the starting offset for the lock, and is interpreted relative to
 * either: the start of the file (if l_whence is SEEK_SET); the current file offset (if l_whence
 * is SEEK_CUR); or the end of the file (if l_whence is SEEK_END)." "If l_len is positive, then
 * the range to be locked covers bytes l_start up to and including l_start+l_len-1. Specifying
 * 0 for l_len has the special meaning: lock all bytes starting at the location specified by
 * l_whence and l_start through to the end of file ... If l_len is negative, the interval
 * described by lock covers bytes l_start+l_len up to and including l_start-1." */
TEST(whence_and_negative_lengths) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_EQ(write(a, "0123456789012345678901234567890123456789", 40), 40);
    CHECK_EQ(lseek(a, 30, SEEK_SET), 30);
    CHECK_OK(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_CUR, -10, 5));
    struct flock fl = probe(b, F_OFD_GETLK, F_WRLCK, 0, 0);
    CHECK_EQ(fl.l_start, 20);
    CHECK_EQ(fl.l_len, 5);
    CHECK_OK(lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    CHECK_OK(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_END, 2, 0));
    fl = probe(b, F_OFD_GETLK, F_WRLCK, 0, 0);
    CHECK_EQ(fl.l_start, 42);
    CHECK_EQ(fl.l_len, 0);
    CHECK_OK(lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    CHECK_OK(lk(a, F_OFD_SETLK, F_RDLCK, SEEK_SET, 10, -5));
    fl = probe(b, F_OFD_GETLK, F_WRLCK, 0, 0);
    CHECK_EQ(fl.l_type, F_RDLCK);
    CHECK_EQ(fl.l_start, 5);
    CHECK_EQ(fl.l_len, 5);
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* fcntl(2): "If a process closes any file descriptor referring to a file, then all of the
 * process's locks on that file are released, regardless of the file descriptor(s) on which the
 * locks were obtained." */
TEST(closing_any_descriptor_releases_posix_locks) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_OK(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    CHECK_EQ(probe(b, F_OFD_GETLK, F_RDLCK, 0, 0).l_type, F_WRLCK);
    int c = open(P("f"), O_RDONLY);
    CHECK(c >= 0);
    CHECK_OK(close(c));
    CHECK_EQ(probe(b, F_OFD_GETLK, F_RDLCK, 0, 0).l_type, F_UNLCK);
    /* dup2 over a descriptor of the file closes it too. */
    CHECK_OK(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    c = open(P("f"), O_RDONLY);
    CHECK(c >= 0);
    CHECK_EQ(dup2(0, c), c);
    CHECK_EQ(probe(b, F_OFD_GETLK, F_RDLCK, 0, 0).l_type, F_UNLCK);
    CHECK_OK(close(c));
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* OFD locks: "are automatically released on the last close of the open file description":
 * closing a duplicate, or another description of the file, releases nothing. */
TEST(ofd_locks_go_with_the_last_close_of_their_description) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    int d = dup(a);
    CHECK(d >= 0);
    CHECK_OK(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    int c = open(P("f"), O_RDONLY);
    CHECK(c >= 0);
    CHECK_OK(close(c));
    CHECK_OK(close(a));
    CHECK_EQ(probe(b, F_OFD_GETLK, F_RDLCK, 0, 0).l_type, F_WRLCK);
    CHECK_OK(close(d));
    CHECK_EQ(probe(b, F_OFD_GETLK, F_RDLCK, 0, 0).l_type, F_UNLCK);
    CHECK_OK(close(b));
}

/* fcntl(2): "EBADF ... cmd is F_SETLK or F_SETLKW and the file descriptor open mode doesn't
 * match with the type of lock requested": a read lock needs a descriptor open for reading, a
 * write lock one open for writing. Unlocking needs neither, and F_GETLK does not check. */
TEST(lock_type_must_match_the_open_mode) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "data"), 4);
    int ro = open(P("f"), O_RDONLY);
    int wo = open(P("f"), O_WRONLY);
    CHECK(ro >= 0 && wo >= 0);
    CHECK_ERR(lk(ro, F_SETLK, F_WRLCK, SEEK_SET, 0, 0), EBADF);
    CHECK_ERR(lk(ro, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 0), EBADF);
    CHECK_ERR(lk(wo, F_SETLK, F_RDLCK, SEEK_SET, 0, 0), EBADF);
    CHECK_OK(lk(ro, F_SETLK, F_RDLCK, SEEK_SET, 0, 10));
    CHECK_OK(lk(wo, F_OFD_SETLK, F_WRLCK, SEEK_SET, 10, 0));
    CHECK_OK(lk(ro, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    CHECK_OK(lk(wo, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    CHECK_EQ(probe(ro, F_OFD_GETLK, F_WRLCK, 10, 0).l_type, F_WRLCK);
    CHECK_EQ(probe(ro, F_OFD_GETLK, F_WRLCK, 0, 10).l_type, F_UNLCK);
    CHECK_OK(close(ro));
    CHECK_OK(close(wo));
}

/* fcntl(2): "EINVAL The value specified in cmd is not recognized by this kernel" / an invalid
 * l_type or l_whence, a start before the file's beginning; "EOVERFLOW ... the offset ... cannot
 * be represented"; F_GETLK asks about F_RDLCK or F_WRLCK only; the F_OFD_* commands want
 * l_pid 0 ("EINVAL ... l_pid ... not set to 0"); "EFAULT lock is outside your accessible
 * address space"; and an O_PATH descriptor allows no lock command (EBADF). */
TEST(lock_argument_errors) {
    CHECK(scratch());
    int a, b;
    CHECK_OK(two_opens(&a, &b));
    CHECK_ERR(lk(a, F_SETLK, 5, SEEK_SET, 0, 0), EINVAL);
    CHECK_ERR(lk(a, F_GETLK, F_UNLCK, SEEK_SET, 0, 0), EINVAL);
    CHECK_ERR(lk(a, F_SETLK, F_RDLCK, 9, 0, 0), EINVAL);
    CHECK_ERR(lk(a, F_SETLK, F_RDLCK, SEEK_SET, -1, 1), EINVAL);
    CHECK_ERR(lk(a, F_SETLK, F_RDLCK, SEEK_SET, 5, -6), EINVAL);
    CHECK_ERR(lk(a, F_SETLK, F_RDLCK, SEEK_SET, 0x7fffffffffffffffL, 2), EOVERFLOW);
    CHECK_OK(lk(a, F_SETLK, F_RDLCK, SEEK_SET, 0x7fffffffffffffffL, 1));
    CHECK_OK(lk(a, F_SETLK, F_RDLCK, SEEK_SET, 5, -5));
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1};
    CHECK_ERR(fcntl(a, F_OFD_SETLK, &fl), EINVAL);
    CHECK_ERR(fcntl(a, F_OFD_GETLK, &fl), EINVAL);
    CHECK_ERR(syscall(SYS_fcntl, a, F_SETLK, (void *)1), EFAULT);
    CHECK_ERR(syscall(SYS_fcntl, a, F_GETLK, (void *)1), EFAULT);
    int o = open(P("f"), O_PATH);
    CHECK(o >= 0);
    fl.l_pid = 0;
    CHECK_ERR(fcntl(o, F_GETLK, &fl), EBADF);
    CHECK_ERR(fcntl(o, F_SETLK, &fl), EBADF);
    CHECK_ERR(fcntl(o, F_OFD_SETLKW, &fl), EBADF);
    CHECK_ERR(fcntl(1000, F_SETLK, &fl), EBADF);
    CHECK_OK(close(o));
    CHECK_OK(close(a));
    CHECK_OK(close(b));
}

/* Locks work on any open file, pipes included (they live with the inode). */
TEST(locks_on_a_pipe) {
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(flock(p[0], LOCK_EX | LOCK_NB));
    CHECK_OK(lk(p[1], F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    CHECK_ERR(lk(p[0], F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 0), EAGAIN);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}
