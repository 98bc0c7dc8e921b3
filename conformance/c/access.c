/* access(2), faccessat(2) and faccessat2(2) on files this process creates. The cases hold for
 * root and for other users: root (CAP_DAC_OVERRIDE) may read and write anything, and may
 * execute a file only if some execute bit is set; an owner is judged by the owner bits alone.
 * Each case works in its own scratch directory under /tmp. */
#include "scratch.h"

#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

static long kaccess(const char *path, int mode) {
    return syscall(SYS_access, path, mode);
}
static long kfaccessat(int dfd, const char *path, int mode) {
    return syscall(SYS_faccessat, dfd, path, mode);
}
static long kfaccessat2(int dfd, const char *path, int mode, int flags) {
    return syscall(SYS_faccessat2, dfd, path, mode, flags);
}

static int root(void) {
    return geteuid() == 0;
}

/* A file with exactly this mode (the umask cannot interfere: chmod after creating). */
static int make(const char *name, int mode) {
    if (put_file(P(name), "#!/bin/sh\n") < 0) return -1;
    return chmod(P(name), mode);
}

/* Checks access(path, mode) succeeds if ok, else fails with EACCES. */
#define CHECK_ACCESS(path, mode, ok)                                                  \
    do {                                                                              \
        if (ok) CHECK_EQ(kaccess(path, mode), 0);                                     \
        else CHECK_ERR(kaccess(path, mode), EACCES);                                  \
    } while (0)

/* "F_OK tests for the existence of the file"; "ENOENT A component of pathname does not exist
 * or is a dangling symbolic link"; "ENOTDIR A component used as a directory in pathname is
 * not, in fact, a directory." F_OK needs no permission on the file itself. */
TEST(f_ok_existing_and_missing) {
    CHECK(scratch());
    CHECK_OK(make("f", 0));
    CHECK_OK(mkdir(P("d"), 0));
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_EQ(kaccess(P("f"), F_OK), 0);
    CHECK_EQ(kaccess(P("d"), F_OK), 0);
    CHECK_ERR(kaccess(P("missing"), F_OK), ENOENT);
    CHECK_ERR(kaccess(P("dangling"), F_OK), ENOENT);
    CHECK_ERR(kaccess(P("nodir/f"), F_OK), ENOENT);
    CHECK_ERR(kaccess(P("f/x"), F_OK), ENOTDIR);
    CHECK_ERR(kaccess("", F_OK), ENOENT);
    CHECK_ERR(kaccess(NULL, F_OK), EFAULT);
}

/* "R_OK, W_OK, and X_OK test whether the file exists and grants read, write, and execute
 * permissions, respectively", judged by the owner bits for the owner. */
TEST(read_write_follow_the_owner_bits) {
    CHECK(scratch());
    CHECK_OK(make("rw", 0600));
    CHECK_OK(make("r", 0400));
    CHECK_OK(make("w", 0200));
    CHECK_OK(make("none", 0000));
    CHECK_OK(make("others", 0066));
    CHECK_ACCESS(P("rw"), R_OK, 1);
    CHECK_ACCESS(P("rw"), W_OK, 1);
    CHECK_ACCESS(P("rw"), R_OK | W_OK, 1);
    CHECK_ACCESS(P("r"), R_OK, 1);
    CHECK_ACCESS(P("r"), W_OK, root());
    CHECK_ACCESS(P("r"), R_OK | W_OK, root());
    CHECK_ACCESS(P("w"), W_OK, 1);
    CHECK_ACCESS(P("w"), R_OK, root());
    CHECK_ACCESS(P("none"), R_OK, root());
    CHECK_ACCESS(P("none"), W_OK, root());
    /* The group and other bits do not help the owner. */
    CHECK_ACCESS(P("others"), R_OK, root());
    CHECK_ACCESS(P("others"), W_OK, root());
}

/* access(2): "If the calling process is privileged (i.e., its real UID is zero), then an X_OK
 * check is successful for a regular file if execute permission is enabled for any of the file
 * owner, group, or other." An unprivileged owner is judged by the owner bits alone. */
TEST(x_ok_needs_an_execute_bit) {
    CHECK(scratch());
    CHECK_OK(make("rw", 0644));
    CHECK_OK(make("ux", 0100));
    CHECK_OK(make("gx", 0010));
    CHECK_OK(make("ox", 0001));
    CHECK_OK(make("all", 0755));
    CHECK_ACCESS(P("rw"), X_OK, 0);
    CHECK_ACCESS(P("ux"), X_OK, 1);
    CHECK_ACCESS(P("gx"), X_OK, root());
    CHECK_ACCESS(P("ox"), X_OK, root());
    CHECK_ACCESS(P("all"), X_OK, 1);
    CHECK_ACCESS(P("all"), R_OK | W_OK | X_OK, 1);
    /* Every requested permission must be granted. */
    CHECK_ACCESS(P("rw"), R_OK | X_OK, 0);
    CHECK_ACCESS(P("ux"), R_OK | X_OK, root());
}

/* On a directory X_OK is search permission, which root always has. */
TEST(directory_permissions) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("open"), 0700));
    CHECK_OK(mkdir(P("closed"), 0700));
    CHECK_OK(chmod(P("closed"), 0));
    CHECK_OK(mkdir(P("listonly"), 0700));
    CHECK_OK(chmod(P("listonly"), 0400));
    CHECK_ACCESS(P("open"), R_OK | W_OK | X_OK, 1);
    CHECK_ACCESS(P("closed"), X_OK, root());
    CHECK_ACCESS(P("closed"), R_OK, root());
    CHECK_ACCESS(P("closed"), W_OK, root());
    CHECK_ACCESS(P("listonly"), R_OK, 1);
    CHECK_ACCESS(P("listonly"), X_OK, root());
    /* "EACCES ... search permission is denied for one of the directories in the path prefix
     * of pathname." */
    CHECK_OK(chmod(P("closed"), 0700));
    CHECK_OK(make("closed/f", 0644));
    CHECK_OK(chmod(P("closed"), 0600));
    if (root()) CHECK_EQ(kaccess(P("closed/f"), F_OK), 0);
    else CHECK_ERR(kaccess(P("closed/f"), F_OK), EACCES);
}

