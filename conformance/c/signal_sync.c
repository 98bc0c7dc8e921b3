/* Synchronous signals: faults turned into SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGTRAP for the
 * thread that caused them (sigaction(2) "siginfo_t": si_addr, si_code), the fault's context,
 * recovery by siglongjmp or by moving rip, and what happens when the signal cannot be
 * handled. */
#include "scratch.h"
#include "sig.h"

#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <ucontext.h>

#define PAGE 4096UL

static sigjmp_buf env;
static siginfo_t fault;
static volatile int faults;
static volatile greg_t fault_rip, fault_err, fault_trapno, fault_cr2;
/* If set, the handler resumes there (with rax = resume_rax) instead of jumping to env. */
static volatile greg_t resume_at, resume_rax;

static void catch_fault(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    ucontext_t *uc = ctx;
    faults++;
    fault = *si;
    fault_rip = uc->uc_mcontext.gregs[REG_RIP];
    fault_err = uc->uc_mcontext.gregs[REG_ERR];
    fault_trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
    fault_cr2 = uc->uc_mcontext.gregs[REG_CR2];
    if (resume_at) {
        uc->uc_mcontext.gregs[REG_RIP] = resume_at;
        uc->uc_mcontext.gregs[REG_RAX] = resume_rax;
        resume_at = 0;
        return;
    }
    siglongjmp(env, 1);
}

/* Evaluates to 1 if the statements fault (the handler jumps back), 0 if they run through. */
#define FAULTS(...)                                                                       \
    ({                                                                                    \
        int _jumped = sigsetjmp(env, 1);                                                  \
        if (!_jumped) {                                                                   \
            __VA_ARGS__;                                                                  \
        }                                                                                 \
        _jumped;                                                                          \
    })

#define READ(p) ((void)*(volatile char *)(p))
#define WRITE(p) (*(volatile char *)(p) = 1)

static int catch_all(void) {
    int r = 0;
    r |= on_siginfo(SIGSEGV, catch_fault, 0, NULL);
    r |= on_siginfo(SIGBUS, catch_fault, 0, NULL);
    r |= on_siginfo(SIGFPE, catch_fault, 0, NULL);
    r |= on_siginfo(SIGILL, catch_fault, 0, NULL);
    r |= on_siginfo(SIGTRAP, catch_fault, 0, NULL);
    memset(&fault, 0, sizeof fault);
    faults = 0;
    return r;
}

static void catch_none(void) {
    set_default(SIGSEGV);
    set_default(SIGBUS);
    set_default(SIGFPE);
    set_default(SIGILL);
    set_default(SIGTRAP);
}

/* An address with nothing mapped there. */
static char *hole(void) {
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    munmap(p, 2 * PAGE);
    return p;
}

/* sigaction(2): SIGSEGV's si_addr is "the address of the fault", and si_code SEGV_MAPERR is
 * "Address not mapped to object". */
TEST(unmapped_access_is_sigsegv_maperr_at_the_address) {
    CHECK_OK(catch_all());
    char *p = hole();
    CHECK(p != NULL);
    CHECK(FAULTS(READ(p + 123)));
    CHECK_EQ(fault.si_signo, SIGSEGV);
    CHECK_EQ(fault.si_code, SEGV_MAPERR);
    CHECK(fault.si_addr == p + 123);
    CHECK(FAULTS(WRITE(p + PAGE + 7)));
    CHECK_EQ(fault.si_code, SEGV_MAPERR);
    CHECK(fault.si_addr == p + PAGE + 7);
    CHECK(FAULTS(READ((char *)16)));
    CHECK_EQ(fault.si_code, SEGV_MAPERR);
    CHECK(fault.si_addr == (void *)16);
    CHECK_EQ(faults, 3);
    catch_none();
}

/* "SEGV_ACCERR Invalid permissions for mapped object": a write to a read-only page, any
 * access to a PROT_NONE page, a jump into a page without PROT_EXEC. */
