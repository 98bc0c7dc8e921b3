/* rt_sigaction(2), rt_sigprocmask(2) and sigaltstack(2): setting and reading signal
 * dispositions, the signal mask and the alternate signal stack. No signal is ever raised.
 * The raw calls use the kernel's layouts: an 8-byte sigset and struct { handler, flags,
 * restorer, mask }. */
#include "harness.h"

#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct ksa {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

#define SA_RESTORER_ 0x04000000UL
#define BIT(sig) (1ULL << ((sig) - 1))

static long ksigaction(int sig, const struct ksa *act, struct ksa *old, size_t size) {
    return syscall(SYS_rt_sigaction, sig, act, old, size);
}
static long kmask(int how, const uint64_t *set, uint64_t *old, size_t size) {
    return syscall(SYS_rt_sigprocmask, how, set, old, size);
}

static void handler_a(int sig) {
    (void)sig;
}
static void restorer_a(void) {
}
static void info_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)si, (void)uc;
}

TEST(raw_set_get_round_trip) {
    struct ksa act = {(void *)handler_a, SA_RESTORER_ | SA_RESTART | SA_NODEFER,
                      (void *)restorer_a, BIT(SIGUSR2) | BIT(SIGTERM)};
    struct ksa old, got;
    CHECK_EQ(ksigaction(SIGUSR1, &act, &old, 8), 0);
    memset(&got, 0, sizeof got);
    CHECK_EQ(ksigaction(SIGUSR1, NULL, &got, 8), 0);
    CHECK(got.handler == (void *)handler_a);
    CHECK_EQ(got.flags, act.flags);
    CHECK(got.restorer == (void *)restorer_a);
    CHECK_EQ(got.mask, act.mask);
    CHECK_EQ(ksigaction(SIGUSR1, &old, NULL, 8), 0);
}

/* "If oldact is non-NULL, the previous action is saved in oldact" -- in the same call. */
TEST(raw_oldact_returns_previous_in_same_call) {
    struct ksa a = {(void *)handler_a, SA_RESTORER_, (void *)restorer_a, 0};
    struct ksa b = {SIG_IGN, SA_RESTORER_, (void *)restorer_a, BIT(SIGHUP)};
    struct ksa orig, prev;
    CHECK_EQ(ksigaction(SIGUSR2, &a, &orig, 8), 0);
    CHECK_EQ(ksigaction(SIGUSR2, &b, &prev, 8), 0);
    CHECK(prev.handler == (void *)handler_a);
    CHECK_EQ(prev.mask, 0);
    CHECK_EQ(ksigaction(SIGUSR2, &orig, &prev, 8), 0);
    CHECK(prev.handler == SIG_IGN);
    CHECK_EQ(prev.mask, BIT(SIGHUP));
}

TEST(glibc_sigaction_round_trip) {
    struct sigaction act, old, got;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = info_handler;
    act.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, SIGINT);
    CHECK_OK(sigaction(SIGUSR1, &act, &old));
    memset(&got, 0, sizeof got);
    CHECK_OK(sigaction(SIGUSR1, NULL, &got));
    CHECK(got.sa_sigaction == info_handler);
    CHECK(got.sa_flags & SA_SIGINFO);
    CHECK(got.sa_flags & SA_ONSTACK);
    CHECK(sigismember(&got.sa_mask, SIGINT));
    CHECK(!sigismember(&got.sa_mask, SIGTERM));
    CHECK_OK(sigaction(SIGUSR1, &old, NULL));
}

TEST(sig_ign_round_trip) {
    struct ksa act = {SIG_IGN, SA_RESTORER_, (void *)restorer_a, 0}, old, got;
    CHECK_EQ(ksigaction(SIGUSR2, &act, &old, 8), 0);
    CHECK_EQ(ksigaction(SIGUSR2, NULL, &got, 8), 0);
    CHECK(got.handler == SIG_IGN);
    act.handler = SIG_DFL;
    CHECK_EQ(ksigaction(SIGUSR2, &act, NULL, 8), 0);
    CHECK_EQ(ksigaction(SIGUSR2, NULL, &got, 8), 0);
    CHECK(got.handler == SIG_DFL);
    CHECK_EQ(ksigaction(SIGUSR2, &old, NULL, 8), 0);
}

