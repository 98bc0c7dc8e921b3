/* mmap(2) of regular files: what MAP_SHARED and MAP_PRIVATE mappings see of the file and of
 * each other, offsets, the end of the file, and the errors for descriptors that cannot be
 * mapped. Files are made by file_of_pages(): page k of the file is filled with 'A' + k. */
#include "mm.h"

#include <sys/sysmacros.h>

/* MAP_SHARED: "Updates to the mapping are visible to other processes mapping the same region,
 * and ... are carried through to the underlying file." The page cache is the mapping, so
 * read(2) sees a store at once, without msync(2). */
TEST(shared_write_visible_to_read_without_msync) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[0], 'A');
    CHECK_EQ(p[PAGE], 'B');
    memcpy(p + PAGE + 10, "hello", 5);
    char buf[8] = {0};
    CHECK_EQ(pread(fd, buf, 5, PAGE + 10), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    /* Through another open file description too. */
    memset(buf, 0, sizeof buf);
    int fd2 = open(P("f"), O_RDONLY | O_CLOEXEC);
    CHECK(fd2 >= 0);
    CHECK_EQ(pread(fd2, buf, 5, PAGE + 10), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_OK(munmap(p, 2 * PAGE));
    /* And after the mapping is gone. */
    CHECK_EQ(pread(fd2, buf, 5, PAGE + 10), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    close(fd2);
    close(fd);
}

TEST(shared_write_visible_in_second_shared_mapping) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    int fd2 = open(P("f"), O_RDWR | O_CLOEXEC);
    CHECK(fd2 >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    unsigned char *q = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd2, 0);
    CHECK(p != MAP_FAILED && q != MAP_FAILED);
    CHECK(p != q);
    CHECK_EQ(q[PAGE + 1], 'B');
    p[PAGE + 1] = 'x';
    CHECK_EQ(q[PAGE + 1], 'x');
    p[0] = 'y';
    CHECK_EQ(q[0], 'y');
    CHECK_OK(munmap(p, 2 * PAGE));
    CHECK_OK(munmap(q, 2 * PAGE));
    close(fd2);
    close(fd);
}

/* A write(2) to the file shows in a shared mapping, and in the pages of a private mapping
 * that were never written ("It is unspecified whether changes made to the file after the
 * mmap() call are visible in the mapped region": on Linux they are until the page is
 * copied). */
TEST(file_write_visible_in_existing_mappings) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *s = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(s != MAP_FAILED && p != MAP_FAILED);
    CHECK_EQ(s[PAGE], 'B');
    CHECK_EQ(p[PAGE], 'B');
    CHECK_EQ(pwrite(fd, "new", 3, PAGE + 100), 3);
    CHECK(memcmp(s + PAGE + 100, "new", 3) == 0);
    CHECK(memcmp(p + PAGE + 100, "new", 3) == 0);
    CHECK_OK(munmap(s, 2 * PAGE));
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd);
}

/* MAP_PRIVATE: "Updates to the mapping are not visible to other processes mapping the same
 * file, and are not carried through to the underlying file." */
TEST(private_write_reaches_neither_file_nor_other_mappings) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    unsigned char *p2 = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    unsigned char *s = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED && p2 != MAP_FAILED && s != MAP_FAILED);
    memset(p, 'p', 2 * PAGE);
    CHECK(all_are(p, 2 * PAGE, 'p'));
    CHECK(all_are(p2, PAGE, 'A'));
    CHECK(all_are(s + PAGE, PAGE, 'B'));
    CHECK_EQ(msync(p, 2 * PAGE, MS_SYNC), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
    char buf[4];
    CHECK_EQ(pread(fd, buf, 2, PAGE - 1), 2);
    CHECK_EQ(buf[0], 'A');
    CHECK_EQ(buf[1], 'B');
    CHECK_OK(munmap(p2, 2 * PAGE));
    CHECK_OK(munmap(s, 2 * PAGE));
    close(fd);
}

/* A written page of a private mapping is the process's own copy: later writes to the file
 * no longer show there, while the mapping's untouched pages still follow the file. */
TEST(private_copy_is_detached_from_file) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 'p';
    CHECK_EQ(pwrite(fd, "zz", 1, 1), 1);
    CHECK_EQ(pwrite(fd, "zz", 1, PAGE + 1), 1);
    CHECK_EQ(p[0], 'p');
    CHECK_EQ(p[1], 'A');
    CHECK_EQ(p[PAGE + 1], 'z');
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd);
}

/* "offset must be a multiple of the page size": the mapping starts at that byte of the file. */
TEST(page_aligned_offset_maps_from_there) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 4);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 2 * PAGE);
    CHECK(p != MAP_FAILED);
    CHECK(all_are(p, PAGE, 'C'));
    CHECK(all_are(p + PAGE, PAGE, 'D'));
    CHECK_OK(munmap(p, 2 * PAGE));
    p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 3 * PAGE);
    CHECK(p != MAP_FAILED);
    CHECK(all_are(p, PAGE, 'D'));
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

