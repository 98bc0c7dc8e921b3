/* getpid loop: N raw getpid system calls, timed with CLOCK_MONOTONIC around the loop.
 * Natively the clock reads go through the vDSO; in the sandbox they are two more traps,
 * which are negligible against N. Prints "getpid <ns> ns/call <ns> user-ns/call": the
 * second figure is the process's user CPU time per call (getrusage), which on the KVM
 * platform is the time spent inside KVM_RUN (guest code and the exits), so that the rest
 * is the Sentry's own work. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double user_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e9 + ru.ru_utime.tv_usec * 1e3;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    struct timespec a, b;
    double u0 = user_ns();
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double u1 = user_ns();
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    printf("getpid %.1f ns/call %.1f user-ns/call\n", ns, (u1 - u0) / n);
    return 0;
}