/* "EINVAL An attempt was made to change the action for SIGKILL or SIGSTOP, which cannot be
 * caught or ignored." */
TEST(sigkill_sigstop_cannot_be_changed) {
    struct ksa h = {(void *)handler_a, SA_RESTORER_, (void *)restorer_a, 0};
    struct ksa ign = {SIG_IGN, SA_RESTORER_, (void *)restorer_a, 0};
    struct ksa dfl = {SIG_DFL, SA_RESTORER_, (void *)restorer_a, 0};
    CHECK_ERR(ksigaction(SIGKILL, &h, NULL, 8), EINVAL);
    CHECK_ERR(ksigaction(SIGKILL, &ign, NULL, 8), EINVAL);
    CHECK_ERR(ksigaction(SIGKILL, &dfl, NULL, 8), EINVAL);
    CHECK_ERR(ksigaction(SIGSTOP, &h, NULL, 8), EINVAL);
    CHECK_ERR(ksigaction(SIGSTOP, &ign, NULL, 8), EINVAL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    CHECK_ERR(sigaction(SIGKILL, &sa, NULL), EINVAL);
    CHECK_ERR(sigaction(SIGSTOP, &sa, NULL), EINVAL);
}

/* Only changing is refused: querying SIGKILL's action works and shows SIG_DFL. */
TEST(sigkill_query_is_ok) {
    struct ksa got;
    memset(&got, 0x5a, sizeof got);
    CHECK_EQ(ksigaction(SIGKILL, NULL, &got, 8), 0);
    CHECK(got.handler == SIG_DFL);
    CHECK_EQ(ksigaction(SIGSTOP, NULL, &got, 8), 0);
    CHECK(got.handler == SIG_DFL);
}

/* "EINVAL An invalid signal was specified." Valid numbers are 1..64 (_NSIG). */
TEST(invalid_signal_numbers_are_einval) {
    struct ksa h = {(void *)handler_a, SA_RESTORER_, (void *)restorer_a, 0}, got;
    CHECK_ERR(ksigaction(0, &h, NULL, 8), EINVAL);
    CHECK_ERR(ksigaction(65, &h, NULL, 8), EINVAL);
    CHECK_ERR(ksigaction(-1, &h, NULL, 8), EINVAL);
    /* Even a query-only call. */
    CHECK_ERR(ksigaction(0, NULL, &got, 8), EINVAL);
    CHECK_ERR(ksigaction(65, NULL, &got, 8), EINVAL);
}

TEST(signal_64_is_valid) {
    struct ksa h = {(void *)handler_a, SA_RESTORER_, (void *)restorer_a, BIT(64)}, old, got;
    CHECK_EQ(ksigaction(64, &h, &old, 8), 0);
    CHECK_EQ(ksigaction(64, NULL, &got, 8), 0);
    CHECK(got.handler == (void *)handler_a);
    CHECK_EQ(got.mask, BIT(64));
    CHECK_EQ(ksigaction(64, &old, NULL, 8), 0);
}

/* The sigsetsize argument must be sizeof(kernel sigset_t), 8 on x86-64. */
TEST(sigaction_wrong_sigsetsize_is_einval) {
    struct ksa h = {(void *)handler_a, SA_RESTORER_, (void *)restorer_a, 0}, got;
    CHECK_ERR(ksigaction(SIGUSR1, &h, NULL, 4), EINVAL);
    CHECK_ERR(ksigaction(SIGUSR1, &h, NULL, 16), EINVAL);
    CHECK_ERR(ksigaction(SIGUSR1, NULL, &got, 0), EINVAL);
    CHECK_ERR(ksigaction(SIGUSR1, NULL, &got, 128), EINVAL);
}

/* SIGKILL and SIGSTOP cannot be blocked, so they are dropped from sa_mask. */
TEST(sa_mask_drops_sigkill_and_sigstop) {
    struct ksa act = {(void *)handler_a, SA_RESTORER_, (void *)restorer_a,
                      BIT(SIGKILL) | BIT(SIGSTOP) | BIT(SIGUSR2)};
    struct ksa old, got;
    CHECK_EQ(ksigaction(SIGUSR1, &act, &old, 8), 0);
    CHECK_EQ(ksigaction(SIGUSR1, NULL, &got, 8), 0);
    CHECK_EQ(got.mask, BIT(SIGUSR2));
    CHECK_EQ(ksigaction(SIGUSR1, &old, NULL, 8), 0);
}

/* "If act is NULL, the action is not changed": a query leaves the disposition alone. */
TEST(query_only_does_not_change) {
    struct ksa act = {(void *)handler_a, SA_RESTORER_, (void *)restorer_a, BIT(SIGINT)};
    struct ksa old, q1, q2;
    CHECK_EQ(ksigaction(SIGUSR1, &act, &old, 8), 0);
    CHECK_EQ(ksigaction(SIGUSR1, NULL, &q1, 8), 0);
    CHECK_EQ(ksigaction(SIGUSR1, NULL, &q2, 8), 0);
    CHECK(q2.handler == (void *)handler_a);
    CHECK_EQ(q2.mask, BIT(SIGINT));
    CHECK(memcmp(&q1, &q2, sizeof q1) == 0);
    /* Both NULL is a valid no-op. */
    CHECK_EQ(ksigaction(SIGUSR1, NULL, NULL, 8), 0);
    CHECK_EQ(ksigaction(SIGUSR1, &old, NULL, 8), 0);
}

TEST(sigaction_bad_pointer_is_efault) {
    struct ksa got;
    CHECK_ERR(ksigaction(SIGUSR1, (void *)1, NULL, 8), EFAULT);
    CHECK_ERR(ksigaction(SIGUSR1, NULL, (void *)1, 8), EFAULT);
    /* The failed set did not install anything. */
    CHECK_EQ(ksigaction(SIGUSR1, NULL, &got, 8), 0);
    CHECK(got.handler != (void *)1);
}

/* ---- rt_sigprocmask ---- */

TEST(block_unblock_round_trip) {
    uint64_t orig, set = BIT(SIGUSR1) | BIT(SIGUSR2), now;
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &orig, 8), 0);
    CHECK_EQ(kmask(SIG_BLOCK, &set, NULL, 8), 0);
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &now, 8), 0);
    CHECK_EQ(now, orig | set);
    uint64_t one = BIT(SIGUSR1);
    CHECK_EQ(kmask(SIG_UNBLOCK, &one, NULL, 8), 0);
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &now, 8), 0);
    CHECK_EQ(now, (orig | BIT(SIGUSR2)) & ~BIT(SIGUSR1));
    CHECK_EQ(kmask(SIG_SETMASK, &orig, NULL, 8), 0);
}