/* access(2) follows symbolic links: "If pathname is a symbolic link, it is dereferenced." */
TEST(symlink_is_followed) {
    CHECK(scratch());
    CHECK_OK(make("plain", 0644));
    CHECK_OK(symlink("plain", P("l")));
    CHECK_ACCESS(P("l"), X_OK, 0);
    CHECK_ACCESS(P("l"), R_OK, 1);
    CHECK_OK(chmod(P("plain"), 0755));
    CHECK_ACCESS(P("l"), X_OK, 1);
}

/* "EINVAL mode was incorrectly specified." Only F_OK or a combination of R_OK, W_OK and X_OK
 * (7) is valid. */
TEST(bad_mode_is_einval) {
    CHECK(scratch());
    CHECK_OK(make("f", 0777));
    CHECK_ERR(kaccess(P("f"), 8), EINVAL);
    CHECK_ERR(kaccess(P("f"), 0x10 | R_OK), EINVAL);
    CHECK_ERR(kaccess(P("f"), -1), EINVAL);
    CHECK_ERR(kfaccessat(AT_FDCWD, P("f"), 0x100), EINVAL);
    CHECK_ERR(kfaccessat2(AT_FDCWD, P("f"), 8, 0), EINVAL);
    /* The mode is checked before the path. */
    CHECK_ERR(kaccess(P("missing"), 8), EINVAL);
}

/* faccessat2: "EINVAL Invalid flag specified in flags." The valid flags are AT_EACCESS,
 * AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH. */
TEST(bad_flags_is_einval) {
    CHECK(scratch());
    CHECK_OK(make("f", 0644));
    CHECK_ERR(kfaccessat2(AT_FDCWD, P("f"), F_OK, 0x1), EINVAL);
    /* AT_NO_AUTOMOUNT is valid for stat but not here. (AT_EACCESS is 0x200, the value
     * AT_REMOVEDIR has for unlinkat.) */
    CHECK_ERR(kfaccessat2(AT_FDCWD, P("f"), F_OK, AT_NO_AUTOMOUNT), EINVAL);
    CHECK_ERR(kfaccessat2(AT_FDCWD, P("f"), R_OK, AT_SYMLINK_FOLLOW), EINVAL);
    CHECK_EQ(kfaccessat2(AT_FDCWD, P("f"), R_OK, AT_EACCESS), 0);
    CHECK_EQ(kfaccessat2(AT_FDCWD, P("f"), R_OK, AT_SYMLINK_NOFOLLOW), 0);
    CHECK_EQ(kfaccessat2(AT_FDCWD, P("f"), R_OK, AT_EMPTY_PATH), 0);
    CHECK_EQ(kfaccessat2(AT_FDCWD, P("f"), R_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW), 0);
}

/* faccessat2: AT_SYMLINK_NOFOLLOW checks a final symbolic link itself instead of following
 * it, and AT_EMPTY_PATH checks dirfd's own file. "the Linux kernel's faccessat() system call
 * does not support a flags argument": a fourth argument to it is ignored. */
TEST(faccessat2_flags) {
    CHECK(scratch());
    CHECK_OK(make("f", 0644));
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_EQ(kfaccessat2(AT_FDCWD, P("dangling"), F_OK, AT_SYMLINK_NOFOLLOW), 0);
    CHECK_ERR(kfaccessat2(AT_FDCWD, P("dangling"), F_OK, 0), ENOENT);
    CHECK_ERR(syscall(SYS_faccessat, AT_FDCWD, P("dangling"), F_OK, AT_SYMLINK_NOFOLLOW),
              ENOENT);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(kfaccessat2(fd, "", R_OK, AT_EMPTY_PATH), 0);
    CHECK_ERR(kfaccessat2(fd, "", X_OK, AT_EMPTY_PATH), EACCES);
    CHECK_ERR(kfaccessat2(fd, "", R_OK, 0), ENOENT);
    CHECK_OK(close(fd));
}

/* faccessat(2): relative paths resolve from dirfd; "ENOTDIR pathname is relative and dirfd is
 * a file descriptor referring to a file other than a directory"; "EBADF pathname is relative
 * but dirfd is neither AT_FDCWD nor a valid file descriptor". */
TEST(faccessat_dirfd) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(make("d/f", 0644));
    int dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_EQ(kfaccessat(dfd, "f", R_OK), 0);
    CHECK_ERR(kfaccessat(dfd, "f", X_OK), EACCES);
    CHECK_ERR(kfaccessat(dfd, "g", F_OK), ENOENT);
    CHECK_EQ(kfaccessat2(dfd, "f", W_OK, 0), 0);
    int fd = open(P("d/f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(kfaccessat(fd, "x", F_OK), ENOTDIR);
    CHECK_ERR(kfaccessat(1000, "f", F_OK), EBADF);
    CHECK_EQ(kfaccessat(1000, P("d/f"), F_OK), 0);
    CHECK_OK(chdir(P("d")));
    CHECK_EQ(kfaccessat(AT_FDCWD, "f", R_OK), 0);
    CHECK_EQ(kaccess("f", R_OK), 0);
    CHECK_OK(chdir("/"));
    CHECK_OK(close(fd));
    CHECK_OK(close(dfd));
}