TEST(forbidden_access_is_sigsegv_accerr_at_the_address) {
    CHECK_OK(catch_all());
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 1;
    p[PAGE] = (char)0xc3; /* ret */
    CHECK_OK(mprotect(p, PAGE, PROT_READ));
    CHECK(FAULTS(WRITE(p + 100)));
    CHECK_EQ(fault.si_signo, SIGSEGV);
    CHECK_EQ(fault.si_code, SEGV_ACCERR);
    CHECK(fault.si_addr == p + 100);
    CHECK_OK(mprotect(p, PAGE, PROT_NONE));
    CHECK(FAULTS(READ(p + 200)));
    CHECK_EQ(fault.si_code, SEGV_ACCERR);
    CHECK(fault.si_addr == p + 200);
    CHECK_OK(mprotect(p + PAGE, PAGE, PROT_READ));
    void (*fn)(void) = (void (*)(void))(p + PAGE);
    CHECK(FAULTS(fn()));
    CHECK_EQ(fault.si_code, SEGV_ACCERR);
    CHECK(fault.si_addr == p + PAGE);
    CHECK(fault_rip == (greg_t)(p + PAGE));
    munmap(p, 2 * PAGE);
    catch_none();
}

/* A SIGSEGV someone sends is not a fault: si_code SI_USER. */
TEST(sent_sigsegv_is_si_user_not_a_fault) {
    CHECK_OK(catch_all());
    CHECK(FAULTS(kill(getpid(), SIGSEGV)));
    CHECK_EQ(fault.si_signo, SIGSEGV);
    CHECK_EQ(fault.si_code, SI_USER);
    CHECK_EQ(fault.si_pid, getpid());
    catch_none();
}

/* x86: a page fault's context has trapno 14 (#PF), cr2 the address, and the error code's
 * user bit (4) and write bit (2) set as the access was. */
TEST(page_fault_context_has_trapno_err_and_cr2) {
    CHECK_OK(catch_all());
    char *p = hole();
    CHECK(p != NULL);
    CHECK(FAULTS(READ(p + 8)));
    CHECK_EQ(fault_trapno, 14);
    CHECK(fault_cr2 == (greg_t)(p + 8));
    CHECK_EQ(fault_err & 6, 4);
    CHECK(FAULTS(WRITE(p + 16)));
    CHECK_EQ(fault_trapno, 14);
    CHECK(fault_cr2 == (greg_t)(p + 16));
    CHECK_EQ(fault_err & 6, 6);
    catch_none();
}

/* sigsetjmp(3): "If savesigs is nonzero, the process's current signal mask is saved in env
 * and will be restored if a siglongjmp(3) is later performed with this env" -- undoing the
 * handler's mask, so the next fault is caught again. */
TEST(siglongjmp_restores_the_mask_saved_by_sigsetjmp) {
    CHECK_OK(catch_all());
    sigset_t before, after;
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR2));
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &before));
    char *p = hole();
    CHECK(p != NULL);
    CHECK(FAULTS(READ(p)));
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &after));
    CHECK(!sigismember(&after, SIGSEGV));
    CHECK(sigismember(&after, SIGUSR2));
    CHECK(FAULTS(READ(p)));
    CHECK_EQ(faults, 2);
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR2));
    catch_none();
}

static sigjmp_buf nosave_env;
static void jump_nosave(int sig) {
    (void)sig;
    siglongjmp(nosave_env, 1);
}

/* With savesigs zero the mask is not restored: leaving the handler by a jump keeps the
 * handler's mask, in which SIGSEGV is blocked. */
TEST(sigsetjmp_without_savesigs_leaves_the_handler_mask) {
    CHECK_OK(on_signal(SIGSEGV, jump_nosave, 0));
    char *p = hole();
    CHECK(p != NULL);
    volatile int jumped = 0;
    if (sigsetjmp(nosave_env, 0) == 0)
        READ(p);
    else
        jumped = 1;
    CHECK(jumped);
    CHECK(is_blocked(SIGSEGV));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGSEGV));
    CHECK_OK(set_default(SIGSEGV));
}

