/* rename(2), renameat(2) and renameat2(2) for files, directories and symbolic links. Each
 * case works in its own scratch directory under /tmp. */
#include "scratch.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static long krename(const char *old, const char *new) {
    return syscall(SYS_rename, old, new);
}
static long krenameat2(int od, const char *old, int nd, const char *new, unsigned flags) {
    return syscall(SYS_renameat2, od, old, nd, new, flags);
}

static unsigned long ino_of(const char *path) {
    struct stat st;
    return lstat(path, &st) ? 0 : st.st_ino;
}
static long nlink_of(const char *path) {
    struct stat st;
    return lstat(path, &st) ? -1 : (long)st.st_nlink;
}
static int content_is(const char *path, const char *want) {
    char buf[64];
    return get_file(path, buf, sizeof buf) >= 0 && !strcmp(buf, want);
}

/* rename(2) "renames a file, moving it between directories if required": the same file (same
 * inode, same data) under the new name, and the old name gone. */
TEST(rename_file) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "contents"), 8);
    unsigned long ino = ino_of(P("a"));
    CHECK_EQ(krename(P("a"), P("b")), 0);
    CHECK(!exists(P("a")));
    CHECK_EQ(ino_of(P("b")), ino);
    CHECK(content_is(P("b"), "contents"));
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(krename(P("b"), P("d/c")), 0);
    CHECK(!exists(P("b")));
    CHECK_EQ(ino_of(P("d/c")), ino);
    CHECK_EQ(nlink_of(P("d/c")), 1);
    /* An open descriptor follows the file. */
    int fd = open(P("d/c"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(krename(P("d/c"), P("e")), 0);
    char buf[16] = {0};
    CHECK_EQ(read(fd, buf, sizeof buf), 8);
    CHECK(!strcmp(buf, "contents"));
    CHECK_OK(close(fd));
}

/* A directory moves with its contents; moved to another parent, its ".." is the new parent
 * and the parents' link counts follow. */
TEST(rename_directory) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("p1"), 0755));
    CHECK_OK(mkdir(P("p2"), 0755));
    CHECK_OK(mkdir(P("p1/d"), 0755));
    CHECK_OK(mkdir(P("p1/d/sub"), 0755));
    CHECK_EQ(put_file(P("p1/d/f"), "inside"), 6);
    unsigned long ino = ino_of(P("p1/d"));
    CHECK_EQ(nlink_of(P("p1")), 3);
    CHECK_EQ(nlink_of(P("p2")), 2);
    CHECK_EQ(krename(P("p1/d"), P("p2/moved")), 0);
    CHECK(!exists(P("p1/d")));
    CHECK_EQ(ino_of(P("p2/moved")), ino);
    CHECK(content_is(P("p2/moved/f"), "inside"));
    CHECK(exists(P("p2/moved/sub")));
    CHECK_EQ(nlink_of(P("p1")), 2);
    CHECK_EQ(nlink_of(P("p2")), 3);
    CHECK_EQ(nlink_of(P("p2/moved")), 3);
    struct stat dotdot;
    CHECK_OK(stat(P("p2/moved/.."), &dotdot));
    CHECK_EQ(dotdot.st_ino, ino_of(P("p2")));
    /* Within one directory. */
    CHECK_EQ(krename(P("p2/moved"), P("p2/again")), 0);
    CHECK(content_is(P("p2/again/f"), "inside"));
    CHECK_EQ(nlink_of(P("p2")), 3);
}

/* "If newpath already exists, it will be atomically replaced, so that there is no point at
 * which another process attempting to access newpath will find it missing." The replaced file
 * lives on while open, with no names left. */
TEST(rename_over_existing_file_replaces) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("new"), "new data"), 8);
    CHECK_EQ(put_file(P("old"), "old data"), 8);
    unsigned long ino = ino_of(P("new"));
    int fd = open(P("old"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(krename(P("new"), P("old")), 0);
    CHECK(!exists(P("new")));
    CHECK_EQ(ino_of(P("old")), ino);
    CHECK(content_is(P("old"), "new data"));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_nlink, 0);
    char buf[16] = {0};
    CHECK_EQ(read(fd, buf, sizeof buf), 8);
    CHECK(!strcmp(buf, "old data"));
    CHECK_OK(close(fd));
    /* A replaced file with other names only loses one. */
    CHECK_EQ(put_file(P("x"), "x"), 1);
    CHECK_EQ(put_file(P("y"), "y"), 1);
    CHECK_OK(link(P("y"), P("y2")));
    CHECK_EQ(krename(P("x"), P("y")), 0);
    CHECK_EQ(nlink_of(P("y2")), 1);
    CHECK(content_is(P("y2"), "y"));
    CHECK(content_is(P("y"), "x"));
}

