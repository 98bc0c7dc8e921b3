/* The conformance harness. A test file is one area (its file name); each case is a function
 * declared with TEST(name) that checks documented Linux behaviour with CHECK* macros.
 *
 *   prog --list         prints the case names, one per line
 *   prog --case NAME    runs one case; prints "PASS NAME" or "FAIL NAME: why", exit 0 or 1
 *   prog                runs every case in this process
 *
 * The runner runs each case as its own process, natively and in the sandbox, so a crash in
 * one case never hides the others (and no fork is needed inside the sandbox). */
#ifndef CONFORMANCE_HARNESS_H
#define CONFORMANCE_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

void harness_register(const char *name, void (*fn)(void));
void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                                    \
    static void test_##name(void);                                                    \
    __attribute__((constructor)) static void register_##name(void) {                 \
        harness_register(#name, test_##name);                                         \
    }                                                                                 \
    static void test_##name(void)

/* Each CHECK returns from the case on failure. */
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            harness_fail(__FILE__, __LINE__, "%s", #cond);                            \
            return;                                                                   \
        }                                                                             \
    } while (0)

#define CHECK_EQ(a, b)                                                                \
    do {                                                                              \
        long long _a = (long long)(a), _b = (long long)(b);                           \
        if (_a != _b) {                                                               \
            harness_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld (errno %s)", #a, \
                         #b, _a, _b, strerrorname_np(errno));                         \
            return;                                                                   \
        }                                                                             \
    } while (0)

/* `call` must fail with -1 and errno `err`. */
#define CHECK_ERR(call, err)                                                          \
    do {                                                                              \
        errno = 0;                                                                    \
        long long _r = (long long)(call);                                             \
        int _e = errno;                                                               \
        if (_r != -1 || _e != (err)) {                                                \
            harness_fail(__FILE__, __LINE__, "%s: want -1 %s, got %lld %s", #call,    \
                         strerrorname_np(err), _r, _e ? strerrorname_np(_e) : "0");   \
            return;                                                                   \
        }                                                                             \
    } while (0)

/* `call` must succeed (not return -1). */
#define CHECK_OK(call)                                                                \
    do {                                                                              \
        errno = 0;                                                                    \
        long long _r = (long long)(call);                                             \
        if (_r == -1) {                                                               \
            harness_fail(__FILE__, __LINE__, "%s failed: %s", #call,                  \
                         strerrorname_np(errno));                                     \
            return;                                                                   \
        }                                                                             \
    } while (0)

#endif
