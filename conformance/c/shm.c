/* System V shared memory: shmget(2), shmat(2), shmdt(2), shmctl(2) and /proc/sysvipc/shm
 * (see shmget(2), shmop(2), shmctl(2)). */
#include "ipc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define PAGE 4096UL

static struct shmid_ds stat_of(int id) {
    struct shmid_ds ds;
    memset(&ds, 0xff, sizeof ds);
    if (shmctl(id, IPC_STAT, &ds) != 0) memset(&ds, 0, sizeof ds);
    return ds;
}

/* Attachments counted by IPC_STAT, -1 if the segment is gone. */
static long nattch(int id) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) != 0) return -1;
    return (long)ds.shm_nattch;
}

/* "IPC_PRIVATE ... a new shared memory segment is created", initialized to zero; IPC_STAT
 * shows its size, creator, owner, mode and, after shmat and shmdt, the attach and detach
 * times and the last pid. */
TEST(private_segment_is_new_zeroed_and_described) {
    time_t before = time(NULL);
    int id = track_shm(shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0640));
    CHECK(id >= 0);
    int other = track_shm(shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0640));
    CHECK(other >= 0 && other != id);
    struct shmid_ds ds = stat_of(id);
    CHECK_EQ(ds.shm_segsz, 10000);
    CHECK_EQ(ds.shm_perm.__key, IPC_PRIVATE);
    CHECK_EQ(ds.shm_perm.mode & 0777, 0640);
    CHECK_EQ(ds.shm_perm.uid, geteuid());
    CHECK_EQ(ds.shm_perm.cuid, geteuid());
    CHECK_EQ(ds.shm_perm.gid, getegid());
    CHECK_EQ(ds.shm_cpid, getpid());
    CHECK_EQ(ds.shm_lpid, 0);
    CHECK_EQ(ds.shm_nattch, 0);
    CHECK_EQ(ds.shm_atime, 0);
    CHECK_EQ(ds.shm_dtime, 0);
    CHECK(ds.shm_ctime >= before);

    unsigned char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    CHECK_EQ((uintptr_t)p % PAGE, 0);
    for (int i = 0; i < 10000; i++) CHECK_EQ(p[i], 0);
    p[9999] = 1;
    ds = stat_of(id);
    CHECK_EQ(ds.shm_nattch, 1);
    CHECK_EQ(ds.shm_lpid, getpid());
    CHECK(ds.shm_atime >= before);
    CHECK_OK(shmdt(p));
    ds = stat_of(id);
    CHECK_EQ(ds.shm_nattch, 0);
    CHECK(ds.shm_dtime >= before);
    /* The contents outlive the attachment. */
    p = shmat(id, NULL, SHM_RDONLY);
    CHECK(p != (void *)-1);
    CHECK_EQ(p[9999], 1);
    CHECK_OK(shmdt(p));
}

/* A key names one segment: shmget finds it (with a size no bigger than the segment's),
 * IPC_CREAT|IPC_EXCL refuses it (EEXIST), a missing key without IPC_CREAT is ENOENT, and a
 * larger size than the segment has is EINVAL. */
