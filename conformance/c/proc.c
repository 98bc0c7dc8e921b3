/* procfs (proc(5)): readlink(2) on the magic links of /proc/self, then what /proc and a
 * minimal /sys show: the process's own directory (status, stat, maps, cmdline, fd/, ...),
 * the system-wide files, and how the tree behaves (read-only, its own device). */
#include "scratch.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

static long kreadlink(const char *path, char *buf, long size) {
    return syscall(SYS_readlink, path, buf, size);
}

/* proc(5): "/proc/pid/exe ... a symbolic link containing the actual pathname of the executed
 * command." It is absolute, and its last component is this program's file name. */
TEST(self_exe_is_absolute_path_to_program) {
    char buf[PATH_MAX];
    long n = kreadlink("/proc/self/exe", buf, sizeof buf - 1);
    CHECK(n > 1);
    CHECK(n < (long)sizeof buf - 1);
    buf[n] = 0;
    CHECK_EQ(buf[0], '/');
    CHECK(strlen(buf) == (size_t)n);
    const char *base = strrchr(buf, '/') + 1;
    CHECK(strcmp(base, program_invocation_short_name) == 0);
}

/* readlink(2): "readlink() does not append a terminating null byte to buf." */
TEST(result_not_nul_terminated) {
    char buf[PATH_MAX];
    memset(buf, 'x', sizeof buf);
    long n = kreadlink("/proc/self/exe", buf, sizeof buf);
    CHECK(n > 0 && n < (long)sizeof buf);
    CHECK_EQ(buf[n], 'x');
    CHECK(memchr(buf, 0, n) == NULL);
}

/* "It will (silently) truncate the contents (to a length of bufsiz characters), in case the
 * buffer is too small to hold all of the contents." */
TEST(small_buffer_truncates) {
    char full[PATH_MAX], buf[8];
    long n = kreadlink("/proc/self/exe", full, sizeof full);
    CHECK(n > 4);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(kreadlink("/proc/self/exe", buf, 4), 4);
    CHECK(memcmp(buf, full, 4) == 0);
    CHECK_EQ(buf[4], 'x');
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(kreadlink("/proc/self/exe", buf, 1), 1);
    CHECK_EQ(buf[0], '/');
    CHECK_EQ(buf[1], 'x');
}

/* "EINVAL bufsiz is not positive." */
TEST(nonpositive_bufsiz_is_einval) {
    char buf[16];
    CHECK_ERR(kreadlink("/proc/self/exe", buf, 0), EINVAL);
    CHECK_ERR(kreadlink("/proc/self/exe", buf, -1), EINVAL);
}

TEST(bad_buffer_is_efault) {
    CHECK_ERR(kreadlink("/proc/self/exe", (char *)1, 64), EFAULT);
}

TEST(bad_path_is_efault) {
    char buf[64];
    CHECK_ERR(kreadlink((const char *)1, buf, sizeof buf), EFAULT);
    CHECK_ERR(kreadlink(NULL, buf, sizeof buf), EFAULT);
}

/* readlinkat(AT_FDCWD, ...) is the same as readlink. */
TEST(readlinkat_agrees) {
    char a[PATH_MAX], b[PATH_MAX];
    long na = kreadlink("/proc/self/exe", a, sizeof a);
    long nb = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", b, sizeof b);
    CHECK(na > 0);
    CHECK_EQ(nb, na);
    CHECK(memcmp(a, b, na) == 0);
}

/* proc(5): "/proc/self: When a process accesses this magic symbolic link, it resolves to the
 * process's own /proc/pid directory": its contents are the pid in decimal. */
TEST(proc_self_is_pid) {
    char buf[32], want[32];
    memset(buf, 0, sizeof buf);
    long n = kreadlink("/proc/self", buf, sizeof buf - 1);
    snprintf(want, sizeof want, "%d", getpid());
    CHECK_EQ(n, (long)strlen(want));
    CHECK(strcmp(buf, want) == 0);
}

