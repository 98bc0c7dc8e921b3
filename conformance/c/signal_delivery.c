/* Signal delivery (signal(7), sigaction(2), sigreturn(2), kill(2), sigqueue(3)): handlers and
 * what they are given (siginfo, ucontext, mask, stack), the frame the kernel builds and what
 * rt_sigreturn restores from it, pending and queued signals, default actions seen from a
 * parent, waiting for signals, and sending to groups. */
#include "sig.h"

#include <sys/mman.h>
#include <ucontext.h>

/* What the handlers saw. */
static volatile int hits, last_sig, depth, max_depth;
static siginfo_t last_info;
static sigset_t mask_in_handler;
static sigset_t uc_mask_seen;

static void count(int sig) {
    hits++;
    last_sig = sig;
}

static void record(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    hits++;
    last_sig = sig;
    last_info = *si;
    sigprocmask(SIG_BLOCK, NULL, &mask_in_handler);
}

/* ---- which calls deliver, and the siginfo each one produces ---- */

/* A signal a single-threaded process sends itself is delivered before the call returns
 * (POSIX kill(): "at least one pending unblocked signal shall be delivered ... before
 * kill() returns"); raise, tgkill and tkill likewise target the caller's own thread. */
TEST(handler_runs_before_the_sending_call_returns) {
    hits = 0;
    CHECK_OK(on_signal(SIGUSR1, count, 0));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(hits, 1);
    CHECK_EQ(last_sig, SIGUSR1);
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(hits, 2);
    CHECK_EQ(tgkill_(getpid(), gettid_(), SIGUSR1), 0);
    CHECK_EQ(hits, 3);
    CHECK_EQ(syscall(SYS_tkill, gettid_(), SIGUSR1), 0);
    CHECK_EQ(hits, 4);
    CHECK_OK(set_default(SIGUSR1));
}

/* sigaction(2), "siginfo_t": kill(2) fills si_code SI_USER, si_pid and si_uid of the
 * sender. */
TEST(kill_siginfo_is_si_user_with_sender) {
    CHECK_OK(on_siginfo(SIGUSR1, record, 0, NULL));
    memset(&last_info, 0, sizeof last_info);
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(last_info.si_signo, SIGUSR1);
    CHECK_EQ(last_info.si_code, SI_USER);
    CHECK_EQ(last_info.si_pid, getpid());
    CHECK_EQ(last_info.si_uid, getuid());
    CHECK_OK(set_default(SIGUSR1));
}

/* "Signals sent by tkill(2) or tgkill(2)": si_code SI_TKILL, with si_pid and si_uid. */
TEST(tgkill_and_tkill_siginfo_is_si_tkill) {
    CHECK_OK(on_siginfo(SIGUSR2, record, 0, NULL));
    memset(&last_info, 0, sizeof last_info);
    CHECK_EQ(tgkill_(getpid(), gettid_(), SIGUSR2), 0);
    CHECK_EQ(last_info.si_signo, SIGUSR2);
    CHECK_EQ(last_info.si_code, SI_TKILL);
    CHECK_EQ(last_info.si_pid, getpid());
    CHECK_EQ(last_info.si_uid, getuid());
    memset(&last_info, 0, sizeof last_info);
    CHECK_EQ(syscall(SYS_tkill, gettid_(), SIGUSR2), 0);
    CHECK_EQ(last_info.si_code, SI_TKILL);
    CHECK_EQ(last_info.si_pid, getpid());
    CHECK_OK(set_default(SIGUSR2));
}

/* sigqueue(3): si_code SI_QUEUE and the accompanying si_value, all 64 bits of sival_ptr. */
TEST(sigqueue_siginfo_is_si_queue_with_value) {
    CHECK_OK(on_siginfo(SIGUSR1, record, 0, NULL));
    memset(&last_info, 0, sizeof last_info);
    CHECK_OK(sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 1234}));
    CHECK_EQ(last_info.si_signo, SIGUSR1);
    CHECK_EQ(last_info.si_code, SI_QUEUE);
    CHECK_EQ(last_info.si_pid, getpid());
    CHECK_EQ(last_info.si_uid, getuid());
    CHECK_EQ(last_info.si_value.sival_int, 1234);
    void *ptr = (void *)0x123456789abcdefUL;
    CHECK_OK(on_siginfo(SIGRTMIN + 1, record, 0, NULL));
    CHECK_OK(sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_ptr = ptr}));
    CHECK_EQ(last_info.si_signo, SIGRTMIN + 1);
    CHECK(last_info.si_value.sival_ptr == ptr);
    CHECK_OK(set_default(SIGUSR1));
    CHECK_OK(set_default(SIGRTMIN + 1));
}

/* rt_sigqueueinfo(2) queues the caller's siginfo as given (a negative si_code, any si_pid),
 * except si_signo, which is the sig argument. rt_tgsigqueueinfo does the same for a thread. */
TEST(rt_sigqueueinfo_delivers_the_callers_siginfo) {
    CHECK_OK(on_siginfo(SIGUSR2, record, 0, NULL));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = 0;
    si.si_code = SI_QUEUE;
    si.si_pid = 4242;
    si.si_uid = 77;
    si.si_value.sival_int = 99;
    memset(&last_info, 0, sizeof last_info);
    CHECK_EQ(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR2, &si), 0);
    CHECK_EQ(last_info.si_signo, SIGUSR2);
    CHECK_EQ(last_info.si_code, SI_QUEUE);
    CHECK_EQ(last_info.si_pid, 4242);
    CHECK_EQ(last_info.si_uid, 77);
    CHECK_EQ(last_info.si_value.sival_int, 99);
    si.si_code = SI_MESGQ;
    si.si_value.sival_int = 100;
    memset(&last_info, 0, sizeof last_info);
    CHECK_EQ(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid_(), SIGUSR2, &si), 0);
    CHECK_EQ(last_info.si_code, SI_MESGQ);
    CHECK_EQ(last_info.si_value.sival_int, 100);
    CHECK_ERR(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR2, (void *)8), EFAULT);
    CHECK_OK(set_default(SIGUSR2));
}

/* rt_sigqueueinfo(2): "EPERM ... si_code ... is >= 0 or SI_TKILL" when sending to another
 * process: a process cannot forge kernel or kill(2) siginfo for others. */
TEST(rt_sigqueueinfo_nonnegative_code_to_another_process_is_eperm) {
    pid_t pid = fork_quiet();
    if (pid == 0) {
        for (;;) pause();
    }
    CHECK(pid > 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_code = SI_USER;
    CHECK_ERR(syscall(SYS_rt_sigqueueinfo, pid, SIGUSR1, &si), EPERM);
    si.si_code = SI_TKILL;
    CHECK_ERR(syscall(SYS_rt_sigqueueinfo, pid, SIGUSR1, &si), EPERM);
    si.si_code = 1;
    CHECK_ERR(syscall(SYS_rt_sigqueueinfo, pid, SIGUSR1, &si), EPERM);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(term_signal_of(pid), SIGKILL);
}

/* ---- the mask while a handler runs, and the ucontext ---- */

/* sigaction(2): "the signal which triggered the handler will be blocked, unless the
 * SA_NODEFER flag is used", together with sa_mask; the old mask is back afterwards. */
TEST(handler_runs_with_the_signal_and_sa_mask_blocked) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGHUP);
    CHECK_OK(on_siginfo(SIGUSR1, record, 0, &mask));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(sigismember(&mask_in_handler, SIGUSR1));
    CHECK(sigismember(&mask_in_handler, SIGUSR2));
    CHECK(sigismember(&mask_in_handler, SIGHUP));
    CHECK(!sigismember(&mask_in_handler, SIGINT));
    CHECK(!is_blocked(SIGUSR1));
    CHECK(!is_blocked(SIGUSR2));
    CHECK(!is_blocked(SIGHUP));
    CHECK_OK(set_default(SIGUSR1));
}

