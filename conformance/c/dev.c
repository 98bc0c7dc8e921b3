/* The memory character devices in /dev (null(4), zero(4), full(4), random(4)): what reads and
 * writes do, and their device numbers. Only /dev is read; nothing is created. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Is path a character device with these numbers and the usual mode crw-rw-rw-? */
static const char *check_node(const char *path, unsigned maj, unsigned min) {
    struct stat st;
    if (stat(path, &st) != 0) return "stat failed";
    if (!S_ISCHR(st.st_mode)) return "not a character device";
    if (major(st.st_rdev) != maj || minor(st.st_rdev) != min) return "wrong device numbers";
    if ((st.st_mode & 0777) != 0666) return "mode is not 0666";
    if (st.st_size != 0) return "size is not 0";
    return NULL;
}

#define CHECK_NODE(path, maj, min)                                                    \
    do {                                                                              \
        const char *_why = check_node(path, maj, min);                                \
        if (_why) {                                                                   \
            harness_fail(__FILE__, __LINE__, "%s: %s", path, _why);                   \
            return;                                                                   \
        }                                                                             \
    } while (0)

/* devices.txt: 1 char "Memory devices": 3 = /dev/null, 5 = /dev/zero, 7 = /dev/full,
 * 8 = /dev/random, 9 = /dev/urandom. */
TEST(device_numbers) {
    CHECK_NODE("/dev/null", 1, 3);
    CHECK_NODE("/dev/zero", 1, 5);
    CHECK_NODE("/dev/full", 1, 7);
    CHECK_NODE("/dev/random", 1, 8);
    CHECK_NODE("/dev/urandom", 1, 9);
    struct stat st;
    CHECK_OK(stat("/dev", &st));
    CHECK(S_ISDIR(st.st_mode));
    /* fstat of an open device says the same. */
    int fd = open("/dev/zero", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(st.st_rdev, makedev(1, 5));
    CHECK_OK(close(fd));
}

/* null(4): "Data written to the /dev/null and /dev/zero special files is discarded. Reads from
 * /dev/null always return end of file (i.e., read(2) returns 0)". */
TEST(null_reads_eof_and_swallows_writes) {
    int fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0);
    static char buf[1 << 20];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_EQ(buf[0], 'x');
    CHECK_EQ(write(fd, buf, sizeof buf), sizeof buf);
    CHECK_EQ(write(fd, buf, 1), 1);
    CHECK_EQ(write(fd, buf, 0), 0);
    CHECK_EQ(pwrite(fd, buf, 100, 12345), 100);
    CHECK_EQ(pread(fd, buf, 100, 0), 0);
    struct iovec iov[2] = {{buf, 10}, {buf, 20}};
    CHECK_EQ(writev(fd, iov, 2), 30);
    CHECK_EQ(readv(fd, iov, 2), 0);
    /* Seeking is allowed and always lands at 0. */
    CHECK_EQ(lseek(fd, 100, SEEK_SET), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 0);
    CHECK_OK(close(fd));
}

/* zero(4): "Reads from /dev/zero always return bytes containing zero ('\0' characters)";
 * writes are discarded. */
TEST(zero_reads_zeros) {
    int fd = open("/dev/zero", O_RDWR);
    CHECK(fd >= 0);
    static unsigned char buf[300000];
    memset(buf, 0xff, sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), sizeof buf);
    CHECK(all_zero(buf, sizeof buf));
    memset(buf, 0xff, sizeof buf);
    CHECK_EQ(pread(fd, buf, 4096, 1 << 30), 4096);
    CHECK(all_zero(buf, 4096));
    CHECK_EQ(buf[4096], 0xff);
    unsigned char a[3], b[5];
    memset(a, 1, sizeof a);
    memset(b, 1, sizeof b);
    struct iovec iov[2] = {{a, 3}, {b, 5}};
    CHECK_EQ(readv(fd, iov, 2), 8);
    CHECK(all_zero(a, 3) && all_zero(b, 5));
    CHECK_EQ(write(fd, "discard", 7), 7);
    CHECK_EQ(read(fd, a, 1), 1);
    CHECK_EQ(a[0], 0);
    CHECK_OK(close(fd));
}

/* full(4): "Writes to the /dev/full device fail with an ENOSPC error ... Reads from the
 * /dev/full device will return \0 characters." */
