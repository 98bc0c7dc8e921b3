/* chdir(2), fchdir(2) and getcwd(2): the working directory and relative path resolution.
 * getcwd is called raw where it matters: the system call returns the length of the path
 * including its NUL, and glibc's wrapper handles a NULL buffer itself. Each case works in its
 * own scratch directory under /tmp. */
#include "scratch.h"

static long kgetcwd(char *buf, unsigned long size) {
    return syscall(SYS_getcwd, buf, size);
}

/* Is the working directory path want? */
static int cwd_is(const char *want) {
    char buf[PATH_MAX];
    long n = kgetcwd(buf, sizeof buf);
    return n == (long)strlen(want) + 1 && !strcmp(buf, want);
}

/* getcwd(3): "copies an absolute pathname of the current working directory to the array
 * pointed to by buf". The system call (unlike the library function, which returns buf)
 * returns the length of the path including its terminating NUL. */
TEST(getcwd_after_chdir) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(mkdir(P("sub"), 0755));
    CHECK_OK(chdir(dir));
    CHECK(cwd_is(dir));
    char buf[PATH_MAX];
    CHECK_EQ(kgetcwd(buf, sizeof buf), strlen(dir) + 1);
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK(!strcmp(buf, dir));
    CHECK_OK(chdir("sub"));
    CHECK(cwd_is(P("sub")));
    CHECK_OK(chdir(".."));
    CHECK(cwd_is(dir));
    CHECK_OK(chdir("./sub/../sub/."));
    CHECK(cwd_is(P("sub")));
    CHECK_OK(chdir("/"));
    CHECK(cwd_is("/"));
}

/* fchdir(2): "identical to chdir(); the only difference is that the directory is given as an
 * open file descriptor" (an O_PATH one will do). "ENOTDIR fd does not refer to a directory",
 * "EBADF fd is not a valid file descriptor." */
TEST(fchdir_changes_cwd) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(mkdir(P("a"), 0755));
    CHECK_OK(mkdir(P("b"), 0755));
    CHECK_EQ(put_file(P("f"), ""), 0);
    int a = open(P("a"), O_RDONLY | O_DIRECTORY);
    int b = open(P("b"), O_PATH | O_DIRECTORY);
    int f = open(P("f"), O_RDONLY);
    CHECK(a >= 0 && b >= 0 && f >= 0);
    CHECK_OK(fchdir(a));
    CHECK(cwd_is(P("a")));
    CHECK_OK(fchdir(b));
    CHECK(cwd_is(P("b")));
    CHECK_ERR(fchdir(f), ENOTDIR);
    CHECK_ERR(fchdir(1000), EBADF);
    CHECK_ERR(fchdir(-1), EBADF);
    CHECK(cwd_is(P("b")));
    CHECK_OK(close(a));
    CHECK_OK(close(b));
    CHECK_OK(close(f));
    CHECK_OK(chdir("/"));
}

/* path_resolution(7): "If the pathname does not start with the '/' character, the starting
 * lookup directory of the resolution process is the current working directory". */
TEST(relative_paths_resolve_from_cwd) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(chdir(P("d")));
    CHECK_EQ(put_file("f", "rel"), 3);
    CHECK_OK(mkdir("sub", 0755));
    CHECK_OK(symlink("f", "l"));
    char buf[8];
    CHECK_EQ(get_file(P("d/f"), buf, sizeof buf), 3);
    CHECK(!strcmp(buf, "rel"));
    CHECK(exists(P("d/sub")));
    CHECK(exists(P("d/l")));
    CHECK(!exists(P("f")));
    CHECK_OK(chdir(".."));
    CHECK_EQ(get_file("d/l", buf, sizeof buf), 3);
    CHECK(!strcmp(buf, "rel"));
    CHECK_OK(rename("d/f", "g"));
    CHECK(exists(P("g")));
    CHECK_OK(chdir("/"));
}

/* chdir(2): "ENOTDIR A component of path is not a directory"; "ENOENT The directory
 * specified in path does not exist"; "EFAULT path points outside your accessible address
 * space." The cwd is unchanged by a failed call. */
TEST(chdir_errors) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_OK(symlink("f", P("lf")));
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_OK(chdir(dir));
    CHECK_ERR(chdir(P("f")), ENOTDIR);
    CHECK_ERR(chdir(P("lf")), ENOTDIR);
    CHECK_ERR(chdir(P("f/")), ENOTDIR);
    CHECK_ERR(chdir(P("f/x")), ENOTDIR);
    CHECK_ERR(chdir(P("missing")), ENOENT);
    CHECK_ERR(chdir(P("missing/x")), ENOENT);
    CHECK_ERR(chdir(P("dangling")), ENOENT);
    CHECK_ERR(chdir(""), ENOENT);
    CHECK_ERR(syscall(SYS_chdir, NULL), EFAULT);
    CHECK(cwd_is(dir));
    CHECK_OK(chdir("/"));
}