TEST(unaligned_offset_is_einval) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_SHARED, fd, 100), EINVAL);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE + 1), EINVAL);
    close(fd);
}

/* "A file is mapped in multiples of the page size. For a file that is not a multiple of the
 * page size, the remaining bytes in the partial page at the end of the mapping are zeroed
 * when mapped, and modifications to that region are not written out to the file." */
TEST(partial_last_page_reads_zero_past_eof) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    CHECK_OK(ftruncate(fd, PAGE + 100));
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK(all_are(p + PAGE, 100, 'B'));
    CHECK(all_are(p + PAGE + 100, PAGE - 100, 0));
    p[PAGE + 200] = 'x';
    CHECK_EQ(msync(p, 2 * PAGE, MS_SYNC), 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, PAGE + 100);
    char buf[4];
    CHECK_EQ(pread(fd, buf, sizeof buf, PAGE + 200), 0);
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd);
}

/* "Use of a mapped region can result in these signals: ... SIGBUS Attempted access to a page
 * of the buffer that lies beyond the end of the mapped file." Mapping past the end is
 * allowed; only the access faults. */
TEST(page_wholly_past_eof_is_sigbus) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    CHECK_OK(ftruncate(fd, PAGE + 100));
    unsigned char *p = mmap(NULL, 4 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p + PAGE + 100)), 0);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p + 2 * PAGE)), SIGBUS);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p + 3 * PAGE + 5, 1)), SIGBUS);
    CHECK_OK(munmap(p, 4 * PAGE));
    /* The same for a private mapping, and for one that starts past the end. */
    p = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 2 * PAGE);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p)), SIGBUS);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p + PAGE, 1)), SIGBUS);
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd);
}

/* Shrinking a mapped file takes away the pages past the new end: touching them is SIGBUS
 * ("the end of the mapped file" is the file's current size). Growing it again brings back
 * zeros, not the old contents. */
TEST(truncated_pages_are_sigbus_then_zero_after_regrowth) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 3);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[2 * PAGE], 'C');
    CHECK_OK(ftruncate(fd, PAGE));
    CHECK_EQ(CHILD_SIGNAL(TOUCH_READ(p + 2 * PAGE)), SIGBUS);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p + PAGE, 1)), SIGBUS);
    CHECK_EQ(p[0], 'A');
    CHECK_OK(ftruncate(fd, 3 * PAGE));
    CHECK(all_are(p + PAGE, 2 * PAGE, 0));
    CHECK_OK(munmap(p, 3 * PAGE));
    close(fd);
}

/* "EACCES ... MAP_SHARED was requested and PROT_WRITE is set, but fd is not open in
 * read/write (O_RDWR) mode." A private writable mapping of the same descriptor is fine: its
 * writes never reach the file. */
TEST(shared_writable_mapping_of_read_only_fd_is_eacces) {
    CHECK(scratch());
    close(file_of_pages(P("f"), 1));
    int fd = open(P("f"), O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, MAP_SHARED, fd, 0), EACCES);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    unsigned char *p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[0], 'A');
    CHECK_OK(munmap(p, PAGE));
    p = mmap(NULL, PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 'p';
    CHECK_EQ(p[0], 'p');
    CHECK_OK(munmap(p, PAGE));
    char c;
    CHECK_EQ(pread(fd, &c, 1, 0), 1);
    CHECK_EQ(c, 'A');
    close(fd);
}

/* "EACCES ... a file mapping was requested, but fd is not open for reading." */
TEST(any_mapping_of_write_only_fd_is_eacces) {
    CHECK(scratch());
    close(file_of_pages(P("f"), 1));
    int fd = open(P("f"), O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0), EACCES);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_SHARED, fd, 0), EACCES);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, MAP_SHARED, fd, 0), EACCES);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    close(fd);
}

/* "EBADF fd is not a valid file descriptor (and MAP_ANONYMOUS was not set)." */
TEST(closed_fd_is_ebadf) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0), EBADF);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_SHARED, fd, 0), EBADF);
}

/* "ENODEV The underlying filesystem of the specified file does not support memory mapping":
 * directories and pipes cannot be mapped. */
TEST(directory_and_pipe_are_enodev) {
    CHECK(scratch());
    int dfd = open(P(""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dfd >= 0);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_PRIVATE, dfd, 0), ENODEV);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_SHARED, dfd, 0), ENODEV);
    close(dfd);
    int fds[2];
    CHECK_OK(pipe(fds));
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_PRIVATE, fds[0], 0), ENODEV);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_SHARED, fds[0], 0), ENODEV);
    close(fds[0]);
    close(fds[1]);
}

/* "closing the file descriptor does not unmap the region": the mapping keeps the file, even
 * an unlinked one, and its writes still reach it. */