/* The handler raises its own signal once. */
static void nest(int sig) {
    depth++;
    if (depth > max_depth) max_depth = depth;
    if (hits++ == 0) raise(sig);
    depth--;
}

/* Without SA_NODEFER the signal raised inside its own handler stays pending until the
 * handler returns, and is then delivered: two runs, never nested. */
TEST(signal_raised_in_its_handler_waits_until_it_returns) {
    hits = depth = max_depth = 0;
    CHECK_OK(on_signal(SIGUSR1, nest, 0));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(hits, 2);
    CHECK_EQ(max_depth, 1);
    CHECK_OK(set_default(SIGUSR1));
}

/* "SA_NODEFER Do not add the signal to the thread's signal mask while the handler is
 * executing": the inner delivery nests inside the outer handler. */
TEST(sa_nodefer_lets_the_handler_nest) {
    hits = depth = max_depth = 0;
    CHECK_OK(on_signal(SIGUSR1, nest, SA_NODEFER));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(hits, 2);
    CHECK_EQ(max_depth, 2);
    CHECK_OK(on_siginfo(SIGUSR2, record, SA_NODEFER, NULL));
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK(!sigismember(&mask_in_handler, SIGUSR2));
    CHECK_OK(set_default(SIGUSR1));
    CHECK_OK(set_default(SIGUSR2));
}

static void save_uc_mask(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)si;
    uc_mask_seen = ((ucontext_t *)ctx)->uc_sigmask;
}

/* sigreturn(2): the frame's uc_sigmask holds the mask from before delivery (without the
 * signal being handled). */
TEST(uc_sigmask_is_the_mask_before_delivery) {
    sigset_t orig;
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &orig));
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR2));
    CHECK_OK(on_siginfo(SIGUSR1, save_uc_mask, 0, NULL));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(sigismember(&uc_mask_seen, SIGUSR2));
    CHECK(!sigismember(&uc_mask_seen, SIGUSR1));
    CHECK_OK(sigprocmask(SIG_SETMASK, &orig, NULL));
    CHECK_OK(set_default(SIGUSR1));
}

static void edit_uc_mask(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)si;
    ucontext_t *uc = ctx;
    sigaddset(&uc->uc_sigmask, SIGHUP);
    sigdelset(&uc->uc_sigmask, SIGUSR2);
    sigaddset(&uc->uc_sigmask, SIGKILL);
    sigaddset(&uc->uc_sigmask, SIGSTOP);
}

/* sigreturn(2) restores "the process's signal mask" from the frame, so a handler that edits
 * uc_sigmask changes the mask it returns to; SIGKILL and SIGSTOP still cannot be blocked. */
TEST(uc_sigmask_edited_by_the_handler_is_installed_by_sigreturn) {
    sigset_t orig;
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &orig));
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR2));
    CHECK_OK(on_siginfo(SIGUSR1, edit_uc_mask, 0, NULL));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(is_blocked(SIGHUP));
    CHECK(!is_blocked(SIGUSR2));
    CHECK(!is_blocked(SIGUSR1));
    CHECK(!is_blocked(SIGKILL));
    CHECK(!is_blocked(SIGSTOP));
    CHECK_OK(sigprocmask(SIG_SETMASK, &orig, NULL));
    CHECK_OK(set_default(SIGUSR1));
}

static struct sigaction action_in_handler;
static void query_own_action(int sig) {
    sigaction(sig, NULL, &action_in_handler);
}

/* "SA_RESETHAND Restore the signal action to the default upon entry to the signal
 * handler." */
TEST(sa_resethand_restores_the_default_on_entry) {
    CHECK_OK(on_signal(SIGUSR1, query_own_action, SA_RESETHAND));
    action_in_handler.sa_handler = (void (*)(int))1;
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(action_in_handler.sa_handler == SIG_DFL);
    struct sigaction now;
    CHECK_OK(sigaction(SIGUSR1, NULL, &now));
    CHECK(now.sa_handler == SIG_DFL);
}

/* ---- the frame: registers, FP state, red zone, alignment ---- */

/* regs_probe(pid, sig, r12, out): r12 = the given value, r13 = 0, kill(pid, sig), then
 * r13 = 1 at regs_probe_resume; stores r12 and r13 to out[0..1] at regs_probe_skip and
 * returns rax (kill's result). */
__asm__(".text\n"
        ".globl regs_probe\n"
        ".type regs_probe, @function\n"
        "regs_probe:\n"
        "  push %r12\n"
        "  push %r13\n"
        "  push %r14\n"
        "  mov %rdx, %r12\n"
        "  mov %rcx, %r14\n"
        "  xor %r13d, %r13d\n"
        "  mov $62, %eax\n"
        "  syscall\n"
        ".globl regs_probe_resume\n"
        "regs_probe_resume:\n"
        "  mov $1, %r13\n"
        ".globl regs_probe_skip\n"
        "regs_probe_skip:\n"
        "  mov %r12, 0(%r14)\n"
        "  mov %r13, 8(%r14)\n"
        "  pop %r14\n"
        "  pop %r13\n"
        "  pop %r12\n"
        "  ret\n");
long regs_probe(long pid, long sig, long r12, long out[2]);
extern char regs_probe_resume[], regs_probe_skip[];

static volatile long seen_rip, seen_r12, seen_rax;

static void edit_regs(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)si;
    ucontext_t *uc = ctx;
    seen_rip = uc->uc_mcontext.gregs[REG_RIP];
    seen_r12 = uc->uc_mcontext.gregs[REG_R12];
    seen_rax = uc->uc_mcontext.gregs[REG_RAX];
    uc->uc_mcontext.gregs[REG_R12] = 0x600dcafe;
    uc->uc_mcontext.gregs[REG_RAX] = 1234;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)regs_probe_skip;
}

/* sigreturn(2) restores the registers from the frame: the handler sees where the thread was
 * (rip just after the syscall, r12, rax = the syscall's result) and what it writes there --
 * a new rip that skips an instruction, a new r12, a new return value -- takes effect. */
TEST(mcontext_registers_edited_by_the_handler_take_effect) {
    CHECK_OK(on_siginfo(SIGUSR1, edit_regs, 0, NULL));
    long out[2] = {-1, -1};
    long ret = regs_probe(getpid(), SIGUSR1, 0x12345678, out);
    CHECK(seen_rip == (long)regs_probe_resume);
    CHECK_EQ(seen_r12, 0x12345678);
    CHECK_EQ(seen_rax, 0);
    CHECK_EQ(ret, 1234);
    CHECK_EQ(out[0], 0x600dcafe);
    CHECK_EQ(out[1], 0);
    CHECK_OK(set_default(SIGUSR1));
}

/* keep_probe(pid, sig, out): sets rdx, r8, r9, r10 to known values, kill(pid, sig), stores
 * rdi, rsi, rdx, r8, r9, r10 to out[0..5]. */
