/* open(2), openat(2), creat(2) and close_range(2) on regular files, directories and symbolic
 * links, each case in its own scratch directory under /tmp. */
#include "scratch.h"

#include <sys/mman.h>

static int mode_of(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return st.st_mode & 07777;
}

static long size_of(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return st.st_size;
}

/* O_EXCL: "Ensure that this call creates the file: if this flag is specified in conjunction
 * with O_CREAT, and pathname already exists, then open() fails with the error EEXIST." */
TEST(creat_excl_on_existing_is_eexist) {
    CHECK(scratch());
    umask(022);
    int fd = open(P("f"), O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "abc", 3), 3);
    CHECK_OK(close(fd));
    CHECK_ERR(open(P("f"), O_CREAT | O_EXCL | O_RDWR, 0600), EEXIST);
    /* Without O_EXCL the existing file is opened as it is: contents and mode unchanged. */
    fd = open(P("f"), O_CREAT | O_RDONLY, 0600);
    CHECK(fd >= 0);
    char buf[8] = {0};
    CHECK_EQ(read(fd, buf, sizeof buf), 3);
    CHECK(!strcmp(buf, "abc"));
    CHECK_OK(close(fd));
    CHECK_EQ(mode_of(P("f")), 0644);
    /* "if pathname is a symbolic link, then open() fails regardless of where the symbolic
     * link points." */
    CHECK_OK(symlink("f", P("link")));
    CHECK_OK(symlink("missing", P("dangling")));
    CHECK_ERR(open(P("link"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    CHECK_ERR(open(P("dangling"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    CHECK(!exists(P("missing")));
}

/* "The effective mode is modified by the process's umask in the usual way: ... the mode of
 * the created file is (mode & ~umask)." creat() is open(O_CREAT|O_WRONLY|O_TRUNC). */
TEST(creat_mode_masked_by_umask) {
    CHECK(scratch());
    umask(022);
    int fd = open(P("a"), O_CREAT | O_WRONLY, 0777);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_EQ(mode_of(P("a")), 0755);
    umask(077);
    fd = open(P("b"), O_CREAT | O_RDWR, 0666);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_EQ(mode_of(P("b")), 0600);
    umask(0);
    fd = syscall(SYS_creat, P("c"), 0604);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0604);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK_EQ(st.st_size, 0);
    /* Write-only. */
    char c;
    CHECK_ERR(read(fd, &c, 1), EBADF);
    CHECK_EQ(write(fd, "12345", 5), 5);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("c")), 5);
    /* creat() of an existing file truncates it and keeps its mode. */
    fd = syscall(SYS_creat, P("c"), 0777);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("c")), 0);
    CHECK_EQ(mode_of(P("c")), 0604);
}

/* A descriptor can do only what its access mode allows: "EBADF fd is not ... open for
 * reading" / "for writing". Access mode 3 is a Linux oddity: it needs read and write
 * permission but allows neither read nor write (it is meant for ioctl). */
TEST(access_mode_enforced) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "data"), 4);
    char buf[8];
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    CHECK_EQ(read(fd, buf, sizeof buf), 4);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_WRONLY);
    CHECK(fd >= 0);
    CHECK_ERR(read(fd, buf, sizeof buf), EBADF);
    CHECK_EQ(write(fd, "x", 1), 1);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(read(fd, buf, sizeof buf), 4);
    CHECK_EQ(write(fd, "y", 1), 1);
    CHECK_OK(close(fd));
    fd = open(P("f"), 3);
    CHECK(fd >= 0);
    CHECK_ERR(read(fd, buf, sizeof buf), EBADF);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    CHECK_OK(close(fd));
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 5);
    CHECK(!strcmp(buf, "xatay"));
}

/* O_TRUNC: "If the file already exists and is a regular file and the access mode allows
 * writing ... it will be truncated to length 0." "The (undefined) effect of O_RDONLY |
 * O_TRUNC varies among implementations. On many systems the file is actually truncated":
 * Linux is one of them. */
TEST(trunc_empties_file) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "hello world"), 11);
    int fd = open(P("f"), O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(write(fd, "hi", 2), 2);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("f")), 2);
    /* Without O_TRUNC nothing is cut. */
    fd = open(P("f"), O_WRONLY);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("f")), 2);
    fd = open(P("f"), O_RDONLY | O_TRUNC);
    CHECK(fd >= 0);
    char c;
    CHECK_EQ(read(fd, &c, 1), 0);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("f")), 0);
}

/* "O_APPEND: ... Before each write(2), the file offset is positioned at the end of the file,
 * as if with lseek(2)." And pwrite(2), BUGS: "on Linux, if a file is opened with O_APPEND,
 * pwrite() appends data to the end of the file, regardless of the value of offset." */
