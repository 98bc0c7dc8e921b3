/* The conformance harness's runner side: registration, --list, --case. */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>

#define MAX_CASES 512

static struct {
    const char *name;
    void (*fn)(void);
} cases[MAX_CASES];
static int ncases;
static int failed;
static const char *current;

void harness_register(const char *name, void (*fn)(void)) {
    if (ncases == MAX_CASES) {
        fprintf(stderr, "harness: too many cases\n");
        exit(2);
    }
    cases[ncases].name = name;
    cases[ncases].fn = fn;
    ncases++;
}

void harness_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    failed = 1;
    printf("FAIL %s: %s:%d: ", current, file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static int run(int i) {
    current = cases[i].name;
    failed = 0;
    cases[i].fn();
    if (!failed) printf("PASS %s\n", current);
    fflush(stdout);
    return failed;
}

int main(int argc, char **argv) {
    /* Cases were registered by constructors in reverse order on some toolchains: sort. */
    for (int i = 1; i < ncases; i++)
        for (int j = i; j > 0 && strcmp(cases[j - 1].name, cases[j].name) > 0; j--) {
            __typeof__(cases[0]) t = cases[j];
            cases[j] = cases[j - 1];
            cases[j - 1] = t;
        }
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (int i = 0; i < ncases; i++) printf("%s\n", cases[i].name);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--case")) {
        for (int i = 0; i < ncases; i++)
            if (!strcmp(cases[i].name, argv[2])) return run(i);
        fprintf(stderr, "harness: no case %s\n", argv[2]);
        return 2;
    }
    int bad = 0;
    for (int i = 0; i < ncases; i++) bad += run(i);
    return bad != 0;
}
