/* readlink(2) on /proc/self: the magic links that need no open file. */
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static long kreadlink(const char *path, char *buf, long size) {
    return syscall(SYS_readlink, path, buf, size);
}

/* proc(5): "/proc/pid/exe ... a symbolic link containing the actual pathname of the executed
 * command." It is absolute, and its last component is this program's file name. */
TEST(self_exe_is_absolute_path_to_program) {
    char buf[PATH_MAX];
    long n = kreadlink("/proc/self/exe", buf, sizeof buf - 1);
    CHECK(n > 1);
    CHECK(n < (long)sizeof buf - 1);
    buf[n] = 0;
    CHECK_EQ(buf[0], '/');
    CHECK(strlen(buf) == (size_t)n);
    const char *base = strrchr(buf, '/') + 1;
    CHECK(strcmp(base, program_invocation_short_name) == 0);
}

/* readlink(2): "readlink() does not append a terminating null byte to buf." */
TEST(result_not_nul_terminated) {
    char buf[PATH_MAX];
    memset(buf, 'x', sizeof buf);
    long n = kreadlink("/proc/self/exe", buf, sizeof buf);
    CHECK(n > 0 && n < (long)sizeof buf);
    CHECK_EQ(buf[n], 'x');
    CHECK(memchr(buf, 0, n) == NULL);
}

/* "It will (silently) truncate the contents (to a length of bufsiz characters), in case the
 * buffer is too small to hold all of the contents." */
TEST(small_buffer_truncates) {
    char full[PATH_MAX], buf[8];
    long n = kreadlink("/proc/self/exe", full, sizeof full);
    CHECK(n > 4);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(kreadlink("/proc/self/exe", buf, 4), 4);
    CHECK(memcmp(buf, full, 4) == 0);
    CHECK_EQ(buf[4], 'x');
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(kreadlink("/proc/self/exe", buf, 1), 1);
    CHECK_EQ(buf[0], '/');
    CHECK_EQ(buf[1], 'x');
}

/* "EINVAL bufsiz is not positive." */
TEST(nonpositive_bufsiz_is_einval) {
    char buf[16];
    CHECK_ERR(kreadlink("/proc/self/exe", buf, 0), EINVAL);
    CHECK_ERR(kreadlink("/proc/self/exe", buf, -1), EINVAL);
}

TEST(bad_buffer_is_efault) {
    CHECK_ERR(kreadlink("/proc/self/exe", (char *)1, 64), EFAULT);
}

TEST(bad_path_is_efault) {
    char buf[64];
    CHECK_ERR(kreadlink((const char *)1, buf, sizeof buf), EFAULT);
    CHECK_ERR(kreadlink(NULL, buf, sizeof buf), EFAULT);
}

/* readlinkat(AT_FDCWD, ...) is the same as readlink. */
TEST(readlinkat_agrees) {
    char a[PATH_MAX], b[PATH_MAX];
    long na = kreadlink("/proc/self/exe", a, sizeof a);
    long nb = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", b, sizeof b);
    CHECK(na > 0);
    CHECK_EQ(nb, na);
    CHECK(memcmp(a, b, na) == 0);
}

/* proc(5): "/proc/self: When a process accesses this magic symbolic link, it resolves to the
 * process's own /proc/pid directory": its contents are the pid in decimal. */
TEST(proc_self_is_pid) {
    char buf[32], want[32];
    memset(buf, 0, sizeof buf);
    long n = kreadlink("/proc/self", buf, sizeof buf - 1);
    snprintf(want, sizeof want, "%d", getpid());
    CHECK_EQ(n, (long)strlen(want));
    CHECK(strcmp(buf, want) == 0);
}

/* The same link under the process's own pid. */
TEST(proc_pid_exe_matches_self) {
    char path[64], a[PATH_MAX], b[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", getpid());
    long na = kreadlink("/proc/self/exe", a, sizeof a);
    long nb = kreadlink(path, b, sizeof b);
    CHECK(na > 0);
    CHECK_EQ(nb, na);
    CHECK(memcmp(a, b, na) == 0);
}

TEST(missing_entry_is_enoent) {
    char buf[64];
    CHECK_ERR(kreadlink("/proc/self/no-such-entry", buf, sizeof buf), ENOENT);
}

/* "EINVAL The named file (i.e., the final filename component) is not a symbolic link." */
TEST(non_link_is_einval) {
    char buf[64];
    CHECK_ERR(kreadlink("/proc", buf, sizeof buf), EINVAL);
    CHECK_ERR(kreadlink("/", buf, sizeof buf), EINVAL);
}
