/* Copy-on-write across fork(2): "The child process and the parent process run in separate
 * memory spaces. At the time of fork() both memory spaces have the same content. Memory
 * writes ... performed by one of the processes do not affect the other." MAP_SHARED memory
 * stays shared; MADV_DONTFORK and MADV_WIPEONFORK (madvise(2)) change what the child gets.
 *
 * Parent and child take turns through two pipes, so that each write happens while the other
 * process still has the page. */
#include "mm.h"

/* A pipe pair for turns: the parent writes to `go[1]`, the child to `back[1]`. */
struct turns {
    int go[2], back[2];
};

static int turns_open(struct turns *t) {
    return pipe(t->go) == 0 && pipe(t->back) == 0 ? 0 : -1;
}

/* Gives the turn to the other side. */
static int pass(int wfd) {
    return write(wfd, "x", 1) == 1 ? 0 : -1;
}

/* Waits for the turn: 0 once the other side passed it. */
static int await(int rfd) {
    char c;
    return read(rfd, &c, 1) == 1 ? 0 : -1;
}

/* The parent writes its page after fork and before the child looks; the child writes its own
 * after; neither sees the other's. Shared by the anonymous and the file case: `before` is
 * what the memory held at fork. */
static int child_checks_private(unsigned char *p, size_t len, unsigned char before,
                                struct turns *t) {
    if (await(t->go[0]) != 0) return 1;
    if (!all_are(p, len, before)) return 2;
    memset(p, 'c', len);
    if (pass(t->back[1]) != 0) return 3;
    if (await(t->go[0]) != 0) return 4;
    return all_are(p, len, 'c') ? 0 : 5;
}

TEST(private_anonymous_writes_stay_separate) {
    size_t len = 8 * PAGE;
    unsigned char *p = mmap(NULL, len, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 'b', len);
    struct turns t;
    CHECK_OK(turns_open(&t));
    pid_t pid = fork_child();
    if (pid == 0) _exit(child_checks_private(p, len, 'b', &t));
    CHECK(pid > 0);
    memset(p, 'p', len);
    CHECK_OK(pass(t.go[1]));
    CHECK_OK(await(t.back[0]));
    CHECK(all_are(p, len, 'p'));
    memset(p, 'q', len);
    CHECK_OK(pass(t.go[1]));
    CHECK_EQ(wait_signal(pid), 0);
    CHECK(all_are(p, len, 'q'));
    CHECK_OK(munmap(p, len));
}

/* The same for a private file mapping, one page of which the parent had already written (its
 * own copy, which the child inherits); the file never changes. */
TEST(private_file_mapping_writes_stay_separate) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 4);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    memset(p + PAGE, 'b', PAGE);
    struct turns t;
    CHECK_OK(turns_open(&t));
    pid_t pid = fork_child();
    if (pid == 0) {
        if (!all_are(p, PAGE, 'A') || !all_are(p + 2 * PAGE, PAGE, 'C')) _exit(10);
        _exit(child_checks_private(p + PAGE, PAGE, 'b', &t));
    }
    CHECK(pid > 0);
    memset(p + PAGE, 'p', PAGE);
    CHECK_OK(pass(t.go[1]));
    CHECK_OK(await(t.back[0]));
    CHECK(all_are(p + PAGE, PAGE, 'p'));
    CHECK_OK(pass(t.go[1]));
    CHECK_EQ(wait_signal(pid), 0);
    CHECK(all_are(p, PAGE, 'A'));
    CHECK(all_are(p + PAGE, PAGE, 'p'));
    char buf[PAGE * 4 + 1];
    CHECK_EQ(pread(fd, buf, 4 * PAGE, 0), 4 * PAGE);
    CHECK(all_are((unsigned char *)buf + PAGE, PAGE, 'B'));
    CHECK_OK(munmap(p, 4 * PAGE));
    close(fd);
}

/* MAP_SHARED anonymous memory stays one object: each side sees the other's writes, either
 * way round. */
TEST(shared_anonymous_stays_shared_both_ways) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 1;
    struct turns t;
    CHECK_OK(turns_open(&t));
    pid_t pid = fork_child();
    if (pid == 0) {
        if (await(t.go[0]) != 0 || p[0] != 2) _exit(1);
        p[PAGE] = 3;
        _exit(pass(t.back[1]) == 0 ? 0 : 2);
    }
    CHECK(pid > 0);
    p[0] = 2;
    CHECK_OK(pass(t.go[1]));
    CHECK_OK(await(t.back[0]));
    CHECK_EQ(p[PAGE], 3);
    CHECK_EQ(wait_signal(pid), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* A MAP_SHARED file mapping is the file for both: the child's store reaches the parent's
 * mapping and the file. */
TEST(shared_file_mapping_stays_shared) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(CHILD_SIGNAL(memset(p + PAGE, 'k', 16)), 0);
    CHECK(all_are(p + PAGE, 16, 'k'));
    char c;
    CHECK_EQ(pread(fd, &c, 1, PAGE + 15), 1);
    CHECK_EQ(c, 'k');
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd);
}

