/* Page faults: accesses the protection forbids kill the process with SIGSEGV (signal(7):
 * "Invalid memory reference"), and faults just below a stack are served by growing it. Each
 * access that should fault runs in a child, and the case checks how the child ended
 * (WIFSIGNALED and WTERMSIG, through CHILD_SIGNAL). */
#include "mm.h"

#include <alloca.h>
#include <setjmp.h>
#include <signal.h>

typedef void (*code_fn)(void);

TEST(null_write_is_sigsegv) {
    pid_t pid = fork_child();
    if (pid == 0) {
        TOUCH_WRITE(NULL, 1);
        _exit(0);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(WTERMSIG(status), SIGSEGV);
}

TEST(null_read_is_sigsegv) {
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(NULL)), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(PAGE - 1)), SIGSEGV);
}

TEST(write_to_read_only_memory_is_sigsegv) {
    unsigned char *p = mmap(NULL, PAGE, PROT_READ, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p)), 0);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p, 1)), SIGSEGV);
    CHECK_OK(munmap(p, PAGE));
    /* Made read-only by mprotect after it was written. */
    p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 5;
    CHECK_OK(mprotect(p, PAGE, PROT_READ));
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p, 1)), SIGSEGV);
    CHECK_EQ(p[0], 5);
    CHECK_OK(munmap(p, PAGE));
}

/* Read-only because of the program itself: its code. */
TEST(write_to_program_text_is_sigsegv) {
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE((void *)&harness_register, 0xc3)), SIGSEGV);
}

TEST(prot_none_read_and_write_are_sigsegv) {
    unsigned char *p = mmap(NULL, PAGE, PROT_NONE, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p)), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p + 100, 1)), SIGSEGV);
    CHECK_OK(munmap(p, PAGE));
}

TEST(unmapped_access_is_sigsegv) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, PAGE));
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p)), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p, 1)), SIGSEGV);
}

/* Above the user address space: kernel memory, and a non-canonical address. */
TEST(kernel_address_access_is_sigsegv) {
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(0xffff888000000000UL)), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(0xffffffff81000000UL, 1)), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(0x0000800000000000UL)), SIGSEGV);
}

/* A load from the top 2 GiB (Linux's kernel image), caught by a SIGSEGV handler that
 * siglongjmps out, three times over: si_addr is the address, and the registers the
 * program resumes with are its own (the load never completes). */
static sigjmp_buf kernel_load_env;
static void *kernel_load_addr;
static void on_kernel_load(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    kernel_load_addr = si->si_addr;
    siglongjmp(kernel_load_env, 1);
}

TEST(a_caught_load_from_kernel_memory_leaves_the_program_intact) {
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = on_kernel_load;
    sa.sa_flags = SA_SIGINFO;
    CHECK_OK(sigaction(SIGSEGV, &sa, &old));
    int faults = 0;
    for (int i = 0; i < 3; i++) {
        volatile unsigned long v = 12345;
        kernel_load_addr = NULL;
        if (sigsetjmp(kernel_load_env, 1) == 0) {
            v = *(volatile unsigned long *)0xffffffff80001000UL;
        } else if (kernel_load_addr == (void *)0xffffffff80001000UL && v == 12345) {
            faults++;
        }
    }
    CHECK_OK(sigaction(SIGSEGV, &old, NULL));
    CHECK_EQ(faults, 3);
}

/* PROT_EXEC: "Pages may be executed." Code without it faults (x86-64 has no-execute pages);
 * the same bytes run once the page is made executable. The page holds one `ret`. */
