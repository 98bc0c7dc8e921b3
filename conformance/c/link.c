/* link(2), linkat(2), unlink(2), unlinkat(2) and rmdir(2): hard links, link counts and
 * removing names. Each case works in its own scratch directory under /tmp. */
#include "scratch.h"

static long nlink_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    return st.st_nlink;
}

/* link(2) "creates a new link (also known as a hard link) to an existing file ... both names
 * refer to the same file"; the file's st_nlink counts its names. */
TEST(link_shares_inode_and_data) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "shared"), 6);
    CHECK_EQ(nlink_of(P("a")), 1);
    CHECK_OK(link(P("a"), P("b")));
    CHECK_EQ(nlink_of(P("a")), 2);
    CHECK_EQ(nlink_of(P("b")), 2);
    struct stat sa, sb;
    CHECK_OK(stat(P("a"), &sa));
    CHECK_OK(stat(P("b"), &sb));
    CHECK_EQ(sa.st_ino, sb.st_ino);
    CHECK_EQ(sa.st_dev, sb.st_dev);
    char buf[32];
    CHECK_EQ(get_file(P("b"), buf, sizeof buf), 6);
    CHECK(!strcmp(buf, "shared"));
    /* A write through one name is read through the other. */
    int fd = open(P("b"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "+more", 5), 5);
    CHECK_OK(close(fd));
    CHECK_EQ(get_file(P("a"), buf, sizeof buf), 11);
    CHECK(!strcmp(buf, "shared+more"));
    /* A third name, in a subdirectory. */
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(link(P("b"), P("d/c")));
    CHECK_EQ(nlink_of(P("a")), 3);
    /* The directory's own link count does not change for file links. */
    CHECK_EQ(nlink_of(P("d")), 2);
}

/* unlink(2): "If that name was the last link to a file and no processes have the file open,
 * the file is deleted"; otherwise only the name goes. */
TEST(unlink_one_name_keeps_data) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "data"), 4);
    CHECK_OK(link(P("a"), P("b")));
    CHECK_OK(unlink(P("a")));
    CHECK(!exists(P("a")));
    CHECK_EQ(nlink_of(P("b")), 1);
    char buf[16];
    CHECK_EQ(get_file(P("b"), buf, sizeof buf), 4);
    CHECK(!strcmp(buf, "data"));
    CHECK_OK(unlink(P("b")));
    CHECK(!exists(P("b")));
    CHECK_ERR(unlink(P("b")), ENOENT);
}

/* "If the name was the last link to a file but any processes still have the file open, the
 * file will remain in existence until the last file descriptor referring to it is closed."
 * fstat then reports st_nlink 0. */
TEST(unlinked_open_file_stays_usable) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "still here"), 10);
    int fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_OK(unlink(P("f")));
    CHECK(!exists(P("f")));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_nlink, 0);
    CHECK_EQ(st.st_size, 10);
    char buf[16] = {0};
    CHECK_EQ(read(fd, buf, sizeof buf), 10);
    CHECK(!strcmp(buf, "still here"));
    CHECK_EQ(pwrite(fd, "!", 1, 10), 1);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 11);
    /* A new file with the old name is a different file. */
    CHECK_EQ(put_file(P("f"), "new"), 3);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 11);
    CHECK_OK(close(fd));
}

/* link(2): "EPERM oldpath is a directory." */
TEST(link_to_directory_is_eperm) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_ERR(link(P("d"), P("d2")), EPERM);
    CHECK_ERR(linkat(AT_FDCWD, P("d"), AT_FDCWD, P("d3"), AT_SYMLINK_FOLLOW), EPERM);
    CHECK(!exists(P("d2")));
    CHECK_EQ(nlink_of(P("d")), 2);
}

/* "EEXIST newpath already exists", whatever it is (a dangling symbolic link included). */
TEST(link_existing_target_is_eexist) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "a"), 1);
    CHECK_EQ(put_file(P("b"), "b"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_ERR(link(P("a"), P("b")), EEXIST);
    CHECK_ERR(link(P("a"), P("d")), EEXIST);
    CHECK_ERR(link(P("a"), P("dangling")), EEXIST);
    CHECK_ERR(link(P("a"), P("a")), EEXIST);
    CHECK(!exists(P("nowhere")));
    CHECK_EQ(nlink_of(P("a")), 1);
    char buf[4];
    CHECK_EQ(get_file(P("b"), buf, sizeof buf), 1);
    CHECK_EQ(buf[0], 'b');
}

/* "ENOENT A directory component in oldpath or newpath does not exist or is a dangling symbolic
 * link"; an empty name is ENOENT too; "ENOTDIR A component used as a directory in oldpath or
 * newpath is not, in fact, a directory". */
TEST(link_missing_is_enoent) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "f"), 1);
    CHECK_ERR(link(P("missing"), P("x")), ENOENT);
    CHECK_ERR(link(P("f"), P("nodir/x")), ENOENT);
    CHECK_ERR(link("", P("x")), ENOENT);
    CHECK_ERR(link(P("f"), ""), ENOENT);
    CHECK_ERR(link(P("f/"), P("x")), ENOTDIR);
    CHECK_ERR(link(P("f"), P("f/x")), ENOTDIR);
    /* A new name with a trailing slash would have to be a directory. */
    CHECK_ERR(link(P("f"), P("x/")), ENOENT);
    CHECK(!exists(P("x")));
}

