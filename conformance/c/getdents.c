/* getdents64(2) (and the old getdents(2)) on directories: what is listed, how listings are
 * split over calls, restarting them, and the errors. Each case works in its own scratch
 * directory under /tmp. */
#include "scratch.h"

#include <stdint.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static long kgetdents64(int fd, void *buf, size_t n) {
    return syscall(SYS_getdents64, fd, buf, n);
}

struct ent {
    char name[NAME_MAX + 1];
    unsigned char type;
    uint64_t ino;
    int64_t off;
};

#define MAX_ENTS 256
static struct ent ents[MAX_ENTS];
static int nents;

/* Reads the rest of the listing with buffers of `size` bytes, appending to ents. Checks the
 * records are well formed: 8-byte aligned lengths that add up to the count returned, names
 * NUL-terminated inside their record. Returns the number of calls that returned entries, or
 * -1 (with errno) if a call failed, or -2 if a record was malformed (reported as a failure
 * here; the caller's CHECK then fails too). */
static int read_all(int fd, size_t size) {
    static char buf[65536] __attribute__((aligned(8)));
    int calls = 0;
    for (;;) {
        long n = kgetdents64(fd, buf, size);
        if (n < 0) return -1;
        if (n == 0) return calls;
        const char *why = NULL;
        if ((size_t)n > size) why = "returned more than the buffer";
        calls++;
        for (long pos = 0; pos < n && !why;) {
            struct linux_dirent64 *d = (void *)(buf + pos);
            if (d->d_reclen < 24 || d->d_reclen % 8 || pos + d->d_reclen > n) {
                why = "bad d_reclen";
                break;
            }
            size_t len = strnlen(d->d_name, d->d_reclen - 19);
            if (19 + len + 1 > d->d_reclen) why = "name not terminated";
            else if (len == 0) why = "empty name";
            else if (nents == MAX_ENTS) why = "too many entries";
            if (why) break;
            memcpy(ents[nents].name, d->d_name, len + 1);
            ents[nents].type = d->d_type;
            ents[nents].ino = d->d_ino;
            ents[nents].off = d->d_off;
            nents++;
            pos += d->d_reclen;
        }
        if (why) {
            harness_fail(__FILE__, __LINE__, "malformed getdents64 result: %s", why);
            return -2;
        }
    }
}

/* How many times name was listed; its entry in *e. */
static int count(const char *name, struct ent **e) {
    int c = 0;
    for (int i = 0; i < nents; i++)
        if (!strcmp(ents[i].name, name)) {
            c++;
            if (e) *e = &ents[i];
        }
    return c;
}

static uint64_t ino_of(const char *path) {
    struct stat st;
    return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) ? 0 : st.st_ino;
}

/* getdents64 returns "linux_dirent64" records for every entry, "." and ".." included, with
 * "d_type: file type" (DT_REG, DT_DIR, DT_LNK, ...) and d_ino the inode number. Symbolic links
 * are listed as links, whatever they point to. */
TEST(lists_every_entry_once_with_type) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("file1"), "1"), 1);
    CHECK_EQ(put_file(P("file2"), ""), 0);
    CHECK_OK(mkdir(P("sub"), 0755));
    CHECK_OK(symlink("sub", P("link_to_dir")));
    CHECK_OK(symlink("nowhere", P("dangling")));
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    nents = 0;
    CHECK(read_all(fd, 4096) >= 1);
    CHECK_EQ(nents, 7);
    struct ent *e;
    CHECK_EQ(count(".", &e), 1);
    CHECK_EQ(e->type, DT_DIR);
    CHECK_EQ(e->ino, ino_of(dir));
    CHECK_EQ(count("..", &e), 1);
    CHECK_EQ(e->type, DT_DIR);
    CHECK_EQ(count("file1", &e), 1);
    CHECK_EQ(e->type, DT_REG);
    CHECK_EQ(e->ino, ino_of(P("file1")));
    CHECK_EQ(count("file2", &e), 1);
    CHECK_EQ(e->type, DT_REG);
    CHECK_EQ(e->ino, ino_of(P("file2")));
    CHECK_EQ(count("sub", &e), 1);
    CHECK_EQ(e->type, DT_DIR);
    CHECK_EQ(e->ino, ino_of(P("sub")));
    CHECK_EQ(count("link_to_dir", &e), 1);
    CHECK_EQ(e->type, DT_LNK);
    CHECK_EQ(e->ino, ino_of(P("link_to_dir")));
    CHECK_EQ(count("dangling", &e), 1);
    CHECK_EQ(e->type, DT_LNK);
    CHECK_OK(close(fd));
}