__asm__(".text\n"
        ".globl keep_probe\n"
        ".type keep_probe, @function\n"
        "keep_probe:\n"
        "  push %rbx\n"
        "  mov %rdx, %rbx\n"
        "  movabs $0x1111111111111111, %rdx\n"
        "  movabs $0x8888888888888888, %r8\n"
        "  movabs $0x9999999999999999, %r9\n"
        "  movabs $0xaaaaaaaaaaaaaaaa, %r10\n"
        "  mov $62, %eax\n"
        "  syscall\n"
        "  mov %rdi, 0(%rbx)\n"
        "  mov %rsi, 8(%rbx)\n"
        "  mov %rdx, 16(%rbx)\n"
        "  mov %r8, 24(%rbx)\n"
        "  mov %r9, 32(%rbx)\n"
        "  mov %r10, 40(%rbx)\n"
        "  pop %rbx\n"
        "  ret\n");
void keep_probe(long pid, long sig, long out[6]);

static void clobber_regs(int sig) {
    (void)sig;
    hits++;
    __asm__ volatile("mov $-1, %%rdi\n\tmov $-1, %%rsi\n\tmov $-1, %%rdx\n\t"
                     "mov $-1, %%r8\n\tmov $-1, %%r9\n\tmov $-1, %%r10"
                     :
                     :
                     : "rdi", "rsi", "rdx", "r8", "r9", "r10");
}

/* Registers a handler clobbers (all of them call-clobbered in the C ABI) are back after
 * sigreturn: the interrupted code never sees the handler. */
TEST(handler_does_not_disturb_the_interrupted_registers) {
    CHECK_OK(on_signal(SIGUSR1, clobber_regs, 0));
    long out[6];
    memset(out, 0, sizeof out);
    hits = 0;
    keep_probe(getpid(), SIGUSR1, out);
    CHECK_EQ(hits, 1);
    CHECK_EQ(out[0], getpid());
    CHECK_EQ(out[1], SIGUSR1);
    CHECK(out[2] == (long)0x1111111111111111UL);
    CHECK(out[3] == (long)0x8888888888888888UL);
    CHECK(out[4] == (long)0x9999999999999999UL);
    CHECK(out[5] == (long)0xaaaaaaaaaaaaaaaaUL);
    CHECK_OK(set_default(SIGUSR1));
}

/* fp_probe(pid, sig, in, out): loads MXCSR, the x87 control word, xmm8 and xmm15 and st(0)
 * from `in`, kill(pid, sig), stores them to `out`. */
struct fp_in {
    uint8_t xmm[16];
    double st0;
    uint32_t mxcsr;
    uint16_t fcw;
};
struct fp_out {
    uint8_t xmm8[16];
    uint8_t xmm15[16];
    double st0;
    uint32_t mxcsr;
    uint16_t fcw;
};
__asm__(".text\n"
        ".globl fp_probe\n"
        ".type fp_probe, @function\n"
        "fp_probe:\n"
        "  push %r12\n"
        "  mov %rcx, %r12\n"
        "  ldmxcsr 24(%rdx)\n"
        "  fldcw 28(%rdx)\n"
        "  movdqu (%rdx), %xmm8\n"
        "  movdqu (%rdx), %xmm15\n"
        "  fldl 16(%rdx)\n"
        "  mov $62, %eax\n"
        "  syscall\n"
        "  movdqu %xmm8, 0(%r12)\n"
        "  movdqu %xmm15, 16(%r12)\n"
        "  fstpl 32(%r12)\n"
        "  stmxcsr 40(%r12)\n"
        "  fnstcw 44(%r12)\n"
        "  pop %r12\n"
        "  ret\n");
void fp_probe(long pid, long sig, const struct fp_in *in, struct fp_out *out);

static void fp_defaults(void) {
    uint32_t mxcsr = 0x1f80;
    uint16_t fcw = 0x37f;
    __asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(fcw));
}

static volatile uint32_t entry_mxcsr, frame_mxcsr;
static volatile uint16_t entry_fcw, frame_fcw;
static volatile uint32_t frame_xmm8[4];
static volatile int fpregs_present;

static void clobber_fp(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)si;
    hits++;
    uint32_t mx;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mx), "=m"(cw));
    entry_mxcsr = mx;
    entry_fcw = cw;
    ucontext_t *uc = ctx;
    fpregs_present = uc->uc_mcontext.fpregs != NULL;
    if (fpregs_present) {
        frame_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
        frame_fcw = uc->uc_mcontext.fpregs->cwd;
        for (int i = 0; i < 4; i++) frame_xmm8[i] = uc->uc_mcontext.fpregs->_xmm[8].element[i];
    }
    uint32_t other_mx = 0x3f80;
    uint16_t other_cw = 0x0c7f;
    __asm__ volatile("pxor %%xmm8, %%xmm8\n\t"
                     "pcmpeqd %%xmm15, %%xmm15\n\t"
                     "ldmxcsr %0\n\t"
                     "fninit\n\t"
                     "fldcw %1\n\t"
                     "fld1\n\t"
                     "fldz\n\t"
                     "fstp %%st(0)\n\t"
                     "fstp %%st(0)\n\t"
                     :
                     : "m"(other_mx), "m"(other_cw)
                     : "xmm8", "xmm15");
}

static const struct fp_in fp_pattern = {
    .xmm = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
    .st0 = 2.718281828,
    .mxcsr = 0x7f80, /* round toward zero */
    .fcw = 0x027f,   /* 53-bit precision */
};

/* The FP/SSE state is part of the signal frame: xmm registers, st(0), MXCSR and the x87
 * control word are what they were, whatever the handler did with them. */
TEST(fp_and_sse_state_survive_a_handler_that_clobbers_them) {
    CHECK_OK(on_siginfo(SIGUSR1, clobber_fp, 0, NULL));
    struct fp_out out;
    memset(&out, 0, sizeof out);
    hits = 0;
    fp_probe(getpid(), SIGUSR1, &fp_pattern, &out);
    fp_defaults();
    CHECK_EQ(hits, 1);
    CHECK(memcmp(out.xmm8, fp_pattern.xmm, 16) == 0);
    CHECK(memcmp(out.xmm15, fp_pattern.xmm, 16) == 0);
    CHECK(out.st0 == fp_pattern.st0);
    CHECK_EQ(out.mxcsr, fp_pattern.mxcsr);
    CHECK_EQ(out.fcw, fp_pattern.fcw);
    CHECK_OK(set_default(SIGUSR1));
}

/* The handler starts with a clean FP state (Linux resets it on delivery: MXCSR 0x1f80, x87
 * control word 0x37f), and uc_mcontext.fpregs holds the interrupted thread's. */
TEST(handler_starts_with_default_fp_state_and_sees_the_old_one_in_fpregs) {
    CHECK_OK(on_siginfo(SIGUSR1, clobber_fp, 0, NULL));
    struct fp_out out;
    fp_probe(getpid(), SIGUSR1, &fp_pattern, &out);
    fp_defaults();
    CHECK_EQ(entry_mxcsr, 0x1f80);
    CHECK_EQ(entry_fcw, 0x37f);
    CHECK(fpregs_present);
    CHECK_EQ(frame_mxcsr, fp_pattern.mxcsr);
    CHECK_EQ(frame_fcw, fp_pattern.fcw);
    CHECK(memcmp((const void *)frame_xmm8, fp_pattern.xmm, 16) == 0);
    CHECK_OK(set_default(SIGUSR1));
}

static void edit_fpregs(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)si;
    ucontext_t *uc = ctx;
    if (!uc->uc_mcontext.fpregs) return;
    for (int i = 0; i < 4; i++) uc->uc_mcontext.fpregs->_xmm[8].element[i] = 0xfeed0000 + i;
    uc->uc_mcontext.fpregs->mxcsr = 0x5f80; /* round up */
}

