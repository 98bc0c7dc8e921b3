/* chmod(2), fchmod(2), fchmodat(2), fchmodat2, chown(2), fchown(2), lchown(2) and fchownat(2)
 * on files this process owns. Ownership only changes to the caller's own IDs (root may give
 * files away; that is checked only when running as root). Each case works in its own scratch
 * directory under /tmp. */
#include "scratch.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static long kchmod(const char *path, unsigned mode) {
    return syscall(SYS_chmod, path, mode);
}
static long kfchmod(int fd, unsigned mode) {
    return syscall(SYS_fchmod, fd, mode);
}
static long kfchmodat(int dfd, const char *path, unsigned mode) {
    return syscall(SYS_fchmodat, dfd, path, mode);
}
static long kfchmodat2(int dfd, const char *path, unsigned mode, int flags) {
    return syscall(SYS_fchmodat2, dfd, path, mode, flags);
}

static int mode_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    return st.st_mode & 07777;
}
static int type_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    return st.st_mode & S_IFMT;
}

/* chmod(2) sets the file mode bits: permissions, set-user-ID, set-group-ID and sticky; stat
 * shows them. The owner may set them all on a file whose group is its own. */
TEST(chmod_changes_permission_bits) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    static const unsigned modes[] = {0,    0777, 0644, 0400, 0111, 0700, 0070,
                                     0007, 04755, 02755, 01777, 06777, 0123};
    for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        CHECK_EQ(kchmod(P("f"), modes[i]), 0);
        CHECK_EQ(mode_of(P("f")), modes[i]);
        CHECK_EQ(type_of(P("f")), S_IFREG);
        CHECK_EQ(kchmod(P("d"), modes[i]), 0);
        CHECK_EQ(mode_of(P("d")), modes[i]);
        CHECK_EQ(type_of(P("d")), S_IFDIR);
    }
    CHECK_EQ(kchmod(P("d"), 0755), 0);
}

/* Only the mode bits (07777) are taken from the argument: the file type cannot be changed. */
TEST(chmod_ignores_file_type_bits) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_EQ(kchmod(P("f"), S_IFDIR | 0640), 0);
    CHECK_EQ(type_of(P("f")), S_IFREG);
    CHECK_EQ(mode_of(P("f")), 0640);
    CHECK_EQ(kchmod(P("f"), 0177777), 0);
    CHECK_EQ(type_of(P("f")), S_IFREG);
    CHECK_EQ(mode_of(P("f")), 07777);
}

/* fchmod(2) changes the file open on fd, whatever its access mode; "EBADF (fchmod()) The
 * file descriptor fd is not valid": an O_PATH descriptor is not enough. */
TEST(fchmod_changes_open_file) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(kfchmod(fd, 0600), 0);
    CHECK_EQ(mode_of(P("f")), 0600);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode, S_IFREG | 0600);
    CHECK_OK(close(fd));
    CHECK_ERR(kfchmod(fd, 0644), EBADF);
    fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    CHECK_ERR(kfchmod(fd, 0644), EBADF);
    CHECK_OK(close(fd));
    CHECK_EQ(mode_of(P("f")), 0600);
    /* An unlinked but open file can still be changed. */
    fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_OK(unlink(P("f")));
    CHECK_EQ(kfchmod(fd, 0640), 0);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 07777, 0640);
    CHECK_OK(close(fd));
}

/* fchmodat(2) resolves relative paths from dirfd. glibc's fchmodat "differs from the underlying
 * Linux system call, which does not have a flags argument": a fourth argument to the system
 * call is ignored and a symbolic link is followed. */