/* "oldpath can specify a directory. In this case, newpath must either not exist, or it must
 * specify an empty directory." */
TEST(rename_dir_over_empty_dir) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("a"), 0755));
    CHECK_EQ(put_file(P("a/f"), "f"), 1);
    CHECK_OK(mkdir(P("b"), 0755));
    unsigned long ino = ino_of(P("a"));
    long parent = nlink_of(P(""));
    CHECK_EQ(krename(P("a"), P("b")), 0);
    CHECK(!exists(P("a")));
    CHECK_EQ(ino_of(P("b")), ino);
    CHECK(content_is(P("b/f"), "f"));
    CHECK_EQ(nlink_of(P("")), parent - 1);
}

/* "ENOTEMPTY or EEXIST newpath is a nonempty directory": Linux says ENOTEMPTY. */
TEST(rename_dir_over_nonempty_dir_is_enotempty) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("a"), 0755));
    CHECK_OK(mkdir(P("b"), 0755));
    CHECK_EQ(put_file(P("b/f"), "f"), 1);
    CHECK_ERR(krename(P("a"), P("b")), ENOTEMPTY);
    CHECK(exists(P("a")));
    CHECK(content_is(P("b/f"), "f"));
}

/* "EISDIR newpath is an existing directory, but oldpath is not a directory." */
TEST(rename_file_over_dir_is_eisdir) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "f"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_ERR(krename(P("f"), P("d")), EISDIR);
    CHECK(exists(P("f")));
    struct stat st;
    CHECK_OK(stat(P("d"), &st));
    CHECK(S_ISDIR(st.st_mode));
}

/* "ENOTDIR ... oldpath is a directory, and newpath exists but is not a directory." A file
 * source with a trailing slash on either name is ENOTDIR too. */
TEST(rename_dir_over_file_is_enotdir) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "f"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_ERR(krename(P("d"), P("f")), ENOTDIR);
    CHECK(exists(P("d")));
    CHECK(content_is(P("f"), "f"));
    CHECK_ERR(krename(P("f/"), P("g")), ENOTDIR);
    CHECK_ERR(krename(P("f"), P("g/")), ENOTDIR);
    CHECK(!exists(P("g")));
    /* A directory may be named with trailing slashes. */
    CHECK_EQ(krename(P("d/"), P("e/")), 0);
    CHECK(exists(P("e")));
}

/* "EINVAL The new pathname contained a path prefix of the old, or, more generally, an
 * attempt was made to make a directory a subdirectory of itself." */
TEST(rename_dir_into_own_subdir_is_einval) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("a"), 0755));
    CHECK_OK(mkdir(P("a/b"), 0755));
    CHECK_ERR(krename(P("a"), P("a/b/c")), EINVAL);
    CHECK_ERR(krename(P("a"), P("a/c")), EINVAL);
    /* Over its own (empty) subdirectory, too. */
    CHECK_ERR(krename(P("a"), P("a/b")), EINVAL);
    CHECK(exists(P("a/b")));
    /* But a subdirectory can move up. */
    CHECK_EQ(krename(P("a/b"), P("b")), 0);
    CHECK(exists(P("b")));
}

/* renameat2(2), RENAME_NOREPLACE: "Don't overwrite newpath of the rename. Return an error if
 * newpath already exists." "EEXIST flags contains RENAME_NOREPLACE and newpath already
 * exists." */
TEST(renameat2_noreplace) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "a"), 1);
    CHECK_EQ(put_file(P("b"), "b"), 1);
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_ERR(krenameat2(AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_NOREPLACE), EEXIST);
    CHECK_ERR(krenameat2(AT_FDCWD, P("a"), AT_FDCWD, P("dangling"), RENAME_NOREPLACE),
              EEXIST);
    CHECK(content_is(P("a"), "a"));
    CHECK(content_is(P("b"), "b"));
    CHECK_EQ(krenameat2(AT_FDCWD, P("a"), AT_FDCWD, P("c"), RENAME_NOREPLACE), 0);
    CHECK(!exists(P("a")));
    CHECK(content_is(P("c"), "a"));
    /* With dirfds and no flags it is renameat(2). */
    int dfd = open(P(""), O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_EQ(krenameat2(dfd, "c", dfd, "b", 0), 0);
    CHECK(content_is(P("b"), "a"));
    CHECK_EQ(syscall(SYS_renameat, dfd, "b", dfd, "a"), 0);
    CHECK(content_is(P("a"), "a"));
    CHECK_OK(close(dfd));
}