/* And what the handler writes into fpregs is what sigreturn loads. */
TEST(fpregs_edited_by_the_handler_take_effect) {
    CHECK_OK(on_siginfo(SIGUSR1, edit_fpregs, 0, NULL));
    struct fp_out out;
    memset(&out, 0, sizeof out);
    fp_probe(getpid(), SIGUSR1, &fp_pattern, &out);
    fp_defaults();
    uint32_t want[4] = {0xfeed0000, 0xfeed0001, 0xfeed0002, 0xfeed0003};
    CHECK(memcmp(out.xmm8, want, 16) == 0);
    CHECK(memcmp(out.xmm15, fp_pattern.xmm, 16) == 0);
    CHECK_EQ(out.mxcsr, 0x5f80);
    CHECK_OK(set_default(SIGUSR1));
}

/* redzone_probe(pid, sig): fills the 128 bytes below rsp, kill(pid, sig), returns how many
 * of the 16 words changed. */
__asm__(".text\n"
        ".globl redzone_probe\n"
        ".type redzone_probe, @function\n"
        "redzone_probe:\n"
        "  movabs $0x5a5a5a5a00000000, %rax\n"
        "  lea -128(%rsp), %rdx\n"
        "  mov $16, %ecx\n"
        "1:\n"
        "  mov %rax, (%rdx)\n"
        "  add $1, %rax\n"
        "  add $8, %rdx\n"
        "  dec %ecx\n"
        "  jnz 1b\n"
        "  mov $62, %eax\n"
        "  syscall\n"
        "  movabs $0x5a5a5a5a00000000, %rax\n"
        "  lea -128(%rsp), %rdx\n"
        "  mov $16, %ecx\n"
        "  xor %r8d, %r8d\n"
        "2:\n"
        "  cmp %rax, (%rdx)\n"
        "  je 3f\n"
        "  inc %r8\n"
        "3:\n"
        "  add $1, %rax\n"
        "  add $8, %rdx\n"
        "  dec %ecx\n"
        "  jnz 2b\n"
        "  mov %r8, %rax\n"
        "  ret\n");
long redzone_probe(long pid, long sig);

static void scribble(int sig) {
    hits++;
    volatile char buf[1024];
    for (unsigned i = 0; i < sizeof buf; i++) buf[i] = (char)(i + sig);
}

/* The x86-64 ABI's red zone: the frame is built below rsp - 128, so leaf code's scratch
 * space survives a signal. */
TEST(red_zone_is_not_clobbered_by_the_frame) {
    hits = 0;
    CHECK_OK(on_signal(SIGUSR1, scribble, 0));
    CHECK_EQ(redzone_probe(getpid(), SIGUSR1), 0);
    CHECK_OK(on_siginfo(SIGUSR2, record, 0, NULL));
    CHECK_EQ(redzone_probe(getpid(), SIGUSR2), 0);
    CHECK_EQ(hits, 2);
    CHECK_OK(set_default(SIGUSR1));
    CHECK_OK(set_default(SIGUSR2));
}

/* align_handler: records its entry rsp. misaligned_kill(pid, sig, n): kill(pid, sig) with
 * rsp lowered by n bytes. */
__attribute__((used)) volatile unsigned long align_rsp;
__asm__(".text\n"
        ".globl align_handler\n"
        ".type align_handler, @function\n"
        "align_handler:\n"
        "  mov %rsp, align_rsp(%rip)\n"
        "  ret\n"
        ".globl misaligned_kill\n"
        ".type misaligned_kill, @function\n"
        "misaligned_kill:\n"
        "  mov %rsp, %r8\n"
        "  sub %rdx, %rsp\n"
        "  mov $62, %eax\n"
        "  syscall\n"
        "  mov %r8, %rsp\n"
        "  ret\n");
void align_handler(int);
long misaligned_kill(long pid, long sig, long n);

static char altstack[65536] __attribute__((aligned(16)));

static int on_alt(uintptr_t p) {
    return p >= (uintptr_t)altstack && p < (uintptr_t)altstack + sizeof altstack;
}

/* The x86-64 ABI wants (rsp + 8) % 16 == 0 at function entry, and Linux builds the frame
 * so that the handler starts that way, whatever rsp the thread had. */
TEST(handler_entry_stack_is_abi_aligned) {
    CHECK_OK(on_signal(SIGUSR1, align_handler, 0));
    for (long n = 0; n < 16; n++) {
        align_rsp = 1;
        CHECK_EQ(misaligned_kill(getpid(), SIGUSR1, n), 0);
        CHECK_EQ((align_rsp + 8) % 16, 0);
    }
    CHECK_OK(on_siginfo(SIGUSR1, (void (*)(int, siginfo_t *, void *))align_handler, 0, NULL));
    align_rsp = 1;
    CHECK_EQ(misaligned_kill(getpid(), SIGUSR1, 3), 0);
    CHECK_EQ((align_rsp + 8) % 16, 0);
    /* On an alternate stack whose top is misaligned too. */
    stack_t ss = {.ss_sp = altstack + 5, .ss_flags = 0, .ss_size = sizeof altstack - 16};
    CHECK_OK(sigaltstack(&ss, NULL));
    CHECK_OK(on_signal(SIGUSR1, align_handler, SA_ONSTACK));
    align_rsp = 1;
    CHECK_EQ(misaligned_kill(getpid(), SIGUSR1, 0), 0);
    CHECK(on_alt(align_rsp));
    CHECK_EQ((align_rsp + 8) % 16, 0);
    stack_t off = {.ss_flags = SS_DISABLE};
    CHECK_OK(sigaltstack(&off, NULL));
    CHECK_OK(set_default(SIGUSR1));
}

/* ---- the alternate signal stack ---- */

static volatile uintptr_t local_at[2];
static volatile int altflags_in[2];
static stack_t uc_stack_seen;

static void where_am_i(int sig, siginfo_t *si, void *ctx) {
    (void)si;
    volatile int local = 0;
    int i = sig == SIGUSR1 ? 0 : 1;
    local_at[i] = (uintptr_t)&local;
    stack_t now;
    sigaltstack(NULL, &now);
    altflags_in[i] = now.ss_flags;
    if (i == 0) uc_stack_seen = ((ucontext_t *)ctx)->uc_stack;
    if (i == 0 && hits++ == 0) raise(SIGUSR2);
}

static int use_altstack(int flags) {
    stack_t ss = {.ss_sp = altstack, .ss_flags = flags, .ss_size = sizeof altstack};
    return sigaltstack(&ss, NULL);
}

static void no_altstack(void) {
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
}

/* sigaltstack(2): a handler established with SA_ONSTACK runs on the alternate stack, where
 * sigaltstack reports SS_ONSTACK; the frame's uc_stack describes the alternate stack. */
TEST(sa_onstack_handler_runs_on_the_alternate_stack) {
    CHECK_OK(use_altstack(0));
    CHECK_OK(on_siginfo(SIGUSR1, where_am_i, SA_ONSTACK, NULL));
    CHECK_OK(on_siginfo(SIGUSR2, where_am_i, SA_ONSTACK, NULL));
    hits = 1; /* no nested raise */
    local_at[0] = 0;
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(on_alt(local_at[0]));
    CHECK_EQ(altflags_in[0], SS_ONSTACK);
    CHECK(uc_stack_seen.ss_sp == altstack);
    CHECK_EQ(uc_stack_seen.ss_size, sizeof altstack);
    stack_t now;
    CHECK_OK(sigaltstack(NULL, &now));
    CHECK_EQ(now.ss_flags, 0);
    no_altstack();
    CHECK_OK(set_default(SIGUSR1));
    CHECK_OK(set_default(SIGUSR2));
}