TEST(fchmodat_dirfd_and_no_flags) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("d/f"), "x"), 1);
    CHECK_OK(symlink("f", P("d/l")));
    int dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_EQ(kfchmodat(dfd, "f", 0604), 0);
    CHECK_EQ(mode_of(P("d/f")), 0604);
    CHECK_EQ(syscall(SYS_fchmodat, dfd, "l", 0606, AT_SYMLINK_NOFOLLOW), 0);
    CHECK_EQ(mode_of(P("d/f")), 0606);
    CHECK_EQ(type_of(P("d/l")), S_IFLNK);
    CHECK_EQ(mode_of(P("d/l")), 0777);
    CHECK_ERR(kfchmodat(dfd, "missing", 0600), ENOENT);
    CHECK_ERR(kfchmodat(1000, "f", 0600), EBADF);
    int fd = open(P("d/f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(kfchmodat(fd, "x", 0600), ENOTDIR);
    CHECK_OK(close(fd));
    CHECK_OK(close(dfd));
}

/* fchmodat2 (Linux 6.6) takes flags. AT_SYMLINK_NOFOLLOW: "If pathname is a symbolic link, do
 * not dereference it: instead operate on the link itself. This flag is not currently
 * implemented." For a link Linux answers EOPNOTSUPP ("ENOTSUP (fchmodat()) flags specified
 * AT_SYMLINK_NOFOLLOW, which is not supported") and changes nothing; on anything else it is
 * an ordinary chmod. AT_EMPTY_PATH operates on dirfd's own file; other flags are EINVAL. */
TEST(fchmodat2_symlink_nofollow) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(chmod(P("f"), 0644));
    CHECK_OK(symlink("f", P("l")));
    CHECK_ERR(kfchmodat2(AT_FDCWD, P("l"), 0600, AT_SYMLINK_NOFOLLOW), EOPNOTSUPP);
    CHECK_EQ(mode_of(P("l")), 0777);
    CHECK_EQ(mode_of(P("f")), 0644);
    CHECK_EQ(kfchmodat2(AT_FDCWD, P("f"), 0640, AT_SYMLINK_NOFOLLOW), 0);
    CHECK_EQ(mode_of(P("f")), 0640);
    CHECK_EQ(kfchmodat2(AT_FDCWD, P("l"), 0600, 0), 0);
    CHECK_EQ(mode_of(P("f")), 0600);
    CHECK_ERR(kfchmodat2(AT_FDCWD, P("f"), 0644, 0x1), EINVAL);
    CHECK_ERR(kfchmodat2(AT_FDCWD, P("f"), 0644, AT_REMOVEDIR), EINVAL);
    int fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    CHECK_EQ(kfchmodat2(fd, "", 0604, AT_EMPTY_PATH), 0);
    CHECK_EQ(mode_of(P("f")), 0604);
    CHECK_ERR(kfchmodat2(fd, "", 0644, 0), ENOENT);
    CHECK_OK(close(fd));
}

/* chmod follows symbolic links: the target changes, the link stays 0777. "ENOENT The file
 * does not exist", "ENOTDIR A component of the path prefix is not a directory", "EFAULT
 * pathname points outside your accessible address space". */
TEST(chmod_follows_links_and_errors) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(symlink("f", P("l")));
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_EQ(kchmod(P("l"), 0700), 0);
    CHECK_EQ(mode_of(P("f")), 0700);
    CHECK_EQ(mode_of(P("l")), 0777);
    CHECK_ERR(kchmod(P("missing"), 0600), ENOENT);
    CHECK_ERR(kchmod(P("dangling"), 0600), ENOENT);
    CHECK_ERR(kchmod(P("f/x"), 0600), ENOTDIR);
    CHECK_ERR(kchmod("", 0600), ENOENT);
    CHECK_ERR(kchmod(NULL, 0600), EFAULT);
    CHECK_ERR(kfchmod(-1, 0600), EBADF);
}

/* inode(7): the change time "is changed by ... setting inode information (i.e., owner,
 * group, link count, mode, etc.)"; the modification time is not. */
TEST(chmod_updates_ctime_only) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    struct stat a, b;
    CHECK_OK(stat(P("f"), &a));
    sleep_ms(30);
    CHECK_EQ(kchmod(P("f"), 0600), 0);
    CHECK_OK(stat(P("f"), &b));
    CHECK(b.st_ctim.tv_sec > a.st_ctim.tv_sec ||
          (b.st_ctim.tv_sec == a.st_ctim.tv_sec && b.st_ctim.tv_nsec > a.st_ctim.tv_nsec));
    CHECK_EQ(b.st_mtim.tv_sec, a.st_mtim.tv_sec);
    CHECK_EQ(b.st_mtim.tv_nsec, a.st_mtim.tv_nsec);
}

/* chown(2): "If the owner or group is specified as -1, then that ID is not changed"; a
 * process may set the owner to its own user and the group to its own group. lchown "does not
 * dereference symbolic links"; fchownat with AT_EMPTY_PATH works on an O_PATH descriptor. */