/* link(2) does not follow a symbolic link in oldpath on Linux: the new name is a hard link to
 * the symbolic link itself. AT_SYMLINK_FOLLOW: "By default, linkat(), does not dereference
 * oldpath if it is a symbolic link (like link()). The flag AT_SYMLINK_FOLLOW can be specified
 * in flags to cause oldpath to be dereferenced if it is a symbolic link." */
TEST(link_to_symlink_follows_only_with_flag) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "f"), 1);
    CHECK_OK(symlink("f", P("l")));
    struct stat sf, sl, st;
    CHECK_OK(lstat(P("f"), &sf));
    CHECK_OK(lstat(P("l"), &sl));
    CHECK_OK(link(P("l"), P("h1")));
    CHECK_OK(lstat(P("h1"), &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_ino, sl.st_ino);
    CHECK_EQ(st.st_nlink, 2);
    CHECK_OK(linkat(AT_FDCWD, P("l"), AT_FDCWD, P("h2"), 0));
    CHECK_OK(lstat(P("h2"), &st));
    CHECK_EQ(st.st_ino, sl.st_ino);
    CHECK_OK(linkat(AT_FDCWD, P("l"), AT_FDCWD, P("h3"), AT_SYMLINK_FOLLOW));
    CHECK_OK(lstat(P("h3"), &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_ino, sf.st_ino);
    CHECK_EQ(st.st_nlink, 2);
    /* A dangling link can be hard-linked, but not followed. */
    CHECK_OK(symlink("nowhere", P("dangling")));
    CHECK_OK(link(P("dangling"), P("h4")));
    CHECK_ERR(linkat(AT_FDCWD, P("dangling"), AT_FDCWD, P("h5"), AT_SYMLINK_FOLLOW), ENOENT);
}

/* linkat(2): relative names resolve from their dirfds; "EINVAL An invalid flag value was
 * specified in flags"; "EBADF ... dirfd is not a valid file descriptor". */
TEST(linkat_dirfds_and_flags) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("src"), 0755));
    CHECK_OK(mkdir(P("dst"), 0755));
    CHECK_EQ(put_file(P("src/f"), "x"), 1);
    int s = open(P("src"), O_RDONLY | O_DIRECTORY);
    int d = open(P("dst"), O_RDONLY | O_DIRECTORY);
    CHECK(s >= 0 && d >= 0);
    CHECK_OK(linkat(s, "f", d, "g", 0));
    CHECK_EQ(nlink_of(P("dst/g")), 2);
    CHECK_ERR(linkat(s, "f", d, "h", 0x1), EINVAL);
    CHECK_ERR(linkat(s, "f", d, "h", AT_REMOVEDIR), EINVAL);
    CHECK(!exists(P("dst/h")));
    CHECK_ERR(linkat(1000, "f", d, "h", 0), EBADF);
    CHECK_ERR(linkat(s, "f", 1000, "h", 0), EBADF);
    /* Without AT_EMPTY_PATH an empty oldpath is ENOENT. */
    CHECK_ERR(linkat(s, "", d, "h", 0), ENOENT);
    CHECK_OK(close(s));
    CHECK_OK(close(d));
}

/* unlink(2): "EISDIR pathname refers to a directory. (This is the non-POSIX value returned
 * since Linux 2.1.132.)" */
TEST(unlink_directory_is_eisdir) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_ERR(unlink(P("d")), EISDIR);
    CHECK_ERR(unlinkat(AT_FDCWD, P("d"), 0), EISDIR);
    CHECK(exists(P("d")));
    /* A symbolic link to a directory is removed itself, not followed. */
    CHECK_OK(symlink("d", P("ld")));
    CHECK_OK(unlink(P("ld")));
    CHECK(!exists(P("ld")));
    CHECK(exists(P("d")));
    /* A file named with a trailing slash is not a directory. */
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_ERR(unlink(P("f/")), ENOTDIR);
    CHECK(exists(P("f")));
}

