/* Handlers on an alternate signal stack (sigaltstack(2)):
 *   - SIGUSR1 raised with an SA_ONSTACK handler runs on the alternate stack, sees
 *     SS_ONSTACK from sigaltstack(NULL, &old), and the stack is left after it returns;
 *   - a handler without SA_ONSTACK runs on the normal stack;
 *   - unbounded recursion overflows the stack; the SIGSEGV handler can only run on the
 *     alternate stack, and gets out with siglongjmp, after which the program goes on.
 * Exits 0 only if all held. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)

static char *alt;
static sigjmp_buf env;
static volatile int on_alt, ss_onstack, overflowed;

static int within_alt(void *p) {
    return (char *)p >= alt && (char *)p < alt + ALT_SIZE;
}

static void on_usr(int sig) {
    (void)sig;
    int local;
    stack_t now;
    sigaltstack(NULL, &now);
    on_alt = within_alt(&local);
    ss_onstack = (now.ss_flags & SS_ONSTACK) != 0;
}

static void on_segv(int sig) {
    (void)sig;
    int local;
    on_alt = within_alt(&local);
    overflowed = 1;
    siglongjmp(env, 1);
}

static volatile uint64_t sink;

static uint64_t recurse(uint64_t n) {
    volatile char pad[1024];
    /* Never reached: the stack runs out first (and the compiler sees an end). */
    if (n > (1ULL << 40)) return 0;
    pad[0] = (char)n;
    pad[sizeof pad - 1] = (char)n;
    sink += pad[0];
    return recurse(n + 1) + pad[sizeof pad - 1];
}

static void install(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

int main(void) {
    int ok = 1;
    /* A small stack limit keeps the overflow quick; it must hold before the recursion. */
    struct rlimit rl = {1 << 20, 1 << 20};
    setrlimit(RLIMIT_STACK, &rl);
    alt = malloc(ALT_SIZE);
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    if (!alt || sigaltstack(&ss, NULL) != 0) { perror("sigaltstack"); return 1; }

    install(SIGUSR1, on_usr, SA_ONSTACK);
    raise(SIGUSR1);
    stack_t after;
    sigaltstack(NULL, &after);
    printf("SA_ONSTACK handler on the alternate stack: %s, SS_ONSTACK inside: %s, "
           "after: %s\n", on_alt ? "yes" : "no", ss_onstack ? "yes" : "no",
           after.ss_flags == 0 ? "flags 0" : "still on it");
    ok &= on_alt && ss_onstack && after.ss_flags == 0;

    install(SIGUSR1, on_usr, 0);
    raise(SIGUSR1);
    printf("handler without SA_ONSTACK on the alternate stack: %s\n", on_alt ? "yes" : "no");
    ok &= !on_alt;

    install(SIGSEGV, on_segv, SA_ONSTACK);
    on_alt = 0;
    if (sigsetjmp(env, 1) == 0) {
        recurse(0);
        printf("recursion ended\n");
        ok = 0;
    }
    printf("stack overflow: SIGSEGV handled %s, on the alternate stack: %s\n",
           overflowed ? "yes" : "no", on_alt ? "yes" : "no");
    ok &= overflowed && on_alt;

    /* Still usable afterwards: the SIGSEGV mask came back with siglongjmp. */
    install(SIGUSR1, on_usr, SA_ONSTACK);
    on_alt = 0;
    raise(SIGUSR1);
    printf("again after the overflow: %s\n", on_alt ? "yes" : "no");
    ok &= on_alt;
    printf("%s\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
