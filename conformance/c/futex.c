/* futex(2): wait and wake, timeouts, bitsets, WAKE_OP, requeue, futexes shared between
 * processes (anonymous and file mappings), priority-inheritance locks, and a ping-pong.
 *
 * Whether a waiter is asleep yet is found out with the futex itself: FUTEX_CMP_REQUEUE with
 * nr_wake 0 moves (and counts) the waiters of one word to another, and a second one moves
 * them back; so a case waits for "n waiters" without sleeping for it. */
#include "scratch.h"
#include "sig.h"

#include <limits.h>
#include <pthread.h>
#include <sys/mman.h>

static int scratch_word;

/* The number of waiters on uaddr (shared futexes unless op has FUTEX_PRIVATE_FLAG), left
 * where they were. */
static long waiters(int *uaddr, int private_flag) {
    long n = futex(uaddr, FUTEX_CMP_REQUEUE | private_flag, 0, (void *)(long)INT_MAX,
                   &scratch_word, *uaddr);
    if (n > 0)
        futex(&scratch_word, FUTEX_CMP_REQUEUE | private_flag, 0, (void *)(long)INT_MAX, uaddr,
              scratch_word);
    return n;
}

/* Waits (bounded) until n waiters sleep on uaddr; 1 if they do. */
static int await_waiters(int *uaddr, int private_flag, long n) {
    long start = now_ns(CLOCK_MONOTONIC);
    while (waiters(uaddr, private_flag) < n) {
        if (now_ns(CLOCK_MONOTONIC) - start > BOUND_MS * 1000000L) return 0;
        sched_yield();
    }
    return 1;
}

/* A waiter thread: FUTEX_WAIT on word while it holds `expect`, with the given op; records
 * its result. */
struct waiter {
    int *word;
    int op, expect;
    unsigned bitset;
    long ret;
    int err;
    pthread_t thread;
};

