/* prctl(2): PR_SET_NAME and PR_GET_NAME, the thread's command name ("comm"); the
 * parent-death signal, dumpability and no_new_privs. */
#include "harness.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long pr(int op, unsigned long a2) {
    return syscall(SYS_prctl, op, a2, 0UL, 0UL, 0UL);
}

/* "PR_GET_NAME: Return the name of the calling thread, in the buffer pointed to by (char *)
 * arg2. The buffer should allow space for up to 16 bytes; the returned string will be
 * null-terminated." */
static char startup_name[32];
static long startup_ret = -2;

/* Other cases rename the thread; capture the name before any case runs. */
__attribute__((constructor)) static void save_startup_name(void) {
    memset(startup_name, 'x', sizeof startup_name);
    startup_ret = pr(PR_GET_NAME, (unsigned long)startup_name);
}

TEST(initial_name_is_program_name) {
    CHECK_EQ(startup_ret, 0);
    CHECK(memchr(startup_name, 0, 16) != NULL);
    /* After execve the name is the (truncated) file name of the program. */
    char want[16];
    snprintf(want, sizeof want, "%s", program_invocation_short_name);
    CHECK(strcmp(startup_name, want) == 0);
}

TEST(set_get_round_trip) {
    char name[16];
    CHECK_EQ(pr(PR_SET_NAME, (unsigned long)"conf-test"), 0);
    memset(name, 'x', sizeof name);
    CHECK_EQ(pr(PR_GET_NAME, (unsigned long)name), 0);
    CHECK(strcmp(name, "conf-test") == 0);
}

/* "The name can be up to 16 bytes long, including the terminating null byte. (If the length of
 * the string, including the terminating null byte, exceeds 16 bytes, the string is silently
 * truncated.)" */
TEST(long_name_truncated_to_15_chars) {
    char name[32];
    CHECK_EQ(pr(PR_SET_NAME, (unsigned long)"abcdefghijklmnopqrstuvwxyz"), 0);
    memset(name, 'x', sizeof name);
    CHECK_EQ(pr(PR_GET_NAME, (unsigned long)name), 0);
    CHECK(strcmp(name, "abcdefghijklmno") == 0);
    CHECK_EQ(name[15], 0);
    /* Only 16 bytes are written. */
    CHECK_EQ(name[16], 'x');
}

TEST(fifteen_char_name_kept_whole) {
    char name[16];
    CHECK_EQ(pr(PR_SET_NAME, (unsigned long)"123456789012345"), 0);
    memset(name, 'x', sizeof name);
    CHECK_EQ(pr(PR_GET_NAME, (unsigned long)name), 0);
    CHECK(strcmp(name, "123456789012345") == 0);
}

/* A shorter name replaces a longer one completely: no stale bytes after the NUL matter, and the
 * string read back is the short one. */
TEST(shorter_name_replaces_longer) {
    char name[16];
    CHECK_EQ(pr(PR_SET_NAME, (unsigned long)"longer-name-xyz"), 0);
    CHECK_EQ(pr(PR_SET_NAME, (unsigned long)"ab"), 0);
    CHECK_EQ(pr(PR_GET_NAME, (unsigned long)name), 0);
    CHECK(strcmp(name, "ab") == 0);
}

TEST(empty_name_round_trip) {
    char name[16];
    CHECK_EQ(pr(PR_SET_NAME, (unsigned long)""), 0);
    memset(name, 'x', sizeof name);
    CHECK_EQ(pr(PR_GET_NAME, (unsigned long)name), 0);
    CHECK_EQ(name[0], 0);
}

/* The glibc wrapper prctl() passes the arguments through. */
TEST(glibc_wrapper_round_trip) {
    char name[16];
    CHECK_EQ(prctl(PR_SET_NAME, "via-glibc", 0, 0, 0), 0);
    CHECK_EQ(prctl(PR_GET_NAME, name, 0, 0, 0), 0);
    CHECK(strcmp(name, "via-glibc") == 0);
}

/* "EINVAL The value of option is not recognized." */
TEST(unknown_option_is_einval) {
    CHECK_ERR(pr(0x7fff1234, 0), EINVAL);
    CHECK_ERR(pr(-1, 0), EINVAL);
}