TEST(full_rejects_writes_reads_zeros) {
    int fd = open("/dev/full", O_RDWR);
    CHECK(fd >= 0);
    CHECK_ERR(write(fd, "x", 1), ENOSPC);
    static unsigned char buf[65536];
    CHECK_ERR(write(fd, buf, sizeof buf), ENOSPC);
    struct iovec iov[1] = {{buf, 10}};
    CHECK_ERR(writev(fd, iov, 1), ENOSPC);
    memset(buf, 0xff, sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), sizeof buf);
    CHECK(all_zero(buf, sizeof buf));
    CHECK_EQ(lseek(fd, 10, SEEK_SET), 0);
    CHECK_OK(close(fd));
}

/* random(4): "When read, the /dev/urandom device returns random bytes"; since Linux 5.6
 * /dev/random blocks only until the pool is initialized, so a small read returns at once and
 * fills the buffer. */
TEST(urandom_fills_the_buffer) {
    int fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    unsigned char a[256], b[256];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK_EQ(read(fd, a, sizeof a), sizeof a);
    CHECK_EQ(read(fd, b, sizeof b), sizeof b);
    /* 256 zero bytes, or two equal reads, by chance: probability 2^-2048. */
    CHECK(!all_zero(a, sizeof a));
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* Every byte written: none left at its fill value over a few reads (2^-64 per byte). */
    unsigned char seen[256];
    memset(seen, 0, sizeof seen);
    for (int round = 0; round < 8; round++) {
        memset(a, 0xa5, sizeof a);
        CHECK_EQ(read(fd, a, sizeof a), sizeof a);
        for (int i = 0; i < 256; i++)
            if (a[i] != 0xa5) seen[i] = 1;
    }
    for (int i = 0; i < 256; i++) CHECK(seen[i]);
    /* Larger reads are filled too. */
    static unsigned char big[1 << 16];
    CHECK_EQ(read(fd, big, sizeof big), sizeof big);
    CHECK(!all_zero(big, sizeof big));
    CHECK_OK(close(fd));
}

TEST(random_fills_the_buffer) {
    int fd = open("/dev/random", O_RDONLY);
    CHECK(fd >= 0);
    unsigned char a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK_EQ(read(fd, a, sizeof a), sizeof a);
    CHECK_EQ(read(fd, b, sizeof b), sizeof b);
    CHECK(!all_zero(a, sizeof a));
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK_OK(close(fd));
}

/* "Writing to /dev/random or /dev/urandom will update the entropy pool with the data
 * written": an unprivileged write is accepted (and does not credit entropy). */
TEST(random_accepts_writes) {
    int fd = open("/dev/urandom", O_WRONLY);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "some bytes", 10), 10);
    CHECK_OK(close(fd));
}

/* The devices can be opened in any access mode and are listed in /dev. */
TEST(devices_are_listed_in_dev) {
    int fd = open("/dev", O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    static char buf[32768] __attribute__((aligned(8)));
    const char *want[] = {"null", "zero", "full", "random", "urandom"};
    int found[5] = {0};
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long pos = 0; pos < n;) {
            unsigned short reclen = *(unsigned short *)(buf + pos + 16);
            unsigned char type = buf[pos + 18];
            const char *name = buf + pos + 19;
            for (int i = 0; i < 5; i++)
                if (!strcmp(name, want[i])) {
                    found[i]++;
                    CHECK_EQ(type, DT_CHR);
                }
            pos += reclen;
        }
    }
    CHECK_EQ(n, 0);
    for (int i = 0; i < 5; i++) CHECK_EQ(found[i], 1);
    CHECK_OK(close(fd));
    const char *paths[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"};
    for (int i = 0; i < 4; i++) {
        for (int mode = O_RDONLY; mode <= O_RDWR; mode++) {
            int d = open(paths[i], mode | O_CLOEXEC);
            CHECK(d >= 0);
            CHECK_EQ(fcntl(d, F_GETFL) & O_ACCMODE, mode);
            CHECK_OK(close(d));
        }
    }
}

/* Device files are not directories and cannot be truncated; O_TRUNC on them is ignored
 * ("O_TRUNC ... if the file is a FIFO or terminal device file, the O_TRUNC flag is ignored";
 * Linux ignores it for every device). */
TEST(device_edge_cases) {
    CHECK_ERR(open("/dev/null/x", O_RDONLY), ENOTDIR);
    CHECK_ERR(open("/dev/null", O_RDONLY | O_DIRECTORY), ENOTDIR);
    int fd = open("/dev/null", O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_ERR(ftruncate(fd, 0), EINVAL);
    CHECK_OK(close(fd));
    CHECK_ERR(truncate("/dev/zero", 0), EINVAL);
    CHECK_ERR(open("/dev/no_such_device_here", O_RDONLY), ENOENT);
}
