/* Threads (clone(2) with CLONE_THREAD, pthreads(7), nptl(7)): creation and join, ids, TLS,
 * how threads end and how a process ends with them, locks under contention, signals and
 * threads, execve from a thread, /proc/self/task, robust mutexes, and a thread made with a
 * raw clone. */
#include "sig.h"

#include <asm/prctl.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* ---- creation, join, ids ---- */

static void *return_arg_times_3(void *arg) {
    return (void *)((uintptr_t)arg * 3);
}

/* pthread_create(3)/pthread_join(3): the thread runs, and join returns its return value. */
TEST(create_and_join_one_thread) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, return_arg_times_3, (void *)14), 0);
    void *ret = NULL;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == (void *)42);
}

TEST(create_and_join_eight_threads) {
    pthread_t t[8];
    for (uintptr_t i = 0; i < 8; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, return_arg_times_3, (void *)i), 0);
    for (uintptr_t i = 0; i < 8; i++) {
        void *ret = NULL;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK(ret == (void *)(i * 3));
    }
}

static int started;
static void *count_start(void *arg) {
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    return arg;
}

/* Two hundred threads at once (64 KiB stacks), all joined. */
TEST(create_and_join_two_hundred_threads) {
    static pthread_t t[200];
    pthread_attr_t attr;
    CHECK_EQ(pthread_attr_init(&attr), 0);
    CHECK_EQ(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    started = 0;
    for (uintptr_t i = 0; i < 200; i++)
        CHECK_EQ(pthread_create(&t[i], &attr, count_start, (void *)i), 0);
    for (uintptr_t i = 0; i < 200; i++) {
        void *ret = NULL;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK(ret == (void *)i);
    }
    CHECK_EQ(started, 200);
    pthread_attr_destroy(&attr);
}

static pthread_barrier_t barrier;
static struct ids {
    pid_t pid, tid, ppid;
} ids[8];

static void *note_ids(void *arg) {
    struct ids *me = arg;
    me->pid = getpid();
    me->tid = gettid_();
    me->ppid = getppid();
    /* All alive at once, so that tids cannot be reused among them. */
    pthread_barrier_wait(&barrier);
    return NULL;
}

/* clone(2) CLONE_THREAD: "the threads in a thread group share the same PID (thread group
 * identifier)" and each has its own TID; the main thread's TID is the PID; getppid is the
 * process's parent in every thread. */
TEST(threads_share_the_pid_and_have_their_own_tids) {
    CHECK_EQ(gettid_(), getpid());
    CHECK_EQ(pthread_barrier_init(&barrier, NULL, 8), 0);
    pthread_t t[8];
    for (int i = 0; i < 8; i++) CHECK_EQ(pthread_create(&t[i], NULL, note_ids, &ids[i]), 0);
    for (int i = 0; i < 8; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(ids[i].pid, getpid());
        CHECK_EQ(ids[i].ppid, getppid());
        CHECK(ids[i].tid > 0);
        CHECK(ids[i].tid != getpid());
        for (int j = 0; j < i; j++) CHECK(ids[i].tid != ids[j].tid);
    }
    pthread_barrier_destroy(&barrier);
}

static __thread int tls_value = 5;
static struct tls_seen {
    int initial, after;
    uintptr_t addr, fs_base;
} tls_seen[4];

static void *use_tls(void *arg) {
    struct tls_seen *me = arg;
    me->initial = tls_value;
    tls_value = 100 + (int)(me - tls_seen);
    pthread_barrier_wait(&barrier);
    me->after = tls_value;
    me->addr = (uintptr_t)&tls_value;
    unsigned long base = 0;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &base);
    me->fs_base = base;
    return NULL;
}

/* __thread variables have "one instance per thread", each starting from the initializer,
 * through a thread pointer (fs base) of each thread's own. */
TEST(thread_local_storage_is_per_thread) {
    tls_value = 7;
    CHECK_EQ(pthread_barrier_init(&barrier, NULL, 4), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, use_tls, &tls_seen[i]), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    unsigned long main_base = 0;
    CHECK_OK(syscall(SYS_arch_prctl, ARCH_GET_FS, &main_base));
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(tls_seen[i].initial, 5);
        CHECK_EQ(tls_seen[i].after, 100 + i);
        CHECK(tls_seen[i].addr != (uintptr_t)&tls_value);
        CHECK(tls_seen[i].fs_base != main_base);
        for (int j = 0; j < i; j++) {
            CHECK(tls_seen[i].addr != tls_seen[j].addr);
            CHECK(tls_seen[i].fs_base != tls_seen[j].fs_base);
        }
    }
    CHECK_EQ(tls_value, 7);
    pthread_barrier_destroy(&barrier);
}

