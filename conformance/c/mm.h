/* Helpers for the memory-manager areas (mmap_file, mremap, madvise, mincore, mlock, msync,
 * fault, cow).
 *
 * A fault is observed only through the termination signal of a child that takes it: the
 * sandbox has no signal handlers yet, and a fault in the case's own process would lose its
 * output. Memory that must not be touched is probed with a system call that writes to it
 * (clock_gettime), which fails with EFAULT instead of raising a signal.
 *
 * Included by the area files only (it is not an area: the runner builds `*.c`). */
#ifndef CONFORMANCE_MM_H
#define CONFORMANCE_MM_H

#include "scratch.h"

#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

/* fork(), with core dumps off in the child: the faults it is made for are expected. */
__attribute__((unused)) static pid_t fork_child(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
    }
    return pid;
}

/* Waits for child pid: the signal that killed it, 0 if it exited with 0, 256 + the code if
 * it exited with another (which says where a child's own check failed), -1 if there was no
 * such child. */
__attribute__((unused)) static int wait_signal(pid_t pid) {
    int status;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid) return -1;
    if (WIFSIGNALED(status)) return WTERMSIG(status);
    if (!WIFEXITED(status)) return -1;
    return WEXITSTATUS(status) == 0 ? 0 : 256 + WEXITSTATUS(status);
}

/* Runs the statements in a child that then exits with 0; evaluates to wait_signal() of it:
 * the signal that killed the child, 0 if the statements ran through. */
#define CHILD_SIGNAL(...)                                                                     \
    ({                                                                                        \
        pid_t _pid = fork_child();                                                            \
        if (_pid == 0) {                                                                      \
            __VA_ARGS__;                                                                      \
            _exit(0);                                                                         \
        }                                                                                     \
        wait_signal(_pid);                                                                    \
    })

/* Reads / writes one byte so that the compiler cannot leave the access out. */
#define TOUCH_READ(p) ((void)*(volatile unsigned char *)(p))
#define TOUCH_WRITE(p, v) (*(volatile unsigned char *)(p) = (unsigned char)(v))

/* Can the kernel write 16 bytes at p? 0 if so, -1 with EFAULT if not. */
__attribute__((unused)) static long kwrite(void *p) {
    return syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p);
}

/* 1 if [p, p+len) is entirely unmapped, 0 if some of it is mapped; maps nothing either way. */
__attribute__((unused)) static int is_free(void *p, size_t len) {
    void *q = mmap(p, len, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
    if (q == MAP_FAILED) return 0;
    munmap(q, len);
    return q == p;
}

/* 1 if the n bytes at p all equal c. */
__attribute__((unused)) static int all_are(const volatile unsigned char *p, size_t n,
                                           unsigned char c) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != c) return 0;
    return 1;
}

/* The number in a "Name:   123 kB" line of /proc/self/status (proc_pid_status(5)); -1 if the
 * file or the line is missing. */
__attribute__((unused)) static long status_kb(const char *name) {
    char buf[8192], key[64];
    if (get_file("/proc/self/status", buf, sizeof buf) <= 0) return -1;
    snprintf(key, sizeof key, "\n%s:", name);
    const char *line = strstr(buf, key);
    if (!line) return -1;
    char *end;
    long v = strtol(line + strlen(key), &end, 10);
    return strncmp(end, " kB\n", 4) == 0 ? v : -1;
}

/* Creates path holding `pages` pages, page k filled with 'A' + k, and opens it O_RDWR: the
 * descriptor, or -1. */
__attribute__((unused)) static int file_of_pages(const char *path, int pages) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    unsigned char page[PAGE];
    for (int k = 0; k < pages; k++) {
        memset(page, 'A' + k, PAGE);
        if (write(fd, page, PAGE) != (long)PAGE) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* mincore(2) for the one page at p: 1 if resident, 0 if not, -1 on error. */
__attribute__((unused)) static int resident(void *p) {
    unsigned char v = 0;
    if (mincore(p, PAGE, &v) != 0) return -1;
    return v & 1;
}

#endif
