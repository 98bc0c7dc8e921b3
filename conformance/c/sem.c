/* System V semaphores: semget(2), semop(2), semtimedop(2), semctl(2) and
 * /proc/sysvipc/sem. */
#include "ipc.h"

#include <stdio.h>

/* "The calling program must define this union." */
union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *__buf;
};

static int sem_value(int id, int num) { return semctl(id, num, GETVAL); }

static int op1(int id, unsigned short num, short op, short flg) {
    struct sembuf b = {num, op, flg};
    return semop(id, &b, 1);
}

static long elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* "The values of the semaphores in a newly created set are indeterminate" on POSIX, zero on
 * Linux; IPC_STAT shows the count, owner, mode and times. */
TEST(new_set_is_zeroed_and_described) {
    time_t before = time(NULL);
    int id = track_sem(semget(IPC_PRIVATE, 3, IPC_CREAT | 0640));
    CHECK(id >= 0);
    unsigned short values[3] = {9, 9, 9};
    CHECK_OK(semctl(id, 0, GETALL, (union semun){.array = values}));
    CHECK(values[0] == 0 && values[1] == 0 && values[2] == 0);
    struct semid_ds ds;
    CHECK_OK(semctl(id, 0, IPC_STAT, (union semun){.buf = &ds}));
    CHECK_EQ(ds.sem_nsems, 3);
    CHECK_EQ(ds.sem_perm.mode & 0777, 0640);
    CHECK_EQ(ds.sem_perm.uid, geteuid());
    CHECK_EQ(ds.sem_perm.cgid, getegid());
    CHECK_EQ(ds.sem_perm.__key, IPC_PRIVATE);
    CHECK_EQ(ds.sem_otime, 0);
    CHECK(ds.sem_ctime >= before);
    CHECK_OK(op1(id, 1, 1, 0));
    CHECK_OK(semctl(id, 0, IPC_STAT, (union semun){.buf = &ds}));
    CHECK(ds.sem_otime >= before);
}

/* semget's rules: EEXIST, ENOENT, EINVAL for more semaphores than the set has or for none
 * (or a negative count) when making one. */
TEST(keys_and_counts) {
    key_t key = key_for(1);
    CHECK_ERR(semget(key, 1, 0600), ENOENT);
    int id = track_sem(semget(key, 4, IPC_CREAT | IPC_EXCL | 0600));
    CHECK(id >= 0);
    CHECK_EQ(semget(key, 4, 0600), id);
    CHECK_EQ(semget(key, 0, 0), id);
    CHECK_ERR(semget(key, 5, 0600), EINVAL);
    CHECK_ERR(semget(key, 1, IPC_CREAT | IPC_EXCL | 0600), EEXIST);
    CHECK_ERR(semget(IPC_PRIVATE, 0, IPC_CREAT | 0600), EINVAL);
    CHECK_ERR(semget(IPC_PRIVATE, -1, IPC_CREAT | 0600), EINVAL);
    CHECK_OK(semctl(id, 0, IPC_RMID));
    CHECK_ERR(semget(key, 1, 0600), ENOENT);
    CHECK_ERR(semctl(id, 0, GETVAL), EINVAL);
}

/* SETVAL, GETVAL, SETALL, GETALL, GETPID; ERANGE outside [0, SEMVMX]; EINVAL for a
 * semaphore the set does not have. */