/* ---- how threads end ---- */

static void *exit_7(void *arg) {
    (void)arg;
    pthread_exit((void *)7);
}

static void *raw_exit(void *arg) {
    (void)arg;
    syscall(SYS_exit, 0);
    return NULL;
}

/* pthread_exit(3) and the bare exit(2) system call end only the calling thread ("exit()
 * terminates only the calling thread ... exit_group(2) terminates all threads"). A bare exit
 * still wakes pthread_join: glibc creates threads with CLONE_CHILD_CLEARTID, and the kernel
 * clears the tid and does a futex wake when the thread exits. */
TEST(thread_exit_ends_only_that_thread) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, exit_7, NULL), 0);
    void *ret = NULL;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == (void *)7);
    CHECK_EQ(pthread_create(&t, NULL, raw_exit, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(kill(getpid(), 0), 0);
}

static void *exit_group_7(void *arg) {
    (void)arg;
    _exit(7);
}

static void *fault_null(void *arg) {
    (void)arg;
    *(volatile int *)arg = 1;
    return NULL;
}

/* exit_group(2) from any thread "terminates all threads" of the process, with that status,
 * even one blocked in a system call; a fault in any thread kills the whole process. */
TEST(exit_group_or_a_fault_in_a_thread_ends_the_process) {
    pid_t pid = fork_quiet();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, exit_group_7, NULL)) _exit(1);
        for (;;) pause();
    }
    CHECK_EQ(exit_code_of(pid), 7);
    pid = fork_quiet();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, fault_null, NULL)) _exit(1);
        int p[2];
        pipe(p);
        char c;
        read(p[0], &c, 1);
        _exit(2);
    }
    CHECK_EQ(term_signal_of(pid), SIGSEGV);
}

static void *sleep_forever(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

/* SIGKILL to a process ends all its threads. */
TEST(sigkill_ends_every_thread) {
    int p[2];
    CHECK_OK(pipe(p));
    pid_t pid = fork_quiet();
    if (pid == 0) {
        for (int i = 0; i < 4; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, sleep_forever, NULL)) _exit(1);
        }
        write_byte(p[1], 'r');
        for (;;) pause();
    }
    close(p[1]);
    CHECK_EQ(read_byte_within(p[0], BOUND_MS), 'r');
    close(p[0]);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(term_signal_of(pid), SIGKILL);
}

static int leader_gone[2], parent_saw[2], main_exited[2];
static void *outlive_main(void *arg) {
    (void)arg;
    char c;
    if (read(main_exited[0], &c, 1) != 1) _exit(3);
    /* Give the main thread time to finish exiting; the parent then checks that the process
     * is still there. */
    msleep(20);
    write_byte(leader_gone[1], 't');
    if (read_byte_within(parent_saw[0], BOUND_MS) != 'k') _exit(4);
    _exit(42);
}

/* pthread_exit(3): "After the last thread in a process terminates, the process terminates"
 * -- not before: the main thread may leave first and the others keep running, and the
 * process's status is the one the last of them gives. */
TEST(main_thread_pthread_exit_leaves_the_others_running) {
    CHECK_OK(pipe(leader_gone));
    CHECK_OK(pipe(parent_saw));
    CHECK_OK(pipe(main_exited));
    pid_t pid = fork_quiet();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, outlive_main, NULL)) _exit(1);
        write_byte(main_exited[1], 'm');
        pthread_exit(NULL);
    }
    CHECK_EQ(read_byte_within(leader_gone[0], BOUND_MS), 't');
    int status;
    CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
    CHECK_OK(write_byte(parent_saw[1], 'k'));
    CHECK_EQ(exit_code_of(pid), 42);
}

/* ---- locks ---- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go, through_gate;
static long counter;

static void *gate_then_count(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!go) pthread_cond_wait(&cond, &lock);
    through_gate++;
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* Eight threads wait on a condition variable, are released by one broadcast, and then
 * increment a counter 10000 times each under a mutex: nothing is lost. */