TEST(bad_pointer_is_efault) {
    char name[16];
    CHECK_EQ(pr(PR_SET_NAME, (unsigned long)"kept"), 0);
    CHECK_ERR(pr(PR_SET_NAME, 1), EFAULT);
    CHECK_ERR(pr(PR_GET_NAME, 1), EFAULT);
    CHECK_ERR(pr(PR_GET_NAME, 0), EFAULT);
    /* A failed PR_SET_NAME leaves the name alone. */
    CHECK_EQ(pr(PR_GET_NAME, (unsigned long)name), 0);
    CHECK(strcmp(name, "kept") == 0);
}

/* PR_SET_PDEATHSIG / PR_GET_PDEATHSIG: "arg2 ... signal value in the range [1, maxsig], or 0
 * to clear"; the value is written to the int at arg2. */
TEST(pdeathsig_round_trip) {
    int sig = -1;
    CHECK_EQ(pr(PR_GET_PDEATHSIG, (unsigned long)&sig), 0);
    CHECK_EQ(sig, 0);
    CHECK_EQ(pr(PR_SET_PDEATHSIG, SIGUSR1), 0);
    CHECK_EQ(pr(PR_GET_PDEATHSIG, (unsigned long)&sig), 0);
    CHECK_EQ(sig, SIGUSR1);
    CHECK_EQ(pr(PR_SET_PDEATHSIG, 64), 0);
    CHECK_ERR(pr(PR_SET_PDEATHSIG, 65), EINVAL);
    CHECK_ERR(pr(PR_SET_PDEATHSIG, -1UL), EINVAL);
    CHECK_EQ(pr(PR_GET_PDEATHSIG, (unsigned long)&sig), 0);
    CHECK_EQ(sig, 64);
    CHECK_EQ(pr(PR_SET_PDEATHSIG, 0), 0);
    CHECK_EQ(pr(PR_GET_PDEATHSIG, (unsigned long)&sig), 0);
    CHECK_EQ(sig, 0);
    CHECK_ERR(pr(PR_GET_PDEATHSIG, 1), EFAULT);
}

/* "The parent-death signal setting is cleared for the child of a fork(2)." */
TEST(pdeathsig_cleared_in_child) {
    CHECK_EQ(pr(PR_SET_PDEATHSIG, SIGUSR2), 0);
    pid_t child = fork();
    if (child == 0) {
        int sig = -1;
        _exit(pr(PR_GET_PDEATHSIG, (unsigned long)&sig) == 0 && sig == 0 ? 0 : 1);
    }
    CHECK(child > 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

/* PR_GET_DUMPABLE / PR_SET_DUMPABLE: 1 for a normal program; arg2 "must be either 0
 * (SUID_DUMP_DISABLE) or 1 (SUID_DUMP_USER)". */
TEST(dumpable_round_trip) {
    CHECK_EQ(pr(PR_GET_DUMPABLE, 0), 1);
    CHECK_EQ(pr(PR_SET_DUMPABLE, 0), 0);
    CHECK_EQ(pr(PR_GET_DUMPABLE, 0), 0);
    CHECK_ERR(pr(PR_SET_DUMPABLE, 2), EINVAL);
    CHECK_ERR(pr(PR_SET_DUMPABLE, 3), EINVAL);
    CHECK_EQ(pr(PR_GET_DUMPABLE, 0), 0);
    CHECK_EQ(pr(PR_SET_DUMPABLE, 1), 0);
    CHECK_EQ(pr(PR_GET_DUMPABLE, 0), 1);
}

/* PR_SET_NO_NEW_PRIVS: arg2 must be 1 and the others 0; the flag cannot be unset and a child
 * inherits it. PR_GET_NO_NEW_PRIVS wants every other argument 0. */
TEST(no_new_privs) {
    long before = syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL);
    CHECK(before == 0 || before == 1);
    CHECK_ERR(syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL), EINVAL);
    CHECK_ERR(syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 2UL, 0UL, 0UL, 0UL), EINVAL);
    CHECK_ERR(syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1UL, 1UL, 0UL, 0UL), EINVAL);
    CHECK_ERR(syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL), EINVAL);
    CHECK_ERR(syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 1UL), EINVAL);
    CHECK_EQ(syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL), before);
    CHECK_EQ(syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL), 0);
    CHECK_EQ(syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL), 1);
    pid_t child = fork();
    if (child == 0) _exit(syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL) == 1 ? 0 : 1);
    CHECK(child > 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}
