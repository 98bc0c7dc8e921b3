/* futex_shared [ROUNDS]: two processes (fork) over one MAP_SHARED anonymous page take
 * turns ROUNDS (1000) times: each waits with FUTEX_WAIT (shared, not
 * FUTEX_PRIVATE_FLAG) until the word says it is its turn, counts, hands the turn over and
 * FUTEX_WAKEs the other. Also: FUTEX_WAIT on a word that does not hold the expected value
 * is EAGAIN, and a FUTEX_WAKE with nobody waiting wakes 0. Prints the counts. */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
    atomic_int turn; /* 0: parent's turn, 1: child's */
    int parent_count, child_count;
};

static long futex(atomic_int *word, int op, int val) {
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static void wait_turn(struct shared *s, int me) {
    int cur;
    while ((cur = atomic_load(&s->turn)) != me) {
        if (futex(&s->turn, FUTEX_WAIT, cur) != 0 && errno != EAGAIN && errno != EINTR) {
            perror("FUTEX_WAIT");
            exit(2);
        }
    }
}

static void pass_turn(struct shared *s, int to, int *count) {
    (*count)++;
    atomic_store(&s->turn, to);
    if (futex(&s->turn, FUTEX_WAKE, 1) < 0) { perror("FUTEX_WAKE"); exit(2); }
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    struct shared *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
    if (s == MAP_FAILED) { perror("mmap"); return 1; }
    atomic_store(&s->turn, 0);
    long r = futex(&s->turn, FUTEX_WAIT, 1);
    printf("FUTEX_WAIT on a word holding 0, expecting 1: %ld %s\n", r,
           r < 0 ? strerror(errno) : "");
    printf("FUTEX_WAKE with nobody waiting: %ld\n", futex(&s->turn, FUTEX_WAKE, 1));
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    if (child == 0) {
        for (int i = 0; i < rounds; i++) {
            wait_turn(s, 1);
            pass_turn(s, 0, &s->child_count);
        }
        _exit(0);
    }
    for (int i = 0; i < rounds; i++) {
        wait_turn(s, 0);
        pass_turn(s, 1, &s->parent_count);
    }
    wait_turn(s, 0);
    int status;
    if (waitpid(child, &status, 0) != child) { perror("waitpid"); return 1; }
    printf("rounds %d: parent %d, child %d, child exit %d, turn back with the parent: %s\n",
           rounds, s->parent_count, s->child_count,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1, atomic_load(&s->turn) == 0 ? "yes" : "no");
    int ok = s->parent_count == rounds && s->child_count == rounds && WIFEXITED(status) &&
             WEXITSTATUS(status) == 0;
    return ok ? 0 : 1;
}