/* The same link under the process's own pid. */
TEST(proc_pid_exe_matches_self) {
    char path[64], a[PATH_MAX], b[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", getpid());
    long na = kreadlink("/proc/self/exe", a, sizeof a);
    long nb = kreadlink(path, b, sizeof b);
    CHECK(na > 0);
    CHECK_EQ(nb, na);
    CHECK(memcmp(a, b, na) == 0);
}

TEST(missing_entry_is_enoent) {
    char buf[64];
    CHECK_ERR(kreadlink("/proc/self/no-such-entry", buf, sizeof buf), ENOENT);
}

/* "EINVAL The named file (i.e., the final filename component) is not a symbolic link." */
TEST(non_link_is_einval) {
    char buf[64];
    CHECK_ERR(kreadlink("/proc", buf, sizeof buf), EINVAL);
    CHECK_ERR(kreadlink("/", buf, sizeof buf), EINVAL);
}

/* ---- /proc/PID files ---------------------------------------------------------------- */

/* glibc passes main's arguments to ELF constructors too. */
static int saved_argc;
static char **saved_argv;

__attribute__((constructor)) static void save_args(int argc, char **argv, char **envp) {
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

/* Reads all of path (at most size-1 bytes) into buf, NUL-terminated; the length or -1. */
static long slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    while (n < size - 1) {
        long r = read(fd, buf + n, size - 1 - n);
        if (r < 0) {
            close(fd);
            return -1;
        }
        if (r == 0) break;
        n += r;
    }
    close(fd);
    buf[n] = 0;
    return n;
}

/* Whether the directory at path lists name. */
static int lists(const char *path, const char *name) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (!strcmp(e->d_name, name)) found = 1;
    closedir(d);
    return found;
}

static char big[1 << 16];

/* proc(5): "/proc/pid/exe ... a symbolic link containing the actual pathname of the executed
 * command": the program's own path. */
TEST(self_exe_names_this_program) {
    char link[PATH_MAX], real[PATH_MAX];
    long n = kreadlink("/proc/self/exe", link, sizeof link - 1);
    CHECK(n > 0);
    link[n] = 0;
    CHECK(realpath(program_invocation_name, real) != NULL);
    CHECK(strcmp(link, real) == 0);
}

/* "/proc/thread-self ... resolves to the process's own /proc/self/task/tid directory." */
TEST(thread_self_is_pid_task_tid) {
    char buf[64], want[64];
    long n = kreadlink("/proc/thread-self", buf, sizeof buf - 1);
    CHECK(n > 0);
    buf[n] = 0;
    snprintf(want, sizeof want, "%d/task/%d", getpid(), gettid());
    CHECK(strcmp(buf, want) == 0);
}

/* Opening the magic link /proc/self/exe opens the executable itself. */
TEST(exe_link_opens_the_program) {
    char head[4];
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    CHECK_OK(fd);
    CHECK_EQ(read(fd, head, 4), 4);
    close(fd);
    CHECK(memcmp(head, "\177ELF", 4) == 0);
}

/* proc_pid_cmdline(5): "the command-line arguments appear in this file as a set of strings
 * separated by null bytes, with a further null byte after the last string." */
TEST(cmdline_is_argv) {
    char want[4096];
    size_t len = 0;
    for (int i = 0; i < saved_argc; i++) {
        size_t l = strlen(saved_argv[i]) + 1;
        CHECK(len + l < sizeof want);
        memcpy(want + len, saved_argv[i], l);
        len += l;
    }
    long n = slurp("/proc/self/cmdline", big, sizeof big);
    CHECK_EQ(n, (long)len);
    CHECK(memcmp(big, want, len) == 0);
}

/* proc_pid_environ(5): the initial environment, NUL-separated like cmdline. */
TEST(environ_is_the_initial_environment) {
    extern char **environ;
    static char want[1 << 16];
    size_t len = 0;
    for (char **e = environ; *e; e++) {
        size_t l = strlen(*e) + 1;
        CHECK(len + l < sizeof want);
        memcpy(want + len, *e, l);
        len += l;
    }
    long n = slurp("/proc/self/environ", big, sizeof big);
    CHECK_EQ(n, (long)len);
    CHECK(memcmp(big, want, len) == 0);
}

/* proc_pid_comm(5): the command name, with a newline. */
TEST(comm_is_program_name) {
    char buf[64], want[32];
    snprintf(want, sizeof want, "%.15s\n", program_invocation_short_name);
    CHECK(slurp("/proc/self/comm", buf, sizeof buf) > 0);
    CHECK(strcmp(buf, want) == 0);
}