/* A new directory holds only "." and "..", and ".." is its parent. */
TEST(empty_directory_has_dot_and_dotdot) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    nents = 0;
    CHECK_EQ(read_all(fd, 4096), 1);
    CHECK_EQ(nents, 2);
    struct ent *e;
    CHECK_EQ(count(".", &e), 1);
    CHECK_EQ(e->ino, ino_of(P("d")));
    CHECK_EQ(count("..", &e), 1);
    CHECK_EQ(e->ino, ino_of(P("")));
    CHECK_OK(close(fd));
}

/* "On success, the number of bytes read is returned. On end of directory, 0 is returned":
 * a buffer with room for a few records returns a few each call, and the listing continues
 * where the last call stopped, losing and repeating nothing. */
TEST(small_buffer_returns_entries_across_calls) {
    const char *dir = scratch();
    CHECK(dir);
    char name[64];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "entry_with_a_rather_long_name_%02d", i);
        CHECK_EQ(put_file(P(name), ""), 0);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    nents = 0;
    /* Each record here is 56 bytes: at most two fit in 128. */
    CHECK(read_all(fd, 128) >= 21);
    CHECK_EQ(nents, 42);
    CHECK_EQ(count(".", NULL), 1);
    CHECK_EQ(count("..", NULL), 1);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "entry_with_a_rather_long_name_%02d", i);
        CHECK_EQ(count(name, NULL), 1);
    }
    CHECK_OK(close(fd));
}

/* "EINVAL Result buffer is too small": when not even the next record fits. Nothing is
 * consumed, so a bigger buffer then gets the whole listing. */
TEST(buffer_too_small_is_einval) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("some_file"), ""), 0);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    char buf[64] __attribute__((aligned(8)));
    CHECK_ERR(kgetdents64(fd, buf, 0), EINVAL);
    CHECK_ERR(kgetdents64(fd, buf, 1), EINVAL);
    /* The smallest record, for ".", is 24 bytes (19 of header, the name, NUL, padding). */
    CHECK_ERR(kgetdents64(fd, buf, 20), EINVAL);
    nents = 0;
    CHECK(read_all(fd, 4096) >= 1);
    CHECK_EQ(nents, 3);
    CHECK_EQ(count(".", NULL), 1);
    CHECK_EQ(count("..", NULL), 1);
    CHECK_EQ(count("some_file", NULL), 1);
    CHECK_OK(close(fd));
}

/* "ENOTDIR File descriptor does not refer to a directory"; "EBADF Invalid file descriptor
 * fd" (an O_PATH descriptor cannot be read either); "EFAULT Argument points outside the
 * calling process's address space." */
TEST(bad_descriptors_and_buffers) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("f"), "data"), 4);
    char buf[512] __attribute__((aligned(8)));
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    CHECK_ERR(kgetdents64(fd, buf, sizeof buf), ENOTDIR);
    CHECK_OK(close(fd));
    CHECK_ERR(kgetdents64(fd, buf, sizeof buf), EBADF);
    CHECK_ERR(kgetdents64(-1, buf, sizeof buf), EBADF);
    fd = open(dir, O_PATH | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_ERR(kgetdents64(fd, buf, sizeof buf), EBADF);
    CHECK_OK(close(fd));
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_ERR(kgetdents64(fd, (void *)8, sizeof buf), EFAULT);
    CHECK_OK(close(fd));
}

/* An unlinked name is gone from a listing made afterwards; the others stay. */
TEST(unlinked_entry_disappears) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("a"), ""), 0);
    CHECK_EQ(put_file(P("b"), ""), 0);
    CHECK_OK(mkdir(P("c"), 0755));
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    nents = 0;
    CHECK(read_all(fd, 4096) >= 1);
    CHECK_EQ(nents, 5);
    CHECK_OK(close(fd));
    CHECK_OK(unlink(P("a")));
    CHECK_OK(rmdir(P("c")));
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    nents = 0;
    CHECK(read_all(fd, 4096) >= 1);
    CHECK_EQ(nents, 3);
    CHECK_EQ(count("a", NULL), 0);
    CHECK_EQ(count("c", NULL), 0);
    CHECK_EQ(count("b", NULL), 1);
    CHECK_OK(close(fd));
}