TEST(append_writes_land_at_end) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    int fd = open(P("f"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
    CHECK_EQ(write(fd, "ab", 2), 2);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 12);
    CHECK_EQ(pwrite(fd, "cd", 2, 0), 2);
    /* pwrite leaves the offset alone, even here. */
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 12);
    /* The end is found at each write: another descriptor grows the file meanwhile. */
    int other = open(P("f"), O_WRONLY);
    CHECK(other >= 0);
    CHECK_EQ(pwrite(other, "XYZ", 3, 14), 3);
    CHECK_EQ(write(fd, "e", 1), 1);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 18);
    CHECK_OK(close(other));
    CHECK_OK(close(fd));
    char buf[32];
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 18);
    CHECK(!strcmp(buf, "0123456789abcdXYZe"));
}

/* "ENOTDIR ... O_DIRECTORY was specified and pathname was not a directory", and "A component
 * used as a directory in pathname is not, in fact, a directory". */
TEST(directory_flag_on_file_is_enotdir) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(symlink("d", P("ld")));
    CHECK_OK(symlink("f", P("lf")));
    CHECK_ERR(open(P("f"), O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERR(open(P("lf"), O_RDONLY | O_DIRECTORY), ENOTDIR);
    int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(close(fd));
    /* A symbolic link to a directory is followed. */
    fd = open(P("ld"), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_ERR(open(P("f/x"), O_RDONLY), ENOTDIR);
    CHECK_ERR(open(P("f/x"), O_CREAT | O_WRONLY, 0644), ENOTDIR);
    CHECK_ERR(open(P("f/"), O_RDONLY), ENOTDIR);
}

/* O_NOFOLLOW: "If the trailing component (i.e., basename) of pathname is a symbolic link,
 * then the open fails, with the error ELOOP. Symbolic links in earlier components of the
 * pathname will still be followed." With O_PATH it opens the link itself instead. */
TEST(nofollow_on_symlink_is_eloop) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "data"), 4);
    CHECK_OK(symlink("f", P("l")));
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("d/g"), "g"), 1);
    CHECK_OK(symlink("d", P("ld")));
    CHECK_ERR(open(P("l"), O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK_ERR(open(P("l"), O_WRONLY | O_CREAT | O_NOFOLLOW, 0644), ELOOP);
    CHECK_ERR(open(P("ld"), O_RDONLY | O_NOFOLLOW), ELOOP);
    /* With O_DIRECTORY too, Linux first checks that the (unfollowed) link is a directory: it
     * is not, so ENOTDIR rather than ELOOP. */
    CHECK_ERR(open(P("ld"), O_RDONLY | O_NOFOLLOW | O_DIRECTORY), ENOTDIR);
    int fd = open(P("ld/g"), O_RDONLY | O_NOFOLLOW);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_RDONLY | O_NOFOLLOW);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    /* "If pathname is a symbolic link and the O_NOFOLLOW flag is also specified, then the
     * call returns a file descriptor referring to the symbolic link." (O_PATH) */
    fd = open(P("l"), O_PATH | O_NOFOLLOW);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_size, 1);
    CHECK_OK(close(fd));
}

/* O_PATH: "Obtain a file descriptor that can be used for two purposes: to indicate a location
 * in the filesystem tree and to perform operations that act purely at the file descriptor
 * level. The file itself is not opened, and other file operations (e.g., read(2), write(2)
 * ...) fail with the error EBADF." fstat(2) and use as a dirfd work. "When O_PATH is
 * specified in flags, flag bits other than O_CLOEXEC, O_DIRECTORY, and O_NOFOLLOW are
 * ignored", and no read permission is needed. */
TEST(o_path_fd_allows_fstat_only) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "data"), 4);
    int fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    char c;
    CHECK_ERR(read(fd, &c, 1), EBADF);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    CHECK_ERR(pread(fd, &c, 1, 0), EBADF);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 4);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
    CHECK_OK(close(fd));
    /* O_TRUNC is ignored; so are O_WRONLY on a directory and O_CREAT of a missing name. */
    fd = open(P("f"), O_PATH | O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_EQ(size_of(P("f")), 4);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("d/g"), "g"), 1);
    int dfd = open(P("d"), O_PATH | O_RDWR);
    CHECK(dfd >= 0);
    CHECK_ERR(open(P("missing"), O_PATH | O_CREAT, 0644), ENOENT);
    /* Usable as a dirfd. */
    fd = openat(dfd, "g", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK_EQ(c, 'g');
    CHECK_OK(close(fd));
    CHECK_OK(close(dfd));
    /* No permission on the file itself is needed. */
    CHECK_OK(chmod(P("f"), 0));
    fd = open(P("f"), O_PATH);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
}

/* "EISDIR pathname refers to a directory and the access requested involved writing (that is,
 * O_WRONLY or O_RDWR is set)." O_CREAT of an existing directory, or of a name with a
 * trailing slash, is EISDIR too. */
