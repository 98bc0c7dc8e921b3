/* umask(2) and the modes of files and directories created under it. Each case works in its
 * own scratch directory under /tmp. */
#include "scratch.h"

static long kumask(unsigned mask) {
    return syscall(SYS_umask, mask);
}

static int mode_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    return st.st_mode & 07777;
}

/* umask(2): "sets the calling process's file mode creation mask (umask) to mask & 0777 ...
 * and returns the previous value of the mask." */
TEST(returns_previous_mask) {
    kumask(022);
    CHECK_EQ(kumask(077), 022);
    CHECK_EQ(kumask(0), 077);
    CHECK_EQ(kumask(0777), 0);
    CHECK_EQ(kumask(0027), 0777);
    CHECK_EQ(kumask(0027), 0027);
}

/* Only the permission bits are kept: "mask & 0777". */
TEST(only_permission_bits_are_kept) {
    kumask(0);
    CHECK_EQ(kumask(07777), 0);
    CHECK_EQ(kumask(0), 0777);
    CHECK_EQ(kumask(0170022), 0);
    CHECK_EQ(kumask(0), 022);
    CHECK_EQ(kumask(~0u), 0);
    CHECK_EQ(kumask(0), 0777);
}

/* open(2): "the mode of the created file is (mode & ~umask)". */
TEST(created_files_get_mode_without_umask_bits) {
    CHECK(scratch());
    static const struct {
        unsigned mask, mode, want;
    } cases[] = {
        {022, 0666, 0644}, {022, 0777, 0755}, {077, 0666, 0600}, {0, 0640, 0640},
        {0777, 0666, 0},   {027, 0777, 0750}, {0111, 0777, 0666}, {0200, 0600, 0400},
    };
    char name[16];
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kumask(cases[i].mask);
        snprintf(name, sizeof name, "f%u", i);
        int fd = open(P(name), O_CREAT | O_WRONLY | O_EXCL, cases[i].mode);
        CHECK(fd >= 0);
        struct stat st;
        CHECK_OK(fstat(fd, &st));
        CHECK_EQ(st.st_mode, S_IFREG | cases[i].want);
        CHECK_OK(close(fd));
    }
}

/* mkdir(2): "the mode of the created directory is (mode & ~umask & 0777). Whether other mode
 * bits are honored for the created directory depends on the operating system. For Linux, see
 * NOTES below": "Under Linux, apart from the permission bits, the S_ISVTX mode bit is also
 * honored." */
TEST(created_dirs_get_mode_without_umask_bits) {
    CHECK(scratch());
    kumask(022);
    CHECK_OK(mkdir(P("a"), 0777));
    CHECK_EQ(mode_of(P("a")), 0755);
    kumask(027);
    CHECK_OK(mkdir(P("b"), 0777));
    CHECK_EQ(mode_of(P("b")), 0750);
    kumask(0);
    CHECK_OK(mkdir(P("c"), 0705));
    CHECK_EQ(mode_of(P("c")), 0705);
    kumask(077);
    CHECK_OK(mkdirat(AT_FDCWD, P("d"), 0777));
    CHECK_EQ(mode_of(P("d")), 0700);
    kumask(022);
    CHECK_OK(mkdir(P("sticky"), 01777));
    CHECK_EQ(mode_of(P("sticky")), 01755);
    struct stat st;
    CHECK_OK(stat(P("sticky"), &st));
    CHECK(S_ISDIR(st.st_mode));
}

/* mknod(2) of a regular file: "the permissions of the created node are (mode & ~umask)". */
TEST(mknod_regular_file_gets_masked_mode) {
    CHECK(scratch());
    kumask(022);
    CHECK_OK(mknod(P("n"), S_IFREG | 0666, 0));
    struct stat st;
    CHECK_OK(stat(P("n"), &st));
    CHECK_EQ(st.st_mode, S_IFREG | 0644);
    CHECK_EQ(st.st_size, 0);
    /* A type of 0 means a regular file too. */
    kumask(077);
    CHECK_OK(mknodat(AT_FDCWD, P("z"), 0666, 0));
    CHECK_OK(stat(P("z"), &st));
    CHECK_EQ(st.st_mode, S_IFREG | 0600);
}

/* The umask applies when a file is created, and only then: chmod(2) sets the bits given, and
 * opening an existing file with O_CREAT leaves its mode alone. Symbolic links are always
 * 0777. */
TEST(umask_only_affects_creation) {
    CHECK(scratch());
    kumask(0);
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_EQ(mode_of(P("f")), 0644);
    kumask(0777);
    CHECK_OK(chmod(P("f"), 0777));
    CHECK_EQ(mode_of(P("f")), 0777);
    int fd = open(P("f"), O_CREAT | O_RDONLY, 0600);
    CHECK(fd >= 0);
    CHECK_OK(fchmod(fd, 0666));
    CHECK_OK(close(fd));
    CHECK_EQ(mode_of(P("f")), 0666);
    CHECK_OK(symlink("f", P("l")));
    CHECK_EQ(mode_of(P("l")), 0777);
    /* A file created with mode 0 under umask 0777 is still usable through its descriptor. */
    fd = open(P("g"), O_CREAT | O_RDWR, 0666);
    CHECK(fd >= 0);
    CHECK_EQ(mode_of(P("g")), 0);
    CHECK_EQ(write(fd, "ok", 2), 2);
    CHECK_EQ(pread(fd, (char[2]){0}, 2, 0), 2);
    CHECK_OK(close(fd));
    kumask(022);
}
