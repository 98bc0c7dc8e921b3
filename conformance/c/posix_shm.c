/* POSIX shared memory and named semaphores: shm_open(3), sem_open(3) and friends, which
 * glibc makes from files in /dev/shm mapped MAP_SHARED and futexes on them
 * (see shm_overview(7), sem_overview(7)). */
#include "harness.h"

#include <fcntl.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define TMPFS_MAGIC 0x01021994

/* A name no other process uses. */
static const char *name_for(const char *what) {
    static char name[64];
    snprintf(name, sizeof name, "/conformance-%s-%d", what, getpid());
    return name;
}

static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* An absolute deadline `ms` from now on CLOCK_REALTIME, for sem_timedwait. */
static struct timespec deadline_in(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* "the tmpfs filesystem mounted under /dev/shm": anyone may make objects there, and only
 * their owners may remove them (the sticky bit). */
TEST(dev_shm_is_a_sticky_world_writable_tmpfs) {
    struct stat st;
    CHECK_OK(stat("/dev/shm", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 01777);
    struct statfs fs;
    CHECK_OK(statfs("/dev/shm", &fs));
    CHECK_EQ(fs.f_type, TMPFS_MAGIC);
}

/* shm_open makes /dev/shm/NAME; ftruncate sizes it; MAP_SHARED mappings of it in two
 * processes (one opening it again by name) share their pages, and read(2) sees what a
 * mapping wrote. */
TEST(shm_open_memory_is_shared_across_fork) {
    const char *name = name_for("shm");
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    char path[96];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_OK(ftruncate(fd, 2 * PAGE));
    volatile int *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[0], 0);
    p[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = shm_open(name, O_RDWR, 0);
        if (cfd < 0) _exit(2);
        volatile int *q = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (q == MAP_FAILED) _exit(3);
        if (q[0] != 1) _exit(4);
        q[PAGE / sizeof(int)] = 42; /* Through its own mapping. */
        p[1] = 43;                  /* Through the one inherited. */
        _exit(0);
    }
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(p[PAGE / sizeof(int)], 42);
    CHECK_EQ(p[1], 43);
    int got = 0;
    CHECK_EQ(pread(fd, &got, sizeof got, PAGE), sizeof got);
    CHECK_EQ(got, 42);
    CHECK_OK(munmap((void *)p, 2 * PAGE));
    close(fd);
    CHECK_OK(shm_unlink(name));
    CHECK_ERR(shm_open(name, O_RDWR, 0), ENOENT);
    CHECK_ERR(stat(path, &st), ENOENT);
}

/* O_CREAT|O_EXCL refuses an existing name (EEXIST); shm_unlink of a missing one is
 * ENOENT; what is mapped outlives the name. */
TEST(shm_open_exclusive_and_unlink) {
    const char *name = name_for("excl");
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK_ERR(shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600), EEXIST);
    CHECK_OK(ftruncate(fd, PAGE));
    char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(shm_unlink(name));
    CHECK_ERR(shm_unlink(name), ENOENT);
    p[0] = 'x';
    pid_t pid = fork();
    if (pid == 0) _exit(p[0] == 'x' ? (p[1] = 'y', 0) : 1);
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(p[1], 'y');
    munmap(p, PAGE);
    close(fd);
}

/* A named semaphore: a child opens it by name and posts; the parent, waiting, wakes. */
TEST(named_semaphore_across_fork) {
    const char *name = name_for("sem");
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    CHECK(s != SEM_FAILED);
    CHECK_ERR(sem_trywait(s), EAGAIN);
    char child_name[64];
    snprintf(child_name, sizeof child_name, "%s", name);
    pid_t pid = fork();
    if (pid == 0) {
        sem_t *c = sem_open(child_name, 0);
        if (c == SEM_FAILED) _exit(2);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        _exit(sem_post(c) == 0 ? 0 : 3);
    }
    struct timespec until = deadline_in(10000);
    CHECK_OK(sem_timedwait(s, &until));
    CHECK_EQ(exit_code(pid), 0);
    int value = -1;
    CHECK_OK(sem_getvalue(s, &value));
    CHECK_EQ(value, 0);
    CHECK_OK(sem_post(s));
    CHECK_OK(sem_getvalue(s, &value));
    CHECK_EQ(value, 1);
    CHECK_OK(sem_close(s));
    CHECK_OK(sem_unlink(name));
    CHECK(sem_open(name, 0) == SEM_FAILED && errno == ENOENT);
}

/* A process-shared semaphore (sem_init, pshared 1) in shm_open memory: a child blocked in
 * sem_wait is woken by the parent's sem_post. */
TEST(process_shared_semaphore_in_shm_open_memory) {
    const char *name = name_for("psem");
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK_OK(shm_unlink(name));
    CHECK_OK(ftruncate(fd, PAGE));
    sem_t *s = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED);
    CHECK_OK(sem_init(s, 1, 0));
    volatile int *done = (volatile int *)(s + 1);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec until = deadline_in(10000);
        if (sem_timedwait(s, &until) != 0) _exit(2);
        *done = 1;
        _exit(0);
    }
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    CHECK_EQ(*done, 0); /* Still waiting. */
    CHECK_OK(sem_post(s));
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(*done, 1);
    sem_destroy(s);
    munmap(s, PAGE);
    close(fd);
}