TEST(mapping_outlives_close_and_unlink) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 2);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    int fd2 = open(P("f"), O_RDONLY | O_CLOEXEC);
    CHECK(fd2 >= 0);
    CHECK_OK(close(fd));
    CHECK_OK(unlink(P("f")));
    CHECK_EQ(p[PAGE], 'B');
    p[PAGE] = 'u';
    char c;
    CHECK_EQ(pread(fd2, &c, 1, PAGE), 1);
    CHECK_EQ(c, 'u');
    CHECK_OK(munmap(p, 2 * PAGE));
    close(fd2);
}

/* Unmapping part of a file mapping leaves the rest mapped to the same file pages. */
TEST(partial_munmap_keeps_the_rest) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 3);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 3 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p + PAGE, PAGE));
    CHECK(is_free(p + PAGE, PAGE));
    CHECK(all_are(p, PAGE, 'A'));
    CHECK(all_are(p + 2 * PAGE, PAGE, 'C'));
    p[2 * PAGE] = 'w';
    char c;
    CHECK_EQ(pread(fd, &c, 1, 2 * PAGE), 1);
    CHECK_EQ(c, 'w');
    CHECK_OK(munmap(p, 3 * PAGE));
    close(fd);
}

/* proc_pid_maps(5): "address perms offset dev inode pathname"; "offset is the offset into the
 * file/whatever; dev is the device (major:minor); inode is the inode on that device". */
TEST(proc_maps_shows_path_offset_and_inode) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 4);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    unsigned char *p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 2 * PAGE);
    CHECK(p != MAP_FAILED);
    static char maps[1 << 16];
    CHECK(get_file("/proc/self/maps", maps, sizeof maps) > 0);
    int found = 0;
    for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long start, end, offset, inode;
        unsigned int major, minor;
        char perms[8], path[PATH_MAX];
        int n = sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %4095s", &start, &end, perms, &offset,
                       &major, &minor, &inode, path);
        if (start != (uintptr_t)p) continue;
        found = 1;
        CHECK_EQ(n, 8);
        CHECK_EQ(end, (uintptr_t)p + PAGE);
        CHECK(strcmp(perms, "r--s") == 0);
        CHECK_EQ(offset, 2 * PAGE);
        CHECK_EQ(major, major(st.st_dev));
        CHECK_EQ(minor, minor(st.st_dev));
        CHECK_EQ(inode, st.st_ino);
        CHECK(strcmp(path, P("f")) == 0);
    }
    CHECK(found);
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* "The st_ctime and st_mtime field for a file mapped with PROT_WRITE and MAP_SHARED will be
 * updated after a write to the mapped region, and before a subsequent msync(2) with the
 * MS_SYNC or MS_ASYNC flag, if one occurs." */
TEST(shared_write_updates_mtime) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    CHECK_OK(futimens(fd, old));
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 'm';
    CHECK_EQ(msync(p, PAGE, MS_SYNC), 0);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(st.st_mtim.tv_sec > 1000000000);
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* MAP_SHARED_VALIDATE: "This flag provides the same behavior as MAP_SHARED except that
 * MAP_SHARED mappings ignore unknown flags in flags. By contrast, when creating a mapping
 * using MAP_SHARED_VALIDATE, the kernel verifies all passed flags are known and fails the
 * mapping with the error EOPNOTSUPP for unknown flags." */
TEST(shared_validate_maps_shared_and_rejects_unknown_flags) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    CHECK_ERR(syscall(SYS_mmap, 0, PAGE, RW, MAP_SHARED_VALIDATE | 0x400000, fd, 0), EOPNOTSUPP);
    unsigned char *p = mmap(NULL, PAGE, RW, MAP_SHARED | 0x400000, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(munmap(p, PAGE));
    p = mmap(NULL, PAGE, RW, MAP_SHARED_VALIDATE, fd, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 'v';
    char c;
    CHECK_EQ(pread(fd, &c, 1, 0), 1);
    CHECK_EQ(c, 'v');
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* A write to a read-only file mapping is a fault, shared or private. */
TEST(write_to_read_only_file_mapping_is_sigsegv) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 1);
    CHECK(fd >= 0);
    unsigned char *s = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(s != MAP_FAILED && p != MAP_FAILED);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(s, 'x')), SIGSEGV);
    CHECK_EQ(CHILD_SIGNAL(TOUCH_WRITE(p, 'x')), SIGSEGV);
    CHECK_EQ(s[0], 'A');
    CHECK_EQ(p[0], 'A');
    CHECK_OK(munmap(s, PAGE));
    CHECK_OK(munmap(p, PAGE));
    close(fd);
}

/* MAP_POPULATE on a file mapping: "for a file mapping, this causes read-ahead on the file",
 * so the pages are resident at once. */
TEST(populate_file_mapping_is_resident) {
    CHECK(scratch());
    int fd = file_of_pages(P("f"), 4);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    CHECK(p != MAP_FAILED);
    unsigned char vec[4] = {0};
    CHECK_EQ(mincore(p, 4 * PAGE, vec), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(vec[i] & 1, 1);
    CHECK(all_are(p + 3 * PAGE, PAGE, 'D'));
    CHECK_OK(munmap(p, 4 * PAGE));
    close(fd);
}