static void *wait_once(void *arg) {
    struct waiter *w = arg;
    struct timespec bound = {BOUND_MS / 1000, 0};
    if ((w->op & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) {
        /* Its timeout is absolute (CLOCK_MONOTONIC). */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        bound.tv_sec += now.tv_sec;
        bound.tv_nsec = now.tv_nsec;
    }
    errno = 0;
    w->ret = futex(w->word, w->op, w->expect, &bound, NULL, w->bitset);
    w->err = errno;
    return NULL;
}

static int start_waiter(struct waiter *w, int *word, int op, int expect, unsigned bitset) {
    w->word = word;
    w->op = op;
    w->expect = expect;
    w->bitset = bitset;
    w->ret = -2;
    w->err = 0;
    return pthread_create(&w->thread, NULL, wait_once, w);
}

/* ---- basic wait and wake ---- */

/* "EAGAIN (FUTEX_WAIT, FUTEX_WAIT_BITSET ...) The value pointed to by uaddr was not equal to
 * the expected value val at the time of the call"; FUTEX_WAKE "returns the number of waiters
 * that were woken up", 0 with none. */
TEST(wait_on_a_changed_value_is_eagain_and_wake_counts) {
    int word = 1;
    CHECK_ERR(futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EAGAIN);
    CHECK_EQ(futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 0);
    CHECK_EQ(futex(&word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0), 0);
}

/* Three waiters: FUTEX_WAKE 2 wakes two, then INT_MAX wakes the last. */
TEST(wake_wakes_at_most_val_waiters) {
    static int word;
    word = 0;
    struct waiter w[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(start_waiter(&w[i], &word, FUTEX_WAIT_PRIVATE, 0, 0), 0);
    CHECK(await_waiters(&word, FUTEX_PRIVATE_FLAG, 3));
    CHECK_EQ(futex(&word, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0), 2);
    CHECK_EQ(waiters(&word, FUTEX_PRIVATE_FLAG), 1);
    CHECK_EQ(futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(pthread_join(w[i].thread, NULL), 0);
        CHECK_EQ(w[i].ret, 0);
    }
}

/* "ETIMEDOUT The operation in futex_op employed the timeout specified in timeout, and the
 * timeout expired" -- FUTEX_WAIT's timeout is relative. */
TEST(wait_with_a_timeout_is_etimedout) {
    int word = 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    long start = now_ns(CLOCK_MONOTONIC);
    CHECK_ERR(futex(&word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0), ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) - start >= 20 * 1000 * 1000);
    struct timespec zero = {0, 0};
    CHECK_ERR(futex(&word, FUTEX_WAIT_PRIVATE, 0, &zero, NULL, 0), ETIMEDOUT);
    struct timespec bad = {0, 1000000000};
    CHECK_ERR(futex(&word, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0), EINVAL);
    bad.tv_sec = -1;
    bad.tv_nsec = 0;
    CHECK_ERR(futex(&word, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0), EINVAL);
}

/* FUTEX_WAIT_BITSET: "timeout is interpreted as an absolute value"; with
 * FUTEX_CLOCK_REALTIME it is measured against CLOCK_REALTIME (CLOCK_MONOTONIC without). One
 * in the past times out at once. */
TEST(wait_bitset_absolute_timeouts) {
    int word = 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long deadline = until.tv_sec * 1000000000L + until.tv_nsec + 20 * 1000 * 1000;
    until.tv_sec = deadline / 1000000000L;
    until.tv_nsec = deadline % 1000000000L;
    CHECK_ERR(futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &until, NULL,
                    FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
    CHECK(now_ns(CLOCK_REALTIME) >= deadline);
    clock_gettime(CLOCK_MONOTONIC, &until);
    deadline = until.tv_sec * 1000000000L + until.tv_nsec + 20 * 1000 * 1000;
    until.tv_sec = deadline / 1000000000L;
    until.tv_nsec = deadline % 1000000000L;
    CHECK_ERR(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &until, NULL, FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) >= deadline);
    struct timespec past = {1, 0};
    CHECK_ERR(futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &past, NULL,
                    FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
}

/* "EINVAL (FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET) The bit mask supplied in val3 is zero"; a
 * FUTEX_WAKE_BITSET wakes only waiters whose bitset shares a bit with its own. */
TEST(bitsets_select_which_waiters_wake) {
    static int word;
    word = 0;
    CHECK_ERR(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    CHECK_ERR(futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0), EINVAL);
    struct waiter a, b;
    CHECK_EQ(start_waiter(&a, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x1), 0);
    CHECK_EQ(start_waiter(&b, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x6), 0);
    CHECK(await_waiters(&word, FUTEX_PRIVATE_FLAG, 2));
    CHECK_EQ(futex(&word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x8), 0);
    CHECK_EQ(futex(&word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x4), 1);
    CHECK_EQ(pthread_join(b.thread, NULL), 0);
    CHECK_EQ(b.ret, 0);
    CHECK_EQ(waiters(&word, FUTEX_PRIVATE_FLAG), 1);
    /* A plain FUTEX_WAKE matches every bitset. */
    CHECK_EQ(futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(pthread_join(a.thread, NULL), 0);
    CHECK_EQ(a.ret, 0);
}

/* "EINVAL The supplied uaddr argument was not aligned on a four-byte boundary"; "EFAULT A
 * required pointer argument did not point to a valid user-space address"; "ENOSYS Invalid
 * operation specified in futex_op". */
TEST(futex_argument_errors) {
    static int words[2];
    char *odd = (char *)words + 1;
    CHECK_ERR(futex(odd, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    CHECK_ERR(futex(odd, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), EINVAL);
    CHECK_ERR(futex((void *)8, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EFAULT);
    CHECK_ERR(futex(words, FUTEX_WAIT_PRIVATE, 0, (void *)8, NULL, 0), EFAULT);
    CHECK_ERR(futex(words, 99, 0, NULL, NULL, 0), ENOSYS);
}

/* ---- WAKE_OP and requeue ---- */

/* FUTEX_WAKE_OP: "saves the original value of the futex word at uaddr2 and performs an
 * operation to modify the value of the futex at uaddr2; wakes up a maximum of val waiters
 * on the futex uaddr; and dependent on the results of a test of the original value of the
 * futex word at uaddr2, wakes up a maximum of val2 waiters on the futex uaddr2." It returns
 * the total woken. */
TEST(wake_op_modifies_uaddr2_and_wakes_by_comparison) {
    static int w1, w2;
    w1 = 0;
    w2 = 10;
    /* No waiters: just the operation. */
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_EQ, 10)),
             0);
    CHECK_EQ(w2, 15);
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP(FUTEX_OP_SET, 3, FUTEX_OP_CMP_GT, 0)),
             0);
    CHECK_EQ(w2, 3);
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP(FUTEX_OP_OR, 0xc, FUTEX_OP_CMP_NE, 3)),
             0);
    CHECK_EQ(w2, 0xf);
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP(FUTEX_OP_ANDN, 0x3, FUTEX_OP_CMP_LT, 0)),
             0);
    CHECK_EQ(w2, 0xc);
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP(FUTEX_OP_XOR, 0xff, FUTEX_OP_CMP_GE, 0)),
             0);
    CHECK_EQ(w2, 0xf3);
    /* FUTEX_OP_ARG_SHIFT: the argument is 1 << oparg. */
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP((FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT), 4, FUTEX_OP_CMP_LE, 0)),
             0);
    CHECK_EQ(w2, 16);
    /* One waiter on each word: the comparison (old 16 == 16) holds, so both wake. */
    struct waiter a, b;
    CHECK_EQ(start_waiter(&a, &w1, FUTEX_WAIT_PRIVATE, 0, 0), 0);
    CHECK_EQ(start_waiter(&b, &w2, FUTEX_WAIT_PRIVATE, 16, 0), 0);
    CHECK(await_waiters(&w1, FUTEX_PRIVATE_FLAG, 1));
    CHECK(await_waiters(&w2, FUTEX_PRIVATE_FLAG, 1));
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 16)),
             2);
    CHECK_EQ(w2, 17);
    CHECK_EQ(pthread_join(a.thread, NULL), 0);
    CHECK_EQ(pthread_join(b.thread, NULL), 0);
    CHECK_EQ(a.ret, 0);
    CHECK_EQ(b.ret, 0);
    /* Again, with a comparison that fails: only uaddr's waiter wakes. */
    w2 = 18;
    CHECK_EQ(start_waiter(&a, &w1, FUTEX_WAIT_PRIVATE, 0, 0), 0);
    CHECK_EQ(start_waiter(&b, &w2, FUTEX_WAIT_PRIVATE, 18, 0), 0);
    CHECK(await_waiters(&w1, FUTEX_PRIVATE_FLAG, 1));
    CHECK(await_waiters(&w2, FUTEX_PRIVATE_FLAG, 1));
    CHECK_EQ(futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &w2,
                   FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)),
             1);
    CHECK_EQ(w2, 19);
    CHECK_EQ(pthread_join(a.thread, NULL), 0);
    CHECK_EQ(a.ret, 0);
    CHECK_EQ(waiters(&w2, FUTEX_PRIVATE_FLAG), 1);
    CHECK_EQ(futex(&w2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 1);
    CHECK_EQ(pthread_join(b.thread, NULL), 0);
}