/* Without SA_ONSTACK the handler runs on the thread's normal stack. */
TEST(handler_without_sa_onstack_uses_the_normal_stack) {
    CHECK_OK(use_altstack(0));
    CHECK_OK(on_siginfo(SIGUSR1, where_am_i, 0, NULL));
    hits = 1;
    local_at[0] = 0;
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(local_at[0] != 0);
    CHECK(!on_alt(local_at[0]));
    CHECK_EQ(altflags_in[0], 0);
    no_altstack();
    CHECK_OK(set_default(SIGUSR1));
}

/* A signal delivered while already on the alternate stack is stacked below the current
 * frame on the same stack, not at its top again. */
TEST(nested_signal_stays_on_the_alternate_stack) {
    CHECK_OK(use_altstack(0));
    CHECK_OK(on_siginfo(SIGUSR1, where_am_i, SA_ONSTACK, NULL));
    CHECK_OK(on_siginfo(SIGUSR2, where_am_i, SA_ONSTACK, NULL));
    hits = 0;
    local_at[0] = local_at[1] = 0;
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(on_alt(local_at[0]));
    CHECK(on_alt(local_at[1]));
    CHECK(local_at[1] < local_at[0]);
    CHECK_EQ(altflags_in[1], SS_ONSTACK);
    no_altstack();
    CHECK_OK(set_default(SIGUSR1));
    CHECK_OK(set_default(SIGUSR2));
}

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

/* "SS_AUTODISARM Clear the alternate signal stack settings on entry to the signal handler.
 * When the signal handler returns, the previous alternate signal stack settings are
 * restored." */
TEST(ss_autodisarm_clears_the_stack_while_the_handler_runs) {
    CHECK_OK(use_altstack(SS_AUTODISARM));
    CHECK_OK(on_siginfo(SIGUSR1, where_am_i, SA_ONSTACK, NULL));
    hits = 1;
    local_at[0] = 0;
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(on_alt(local_at[0]));
    CHECK_EQ(altflags_in[0], SS_DISABLE);
    stack_t now;
    CHECK_OK(sigaltstack(NULL, &now));
    CHECK(now.ss_sp == altstack);
    CHECK_EQ(now.ss_size, sizeof altstack);
    CHECK_EQ((unsigned)now.ss_flags, SS_AUTODISARM);
    no_altstack();
    CHECK_OK(set_default(SIGUSR1));
}

/* ---- pending signals ---- */

/* A blocked signal stays pending (sigpending(2)) and is delivered when unblocked, before
 * sigprocmask returns. */
TEST(blocked_signal_is_pending_and_delivered_on_unblock) {
    hits = 0;
    CHECK_OK(on_signal(SIGUSR1, count, 0));
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(hits, 0);
    CHECK(is_pending(SIGUSR1));
    CHECK(!is_pending(SIGUSR2));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_EQ(hits, 1);
    CHECK(!is_pending(SIGUSR1));
    CHECK_OK(set_default(SIGUSR1));
}

/* signal(7): "If multiple instances of a standard signal are delivered while that signal is
 * currently blocked, then only one instance is queued." A thread's pending set and its
 * process's shared one ("A signal may be process-directed or thread-directed") coalesce
 * separately: one kill and one tgkill give two deliveries. */
TEST(standard_signals_coalesce_while_blocked) {
    hits = 0;
    CHECK_OK(on_signal(SIGUSR1, count, 0));
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    for (int i = 0; i < 3; i++) CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_OK(sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 1}));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_EQ(hits, 1);
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    for (int i = 0; i < 3; i++) CHECK_EQ(tgkill_(getpid(), gettid_(), SIGUSR1), 0);
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_EQ(hits, 2);
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(tgkill_(getpid(), gettid_(), SIGUSR1), 0);
        CHECK_OK(kill(getpid(), SIGUSR1));
    }
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_EQ(hits, 4);
    CHECK_OK(set_default(SIGUSR1));
}

/* "Multiple instances of real-time signals can be queued." */
TEST(realtime_signals_queue_every_instance) {
    hits = 0;
    int sig = SIGRTMIN + 2;
    CHECK_OK(on_signal(sig, count, 0));
    CHECK_OK(mask_one(SIG_BLOCK, sig));
    for (int i = 0; i < 3; i++) CHECK_EQ(raise(sig), 0);
    CHECK_OK(kill(getpid(), sig));
    CHECK_EQ(hits, 0);
    CHECK_OK(mask_one(SIG_UNBLOCK, sig));
    CHECK_EQ(hits, 4);
    CHECK_OK(set_default(sig));
}

/* Queue a mix while blocked: rt+2 (1), rt (2), SIGUSR1, rt+1 (3), rt (4). */
static int queue_mix(void) {
    int r = 0;
    r |= sigqueue(getpid(), SIGRTMIN + 2, (union sigval){.sival_int = 1});
    r |= sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 2});
    r |= sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 0});
    r |= sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = 3});
    r |= sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 4});
    return r;
}

static void mix_set(sigset_t *s) {
    sigemptyset(s);
    sigaddset(s, SIGUSR1);
    sigaddset(s, SIGRTMIN);
    sigaddset(s, SIGRTMIN + 1);
    sigaddset(s, SIGRTMIN + 2);
}

/* signal(7): "Real-time signals are delivered in a guaranteed order. Multiple real-time
 * signals of the same type are delivered in the order they were sent. If different
 * real-time signals are sent to a process, they are delivered starting with the
 * lowest-numbered signal"; and Linux "gives priority to standard signals". */
TEST(sigwaitinfo_takes_signals_lowest_first_and_rt_in_order_sent) {
    sigset_t set, orig;
    mix_set(&set);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, &orig));
    CHECK_EQ(queue_mix(), 0);
    int want_sig[5] = {SIGUSR1, SIGRTMIN, SIGRTMIN, SIGRTMIN + 1, SIGRTMIN + 2};
    int want_val[5] = {0, 2, 4, 3, 1};
    for (int i = 0; i < 5; i++) {
        siginfo_t si;
        CHECK_EQ(sigwaitinfo(&set, &si), want_sig[i]);
        CHECK_EQ(si.si_value.sival_int, want_val[i]);
    }
    struct timespec zero = {0, 0};
    CHECK_ERR(sigtimedwait(&set, NULL, &zero), EAGAIN);
    CHECK_OK(sigprocmask(SIG_SETMASK, &orig, NULL));
}

static volatile int order_sig[8], order_val[8], norder;
static void log_order(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    if (norder < 8) {
        order_sig[norder] = sig;
        order_val[norder] = si->si_value.sival_int;
        norder++;
    }
}

/* The same order for handlers. Each handler blocks all signals (sa_mask), so each runs
 * alone and the order of runs is the order of delivery. */
TEST(handlers_run_lowest_first_and_rt_in_order_sent) {
    sigset_t set, orig, all;
    mix_set(&set);
    sigfillset(&all);
    CHECK_OK(on_siginfo(SIGUSR1, log_order, 0, &all));
    CHECK_OK(on_siginfo(SIGRTMIN, log_order, 0, &all));
    CHECK_OK(on_siginfo(SIGRTMIN + 1, log_order, 0, &all));
    CHECK_OK(on_siginfo(SIGRTMIN + 2, log_order, 0, &all));
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, &orig));
    CHECK_EQ(queue_mix(), 0);
    norder = 0;
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
    CHECK_EQ(norder, 5);
    int want_sig[5] = {SIGUSR1, SIGRTMIN, SIGRTMIN, SIGRTMIN + 1, SIGRTMIN + 2};
    int want_val[5] = {0, 2, 4, 3, 1};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(order_sig[i], want_sig[i]);
        CHECK_EQ(order_val[i], want_val[i]);
    }
    CHECK_OK(sigprocmask(SIG_SETMASK, &orig, NULL));
    set_default(SIGUSR1);
    set_default(SIGRTMIN);
    set_default(SIGRTMIN + 1);
    set_default(SIGRTMIN + 2);
}