/* A symbolic link is followed, and the cwd is the directory it leads to: getcwd never shows
 * the link. */
TEST(chdir_through_symlink_shows_real_path) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(mkdir(P("real"), 0755));
    CHECK_OK(symlink("real", P("link")));
    CHECK_OK(chdir(P("link")));
    CHECK(cwd_is(P("real")));
    CHECK_OK(chdir(".."));
    CHECK(cwd_is(dir));
    CHECK_OK(chdir("/"));
}

/* getcwd(3): "ERANGE The size argument is less than the length of the absolute pathname of
 * the working directory, including the terminating null byte." Nothing useful is written. */
TEST(getcwd_small_buffer_is_erange) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(chdir(dir));
    size_t len = strlen(dir);
    char buf[PATH_MAX];
    CHECK_ERR(kgetcwd(buf, len), ERANGE);
    CHECK_ERR(kgetcwd(buf, 1), ERANGE);
    CHECK_ERR(getcwd(buf, len) == NULL ? -1 : 0, ERANGE);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(kgetcwd(buf, len + 1), len + 1);
    CHECK(!strcmp(buf, dir));
    CHECK_EQ(buf[len + 1], 'x');
    /* "/" needs 2 bytes. */
    CHECK_OK(chdir("/"));
    CHECK_ERR(kgetcwd(buf, 1), ERANGE);
    CHECK_EQ(kgetcwd(buf, 2), 2);
    CHECK(!strcmp(buf, "/"));
}

/* The system call with size 0 is ERANGE whatever the buffer: no path fits in 0 bytes, and the
 * kernel does not allocate. The library differs: getcwd(buf, 0) is "EINVAL The size argument
 * is zero and buf is not a null pointer", and getcwd(NULL, 0) allocates a buffer itself.
 * "EFAULT buf points to a bad address." */
TEST(getcwd_size_zero) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(chdir(dir));
    char buf[PATH_MAX];
    CHECK_ERR(kgetcwd(NULL, 0), ERANGE);
    CHECK_ERR(kgetcwd(buf, 0), ERANGE);
    CHECK_ERR(getcwd(buf, 0) == NULL ? -1 : 0, EINVAL);
    char *p = getcwd(NULL, 0);
    CHECK(p != NULL);
    CHECK(!strcmp(p, dir));
    free(p);
    CHECK_ERR(kgetcwd((char *)8, sizeof buf), EFAULT);
    CHECK_OK(chdir("/"));
}

/* path_resolution(7): "One cannot walk up past the root: "/.." is the same as "/"." */
TEST(dotdot_from_root_stays_root) {
    CHECK_OK(chdir("/"));
    CHECK_OK(chdir(".."));
    CHECK(cwd_is("/"));
    CHECK_OK(chdir("../../.."));
    CHECK(cwd_is("/"));
    struct stat root, up;
    CHECK_OK(stat("/", &root));
    CHECK_OK(stat("/..", &up));
    CHECK_EQ(up.st_ino, root.st_ino);
    CHECK_EQ(up.st_dev, root.st_dev);
    CHECK_OK(stat("/../../tmp", &up));
    CHECK(S_ISDIR(up.st_mode));
    CHECK_OK(chdir("../tmp"));
    CHECK(cwd_is("/tmp"));
    CHECK_OK(chdir("/"));
}

/* getcwd(3): "ENOENT The current working directory has been unlinked." The directory lives on
 * as the cwd, but nothing can be created in it; ".." still leads to its old parent. */
TEST(removed_cwd) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(chdir(P("d")));
    CHECK_OK(rmdir(P("d")));
    char buf[PATH_MAX];
    CHECK_ERR(kgetcwd(buf, sizeof buf), ENOENT);
    struct stat st;
    CHECK_OK(stat(".", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_nlink, 0);
    CHECK_ERR(open("f", O_CREAT | O_WRONLY, 0644), ENOENT);
    CHECK_ERR(mkdir("sub", 0755), ENOENT);
    CHECK_OK(chdir(".."));
    CHECK(cwd_is(dir));
    CHECK_OK(chdir("/"));
}

/* chdir(2): "EACCES Search permission is denied for one of the components of path." Root
 * (CAP_DAC_READ_SEARCH) may enter any directory. */
TEST(chdir_needs_search_permission) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(chmod(P("d"), 0600));
    if (geteuid() == 0) {
        CHECK_OK(chdir(P("d")));
        CHECK(cwd_is(P("d")));
    } else {
        CHECK_ERR(chdir(P("d")), EACCES);
    }
    CHECK_OK(chdir("/"));
}
