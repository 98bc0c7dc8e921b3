/* symlink(2), symlinkat(2), readlink(2), readlinkat(2) and how paths through symbolic links
 * resolve (path_resolution(7)). Each case works in its own scratch directory under /tmp. */
#include "scratch.h"

static long kreadlink(const char *path, char *buf, long size) {
    return syscall(SYS_readlink, path, buf, size);
}
static long kreadlinkat(int dfd, const char *path, char *buf, long size) {
    return syscall(SYS_readlinkat, dfd, path, buf, size);
}

/* Is path's link text exactly want? */
static int link_is(const char *path, const char *want) {
    char buf[PATH_MAX + 1];
    memset(buf, 'x', sizeof buf);
    long n = kreadlink(path, buf, sizeof buf);
    return n == (long)strlen(want) && !memcmp(buf, want, n) && buf[n] == 'x';
}

static int content_is(const char *path, const char *want) {
    char buf[64];
    return get_file(path, buf, sizeof buf) >= 0 && !strcmp(buf, want);
}

/* A relative target is resolved from the directory that contains the link, not from the cwd
 * (path_resolution(7): "we first resolve this symbolic link (with the current lookup directory
 * as starting lookup directory)"). readlink(2) returns the text as given, "does not append
 * a terminating null byte", and returns its length. */
TEST(relative_target_resolves_from_link_directory) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("d/f"), "in d"), 4);
    CHECK_EQ(put_file(P("f"), "top"), 3);
    CHECK_OK(symlink("f", P("d/l")));
    CHECK_OK(symlink("../f", P("d/up")));
    CHECK(link_is(P("d/l"), "f"));
    CHECK(link_is(P("d/up"), "../f"));
    CHECK_OK(chdir("/"));
    CHECK(content_is(P("d/l"), "in d"));
    CHECK(content_is(P("d/up"), "top"));
    CHECK_OK(chdir(P("")));
    CHECK(content_is("d/l", "in d"));
    CHECK_OK(chdir("/"));
}

/* An absolute target is resolved from the root, wherever the link is. */
TEST(absolute_target) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("f"), "abs"), 3);
    CHECK_OK(symlink(P("f"), P("d/l")));
    CHECK(link_is(P("d/l"), P("f")));
    CHECK(content_is(P("d/l"), "abs"));
    struct stat st, t;
    CHECK_OK(stat(P("d/l"), &st));
    CHECK_OK(stat(P("f"), &t));
    CHECK_EQ(st.st_ino, t.st_ino);
    /* The text is stored as given, redundant slashes and dots included. */
    CHECK_OK(symlink("/.//tmp/../tmp", P("odd")));
    CHECK(link_is(P("odd"), "/.//tmp/../tmp"));
    CHECK_OK(stat(P("odd"), &st));
    CHECK(S_ISDIR(st.st_mode));
}

/* A link whose target does not exist: stat fails ("ENOENT A component of pathname does not
 * exist or is a dangling symbolic link"), while lstat and readlink work. Opening it with
 * O_CREAT follows it and creates the target. */
TEST(dangling_link) {
    CHECK(scratch());
    CHECK_OK(symlink("target", P("l")));
    struct stat st;
    CHECK_ERR(stat(P("l"), &st), ENOENT);
    CHECK_ERR(open(P("l"), O_RDONLY), ENOENT);
    CHECK_OK(lstat(P("l"), &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_size, 6);
    CHECK(link_is(P("l"), "target"));
    int fd = open(P("l"), O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "made", 4), 4);
    CHECK_OK(close(fd));
    CHECK(content_is(P("target"), "made"));
    CHECK_OK(lstat(P("l"), &st));
    CHECK(S_ISLNK(st.st_mode));
    /* Through a dangling link to a missing directory there is nothing to create in. */
    CHECK_OK(symlink("nodir/x", P("l2")));
    CHECK_ERR(open(P("l2"), O_WRONLY | O_CREAT, 0644), ENOENT);
}

/* "ELOOP Too many symbolic links were encountered in resolving pathname": a link to itself,
 * or two links to each other, never resolve, at the end or in the middle of a path. */