/* proc_pid_status(5): "Name", then fields such as "Pid: Thread ID", tab-separated. */
TEST(status_names_pid_and_ids) {
    char want[128];
    CHECK(slurp("/proc/self/status", big, sizeof big) > 0);
    CHECK(strncmp(big, "Name:\t", 6) == 0);
    snprintf(want, sizeof want, "\nPid:\t%d\n", getpid());
    CHECK(strstr(big, want) != NULL);
    snprintf(want, sizeof want, "\nTgid:\t%d\n", getpid());
    CHECK(strstr(big, want) != NULL);
    snprintf(want, sizeof want, "\nPPid:\t%d\n", getppid());
    CHECK(strstr(big, want) != NULL);
    snprintf(want, sizeof want, "\nUid:\t%d\t%d\t", getuid(), geteuid());
    CHECK(strstr(big, want) != NULL);
    CHECK(strstr(big, "\nState:\tR (running)\n") != NULL);
    CHECK(strstr(big, "\nThreads:\t1\n") != NULL);
    CHECK(strstr(big, "\nVmRSS:\t") != NULL);
    CHECK(strstr(big, "\nSigIgn:\t") != NULL);
    CHECK(strstr(big, "\nCpus_allowed_list:\t") != NULL);
}

/* proc_pid_stat(5): "(1) pid", "(2) comm ... in parentheses", "(3) state", "(4) ppid". */
TEST(stat_fields_pid_comm_state_ppid) {
    char comm[32];
    CHECK(slurp("/proc/self/stat", big, sizeof big) > 0);
    CHECK_EQ(atoi(big), getpid());
    snprintf(comm, sizeof comm, " (%.15s) ", program_invocation_short_name);
    CHECK(strstr(big, comm) != NULL);
    char *rest = strrchr(big, ')');
    CHECK(rest != NULL);
    CHECK(strchr("RSDZTtWXxKPI", rest[2]) != NULL);
    CHECK_EQ(atoi(rest + 4), getppid());
    /* 52 fields in all: 50 after the comm. */
    int fields = 0;
    for (char *tok = strtok(rest + 1, " \n"); tok; tok = strtok(NULL, " \n")) fields++;
    CHECK_EQ(fields, 50);
}

/* The whitespace-separated field `n` (counted as proc_pid_stat(5) does, from 1) of
 * /proc/self/stat, or -1. */
static long stat_field(int n) {
    if (slurp("/proc/self/stat", big, sizeof big) <= 0) return -1;
    char *rest = strrchr(big, ')');
    if (!rest) return -1;
    int field = 2;
    for (char *tok = strtok(rest + 1, " \n"); tok; tok = strtok(NULL, " \n"))
        if (++field == n) return atol(tok);
    return -1;
}

/* proc_pid_stat(5): "(18) priority ... (19) nice ... (40) rt_priority ... (41) policy" follow
 * setpriority(2) and sched_setscheduler(2). */
TEST(stat_shows_nice_and_policy) {
    int nice_now = getpriority(PRIO_PROCESS, 0);
    if (nice_now >= 19) return;
    CHECK_EQ(setpriority(PRIO_PROCESS, 0, nice_now + 1), 0);
    CHECK_EQ(stat_field(19), nice_now + 1);
    CHECK_EQ(stat_field(18), 20 + nice_now + 1);
    struct sched_param p = {.sched_priority = 0};
    CHECK_EQ(sched_setscheduler(0, SCHED_BATCH, &p), 0);
    CHECK_EQ(stat_field(41), SCHED_BATCH);
    CHECK_EQ(stat_field(40), 0);
}

/* proc_pid_status(5): "Cpus_allowed_list: Same as previous, but in 'list format'" -- the
 * affinity sched_setaffinity(2) set. */
TEST(status_shows_affinity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &set)) cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    CHECK_EQ(sched_setaffinity(0, sizeof set, &set), 0);
    char want[64];
    snprintf(want, sizeof want, "\nCpus_allowed_list:\t%d\n", cpu);
    CHECK(slurp("/proc/self/status", big, sizeof big) > 0);
    CHECK(strstr(big, want) != NULL);
}

