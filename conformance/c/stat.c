/* stat(2), lstat(2), fstat(2), newfstatat(2) and statx(2) on files, directories and symbolic
 * links. The raw system calls are used: glibc turns stat/lstat/fstat into newfstatat. On
 * x86_64 struct stat is the kernel's struct stat. Each case works in its own scratch
 * directory under /tmp. */
#include "scratch.h"

#include <sys/sysmacros.h>

static long kstat(const char *path, struct stat *st) {
    return syscall(SYS_stat, path, st);
}
static long klstat(const char *path, struct stat *st) {
    return syscall(SYS_lstat, path, st);
}
static long kfstat(int fd, struct stat *st) {
    return syscall(SYS_fstat, fd, st);
}
static long kfstatat(int dfd, const char *path, struct stat *st, int flags) {
    return syscall(SYS_newfstatat, dfd, path, st, flags);
}
static long kstatx(int dfd, const char *path, int flags, unsigned mask, struct statx *stx) {
    return syscall(SYS_statx, dfd, path, flags, mask, stx);
}

static int ts_after(struct timespec a, struct timespec b) {
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}
static int ts_equal(struct timespec a, struct timespec b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* inode(7): st_mode holds the file type and permissions, st_size "the size of the file (if it
 * is a regular file or a symbolic link) in bytes", st_nlink "the number of hard links",
 * st_uid/st_gid the owner (a new file is owned by the creator's effective IDs). */
TEST(stat_regular_file) {
    CHECK(scratch());
    umask(022);
    CHECK_EQ(put_file(P("f"), "twelve bytes"), 12);
    struct stat st;
    memset(&st, 0xff, sizeof st);
    CHECK_EQ(kstat(P("f"), &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & S_IFMT, S_IFREG);
    CHECK_EQ(st.st_mode & 07777, 0644);
    CHECK_EQ(st.st_size, 12);
    CHECK_EQ(st.st_nlink, 1);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK_EQ(st.st_gid, getegid());
    CHECK(st.st_ino != 0);
    CHECK(st.st_blksize > 0);
    CHECK_EQ(st.st_rdev, 0);
    /* An empty file. */
    CHECK_EQ(put_file(P("e"), ""), 0);
    CHECK_EQ(kstat(P("e"), &st), 0);
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(st.st_blocks, 0);
}

/* A directory has a link from its parent and its own "."; each subdirectory adds one more
 * (its ".."). Files inside do not count. */
TEST(stat_directory_nlink) {
    CHECK(scratch());
    umask(022);
    CHECK_OK(mkdir(P("d"), 0777));
    struct stat st;
    CHECK_EQ(kstat(P("d"), &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0755);
    CHECK_EQ(st.st_nlink, 2);
    CHECK_OK(mkdir(P("d/a"), 0755));
    CHECK_OK(mkdir(P("d/b"), 0755));
    CHECK_EQ(put_file(P("d/file"), "x"), 1);
    CHECK_OK(symlink("a", P("d/link")));
    CHECK_EQ(kstat(P("d"), &st), 0);
    CHECK_EQ(st.st_nlink, 4);
    CHECK_EQ(kstat(P("d/a"), &st), 0);
    CHECK_EQ(st.st_nlink, 2);
    CHECK_OK(rmdir(P("d/b")));
    CHECK_EQ(kstat(P("d"), &st), 0);
    CHECK_EQ(st.st_nlink, 3);
    /* The parent of d counts d's "..". */
    struct stat before, after;
    CHECK_EQ(kstat(P(""), &before), 0);
    CHECK_OK(mkdir(P("e"), 0755));
    CHECK_EQ(kstat(P(""), &after), 0);
    CHECK_EQ(after.st_nlink, before.st_nlink + 1);
}

/* st_ino identifies the file on its device: distinct files have distinct numbers, the same
 * file always the same one, whichever way it is reached. */
TEST(ino_distinct_and_stable) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("a"), "a"), 1);
    CHECK_EQ(put_file(P("b"), "b"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    struct stat a, a2, b, d, dot;
    CHECK_EQ(kstat(P("a"), &a), 0);
    CHECK_EQ(kstat(P("b"), &b), 0);
    CHECK_EQ(kstat(P("d"), &d), 0);
    CHECK(a.st_ino != b.st_ino);
    CHECK(a.st_ino != d.st_ino);
    CHECK(b.st_ino != d.st_ino);
    CHECK_EQ(a.st_dev, b.st_dev);
    CHECK_EQ(a.st_dev, d.st_dev);
    /* Writing and reopening do not change it. */
    CHECK_EQ(put_file(P("a"), "longer contents"), 15);
    CHECK_EQ(kstat(P("a"), &a2), 0);
    CHECK_EQ(a2.st_ino, a.st_ino);
    CHECK_EQ(kstat(P("d/../a"), &a2), 0);
    CHECK_EQ(a2.st_ino, a.st_ino);
    CHECK_EQ(kstat(P("d/."), &dot), 0);
    CHECK_EQ(dot.st_ino, d.st_ino);
    int fd = open(P("a"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(kfstat(fd, &a2), 0);
    CHECK_EQ(a2.st_ino, a.st_ino);
    CHECK_EQ(a2.st_dev, a.st_dev);
    CHECK_OK(close(fd));
}

/* lstat(2): "If pathname is a symbolic link, then it returns information about the link
 * itself"; inode(7): for a link st_size is "the length of the pathname it contains, without a
 * terminating null byte". stat(2) follows it. */
TEST(lstat_symlink) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    CHECK_OK(symlink("f", P("rel")));
    CHECK_OK(symlink(P("f"), P("abs")));
    struct stat st, target;
    CHECK_EQ(kstat(P("f"), &target), 0);
    CHECK_EQ(klstat(P("rel"), &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_size, 1);
    CHECK(st.st_ino != target.st_ino);
    CHECK_EQ(klstat(P("abs"), &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_size, strlen(P("f")));
    CHECK_EQ(kstat(P("abs"), &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 10);
    CHECK_EQ(st.st_ino, target.st_ino);
    /* lstat of something that is not a link is the same as stat. */
    CHECK_EQ(klstat(P("f"), &st), 0);
    CHECK_EQ(st.st_ino, target.st_ino);
    CHECK(S_ISREG(st.st_mode));
}

/* fstat(2) "is identical to stat(), except that the file about which information is to be
 * retrieved is specified by the file descriptor fd" (O_PATH descriptors included). */
TEST(fstat_matches_stat) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "abc"), 3);
    CHECK_OK(mkdir(P("d"), 0755));
    struct stat s, f;
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(kstat(P("f"), &s), 0);
    CHECK_EQ(kfstat(fd, &f), 0);
    CHECK_EQ(f.st_ino, s.st_ino);
    CHECK_EQ(f.st_dev, s.st_dev);
    CHECK_EQ(f.st_mode, s.st_mode);
    CHECK_EQ(f.st_size, s.st_size);
    CHECK_EQ(f.st_nlink, s.st_nlink);
    CHECK(ts_equal(f.st_mtim, s.st_mtim));
    /* The size seen through the descriptor follows writes made elsewhere. */
    CHECK_EQ(put_file(P("f"), "abcdef"), 6);
    CHECK_EQ(kfstat(fd, &f), 0);
    CHECK_EQ(f.st_size, 6);
    CHECK_OK(close(fd));
    fd = open(P("d"), O_PATH);
    CHECK(fd >= 0);
    CHECK_EQ(kfstat(fd, &f), 0);
    CHECK(S_ISDIR(f.st_mode));
    CHECK_OK(close(fd));
    CHECK_ERR(kfstat(fd, &f), EBADF);
    CHECK_ERR(kfstat(-1, &f), EBADF);
}

/* fstatat(2): relative paths resolve from dirfd; AT_SYMLINK_NOFOLLOW: "If pathname is a
 * symbolic link, do not dereference it: instead return information about the link itself,
 * like lstat()." */
TEST(fstatat_symlink_nofollow) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_EQ(put_file(P("d/f"), "abcd"), 4);
    CHECK_OK(symlink("f", P("d/l")));
    int dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    struct stat st;
    CHECK_EQ(kfstatat(dfd, "l", &st, AT_SYMLINK_NOFOLLOW), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_size, 1);
    CHECK_EQ(kfstatat(dfd, "l", &st, 0), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 4);
    CHECK_EQ(kfstatat(AT_FDCWD, P("d/l"), &st, AT_SYMLINK_NOFOLLOW), 0);
    CHECK(S_ISLNK(st.st_mode));
    /* Only the last component is not followed. */
    CHECK_OK(symlink("d", P("ld")));
    CHECK_EQ(kfstatat(AT_FDCWD, P("ld/f"), &st, AT_SYMLINK_NOFOLLOW), 0);
    CHECK(S_ISREG(st.st_mode));
    /* A file as dirfd: ENOTDIR; an absolute path ignores dirfd. */
    int fd = open(P("d/f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(kfstatat(fd, "x", &st, 0), ENOTDIR);
    CHECK_EQ(kfstatat(fd, P("d"), &st, 0), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_ERR(kfstatat(1000, "f", &st, 0), EBADF);
    CHECK_OK(close(fd));
    CHECK_OK(close(dfd));
}

/* AT_EMPTY_PATH: "If pathname is an empty string, operate on the file referred to by dirfd
 * ... dirfd can refer to any type of file, not just a directory." Without the flag an empty
 * path is ENOENT. */
TEST(fstatat_empty_path) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "abcd"), 4);
    CHECK_OK(symlink("f", P("l")));
    struct stat s, e;
    CHECK_EQ(kstat(P("f"), &s), 0);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(kfstatat(fd, "", &e, AT_EMPTY_PATH), 0);
    CHECK_EQ(e.st_ino, s.st_ino);
    CHECK_EQ(e.st_size, 4);
    CHECK_ERR(kfstatat(fd, "", &e, 0), ENOENT);
    CHECK_ERR(kfstatat(AT_FDCWD, "", &e, 0), ENOENT);
    CHECK_OK(close(fd));
    /* The cwd with AT_FDCWD. */
    CHECK_OK(chdir(P("")));
    CHECK_EQ(kfstatat(AT_FDCWD, "", &e, AT_EMPTY_PATH), 0);
    CHECK(S_ISDIR(e.st_mode));
    CHECK_OK(chdir("/"));
    /* An O_PATH descriptor of the link itself. */
    fd = open(P("l"), O_PATH | O_NOFOLLOW);
    CHECK(fd >= 0);
    CHECK_EQ(kfstatat(fd, "", &e, AT_EMPTY_PATH), 0);
    CHECK(S_ISLNK(e.st_mode));
    CHECK_OK(close(fd));
}

/* statx(2) with STATX_BASIC_STATS: the same information as stat, with stx_mask saying which
 * fields were filled. */
TEST(statx_basic_fields) {
    CHECK(scratch());
    umask(022);
    CHECK_EQ(put_file(P("f"), "0123456789"), 10);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(symlink("f", P("l")));
    struct stat st;
    struct statx sx;
    CHECK_EQ(kstat(P("f"), &st), 0);
    memset(&sx, 0, sizeof sx);
    CHECK_EQ(kstatx(AT_FDCWD, P("f"), 0, STATX_BASIC_STATS, &sx), 0);
    CHECK_EQ(sx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
    CHECK_EQ(sx.stx_mode, st.st_mode);
    CHECK_EQ(sx.stx_mode & S_IFMT, S_IFREG);
    CHECK_EQ(sx.stx_ino, st.st_ino);
    CHECK_EQ(sx.stx_nlink, 1);
    CHECK_EQ(sx.stx_size, 10);
    CHECK_EQ(sx.stx_uid, geteuid());
    CHECK_EQ(sx.stx_gid, getegid());
    CHECK_EQ(sx.stx_blocks, st.st_blocks);
    CHECK_EQ(sx.stx_blksize, st.st_blksize);
    CHECK_EQ(sx.stx_dev_major, major(st.st_dev));
    CHECK_EQ(sx.stx_dev_minor, minor(st.st_dev));
    CHECK_EQ(sx.stx_mtime.tv_sec, st.st_mtim.tv_sec);
    CHECK_EQ(sx.stx_mtime.tv_nsec, st.st_mtim.tv_nsec);
    CHECK_EQ(sx.stx_ctime.tv_sec, st.st_ctim.tv_sec);
    CHECK_EQ(sx.stx_ctime.tv_nsec, st.st_ctim.tv_nsec);
    CHECK_EQ(kstatx(AT_FDCWD, P("d"), 0, STATX_BASIC_STATS, &sx), 0);
    CHECK_EQ(sx.stx_mode & S_IFMT, S_IFDIR);
    CHECK_EQ(sx.stx_nlink, 2);
    CHECK_EQ(kstatx(AT_FDCWD, P("l"), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx), 0);
    CHECK_EQ(sx.stx_mode & S_IFMT, S_IFLNK);
    CHECK_EQ(sx.stx_size, 1);
    CHECK_EQ(kstatx(AT_FDCWD, P("l"), 0, STATX_BASIC_STATS, &sx), 0);
    CHECK_EQ(sx.stx_mode & S_IFMT, S_IFREG);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(kstatx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx), 0);
    CHECK_EQ(sx.stx_ino, st.st_ino);
    CHECK_OK(close(fd));
    CHECK_ERR(kstatx(AT_FDCWD, P("missing"), 0, STATX_BASIC_STATS, &sx), ENOENT);
}

/* inode(7): "st_mtime: ... changed by file modifications, for example, by ... write(2)";
 * "st_ctime: ... changed by writing or by setting inode information (i.e., owner, group, link
 * count, mode, etc.)". A read changes neither. Creating an entry modifies the directory. */
TEST(timestamps_move_on_change) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    int fd = open(P("d/f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    struct stat a, b, c, d, da, db;
    CHECK_EQ(kfstat(fd, &a), 0);
    CHECK_EQ(kstat(P("d"), &da), 0);
    sleep_ms(30);
    CHECK_EQ(write(fd, "data", 4), 4);
    CHECK_EQ(kfstat(fd, &b), 0);
    CHECK(ts_after(b.st_mtim, a.st_mtim));
    CHECK(ts_after(b.st_ctim, a.st_ctim));
    sleep_ms(30);
    CHECK_OK(fchmod(fd, 0600));
    CHECK_EQ(kfstat(fd, &c), 0);
    CHECK(ts_equal(c.st_mtim, b.st_mtim));
    CHECK(ts_after(c.st_ctim, b.st_ctim));
    sleep_ms(30);
    char buf[8];
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 4);
    CHECK_EQ(kfstat(fd, &d), 0);
    CHECK(ts_equal(d.st_mtim, c.st_mtim));
    CHECK(ts_equal(d.st_ctim, c.st_ctim));
    CHECK_OK(close(fd));
    /* The directory changed when d/f was created... */
    sleep_ms(30);
    CHECK_EQ(put_file(P("d/g"), ""), 0);
    CHECK_EQ(kstat(P("d"), &db), 0);
    CHECK(ts_after(db.st_mtim, da.st_mtim));
    CHECK(ts_after(db.st_ctim, da.st_ctim));
    /* ... and changes again when one is removed. */
    sleep_ms(30);
    CHECK_OK(unlink(P("d/g")));
    CHECK_EQ(kstat(P("d"), &da), 0);
    CHECK(ts_after(da.st_mtim, db.st_mtim));
}

/* "ENOENT A component of pathname does not exist or is a dangling symbolic link." */
TEST(missing_is_enoent) {
    CHECK(scratch());
    CHECK_OK(symlink("nowhere", P("dangling")));
    struct stat st;
    struct statx sx;
    CHECK_ERR(kstat(P("missing"), &st), ENOENT);
    CHECK_ERR(klstat(P("missing"), &st), ENOENT);
    CHECK_ERR(kfstatat(AT_FDCWD, P("missing"), &st, AT_SYMLINK_NOFOLLOW), ENOENT);
    CHECK_ERR(kstat(P("nodir/f"), &st), ENOENT);
    CHECK_ERR(kstat(P("dangling"), &st), ENOENT);
    CHECK_ERR(kstatx(AT_FDCWD, P("dangling"), 0, STATX_BASIC_STATS, &sx), ENOENT);
    CHECK_ERR(kstat("", &st), ENOENT);
    CHECK_EQ(klstat(P("dangling"), &st), 0);
    CHECK(S_ISLNK(st.st_mode));
}

/* fstatat: "EINVAL Invalid flag specified in flags"; statx: also "EINVAL Reserved flag
 * specified in mask", and the two sync flags AT_STATX_FORCE_SYNC and AT_STATX_DONT_SYNC
 * together. */
TEST(bad_flags_is_einval) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    struct stat st;
    struct statx sx;
    CHECK_ERR(kfstatat(AT_FDCWD, P("f"), &st, 0x1), EINVAL);
    CHECK_ERR(kfstatat(AT_FDCWD, P("f"), &st, AT_REMOVEDIR), EINVAL);
    CHECK_ERR(kfstatat(AT_FDCWD, P("f"), &st, 0x40000000), EINVAL);
    CHECK_ERR(kstatx(AT_FDCWD, P("f"), 0x1, STATX_BASIC_STATS, &sx), EINVAL);
    CHECK_ERR(kstatx(AT_FDCWD, P("f"), AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                     STATX_BASIC_STATS, &sx),
              EINVAL);
    CHECK_ERR(kstatx(AT_FDCWD, P("f"), 0, 0x80000000u, &sx), EINVAL);
    /* The valid sync flags are accepted. */
    CHECK_EQ(kstatx(AT_FDCWD, P("f"), AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx), 0);
    CHECK_EQ(kstatx(AT_FDCWD, P("f"), AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &sx), 0);
}

/* path_resolution(7): a pathname with a trailing slash must name a directory: "ENOTDIR A
 * component of the path prefix of pathname is not a directory". A link to a directory is
 * followed even by lstat when the name ends in a slash. */
TEST(trailing_slash_on_file_is_enotdir) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(mkdir(P("d"), 0755));
    CHECK_OK(symlink("d", P("ld")));
    CHECK_OK(symlink("f", P("lf")));
    struct stat st;
    CHECK_ERR(kstat(P("f/"), &st), ENOTDIR);
    CHECK_ERR(klstat(P("f/"), &st), ENOTDIR);
    CHECK_ERR(kstat(P("f/."), &st), ENOTDIR);
    CHECK_ERR(kstat(P("f/x"), &st), ENOTDIR);
    CHECK_ERR(klstat(P("lf/"), &st), ENOTDIR);
    CHECK_EQ(kstat(P("d/"), &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(klstat(P("ld"), &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(klstat(P("ld/"), &st), 0);
    CHECK(S_ISDIR(st.st_mode));
}

/* "EFAULT Bad address." for the path or the buffer. */
TEST(bad_address_is_efault) {
    CHECK(scratch());
    CHECK_EQ(put_file(P("f"), "x"), 1);
    struct stat st;
    CHECK_ERR(kstat(NULL, &st), EFAULT);
    CHECK_ERR(kstat(P("f"), (struct stat *)1), EFAULT);
    CHECK_ERR(klstat(P("f"), NULL), EFAULT);
    CHECK_ERR(kfstatat(AT_FDCWD, P("f"), (struct stat *)8, 0), EFAULT);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(kfstat(fd, NULL), EFAULT);
    CHECK_ERR(kstatx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, NULL), EFAULT);
    CHECK_OK(close(fd));
}