TEST(chown_to_self_succeeds) {
    CHECK(scratch());
    uid_t uid = geteuid();
    gid_t gid = getegid();
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(symlink("f", P("l")));
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_OK(mkdir(P("d"), 0755));
    struct stat st;
    CHECK_OK(chown(P("f"), uid, gid));
    CHECK_OK(stat(P("f"), &st));
    CHECK_EQ(st.st_uid, uid);
    CHECK_EQ(st.st_gid, gid);
    CHECK_OK(chown(P("f"), -1, -1));
    CHECK_OK(chown(P("f"), uid, -1));
    CHECK_OK(chown(P("f"), -1, gid));
    CHECK_OK(chown(P("d"), uid, gid));
    CHECK_OK(chown(P("l"), uid, gid));
    CHECK_OK(lchown(P("l"), uid, gid));
    CHECK_OK(lchown(P("dangling"), uid, gid));
    CHECK_OK(lstat(P("dangling"), &st));
    CHECK_EQ(st.st_uid, uid);
    CHECK_ERR(chown(P("dangling"), uid, gid), ENOENT);
    CHECK_ERR(chown(P("missing"), uid, gid), ENOENT);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(fchown(fd, uid, gid));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_uid, uid);
    CHECK_EQ(st.st_gid, gid);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    CHECK_ERR(fchown(fd, uid, gid), EBADF);
    CHECK_OK(fchownat(fd, "", uid, gid, AT_EMPTY_PATH));
    CHECK_OK(close(fd));
    CHECK_OK(fchownat(AT_FDCWD, P("l"), uid, gid, AT_SYMLINK_NOFOLLOW));
    CHECK_ERR(fchownat(AT_FDCWD, P("f"), uid, gid, 0x1), EINVAL);
    CHECK_ERR(fchown(1000, uid, gid), EBADF);
}

/* chown(2): "When the owner or group of an executable file is changed by an unprivileged
 * user, the S_ISUID and S_ISGID mode bits are cleared ... since Linux 2.2.13, root is treated
 * like other users." Linux does this on every chown of a non-directory, even one that changes
 * nothing (-1, -1). "In case of a non-group-executable file (i.e., one for which the S_IXGRP
 * bit is not set) the S_ISGID bit indicates mandatory locking, and is not cleared by a
 * chown()." Directories keep their bits. */
TEST(chown_clears_setuid_bits) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(chmod(P("f"), 06755));
    CHECK_EQ(mode_of(P("f")), 06755);
    CHECK_OK(chown(P("f"), -1, -1));
    CHECK_EQ(mode_of(P("f")), 0755);
    CHECK_OK(chmod(P("f"), 06755));
    CHECK_OK(chown(P("f"), geteuid(), getegid()));
    CHECK_EQ(mode_of(P("f")), 0755);
    CHECK_OK(chmod(P("f"), 06745));
    CHECK_OK(chown(P("f"), geteuid(), -1));
    CHECK_EQ(mode_of(P("f")), 02745);
    CHECK_OK(chmod(P("d"), 07755));
    CHECK_OK(chown(P("d"), geteuid(), getegid()));
    CHECK_EQ(mode_of(P("d")), 07755);
    CHECK_OK(chmod(P("d"), 0755));
}

/* chown(2): "Only a privileged process (Linux: one with the CAP_CHOWN capability) may change
 * the owner of a file": "EPERM The calling process did not have the required permissions".
 * Root can give a file to any user and take it back. */
TEST(chown_to_other_user) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    uid_t other = geteuid() == 12345 ? 12346 : 12345;
    struct stat st;
    if (geteuid() == 0) {
        CHECK_OK(chown(P("f"), other, other));
        CHECK_OK(stat(P("f"), &st));
        CHECK_EQ(st.st_uid, other);
        CHECK_EQ(st.st_gid, other);
        CHECK_OK(chown(P("f"), 0, 0));
        CHECK_OK(stat(P("f"), &st));
        CHECK_EQ(st.st_uid, 0);
        CHECK_EQ(st.st_gid, 0);
    } else {
        CHECK_ERR(chown(P("f"), other, -1), EPERM);
        CHECK_ERR(chown(P("f"), -1, other), EPERM);
        CHECK_OK(stat(P("f"), &st));
        CHECK_EQ(st.st_uid, geteuid());
    }
}