TEST(setmask_round_trip_returns_old) {
    uint64_t orig, a = BIT(SIGINT) | BIT(40), b = BIT(SIGHUP), prev, now;
    CHECK_EQ(kmask(SIG_SETMASK, &a, &orig, 8), 0);
    CHECK_EQ(kmask(SIG_SETMASK, &b, &prev, 8), 0);
    CHECK_EQ(prev, a);
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &now, 8), 0);
    CHECK_EQ(now, b);
    CHECK_EQ(kmask(SIG_SETMASK, &orig, &prev, 8), 0);
    CHECK_EQ(prev, b);
}

/* "It is not possible to block SIGKILL or SIGSTOP. Attempts to do so are silently ignored." */
TEST(sigkill_sigstop_silently_not_blocked) {
    uint64_t orig, set = BIT(SIGKILL) | BIT(SIGSTOP) | BIT(SIGUSR1), now;
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &orig, 8), 0);
    CHECK_EQ(kmask(SIG_BLOCK, &set, NULL, 8), 0);
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &now, 8), 0);
    CHECK(now & BIT(SIGUSR1));
    CHECK(!(now & BIT(SIGKILL)));
    CHECK(!(now & BIT(SIGSTOP)));
    uint64_t all = ~0ULL;
    CHECK_EQ(kmask(SIG_SETMASK, &all, NULL, 8), 0);
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &now, 8), 0);
    CHECK_EQ(now, ~(BIT(SIGKILL) | BIT(SIGSTOP)));
    CHECK_EQ(kmask(SIG_SETMASK, &orig, NULL, 8), 0);
}

