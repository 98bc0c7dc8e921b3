/* Prints what a static program sees at start and does with memory, so a native run and a
 * sandboxed run can be compared line by line: argv, envp, the auxiliary vector (values that
 * are the same on every run, checks for those that are addresses), stdin read to EOF,
 * a 64 MiB malloc touched page by page, brk growth and __thread TLS. */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;
extern void _start(void);

static __thread int tls_counter = 42;
static __thread char tls_buf[4096];

static void show_value(const char *name, unsigned long type) {
    errno = 0;
    unsigned long v = getauxval(type);
    printf("auxv %s = %s%#lx\n", name, errno ? "(absent) " : "", v);
}

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d] = %s\n", i, argv[i]);
    for (char **e = environ; *e; e++) printf("env %s\n", *e);

    show_value("AT_PAGESZ", AT_PAGESZ);
    show_value("AT_CLKTCK", AT_CLKTCK);
    show_value("AT_UID", AT_UID);
    show_value("AT_EUID", AT_EUID);
    show_value("AT_GID", AT_GID);
    show_value("AT_EGID", AT_EGID);
    show_value("AT_SECURE", AT_SECURE);
    show_value("AT_HWCAP", AT_HWCAP);
    show_value("AT_HWCAP2", AT_HWCAP2);
    show_value("AT_BASE", AT_BASE);
    show_value("AT_FLAGS", AT_FLAGS);
    show_value("AT_PHENT", AT_PHENT);
    show_value("AT_PHNUM", AT_PHNUM);
    printf("auxv AT_PLATFORM = %s\n", (const char *)getauxval(AT_PLATFORM));
    printf("auxv AT_EXECFN = %s\n", (const char *)getauxval(AT_EXECFN));
    printf("auxv AT_ENTRY is _start: %s\n", getauxval(AT_ENTRY) == (uintptr_t)&_start ? "yes" : "no");
    const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
    int loads = 0, tls = 0;
    for (unsigned long i = 0; ph && i < getauxval(AT_PHNUM); i++) {
        loads += ph[i].p_type == PT_LOAD;
        tls += ph[i].p_type == PT_TLS;
    }
    printf("auxv AT_PHDR table: %d PT_LOAD, %d PT_TLS\n", loads, tls);
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    unsigned or_all = 0;
    for (int i = 0; rnd && i < 16; i++) or_all |= rnd[i];
    printf("auxv AT_RANDOM readable and not all zero: %s\n", rnd && or_all ? "yes" : "no");

    /* stdin to EOF */
    unsigned long long n = 0, hash = 1469598103934665603ULL;
    char buf[4096];
    ssize_t got;
    while ((got = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; i++) hash = (hash ^ (unsigned char)buf[i]) * 1099511628211ULL;
        n += got;
    }
    printf("stdin: %llu bytes, fnv1a %016llx, last read %zd\n", n, hash, got);

    /* 64 MiB malloc, every page touched */
    size_t big = 64u << 20;
    unsigned char *p = malloc(big);
    if (!p) { printf("malloc failed\n"); return 1; }
    for (size_t i = 0; i < big; i += 4096) p[i] = (unsigned char)(i >> 12);
    unsigned long sum = 0;
    for (size_t i = 0; i < big; i += 4096) sum += p[i];
    printf("malloc 64 MiB: page sum %lu, last byte %u\n", sum, p[big - 1]);
    free(p);

    /* brk up and down */
    char *before = sbrk(0);
    if (sbrk(1 << 20) == (void *)-1) { printf("sbrk failed\n"); return 1; }
    memset(before, 0x5a, 1 << 20);
    char *after = sbrk(0);
    printf("brk grew by %ld, byte %#x\n", (long)(after - before), (unsigned char)before[(1 << 20) - 1]);
    sbrk(-(1 << 20));
    printf("brk back: %s\n", sbrk(0) == before ? "yes" : "no");

    /* TLS */
    tls_counter += argc;
    memset(tls_buf, 'x', sizeof tls_buf - 1);
    printf("tls_counter %d, tls_buf length %zu\n", tls_counter, strlen(tls_buf));
    return 0;
}