TEST(execute_without_prot_exec_is_sigsegv) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 0xc3;
    CHECK_EQ(CHILD_SIGNAL(((code_fn)p)()), SIGSEGV);
    CHECK_OK(mprotect(p, PAGE, PROT_READ));
    CHECK_EQ(CHILD_SIGNAL(((code_fn)p)()), SIGSEGV);
    CHECK_OK(mprotect(p, PAGE, PROT_READ | PROT_EXEC));
    CHECK_EQ(CHILD_SIGNAL(((code_fn)p)()), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* Code mapped executable from the start runs. */
TEST(execute_prot_exec_mapping_runs) {
    unsigned char *p = mmap(NULL, PAGE, RW | PROT_EXEC, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    /* mov eax, 42; ret */
    static const unsigned char code[] = {0xb8, 42, 0, 0, 0, 0xc3};
    memcpy(p, code, sizeof code);
    CHECK_EQ(CHILD_SIGNAL(_exit(((int (*)(void))p)() == 42 ? 0 : 1)), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* Uses about 4 KiB of stack per level. */
static long __attribute__((noinline)) deep(int depth) {
    volatile unsigned char frame[4000];
    frame[0] = (unsigned char)depth;
    frame[sizeof frame - 1] = (unsigned char)depth;
    long below = depth > 0 ? deep(depth - 1) : 0;
    return below + frame[0] + frame[sizeof frame - 1];
}

/* The stack grows on demand up to RLIMIT_STACK (getrlimit(2): "The maximum size of the
 * process stack, in bytes"; 8 MiB here): a recursion 1 MiB deep works in the process. */
TEST(stack_grows_for_deep_recursion) {
    long want = 0;
    for (int d = 0; d <= 256; d++) want += 2 * (unsigned char)d;
    CHECK_EQ(deep(256), want);
}

/* Pages 4 MiB below the stack pointer, touched from the top down as code compiled with
 * -fstack-clash-protection probes them. */
static int big_alloca(size_t len) {
    volatile unsigned char *b = alloca(len);
    for (size_t off = len; off >= PAGE; off -= PAGE) b[off - PAGE] = (unsigned char)(off / PAGE);
    for (size_t off = len; off >= PAGE; off -= PAGE)
        if (b[off - PAGE] != (unsigned char)(off / PAGE)) return 1;
    return 0;
}

TEST(stack_grows_for_big_alloca) {
    struct rlimit r;
    CHECK_OK(getrlimit(RLIMIT_STACK, &r));
    CHECK(r.rlim_cur >= 6UL << 20);
    CHECK_EQ(CHILD_SIGNAL(_exit(big_alloca(4UL << 20))), 0);
}

/* setrlimit(2), RLIMIT_STACK: "Upon reaching this limit, a SIGSEGV signal is generated." */
TEST(stack_beyond_rlimit_is_sigsegv) {
    int sig = CHILD_SIGNAL({
        struct rlimit small = {1UL << 20, 1UL << 20};
        if (setrlimit(RLIMIT_STACK, &small) != 0) _exit(1);
        _exit(big_alloca(4UL << 20));
    });
    CHECK_EQ(sig, SIGSEGV);
}

/* MAP_GROWSDOWN: "This flag is used for stacks. It indicates to the kernel virtual memory
 * system that the mapping should extend downward in memory": touching the pages below it
 * maps them. Far from any other mapping, so that the stack guard gap is free. */
TEST(growsdown_mapping_grows_on_access_below) {
    size_t room = 16UL << 20;
    unsigned char *r = mmap(NULL, room, PROT_NONE, ANON, -1, 0);
    CHECK(r != MAP_FAILED);
    CHECK_OK(munmap(r, room));
    unsigned char *top = r + room - PAGE;
    unsigned char *p = mmap(top, PAGE, RW, ANON | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ((uintptr_t)p, (uintptr_t)top);
    p[0] = 1;
    int sig = CHILD_SIGNAL({
        TOUCH_WRITE(p - 1, 2);
        TOUCH_WRITE(p - PAGE - 1, 3);
        TOUCH_WRITE(p - 8 * PAGE, 4);
        if (p[-1] != 2 || p[-PAGE - 1] != 3 || p[-8 * (long)PAGE] != 4 || p[0] != 1) _exit(1);
    });
    CHECK_EQ(sig, 0);
    /* It grows in this process too, and the grown pages are zero-filled. */
    TOUCH_WRITE(p - 1, 2);
    CHECK_EQ(p[-1], 2);
    CHECK(all_are(p - PAGE, PAGE - 1, 0));
    CHECK_EQ(kwrite(p - PAGE), 0);
    CHECK_OK(munmap(r, room));
}

/* "The mapping can grow until it reaches within one page of the high end of the next lower
 * mapping, at which point touching the 'guard' page will result in a SIGSEGV signal." */
TEST(growsdown_stops_at_next_lower_mapping) {
    unsigned char *r = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(r != MAP_FAILED);
    CHECK_OK(munmap(r + PAGE, 2 * PAGE));
    unsigned char *p =
        mmap(r + 2 * PAGE, PAGE, RW, ANON | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ((uintptr_t)p, (uintptr_t)(r + 2 * PAGE));
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p - 1, 1)), SIGSEGV);
    CHECK(is_free(r + PAGE, PAGE));
    CHECK_OK(munmap(r, 3 * PAGE));
}