TEST(keys_name_one_segment) {
    key_t key = key_for(1);
    CHECK_ERR(shmget(key, PAGE, 0600), ENOENT);
    int id = track_shm(shmget(key, 2 * PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_EQ(shmget(key, 2 * PAGE, 0600), id);
    CHECK_EQ(shmget(key, 100, 0), id);
    CHECK_EQ(shmget(key, 0, 0), id);
    CHECK_EQ(shmget(key, PAGE, IPC_CREAT | 0600), id);
    CHECK_ERR(shmget(key, 2 * PAGE + 1, 0), EINVAL);
    CHECK_ERR(shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600), EEXIST);
    CHECK_EQ(stat_of(id).shm_perm.__key, key);
    CHECK_OK(shmctl(id, IPC_RMID, NULL));
    CHECK_ERR(shmget(key, PAGE, 0600), ENOENT);
}

/* "EINVAL: A new segment was to be created and size is less than SHMMIN or greater than
 * SHMMAX." */
TEST(size_limits) {
    CHECK_ERR(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600), EINVAL);
    CHECK_ERR(shmget(IPC_PRIVATE, (size_t)-1, IPC_CREAT | 0600), EINVAL);
    int id = track_shm(shmget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_EQ(stat_of(id).shm_segsz, 1);
}

/* "After a fork(2), the child inherits the attached shared memory segments": they are
 * shared, not copied, and count as attachments of the child too. */
TEST(forked_child_shares_the_attachment) {
    int id = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    volatile int *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    p[0] = 1;
    int go[2];
    CHECK_OK(pipe(go));
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        if (read(go[0], &c, 1) != 1) _exit(2);
        if (p[0] != 2) _exit(3);
        p[1] = 42;
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_EQ(nattch(id), 2);
    p[0] = 2;
    CHECK_EQ(write(go[1], "x", 1), 1);
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(p[1], 42);
    /* The child's exit detached it. */
    CHECK_EQ(nattch(id), 1);
    CHECK_OK(shmdt((void *)p));
}

/* A child that attaches a segment by id (after fork) shares it with the parent; its exit
 * detaches it. */
TEST(segment_attached_in_a_child_is_shared) {
    int id = track_shm(shmget(IPC_PRIVATE, 3 * PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        int *q = shmat(id, NULL, 0);
        if (q == (void *)-1) _exit(2);
        q[2 * PAGE / sizeof(int)] = 7;
        _exit(0);
    }
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(nattch(id), 0);
    int *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    CHECK_EQ(p[2 * PAGE / sizeof(int)], 7);
    CHECK_OK(shmdt(p));
}

/* One segment attached twice in one process: both addresses show the same pages, and each
 * attachment counts. */
TEST(two_attachments_share_pages) {
    int id = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    volatile char *a = shmat(id, NULL, 0);
    volatile char *b = shmat(id, NULL, 0);
    CHECK(a != (void *)-1 && b != (void *)-1 && a != b);
    CHECK_EQ(nattch(id), 2);
    a[100] = 'x';
    CHECK_EQ(b[100], 'x');
    CHECK_OK(shmdt((void *)a));
    CHECK_EQ(nattch(id), 1);
    CHECK_EQ(b[100], 'x');
    CHECK_OK(shmdt((void *)b));
    CHECK_EQ(nattch(id), 0);
}

/* IPC_RMID: "The segment will actually be destroyed only after the last process detaches
 * it"; meanwhile IPC_STAT shows SHM_DEST and the key IPC_PRIVATE (the key is free at
 * once), and Linux lets it be attached again by id. Then it is gone: EINVAL. */
TEST(rmid_destroys_after_the_last_detach) {
    key_t key = key_for(2);
    int id = track_shm(shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600));
    CHECK(id >= 0);
    volatile int *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    p[0] = 5;
    CHECK_OK(shmctl(id, IPC_RMID, NULL));
    CHECK_ERR(shmget(key, PAGE, 0600), ENOENT);
    struct shmid_ds ds = stat_of(id);
    CHECK(ds.shm_perm.mode & SHM_DEST);
    CHECK_EQ(ds.shm_perm.__key, IPC_PRIVATE);
    CHECK_EQ(ds.shm_nattch, 1);
    CHECK_EQ(p[0], 5);
    /* A new segment may take the key while the old one lives on. */
    int again = track_shm(shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600));
    CHECK(again >= 0 && again != id);
    volatile int *q = shmat(id, NULL, 0);
    CHECK(q != (void *)-1);
    CHECK_EQ(q[0], 5);
    CHECK_EQ(nattch(id), 2);
    CHECK_OK(shmdt((void *)p));
    CHECK_OK(shmdt((void *)q));
    struct shmid_ds gone;
    CHECK_ERR(shmctl(id, IPC_STAT, &gone), EINVAL);
    CHECK_ERR((long)shmat(id, NULL, 0), EINVAL);
}

TEST(rmid_without_attachments_destroys_at_once) {
    int id = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    CHECK_OK(shmctl(id, IPC_RMID, NULL));
    struct shmid_ds ds;
    CHECK_ERR(shmctl(id, IPC_STAT, &ds), EINVAL);
    CHECK_ERR((long)shmat(id, NULL, 0), EINVAL);
    CHECK_ERR(shmctl(id, IPC_RMID, NULL), EINVAL);
    CHECK_ERR(shmctl(-1, IPC_STAT, &ds), EINVAL);
    CHECK_ERR((long)shmat(-1, NULL, 0), EINVAL);
}