TEST(mutex_and_condvar_under_contention) {
    go = through_gate = 0;
    counter = 0;
    pthread_t t[8];
    for (int i = 0; i < 8; i++) CHECK_EQ(pthread_create(&t[i], NULL, gate_then_count, NULL), 0);
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 8; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(through_gate, 8);
    CHECK_EQ(counter, 80000);
}

/* ---- signals and threads ---- */

static volatile int handled_on;
static void note_tid(int sig) {
    (void)sig;
    handled_on = gettid_();
}

static volatile int worker_tid;
static sem_t release;

/* Unblocks `arg` (a signal number, 0 for none), says its tid, and waits for release. */
static void *worker(void *arg) {
    int sig = (int)(uintptr_t)arg;
    if (sig) mask_one(SIG_UNBLOCK, sig);
    worker_tid = gettid_();
    while (sem_wait(&release) != 0 && errno == EINTR) {
    }
    return NULL;
}

static int start_worker(pthread_t *t, int unblock) {
    worker_tid = 0;
    handled_on = 0;
    if (sem_init(&release, 0, 0)) return -1;
    if (pthread_create(t, NULL, worker, (void *)(uintptr_t)unblock)) return -1;
    return wait_flag(&worker_tid, BOUND_MS) ? 0 : -1;
}

static int stop_worker(pthread_t t) {
    sem_post(&release);
    return pthread_join(t, NULL);
}

/* pthread_kill(3) "sends the signal sig to thread, a thread in the same process": the
 * handler runs on that thread. */
TEST(pthread_kill_runs_the_handler_on_that_thread) {
    CHECK_OK(on_signal(SIGUSR1, note_tid, 0));
    pthread_t t;
    CHECK_OK(start_worker(&t, 0));
    CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
    CHECK(wait_flag(&handled_on, BOUND_MS));
    CHECK_EQ(handled_on, worker_tid);
    CHECK_EQ(tgkill_(getpid(), worker_tid, SIGUSR1), 0);
    CHECK_EQ(stop_worker(t), 0);
    CHECK_OK(set_default(SIGUSR1));
}

/* signal(7): "A process-directed signal may be delivered to any one of the threads that
 * does not currently have the signal blocked." */
TEST(process_signal_goes_to_the_thread_that_does_not_block_it) {
    CHECK_OK(on_signal(SIGUSR1, note_tid, 0));
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR1));
    pthread_t t;
    CHECK_OK(start_worker(&t, SIGUSR1));
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK(wait_flag(&handled_on, BOUND_MS));
    CHECK_EQ(handled_on, worker_tid);
    CHECK(!is_pending(SIGUSR1));
    CHECK_EQ(stop_worker(t), 0);
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR1));
    CHECK_OK(set_default(SIGUSR1));
}

static volatile int late_pending_seen;
static sem_t unblock_now;
static void *unblock_later(void *arg) {
    (void)arg;
    worker_tid = gettid_();
    while (sem_wait(&unblock_now) != 0 && errno == EINTR) {
    }
    late_pending_seen = is_pending(SIGUSR2);
    mask_one(SIG_UNBLOCK, SIGUSR2);
    return NULL;
}

/* A process-directed signal that every thread blocks stays pending for the process (each
 * thread's sigpending shows it: "the union of the set of signals pending for the process
 * and the signals pending for the calling thread") and goes to the first thread that
 * unblocks it. */
TEST(process_signal_blocked_everywhere_waits_for_a_thread_to_unblock_it) {
    CHECK_OK(on_signal(SIGUSR2, note_tid, 0));
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR2));
    CHECK_OK(sem_init(&unblock_now, 0, 0));
    worker_tid = 0;
    handled_on = 0;
    late_pending_seen = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, unblock_later, NULL), 0);
    CHECK(wait_flag(&worker_tid, BOUND_MS));
    CHECK_OK(kill(getpid(), SIGUSR2));
    CHECK(is_pending(SIGUSR2));
    CHECK_EQ(handled_on, 0);
    CHECK_OK(sem_post(&unblock_now));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(late_pending_seen);
    CHECK_EQ(handled_on, worker_tid);
    CHECK(!is_pending(SIGUSR2));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR2));
    CHECK_OK(set_default(SIGUSR2));
}