TEST(loops_are_eloop) {
    CHECK(scratch());
    CHECK_OK(symlink("self", P("self")));
    CHECK_OK(symlink("b", P("a")));
    CHECK_OK(symlink("a", P("b")));
    struct stat st;
    CHECK_ERR(stat(P("self"), &st), ELOOP);
    CHECK_ERR(stat(P("a"), &st), ELOOP);
    CHECK_ERR(open(P("b"), O_RDONLY), ELOOP);
    CHECK_ERR(open(P("a"), O_WRONLY | O_CREAT, 0644), ELOOP);
    CHECK_ERR(stat(P("a/x"), &st), ELOOP);
    CHECK_ERR(lstat(P("a/x"), &st), ELOOP);
    CHECK_ERR(chdir(P("self")), ELOOP);
    CHECK_OK(lstat(P("a"), &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK(link_is(P("self"), "self"));
}

/* path_resolution(7): "the maximum number of symbolic links that will be followed while
 * resolving a pathname is 40." A chain of 40 links resolves, 41 is ELOOP. */
TEST(forty_links_resolve_forty_one_do_not) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "end"), 3);
    char name[16], target[16];
    for (int i = 1; i <= 41; i++) {
        snprintf(name, sizeof name, "l%d", i);
        if (i == 1) snprintf(target, sizeof target, "f");
        else snprintf(target, sizeof target, "l%d", i - 1);
        CHECK_OK(symlink(target, P(name)));
    }
    CHECK(content_is(P("l40"), "end"));
    struct stat st;
    CHECK_OK(stat(P("l40"), &st));
    CHECK_ERR(stat(P("l41"), &st), ELOOP);
    CHECK_ERR(open(P("l41"), O_RDONLY), ELOOP);
}

/* Links in the middle of a path are followed, and ".." after one goes to the parent of
 * where the link led, not back to where the link is. */
TEST(follows_in_middle_of_path) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("a"), 0755));
    CHECK_OK(mkdir(P("a/b"), 0755));
    CHECK_EQ(put_file(P("a/b/f"), "deep"), 4);
    CHECK_EQ(put_file(P("a/g"), "in a"), 4);
    CHECK_OK(symlink("a/b", P("lb")));
    CHECK_OK(symlink(P("a"), P("la")));
    CHECK(content_is(P("lb/f"), "deep"));
    CHECK(content_is(P("la/b/f"), "deep"));
    CHECK(content_is(P("la/../la/g"), "in a"));
    CHECK(content_is(P("lb/../g"), "in a"));
    /* New files can be made through them. */
    CHECK_EQ(put_file(P("lb/new"), "new"), 3);
    CHECK(content_is(P("a/b/new"), "new"));
    CHECK_OK(mkdir(P("la/made"), 0755));
    struct stat st;
    CHECK_OK(lstat(P("a/made"), &st));
    CHECK(S_ISDIR(st.st_mode));
    /* A link to a file used as a directory. */
    CHECK_OK(symlink("a/g", P("lg")));
    CHECK_ERR(stat(P("lg/x"), &st), ENOTDIR);
}

/* readlink(2): "EINVAL The named file (i.e., the final filename component of pathname) is
 * not a symbolic link." "EINVAL bufsiz is not positive." The text is truncated to bufsiz. */
TEST(readlink_errors_and_truncation) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(symlink("0123456789", P("l")));
    char buf[16];
    CHECK_ERR(kreadlink(P("f"), buf, sizeof buf), EINVAL);
    CHECK_ERR(kreadlink(P("d"), buf, sizeof buf), EINVAL);
    CHECK_ERR(kreadlink(P("missing"), buf, sizeof buf), ENOENT);
    CHECK_ERR(kreadlink(P("f/x"), buf, sizeof buf), ENOTDIR);
    CHECK_ERR(kreadlink(P("l"), buf, 0), EINVAL);
    CHECK_ERR(kreadlink(P("l"), buf, -1), EINVAL);
    CHECK_ERR(kreadlink("", buf, sizeof buf), ENOENT);
    CHECK_ERR(kreadlink(P("l"), (char *)8, sizeof buf), EFAULT);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(kreadlink(P("l"), buf, 4), 4);
    CHECK(!memcmp(buf, "0123x", 5));
    CHECK_EQ(kreadlink(P("l"), buf, 10), 10);
    CHECK(!memcmp(buf, "0123456789x", 11));
}

/* symlinkat/readlinkat resolve relative names from their dirfds; readlinkat with an empty
 * path reads the link an O_PATH|O_NOFOLLOW descriptor refers to ("If pathname is an empty
 * string, operate on the file referred to by dirfd"). */