/* getrlimit(2), RLIMIT_SIGPENDING: "the limit is enforced only for sigqueue(3); it is always
 * possible to use kill(2) to queue one instance of any of the signals that are not already
 * queued". sigqueue(3): "EAGAIN The limit of signals which may be queued has been
 * reached." */
/* The body of sigqueue_beyond_rlimit_sigpending_is_eagain, in a child: 0 or the step that
 * failed. */
static int sigpending_limit_child(void) {
    /* The count is per real user: a user of our own has no other process's signals. */
    if (geteuid() == 0) {
        uid_t fresh = 200000 + getpid() % 100000;
        if (setresuid(fresh, fresh, fresh)) return 1;
    }
    struct rlimit lim;
    if (getrlimit(RLIMIT_SIGPENDING, &lim)) return 2;
    lim.rlim_cur = 2;
    if (setrlimit(RLIMIT_SIGPENDING, &lim)) return 3;
    int sig = SIGRTMIN + 3, other = SIGRTMIN + 4;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigaddset(&set, other);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (sigqueue(getpid(), sig, (union sigval){.sival_int = 1})) return 4;
    if (sigqueue(getpid(), sig, (union sigval){.sival_int = 2})) return 5;
    errno = 0;
    if (sigqueue(getpid(), sig, (union sigval){.sival_int = 3}) != -1 || errno != EAGAIN)
        return 6;
    if (kill(getpid(), other)) return 7;
    if (!is_pending(other)) return 8;
    struct timespec zero = {0, 0};
    int got = 0;
    sigdelset(&set, other);
    while (sigtimedwait(&set, NULL, &zero) == sig) got++;
    if (got != 2) return 9;
    if (!is_pending(other)) return 10;
    return 0;
}

/* getrlimit(2), RLIMIT_SIGPENDING: "the limit is enforced only for sigqueue(3); it is always
 * possible to use kill(2) to queue one instance of any of the signals that are not already
 * queued". sigqueue(3): "EAGAIN The limit of signals which may be queued has been
 * reached." */
TEST(sigqueue_beyond_rlimit_sigpending_is_eagain) {
    pid_t pid = fork_quiet();
    if (pid == 0) _exit(sigpending_limit_child());
    CHECK_EQ(exit_code_of(pid), 0);
}

/* signal(7): "SIGKILL and SIGSTOP cannot be caught, blocked, or ignored" -- a child that
 * blocks everything is still stopped, continued and killed. */
TEST(sigstop_and_sigkill_act_even_when_everything_is_blocked) {
    int p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork_quiet();
    if (pid == 0) {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < 32; s++)
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_IGN);
        write_byte(p[1], 'r');
        for (;;) pause();
    }
    close(p[1]);
    CHECK_EQ(read_byte_within(p[0], BOUND_MS), 'r');
    close(p[0]);
    int status = 0;
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_EQ(waitpid_within(pid, &status, WUNTRACED, BOUND_MS), pid);
    CHECK(WIFSTOPPED(status));
    CHECK_EQ(WSTOPSIG(status), SIGSTOP);
    CHECK_OK(kill(pid, SIGCONT));
    CHECK_EQ(waitpid_within(pid, &status, WCONTINUED, BOUND_MS), pid);
    CHECK(WIFCONTINUED(status));
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(term_signal_of(pid), SIGKILL);
}

/* ---- default actions, seen from the parent ---- */

/* A child with default dispositions and nothing blocked, ready (it said so) and idle. */
static pid_t idle_child(void) {
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork_quiet();
    if (pid == 0) {
        close(p[0]);
        /* The raw call: glibc's refuses signals 32 and 33, which the runner may have left
         * ignored (an ignored disposition survives execve). */
        struct {
            void *handler;
            unsigned long flags;
            void *restorer;
            uint64_t mask;
        } dfl = {SIG_DFL, 0, NULL, 0};
        for (int s = 1; s < 65; s++)
            if (s != SIGKILL && s != SIGSTOP) syscall(SYS_rt_sigaction, s, &dfl, NULL, 8);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        write_byte(p[1], 'r');
        for (;;) pause();
    }
    close(p[1]);
    int c = pid > 0 ? read_byte_within(p[0], BOUND_MS) : -1;
    close(p[0]);
    if (c != 'r') {
        if (pid > 0) {
            kill(pid, SIGKILL);
            reap(pid);
        }
        return -1;
    }
    return pid;
}

/* signal(7), "Term: Default action is to terminate the process": the parent sees
 * WIFSIGNALED with the signal in WTERMSIG. Signals 32..64 (real-time) terminate too. */
TEST(default_action_term_terminates) {
    int sigs[] = {SIGHUP,  SIGINT,    SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2,
                  SIGPOLL, SIGVTALRM, SIGPROF, SIGPWR,  SIGSTKFLT, 32,    SIGRTMIN, 64};
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        pid_t pid = idle_child();
        CHECK(pid > 0);
        CHECK_OK(kill(pid, sigs[i]));
        CHECK_EQ(term_signal_of(pid), sigs[i]);
    }
}

/* "Core: Default action is to terminate the process and dump core" (no core here: the child
 * is not dumpable, so WCOREDUMP is not looked at). */
TEST(default_action_core_terminates) {
    int sigs[] = {SIGQUIT, SIGILL,  SIGTRAP, SIGABRT, SIGBUS,
                  SIGFPE,  SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS};
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        pid_t pid = idle_child();
        CHECK(pid > 0);
        CHECK_OK(kill(pid, sigs[i]));
        CHECK_EQ(term_signal_of(pid), sigs[i]);
    }
}

/* "Ign: Default action is to ignore the signal": SIGCHLD, SIGURG, SIGWINCH (and SIGCONT,
 * whose action on a running process is nothing). Nothing is left pending. */
TEST(default_action_ign_ignores) {
    int sigs[] = {SIGCHLD, SIGURG, SIGWINCH, SIGCONT};
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        CHECK_OK(set_default(sigs[i]));
        CHECK_EQ(raise(sigs[i]), 0);
        CHECK_OK(kill(getpid(), sigs[i]));
        CHECK(!is_pending(sigs[i]));
    }
    /* And a child that gets them keeps running. */
    pid_t pid = idle_child();
    CHECK(pid > 0);
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) CHECK_OK(kill(pid, sigs[i]));
    int status;
    CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(term_signal_of(pid), SIGKILL);
}

static int cont_fd = -1;
static void say_c(int sig) {
    (void)sig;
    write_byte(cont_fd, 'c');
}

/* "Stop: Default action is to stop the process"; "Cont: ... continue the process if it is
 * currently stopped". wait(2): WUNTRACED reports the stop once, WCONTINUED the resumption;
 * a SIGCONT handler runs when the process continues. */