/* fault_load(addr): rax = 7, then loads the 32 bits at addr into eax (the instruction at
 * fault_load_insn) and returns it. */
__asm__(".text\n"
        ".globl fault_load\n"
        ".type fault_load, @function\n"
        "fault_load:\n"
        "  mov $7, %eax\n"
        ".globl fault_load_insn\n"
        "fault_load_insn:\n"
        "  mov (%rdi), %eax\n"
        ".globl fault_load_after\n"
        "fault_load_after:\n"
        "  ret\n");
int fault_load(const void *addr);
extern char fault_load_insn[], fault_load_after[];

/* The fault's rip is the faulting instruction; a handler may move rip past it and set a
 * register, and execution goes on from there when it returns. */
TEST(handler_can_skip_the_faulting_instruction) {
    CHECK_OK(catch_all());
    char *p = hole();
    CHECK(p != NULL);
    resume_at = (greg_t)fault_load_after;
    resume_rax = 99;
    CHECK_EQ(fault_load(p + 40), 99);
    CHECK_EQ(faults, 1);
    CHECK(fault_rip == (greg_t)fault_load_insn);
    CHECK(fault.si_addr == p + 40);
    int ok = 1234;
    CHECK_EQ(fault_load(&ok), 1234);
    CHECK_EQ(faults, 1);
    catch_none();
}

/* divide(a, b): a / b with idiv at divide_insn. */
__asm__(".text\n"
        ".globl divide\n"
        ".type divide, @function\n"
        "divide:\n"
        "  mov %rdi, %rax\n"
        "  cqo\n"
        ".globl divide_insn\n"
        "divide_insn:\n"
        "  idiv %rsi\n"
        ".globl divide_after\n"
        "divide_after:\n"
        "  ret\n");
long divide(long a, long b);
extern char divide_insn[], divide_after[];

/* SIGFPE "FPE_INTDIV Integer divide by zero", si_addr the faulting instruction. On x86 the
 * overflowing LONG_MIN / -1 raises the same #DE and is reported the same way. */
TEST(integer_division_by_zero_is_sigfpe_intdiv) {
    CHECK_OK(catch_all());
    resume_at = (greg_t)divide_after;
    resume_rax = -5;
    CHECK_EQ(divide(10, 0), -5);
    CHECK_EQ(fault.si_signo, SIGFPE);
    CHECK_EQ(fault.si_code, FPE_INTDIV);
    CHECK(fault.si_addr == divide_insn);
    CHECK(fault_rip == (greg_t)divide_insn);
    CHECK_EQ(fault_trapno, 0);
    resume_at = (greg_t)divide_after;
    resume_rax = -6;
    CHECK_EQ(divide(INT64_MIN, -1), -6);
    CHECK_EQ(fault.si_code, FPE_INTDIV);
    CHECK_EQ(divide(10, 3), 3);
    CHECK_EQ(faults, 2);
    catch_none();
}

/* ud2_probe(): executes ud2 at ud2_insn, then returns 5. */
__asm__(".text\n"
        ".globl ud2_probe\n"
        ".type ud2_probe, @function\n"
        "ud2_probe:\n"
        "  mov $5, %eax\n"
        ".globl ud2_insn\n"
        "ud2_insn:\n"
        "  ud2\n"
        "  ret\n");
int ud2_probe(void);
extern char ud2_insn[];

static void skip_ud2(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    fault = *si;
    faults++;
    ucontext_t *uc = ctx;
    fault_rip = uc->uc_mcontext.gregs[REG_RIP];
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

/* SIGILL "ILL_ILLOPN Illegal operand" for ud2, si_addr and rip at the instruction; stepping
 * rip over its two bytes resumes after it. */
TEST(ud2_is_sigill_illopn) {
    faults = 0;
    CHECK_OK(on_siginfo(SIGILL, skip_ud2, 0, NULL));
    CHECK_EQ(ud2_probe(), 5);
    CHECK_EQ(faults, 1);
    CHECK_EQ(fault.si_signo, SIGILL);
    CHECK_EQ(fault.si_code, ILL_ILLOPN);
    CHECK(fault.si_addr == ud2_insn);
    CHECK(fault_rip == (greg_t)ud2_insn);
    CHECK_OK(set_default(SIGILL));
}

/* int3_probe(): executes int3, whose trap leaves rip at int3_after, and returns 6. */
__asm__(".text\n"
        ".globl int3_probe\n"
        ".type int3_probe, @function\n"
        "int3_probe:\n"
        "  mov $6, %eax\n"
        "  int3\n"
        ".globl int3_after\n"
        "int3_after:\n"
        "  ret\n");
int int3_probe(void);
extern char int3_after[];

static void note_trap(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    fault = *si;
    faults++;
    fault_rip = ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
    fault_trapno = ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_TRAPNO];
}

