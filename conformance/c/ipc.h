/* Helpers for the System V IPC areas (shm, sem).
 *
 * Natively the objects a case makes live in the host's IPC namespace until removed, so
 * every one is recorded with track_shm()/track_sem() and removed when the process exits,
 * even if a CHECK returns early. Keys are made from the pid (key_for), so that cases
 * running at the same time never meet. Children leave with _exit() and remove nothing.
 *
 * Included by the area files only (it is not an area: the runner builds `*.c`). */
#ifndef CONFORMANCE_IPC_H
#define CONFORMANCE_IPC_H

#include "harness.h"

#include <grp.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IPC_TRACK_MAX 64

static int tracked_shm[IPC_TRACK_MAX], tracked_sem[IPC_TRACK_MAX];
static int ntracked_shm, ntracked_sem;
static pid_t tracking_pid;

static void ipc_cleanup(void) {
    if (getpid() != tracking_pid) return;
    for (int i = 0; i < ntracked_shm; i++) shmctl(tracked_shm[i], IPC_RMID, NULL);
    for (int i = 0; i < ntracked_sem; i++) semctl(tracked_sem[i], 0, IPC_RMID);
}

static void ipc_track_init(void) {
    if (tracking_pid == 0) {
        tracking_pid = getpid();
        atexit(ipc_cleanup);
    }
}

/* Records segment `id` for removal at exit; returns it. */
__attribute__((unused)) static int track_shm(int id) {
    ipc_track_init();
    if (id >= 0 && ntracked_shm < IPC_TRACK_MAX) tracked_shm[ntracked_shm++] = id;
    return id;
}

__attribute__((unused)) static int track_sem(int id) {
    ipc_track_init();
    if (id >= 0 && ntracked_sem < IPC_TRACK_MAX) tracked_sem[ntracked_sem++] = id;
    return id;
}

/* A key no other process uses: the pid in the low bits, `n` telling a case's keys apart. */
__attribute__((unused)) static key_t key_for(int n) {
    return (key_t)(0x51000000 | ((n & 0xf) << 22) | (getpid() & 0x3fffff));
}

/* Waits for `pid`: its exit code, or -1 if it did not exit normally. */
__attribute__((unused)) static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* Makes the calling (child) process nobody, without root's powers; false if it cannot. */
__attribute__((unused)) static int become_nobody(void) {
    return setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0;
}

__attribute__((unused)) static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
