/* fork(2), vfork(2), clone(2) and clone3(2) without threads: what the child gets and what
 * it shares with its parent. */
#include "scratch.h"

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* Waits for `pid` and returns its exit status, or -1 if it did not exit normally. */
static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* "On success, the PID of the child process is returned in the parent, and 0 is returned
 * in the child." The child's parent is the caller. */
TEST(returns_pid_to_parent_and_zero_to_child) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) _exit(getppid() == parent && getpid() != parent ? 0 : 1);
    CHECK(pid > 0);
    CHECK(pid != parent);
    CHECK_EQ(exit_code(pid), 0);
}

/* "The child process and the parent process run in separate memory spaces." */
TEST(memory_is_a_copy) {
    static volatile int value = 1;
    char *heap = malloc(64);
    CHECK(heap != NULL);
    strcpy(heap, "parent");
    pid_t pid = fork();
    if (pid == 0) {
        int ok = value == 1 && strcmp(heap, "parent") == 0;
        value = 2;
        strcpy(heap, "child");
        _exit(ok ? 0 : 1);
    }
    value = 3;
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(value, 3);
    CHECK(strcmp(heap, "parent") == 0);
    free(heap);
}

/* MAP_SHARED memory stays shared across fork; MAP_PRIVATE is copied. */
TEST(shared_mappings_stay_shared_private_ones_are_copied) {
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int *private = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED && private != MAP_FAILED);
    *shared = 1;
    *private = 1;
    pid_t pid = fork();
    if (pid == 0) {
        *shared = 42;
        *private = 42;
        _exit(0);
    }
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(*shared, 42);
    CHECK_EQ(*private, 1);
    munmap(shared, 4096);
    munmap(private, 4096);
}

/* "The child inherits copies of the parent's set of open file descriptors. Each file
 * descriptor in the child refers to the same open file description": the offset is
 * shared, but closing in the child leaves the parent's descriptor open. */
TEST(descriptors_share_the_open_file_description) {
    CHECK(scratch());
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = write(fd, "abc", 3) == 3;
        close(fd);
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    CHECK_EQ(write(fd, "d", 1), 1);
    char buf[8] = {0};
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 4);
    CHECK(strcmp(buf, "abcd") == 0);
    close(fd);
}

/* The program break and the working directory are inherited. */
TEST(break_and_working_directory_are_inherited) {
    CHECK(scratch());
    CHECK_OK(chdir(P("")));
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    void *brk_before = sbrk(0);
    pid_t pid = fork();
    if (pid == 0) {
        char here[PATH_MAX];
        int ok = getcwd(here, sizeof here) && strcmp(here, cwd) == 0 && sbrk(0) == brk_before;
        /* The child's chdir is its own. */
        ok = ok && chdir("/") == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ(exit_code(pid), 0);
    char after[PATH_MAX];
    CHECK(getcwd(after, sizeof after) != NULL);
    CHECK(strcmp(after, cwd) == 0);
}

/* vfork: "the calling thread is suspended until the child terminates ... or it makes a
 * call to execve". */
TEST(vfork_parent_waits_for_the_child) {
    pid_t pid = vfork();
    if (pid == 0) _exit(7);
    CHECK(pid > 0);
    CHECK_EQ(exit_code(pid), 7);
}

/* clone(2) ERRORS: "EINVAL CLONE_SIGHAND was specified, but CLONE_VM was not", "EINVAL
 * CLONE_THREAD was specified, but CLONE_SIGHAND was not". */
TEST(clone_rejects_inconsistent_flags) {
    CHECK_ERR(syscall(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, 0, 0, 0), EINVAL);
    CHECK_ERR(syscall(SYS_clone, CLONE_THREAD | CLONE_VM | SIGCHLD, 0, 0, 0, 0), EINVAL);
    CHECK_ERR(syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0), EINVAL);
}

/* CLONE_CHILD_SETTID stores the child's tid in the child's memory; CLONE_PARENT_SETTID in
 * the parent's. */
TEST(clone_settid_flags_store_the_tid) {
    static pid_t child_tid, parent_tid;
    child_tid = parent_tid = 0;
    long pid = syscall(SYS_clone, CLONE_CHILD_SETTID | CLONE_PARENT_SETTID | SIGCHLD, 0,
                       &parent_tid, &child_tid, 0);
    if (pid == 0) _exit(child_tid == getpid() ? 0 : 1);
    CHECK(pid > 0);
    CHECK_EQ(parent_tid, pid);
    CHECK_EQ(child_tid, 0);
    CHECK_EQ(exit_code(pid), 0);
}

/* clone3: "EINVAL size is smaller than CLONE_ARGS_SIZE_VER0"; "E2BIG size is larger than
 * the page size". A plain clone3 acts like fork. */
TEST(clone3_checks_its_size_and_forks) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    CHECK_ERR(syscall(SYS_clone3, &args, 32), EINVAL);
    CHECK_ERR(syscall(SYS_clone3, &args, 8192), E2BIG);
    CHECK_ERR(syscall(SYS_clone3, NULL, sizeof args), EFAULT);
    long pid = syscall(SYS_clone3, &args, CLONE_ARGS_SIZE_VER0);
    if (pid == 0) _exit(9);
    CHECK(pid > 0);
    CHECK_EQ(exit_code(pid), 9);
}

/* Each child gets a pid of its own, different from every live process's. */
TEST(children_get_distinct_pids) {
    pid_t pids[8];
    for (int i = 0; i < 8; i++) {
        pids[i] = fork();
        if (pids[i] == 0) _exit(i);
        CHECK(pids[i] > 0);
    }
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++) CHECK(pids[i] != pids[j]);
    for (int i = 0; i < 8; i++) CHECK_EQ(exit_code(pids[i]), i);
}