static volatile int child_inherited, child_pending;
static sem_t checked;
static void *own_mask(void *arg) {
    (void)arg;
    child_inherited = is_blocked(SIGUSR2);
    mask_one(SIG_UNBLOCK, SIGUSR2);
    mask_one(SIG_BLOCK, SIGHUP);
    mask_one(SIG_BLOCK, SIGWINCH);
    worker_tid = gettid_();
    while (sem_wait(&checked) != 0 && errno == EINTR) {
    }
    child_pending = is_pending(SIGWINCH);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGWINCH);
    struct timespec zero = {0, 0};
    sigtimedwait(&s, NULL, &zero);
    return NULL;
}

/* pthread_sigmask(3): "The signal mask is a per-thread attribute"; "A new thread inherits a
 * copy of its creator's signal mask". A signal sent to one thread is pending for that thread
 * only. */
TEST(signal_masks_and_thread_pending_sets_are_per_thread) {
    CHECK_OK(mask_one(SIG_BLOCK, SIGUSR2));
    CHECK_OK(mask_one(SIG_BLOCK, SIGWINCH));
    CHECK_OK(on_signal(SIGWINCH, note_tid, 0));
    CHECK_OK(sem_init(&checked, 0, 0));
    worker_tid = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, own_mask, NULL), 0);
    CHECK(wait_flag(&worker_tid, BOUND_MS));
    CHECK(is_blocked(SIGUSR2));
    CHECK(!is_blocked(SIGHUP));
    CHECK_EQ(tgkill_(getpid(), worker_tid, SIGWINCH), 0);
    CHECK(!is_pending(SIGWINCH));
    CHECK_OK(sem_post(&checked));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(child_inherited);
    CHECK(child_pending);
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGUSR2));
    CHECK_OK(mask_one(SIG_UNBLOCK, SIGWINCH));
    CHECK_OK(set_default(SIGWINCH));
}

/* ---- execve from a thread ---- */

static char self_exe[4096];
static void *exec_self(void *arg) {
    char **env = arg;
    char *argv[] = {"thread", "--case", "execve_from_a_thread_leaves_one_thread", NULL};
    execve(self_exe, argv, env);
    _exit(120);
}

static int count_tasks(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* execve(2): "All threads other than the calling thread are destroyed during an execve()";
 * and if a non-leader thread calls it, it takes over the thread group leader's PID. The new
 * image (this same program, told so through the environment) checks it has one thread whose
 * tid is the original pid. */
TEST(execve_from_a_thread_leaves_one_thread) {
    const char *expect = getenv("CONF_EXEC_FROM_THREAD");
    if (expect) {
        int ok = getpid() == atoi(expect) && gettid_() == getpid() && count_tasks() == 1;
        _exit(ok ? 0 : 99);
    }
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    CHECK(n > 0);
    self_exe[n] = 0;
    pid_t pid = fork_quiet();
    if (pid == 0) {
        static char var[64], *env[2];
        snprintf(var, sizeof var, "CONF_EXEC_FROM_THREAD=%d", getpid());
        env[0] = var;
        env[1] = NULL;
        pthread_t t;
        if (pthread_create(&t, NULL, sleep_forever, NULL)) _exit(121);
        if (pthread_create(&t, NULL, exec_self, env)) _exit(122);
        for (;;) pause();
    }
    CHECK_EQ(exit_code_of(pid), 0);
}

static void *hold_ids(void *arg) {
    struct ids *me = arg;
    me->tid = gettid_();
    pthread_barrier_wait(&barrier); /* ids noted */
    pthread_barrier_wait(&barrier); /* the main thread has looked */
    return NULL;
}

/* proc(5): "/proc/[pid]/task ... contains one subdirectory for each thread in the process",
 * named by its tid; /proc/self/status "Threads:" counts them. */
TEST(proc_self_task_lists_every_thread) {
    CHECK_EQ(pthread_barrier_init(&barrier, NULL, 5), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, hold_ids, &ids[i]), 0);
    pthread_barrier_wait(&barrier);
    int n = count_tasks();
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/self/task/%d", getpid());
    int listed = stat(path, &st) == 0;
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "/proc/self/task/%d", ids[i].tid);
        listed = listed && stat(path, &st) == 0;
    }
    char status[4096] = {0};
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, status, sizeof status - 1) < 0) status[0] = 0;
        close(fd);
    }
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&barrier);
    CHECK_EQ(n, 5);
    CHECK(listed);
    CHECK(strstr(status, "\nThreads:\t5\n") != NULL);
}