TEST(symlinkat_readlinkat_dirfds) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    int dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_OK(symlinkat("target text", dfd, "l"));
    CHECK(link_is(P("d/l"), "target text"));
    char buf[32];
    memset(buf, 0, sizeof buf);
    CHECK_EQ(kreadlinkat(dfd, "l", buf, sizeof buf), 11);
    CHECK(!strcmp(buf, "target text"));
    int lfd = open(P("d/l"), O_PATH | O_NOFOLLOW);
    CHECK(lfd >= 0);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(kreadlinkat(lfd, "", buf, sizeof buf), 11);
    CHECK(!strcmp(buf, "target text"));
    CHECK_OK(close(lfd));
    /* An empty path on a descriptor that is not a link: ENOENT, not the EINVAL a named
     * non-link gets (Linux: "error = empty ? -ENOENT : -EINVAL"). */
    CHECK_ERR(kreadlinkat(dfd, "", buf, sizeof buf), ENOENT);
    CHECK_ERR(kreadlinkat(dfd, ".", buf, sizeof buf), EINVAL);
    CHECK_ERR(symlinkat("x", 1000, "l2"), EBADF);
    int ffd = open(P("f"), O_CREAT | O_WRONLY, 0644);
    CHECK(ffd >= 0);
    CHECK_ERR(symlinkat("x", ffd, "l2"), ENOTDIR);
    CHECK_ERR(kreadlinkat(ffd, "l2", buf, sizeof buf), ENOTDIR);
    CHECK_OK(close(ffd));
    CHECK_OK(close(dfd));
}

/* path_resolution(7): "If a pathname ends in a '/', that forces resolution of the preceding
 * component as in Step 2": a final link to a directory is followed even by lstat and
 * readlink. unlink and rmdir do not follow it. */
TEST(trailing_slash_follows_link_to_directory) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_OK(symlink("d", P("ld")));
    CHECK_OK(symlink("f", P("lf")));
    struct stat st;
    CHECK_OK(lstat(P("ld/"), &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(lstat(P("ld/."), &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_ERR(kreadlink(P("ld/"), (char[8]){0}, 8), EINVAL);
    CHECK_ERR(lstat(P("lf/"), &st), ENOTDIR);
    int fd = open(P("ld/"), O_RDONLY | O_NOFOLLOW);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_ERR(rmdir(P("ld/")), ENOTDIR);
    CHECK_ERR(unlink(P("ld/")), ENOTDIR);
    CHECK_OK(lstat(P("ld"), &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK(exists(P("d")));
}

/* symlink(2): "EEXIST newpath already exists" (even as a dangling link); "ENOENT A directory
 * component in linkpath does not exist or is a dangling symbolic link, or target or linkpath
 * is an empty string";
 * "ENAMETOOLONG target or linkpath was too long". Targets up to PATH_MAX - 1 bytes are kept
 * whole. */
TEST(symlink_errors) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_OK(symlink("x", P("l")));
    CHECK_ERR(symlink("y", P("f")), EEXIST);
    CHECK_ERR(symlink("y", P("l")), EEXIST);
    CHECK(link_is(P("l"), "x"));
    CHECK_ERR(symlink("", P("e")), ENOENT);
    CHECK_ERR(symlink("y", ""), ENOENT);
    CHECK_ERR(symlink("y", P("nodir/l")), ENOENT);
    CHECK_ERR(symlink("y", P("f/l")), ENOTDIR);
    CHECK_ERR(syscall(SYS_symlink, NULL, P("n")), EFAULT);
    static char t[PATH_MAX + 1];
    memset(t, 'a', PATH_MAX - 1);
    t[PATH_MAX - 1] = 0;
    CHECK_OK(symlink(t, P("long")));
    CHECK(link_is(P("long"), t));
    struct stat st;
    CHECK_OK(lstat(P("long"), &st));
    CHECK_EQ(st.st_size, PATH_MAX - 1);
    t[PATH_MAX - 1] = 'a';
    t[PATH_MAX] = 0;
    CHECK_ERR(symlink(t, P("toolong")), ENAMETOOLONG);
    CHECK(!exists(P("toolong")));
}

/* symlink(7): "The permissions of a symbolic link are irrelevant ... on Linux ... always
 * 0777": the umask does not apply. The link is owned by its creator. */
TEST(symlink_mode_is_0777) {
    CHECK(scratch());
    umask(077);
    CHECK_OK(symlink("anything", P("l")));
    struct stat st;
    CHECK_OK(lstat(P("l"), &st));
    CHECK_EQ(st.st_mode, S_IFLNK | 0777);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK_EQ(st.st_nlink, 1);
}