/* The child's munmap and mprotect change only its own address space. */
TEST(child_unmap_and_protect_leave_parent_alone) {
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 7, 2 * PAGE);
    CHECK_EQ(CHILD_SIGNAL(munmap(p, PAGE); mprotect(p + PAGE, PAGE, PROT_NONE)), 0);
    CHECK(all_are(p, 2 * PAGE, 7));
    CHECK_EQ(kwrite(p), 0);
    CHECK_EQ(kwrite(p + PAGE), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
}

/* A large region is copied page by page as each side writes: every page of the child's
 * writes stays in the child. */
TEST(many_pages_written_by_child_stay_in_child) {
    size_t len = 16UL << 20;
    unsigned char *p = mmap(NULL, len, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    for (size_t off = 0; off < len; off += PAGE) p[off] = (unsigned char)(off / PAGE);
    pid_t pid = fork_child();
    if (pid == 0) {
        for (size_t off = 0; off < len; off += PAGE) {
            if (p[off] != (unsigned char)(off / PAGE)) _exit(1);
            p[off] = 0xff;
        }
        _exit(0);
    }
    CHECK_EQ(wait_signal(pid), 0);
    for (size_t off = 0; off < len; off += PAGE) CHECK_EQ(p[off], (unsigned char)(off / PAGE));
    CHECK_OK(munmap(p, len));
}

/* MADV_DONTFORK: "Do not make the pages in this range available to the child after a
 * fork(2)." The rest of the mapping is there, and the parent keeps everything. */
TEST(dontfork_range_absent_in_child) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x42, 3 * PAGE);
    CHECK_EQ(madvise(p + PAGE, PAGE, MADV_DONTFORK), 0);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p + PAGE)), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p + PAGE, 1)), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(if (p[0] != 0x42 || p[2 * PAGE] != 0x42) _exit(1)), 0);
    CHECK_EQ(CHILD_SIGNAL(if (kwrite(p + PAGE) == 0 || errno != EFAULT) _exit(1)), 0);
    CHECK(all_are(p, 3 * PAGE, 0x42));
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* "MADV_DOFORK Undo the effect of MADV_DONTFORK, restoring the default behavior". */
TEST(dofork_undoes_dontfork) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 0x43;
    CHECK_EQ(madvise(p, PAGE, MADV_DONTFORK), 0);
    CHECK_EQ(madvise(p, PAGE, MADV_DOFORK), 0);
    CHECK_EQ(CHILD_SIGNAL(if (p[0] != 0x43) _exit(1)), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* MADV_WIPEONFORK: "Present the child process with zero-filled memory in this range after a
 * fork(2)." The parent keeps its contents, and the child's pages are usable. */
TEST(wipeonfork_range_reads_zero_in_child) {
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 0x57, 3 * PAGE);
    CHECK_EQ(madvise(p + PAGE, 2 * PAGE, MADV_WIPEONFORK), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        if (!all_are(p, PAGE, 0x57) || !all_are(p + PAGE, 2 * PAGE, 0)) _exit(1);
        p[PAGE] = 1;
        _exit(p[PAGE] == 1 ? 0 : 2);
    }
    CHECK_EQ(wait_signal(pid), 0);
    CHECK(all_are(p, 3 * PAGE, 0x57));
    CHECK_OK(munmap(p, 3 * PAGE));
}

/* "MADV_KEEPONFORK Undo the effect of an earlier MADV_WIPEONFORK." */
TEST(keeponfork_undoes_wipeonfork) {
    unsigned char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 0x58;
    CHECK_EQ(madvise(p, PAGE, MADV_WIPEONFORK), 0);
    CHECK_EQ(madvise(p, PAGE, MADV_KEEPONFORK), 0);
    CHECK_EQ(CHILD_SIGNAL(if (p[0] != 0x58) _exit(1)), 0);
    CHECK_OK(munmap(p, PAGE));
}

/* "EINVAL advice is MADV_FREE or MADV_WIPEONFORK and the specified address range includes
 * file, Huge TLB, MAP_SHARED, or VM_PFNMAP ranges." */
TEST(wipeonfork_on_shared_mapping_is_einval) {
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(madvise(p, PAGE, MADV_WIPEONFORK), EINVAL);
    CHECK_OK(munmap(p, PAGE));
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    p = mmap(NULL, PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_ERR(madvise(p, PAGE, MADV_WIPEONFORK), EINVAL);
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}