/* RENAME_EXCHANGE: "Atomically exchange oldpath and newpath. Both pathnames must exist but may
 * be of different types"; "EINVAL Both RENAME_NOREPLACE and RENAME_EXCHANGE were specified in
 * flags"; "ENOENT flags contains RENAME_EXCHANGE and newpath does not exist". */
TEST(renameat2_exchange) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "file"), 4);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("d/inner"), "inner"), 5);
    unsigned long fi = ino_of(P("f")), di = ino_of(P("d"));
    CHECK_EQ(krenameat2(AT_FDCWD, P("f"), AT_FDCWD, P("d"), RENAME_EXCHANGE), 0);
    CHECK_EQ(ino_of(P("f")), di);
    CHECK_EQ(ino_of(P("d")), fi);
    CHECK(content_is(P("d"), "file"));
    CHECK(content_is(P("f/inner"), "inner"));
    CHECK_ERR(krenameat2(AT_FDCWD, P("f"), AT_FDCWD, P("missing"), RENAME_EXCHANGE), ENOENT);
    CHECK_ERR(krenameat2(AT_FDCWD, P("f"), AT_FDCWD, P("d"),
                         RENAME_EXCHANGE | RENAME_NOREPLACE),
              EINVAL);
    CHECK_ERR(krenameat2(AT_FDCWD, P("f"), AT_FDCWD, P("d"), 0x80), EINVAL);
    CHECK_EQ(ino_of(P("f")), di);
}

/* "If oldpath and newpath are existing hard links referring to the same file, then rename()
 * does nothing, and returns a success status." So renaming a name to itself is a no-op, and
 * renaming one of two hard links onto the other leaves both. */
TEST(rename_to_itself_is_noop) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "a"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(krename(P("a"), P("a")), 0);
    CHECK(content_is(P("a"), "a"));
    CHECK_EQ(krename(P("d"), P("d")), 0);
    CHECK(exists(P("d")));
    CHECK_OK(link(P("a"), P("b")));
    CHECK_EQ(krename(P("a"), P("b")), 0);
    CHECK(exists(P("a")));
    CHECK(exists(P("b")));
    CHECK_EQ(nlink_of(P("a")), 2);
    /* Even RENAME_NOREPLACE onto itself: the name exists. */
    CHECK_ERR(krenameat2(AT_FDCWD, P("a"), AT_FDCWD, P("a"), RENAME_NOREPLACE), EEXIST);
}

/* A symbolic link is renamed itself, never followed; "If oldpath refers to a symbolic link,
 * the link is renamed; if newpath refers to a symbolic link, the link will be overwritten." */
TEST(rename_symlink_renames_the_link) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("target"), "t"), 1);
    CHECK_EQ(put_file(P("other"), "o"), 1);
    CHECK_OK(symlink("target", P("l")));
    CHECK_OK(symlink("target", P("l2")));
    CHECK_EQ(krename(P("l"), P("m")), 0);
    struct stat st;
    CHECK_OK(lstat(P("m"), &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK(content_is(P("m"), "t"));
    CHECK_EQ(krename(P("other"), P("l2")), 0);
    CHECK_OK(lstat(P("l2"), &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK(content_is(P("target"), "t"));
    CHECK(content_is(P("l2"), "o"));
}

/* "ENOENT The link named by oldpath does not exist; or, a directory component in newpath does
 * not exist; or, oldpath or newpath is an empty string." Renaming "." or ".." is refused: Linux
 * answers EBUSY when the last component of either name is "." or "..". */
TEST(rename_errors) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "f"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_ERR(krename(P("missing"), P("x")), ENOENT);
    CHECK_ERR(krename(P("f"), P("nodir/x")), ENOENT);
    CHECK_ERR(krename("", P("x")), ENOENT);
    CHECK_ERR(krename(P("f"), ""), ENOENT);
    CHECK_ERR(krename(P("f"), P("f/x")), ENOTDIR);
    CHECK_ERR(krename(P("d/."), P("x")), EBUSY);
    CHECK_ERR(krename(P("d/.."), P("x")), EBUSY);
    CHECK_ERR(krename(P("f"), P("d/.")), EBUSY);
    CHECK_ERR(syscall(SYS_renameat, 1000, "f", AT_FDCWD, P("x"), 0), EBADF);
    CHECK(content_is(P("f"), "f"));
    CHECK(!exists(P("x")));
}