/* A free, page-aligned range of `pages` pages. */
static char *free_range(size_t pages) {
    char *p = mmap(NULL, pages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    munmap(p, pages * PAGE);
    return p;
}

/* shmat at a given address: it must be page-aligned (SHMLBA) unless SHM_RND rounds it
 * down; it may not overlap a mapping unless SHM_REMAP replaces it; SHM_REMAP needs an
 * address. */
TEST(shmat_address_rules) {
    int id = track_shm(shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    char *want = free_range(4);
    CHECK(want != NULL);
    CHECK_ERR((long)shmat(id, want + 123, 0), EINVAL);
    char *p = shmat(id, want + 123, SHM_RND);
    CHECK(p == want);
    /* Overlapping the attachment just made. */
    CHECK_ERR((long)shmat(id, want + PAGE, 0), EINVAL);
    char *q = shmat(id, want + PAGE, SHM_REMAP);
    CHECK(q == want + PAGE);
    CHECK_ERR((long)shmat(id, NULL, SHM_REMAP), EINVAL);
    q[0] = 'q';
    CHECK_EQ(p[0], 'q');
    CHECK_EQ(nattch(id), 2);
    CHECK_OK(shmdt(p));
    CHECK_OK(shmdt(q));
    CHECK_EQ(nattch(id), 0);
}

/* Waits for child `pid`: the signal that killed it, 0 if it exited with 0, 256 + the code
 * if it exited with another. */
static int wait_signal(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    if (WIFSIGNALED(status)) return WTERMSIG(status);
    return WEXITSTATUS(status) == 0 ? 0 : 256 + WEXITSTATUS(status);
}

/* SHM_RDONLY: "The segment is attached for reading": a write faults, and mprotect may not
 * make it writable (EACCES). */
TEST(shm_rdonly_attaches_read_only) {
    int id = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    volatile char *p = shmat(id, NULL, SHM_RDONLY);
    CHECK(p != (void *)-1);
    CHECK_EQ(p[0], 0);
    CHECK_ERR(mprotect((void *)p, PAGE, PROT_READ | PROT_WRITE), EACCES);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        p[0] = 1;
        _exit(0);
    }
    CHECK_EQ(wait_signal(pid), SIGSEGV);
    CHECK_EQ(p[0], 0);
    CHECK_OK(shmdt((void *)p));
}

/* shmdt: "EINVAL: There is no shared memory segment attached at shmaddr; or, shmaddr is
 * not aligned on a page boundary." Shared anonymous memory is not a segment. */
TEST(shmdt_needs_an_attachment) {
    int id = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    CHECK_ERR(shmdt(p + 1), EINVAL);
    CHECK_ERR(shmdt(p + PAGE), EINVAL);
    CHECK_OK(shmdt(p));
    CHECK_ERR(shmdt(p), EINVAL);
    char *anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(anon != MAP_FAILED);
    CHECK_ERR(shmdt(anon), EINVAL);
    munmap(anon, PAGE);
}

/* Part of an attachment unmapped by munmap: shmdt of the attach address still detaches
 * what is left. */
TEST(shmdt_detaches_what_is_left) {
    int id = track_shm(shmget(IPC_PRIVATE, 3 * PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    CHECK_OK(munmap(p + PAGE, PAGE));
    CHECK_EQ(nattch(id), 2); /* Two VMAs, as Linux counts. */
    CHECK_OK(shmdt(p));
    CHECK_EQ(nattch(id), 0);
    /* Both pieces are gone. */
    CHECK(mmap(p, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
               0) == p);
    munmap(p, 3 * PAGE);
}

/* IPC_SET changes the owner and the permission bits (and ctime); SHM_LOCK and SHM_UNLOCK
 * set and clear SHM_LOCKED. */
TEST(ipc_set_and_shm_lock) {
    int id = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    struct shmid_ds ds = stat_of(id);
    ds.shm_perm.mode = 0604;
    CHECK_OK(shmctl(id, IPC_SET, &ds));
    ds = stat_of(id);
    CHECK_EQ(ds.shm_perm.mode & 0777, 0604);
    CHECK_OK(shmctl(id, SHM_LOCK, NULL));
    CHECK(stat_of(id).shm_perm.mode & SHM_LOCKED);
    CHECK_OK(shmctl(id, SHM_UNLOCK, NULL));
    CHECK(!(stat_of(id).shm_perm.mode & SHM_LOCKED));
    CHECK_ERR(shmctl(id, IPC_SET, (struct shmid_ds *)8), EFAULT);
    CHECK_ERR(shmctl(id, IPC_STAT, (struct shmid_ds *)8), EFAULT);
    CHECK_ERR(shmctl(id, 99, &ds), EINVAL);
}

/* Without root: the mode decides (EACCES), and only the owner or creator may change or
 * remove a segment (EPERM). Needs root to become another user. */
TEST(permissions_are_checked) {
    CHECK_EQ(geteuid(), 0);
    key_t key = key_for(3);
    int id = track_shm(shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600));
    CHECK(id >= 0);
    int readable = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0644));
    CHECK(readable >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (!become_nobody()) _exit(2);
        struct shmid_ds ds;
        if (shmget(key, PAGE, 0600) != -1 || errno != EACCES) _exit(3);
        if (shmget(key, PAGE, 0) != id) _exit(4); /* Asking for no access is allowed. */
        if (shmat(id, NULL, SHM_RDONLY) != (void *)-1 || errno != EACCES) _exit(5);
        if (shmctl(id, IPC_STAT, &ds) != -1 || errno != EACCES) _exit(6);
        if (shmctl(id, IPC_RMID, NULL) != -1 || errno != EPERM) _exit(7);
        if (shmctl(readable, IPC_STAT, &ds) != 0) _exit(8);
        void *p = shmat(readable, NULL, SHM_RDONLY);
        if (p == (void *)-1) _exit(9);
        if (shmat(readable, NULL, 0) != (void *)-1 || errno != EACCES) _exit(10);
        if (shmctl(readable, IPC_SET, &ds) != -1 || errno != EPERM) _exit(11);
        _exit(0);
    }
    CHECK_EQ(exit_code(pid), 0);
}

