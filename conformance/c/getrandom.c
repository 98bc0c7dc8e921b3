/* getrandom(2): random bytes from the kernel. */
#include "harness.h"

#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

static long grnd(void *buf, size_t len, unsigned flags) {
    return syscall(SYS_getrandom, buf, len, flags);
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Reads of up to 256 bytes from an initialized urandom source "will always return as many
 * bytes as requested". */
TEST(fills_the_buffer) {
    unsigned char buf[64 + 8];
    memset(buf, 0, sizeof buf);
    CHECK_EQ(grnd(buf, 64, 0), 64);
    /* 64 zero bytes by chance: probability 2^-512. */
    CHECK(!all_zero(buf, 64));
    /* Nothing past the requested length is written. */
    CHECK(all_zero(buf + 64, 8));
}

TEST(every_byte_written) {
    /* Each of the 256 bytes must be overwritten at least once over a few calls: a byte left
     * at its fill value in 8 calls has probability 2^-64. */
    unsigned char buf[256], seen[256];
    memset(seen, 0, sizeof seen);
    for (int round = 0; round < 8; round++) {
        memset(buf, 0xa5, sizeof buf);
        CHECK_EQ(grnd(buf, sizeof buf, 0), 256);
        for (int i = 0; i < 256; i++)
            if (buf[i] != 0xa5) seen[i] = 1;
    }
    for (int i = 0; i < 256; i++) CHECK_EQ(seen[i], 1);
}

TEST(two_calls_differ) {
    unsigned char a[32], b[32];
    CHECK_EQ(grnd(a, sizeof a, 0), 32);
    CHECK_EQ(grnd(b, sizeof b, 0), 32);
    CHECK(memcmp(a, b, sizeof a) != 0);
}

TEST(zero_length_returns_zero) {
    unsigned char b = 0x42;
    CHECK_EQ(grnd(&b, 0, 0), 0);
    CHECK_EQ(b, 0x42);
    CHECK_EQ(grnd(NULL, 0, 0), 0);
}

TEST(large_request_filled) {
    static unsigned char buf[65536];
    CHECK_EQ(grnd(buf, sizeof buf, 0), (long)sizeof buf);
    CHECK(!all_zero(buf + sizeof buf - 64, 64));
}

TEST(grnd_nonblock_ok) {
    unsigned char buf[64];
    memset(buf, 0, sizeof buf);
    CHECK_EQ(grnd(buf, sizeof buf, GRND_NONBLOCK), 64);
    CHECK(!all_zero(buf, sizeof buf));
}

TEST(grnd_insecure_ok) {
    unsigned char buf[64];
    memset(buf, 0, sizeof buf);
    CHECK_EQ(grnd(buf, sizeof buf, GRND_INSECURE), 64);
    CHECK(!all_zero(buf, sizeof buf));
}

/* GRND_RANDOM draws from the random source; it may return fewer bytes but not none. */
TEST(grnd_random_ok) {
    unsigned char buf[64];
    memset(buf, 0, sizeof buf);
    long n = grnd(buf, sizeof buf, GRND_RANDOM | GRND_NONBLOCK);
    CHECK(n > 0 && n <= 64);
    if (n >= 8) CHECK(!all_zero(buf, n));
}

TEST(unknown_flag_is_einval) {
    unsigned char buf[16];
    CHECK_ERR(grnd(buf, sizeof buf, 0x8), EINVAL);
    CHECK_ERR(grnd(buf, sizeof buf, 0x80000000), EINVAL);
}

/* GRND_INSECURE asks for the urandom source without waiting, GRND_RANDOM for the random
 * source: Linux rejects the contradictory pair with EINVAL ("An invalid flag was specified"). */
TEST(random_with_insecure_is_einval) {
    unsigned char buf[16];
    CHECK_ERR(grnd(buf, sizeof buf, GRND_RANDOM | GRND_INSECURE), EINVAL);
}

/* The glibc wrapper passes everything through. */
TEST(glibc_wrapper_agrees) {
    unsigned char buf[48];
    memset(buf, 0, sizeof buf);
    CHECK_EQ(getrandom(buf, sizeof buf, 0), 48);
    CHECK(!all_zero(buf, sizeof buf));
    CHECK_ERR(getrandom(buf, sizeof buf, 0x8), EINVAL);
}

TEST(bad_pointer_is_efault) {
    CHECK_ERR(grnd((void *)1, 16, 0), EFAULT);
    CHECK_ERR(grnd(NULL, 16, 0), EFAULT);
}

TEST(read_only_buffer_is_efault) {
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(grnd(p, 16, 0), EFAULT);
    CHECK(all_zero(p, 4096));
    CHECK_OK(munmap(p, 4096));
}
