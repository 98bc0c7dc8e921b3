#define _GNU_SOURCE
/* Single-purpose probes for the sandbox's behaviour, one per argument. Each prints what
 * it observed; the test asserts on the output. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "enosys")) {
        long r = syscall(1000);
        printf("syscall(1000) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(-1L);
        printf("syscall(-1) = %ld errno %s\n", r, strerrorname_np(errno));
    } else if (!strcmp(what, "efault")) {
        long r = syscall(SYS_write, 1, (void *)1, 10);
        printf("write(bad) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)-4096L);
        printf("clock_gettime(bad) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_uname, (void *)0);
        printf("uname(NULL) = %ld errno %s\n", r, strerrorname_np(errno));
    } else if (!strcmp(what, "einval")) {
        long r = syscall(SYS_mmap, 0, 4096, 3, 0x20 /* anonymous, neither private nor shared */, -1, 0);
        printf("mmap(no type) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_mmap, 0, 4096, 3, 0x02, 12345, 0);
        printf("mmap(bad fd) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_mmap, 0, 0, 3, 0x22, -1, 0);
        printf("mmap(len 0) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_munmap, 0x1001, 4096);
        printf("munmap(unaligned) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_rt_sigaction, 9, &r, 0, 8);
        printf("rt_sigaction(SIGKILL) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_arch_prctl, 0x9999, 0);
        printf("arch_prctl(0x9999) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_rt_sigprocmask, 7, &r, 0, 8);
        printf("rt_sigprocmask(how=7) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_getrandom, &r, 8, 0x80);
        printf("getrandom(flags=0x80) = %ld errno %s\n", r, strerrorname_np(errno));
        r = syscall(SYS_clock_gettime, 12345, &r);
        printf("clock_gettime(12345) = %ld errno %s\n", r, strerrorname_np(errno));
    } else if (!strcmp(what, "ids")) {
        printf("getpid %ld gettid %ld getppid %ld\n", syscall(SYS_getpid), syscall(SYS_gettid),
               syscall(SYS_getppid));
    } else if (!strcmp(what, "vsyscall")) {
        /* The legacy vsyscall page's time(), which the host kernel emulates. */
        time_t (*vtime)(time_t *) = (time_t (*)(time_t *))0xffffffffff600400UL;
        time_t v = vtime(NULL), now = time(NULL);
        printf("vsyscall time within 2 s of time(): %s\n", v >= now - 2 && v <= now ? "yes" : "no");
    } else if (!strcmp(what, "int80")) {
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        printf("int $0x80 getpid = %ld\n", r);
    } else if (!strcmp(what, "munmap-all")) {
        /* Unmapping far more than is mapped, up to the top of user space, must not reach
         * anything but the guest's own mappings. */
        char *p = mmap((void *)0x7f0000000000, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        long r = syscall(SYS_munmap, p, 0x7ffffffff000UL - (unsigned long)p);
        printf("munmap to the top = %ld\n", r);
        r = syscall(SYS_munmap, p, 4096);
        printf("munmap again = %ld\n", r);
    } else if (!strcmp(what, "noreplace")) {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 'A';
        void *q = mmap(p, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE, -1, 0);
        printf("MAP_FIXED|MAP_FIXED_NOREPLACE over a mapping: %s, p[0] = %c\n",
               q == MAP_FAILED ? strerrorname_np(errno) : "mapped", p[0]);
        void *low = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        printf("MAP_32BIT below 2 GiB: %s\n", (unsigned long)low < 0x80000000UL ? "yes" : "no");
    } else if (!strcmp(what, "sigpipe")) {
        /* stdout is a pipe whose reader has gone: the default SIGPIPE kills us. */
        sleep(1);
        for (int i = 0; i < 100; i++) write(1, "x", 1);
        fprintf(stderr, "probe: still alive after writing to a broken pipe\n");
        return 3;
    } else if (!strcmp(what, "segv")) {
        *(volatile int *)0 = 1;
    } else if (!strcmp(what, "spin")) {
        printf("spinning\n");
        fflush(stdout);
        for (;;) {}
    } else {
        fprintf(stderr, "probe: unknown probe '%s'\n", what);
        return 2;
    }
    return 0;
}