/* FUTEX_CMP_REQUEUE: "EAGAIN The value pointed to by uaddr is not equal to the expected
 * value val3"; otherwise it wakes val waiters, moves up to val2 of the rest to uaddr2, and
 * returns "the total number of waiters that were woken up or requeued". */
TEST(cmp_requeue_checks_the_value_and_moves_waiters) {
    static int from, to;
    from = 5;
    to = 0;
    CHECK_ERR(futex(&from, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &to, 6), EAGAIN);
    struct waiter w[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(start_waiter(&w[i], &from, FUTEX_WAIT_PRIVATE, 5, 0), 0);
    CHECK(await_waiters(&from, FUTEX_PRIVATE_FLAG, 3));
    CHECK_ERR(futex(&from, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &to, 4), EAGAIN);
    CHECK_EQ(futex(&from, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &to, 5), 2);
    /* One woke, one moved, one stayed. */
    CHECK_EQ(futex(&from, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(futex(&to, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(pthread_join(w[i].thread, NULL), 0);
        CHECK_EQ(w[i].ret, 0);
    }
}

/* ---- between processes ---- */

/* A child waits on a word in the parent's MAP_SHARED anonymous page (a shared futex, keyed by
 * the page, not the address space); the parent's FUTEX_WAKE wakes it. */
TEST(wake_across_processes_over_shared_anonymous_memory) {
    int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(word != MAP_FAILED);
    *word = 0;
    pid_t pid = fork_quiet();
    if (pid == 0) {
        struct timespec bound = {BOUND_MS / 1000, 0};
        while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == 0)
            if (futex(word, FUTEX_WAIT, 0, &bound, NULL, 0) && errno == ETIMEDOUT) _exit(1);
        _exit(*word == 1 ? 0 : 2);
    }
    CHECK(await_waiters(word, 0, 1));
    __atomic_store_n(word, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(futex(word, FUTEX_WAKE, 1, NULL, NULL, 0), 1);
    CHECK_EQ(exit_code_of(pid), 0);
    munmap(word, 4096);
}

/* The same over a shared file mapping that each process maps for itself (at different
 * addresses: the key is the file's page and offset). */
TEST(wake_across_processes_over_a_shared_file_mapping) {
    CHECK(scratch());
    int fd = open(P("futex"), O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_OK(ftruncate(fd, 8192));
    pid_t pid = fork_quiet();
    if (pid == 0) {
        /* A page of padding first, so the child's word sits elsewhere than the parent's. */
        void *pad = mmap(NULL, 4096 * 3, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        (void)pad;
        int *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) _exit(3);
        int *word = map + 1024 + 3;
        struct timespec bound = {BOUND_MS / 1000, 0};
        while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == 0)
            if (futex(word, FUTEX_WAIT, 0, &bound, NULL, 0) && errno == ETIMEDOUT) _exit(1);
        _exit(*word == 7 ? 0 : 2);
    }
    int *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED);
    int *word = map + 1024 + 3;
    CHECK(await_waiters(word, 0, 1));
    __atomic_store_n(word, 7, __ATOMIC_SEQ_CST);
    CHECK_EQ(futex(word, FUTEX_WAKE, 1, NULL, NULL, 0), 1);
    CHECK_EQ(exit_code_of(pid), 0);
    munmap(map, 8192);
    close(fd);
}

/* ---- priority inheritance ---- */

/* FUTEX_LOCK_PI on a free (zero) word: "the caller ... atomically sets the futex word to
 * its TID"; FUTEX_UNLOCK_PI sets it back to 0. FUTEX_TRYLOCK_PI likewise. Locking it again is
 * "EDEADLK The futex word at uaddr is already locked by the caller"; unlocking a word one
 * does not own is "EPERM The caller does not own the lock represented by the futex word". */
TEST(lock_pi_uncontended) {
    static int word;
    word = 0;
    CHECK_EQ(futex(&word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(word, gettid_());
    CHECK_ERR(futex(&word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), EDEADLK);
    CHECK_EQ(futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(word, 0);
    CHECK_ERR(futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EPERM);
    CHECK_EQ(futex(&word, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(word, gettid_());
    CHECK_EQ(futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(word, 0);
}

static int pi_word;
static volatile int pi_owner_tid, pi_owner_unlocked;
static void *pi_owner(void *arg) {
    (void)arg;
    if (futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0)) return (void *)1;
    pi_owner_tid = gettid_();
    /* Hold it until the main thread's LOCK_PI has marked the word FUTEX_WAITERS. */
    long start = now_ns(CLOCK_MONOTONIC);
    while (!(__atomic_load_n(&pi_word, __ATOMIC_SEQ_CST) & FUTEX_WAITERS))
        if (now_ns(CLOCK_MONOTONIC) - start > BOUND_MS * 1000000L) break;
        else
            sched_yield();
    pi_owner_unlocked = 1;
    if (futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0)) return (void *)2;
    return NULL;
}

/* Contended: FUTEX_TRYLOCK_PI of an owned word is "EWOULDBLOCK ... The futex word is locked";
 * FUTEX_LOCK_PI sets FUTEX_WAITERS in it and sleeps; the owner's FUTEX_UNLOCK_PI hands the
 * lock over, so the word becomes the waiter's tid. */
TEST(lock_pi_contended_hands_the_lock_over) {
    pi_word = 0;
    pi_owner_tid = pi_owner_unlocked = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, pi_owner, NULL), 0);
    CHECK(wait_flag(&pi_owner_tid, BOUND_MS));
    CHECK_ERR(futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EWOULDBLOCK);
    CHECK_EQ(futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK(pi_owner_unlocked);
    CHECK_EQ(pi_word & FUTEX_TID_MASK, gettid_());
    void *ret;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == NULL);
    CHECK_EQ(futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pi_word, 0);
}

/* ---- ping-pong ---- */

static int ball;
#define ROUNDS 1000

/* Waits until ball == want (bounded); 0 or -1. */
static int await_ball(int want) {
    struct timespec bound = {BOUND_MS / 1000, 0};
    int v;
    while ((v = __atomic_load_n(&ball, __ATOMIC_SEQ_CST)) != want)
        if (futex(&ball, FUTEX_WAIT_PRIVATE, v, &bound, NULL, 0) && errno == ETIMEDOUT) return -1;
    return 0;
}

static void *pong(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (await_ball(2 * i + 1)) return (void *)1;
        __atomic_store_n(&ball, 2 * i + 2, __ATOMIC_SEQ_CST);
        futex(&ball, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

/* Two threads hand a word back and forth 1000 times, each sleeping in FUTEX_WAIT until the
 * other's FUTEX_WAKE: no wake-up is lost. */
TEST(ping_pong_between_two_threads) {
    ball = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, pong, NULL), 0);
    int ok = 1;
    for (int i = 0; i < ROUNDS && ok; i++) {
        __atomic_store_n(&ball, 2 * i + 1, __ATOMIC_SEQ_CST);
        futex(&ball, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        ok = await_ball(2 * i + 2) == 0;
    }
    void *ret;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ok);
    CHECK(ret == NULL);
    CHECK_EQ(ball, 2 * ROUNDS);
}

/* futex(2) with signal(7): a timed FUTEX_WAIT that a stop interrupts (no handler runs)
 * goes on to its first deadline through restart_syscall, rather than waiting its whole
 * timeout again. */
TEST(a_stopped_timed_wait_keeps_its_deadline) {
    pid_t pid = fork();
    if (pid == 0) {
        int word = 0;
        struct timespec timeout = {0, 600 * 1000 * 1000};
        long start = now_ns(CLOCK_MONOTONIC);
        long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &timeout, NULL, 0);
        long took_ms = (now_ns(CLOCK_MONOTONIC) - start) / 1000000;
        _exit(r == -1 && errno == ETIMEDOUT && took_ms >= 600 && took_ms < 850 ? 0 : 1);
    }
    struct timespec gap = {0, 200 * 1000 * 1000};
    nanosleep(&gap, NULL);
    CHECK_EQ(kill(pid, SIGSTOP), 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status));
    gap.tv_nsec = 300 * 1000 * 1000;
    nanosleep(&gap, NULL);
    CHECK_EQ(kill(pid, SIGCONT), 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}
