/* getpid loop: N raw getpid system calls, timed with CLOCK_MONOTONIC around the loop.
 * Natively the clock reads go through the vDSO; in the sandbox they are two more traps,
 * which are negligible against N. Prints "getpid <ns> ns/call". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    printf("getpid %.1f ns/call\n", ns);
    return 0;
}
