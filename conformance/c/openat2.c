/* openat2(2): the checks of struct open_how and the RESOLVE_* flags that confine path
 * resolution. Each case works in its own scratch directory under /tmp; the mount crossings use
 * /dev, which is a mount both natively and in the sandbox. */
#include "scratch.h"

#include <linux/openat2.h>

static long openat2_(int dirfd, const char *path, const void *how, size_t size) {
    return syscall(SYS_openat2, dirfd, path, how, size);
}

/* openat2 with these flags, mode and resolve flags. */
static long o2(int dirfd, const char *path, unsigned long long flags, unsigned long long mode,
               unsigned long long resolve) {
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return openat2_(dirfd, path, &how, sizeof how);
}

/* A scratch directory holding f, d/, d/g, up -> .., abs -> /tmp, rel -> d/g, open as *dfd. */
static int tree(int *dfd) {
    if (!scratch() || put_file(P("f"), "f") != 1 || mkdir(P("d"), 0755) != 0 ||
        put_file(P("d/g"), "g") != 1 || symlink("..", P("up")) != 0 ||
        symlink("/tmp", P("abs")) != 0 || symlink("d/g", P("rel")) != 0)
        return -1;
    *dfd = open(P(""), O_RDONLY | O_DIRECTORY);
    return *dfd >= 0 ? 0 : -1;
}

/* Opens, checks it is a file or directory as expected, and closes. */
static int opens(long fd) {
    if (fd < 0) return -1;
    return close((int)fd);
}

/* openat2: "size should usually be specified as sizeof(struct open_how)"; "EINVAL size was
 * smaller than any known version of struct open_how"; "E2BIG An extension that this kernel
 * does not support was specified in how (i.e. a non-zero value past the end of the supported
 * structure)", and any size above a page; "EFAULT how is outside your accessible address
 * space". A larger structure whose tail is zero is fine. */
TEST(struct_size_checks) {
    CHECK(scratch());
    struct open_how how = {.flags = O_RDONLY};
    CHECK_ERR(openat2_(AT_FDCWD, P(""), &how, 0), EINVAL);
    CHECK_ERR(openat2_(AT_FDCWD, P(""), &how, 23), EINVAL);
    CHECK_OK(opens(openat2_(AT_FDCWD, P(""), &how, 24)));
    static char big[4097];
    memcpy(big, &how, sizeof how);
    CHECK_OK(opens(openat2_(AT_FDCWD, P(""), big, 4096)));
    CHECK_ERR(openat2_(AT_FDCWD, P(""), big, 4097), E2BIG);
    big[31] = 1;
    CHECK_ERR(openat2_(AT_FDCWD, P(""), big, 32), E2BIG);
    CHECK_OK(opens(openat2_(AT_FDCWD, P(""), big, 31)));
    CHECK_ERR(openat2_(AT_FDCWD, P(""), NULL, 24), EFAULT);
    CHECK_ERR(openat2_(AT_FDCWD, P(""), (void *)1, 24), EFAULT);
}

/* openat2 rejects what open(2) ignores: "EINVAL An unknown flag or invalid value was specified
 * in how"; "mode is non-zero, but how.flags does not contain O_CREAT or O_TMPFILE"; "mode
 * contains bits other than the file type and permissions" (only permission bits are allowed);
 * "O_PATH was set in how.flags with flags other than O_CLOEXEC, O_DIRECTORY, or O_NOFOLLOW";
 * "an unknown flag in how.resolve"; RESOLVE_BENEATH with RESOLVE_IN_ROOT; O_CREAT with
 * O_DIRECTORY; O_TMPFILE without a writable access mode. */
TEST(invalid_how_is_einval) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_ERR(o2(AT_FDCWD, P("f"), 1ULL << 40, 0, 0), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("f"), O_RDONLY, 0644, 0), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("n"), O_RDWR | O_CREAT, 010644, 0), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("n"), O_RDWR | O_CREAT, 1ULL << 33, 0), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("f"), O_PATH | O_RDWR, 0, 0), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("f"), O_PATH | O_APPEND, 0, 0), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("f"), O_RDONLY, 0, 0x40), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("f"), O_RDONLY, 0, 1ULL << 40), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("f"), O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P("n"), O_RDWR | O_CREAT | O_DIRECTORY, 0600, 0), EINVAL);
    CHECK_ERR(o2(AT_FDCWD, P(""), O_RDONLY | O_TMPFILE, 0600, 0), EINVAL);
    CHECK(!exists(P("n")));
    /* What is allowed: O_PATH with O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW. */
    long fd = o2(AT_FDCWD, P(""), O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW, 0, 0);
    CHECK(fd >= 0);
    CHECK_EQ(fcntl((int)fd, F_GETFD), FD_CLOEXEC);
    CHECK_OK(close((int)fd));
}

