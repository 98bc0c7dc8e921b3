/* Memory-management benchmarks, each printing "<name> <value> <unit>", and for the
 * first-touch modes " <faults> faults/page" after that where getrusage counts them:
 *   mem churn N       N times: mmap 1 MiB anonymous private, write a byte to each page,
 *                     munmap                                        -> ns per iteration
 *   mem anon MIB      map MIB MiB anonymous private, write a byte to each page
 *                                                                   -> ns per page
 *   mem read FILE     map FILE private read-only, read a byte of each page
 *                                                                   -> ns per page
 *   mem cow FILE      map FILE private read-write, write a byte to each page (a private
 *                     copy of each page)                            -> ns per page
 * Every page is touched for the first time in the timed loop: a page fault each, or fewer
 * where the kernel maps several file pages in one fault (fault-around, or a whole large
 * folio of the page cache). Each mode runs once untimed first (a warm-up, which also
 * brings FILE into the page cache), then once timed. FILE must be filled with 0x5a (the
 * harness makes it); the results are checked, and a wrong byte is an error. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILL 0x5a
#define CHURN_BYTES (1L << 20)

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static char *map(size_t len, int prot, int flags, int fd) {
    char *p = mmap(NULL, len, prot, flags, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static void unmap(char *p, size_t len) {
    if (munmap(p, len) != 0) {
        perror("munmap");
        exit(1);
    }
}

/* N rounds of map, touch, unmap of 1 MiB; the time per round. */
static double churn(long n, long page) {
    double a = now_ns();
    for (long i = 0; i < n; i++) {
        volatile char *p = map(CHURN_BYTES, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1);
        for (long off = 0; off < CHURN_BYTES; off += page) p[off] = 1;
        unmap((char *)p, CHURN_BYTES);
    }
    return (now_ns() - a) / n;
}

/* Page faults so far (minor and major), or -1 if getrusage cannot tell. */
static long faults(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_minflt + ru.ru_majflt;
}

/* Maps LEN bytes (of FD, or anonymous if FD < 0), touches each page once (a write if
 * WRITE, else a read), checks what the pages hold, unmaps. Prints, if LABEL is not NULL,
 * the time per page of the touching alone and the faults it took per page. */
static void first_touch(const char *label, size_t len, int fd, int write, long page) {
    int flags = MAP_PRIVATE | (fd < 0 ? MAP_ANONYMOUS : 0);
    volatile char *p = map(len, write ? PROT_READ | PROT_WRITE : PROT_READ, flags, fd);
    long pages = len / page;
    unsigned long sum = 0;
    long f = faults();
    double a = now_ns();
    if (write)
        for (long i = 0; i < pages; i++) p[i * page] = (char)i;
    else
        for (long i = 0; i < pages; i++) sum += p[i * page];
    double ns = (now_ns() - a) / pages;
    long f2 = faults();
    for (long i = 0; i < pages; i++) {
        /* A written page holds the byte written; the rest of it, and an unwritten page,
         * what the file holds (or zeros). */
        char want = write ? (char)i : fd < 0 ? 0 : FILL;
        char rest = fd < 0 ? 0 : FILL;
        if (p[i * page] != want || p[i * page + page - 1] != rest) {
            fprintf(stderr, "mem: page %ld holds %#x..%#x, not %#x..%#x\n", i,
                    p[i * page] & 0xff, p[i * page + page - 1] & 0xff, want & 0xff,
                    rest & 0xff);
            exit(1);
        }
    }
    if (!write && sum != (unsigned long)pages * FILL) {
        fprintf(stderr, "mem: read %lu, not %lu\n", sum, (unsigned long)pages * FILL);
        exit(1);
    }
    unmap((char *)p, len);
    if (!label) return;
    printf("%s %.0f ns/page", label, ns);
    if (f >= 0 && f2 >= 0) printf(" %.4f faults/page", (double)(f2 - f) / pages);
    printf("\n");
}

/* Opens FILE and returns its size; *fd is the descriptor. */
static size_t open_file(const char *path, int *fd) {
    struct stat st;
    *fd = open(path, O_RDONLY);
    if (*fd < 0 || fstat(*fd, &st) != 0) {
        perror(path);
        exit(1);
    }
    return st.st_size;
}

int main(int argc, char **argv) {
    long page = sysconf(_SC_PAGESIZE);
    if (argc != 3) {
        fprintf(stderr, "usage: mem churn N | anon MIB | read FILE | cow FILE\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "churn")) {
        long n = atol(argv[2]);
        churn(n / 10 + 1, page);
        printf("churn %.0f ns/iteration\n", churn(n, page));
    } else if (!strcmp(mode, "anon")) {
        size_t len = (size_t)atol(argv[2]) << 20;
        first_touch(NULL, len, -1, 1, page);
        first_touch("anon", len, -1, 1, page);
    } else if (!strcmp(mode, "read") || !strcmp(mode, "cow")) {
        int fd;
        size_t len = open_file(argv[2], &fd);
        int write = !strcmp(mode, "cow");
        first_touch(NULL, len, fd, write, page);
        first_touch(mode, len, fd, write, page);
        /* The copies were private: the file still holds what the harness wrote. */
        char c;
        if (pread(fd, &c, 1, 0) != 1 || c != FILL) {
            fprintf(stderr, "mem: %s changed the file\n", mode);
            return 1;
        }
    } else {
        fprintf(stderr, "mem: unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