/* "EINVAL The value specified in how was invalid." The mask is left alone. */
TEST(bad_how_is_einval) {
    uint64_t orig, set = BIT(SIGUSR1), now;
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &orig, 8), 0);
    CHECK_ERR(kmask(3, &set, NULL, 8), EINVAL);
    CHECK_ERR(kmask(-1, &set, NULL, 8), EINVAL);
    CHECK_ERR(kmask(99, &set, NULL, 8), EINVAL);
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &now, 8), 0);
    CHECK_EQ(now, orig);
}

/* With a NULL set, how is not looked at: "If set is NULL, then the signal mask is unchanged
 * (i.e., how is ignored)". */
TEST(null_set_with_bad_how_is_ok) {
    uint64_t a, b;
    CHECK_EQ(kmask(99, NULL, &a, 8), 0);
    CHECK_EQ(kmask(SIG_BLOCK, NULL, &b, 8), 0);
    CHECK_EQ(a, b);
    CHECK_EQ(kmask(99, NULL, NULL, 8), 0);
}

TEST(sigprocmask_wrong_sigsetsize_is_einval) {
    uint64_t set = BIT(SIGUSR1), old;
    CHECK_ERR(kmask(SIG_BLOCK, &set, NULL, 4), EINVAL);
    CHECK_ERR(kmask(SIG_BLOCK, &set, NULL, 16), EINVAL);
    CHECK_ERR(kmask(SIG_BLOCK, NULL, &old, 0), EINVAL);
}

TEST(sigprocmask_bad_pointer_is_efault) {
    uint64_t orig, now;
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &orig, 8), 0);
    CHECK_ERR(kmask(SIG_BLOCK, (void *)1, NULL, 8), EFAULT);
    CHECK_ERR(kmask(SIG_BLOCK, NULL, (void *)1, 8), EFAULT);
    CHECK_EQ(kmask(SIG_SETMASK, NULL, &now, 8), 0);
    CHECK_EQ(now, orig);
}

/* sigaltstack(2). */
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static char altstack[65536] __attribute__((aligned(16)));

/* sigaltstack(new, old) made with the stack pointer at `sp`, as a handler running on the
 * alternate stack would; the raw result (-errno on failure). */
static long sigaltstack_at(void *sp, const stack_t *new, stack_t *old) {
    long ret;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "mov %[sp], %%rsp\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp\n\t"
                     : "=a"(ret)
                     : "0"((long)SYS_sigaltstack), "D"(new), "S"(old), [sp] "r"(sp)
                     : "rcx", "r11", "r12", "memory");
    return ret;
}

/* A new process has none: "SS_DISABLE The alternate signal stack is disabled." */
TEST(altstack_initially_disabled) {
    stack_t old;
    memset(&old, 0xa5, sizeof old);
    CHECK_EQ(sigaltstack(NULL, &old), 0);
    CHECK_EQ(old.ss_flags, SS_DISABLE);
    CHECK_EQ(old.ss_size, 0);
}

TEST(altstack_set_query_disable) {
    stack_t ss = {.ss_sp = altstack, .ss_flags = 0, .ss_size = sizeof altstack};
    stack_t old;
    CHECK_EQ(sigaltstack(&ss, &old), 0);
    CHECK_EQ(old.ss_flags, SS_DISABLE);
    memset(&old, 0xa5, sizeof old);
    CHECK_EQ(sigaltstack(NULL, &old), 0);
    CHECK(old.ss_sp == altstack);
    CHECK_EQ(old.ss_size, sizeof altstack);
    CHECK_EQ(old.ss_flags, 0);
    stack_t off = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
    CHECK_EQ(sigaltstack(&off, &old), 0);
    CHECK(old.ss_sp == altstack);
    CHECK_EQ(sigaltstack(NULL, &old), 0);
    CHECK_EQ(old.ss_flags, SS_DISABLE);
    CHECK_EQ(old.ss_size, 0);
    CHECK(old.ss_sp == NULL);
}

