/* The signal test of scripts/kvm-tcg.sh: a SIGUSR1 sent with kill(getpid()) runs its
 * SA_SIGINFO handler before kill returns, and a SIGALRM from a 100 ms timer interrupts
 * pause() (-1, EINTR). Its output must be the same run natively and in the sandbox. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr1_code, usr1_from_self, alrm;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    usr1 = sig;
    usr1_code = si->si_code;
    usr1_from_self = si->si_pid == getpid();
}

static void on_alrm(int sig)
{
    alrm = sig;
}

int main(void)
{
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGUSR1, &sa, NULL) != 0) {
        perror("sigaction SIGUSR1");
        return 2;
    }
    int r = kill(getpid(), SIGUSR1);
    printf("kill=%d usr1=%d si_code=%d from_self=%d\n", r, usr1, usr1_code, usr1_from_self);

    struct sigaction sb = {0};
    sigemptyset(&sb.sa_mask);
    sb.sa_handler = on_alrm; /* no SA_RESTART */
    if (sigaction(SIGALRM, &sb, NULL) != 0) {
        perror("sigaction SIGALRM");
        return 2;
    }
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 100000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) {
        perror("setitimer");
        return 2;
    }
    r = pause();
    int e = errno;
    printf("pause=%d errno=%s alrm=%d\n", r, e == EINTR ? "EINTR" : strerror(e), alrm);
    return usr1 == SIGUSR1 && alrm == SIGALRM ? 0 : 1;
}