/* proc_pid_statm(5): seven numbers, in pages. */
TEST(statm_has_seven_numbers) {
    unsigned long v[7];
    CHECK(slurp("/proc/self/statm", big, sizeof big) > 0);
    CHECK_EQ(sscanf(big, "%lu %lu %lu %lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6]),
             7);
    CHECK(v[0] >= v[1]);
    CHECK(v[0] > 0);
}

/* proc_pid_maps(5): "address perms offset dev inode pathname", with "[stack]" for the
 * initial thread's stack, which holds this function's locals. */
TEST(maps_has_the_stack_line) {
    int local = 0;
    unsigned long here = (unsigned long)&local;
    CHECK(slurp("/proc/self/maps", big, sizeof big) > 0);
    int found = 0;
    for (char *line = strtok(big, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long start, end;
        char perms[8];
        if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3) {
            harness_fail(__FILE__, __LINE__, "bad maps line: %s", line);
            return;
        }
        if (strstr(line, " [stack]")) {
            CHECK(start <= here && here < end);
            CHECK(strcmp(perms, "rw-p") == 0);
            found = 1;
        }
    }
    CHECK(found);
}

/* The /proc/self/maps line that starts at `start`: its end and perms; 0 if there is none. */
static int maps_line_at(unsigned long start, unsigned long *end, char perms[8]) {
    if (slurp("/proc/self/maps", big, sizeof big) <= 0) return 0;
    for (char *line = strtok(big, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long s0, e0;
        if (sscanf(line, "%lx-%lx %7s", &s0, &e0, perms) == 3 && s0 == start) {
            *end = e0;
            return 1;
        }
    }
    return 0;
}

/* proc_pid_maps(5): one line per mapping, with "perms ... r = read, w = write, x = execute,
 * s = shared, p = private (copy on write)": mprotect on part of a mapping splits its line,
 * munmap removes it. PROT_NONE guards keep the mapping from merging with its neighbours. */
TEST(maps_lines_follow_mprotect_and_munmap) {
    const unsigned long page = 4096;
    char *g = mmap(NULL, 5 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(g != MAP_FAILED);
    unsigned long p = (unsigned long)g + page, end;
    char perms[8];
    CHECK_OK(mprotect((void *)p, 3 * page, PROT_READ | PROT_WRITE));
    CHECK(maps_line_at(p, &end, perms));
    CHECK_EQ(end, p + 3 * page);
    CHECK(strcmp(perms, "rw-p") == 0);
    CHECK_OK(mprotect((void *)(p + page), page, PROT_READ));
    CHECK(maps_line_at(p, &end, perms));
    CHECK_EQ(end, p + page);
    CHECK(strcmp(perms, "rw-p") == 0);
    CHECK(maps_line_at(p + page, &end, perms));
    CHECK_EQ(end, p + 2 * page);
    CHECK(strcmp(perms, "r--p") == 0);
    CHECK(maps_line_at(p + 2 * page, &end, perms));
    CHECK_EQ(end, p + 3 * page);
    CHECK(strcmp(perms, "rw-p") == 0);
    CHECK_OK(munmap((void *)(p + page), page));
    CHECK(!maps_line_at(p + page, &end, perms));
    CHECK(maps_line_at(p, &end, perms));
    CHECK_EQ(end, p + page);
    CHECK_OK(munmap(g, 5 * page));
    CHECK(!maps_line_at(p, &end, perms));
    /* A shared mapping says so. */
    char *sh = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK(maps_line_at((unsigned long)sh, &end, perms));
    CHECK(strcmp(perms, "rw-s") == 0);
    CHECK_OK(munmap(sh, page));
}

/* A "Name:   123 kB" line of /proc/self/status; -1 if it is missing. */
static long status_kb(const char *name) {
    char key[64];
    if (slurp("/proc/self/status", big, sizeof big) <= 0) return -1;
    snprintf(key, sizeof key, "\n%s:", name);
    const char *line = strstr(big, key);
    return line ? strtol(line + strlen(key), NULL, 10) : -1;
}

/* proc_pid_status(5): "VmSize Virtual memory size", "VmRSS Resident set size". A 32 MiB
 * mapping adds to VmSize at once and to VmRSS only as its pages are touched; unmapped, it
 * leaves both. (RSS is counted per CPU and read approximately: a MiB of slack.) */
TEST(status_vm_sizes_follow_a_big_mapping) {
    const size_t len = 32UL << 20;
    const long kb = len >> 10;
    long size0 = status_kb("VmSize"), rss0 = status_kb("VmRSS");
    CHECK(size0 > 0 && rss0 > 0);
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(labs(status_kb("VmSize") - (size0 + kb)) <= 64);
    CHECK(status_kb("VmRSS") < rss0 + kb / 2);
    for (size_t off = 0; off < len; off += 4096) p[off] = 1;
    long rss1 = status_kb("VmRSS");
    CHECK(rss1 >= rss0 + kb - 1024);
    CHECK_OK(munmap(p, len));
    CHECK(labs(status_kb("VmSize") - size0) <= 64);
    CHECK(status_kb("VmRSS") <= rss1 - kb + 1024);
}

/* proc(5): "/proc/pid/smaps_rollup ... the values are summed over all mappings of the
 * process": its Rss line grows by what a touched mapping brings in. */
TEST(smaps_rollup_has_rss) {
    const size_t len = 16UL << 20;
    CHECK(slurp("/proc/self/smaps_rollup", big, sizeof big) > 0);
    const char *rss = strstr(big, "\nRss:");
    CHECK(rss != NULL);
    long rss0 = strtol(rss + 5, NULL, 10);
    CHECK(rss0 > 0);
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    for (size_t off = 0; off < len; off += 4096) p[off] = 1;
    CHECK(slurp("/proc/self/smaps_rollup", big, sizeof big) > 0);
    rss = strstr(big, "\nRss:");
    CHECK(rss != NULL);
    CHECK(strtol(rss + 5, NULL, 10) >= rss0 + (long)(len >> 10) - 1024);
    CHECK_OK(munmap(p, len));
}

/* proc_pid_limits(5): a table of soft and hard limits, with a header line. */
TEST(limits_table_shows_rlimits) {
    struct rlimit rl;
    char want[128];
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    CHECK(slurp("/proc/self/limits", big, sizeof big) > 0);
    const char *header =
        "Limit                     Soft Limit           Hard Limit           Units     \n";
    CHECK(strncmp(big, header, strlen(header)) == 0);
    snprintf(want, sizeof want, "\nMax open files            %-20lu %-20lu files     \n",
             (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
    CHECK(strstr(big, want) != NULL);
}

/* proc_pid_fd(5): "a symbolic link to the actual file"; reading it gives the file's path. */
TEST(fd_link_names_the_open_file) {
    char real[PATH_MAX], link[PATH_MAX], path[64];
    CHECK(scratch() != NULL);
    CHECK(put_file(P("f"), "data") == 4);
    CHECK(realpath(P("f"), real) != NULL);
    int fd = open(P("f"), O_RDONLY | O_CLOEXEC);
    CHECK_OK(fd);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long n = kreadlink(path, link, sizeof link - 1);
    CHECK(n > 0);
    link[n] = 0;
    CHECK(strcmp(link, real) == 0);
    CHECK(lists("/proc/self/fd", strrchr(path, '/') + 1));
    close(fd);
    struct stat st;
    CHECK_ERR(lstat(path, &st), ENOENT);
}

/* "the link's permissions show the access mode of the file descriptor": r-x for reading,
 * -wx for writing. */
TEST(fd_link_mode_follows_access_mode) {
    static const struct {
        int flags;
        mode_t mode;
    } modes[] = {{O_RDONLY, 0500}, {O_WRONLY, 0300}, {O_RDWR, 0700}};
    CHECK(scratch() != NULL);
    CHECK(put_file(P("f"), "x") == 1);
    for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char path[64];
        struct stat st;
        int fd = open(P("f"), modes[i].flags | O_CLOEXEC);
        CHECK_OK(fd);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        CHECK_OK(lstat(path, &st));
        close(fd);
        CHECK(S_ISLNK(st.st_mode));
        CHECK_EQ(st.st_mode & 07777, modes[i].mode);
    }
}

/* An fd link of an unlinked file reads "path (deleted)", and opening it still reaches the
 * file: the link stands for the open file, not for its old path. */
TEST(unlinked_file_reopens_through_fd_link) {
    char link[PATH_MAX], path[64], buf[16];
    struct stat a, b;
    CHECK(scratch() != NULL);
    CHECK(put_file(P("gone"), "hello") == 5);
    int fd = open(P("gone"), O_RDONLY | O_CLOEXEC);
    CHECK_OK(fd);
    CHECK_OK(unlink(P("gone")));
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long n = kreadlink(path, link, sizeof link - 1);
    CHECK(n > 10);
    link[n] = 0;
    CHECK(strcmp(link + n - 10, " (deleted)") == 0);
    int again = open(path, O_RDONLY | O_CLOEXEC);
    CHECK_OK(again);
    CHECK_EQ(read(again, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_OK(fstat(fd, &a));
    CHECK_OK(fstat(again, &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    CHECK_EQ(a.st_dev, b.st_dev);
    close(again);
    close(fd);
}

/* The magic link works as a directory in the middle of a path. */
TEST(fd_link_of_a_directory_leads_inside) {
    char path[96], buf[16];
    CHECK(scratch() != NULL);
    CHECK(put_file(P("inner"), "in") == 2);
    int dir = open(P(""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK_OK(dir);
    snprintf(path, sizeof path, "/proc/self/fd/%d/inner", dir);
    CHECK_EQ(slurp(path, buf, sizeof buf), 2);
    close(dir);
    CHECK(strcmp(buf, "in") == 0);
}

/* open(2): "O_NOFOLLOW ... If the trailing component of pathname is a symbolic link, then the
 * open fails, with the error ELOOP", magic links included. */
TEST(fd_link_with_nofollow_is_eloop) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", 1);
    CHECK_ERR(open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP);
}

/* proc_pid_fdinfo(5): "pos: the current offset", "flags: an octal number that displays the
 * file access mode and file status flags" (O_CLOEXEC too, since Linux 3.1). */
TEST(fdinfo_shows_offset_and_flags) {
    char path[64];
    unsigned long flags;
    CHECK(scratch() != NULL);
    CHECK(put_file(P("f"), "0123456789") == 10);
    int fd = open(P("f"), O_RDONLY | O_CLOEXEC);
    CHECK_OK(fd);
    CHECK_EQ(lseek(fd, 3, SEEK_SET), 3);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    CHECK(slurp(path, big, sizeof big) > 0);
    close(fd);
    CHECK(strncmp(big, "pos:\t3\nflags:\t0", 15) == 0);
    CHECK_EQ(sscanf(big + 14, "%lo", &flags), 1);
    CHECK_EQ(flags & O_ACCMODE, O_RDONLY);
    CHECK(flags & O_CLOEXEC);
    CHECK(strstr(big, "\nmnt_id:\t") != NULL);
}

/* proc_pid_cwd(5): "a symbolic link to the current working directory of the process". */
TEST(cwd_link_is_the_working_directory) {
    char cwd[PATH_MAX], link[PATH_MAX], buf[8];
    CHECK(scratch() != NULL);
    CHECK(put_file(P("here"), "yes") == 3);
    CHECK_OK(chdir(P("")));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    long n = kreadlink("/proc/self/cwd", link, sizeof link - 1);
    CHECK(n > 0);
    link[n] = 0;
    CHECK(strcmp(link, cwd) == 0);
    CHECK_EQ(slurp("/proc/self/cwd/here", buf, sizeof buf), 3);
    CHECK(strcmp(buf, "yes") == 0);
    CHECK_OK(chdir("/"));
}

/* proc_pid_root(5): the process's root directory, "/" without chroot. */
TEST(root_link_is_slash) {
    char buf[16];
    CHECK_EQ(kreadlink("/proc/self/root", buf, sizeof buf), 1);
    CHECK_EQ(buf[0], '/');
}

/* proc_pid_task(5): "a subdirectory containing one subdirectory for each thread", each
 * with files like the process's own. */
TEST(task_dir_holds_the_main_thread) {
    char name[32], path[64];
    snprintf(name, sizeof name, "%d", gettid());
    CHECK(lists("/proc/self/task", name));
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", gettid());
    CHECK(slurp(path, big, sizeof big) > 0);
    CHECK_EQ(atoi(big), gettid());
}

/* `ls /proc/self` shows the files proc(5) describes. */
TEST(self_dir_lists_its_files) {
    const char *names[] = {"cmdline", "comm", "cwd", "environ", "exe",   "fd",
                           "fdinfo",  "limits", "maps", "mounts", "root", "stat",
                           "statm",   "status", "task"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!lists("/proc/self", names[i])) {
            harness_fail(__FILE__, __LINE__, "/proc/self does not list %s", names[i]);
            return;
        }
    }
}

/* ---- /proc itself -------------------------------------------------------------------- */

/* proc(5): "There is a numerical subdirectory for each running process". */
TEST(proc_lists_own_pid_and_self) {
    char name[32];
    snprintf(name, sizeof name, "%d", getpid());
    CHECK(lists("/proc", name));
    CHECK(lists("/proc", "self"));
    CHECK(lists("/proc", "cpuinfo"));
}

/* The same file reached as /proc/self/... and /proc/PID/... is one inode, stable over time;
 * procfs is a device of its own. */
TEST(inodes_are_stable_and_proc_is_its_own_device) {
    struct stat a, b, proc, root, self;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", getpid());
    CHECK_OK(stat("/proc/self/status", &a));
    CHECK_OK(stat(path, &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    CHECK_OK(stat("/proc/self/status", &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    CHECK_OK(stat("/proc", &proc));
    CHECK_OK(stat("/", &root));
    CHECK(proc.st_dev != root.st_dev);
    CHECK_EQ(a.st_dev, proc.st_dev);
    CHECK_EQ(proc.st_mode, S_IFDIR | 0555);
    CHECK_EQ(a.st_mode, S_IFREG | 0444);
    CHECK_OK(lstat("/proc/self", &self));
    CHECK_EQ(self.st_mode, S_IFLNK | 0777);
}

/* statfs(2): procfs is "PROC_SUPER_MAGIC 0x9fa0". */
TEST(statfs_says_procfs) {
    struct statfs sf;
    CHECK_OK(statfs("/proc", &sf));
    CHECK_EQ(sf.f_type, 0x9fa0);
}

/* Nothing in /proc/PID can be written or made. */
TEST(proc_files_cannot_be_changed) {
    int fd = open("/proc/self/status", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        /* As root, Linux opens it but refuses the write. */
        CHECK_EQ(write(fd, "x", 1), -1);
        close(fd);
    }
    CHECK_EQ(mkdir("/proc/self/new", 0755), -1);
    CHECK_EQ(unlink("/proc/self/status"), -1);
    CHECK_EQ(open("/proc/self/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644), -1);
}

/* proc_cpuinfo(5): one stanza per processor, starting with "processor". */
TEST(cpuinfo_names_processors) {
    CHECK(slurp("/proc/cpuinfo", big, sizeof big) > 0);
    CHECK(strncmp(big, "processor", 9) == 0);
}

/* proc_meminfo(5): "MemTotal" first, then "MemFree", in kB. */
TEST(meminfo_starts_with_memtotal) {
    unsigned long total, free_kb;
    CHECK(slurp("/proc/meminfo", big, sizeof big) > 0);
    CHECK_EQ(sscanf(big, "MemTotal: %lu kB\nMemFree: %lu kB\n", &total, &free_kb), 2);
    CHECK(total > 0);
    CHECK(free_kb <= total);
    CHECK(strstr(big, "\nMemAvailable:") != NULL);
}

/* proc_uptime(5): "the uptime of the system (including time spent in suspend) and the amount
 * of time spent in the idle process", in seconds. */
TEST(uptime_has_two_numbers) {
    double up, idle;
    CHECK(slurp("/proc/uptime", big, sizeof big) > 0);
    CHECK_EQ(sscanf(big, "%lf %lf", &up, &idle), 2);
    CHECK(up >= 0);
}

/* proc_loadavg(5): three load averages, runnable/total entities, the last pid. */
TEST(loadavg_layout) {
    double a, b, c;
    int running, total, last;
    CHECK(slurp("/proc/loadavg", big, sizeof big) > 0);
    CHECK_EQ(sscanf(big, "%lf %lf %lf %d/%d %d", &a, &b, &c, &running, &total, &last), 6);
    CHECK(running >= 1 && total >= running);
}

/* proc_stat(5): "cpu" totals first; "btime" is the boot time in seconds since the Epoch. */
TEST(stat_has_cpu_and_btime) {
    CHECK(slurp("/proc/stat", big, sizeof big) > 0);
    CHECK(strncmp(big, "cpu  ", 5) == 0);
    char *btime = strstr(big, "\nbtime ");
    CHECK(btime != NULL);
    CHECK(atol(btime + 7) > 1000000000L);
    CHECK(strstr(big, "\nprocesses ") != NULL);
}

/* proc_filesystems(5): "nodev" marks file systems that need no block device. */
TEST(filesystems_lists_proc) {
    CHECK(slurp("/proc/filesystems", big, sizeof big) > 0);
    CHECK(strstr(big, "nodev\tproc\n") != NULL);
    CHECK(strstr(big, "nodev\ttmpfs\n") != NULL);
}

/* proc_pid_mounts(5): the mounts in fstab's format; /proc/mounts links to self/mounts. */
TEST(mounts_show_root_and_proc) {
    char link[32];
    long n = kreadlink("/proc/mounts", link, sizeof link - 1);
    CHECK_EQ(n, 11);
    CHECK(memcmp(link, "self/mounts", 11) == 0);
    CHECK(slurp("/proc/self/mounts", big, sizeof big) > 0);
    int root = 0, proc = 0;
    for (char *line = strtok(big, "\n"); line; line = strtok(NULL, "\n")) {
        char src[256], dir[256], type[64];
        if (sscanf(line, "%255s %255s %63s", src, dir, type) != 3) {
            harness_fail(__FILE__, __LINE__, "bad mounts line: %s", line);
            return;
        }
        root |= !strcmp(dir, "/");
        proc |= !strcmp(dir, "/proc") && !strcmp(type, "proc");
    }
    CHECK(root);
    CHECK(proc);
}

/* proc_pid_mountinfo(5): "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root ...". */
TEST(mountinfo_shows_proc) {
    CHECK(slurp("/proc/self/mountinfo", big, sizeof big) > 0);
    int found = 0;
    for (char *line = strtok(big, "\n"); line; line = strtok(NULL, "\n")) {
        int id, parent, major, minor;
        char root[64], dir[256];
        CHECK_EQ(sscanf(line, "%d %d %d:%d %63s %255s", &id, &parent, &major, &minor, root, dir),
                 6);
        if (!strcmp(dir, "/proc")) found = strstr(line, " - proc ") != NULL;
    }
    CHECK(found);
}

/* /proc/sys/kernel/ostype and osrelease are uname's sysname and release. */
TEST(sys_kernel_names_match_uname) {
    char buf[128];
    struct utsname u;
    CHECK_OK(uname(&u));
    CHECK(slurp("/proc/sys/kernel/ostype", buf, sizeof buf) > 0);
    CHECK(strncmp(buf, u.sysname, strlen(u.sysname)) == 0);
    CHECK_EQ(buf[strlen(u.sysname)], '\n');
    CHECK(slurp("/proc/sys/kernel/osrelease", buf, sizeof buf) > 0);
    CHECK(strncmp(buf, u.release, strlen(u.release)) == 0);
    CHECK(slurp("/proc/sys/kernel/random/boot_id", buf, sizeof buf) == 37);
    CHECK_EQ(buf[8], '-');
}

/* ---- /sys ---------------------------------------------------------------------------- */

/* sysfs: devices/system/cpu/online is a CPU list such as "0-3" or "0,2". */
TEST(sys_cpu_online_is_a_cpu_list) {
    char buf[256];
    long n = slurp("/sys/devices/system/cpu/online", buf, sizeof buf);
    CHECK(n >= 2);
    CHECK_EQ(buf[n - 1], '\n');
    for (long i = 0; i < n - 1; i++) CHECK(strchr("0123456789,-", buf[i]) != NULL);
}
