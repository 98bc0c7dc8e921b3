/* arch_prctl(2): the x86-64 FS and GS segment bases, and the CPUID-enable state. */
#include "harness.h"

#include <asm/prctl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static long ap(int code, unsigned long arg) {
    return syscall(SYS_arch_prctl, code, arg);
}

static uintptr_t fs_self(void) {
    uintptr_t v;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
    return v;
}

/* glibc's TCB starts with a pointer to itself, and the FS base points at the TCB. */
TEST(get_fs_is_glibc_thread_pointer) {
    unsigned long fs = 0;
    CHECK_EQ(ap(ARCH_GET_FS, (unsigned long)&fs), 0);
    CHECK(fs != 0);
    CHECK_EQ(fs, fs_self());
    CHECK_EQ(fs, (uintptr_t)__builtin_thread_pointer());
}

/* The FS base is what TLS accesses go through: the address of a __thread variable lies
 * below it (variant II TLS). */
TEST(get_fs_covers_tls_variables) {
    static __thread int tls_var;
    unsigned long fs = 0;
    CHECK_EQ(ap(ARCH_GET_FS, (unsigned long)&fs), 0);
    CHECK((uintptr_t)&tls_var < fs);
    CHECK(fs - (uintptr_t)&tls_var < 1 << 20);
}

/* Moves FS somewhere else and back with nothing in between touching TLS (so no errno, no
 * stack protector): raw syscall instructions only. Returns what ARCH_GET_FS saw. */
__attribute__((noinline, optimize("no-stack-protector"))) static unsigned long
fs_swap_and_back(unsigned long orig, unsigned long tmp, long *r1, long *r2, long *r3) {
    unsigned long seen = 0;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(SYS_arch_prctl), "D"(ARCH_SET_FS), "S"(tmp)
                     : "rcx", "r11", "memory");
    *r1 = r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(SYS_arch_prctl), "D"(ARCH_GET_FS), "S"(&seen)
                     : "rcx", "r11", "memory");
    *r2 = r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(SYS_arch_prctl), "D"(ARCH_SET_FS), "S"(orig)
                     : "rcx", "r11", "memory");
    *r3 = r;
    return seen;
}

TEST(set_fs_get_fs_round_trip) {
    unsigned long orig = 0, after = 0;
    long r1 = -1, r2 = -1, r3 = -1;
    CHECK_EQ(ap(ARCH_GET_FS, (unsigned long)&orig), 0);
    unsigned long seen = fs_swap_and_back(orig, 0x12345000UL, &r1, &r2, &r3);
    CHECK_EQ(r1, 0);
    CHECK_EQ(r2, 0);
    CHECK_EQ(r3, 0);
    CHECK_EQ(seen, 0x12345000UL);
    CHECK_EQ(ap(ARCH_GET_FS, (unsigned long)&after), 0);
    CHECK_EQ(after, orig);
    CHECK_EQ(fs_self(), orig);
}

TEST(set_gs_get_gs_round_trip) {
    unsigned long orig = 1, got = 0;
    CHECK_EQ(ap(ARCH_GET_GS, (unsigned long)&orig), 0);
    CHECK_EQ(ap(ARCH_SET_GS, 0x7f0012345000UL), 0);
    CHECK_EQ(ap(ARCH_GET_GS, (unsigned long)&got), 0);
    CHECK_EQ(got, 0x7f0012345000UL);
    CHECK_EQ(ap(ARCH_SET_GS, 0), 0);
    CHECK_EQ(ap(ARCH_GET_GS, (unsigned long)&got), 0);
    CHECK_EQ(got, 0);
    CHECK_EQ(ap(ARCH_SET_GS, orig), 0);
}

/* "EPERM addr is outside the process address space." */
TEST(set_gs_outside_user_space_is_eperm) {
    unsigned long orig = 1, got = 2;
    CHECK_EQ(ap(ARCH_GET_GS, (unsigned long)&orig), 0);
    CHECK_ERR(ap(ARCH_SET_GS, 0x8000000000000000UL), EPERM); /* non-canonical */
    CHECK_ERR(ap(ARCH_SET_GS, 0x0100000000000000UL), EPERM); /* above any user space */
    CHECK_ERR(ap(ARCH_SET_GS, 0xffff800000000000UL), EPERM); /* kernel half */
    CHECK_EQ(ap(ARCH_GET_GS, (unsigned long)&got), 0);
    CHECK_EQ(got, orig);
}

/* The same check for FS (if it were accepted, the next TLS access would crash the case). */
TEST(set_fs_outside_user_space_is_eperm) {
    unsigned long orig = 0, got = 0;
    CHECK_EQ(ap(ARCH_GET_FS, (unsigned long)&orig), 0);
    CHECK_ERR(ap(ARCH_SET_FS, 0x8000000000000000UL), EPERM);
    CHECK_ERR(ap(ARCH_SET_FS, 0xffff800000000000UL), EPERM);
    CHECK_EQ(ap(ARCH_GET_FS, (unsigned long)&got), 0);
    CHECK_EQ(got, orig);
}

/* "EINVAL code is not a valid code." */
TEST(unknown_code_is_einval) {
    unsigned long v;
    CHECK_ERR(ap(0x9999, (unsigned long)&v), EINVAL);
    CHECK_ERR(ap(0, (unsigned long)&v), EINVAL);
    CHECK_ERR(ap(0x1000, (unsigned long)&v), EINVAL);
}

/* "EFAULT addr points to an unmapped address or is outside the process address space." */
TEST(get_bad_pointer_is_efault) {
    CHECK_ERR(ap(ARCH_GET_FS, 1), EFAULT);
    CHECK_ERR(ap(ARCH_GET_GS, 1), EFAULT);
    CHECK_ERR(ap(ARCH_GET_FS, 0), EFAULT);
    CHECK_ERR(ap(ARCH_GET_FS, 0xffff800000000000UL), EFAULT);
}

/* ARCH_GET_CPUID: "Return the setting of the flag ... 1 if the cpuid instruction is enabled
 * (the default)". */
TEST(get_cpuid_returns_one) {
    CHECK_EQ(ap(ARCH_GET_CPUID, 0), 1);
}