TEST(values_set_and_read) {
    int id = track_sem(semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_OK(semctl(id, 1, SETVAL, (union semun){.val = 7}));
    CHECK_EQ(sem_value(id, 1), 7);
    CHECK_EQ(semctl(id, 1, GETPID), getpid());
    CHECK_EQ(semctl(id, 0, GETPID), 0);
    CHECK_ERR(semctl(id, 0, SETVAL, (union semun){.val = 32768}), ERANGE);
    CHECK_ERR(semctl(id, 0, SETVAL, (union semun){.val = -1}), ERANGE);
    CHECK_OK(semctl(id, 0, SETVAL, (union semun){.val = 32767}));
    CHECK_ERR(semctl(id, 2, SETVAL, (union semun){.val = 1}), EINVAL);
    CHECK_ERR(semctl(id, 2, GETVAL), EINVAL);
    CHECK_ERR(semctl(id, -1, GETVAL), EINVAL);
    unsigned short set[2] = {3, 4}, got[2] = {0, 0};
    CHECK_OK(semctl(id, 0, SETALL, (union semun){.array = set}));
    CHECK_OK(semctl(id, 0, GETALL, (union semun){.array = got}));
    CHECK(got[0] == 3 && got[1] == 4);
    unsigned short big[2] = {1, 40000};
    CHECK_ERR(semctl(id, 0, SETALL, (union semun){.array = big}), ERANGE);
    CHECK_ERR(semctl(id, 0, GETALL, (union semun){.array = (unsigned short *)8}), EFAULT);
    CHECK_ERR(semctl(id, 0, 99), EINVAL);
    CHECK_ERR(semctl(-1, 0, GETVAL), EINVAL);
}

/* "The set of operations contained in sops is performed atomically": all or none. With
 * IPC_NOWAIT an operation that would wait fails with EAGAIN, including waiting for zero. */
TEST(semop_is_atomic_and_nowait_fails) {
    int id = track_sem(semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_OK(semctl(id, 0, SETVAL, (union semun){.val = 2}));
    struct sembuf both[2] = {{0, -1, IPC_NOWAIT}, {1, -1, IPC_NOWAIT}};
    CHECK_ERR(semop(id, both, 2), EAGAIN);
    CHECK_EQ(sem_value(id, 0), 2);
    CHECK_ERR(op1(id, 0, 0, IPC_NOWAIT), EAGAIN);
    CHECK_OK(op1(id, 1, 0, 0)); /* Zero already: no wait. */
    /* Several operations on one semaphore apply in order. */
    struct sembuf seq[3] = {{0, -2, 0}, {0, 5, 0}, {0, -1, 0}};
    CHECK_OK(semop(id, seq, 3));
    CHECK_EQ(sem_value(id, 0), 4);
    CHECK_EQ(semctl(id, 0, GETPID), getpid());
    CHECK_ERR(op1(id, 0, 32767, 0), ERANGE);
    CHECK_EQ(sem_value(id, 0), 4);
}

/* semop's argument errors: EFBIG for a semaphore number past the set, E2BIG for more than
 * SEMOPM operations, EINVAL for none or a bad id, EFAULT for a bad array. */
TEST(semop_argument_errors) {
    int id = track_sem(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_ERR(op1(id, 1, 1, 0), EFBIG);
    static struct sembuf many[501];
    for (int i = 0; i < 501; i++) many[i] = (struct sembuf){0, 1, 0};
    CHECK_ERR(semop(id, many, 501), E2BIG);
    CHECK_ERR(semop(id, many, 0), EINVAL);
    CHECK_ERR(semop(-1, many, 1), EINVAL);
    CHECK_ERR(semop(id, (struct sembuf *)8, 1), EFAULT);
    struct timespec bad = {0, 1000000000L};
    struct sembuf down = {0, -1, 0};
    CHECK_ERR(semtimedop(id, &down, 1, &bad), EINVAL);
    CHECK_EQ(sem_value(id, 0), 0);
}

/* semtimedop: "If the specified time limit has been reached, semtimedop() fails with errno
 * set to EAGAIN (and none of the operations in sops is performed)." */
TEST(semtimedop_times_out) {
    int id = track_sem(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
    CHECK(id >= 0);
    struct sembuf down = {0, -1, 0};
    struct timespec limit = {0, 100 * 1000000L}, start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK_ERR(semtimedop(id, &down, 1, &limit), EAGAIN);
    CHECK(elapsed_ms(&start) >= 90);
    CHECK_EQ(semctl(id, 0, GETNCNT), 0);
}

/* A semop that must wait sleeps (counted by GETNCNT) until another process raises the
 * value; one waiting for zero (GETZCNT) until it reaches zero. */
TEST(semop_waits_for_another_process) {
    int id = track_sem(semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_OK(semctl(id, 1, SETVAL, (union semun){.val = 1}));
    pid_t pid = fork();
    if (pid == 0) {
        /* Wait until the parent blocks, then let it go. */
        for (int i = 0; i < 1000 && semctl(id, 0, GETNCNT) != 1; i++) sleep_ms(10);
        if (semctl(id, 0, GETNCNT) != 1) _exit(2);
        if (op1(id, 0, 1, 0) != 0) _exit(3);
        for (int i = 0; i < 1000 && semctl(id, 1, GETZCNT) != 1; i++) sleep_ms(10);
        if (semctl(id, 1, GETZCNT) != 1) _exit(4);
        if (op1(id, 1, -1, 0) != 0) _exit(5);
        _exit(0);
    }
    CHECK_OK(op1(id, 0, -1, 0));
    CHECK_OK(op1(id, 1, 0, 0));
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(sem_value(id, 0), 0);
    CHECK_EQ(semctl(id, 0, GETNCNT), 0);
    CHECK_EQ(semctl(id, 1, GETZCNT), 0);
    CHECK_EQ(semctl(id, 0, GETPID), getpid());
}

/* "EIDRM: The semaphore set was removed" while the caller waited. */
TEST(removal_wakes_waiters_with_eidrm) {
    int id = track_sem(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
    CHECK(id >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 1000 && semctl(id, 0, GETNCNT) != 1; i++) sleep_ms(10);
        _exit(semctl(id, 0, IPC_RMID) == 0 ? 0 : 2);
    }
    CHECK_ERR(op1(id, 0, -1, 0), EIDRM);
    CHECK_EQ(exit_code(pid), 0);
}

/* SEM_UNDO: "the operation will be automatically undone when the process terminates." A
 * child's undone changes come back at its exit, and GETPID names it. */
TEST(sem_undo_is_undone_at_exit) {
    int id = track_sem(semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_OK(semctl(id, 0, SETVAL, (union semun){.val = 1}));
    int go[2];
    CHECK_OK(pipe(go));
    pid_t pid = fork();
    if (pid == 0) {
        close(go[1]);
        struct sembuf ops[2] = {{0, -1, SEM_UNDO}, {1, 3, SEM_UNDO}};
        if (semop(id, ops, 2) != 0) _exit(2);
        if (op1(id, 1, 1, 0) != 0) _exit(3); /* Not undone. */
        char c;
        if (read(go[0], &c, 1) != 0) _exit(4); /* Until the parent closes the pipe. */
        _exit(0);
    }
    close(go[0]);
    for (int i = 0; i < 1000 && sem_value(id, 1) != 4; i++) sleep_ms(10);
    CHECK_EQ(sem_value(id, 0), 0);
    CHECK_EQ(sem_value(id, 1), 4);
    close(go[1]);
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(sem_value(id, 0), 1);
    CHECK_EQ(sem_value(id, 1), 1);
    CHECK_EQ(semctl(id, 0, GETPID), pid);
}

/* "SETVAL ... Undo entries for this semaphore are cleared in all processes." */
TEST(setval_clears_undo) {
    int id = track_sem(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
    CHECK(id >= 0);
    int go[2];
    CHECK_OK(pipe(go));
    pid_t pid = fork();
    if (pid == 0) {
        close(go[1]);
        if (op1(id, 0, 2, SEM_UNDO) != 0) _exit(2);
        char c;
        if (read(go[0], &c, 1) != 1) _exit(3);
        _exit(0);
    }
    close(go[0]);
    for (int i = 0; i < 1000 && sem_value(id, 0) != 2; i++) sleep_ms(10);
    CHECK_OK(semctl(id, 0, SETVAL, (union semun){.val = 5}));
    CHECK_EQ(write(go[1], "x", 1), 1);
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(sem_value(id, 0), 5);
}

/* IPC_SET changes the mode; without root the mode decides (EACCES) and only the owner or
 * creator may remove the set (EPERM). Needs root to become another user. */
TEST(ipc_set_and_permissions) {
    CHECK_EQ(geteuid(), 0);
    int id = track_sem(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
    CHECK(id >= 0);
    struct semid_ds ds;
    CHECK_OK(semctl(id, 0, IPC_STAT, (union semun){.buf = &ds}));
    ds.sem_perm.mode = 0604;
    CHECK_OK(semctl(id, 0, IPC_SET, (union semun){.buf = &ds}));
    CHECK_OK(semctl(id, 0, IPC_STAT, (union semun){.buf = &ds}));
    CHECK_EQ(ds.sem_perm.mode & 0777, 0604);
    pid_t pid = fork();
    if (pid == 0) {
        if (!become_nobody()) _exit(2);
        if (semctl(id, 0, GETVAL) != 0) _exit(3);              /* Readable by others. */
        if (op1(id, 0, 0, IPC_NOWAIT) != 0) _exit(4);          /* Reading is enough. */
        if (op1(id, 0, 1, 0) != -1 || errno != EACCES) _exit(5); /* Changing is not. */
        if (semctl(id, 0, SETVAL, (union semun){.val = 1}) != -1 || errno != EACCES) _exit(6);
        if (semctl(id, 0, IPC_RMID) != -1 || errno != EPERM) _exit(7);
        _exit(0);
    }
    CHECK_EQ(exit_code(pid), 0);
}

/* IPC_INFO and SEM_INFO return the highest index in use; SEM_STAT takes an index and
 * returns the id there. */
TEST(info_and_sem_stat) {
    int id = track_sem(semget(IPC_PRIVATE, 3, IPC_CREAT | 0600));
    CHECK(id >= 0);
    struct seminfo info;
    int max = semctl(0, 0, IPC_INFO, (union semun){.__buf = &info});
    CHECK(max >= 0);
    CHECK_EQ(info.semvmx, 32767);
    CHECK(info.semmsl >= 3);
    CHECK(info.semopm > 0);
    CHECK_EQ(semctl(0, 0, SEM_INFO, (union semun){.__buf = &info}), max);
    CHECK(info.semusz >= 1);
    CHECK(info.semaem >= 3);
    int found = 0;
    for (int index = 0; index <= max; index++) {
        struct semid_ds ds;
        if (semctl(index, 0, SEM_STAT, (union semun){.buf = &ds}) == id)
            found = ds.sem_nsems == 3;
    }
    CHECK(found);
}

/* /proc/sysvipc/sem lists each set: key, id, perms, nsems, ... */
TEST(proc_sysvipc_sem_lists_sets) {
    key_t key = key_for(2);
    int id = track_sem(semget(key, 5, IPC_CREAT | IPC_EXCL | 0640));
    CHECK(id >= 0);
    FILE *f = fopen("/proc/sysvipc/sem", "r");
    CHECK(f != NULL);
    char line[512];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK(strncmp(line, "       key      semid perms      nsems", 38) == 0);
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        int k, i;
        unsigned perms, nsems;
        if (sscanf(line, "%d %d %o %u", &k, &i, &perms, &nsems) == 4 && i == id)
            found = k == key && perms == 0640 && nsems == 5;
    }
    fclose(f);
    CHECK(found);
}
