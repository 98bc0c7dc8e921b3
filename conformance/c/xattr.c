/* Extended attributes: the argument checks of getxattr(2), setxattr(2), listxattr(2) and
 * removexattr(2), and the answers of file systems without xattr support (procfs). Files
 * under /tmp may or may not keep attributes (ext4 does, the sandbox's file systems do not
 * yet), so those cases accept either a working attribute or ENOTSUP, consistently. */
#include "scratch.h"

#include <sys/xattr.h>

/* Raw calls, so that glibc's fortify checks see no odd pointers. */
static long get_(const char *path, const char *name, void *value, size_t size) {
    return syscall(SYS_getxattr, path, name, value, size);
}
static long set_(const char *path, const char *name, const void *value, size_t size, long flags) {
    return syscall(SYS_setxattr, path, name, value, size, flags);
}
static long list_(const char *path, char *list, size_t size) {
    return syscall(SYS_listxattr, path, list, size);
}

#define PROC_FILE "/proc/self/status"

/* "ERANGE The size of name ... exceeds [the limit]": an empty name, or one of 256 bytes or
 * more, whatever the path. */
TEST(name_length_is_checked_first) {
    char value[16];
    char long_name[300];
    memcpy(long_name, "user.", 5);
    memset(long_name + 5, 'n', 251);
    long_name[256] = 0;
    CHECK_ERR(get_(PROC_FILE, "", value, sizeof value), ERANGE);
    CHECK_ERR(get_(PROC_FILE, long_name, value, sizeof value), ERANGE);
    CHECK_ERR(get_("/nonexistent", "", value, sizeof value), ERANGE);
    CHECK_ERR(set_(PROC_FILE, "", "v", 1, 0), ERANGE);
    CHECK_ERR(syscall(SYS_removexattr, PROC_FILE, ""), ERANGE);
    CHECK_ERR(syscall(SYS_fgetxattr, 0, long_name, value, sizeof value), ERANGE);
    /* 255 bytes is the longest name: it gets past the check. */
    long_name[255] = 0;
    CHECK_ERR(get_(PROC_FILE, long_name, value, sizeof value), EOPNOTSUPP);
}

TEST(bad_pointers_are_efault) {
    char value[16];
    CHECK_ERR(get_((const char *)1, "user.a", value, sizeof value), EFAULT);
    CHECK_ERR(get_(PROC_FILE, (const char *)1, value, sizeof value), EFAULT);
    CHECK_ERR(list_((const char *)1, NULL, 0), EFAULT);
    CHECK_ERR(syscall(SYS_removexattr, PROC_FILE, (const char *)1), EFAULT);
    /* The value is copied in before the file is looked at. */
    CHECK_ERR(set_(PROC_FILE, "user.a", NULL, 1, 0), EFAULT);
    CHECK_ERR(set_("/nonexistent", "user.a", (const void *)1, 1, 0), EFAULT);
}

TEST(missing_file_is_enoent) {
    char value[16];
    CHECK_ERR(get_("/nonexistent/x", "user.a", value, sizeof value), ENOENT);
    CHECK_ERR(get_("", "user.a", value, sizeof value), ENOENT);
    CHECK_ERR(list_("/nonexistent", NULL, 0), ENOENT);
    CHECK_ERR(set_("/nonexistent", "user.a", "v", 1, 0), ENOENT);
    CHECK_ERR(syscall(SYS_removexattr, "/nonexistent", "user.a"), ENOENT);
}

/* "EINVAL flags is invalid", checked before anything else; flags is an int. */
TEST(set_flags_are_checked) {
    CHECK_ERR(set_(PROC_FILE, "user.a", "v", 1, 4), EINVAL);
    CHECK_ERR(set_("/nonexistent", "", "v", 1, 8), EINVAL);
    CHECK_ERR(set_(PROC_FILE, "user.a", "v", 1, XATTR_CREATE | XATTR_REPLACE), EOPNOTSUPP);
    CHECK_ERR(set_(PROC_FILE, "user.a", "v", 1, 0xffffffff00000000L), EOPNOTSUPP);
}

/* "E2BIG The size of ... value exceeds [XATTR_SIZE_MAX, 64 KiB]." */
TEST(oversized_value_is_e2big) {
    CHECK_ERR(set_(PROC_FILE, "user.a", "v", 65537, 0), E2BIG);
    CHECK_ERR(set_("/nonexistent", "user.a", "v", 1 << 20, 0), E2BIG);
}

