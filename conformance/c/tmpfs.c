/* /tmp as a place to work: the directory itself, files of various sizes and shapes, many
 * entries, odd names, O_TMPFILE and statfs. In the sandbox /tmp is a tmpfs; natively it may
 * be anything (ext4, overlay, tmpfs), so only what every Linux file system does is checked.
 * Each case works in its own scratch directory under /tmp. */
#include "scratch.h"

#include <stdint.h>
#include <sys/statfs.h>

static int all_zero(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* file-hierarchy(7): "/tmp/ The place for small temporary files." It is shared by all users:
 * world-writable with the sticky bit (mode 1777), owned by root. */
TEST(tmp_is_sticky_world_writable_directory) {
    struct stat st;
    CHECK_OK(stat("/tmp", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 01777);
    CHECK_EQ(st.st_uid, 0);
    CHECK_OK(lstat("/tmp", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(access("/tmp", R_OK | W_OK | X_OK), 0);
}

/* Anyone can make a directory in /tmp (mkdtemp makes it 0700), and a tree inside it. */
TEST(create_directories_in_tmp) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK(!strncmp(dir, "/tmp/conf_", 10));
    struct stat st;
    CHECK_OK(stat(dir, &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0700);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK_OK(mkdir(P("a"), 0755));
    CHECK_OK(mkdir(P("a/b"), 0755));
    CHECK_OK(mkdir(P("a/b/c"), 0755));
    CHECK_EQ(put_file(P("a/b/c/leaf"), "leaf"), 4);
    char buf[8];
    CHECK_EQ(get_file(P("a/b/c/leaf"), buf, sizeof buf), 4);
    CHECK(!strcmp(buf, "leaf"));
    CHECK_ERR(mkdir(P("a"), 0755), EEXIST);
    CHECK_ERR(mkdir(P("x/y"), 0755), ENOENT);
}

/* Data written is read back exactly, across page boundaries and in odd-sized pieces. */
TEST(file_written_and_read_back) {
    CHECK(scratch());
    enum { SIZE = 3 * 1024 * 1024 + 777 };
    static unsigned char data[SIZE], back[SIZE];
    uint32_t x = 12345;
    for (size_t i = 0; i < SIZE; i++) {
        x = x * 1103515245 + 12345;
        data[i] = x >> 24;
    }
    int fd = open(P("f"), O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    /* Written in chunks of 1, 4095, 4097, ... bytes. */
    size_t off = 0, chunk = 1;
    while (off < SIZE) {
        size_t n = chunk < SIZE - off ? chunk : SIZE - off;
        CHECK_EQ(write(fd, data + off, n), n);
        off += n;
        chunk = chunk * 3 + 4093;
    }
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, SIZE);
    CHECK_OK(close(fd));
    fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    off = 0;
    while (off < SIZE) {
        long n = read(fd, back + off, 10007);
        CHECK(n > 0);
        off += n;
    }
    CHECK_EQ(read(fd, back, 1), 0);
    CHECK(!memcmp(data, back, SIZE));
    /* And from the middle, unaligned. */
    memset(back, 0, 9000);
    CHECK_EQ(pread(fd, back, 9000, 4095), 9000);
    CHECK(!memcmp(back, data + 4095, 9000));
    CHECK_OK(close(fd));
}

/* A file with a hole: the size counts the hole, the hole reads as zeros, and it takes less
 * space than its size (st_blocks counts the 512-byte blocks allocated). Written data does
 * take space. */
TEST(sparse_file_and_block_count) {
    CHECK(scratch());
    int fd = open(P("sparse"), O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(pwrite(fd, "z", 1, 8 << 20), 1);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, (8 << 20) + 1);
    CHECK(st.st_blocks * 512 < (8 << 20));
    static char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(pread(fd, buf, sizeof buf, 1 << 20), sizeof buf);
    CHECK(all_zero(buf, sizeof buf));
    CHECK_OK(close(fd));
    fd = open(P("dense"), O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    /* Incompressible bytes, so that a compressing file system cannot store them in less. */
    uint32_t x = 777;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245 + 12345;
        buf[i] = x >> 24;
    }
    CHECK_EQ(write(fd, buf, sizeof buf), sizeof buf);
    CHECK_OK(fstat(fd, &st));
    CHECK(st.st_blocks * 512 >= (long)sizeof buf);
    CHECK_OK(close(fd));
}

/* Hundreds of entries in one directory: all listed, all removable, and the directory is
 * then empty. */
TEST(many_entries) {
    const char *dir = scratch();
    CHECK(dir);
    enum { N = 300 };
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "d/entry%03d", i);
        if (i == 0) CHECK_OK(mkdir(P("d"), 0755));
        CHECK_EQ(put_file(P(name), ""), 0);
    }
    static char seen[N];
    int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    DIR *d = fdopendir(fd);
    CHECK(d != NULL);
    struct dirent *e;
    int total = 0;
    while ((e = readdir(d))) {
        total++;
        int i;
        if (sscanf(e->d_name, "entry%03d", &i) == 1 && i >= 0 && i < N) seen[i]++;
    }
    CHECK_OK(closedir(d));
    CHECK_EQ(total, N + 2);
    for (int i = 0; i < N; i++) CHECK_EQ(seen[i], 1);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "d/entry%03d", i);
        CHECK_OK(unlink(P(name)));
    }
    CHECK_OK(rmdir(P("d")));
    CHECK(!exists(P("d")));
}