/* unlinkat(2): AT_REMOVEDIR "performs the equivalent of rmdir(2) on pathname"; without
 * it, unlink(2). "EINVAL An invalid flag value was specified in flags." "ENOTDIR pathname is
 * relative and dirfd is a file descriptor referring to a file other than a directory." */
TEST(unlinkat_removedir) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("top"), 0755));
    CHECK_OK(mkdir(P("top/d"), 0755));
    CHECK_EQ(put_file(P("top/f"), ""), 0);
    int dfd = open(P("top"), O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_ERR(unlinkat(dfd, "f", AT_REMOVEDIR), ENOTDIR);
    CHECK_ERR(unlinkat(dfd, "d", 0x1), EINVAL);
    CHECK_ERR(unlinkat(dfd, "d", AT_SYMLINK_NOFOLLOW), EINVAL);
    CHECK_EQ(nlink_of(P("top")), 3);
    CHECK_OK(unlinkat(dfd, "d", AT_REMOVEDIR));
    CHECK(!exists(P("top/d")));
    CHECK_EQ(nlink_of(P("top")), 2);
    CHECK_OK(unlinkat(dfd, "f", 0));
    CHECK(!exists(P("top/f")));
    CHECK_ERR(unlinkat(dfd, "f", 0), ENOENT);
    CHECK_EQ(put_file(P("g"), ""), 0);
    int ffd = open(P("g"), O_RDONLY);
    CHECK(ffd >= 0);
    CHECK_ERR(unlinkat(ffd, "x", 0), ENOTDIR);
    CHECK_ERR(unlinkat(1000, "x", 0), EBADF);
    CHECK_OK(close(ffd));
    CHECK_OK(close(dfd));
    CHECK_OK(rmdir(P("top")));
    CHECK(!exists(P("top")));
}

/* rmdir(2): "ENOTEMPTY pathname contains entries other than . and .." (or EEXIST; Linux
 * returns ENOTEMPTY). Any kind of entry counts. */
TEST(rmdir_nonempty_is_enotempty) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("a"), 0755));
    CHECK_EQ(put_file(P("a/f"), ""), 0);
    CHECK_OK(mkdir(P("b"), 0755));
    CHECK_OK(mkdir(P("b/sub"), 0755));
    CHECK_OK(mkdir(P("c"), 0755));
    CHECK_OK(symlink("nowhere", P("c/l")));
    CHECK_ERR(rmdir(P("a")), ENOTEMPTY);
    CHECK_ERR(rmdir(P("b")), ENOTEMPTY);
    CHECK_ERR(rmdir(P("c")), ENOTEMPTY);
    CHECK_ERR(unlinkat(AT_FDCWD, P("a"), AT_REMOVEDIR), ENOTEMPTY);
    CHECK(exists(P("a/f")));
    /* Emptied, it can go. */
    CHECK_OK(unlink(P("a/f")));
    CHECK_OK(rmdir(P("a")));
    CHECK(!exists(P("a")));
}

/* "ENOTDIR pathname, or a component used as a directory in pathname, is not, in fact, a
 * directory"; a symbolic link to a directory is not one either (rmdir does not follow). */
TEST(rmdir_file_is_enotdir) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(symlink("d", P("ld")));
    CHECK_ERR(rmdir(P("f")), ENOTDIR);
    CHECK_ERR(rmdir(P("f/x")), ENOTDIR);
    CHECK_ERR(rmdir(P("ld")), ENOTDIR);
    CHECK_ERR(rmdir(P("missing")), ENOENT);
    CHECK(exists(P("f")));
    CHECK(exists(P("d")));
    /* A trailing slash on a directory is fine. */
    CHECK_OK(rmdir(P("d/")));
    CHECK(!exists(P("d")));
}

/* rmdir(2): "EINVAL pathname has . as last component." "ENOTEMPTY pathname ... has .. as its
 * final component." */
TEST(rmdir_dot_is_einval) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_ERR(rmdir(P("d/.")), EINVAL);
    CHECK_ERR(rmdir(P("d/..")), ENOTEMPTY);
    CHECK_OK(chdir(P("d")));
    CHECK_ERR(rmdir("."), EINVAL);
    CHECK_ERR(rmdir(".."), ENOTEMPTY);
    CHECK_ERR(unlinkat(AT_FDCWD, ".", AT_REMOVEDIR), EINVAL);
    CHECK_OK(chdir("/"));
    CHECK(exists(P("d")));
}