/* procfs keeps no extended attributes: every name is "not supported", the list is empty. */
TEST(procfs_has_no_attributes) {
    char value[16];
    const char *names[] = {"user.a", "trusted.a", "security.selinux", "system.posix_acl_access",
                           "noprefix"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK_ERR(get_(PROC_FILE, names[i], value, sizeof value), EOPNOTSUPP);
        CHECK_ERR(get_(PROC_FILE, names[i], NULL, 0), EOPNOTSUPP);
        if (strcmp(names[i], "system.posix_acl_access") != 0)
            CHECK_ERR(set_(PROC_FILE, names[i], "v", 1, 0), EOPNOTSUPP);
        CHECK_ERR(syscall(SYS_removexattr, PROC_FILE, names[i]), EOPNOTSUPP);
    }
    CHECK_EQ(list_(PROC_FILE, NULL, 0), 0);
    CHECK_EQ(list_(PROC_FILE, value, sizeof value), 0);
    CHECK_EQ(list_("/proc", NULL, 0), 0);
    int fd = open(PROC_FILE, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(syscall(SYS_flistxattr, fd, value, sizeof value), 0);
    CHECK_ERR(syscall(SYS_fgetxattr, fd, "user.a", value, sizeof value), EOPNOTSUPP);
    CHECK_ERR(syscall(SYS_fsetxattr, fd, "user.a", "v", 1, 0), EOPNOTSUPP);
    CHECK_ERR(syscall(SYS_fremovexattr, fd, "user.a"), EOPNOTSUPP);
    close(fd);
}

/* An ACL value is parsed before the file system is asked: a header of version 2 and whole
 * 8-byte entries, else EINVAL (a wrong version is EOPNOTSUPP). */
TEST(acl_value_is_parsed_first) {
    const char *acl = "system.posix_acl_access";
    /* Version 2; user::rw-, group::r--, other::r--. */
    static const unsigned char good[] = {2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
                                         4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
                                         0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char version1[] = {1, 0, 0, 0};
    CHECK_ERR(set_(PROC_FILE, acl, "v", 1, 0), EINVAL);
    CHECK_ERR(set_(PROC_FILE, acl, good, 7, 0), EINVAL);
    CHECK_ERR(set_(PROC_FILE, acl, version1, sizeof version1, 0), EOPNOTSUPP);
    CHECK_ERR(set_(PROC_FILE, acl, good, sizeof good, 0), EOPNOTSUPP);
    CHECK_ERR(set_(PROC_FILE, "system.posix_acl_default", good, 4, 0), EOPNOTSUPP);
    CHECK_ERR(set_(PROC_FILE, acl, NULL, 0, 0), EOPNOTSUPP);
}

/* user.* attributes belong to regular files and directories only: reading one elsewhere is
 * ENODATA, writing EPERM (the VFS says so before the file system is asked). */
TEST(user_names_only_on_files_and_directories) {
    char value[16];
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_EQ(symlink("f", P("link")), 0);
    CHECK_ERR(syscall(SYS_lgetxattr, P("link"), "user.a", value, sizeof value), ENODATA);
    CHECK_ERR(syscall(SYS_lsetxattr, P("link"), "user.a", "v", 1, 0), EPERM);
    CHECK_ERR(syscall(SYS_lremovexattr, P("link"), "user.a"), EPERM);
    CHECK(syscall(SYS_llistxattr, P("link"), NULL, 0) >= 0);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_ERR(syscall(SYS_fgetxattr, p[0], "user.a", value, sizeof value), ENODATA);
    CHECK_ERR(syscall(SYS_fsetxattr, p[1], "user.a", "v", 1, 0), EPERM);
    CHECK_EQ(syscall(SYS_flistxattr, p[0], value, sizeof value), 0);
    close(p[0]);
    close(p[1]);
}

/* A name without a known namespace prefix is not supported by any file system. */
TEST(unknown_namespace_is_enotsup) {
    char value[16];
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_ERR(get_(P("f"), "noprefix", value, sizeof value), EOPNOTSUPP);
    CHECK_ERR(set_(P("f"), "noprefix", "v", 1, 0), EOPNOTSUPP);
    CHECK_ERR(get_("/dev/null", "noprefix", value, sizeof value), EOPNOTSUPP);
}

/* On a regular file an absent user.* attribute is ENODATA where the file system keeps
 * attributes and ENOTSUP where it does not; a set then either works (and reads back) or is
 * ENOTSUP too. */
TEST(regular_file_attributes_work_or_are_unsupported) {
    char value[16];
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    errno = 0;
    long r = get_(P("f"), "user.absent", value, sizeof value);
    CHECK_EQ(r, -1);
    int supported = errno == ENODATA;
    CHECK(supported || errno == EOPNOTSUPP);
    if (!supported) {
        CHECK_ERR(set_(P("f"), "user.a", "v", 1, 0), EOPNOTSUPP);
        CHECK_ERR(syscall(SYS_removexattr, P("f"), "user.a"), EOPNOTSUPP);
        CHECK_EQ(list_(P("f"), NULL, 0), 0);
        return;
    }
    CHECK_EQ(set_(P("f"), "user.a", "val", 3, XATTR_CREATE), 0);
    CHECK_EQ(get_(P("f"), "user.a", value, sizeof value), 3);
    CHECK(memcmp(value, "val", 3) == 0);
    CHECK_ERR(set_(P("f"), "user.a", "v", 1, XATTR_CREATE), EEXIST);
    CHECK_EQ(syscall(SYS_removexattr, P("f"), "user.a"), 0);
}

/* The f- forms take descriptors open for I/O only. */
TEST(o_path_descriptor_is_ebadf) {
    char value[16];
    int fd = open(PROC_FILE, O_PATH);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_fgetxattr, fd, "user.a", value, sizeof value), EBADF);
    CHECK_ERR(syscall(SYS_flistxattr, fd, value, sizeof value), EBADF);
    CHECK_ERR(syscall(SYS_fsetxattr, fd, "user.a", "v", 1, 0), EBADF);
    CHECK_ERR(syscall(SYS_fremovexattr, fd, "user.a"), EBADF);
    close(fd);
    CHECK_ERR(syscall(SYS_fgetxattr, -1, "user.a", value, sizeof value), EBADF);
    CHECK_ERR(syscall(SYS_flistxattr, 999, NULL, 0), EBADF);
}