/* ---- robust mutexes ---- */

static pthread_mutex_t robust;
static void *lock_and_leave(void *arg) {
    (void)arg;
    pthread_mutex_lock(&robust);
    return NULL;
}

/* pthread_mutex_lock, but giving up (ETIMEDOUT) after a few seconds rather than hanging
 * when the owner's death goes unnoticed. */
static int lock_within(pthread_mutex_t *m) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += BOUND_MS / 1000;
    return pthread_mutex_timedlock(m, &until);
}

static int init_robust(pthread_mutex_t *m, int pshared) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared) pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return r;
}

/* pthread_mutexattr_setrobust(3): "If the owner of a robust mutex terminates while holding
 * the mutex, the mutex becomes inconsistent and the next thread that acquires the mutex is
 * notified of the fact by the return value EOWNERDEAD"; made consistent it works again; left
 * inconsistent and unlocked it is ENOTRECOVERABLE. (The kernel walks the dead thread's
 * robust list, set_robust_list(2).) */
TEST(robust_mutex_of_a_dead_thread_is_eownerdead) {
    CHECK_EQ(init_robust(&robust, 0), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, lock_and_leave, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(lock_within(&robust), EOWNERDEAD);
    CHECK_EQ(pthread_mutex_consistent(&robust), 0);
    CHECK_EQ(pthread_mutex_unlock(&robust), 0);
    CHECK_EQ(pthread_mutex_lock(&robust), 0);
    CHECK_EQ(pthread_mutex_unlock(&robust), 0);
    CHECK_EQ(pthread_create(&t, NULL, lock_and_leave, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(lock_within(&robust), EOWNERDEAD);
    CHECK_EQ(pthread_mutex_unlock(&robust), 0);
    CHECK_EQ(lock_within(&robust), ENOTRECOVERABLE);
}

/* The same across processes, for a process-shared robust mutex in shared memory whose owner
 * process exits. */
TEST(robust_mutex_of_a_dead_process_is_eownerdead) {
    pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                              -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK_EQ(init_robust(m, 1), 0);
    pid_t pid = fork_quiet();
    if (pid == 0) _exit(pthread_mutex_lock(m) == 0 ? 0 : 1);
    CHECK_EQ(exit_code_of(pid), 0);
    CHECK_EQ(lock_within(m), EOWNERDEAD);
    CHECK_EQ(pthread_mutex_consistent(m), 0);
    CHECK_EQ(pthread_mutex_unlock(m), 0);
    munmap(m, 4096);
}

/* ---- a thread from a raw clone ---- */

/* raw_clone(flags, stack_top, ptid, ctid, tls, fn, arg): clone(2) itself; the child runs
 * fn(arg) on the new stack and then exit(2)s with its result. Returns the child's tid (or
 * -errno) in the parent. */
__asm__(".text\n"
        ".globl raw_clone\n"
        ".type raw_clone, @function\n"
        "raw_clone:\n"
        "  mov 8(%rsp), %rax\n"
        "  sub $16, %rsi\n"
        "  mov %r9, 0(%rsi)\n"
        "  mov %rax, 8(%rsi)\n"
        "  mov %rcx, %r10\n"
        "  mov $56, %eax\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jnz 1f\n"
        "  pop %rax\n"
        "  pop %rdi\n"
        "  xor %ebp, %ebp\n"
        "  call *%rax\n"
        "  mov %rax, %rdi\n"
        "  mov $60, %eax\n"
        "  syscall\n"
        "  hlt\n"
        "1:\n"
        "  ret\n");
long raw_clone(unsigned long flags, void *stack_top, pid_t *ptid, pid_t *ctid, void *tls,
               long (*fn)(void *), void *arg);

struct raw_seen {
    long tid, pid, fs0, fs_base, on_stack;
};

static char *raw_stack;

static long raw_syscall2(long n, long a, long b) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(n), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}

/* Runs with a TLS block that is not glibc's: makes no libc calls at all. */
__attribute__((no_stack_protector)) static long raw_thread(void *arg) {
    struct raw_seen *seen = arg;
    long fs0, base = 0;
    volatile char local;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(fs0));
    seen->fs0 = fs0;
    raw_syscall2(SYS_arch_prctl, ARCH_GET_FS, (long)&base);
    seen->fs_base = base;
    seen->tid = raw_syscall2(SYS_gettid, 0, 0);
    seen->pid = raw_syscall2(SYS_getpid, 0, 0);
    seen->on_stack = (char *)&local >= raw_stack && (char *)&local < raw_stack + 65536;
    return 0;
}

/* A thread made the way pthread_create makes one, with a 64 KiB stack and a TLS block of its
 * own: CLONE_PARENT_SETTID stores the tid before clone returns, CLONE_SETTLS sets fs base,
 * and at its exit(2) CLONE_CHILD_CLEARTID zeroes the tid word and wakes a futex waiter. */
TEST(raw_clone_thread_with_settls_and_cleartid) {
    raw_stack = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(raw_stack != MAP_FAILED);
    static struct {
        void *self;
        long pad[63];
    } tls __attribute__((aligned(64)));
    tls.self = &tls;
    static struct raw_seen seen;
    memset(&seen, 0, sizeof seen);
    static pid_t tid_word;
    tid_word = -1;
    unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                          CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                          CLONE_CHILD_CLEARTID;
    long tid = raw_clone(flags, raw_stack + 65536, &tid_word, &tid_word, &tls, raw_thread, &seen);
    CHECK(tid > 0);
    pid_t first = __atomic_load_n(&tid_word, __ATOMIC_SEQ_CST);
    CHECK(first == tid || first == 0);
    /* Wait for the clear: FUTEX_WAIT on the tid word while it still holds the tid. */
    long start = now_ns(CLOCK_MONOTONIC);
    pid_t v;
    while ((v = __atomic_load_n(&tid_word, __ATOMIC_SEQ_CST)) != 0) {
        CHECK(now_ns(CLOCK_MONOTONIC) - start < BOUND_MS * 1000000L);
        struct timespec ts = {0, 100 * 1000 * 1000};
        futex(&tid_word, FUTEX_WAIT, v, &ts, NULL, 0);
    }
    CHECK_EQ(seen.tid, tid);
    CHECK_EQ(seen.pid, getpid());
    CHECK(seen.fs0 == (long)&tls);
    CHECK(seen.fs_base == (long)&tls);
    CHECK(seen.on_stack);
    CHECK_EQ(kill(getpid(), 0), 0);
    munmap(raw_stack, 65536);
}

/* ---- the floating-point environment ---- */

static unsigned read_mxcsr(void) {
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}
static void write_mxcsr(unsigned v) { __asm__ volatile("ldmxcsr %0" ::"m"(v)); }
static unsigned short read_fcw(void) {
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}
static void write_fcw(unsigned short v) { __asm__ volatile("fldcw %0" ::"m"(v)); }

static void *read_fp_env(void *arg) {
    unsigned *out = arg;
    out[0] = read_mxcsr();
    out[1] = read_fcw();
    return NULL;
}

/* pthread_create(3) (POSIX): "The floating-point environment shall be inherited from the
 * calling thread"; clone(2) copies the FPU state. SSE and x87 rounding set upward here. */
TEST(a_new_thread_inherits_the_floating_point_environment) {
    unsigned old_mxcsr = read_mxcsr();
    unsigned short old_fcw = read_fcw();
    write_mxcsr((old_mxcsr & ~0x6000u) | 0x4000u);
    write_fcw((unsigned short)((old_fcw & ~0x0c00) | 0x0800));
    unsigned want_mxcsr = read_mxcsr(), want_fcw = read_fcw();
    unsigned got[2] = {0, 0};
    pthread_t t;
    int rc = pthread_create(&t, NULL, read_fp_env, got);
    if (rc == 0) pthread_join(t, NULL);
    write_mxcsr(old_mxcsr);
    write_fcw(old_fcw);
    CHECK_EQ(rc, 0);
    CHECK_EQ(got[0], want_mxcsr);
    CHECK_EQ(got[1], want_fcw);
}

/* fork(2): the child is a copy of the parent, its floating-point state included. */
TEST(a_forked_child_inherits_the_floating_point_environment) {
    unsigned old_mxcsr = read_mxcsr();
    write_mxcsr((old_mxcsr & ~0x6000u) | 0x2000u);
    unsigned want = read_mxcsr();
    pid_t pid = fork();
    if (pid == 0) _exit(read_mxcsr() == want ? 0 : 1);
    write_mxcsr(old_mxcsr);
    CHECK(pid > 0);
    CHECK_EQ(exit_code_of(pid), 0);
}