/* int3 is a trap, not a fault: SIGTRAP (si_code SI_KERNEL on x86) with rip already after
 * the instruction, so returning from the handler just goes on. */
TEST(int3_is_sigtrap_after_the_instruction) {
    faults = 0;
    CHECK_OK(on_siginfo(SIGTRAP, note_trap, 0, NULL));
    CHECK_EQ(int3_probe(), 6);
    CHECK_EQ(faults, 1);
    CHECK_EQ(fault.si_signo, SIGTRAP);
    CHECK_EQ(fault.si_code, SI_KERNEL);
    CHECK(fault_rip == (greg_t)int3_after);
    CHECK_EQ(fault_trapno, 3);
    CHECK_OK(set_default(SIGTRAP));
}

/* A file of one page mapped over two: "SIGBUS Attempted access to a portion of the buffer
 * that does not correspond to the file" (mmap(2)), si_code BUS_ADRERR "Nonexistent physical
 * address", si_addr the address. */
TEST(access_past_the_end_of_a_file_mapping_is_sigbus_adrerr) {
    CHECK(scratch());
    CHECK_OK(catch_all());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_OK(ftruncate(fd, PAGE));
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    READ(p + PAGE - 1);
    CHECK(FAULTS(READ(p + PAGE + 10)));
    CHECK_EQ(fault.si_signo, SIGBUS);
    CHECK_EQ(fault.si_code, BUS_ADRERR);
    CHECK(fault.si_addr == p + PAGE + 10);
    CHECK(FAULTS(WRITE(p + PAGE + 20)));
    CHECK_EQ(fault.si_code, BUS_ADRERR);
    CHECK(fault.si_addr == p + PAGE + 20);
    munmap(p, 2 * PAGE);
    close(fd);
    catch_none();
}

/* The same for pages that were there and were truncated away while mapped. */
TEST(access_to_a_truncated_file_mapping_is_sigbus_adrerr) {
    CHECK(scratch());
    CHECK_OK(catch_all());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_OK(ftruncate(fd, 2 * PAGE));
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    WRITE(p);
    WRITE(p + PAGE);
    CHECK_OK(ftruncate(fd, PAGE));
    CHECK(!FAULTS(READ(p + 5)));
    CHECK(FAULTS(READ(p + PAGE + 5)));
    CHECK_EQ(fault.si_signo, SIGBUS);
    CHECK_EQ(fault.si_code, BUS_ADRERR);
    CHECK(fault.si_addr == p + PAGE + 5);
    munmap(p, 2 * PAGE);
    close(fd);
    catch_none();
}

/* ---- faults that cannot be handled ---- */

static void never(int sig) {
    (void)sig;
    _exit(50);
}

/* signal(7)/sigprocmask(2): "If SIGBUS, SIGFPE, SIGILL, or SIGSEGV are generated while they
 * are blocked, the result is undefined" -- Linux kills the process with that signal, as it
 * does when the signal is ignored, handler or not. */