/* A file name is any bytes but '/' and NUL (path_resolution(7)): spaces, newlines, bytes over
 * 0x7f, leading dots. They are stored and listed as given. */
TEST(names_are_arbitrary_bytes) {
    CHECK(scratch());
    char names[3][256];
    int len[3] = {0};
    for (int c = 1; c < 256; c++) {
        if (c == '/') continue;
        int k = c % 3;
        names[k][len[k]++] = (char)c;
    }
    for (int k = 0; k < 3; k++) names[k][len[k]] = 0;
    const char *odd[] = {" ", "...", "-", "a\nb", "\xff\xfe", "tab\there"};
    for (int k = 0; k < 3; k++) CHECK_EQ(put_file(P(names[k]), names[k]), len[k]);
    for (unsigned k = 0; k < sizeof odd / sizeof odd[0]; k++)
        CHECK_EQ(put_file(P(odd[k]), ""), 0);
    char buf[300];
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(get_file(P(names[k]), buf, sizeof buf), len[k]);
        CHECK(!memcmp(buf, names[k], len[k]));
    }
    int found = 0;
    DIR *d = opendir(P(""));
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        for (int k = 0; k < 3; k++) found += !strcmp(e->d_name, names[k]);
        for (unsigned k = 0; k < sizeof odd / sizeof odd[0]; k++)
            found += !strcmp(e->d_name, odd[k]);
    }
    CHECK_OK(closedir(d));
    CHECK_EQ(found, 9);
}

/* open(2), O_TMPFILE: "Create an unnamed temporary regular file. The pathname argument
 * specifies a directory; an unnamed inode will be created in that directory's filesystem.
 * Anything written to the resulting file will be lost when the last file descriptor is
 * closed". It has no name (st_nlink 0, not listed). "EINVAL O_TMPFILE was specified in flags,
 * but neither O_WRONLY nor O_RDWR was specified"; a path that is not a directory is
 * ENOTDIR. */
TEST(o_tmpfile_is_unnamed) {
    const char *dir = scratch();
    CHECK(dir);
    umask(022);
    int fd = open(dir, O_TMPFILE | O_RDWR, 0666);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0644);
    CHECK_EQ(st.st_nlink, 0);
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(write(fd, "unnamed", 7), 7);
    char buf[8] = {0};
    CHECK_EQ(pread(fd, buf, 7, 0), 7);
    CHECK(!strcmp(buf, "unnamed"));
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int entries = 0;
    while (readdir(d)) entries++;
    CHECK_OK(closedir(d));
    CHECK_EQ(entries, 2);
    CHECK_OK(close(fd));
    CHECK_ERR(open(dir, O_TMPFILE | O_RDONLY, 0600), EINVAL);
    CHECK_EQ(put_file(P("f"), ""), 0);
    CHECK_ERR(open(P("f"), O_TMPFILE | O_RDWR, 0600), ENOTDIR);
    CHECK_ERR(open(P("missing"), O_TMPFILE | O_RDWR, 0600), ENOENT);
}

/* statfs(2) describes the file system holding the path: every file in it reports the same
 * type, f_namelen ("Maximum length of filenames") is 255 on Linux file systems, and fstatfs
 * agrees with statfs. (The sandbox's /tmp is a tmpfs, f_type TMPFS_MAGIC 0x01021994, but the
 * native /tmp need not be -- ext4 or overlay in many setups -- so f_type itself is not
 * checked.) */
TEST(statfs_tmp) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("f"), "x"), 1);
    struct statfs tmp, sub, f;
    CHECK_OK(statfs("/tmp", &tmp));
    CHECK_OK(statfs(dir, &sub));
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(fstatfs(fd, &f));
    CHECK_OK(close(fd));
    CHECK_EQ(sub.f_type, tmp.f_type);
    CHECK_EQ(f.f_type, tmp.f_type);
    CHECK(tmp.f_bsize > 0);
    CHECK_EQ(tmp.f_namelen, 255);
    CHECK_EQ(f.f_bsize, tmp.f_bsize);
    CHECK(tmp.f_blocks >= tmp.f_bfree);
    CHECK(tmp.f_bfree >= tmp.f_bavail);
    CHECK_ERR(statfs(P("missing"), &f), ENOENT);
    CHECK_ERR(statfs(P("f/x"), &f), ENOTDIR);
    CHECK_ERR(fstatfs(1000, &f), EBADF);
}
