/* The fault test of scripts/kvm-tcg.sh: a SIGSEGV handler (SA_SIGINFO) sees the faulting
 * address and the code of a read of an unmapped address (SEGV_MAPERR) and of a write to a
 * read-only page (SEGV_ACCERR), then the program goes on. Its output must be the same run
 * natively and in the sandbox. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf back;
static volatile int signo, code;
static void *volatile addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    signo = sig;
    code = si->si_code;
    addr = si->si_addr;
    siglongjmp(back, 1);
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0) {
        perror("sigaction");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);

    volatile int *unmapped = (volatile int *)0x1234000;
    if (sigsetjmp(back, 1) == 0) {
        (void)*unmapped;
        printf("read of %p did not fault\n", (void *)unmapped);
        return 1;
    }
    printf("unmapped: signo=%d si_addr=%p si_code=%d\n", signo, addr, code);

    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    if (sigsetjmp(back, 1) == 0) {
        page[0x10] = 1;
        printf("write to a read-only page did not fault\n");
        return 1;
    }
    /* The page's own address differs between runs: print the offset into it. */
    printf("read-only: signo=%d si_addr=page+%#lx si_code=%d\n", signo,
           (unsigned long)((char *)addr - page), code);
    return 0;
}