TEST(directory_for_writing_is_eisdir) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_ERR(open(P("d"), O_WRONLY), EISDIR);
    CHECK_ERR(open(P("d"), O_RDWR), EISDIR);
    CHECK_ERR(open(P("d"), O_WRONLY | O_TRUNC), EISDIR);
    CHECK_ERR(open(P("d"), O_CREAT | O_RDONLY, 0644), EISDIR);
    CHECK_ERR(open(P("new/"), O_CREAT | O_WRONLY, 0644), EISDIR);
    CHECK(!exists(P("new")));
    int fd = open(P("d"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
}

/* "ENOENT O_CREAT is not set and the named file does not exist", "A directory component in
 * pathname does not exist or is a dangling symbolic link." */
TEST(missing_is_enoent) {
    CHECK(scratch());
    CHECK_ERR(open(P("missing"), O_RDONLY), ENOENT);
    CHECK_ERR(open(P("missing"), O_RDWR | O_TRUNC), ENOENT);
    CHECK_ERR(open(P("nodir/f"), O_CREAT | O_WRONLY, 0644), ENOENT);
    CHECK(!exists(P("nodir")));
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_ERR(open(P("dangling/f"), O_CREAT | O_WRONLY, 0644), ENOENT);
    CHECK_ERR(open(P("dangling"), O_RDONLY), ENOENT);
}

/* path_resolution(7), "Empty pathname": "Linux returns ENOENT in this case" (and openat has no
 * AT_EMPTY_PATH). */
TEST(empty_path_is_enoent) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_ERR(open("", O_RDONLY), ENOENT);
    CHECK_ERR(open("", O_CREAT | O_WRONLY, 0644), ENOENT);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_ERR(openat(dfd, "", O_RDONLY), ENOENT);
    CHECK_OK(close(dfd));
}