TEST(sigstop_stops_and_sigcont_continues) {
    int p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork_quiet();
    if (pid == 0) {
        close(p[0]);
        cont_fd = p[1];
        on_signal(SIGCONT, say_c, SA_RESTART);
        write_byte(p[1], 'r');
        for (;;) pause();
    }
    close(p[1]);
    CHECK_EQ(read_byte_within(p[0], BOUND_MS), 'r');
    int status = 0;
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_EQ(waitpid_within(pid, &status, WUNTRACED, BOUND_MS), pid);
    CHECK(WIFSTOPPED(status));
    CHECK_EQ(WSTOPSIG(status), SIGSTOP);
    CHECK_EQ(waitpid(pid, &status, WUNTRACED | WNOHANG), 0);
    /* Without WUNTRACED a stopped child is not reported at all. */
    CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
    CHECK_OK(kill(pid, SIGCONT));
    CHECK_EQ(waitpid_within(pid, &status, WCONTINUED, BOUND_MS), pid);
    CHECK(WIFCONTINUED(status));
    CHECK_EQ(read_byte_within(p[0], BOUND_MS), 'c');
    close(p[0]);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(term_signal_of(pid), SIGKILL);
}

/* SIGTSTP, SIGTTIN and SIGTTOU stop too. (The child leads its own process group, whose
 * parent is in another group of the same session, so the group is not orphaned: signal(7)
 * has stop signals to orphaned groups discarded.) A stopped process is killed by SIGKILL. */
TEST(sigtstp_sigttin_sigttou_stop) {
    int sigs[] = {SIGTSTP, SIGTTIN, SIGTTOU};
    for (unsigned i = 0; i < 3; i++) {
        int p[2];
        CHECK_OK(pipe(p));
        pid_t pid = fork_quiet();
        if (pid == 0) {
            setpgid(0, 0);
            signal(sigs[i], SIG_DFL);
            write_byte(p[1], 'r');
            for (;;) pause();
        }
        close(p[1]);
        CHECK_EQ(read_byte_within(p[0], BOUND_MS), 'r');
        close(p[0]);
        int status = 0;
        CHECK_OK(kill(pid, sigs[i]));
        CHECK_EQ(waitpid_within(pid, &status, WUNTRACED, BOUND_MS), pid);
        CHECK(WIFSTOPPED(status));
        CHECK_EQ(WSTOPSIG(status), sigs[i]);
        CHECK_OK(kill(pid, SIGKILL));
        CHECK_EQ(term_signal_of(pid), SIGKILL);
    }
}

/* waitid(2): WSTOPPED reports si_code CLD_STOPPED with the stop signal in si_status;
 * WCONTINUED reports CLD_CONTINUED with SIGCONT. */
TEST(waitid_reports_cld_stopped_and_cld_continued) {
    pid_t pid = idle_child();
    CHECK(pid > 0);
    siginfo_t si;
    CHECK_OK(kill(pid, SIGSTOP));
    long waited = 0;
    do {
        memset(&si, 0, sizeof si);
        CHECK_OK(waitid(P_PID, pid, &si, WSTOPPED | WNOHANG));
        if (si.si_pid == 0) msleep(1);
    } while (si.si_pid == 0 && ++waited < BOUND_MS);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_signo, SIGCHLD);
    CHECK_EQ(si.si_code, CLD_STOPPED);
    CHECK_EQ(si.si_status, SIGSTOP);
    CHECK_EQ(si.si_uid, getuid());
    CHECK_OK(kill(pid, SIGCONT));
    waited = 0;
    do {
        memset(&si, 0, sizeof si);
        CHECK_OK(waitid(P_PID, pid, &si, WCONTINUED | WNOHANG));
        if (si.si_pid == 0) msleep(1);
    } while (si.si_pid == 0 && ++waited < BOUND_MS);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_code, CLD_CONTINUED);
    CHECK_EQ(si.si_status, SIGCONT);
    CHECK_OK(kill(pid, SIGKILL));
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED));
    CHECK_EQ(si.si_code, CLD_KILLED);
    CHECK_EQ(si.si_status, SIGKILL);
}

/* The parent gets SIGCHLD when a child exits, with CLD_EXITED and the exit status, or
 * CLD_KILLED and the signal. */
TEST(child_exit_sends_sigchld_with_its_status) {
    sigset_t set, orig;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    CHECK_OK(set_default(SIGCHLD));
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, &orig));
    pid_t pid = fork_quiet();
    if (pid == 0) _exit(3);
    struct timespec bound = {BOUND_MS / 1000, 0};
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&set, &si, &bound), SIGCHLD);
    CHECK_EQ(si.si_code, CLD_EXITED);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_status, 3);
    CHECK_EQ(si.si_uid, getuid());
    CHECK_EQ(exit_code_of(pid), 3);
    pid = fork_quiet();
    if (pid == 0) {
        raise(SIGKILL);
        _exit(0);
    }
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&set, &si, &bound), SIGCHLD);
    CHECK_EQ(si.si_code, CLD_KILLED);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_status, SIGKILL);
    CHECK_EQ(term_signal_of(pid), SIGKILL);
    CHECK_OK(sigprocmask(SIG_SETMASK, &orig, NULL));
}

/* ---- ignoring ---- */

/* signal(7): an ignored signal is discarded when it is sent. */
TEST(ignored_signal_is_discarded) {
    CHECK_OK(on_signal(SIGUSR1, SIG_IGN, 0));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK(!is_pending(SIGUSR1));
    CHECK_OK(set_default(SIGUSR1));
}

/* A blocked signal is kept pending even if ignored (the disposition may change before it is
 * unblocked); POSIX: "Setting a signal action to SIG_IGN for a signal that is pending shall
 * cause the pending signal to be discarded, whether or not it is blocked", and so does
 * SIG_DFL for a signal whose default is to ignore. */
TEST(setting_sig_ign_discards_a_pending_blocked_signal) {
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    CHECK_OK(on_signal(SIGUSR1, SIG_IGN, 0));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(is_pending(SIGUSR1));
    CHECK_OK(on_signal(SIGUSR1, SIG_IGN, 0));
    CHECK(!is_pending(SIGUSR1));
    CHECK_OK(on_signal(SIGUSR1, count, 0));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(is_pending(SIGUSR1));
    CHECK_OK(on_signal(SIGUSR1, SIG_IGN, 0));
    CHECK(!is_pending(SIGUSR1));
    CHECK_OK(mask_one(SIG_BLOCK, SIGURG));
    CHECK_OK(on_signal(SIGURG, count, 0));
    CHECK_EQ(raise(SIGURG), 0);
    CHECK(is_pending(SIGURG));
    CHECK_OK(set_default(SIGURG));
    CHECK(!is_pending(SIGURG));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGURG));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_OK(set_default(SIGUSR1));
}

/* fork(2): "The child's set of pending signals is initially empty"; the mask and the
 * dispositions are inherited. */
TEST(fork_child_inherits_mask_and_handlers_but_not_pending_signals) {
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(is_pending(SIGUSR1));
    CHECK_OK(on_signal(SIGUSR2, count, SA_RESTART));
    pid_t pid = fork_quiet();
    if (pid == 0) {
        struct sigaction sa;
        sigaction(SIGUSR2, NULL, &sa);
        int ok = !is_pending(SIGUSR1) && is_blocked(SIGUSR1) && sa.sa_handler == count &&
                 (sa.sa_flags & SA_RESTART);
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ(exit_code_of(pid), 0);
    CHECK(is_pending(SIGUSR1));
    CHECK_OK(on_signal(SIGUSR1, SIG_IGN, 0));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_OK(set_default(SIGUSR1));
    CHECK_OK(set_default(SIGUSR2));
}

/* ---- waiting for signals ---- */

/* sigsuspend(2): replaces the mask, waits for a handled signal, "returns after the signal
 * handler returns, and the signal mask is restored to the state before the call", -1
 * EINTR. */
TEST(sigsuspend_waits_for_a_signal_and_restores_the_mask) {
    hits = 0;
    CHECK_OK(on_signal(SIGUSR1, count, 0));
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    pid_t parent = getpid();
    pid_t pid = fork_quiet();
    if (pid == 0) _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
    sigset_t during;
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &during));
    sigdelset(&during, SIGUSR1);
    CHECK_ERR(sigsuspend(&during), EINTR);
    CHECK_EQ(hits, 1);
    CHECK(is_blocked(SIGUSR1));
    CHECK_EQ(exit_code_of(pid), 0);
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_OK(set_default(SIGUSR1));
}

