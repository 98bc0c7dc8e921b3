/* A SIGSEGV handler that recovers with siglongjmp, as language runtimes and fuzzers do:
 * a write to an unmapped address and one to a read-only page each fault, the handler
 * (SA_SIGINFO) checks si_signo, si_code and si_addr and jumps back out, and the signal
 * mask saved by sigsetjmp comes back (SIGSEGV is unblocked again, so the next fault is
 * handled too). Prints what it saw; exits 0 only if every check held. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile sig_atomic_t handled;
static volatile uintptr_t fault_addr;
static volatile int fault_code;
static volatile int blocked_in_handler;

static void on_segv(int sig, siginfo_t *info, void *uctx) {
    (void)uctx;
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    /* Without SA_NODEFER the signal being handled is blocked while its handler runs. */
    blocked_in_handler = sigismember(&now, SIGSEGV);
    handled++;
    fault_addr = (uintptr_t)info->si_addr;
    fault_code = info->si_code;
    if (sig == SIGSEGV && info->si_signo == SIGSEGV) siglongjmp(env, 1);
}

static const char *code_name(int code) {
    switch (code) {
    case SEGV_MAPERR: return "SEGV_MAPERR";
    case SEGV_ACCERR: return "SEGV_ACCERR";
    default: return "other";
    }
}

/* Faults once writing to `p`; returns 1 if the handler got back here. */
static int fault_at(volatile char *p, const char *what) {
    int before = handled;
    if (sigsetjmp(env, 1) == 0) {
        *p = 1;
        printf("%s: no fault\n", what);
        return 0;
    }
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("%s: recovered, handler ran %d time(s), %s, si_addr %s, "
           "SIGSEGV blocked in handler %s, unblocked after siglongjmp %s\n",
           what, handled - before, code_name(fault_code),
           fault_addr == (uintptr_t)p ? "right" : "wrong",
           blocked_in_handler ? "yes" : "no", sigismember(&now, SIGSEGV) ? "no" : "yes");
    return handled - before == 1 && fault_addr == (uintptr_t)p && blocked_in_handler &&
           !sigismember(&now, SIGSEGV);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0) { perror("sigaction"); return 1; }
    long page = sysconf(_SC_PAGESIZE);
    char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ro == MAP_FAILED) { perror("mmap"); return 1; }
    /* An unmapped page: map one and unmap it, so the address is known to be free. */
    char *gone = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (gone == MAP_FAILED || munmap(gone, page) != 0) { perror("mmap/munmap"); return 1; }
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        char what[32];
        snprintf(what, sizeof what, "unmapped #%d", i + 1);
        ok &= fault_at(gone + 8, what);
    }
    ok &= fault_at(ro + 16, "read-only");
    printf("read-only page still reads %d\n", ro[16]);
    printf("handled %d faults: %s\n", (int)handled, ok && handled == 4 ? "ok" : "WRONG");
    return ok && handled == 4 ? 0 : 1;
}