/* "ENAMETOOLONG pathname was too long": the limit is PATH_MAX bytes including the NUL. */
TEST(path_too_long_is_enametoolong) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("f"), "x"), 1);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    static char p[PATH_MAX + 2];
    /* ".////...///f": slashes collapse, so the path names the file whatever its length. */
    size_t n = PATH_MAX - 1;
    memset(p, '/', n);
    p[0] = '.';
    p[n - 1] = 'f';
    p[n] = 0;
    int fd = openat(dfd, p, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    n = PATH_MAX;
    memset(p, '/', n);
    p[0] = '.';
    p[n - 1] = 'f';
    p[n] = 0;
    CHECK_ERR(openat(dfd, p, O_RDONLY), ENAMETOOLONG);
    CHECK_ERR(openat(dfd, p, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
    CHECK_OK(close(dfd));
}

/* A single component longer than NAME_MAX (255) is ENAMETOOLONG, wherever it is. */
TEST(component_too_long_is_enametoolong) {
    CHECK(scratch());
    char name[NAME_MAX + 8];
    memset(name, 'a', NAME_MAX);
    name[NAME_MAX] = 0;
    int fd = open(P(name), O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK(exists(P(name)));
    strcat(name, "b");
    CHECK_ERR(open(P(name), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
    CHECK_ERR(open(P(name), O_RDONLY), ENAMETOOLONG);
    strcat(name, "/f");
    CHECK_ERR(open(P(name), O_RDONLY), ENAMETOOLONG);
}

/* "EFAULT pathname points outside your accessible address space." A name that runs into an
 * unmapped page before its NUL faults too. */
TEST(bad_pointer_is_efault) {
    CHECK_ERR(syscall(SYS_openat, AT_FDCWD, NULL, O_RDONLY), EFAULT);
    CHECK_ERR(syscall(SYS_openat, AT_FDCWD, (char *)1, O_RDONLY), EFAULT);
    CHECK_ERR(syscall(SYS_open, NULL, O_RDONLY), EFAULT);
    CHECK_ERR(syscall(SYS_creat, (char *)1, 0644), EFAULT);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + 4096, 4096));
    memset(p, 'a', 4096);
    CHECK_ERR(syscall(SYS_openat, AT_FDCWD, p + 100, O_RDONLY), EFAULT);
    CHECK_OK(munmap(p, 4096));
}

/* openat(2): "If the pathname given in pathname is relative, then it is interpreted relative
 * to the directory referred to by the file descriptor dirfd ... If pathname is absolute,
 * then dirfd is ignored." "EBADF pathname is relative but dirfd is neither AT_FDCWD nor a
 * valid file descriptor." */
TEST(openat_relative_to_dirfd) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    int dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    int fd = openat(dfd, "f", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "via dirfd", 9), 9);
    CHECK_OK(close(fd));
    char buf[16];
    CHECK_EQ(get_file(P("d/f"), buf, sizeof buf), 9);
    CHECK(!strcmp(buf, "via dirfd"));
    CHECK(!exists(P("f")));
    fd = openat(dfd, "../d/./f", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    fd = openat(1000, P("d/f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_ERR(openat(1000, "f", O_RDONLY), EBADF);
    CHECK_ERR(openat(-5, "f", O_RDONLY), EBADF);
    CHECK_OK(close(dfd));
}

/* "ENOTDIR (openat()) pathname is a relative pathname and dirfd is a file descriptor referring to a
 * file other than a directory." */
TEST(openat_file_dirfd_is_enotdir) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(openat(fd, "x", O_RDONLY), ENOTDIR);
    CHECK_ERR(openat(fd, "x", O_CREAT | O_WRONLY, 0644), ENOTDIR);
    CHECK_ERR(openat(fd, ".", O_RDONLY), ENOTDIR);
    int fd2 = openat(fd, P("f"), O_RDONLY);
    CHECK(fd2 >= 0);
    CHECK_OK(close(fd2));
    CHECK_OK(close(fd));
}

/* "If the pathname given in pathname is relative and dirfd is the special value AT_FDCWD, then
 * pathname is interpreted relative to the current working directory of the calling process
 * (like open())." */
TEST(openat_at_fdcwd) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(chdir(dir));
    CHECK_EQ(put_file("f", "cwd"), 3);
    CHECK_EQ(put_file(P("g"), "abs"), 3);
    char buf[8] = {0};
    int fd = openat(AT_FDCWD, "g", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(read(fd, buf, sizeof buf), 3);
    CHECK(!strcmp(buf, "abs"));
    CHECK_OK(close(fd));
    CHECK_EQ(get_file(P("f"), buf, sizeof buf), 3);
    CHECK(!strcmp(buf, "cwd"));
    fd = syscall(SYS_open, "f", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_OK(chdir("/"));
}

/* O_CLOEXEC: "Enable the close-on-exec flag for the new file descriptor": it is a descriptor
 * flag, visible with F_GETFD, not a file status flag. */
TEST(cloexec_visible_via_getfd) {
    CHECK(scratch());
    int fd = open(P("f"), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_CLOEXEC, 0);
    int fd2 = open(P("f"), O_RDWR);
    CHECK(fd2 >= 0);
    CHECK_EQ(fcntl(fd2, F_GETFD), 0);
    int fd3 = open(P("f"), O_PATH | O_CLOEXEC);
    CHECK(fd3 >= 0);
    CHECK_EQ(fcntl(fd3, F_GETFD), FD_CLOEXEC);
    CHECK_OK(close(fd3));
    CHECK_OK(close(fd2));
    CHECK_OK(close(fd));
}

static long kclose_range(unsigned first, unsigned last, unsigned flags) {
    return syscall(SYS_close_range, first, last, flags);
}

/* close_range(2): "closes all open file descriptors from first to last (included)"; with
 * CLOSE_RANGE_CLOEXEC it sets their close-on-exec flag instead. "EINVAL flags is not valid,
 * or first is greater than last." */
TEST(close_range_closes_the_range) {
    CHECK(scratch());
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = open(P("f"), O_CREAT | O_RDWR, 0644);
        CHECK(fds[i] >= 0);
    }
    CHECK_EQ(kclose_range(fds[1], fds[2], 0), 0);
    CHECK_ERR(fcntl(fds[1], F_GETFD), EBADF);
    CHECK_ERR(fcntl(fds[2], F_GETFD), EBADF);
    CHECK_OK(fcntl(fds[0], F_GETFD));
    CHECK_OK(fcntl(fds[3], F_GETFD));
    /* Closed descriptors inside the range are skipped; ~0U means "to the end". */
    CHECK_EQ(kclose_range(fds[1], ~0U, 0), 0);
    CHECK_ERR(fcntl(fds[3], F_GETFD), EBADF);
    CHECK_OK(fcntl(fds[0], F_GETFD));
    int a = open(P("f"), O_RDWR);
    int b = open(P("f"), O_RDWR);
    CHECK(a >= 0 && b >= 0);
    CHECK_EQ(kclose_range(a, b, CLOSE_RANGE_CLOEXEC), 0);
    CHECK_EQ(fcntl(a, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(b, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(fds[0], F_GETFD), 0);
    CHECK_ERR(kclose_range(b, a, 0), EINVAL);
    CHECK_ERR(kclose_range(a, b, 1), EINVAL);
    CHECK_ERR(kclose_range(a, b, 0x80), EINVAL);
    CHECK_OK(fcntl(a, F_GETFD));
    CHECK_OK(fcntl(b, F_GETFD));
    CHECK_EQ(kclose_range(fds[0], ~0U, 0), 0);
    CHECK_ERR(fcntl(a, F_GETFD), EBADF);
    CHECK_ERR(fcntl(fds[0], F_GETFD), EBADF);
}