TEST(blocked_or_ignored_fault_signal_kills_the_process) {
    char *p = hole();
    CHECK(p != NULL);
    pid_t pid = fork_quiet();
    if (pid == 0) {
        on_signal(SIGSEGV, never, 0);
        mask_one(SIG_BLOCK, SIGSEGV);
        READ(p);
        _exit(0);
    }
    CHECK_EQ(term_signal_of(pid), SIGSEGV);
    pid = fork_quiet();
    if (pid == 0) {
        signal(SIGSEGV, SIG_IGN);
        WRITE(p);
        _exit(0);
    }
    CHECK_EQ(term_signal_of(pid), SIGSEGV);
    pid = fork_quiet();
    if (pid == 0) {
        signal(SIGFPE, SIG_IGN);
        divide(1, 0);
        _exit(0);
    }
    CHECK_EQ(term_signal_of(pid), SIGFPE);
    pid = fork_quiet();
    if (pid == 0) {
        on_signal(SIGILL, never, 0);
        mask_one(SIG_BLOCK, SIGILL);
        ud2_probe();
        _exit(0);
    }
    CHECK_EQ(term_signal_of(pid), SIGILL);
    pid = fork_quiet();
    if (pid == 0) {
        mask_one(SIG_BLOCK, SIGTRAP);
        int3_probe();
        _exit(0);
    }
    CHECK_EQ(term_signal_of(pid), SIGTRAP);
}

static void fault_again(int sig) {
    (void)sig;
    READ((char *)24);
}

/* A fault inside the fault's own handler (where SIGSEGV is blocked) kills the process. */
TEST(fault_in_its_own_handler_kills_the_process) {
    pid_t pid = fork_quiet();
    if (pid == 0) {
        on_signal(SIGSEGV, fault_again, 0);
        READ((char *)8);
        _exit(0);
    }
    CHECK_EQ(term_signal_of(pid), SIGSEGV);
}

static volatile int nodefer_depth;
static void fault_nested(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    fault = *si;
    if (++nodefer_depth == 1) READ((char *)32);
    siglongjmp(env, 1);
}

/* With SA_NODEFER the second fault runs the handler again, nested. */
TEST(fault_in_a_nodefer_handler_nests) {
    nodefer_depth = 0;
    CHECK_OK(on_siginfo(SIGSEGV, fault_nested, SA_NODEFER, NULL));
    CHECK(FAULTS(READ((char *)8)));
    CHECK_EQ(nodefer_depth, 2);
    CHECK(fault.si_addr == (void *)32);
    CHECK(!is_blocked(SIGSEGV));
    CHECK_OK(set_default(SIGSEGV));
}

static char overflow_stack[65536] __attribute__((aligned(16)));
static sigjmp_buf overflow_env;

static void overflow_caught(int sig) {
    (void)sig;
    siglongjmp(overflow_env, 1);
}

static int recurse(int n) {
    volatile char pad[512];
    pad[0] = (char)n;
    if (n == -1) return 0; /* never: keeps the compiler from calling this endless */
    return recurse(n + 1) + pad[0];
}

/* sigaltstack(2): the classic use, "to handle a SIGSEGV signal that occurs because the
 * process's normal stack has been exhausted": with an alternate stack the handler runs; on
 * the exhausted stack it cannot, and the process dies of SIGSEGV. (Children with a 256 KiB
 * stack limit.) */
TEST(stack_overflow_is_caught_only_on_an_alternate_stack) {
    for (int with_alt = 0; with_alt < 2; with_alt++) {
        pid_t pid = fork_quiet();
        if (pid == 0) {
            struct rlimit small = {256 * 1024, 256 * 1024};
            setrlimit(RLIMIT_STACK, &small);
            if (with_alt) {
                stack_t ss = {.ss_sp = overflow_stack, .ss_size = sizeof overflow_stack};
                sigaltstack(&ss, NULL);
            }
            on_signal(SIGSEGV, overflow_caught, SA_ONSTACK);
            if (sigsetjmp(overflow_env, 1) == 0) recurse(0);
            _exit(42);
        }
        int status = reap(pid);
        if (with_alt) {
            CHECK(WIFEXITED(status));
            CHECK_EQ(WEXITSTATUS(status), 42);
        } else {
            CHECK(WIFSIGNALED(status));
            CHECK_EQ(WTERMSIG(status), SIGSEGV);
        }
    }
}