/* At the end every call returns 0; lseek(fd, 0, SEEK_SET) starts the listing again, and the
 * new listing shows entries created since. */
TEST(end_returns_zero_and_rewind_restarts) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("a"), ""), 0);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    nents = 0;
    CHECK(read_all(fd, 4096) >= 1);
    CHECK_EQ(nents, 3);
    char buf[512] __attribute__((aligned(8)));
    CHECK_EQ(kgetdents64(fd, buf, sizeof buf), 0);
    CHECK_EQ(kgetdents64(fd, buf, sizeof buf), 0);
    CHECK_EQ(put_file(P("b"), ""), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    nents = 0;
    CHECK(read_all(fd, 4096) >= 1);
    CHECK_EQ(nents, 4);
    CHECK_EQ(count("a", NULL), 1);
    CHECK_EQ(count("b", NULL), 1);
    CHECK_OK(close(fd));
}

/* "d_off is the distance from the start of the directory to the start of the next" entry: an
 * opaque position that lseek(2) accepts (what seekdir(3) uses), after which the listing
 * resumes with the entry that followed. */
TEST(seek_to_d_off_resumes_after_entry) {
    const char *dir = scratch();
    CHECK(dir);
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "f%d", i);
        CHECK_EQ(put_file(P(name), ""), 0);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    nents = 0;
    CHECK(read_all(fd, 4096) >= 1);
    CHECK_EQ(nents, 12);
    static struct ent first[MAX_ENTS];
    memcpy(first, ents, sizeof first);
    for (int k = 0; k < 11; k++) {
        CHECK_EQ(lseek(fd, first[k].off, SEEK_SET), first[k].off);
        nents = 0;
        CHECK(read_all(fd, 4096) >= 1);
        CHECK_EQ(nents, 11 - k);
        for (int i = 0; i < nents; i++) CHECK(!strcmp(ents[i].name, first[k + 1 + i].name));
    }
    /* After the last entry, nothing. */
    CHECK_EQ(lseek(fd, first[11].off, SEEK_SET), first[11].off);
    nents = 0;
    CHECK_EQ(read_all(fd, 4096), 0);
    CHECK_OK(close(fd));
}

/* A directory that has been removed while open lists nothing: Linux refuses to read a dead
 * directory with ENOENT. */
TEST(removed_directory_is_enoent) {
    CHECK(scratch());
    CHECK_OK(mkdir(P("d"), 0755));
    int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_OK(rmdir(P("d")));
    char buf[512] __attribute__((aligned(8)));
    CHECK_ERR(kgetdents64(fd, buf, sizeof buf), ENOENT);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_nlink, 0);
    CHECK_OK(close(fd));
}

struct linux_dirent {
    unsigned long d_ino;
    unsigned long d_off;
    unsigned short d_reclen;
    char d_name[];
    /* then a NUL, padding, and d_type in the record's last byte */
};

/* The old getdents(2) lists the same entries, with d_type in the last byte of each record
 * ("char d_type; // File type ... offset is (d_reclen - 1)"). */
TEST(old_getdents_lists_with_type_in_last_byte) {
    const char *dir = scratch();
    CHECK(dir);
    CHECK_EQ(put_file(P("file"), ""), 0);
    CHECK_OK(mkdir(P("sub"), 0755));
    CHECK_OK(symlink("file", P("link")));
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    static char buf[4096] __attribute__((aligned(8)));
    int seen = 0, total = 0;
    long n;
    while ((n = syscall(SYS_getdents, fd, buf, sizeof buf)) > 0) {
        for (long pos = 0; pos < n;) {
            struct linux_dirent *d = (void *)(buf + pos);
            unsigned char type = buf[pos + d->d_reclen - 1];
            CHECK(d->d_reclen > 0 && d->d_reclen % 8 == 0);
            total++;
            if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..") ||
                !strcmp(d->d_name, "sub")) {
                CHECK_EQ(type, DT_DIR);
                seen++;
            } else if (!strcmp(d->d_name, "file")) {
                CHECK_EQ(type, DT_REG);
                CHECK_EQ(d->d_ino, ino_of(P("file")));
                seen++;
            } else if (!strcmp(d->d_name, "link")) {
                CHECK_EQ(type, DT_LNK);
                seen++;
            }
            pos += d->d_reclen;
        }
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(total, 5);
    CHECK_EQ(seen, 5);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_ERR(syscall(SYS_getdents, fd, buf, 4), EINVAL);
    CHECK_OK(close(fd));
}