/* IPC_INFO and SHM_INFO return the highest index in use; SHM_STAT takes an index and
 * returns the id there. */
TEST(info_and_shm_stat) {
    int id = track_shm(shmget(IPC_PRIVATE, 5 * PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    struct shminfo info;
    int max = shmctl(0, IPC_INFO, (struct shmid_ds *)&info);
    CHECK(max >= 0);
    CHECK_EQ(info.shmmin, 1);
    CHECK(info.shmmax >= 5 * PAGE);
    CHECK(info.shmmni > 0);
    struct shm_info usage;
    CHECK_EQ(shmctl(0, SHM_INFO, (struct shmid_ds *)&usage), max);
    CHECK(usage.used_ids >= 1);
    CHECK(usage.shm_tot >= 5);
    int found = 0;
    for (int index = 0; index <= max; index++) {
        struct shmid_ds ds;
        int got = shmctl(index, SHM_STAT, &ds);
        if (got == id) {
            found = 1;
            CHECK_EQ(ds.shm_segsz, 5 * PAGE);
        }
    }
    CHECK(found);
    struct shmid_ds ds;
    CHECK_ERR(shmctl(max + 1, SHM_STAT, &ds), EINVAL);
}

/* exec drops the attachments of the process that calls it. */
TEST(exec_detaches) {
    int id = track_shm(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600));
    CHECK(id >= 0);
    int hold[2];
    CHECK_OK(pipe(hold));
    pid_t pid = fork();
    if (pid == 0) {
        if (shmat(id, NULL, 0) == (void *)-1) _exit(2);
        dup2(hold[0], 0);
        close(hold[1]);
        /* Blocks reading stdin until the parent closes the pipe. */
        execl("/bin/sh", "sh", "-c", "read x; exit 0", (char *)NULL);
        _exit(3);
    }
    close(hold[0]);
    long n = -1;
    for (int i = 0; i < 1000; i++) {
        n = nattch(id);
        if (n == 0) break;
        sleep_ms(10);
    }
    CHECK_EQ(waitpid(pid, NULL, WNOHANG), 0); /* Still running the new program. */
    close(hold[1]);
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(n, 0);
}

/* /proc/sysvipc/shm lists each segment: key, id, perms, size, ... */
TEST(proc_sysvipc_shm_lists_segments) {
    key_t key = key_for(4);
    int id = track_shm(shmget(key, 12345, IPC_CREAT | IPC_EXCL | 0640));
    CHECK(id >= 0);
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    CHECK(f != NULL);
    char line[512];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK(strncmp(line, "       key      shmid perms", 27) == 0);
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        int k, i;
        unsigned perms;
        unsigned long size;
        if (sscanf(line, "%d %d %o %lu", &k, &i, &perms, &size) == 4 && i == id) {
            found = k == key && perms == 0640 && size == 12345;
        }
    }
    fclose(f);
    CHECK(found);
}
