/* getuid(2) and friends, getpid(2), gettid(2), getppid(2): process identity and credentials. */
#include "harness.h"

#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel passes the credentials it started the program with in the auxiliary vector
 * (getauxval(3): AT_UID, AT_EUID, AT_GID, AT_EGID). Nothing here changes them. */
TEST(uids_match_auxv) {
    CHECK_EQ(syscall(SYS_getuid), getauxval(AT_UID));
    CHECK_EQ(syscall(SYS_geteuid), getauxval(AT_EUID));
}

TEST(gids_match_auxv) {
    CHECK_EQ(syscall(SYS_getgid), getauxval(AT_GID));
    CHECK_EQ(syscall(SYS_getegid), getauxval(AT_EGID));
}

TEST(glibc_wrappers_match_raw_calls) {
    CHECK_EQ(getuid(), syscall(SYS_getuid));
    CHECK_EQ(geteuid(), syscall(SYS_geteuid));
    CHECK_EQ(getgid(), syscall(SYS_getgid));
    CHECK_EQ(getegid(), syscall(SYS_getegid));
    CHECK_EQ(getpid(), syscall(SYS_getpid));
}

/* "These functions are always successful": the ids are valid, not -1. */
TEST(ids_are_not_minus_one) {
    CHECK(syscall(SYS_getuid) != -1);
    CHECK(syscall(SYS_geteuid) != -1);
    CHECK(syscall(SYS_getgid) != -1);
    CHECK(syscall(SYS_getegid) != -1);
    CHECK((uid_t)syscall(SYS_getuid) != (uid_t)-1);
}

/* AT_SECURE is nonzero for set-user-ID/set-group-ID execution; with real == effective ids
 * and no capabilities gained, it is 0. */
TEST(at_secure_zero_when_ids_agree) {
    if (getauxval(AT_UID) == getauxval(AT_EUID) && getauxval(AT_GID) == getauxval(AT_EGID))
        CHECK_EQ(getauxval(AT_SECURE), 0);
}

TEST(pid_is_positive_and_stable) {
    long a = syscall(SYS_getpid);
    CHECK(a > 0);
    CHECK_EQ(syscall(SYS_getpid), a);
    CHECK_EQ(getpid(), a);
}

/* gettid(2): "In a single-threaded process, the thread ID is equal to the process ID". */
TEST(gettid_equals_getpid_in_main_thread) {
    long tid = syscall(SYS_gettid);
    CHECK(tid > 0);
    CHECK_EQ(tid, syscall(SYS_getpid));
    CHECK_EQ(gettid(), getpid());
}

/* getppid(2) always succeeds; the parent may be outside this pid namespace (then it is 0). */
TEST(getppid_is_nonnegative_and_not_self) {
    long ppid = syscall(SYS_getppid);
    CHECK(ppid >= 0);
    CHECK(ppid != syscall(SYS_getpid));
    CHECK_EQ(getppid(), ppid);
}

TEST(getresuid_matches_getuid_and_geteuid) {
    uid_t r = 12345, e = 12345, s = 12345;
    CHECK_OK(syscall(SYS_getresuid, &r, &e, &s));
    CHECK_EQ(r, getuid());
    CHECK_EQ(e, geteuid());
    /* The saved set-user-ID starts as the effective ID (execve(2)). */
    CHECK_EQ(s, geteuid());
}

TEST(getresgid_matches_getgid_and_getegid) {
    gid_t r = 12345, e = 12345, s = 12345;
    CHECK_OK(syscall(SYS_getresgid, &r, &e, &s));
    CHECK_EQ(r, getgid());
    CHECK_EQ(e, getegid());
    CHECK_EQ(s, getegid());
}

TEST(getresuid_bad_pointer_is_efault) {
    uid_t r, e;
    CHECK_ERR(syscall(SYS_getresuid, &r, &e, (void *)8), EFAULT);
    CHECK_ERR(syscall(SYS_getresgid, (void *)8, &r, &e), EFAULT);
}

TEST(getgroups_size_zero_returns_count) {
    gid_t list[256];
    long n = syscall(SYS_getgroups, 0, NULL);
    CHECK(n >= 0);
    CHECK_EQ(syscall(SYS_getgroups, 256, list), n);
}

TEST(getgroups_too_small_is_einval) {
    gid_t list[256];
    long n = syscall(SYS_getgroups, 0, NULL);
    if (n > 0) CHECK_ERR(syscall(SYS_getgroups, n - 1, list), EINVAL);
    CHECK_ERR(syscall(SYS_getgroups, -1, list), EINVAL);
}