/* With O_CREAT, how.mode is the new file's mode (less the umask), as open's mode argument. */
TEST(create_with_mode) {
    CHECK(scratch());
    mode_t old = umask(022);
    long fd = o2(AT_FDCWD, P("n"), O_RDWR | O_CREAT | O_EXCL, 0666, 0);
    umask(old);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_OK(fstat((int)fd, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0644);
    CHECK_EQ(write((int)fd, "ok", 2), 2);
    CHECK_OK(close((int)fd));
    CHECK_ERR(o2(AT_FDCWD, P("n"), O_RDWR | O_CREAT | O_EXCL, 0600, 0), EEXIST);
}

/* RESOLVE_BENEATH: "Do not permit the path resolution to succeed if any component of the
 * resolution is not a descendant of the directory indicated by dirfd. This causes absolute
 * symbolic links (and absolute values of pathname) to be rejected." "EXDEV how.resolve contains
 * either RESOLVE_IN_ROOT or RESOLVE_BENEATH, and an escape from the root during path resolution
 * was detected." ".." that stays below is fine. */
TEST(resolve_beneath) {
    int dfd;
    CHECK_OK(tree(&dfd));
    CHECK_OK(opens(o2(dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH)));
    CHECK_OK(opens(o2(dfd, "d/../d/g", O_RDONLY, 0, RESOLVE_BENEATH)));
    CHECK_OK(opens(o2(dfd, "rel", O_RDONLY, 0, RESOLVE_BENEATH)));
    CHECK_OK(opens(o2(dfd, ".", O_RDONLY, 0, RESOLVE_BENEATH)));
    CHECK_ERR(o2(dfd, "..", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    CHECK_ERR(o2(dfd, "d/../../x", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    CHECK_ERR(o2(dfd, P("f"), O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    CHECK_ERR(o2(dfd, "up/x", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    CHECK_ERR(o2(dfd, "abs", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    /* Creation is confined too. */
    CHECK_OK(opens(o2(dfd, "d/new", O_RDWR | O_CREAT, 0600, RESOLVE_BENEATH)));
    CHECK_ERR(o2(dfd, "../new", O_RDWR | O_CREAT, 0600, RESOLVE_BENEATH), EXDEV);
    CHECK_OK(close(dfd));
}

/* RESOLVE_BENEATH from AT_FDCWD confines to the working directory. */
TEST(resolve_beneath_the_working_directory) {
    int dfd;
    CHECK_OK(tree(&dfd));
    CHECK_OK(fchdir(dfd));
    CHECK_OK(opens(o2(AT_FDCWD, "d/g", O_RDONLY, 0, RESOLVE_BENEATH)));
    CHECK_ERR(o2(AT_FDCWD, "../x", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV);
    CHECK_OK(chdir("/"));
    CHECK_OK(close(dfd));
}

/* RESOLVE_IN_ROOT: "Treat the directory referred to by dirfd as the root directory while
 * resolving pathname. Absolute symbolic links are interpreted relative to dirfd. If a prefix
 * component of pathname equates to dirfd, then an immediately following .. component likewise
 * equates to dirfd (just as /.. is traditionally equivalent to /). If pathname is an absolute
 * path, it is also interpreted relative to dirfd." */
TEST(resolve_in_root) {
    int dfd;
    CHECK_OK(tree(&dfd));
    CHECK_OK(symlink("/d/g", P("rooted")));
    char buf[4] = {0};
    long fd = o2(dfd, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT);
    CHECK(fd >= 0);
    CHECK_EQ(read((int)fd, buf, 3), 1);
    CHECK_EQ(buf[0], 'f');
    CHECK_OK(close((int)fd));
    fd = o2(dfd, "../../../d/g", O_RDONLY, 0, RESOLVE_IN_ROOT);
    CHECK(fd >= 0);
    CHECK_EQ(read((int)fd, buf, 3), 1);
    CHECK_EQ(buf[0], 'g');
    CHECK_OK(close((int)fd));
    CHECK_OK(opens(o2(dfd, "rooted", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    CHECK_OK(opens(o2(dfd, "up/up/f", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    /* /tmp inside this root does not exist. */
    CHECK_ERR(o2(dfd, "abs", O_RDONLY, 0, RESOLVE_IN_ROOT), ENOENT);
    CHECK_OK(close(dfd));
}

/* RESOLVE_NO_SYMLINKS: "Disallow resolution of symbolic links during path resolution"; "ELOOP
 * how.resolve contains RESOLVE_NO_SYMLINKS, and one of the path components was a symbolic
 * link." A final link that is not followed (O_PATH | O_NOFOLLOW) is no resolution of it. */
TEST(resolve_no_symlinks) {
    int dfd;
    CHECK_OK(tree(&dfd));
    CHECK_OK(opens(o2(dfd, "d/g", O_RDONLY, 0, RESOLVE_NO_SYMLINKS)));
    CHECK_ERR(o2(dfd, "rel", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP);
    CHECK_ERR(o2(dfd, "up/f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP);
    CHECK_ERR(o2(dfd, "abs", O_RDONLY | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS), ELOOP);
    CHECK_OK(opens(o2(dfd, "rel", O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS)));
    /* O_CREAT through a dangling link is refused too. */
    CHECK_OK(symlink("nothing", P("dangling")));
    CHECK_ERR(o2(dfd, "dangling", O_RDWR | O_CREAT, 0600, RESOLVE_NO_SYMLINKS), ELOOP);
    CHECK(!exists(P("nothing")));
    CHECK_OK(close(dfd));
}

/* RESOLVE_NO_XDEV: "Disallow traversal of mount points during path resolution (including all
 * bind mounts)": going into a mount, or out of one with "..", is EXDEV; resolving within one
 * mount is fine. */
TEST(resolve_no_xdev) {
    CHECK_ERR(o2(AT_FDCWD, "/dev/null", O_RDONLY, 0, RESOLVE_NO_XDEV), EXDEV);
    int dev = open("/dev", O_RDONLY | O_DIRECTORY);
    CHECK(dev >= 0);
    CHECK_OK(opens(o2(dev, "null", O_RDONLY, 0, RESOLVE_NO_XDEV)));
    CHECK_ERR(o2(dev, "../tmp", O_RDONLY, 0, RESOLVE_NO_XDEV), EXDEV);
    CHECK_OK(close(dev));
    int dfd;
    CHECK_OK(tree(&dfd));
    CHECK_OK(opens(o2(dfd, "rel", O_RDONLY, 0, RESOLVE_NO_XDEV)));
    CHECK_OK(opens(o2(dfd, "up", O_RDONLY, 0, RESOLVE_NO_XDEV)));
    CHECK_OK(close(dfd));
}

/* RESOLVE_NO_MAGICLINKS only refuses magic links (/proc/PID/fd/...): ordinary paths and
 * symlinks resolve. */
TEST(resolve_no_magiclinks_allows_ordinary_links) {
    int dfd;
    CHECK_OK(tree(&dfd));
    CHECK_OK(opens(o2(dfd, "rel", O_RDONLY, 0, RESOLVE_NO_MAGICLINKS)));
    CHECK_OK(opens(o2(dfd, "d/g", O_RDONLY, 0, RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH)));
    CHECK_OK(close(dfd));
}

/* RESOLVE_CACHED: "Make the open operation fail unless all path components are already present
 * in the kernel's lookup cache" -- "EAGAIN how.resolve contains RESOLVE_CACHED, and the open
 * operation cannot be performed using only cached information." Creating or truncating never
 * can; a plain open either works or says EAGAIN. */
TEST(resolve_cached) {
    int dfd;
    CHECK_OK(tree(&dfd));
    CHECK_ERR(o2(dfd, "new", O_RDWR | O_CREAT, 0600, RESOLVE_CACHED), EAGAIN);
    CHECK_ERR(o2(dfd, "f", O_RDWR | O_TRUNC, 0, RESOLVE_CACHED), EAGAIN);
    CHECK(!exists(P("new")));
    CHECK_EQ(get_file(P("f"), (char[4]){0}, 4), 1);
    long fd = o2(dfd, "f", O_RDONLY, 0, RESOLVE_CACHED);
    CHECK(fd >= 0 || errno == EAGAIN);
    if (fd >= 0) CHECK_OK(close((int)fd));
    CHECK_OK(close(dfd));
}

/* The open flags mean what they mean for openat: O_CLOEXEC, O_APPEND, the access mode. */
TEST(flags_as_openat) {
    int dfd;
    CHECK_OK(tree(&dfd));
    long fd = o2(dfd, "f", O_WRONLY | O_APPEND | O_CLOEXEC, 0, 0);
    CHECK(fd >= 0);
    CHECK_EQ(fcntl((int)fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl((int)fd, F_GETFL) & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
    CHECK_EQ(write((int)fd, "+", 1), 1);
    char buf[8];
    CHECK_ERR(read((int)fd, buf, 1), EBADF);
    CHECK_OK(close((int)fd));
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 2);
    CHECK(!strcmp(buf, "f+"));
    CHECK_ERR(o2(dfd, "missing", O_RDONLY, 0, 0), ENOENT);
    CHECK_ERR(o2(1000, "f", O_RDONLY, 0, 0), EBADF);
    CHECK_OK(close(dfd));
}