/* sigtimedwait(2): "EAGAIN No signal in set became pending within the timeout"; a zero
 * timeout polls; "EINVAL timeout was invalid". */
TEST(sigtimedwait_times_out_with_eagain) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    struct timespec zero = {0, 0}, twenty = {0, 20 * 1000 * 1000}, bad = {0, 1000000000};
    CHECK_ERR(sigtimedwait(&set, NULL, &zero), EAGAIN);
    long start = now_ns(CLOCK_MONOTONIC);
    CHECK_ERR(sigtimedwait(&set, NULL, &twenty), EAGAIN);
    CHECK(now_ns(CLOCK_MONOTONIC) - start >= 20 * 1000 * 1000);
    CHECK_ERR(sigtimedwait(&set, NULL, &bad), EINVAL);
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
}

/* sigwaitinfo(2) "removes the signal from the set of pending signals and returns the signal
 * number": no handler runs. */
TEST(sigwaitinfo_accepts_a_pending_signal_without_running_the_handler) {
    hits = 0;
    CHECK_OK(on_signal(SIGUSR2, count, 0));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    CHECK_EQ(raise(SIGUSR2), 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    /* The raw call: glibc's sigwaitinfo rewrites SI_TKILL to SI_USER. */
    CHECK_EQ(syscall(SYS_rt_sigtimedwait, &set, &si, NULL, 8), SIGUSR2);
    CHECK_EQ(si.si_signo, SIGUSR2);
    CHECK_EQ(si.si_code, SI_TKILL);
    CHECK_EQ(si.si_pid, getpid());
    CHECK(!is_pending(SIGUSR2));
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
    CHECK_EQ(hits, 0);
    CHECK_OK(set_default(SIGUSR2));
}

/* sigtimedwait sleeps until another process sends the signal. */
TEST(sigtimedwait_wakes_for_a_signal_from_another_process) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    pid_t parent = getpid();
    pid_t pid = fork_quiet();
    if (pid == 0) {
        msleep(20);
        _exit(kill(parent, SIGUSR2) == 0 ? 0 : 1);
    }
    struct timespec bound = {BOUND_MS / 1000, 0};
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&set, &si, &bound), SIGUSR2);
    CHECK_EQ(si.si_code, SI_USER);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(exit_code_of(pid), 0);
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
}

/* ---- process groups ---- */

/* Waits (bounded) for SIGUSR1, which the caller blocks; 1 if it came. */
static int got_sigusr1(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    struct timespec bound = {BOUND_MS / 1000, 0};
    return sigtimedwait(&set, NULL, &bound) == SIGUSR1;
}

/* kill(2): "If pid equals 0, then sig is sent to every process in the process group of the
 * calling process." The caller, in another group, gets nothing. */
TEST(kill_zero_signals_the_callers_process_group) {
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    pid_t a = fork_quiet();
    if (a == 0) {
        if (setpgid(0, 0)) _exit(10);
        pid_t b = fork();
        if (b == 0) _exit(got_sigusr1() ? 0 : 1);
        if (kill(0, SIGUSR1)) _exit(11);
        int ok = got_sigusr1();
        int status;
        if (waitpid(b, &status, 0) != b || !WIFEXITED(status)) _exit(12);
        _exit(!ok ? 13 : WEXITSTATUS(status));
    }
    CHECK_EQ(exit_code_of(a), 0);
    CHECK(!is_pending(SIGUSR1));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
}

/* "If pid is less than -1, then sig is sent to every process in the process group whose ID
 * is -pid." kill(-pgid, 0) probes the group: ESRCH once it is gone. */
TEST(kill_negative_pgid_signals_that_group) {
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    int p[2];
    CHECK_OK(pipe(p));
    pid_t a = fork_quiet();
    if (a == 0) {
        close(p[0]);
        if (setpgid(0, 0)) _exit(10);
        pid_t b = fork();
        if (b == 0) _exit(got_sigusr1() ? 0 : 1);
        write_byte(p[1], 'r');
        int ok = got_sigusr1();
        int status;
        if (waitpid(b, &status, 0) != b || !WIFEXITED(status)) _exit(12);
        _exit(!ok ? 13 : WEXITSTATUS(status));
    }
    close(p[1]);
    CHECK_EQ(read_byte_within(p[0], BOUND_MS), 'r');
    close(p[0]);
    CHECK_EQ(getpgid(a), a);
    CHECK_OK(kill(-a, 0));
    CHECK_OK(kill(-a, SIGUSR1));
    CHECK_EQ(exit_code_of(a), 0);
    CHECK_ERR(kill(-a, 0), ESRCH);
    CHECK_ERR(killpg(a, SIGUSR1), ESRCH);
    CHECK(!is_pending(SIGUSR1));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
}

/* kill(2): "If sig is 0, then no signal is sent, but existence and permission checks are
 * still performed"; a zombie still exists; "ESRCH The target process or process group does
 * not exist"; "EINVAL An invalid signal was specified". tgkill(2): EINVAL for a tid or tgid
 * that is not positive, ESRCH for a thread not in the group. */
TEST(kill_errors_and_the_null_signal_probe) {
    CHECK_EQ(kill(getpid(), 0), 0);
    CHECK_ERR(kill(getpid(), 65), EINVAL);
    CHECK_ERR(kill(getpid(), -1), EINVAL);
    pid_t pid = fork_quiet();
    if (pid == 0) _exit(0);
    siginfo_t si;
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    CHECK_EQ(kill(pid, 0), 0);
    CHECK_EQ(kill(pid, SIGUSR1), 0);
    CHECK_EQ(waitpid(pid, NULL, 0), pid);
    CHECK_ERR(kill(pid, 0), ESRCH);
    CHECK_ERR(kill(pid, SIGUSR1), ESRCH);
    CHECK_ERR(kill(-pid, 0), ESRCH);
    CHECK_EQ(tgkill_(getpid(), gettid_(), 0), 0);
    CHECK_ERR(tgkill_(getpid(), pid, 0), ESRCH);
    CHECK_ERR(tgkill_(pid, pid, 0), ESRCH);
    CHECK_ERR(tgkill_(0, gettid_(), 0), EINVAL);
    CHECK_ERR(tgkill_(getpid(), 0, 0), EINVAL);
    CHECK_ERR(tgkill_(getpid(), -1, 0), EINVAL);
    CHECK_ERR(tgkill_(getpid(), gettid_(), 65), EINVAL);
    CHECK_EQ(syscall(SYS_tkill, gettid_(), 0), 0);
    CHECK_ERR(syscall(SYS_tkill, 0, 0), EINVAL);
    CHECK_ERR(syscall(SYS_tkill, pid, 0), ESRCH);
    CHECK_ERR(sigqueue(pid, SIGUSR1, (union sigval){0}), ESRCH);
}