/* "ENOMEM The specified size of the new alternate signal stack ss.ss_size was less than
 * MINSIGSTKSZ." */
TEST(altstack_too_small_is_enomem) {
    stack_t ss = {.ss_sp = altstack, .ss_flags = 0, .ss_size = 2047};
    CHECK_ERR(sigaltstack(&ss, NULL), ENOMEM);
    ss.ss_size = 2048;
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    /* A disabled stack needs no size. */
    stack_t off = {.ss_sp = altstack, .ss_flags = SS_DISABLE, .ss_size = 1};
    CHECK_EQ(sigaltstack(&off, NULL), 0);
}

/* "EINVAL ss is not NULL and the ss_flags field contains a nonzero value other than
 * SS_DISABLE": SS_ONSTACK (ignored) and SS_AUTODISARM are allowed too. */
TEST(altstack_flags) {
    stack_t ss = {.ss_sp = altstack, .ss_flags = 4, .ss_size = sizeof altstack};
    CHECK_ERR(sigaltstack(&ss, NULL), EINVAL);
    ss.ss_flags = SS_ONSTACK | SS_DISABLE;
    CHECK_ERR(sigaltstack(&ss, NULL), EINVAL);
    stack_t old;
    ss.ss_flags = SS_ONSTACK;
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    CHECK_EQ(sigaltstack(NULL, &old), 0);
    CHECK_EQ(old.ss_flags, 0);
    ss.ss_flags = SS_AUTODISARM;
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    CHECK_EQ(sigaltstack(NULL, &old), 0);
    CHECK_EQ((unsigned)old.ss_flags, SS_AUTODISARM);
}

/* While running on the stack, the query says SS_ONSTACK and a change is "EPERM An attempt
 * was made to change the alternate signal stack while it was active" -- unless it was set
 * with SS_AUTODISARM. */
TEST(altstack_in_use_is_eperm) {
    stack_t ss = {.ss_sp = altstack, .ss_flags = 0, .ss_size = sizeof altstack};
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    void *on = altstack + sizeof altstack - 512;
    stack_t old;
    memset(&old, 0xa5, sizeof old);
    CHECK_EQ(sigaltstack_at(on, NULL, &old), 0);
    CHECK_EQ(old.ss_flags, SS_ONSTACK);
    stack_t other = {.ss_sp = altstack, .ss_flags = 0, .ss_size = 8192};
    CHECK_EQ(sigaltstack_at(on, &other, NULL), -EPERM);
    CHECK_EQ(sigaltstack(NULL, &old), 0);
    CHECK_EQ(old.ss_size, sizeof altstack);
    ss.ss_flags = SS_AUTODISARM;
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    CHECK_EQ(sigaltstack_at(on, NULL, &old), 0);
    CHECK_EQ((unsigned)old.ss_flags, SS_AUTODISARM);
    CHECK_EQ(sigaltstack_at(on, &other, NULL), 0);
}

TEST(altstack_bad_pointers_are_efault) {
    stack_t ss = {.ss_sp = altstack, .ss_flags = 0, .ss_size = sizeof altstack};
    CHECK_ERR(syscall(SYS_sigaltstack, (void *)1, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_sigaltstack, NULL, (void *)1), EFAULT);
    /* The new stack is set even when the old one cannot be written back. */
    CHECK_ERR(syscall(SYS_sigaltstack, &ss, (void *)1), EFAULT);
    stack_t old;
    CHECK_EQ(sigaltstack(NULL, &old), 0);
    CHECK(old.ss_sp == altstack);
}

/* "A child created via fork(2) inherits a copy of its parent's alternate signal stack
 * settings." */
TEST(altstack_inherited_by_fork) {
    stack_t ss = {.ss_sp = altstack, .ss_flags = 0, .ss_size = sizeof altstack};
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    pid_t child = fork();
    if (child == 0) {
        stack_t old;
        int ok = sigaltstack(NULL, &old) == 0 && old.ss_sp == altstack &&
                 old.ss_size == sizeof altstack && old.ss_flags == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK(child > 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}
