/* capabilities(7): capget(2)/capset(2), the bounding and ambient sets and securebits
 * (prctl(2)), and how the set*id calls and execve(2) change the sets; the checks that
 * consult CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID,
 * CAP_KILL, CAP_SETUID, CAP_MKNOD and CAP_SYS_RESOURCE; /proc/self/status's Cap lines.
 *
 * The cases that need privilege run only as root (they pass trivially otherwise). They
 * derive what they expect from the sets they start with, which may lack some capabilities. */
#include "scratch.h"

#include <linux/capability.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define BIT(cap) (1ULL << (cap))

struct caps {
    uint64_t eff, prm, inh;
};

static long pr(int op, unsigned long a2, unsigned long a3) {
    return syscall(SYS_prctl, op, a2, a3, 0UL, 0UL);
}

static int get_caps(struct caps *c) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) return -1;
    c->eff = d[0].effective | (uint64_t)d[1].effective << 32;
    c->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    c->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
    return 0;
}

static long set_caps(const struct caps *c) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)c->eff, (uint32_t)c->prm, (uint32_t)c->inh},
        {(uint32_t)(c->eff >> 32), (uint32_t)(c->prm >> 32), (uint32_t)(c->inh >> 32)},
    };
    return syscall(SYS_capset, &h, d);
}

/* Takes `mask` out of the effective set (it stays permitted); 0 or -1. */
static long lower_effective(uint64_t mask) {
    struct caps c;
    if (get_caps(&c) != 0) return -1;
    c.eff &= ~mask;
    return set_caps(&c);
}

/* Makes every permitted capability effective again. */
static long raise_effective(void) {
    struct caps c;
    if (get_caps(&c) != 0) return -1;
    c.eff = c.prm;
    return set_caps(&c);
}

/* The bounding set, read a capability at a time until PR_CAPBSET_READ says EINVAL. */
static uint64_t bounding(void) {
    uint64_t set = 0;
    for (int cap = 0; cap < 64; cap++) {
        long r = pr(PR_CAPBSET_READ, cap, 0);
        if (r < 0) break;
        if (r) set |= BIT(cap);
    }
    return set;
}

static uint64_t ambient(void) {
    uint64_t set = 0;
    for (int cap = 0; cap < 64; cap++) {
        long r = syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0UL, 0UL);
        if (r < 0) break;
        if (r) set |= BIT(cap);
    }
    return set;
}

/* Whether all of `mask` is effective now: the cases that need a capability skip without it. */
static int have(uint64_t mask) {
    struct caps c;
    return geteuid() == 0 && get_caps(&c) == 0 && (c.eff & mask) == mask;
}

/* ---- execve: the program runs itself again and reports the sets it starts with. ---- */

struct report {
    uint64_t eff, prm, inh, bnd, amb;
    long keepcaps, nnp;
    uint32_t uid, euid;
};

#define CHILD_ENV "CONF_CAPS_CHILD"

/* In the exec'd program: report on fd 3 and exit, before any case runs. */
__attribute__((constructor)) static void report_if_child(void) {
    if (!getenv(CHILD_ENV)) return;
    struct caps c;
    struct report r = {0};
    if (get_caps(&c) != 0) _exit(90);
    r.eff = c.eff, r.prm = c.prm, r.inh = c.inh;
    r.bnd = bounding();
    r.amb = ambient();
    r.keepcaps = pr(PR_GET_KEEPCAPS, 0, 0);
    r.nnp = pr(PR_GET_NO_NEW_PRIVS, 0, 0);
    r.uid = getuid(), r.euid = geteuid();
    _exit(write(3, &r, sizeof r) == sizeof r ? 0 : 91);
}

/* Forks; the child runs `prepare` (nonzero: it failed) and execs this program, whose
 * report lands in *r. Returns 0, or what went wrong (the child's exit status, or -1). */
static int exec_report(int (*prepare)(void), struct report *r) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    int fds[2];
    if (n <= 0 || pipe(fds) != 0) return -1;
    self[n] = 0;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fds[0]);
        int bad = prepare();
        if (bad) _exit(bad);
        if (dup2(fds[1], 3) != 3) _exit(80);
        char *argv[] = {self, NULL}, *envp[] = {CHILD_ENV "=1", NULL};
        execve(self, argv, envp);
        _exit(81);
    }
    close(fds[1]);
    n = read(fds[0], r, sizeof *r);
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    if (!WIFEXITED(status)) return -1;
    if (WEXITSTATUS(status)) return WEXITSTATUS(status);
    return n == sizeof *r ? 0 : -1;
}

/* ---- capget(2), capset(2) ---- */

/* Root (as init or from a root execve) has every capability of its bounding set permitted
 * and effective, and none inheritable. */
TEST(capget_self_as_root) {
    struct caps c;
    CHECK_OK(get_caps(&c));
    if (geteuid() != 0 || getuid() != 0) return;
    CHECK_EQ(c.eff, c.prm);
    CHECK_EQ(c.prm & ~bounding(), 0);
    CHECK(c.prm & BIT(CAP_CHOWN));
    CHECK(c.prm & BIT(CAP_DAC_OVERRIDE));
    CHECK(c.prm & BIT(CAP_SETUID));
    /* Nothing past CAP_LAST_CAP. */
    CHECK_EQ(c.prm >> (CAP_LAST_CAP + 1), 0);
}

/* The caller's own pid (or tid) names it as 0 does; another pid must exist (ESRCH); a
 * negative one is EINVAL. */
TEST(capget_by_pid) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, getpid()};
    struct __user_cap_data_struct d[2];
    struct caps c;
    CHECK_OK(get_caps(&c));
    CHECK_EQ(syscall(SYS_capget, &h, d), 0);
    CHECK_EQ(d[0].effective | (uint64_t)d[1].effective << 32, c.eff);
    CHECK_EQ(d[0].permitted | (uint64_t)d[1].permitted << 32, c.prm);
    h.pid = -1;
    CHECK_ERR(syscall(SYS_capget, &h, d), EINVAL);
    h.pid = 0x3ffffff0;
    CHECK_ERR(syscall(SYS_capget, &h, d), ESRCH);
}

/* An unknown version is EINVAL, and the kernel writes its preferred version into the
 * header; with a null data pointer capget only does that, and returns 0. */
TEST(bad_version_is_einval_with_the_version_written_back) {
    struct __user_cap_header_struct h = {0x12345678, 0};
    struct __user_cap_data_struct d[2];
    CHECK_ERR(syscall(SYS_capget, &h, d), EINVAL);
    CHECK_EQ(h.version, _LINUX_CAPABILITY_VERSION_3);
    h.version = 0x12345678;
    CHECK_ERR(syscall(SYS_capset, &h, d), EINVAL);
    CHECK_EQ(h.version, _LINUX_CAPABILITY_VERSION_3);
    h.version = 0x12345678;
    CHECK_EQ(syscall(SYS_capget, &h, NULL), 0);
    CHECK_EQ(h.version, _LINUX_CAPABILITY_VERSION_3);
    CHECK_EQ(syscall(SYS_capget, &h, NULL), 0);
}

/* Version 1 moves one 32-bit word per set; versions 2 and 3 two. */
TEST(version_1_moves_the_low_words) {
    struct caps c;
    CHECK_OK(get_caps(&c));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_1, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0xaa, sizeof d);
    CHECK_EQ(syscall(SYS_capget, &h, d), 0);
    CHECK_EQ(d[0].permitted, (uint32_t)c.prm);
    CHECK_EQ(d[0].effective, (uint32_t)c.eff);
    CHECK_EQ(d[1].permitted, 0xaaaaaaaa);
    h.version = _LINUX_CAPABILITY_VERSION_2;
    CHECK_EQ(syscall(SYS_capget, &h, d), 0);
    CHECK_EQ(d[1].permitted, (uint32_t)(c.prm >> 32));
}

TEST(bad_pointers_are_efault) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    CHECK_ERR(syscall(SYS_capget, (void *)8, d), EFAULT);
    CHECK_ERR(syscall(SYS_capget, &h, (void *)8), EFAULT);
    CHECK_ERR(syscall(SYS_capset, (void *)8, d), EFAULT);
    CHECK_ERR(syscall(SYS_capset, &h, (void *)8), EFAULT);
}

/* capset(2) changes only the caller: any other pid is EPERM, whether it exists or not. */
TEST(capset_of_another_process_is_eperm) {
    struct caps c;
    CHECK_OK(get_caps(&c));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0x3ffffff0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)c.eff, (uint32_t)c.prm, (uint32_t)c.inh},
        {(uint32_t)(c.eff >> 32), (uint32_t)(c.prm >> 32), (uint32_t)(c.inh >> 32)},
    };
    CHECK_ERR(syscall(SYS_capset, &h, d), EPERM);
    h.pid = getpid();
    CHECK_EQ(syscall(SYS_capset, &h, d), 0);
}

/* "EPERM: The caller attempted to add a capability to its permitted set that is not
 * there; or to make effective a capability that is not permitted." */
TEST(capset_subset_rules) {
    if (!have(BIT(CAP_KILL))) return;
    struct caps c, now;
    CHECK_OK(get_caps(&c));
    struct caps less = {c.eff & ~BIT(CAP_KILL), c.prm & ~BIT(CAP_KILL), 0};
    CHECK_EQ(set_caps(&less), 0);
    CHECK_OK(get_caps(&now));
    CHECK_EQ(now.prm, less.prm);
    CHECK_EQ(now.eff, less.eff);
    /* Permitted cannot grow back; effective cannot reach past permitted. */
    CHECK_ERR(set_caps(&c), EPERM);
    struct caps eff = {less.eff | BIT(CAP_KILL), less.prm, 0};
    CHECK_ERR(set_caps(&eff), EPERM);
}

/* Without CAP_SETPCAP the inheritable set may take only permitted capabilities. */
TEST(capset_inheritable_needs_permitted_without_setpcap) {
    if (!have(BIT(CAP_SETPCAP) | BIT(CAP_KILL))) return;
    struct caps c;
    CHECK_OK(get_caps(&c));
    uint64_t prm = c.prm & ~BIT(CAP_SETPCAP) & ~BIT(CAP_KILL);
    struct caps less = {prm, prm, 0};
    CHECK_EQ(set_caps(&less), 0);
    struct caps inh = {prm, prm, BIT(CAP_KILL)};
    CHECK_ERR(set_caps(&inh), EPERM);
    inh.inh = BIT(CAP_CHOWN) & prm;
    CHECK_EQ(set_caps(&inh), 0);
}

/* ---- The checks that consult capabilities ---- */

/* chown(2): "Only a privileged process (CAP_CHOWN) may change the owner of a file." A
 * capability out of the effective set is not used, and comes back when made effective. */
TEST(chown_needs_cap_chown) {
    if (!have(BIT(CAP_CHOWN)) || !scratch()) return;
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(lower_effective(BIT(CAP_CHOWN)));
    CHECK_ERR(chown(P("f"), 1000, -1), EPERM);
    /* The owner may still change the group to one of its own. */
    CHECK_OK(chown(P("f"), -1, getegid()));
    CHECK_OK(raise_effective());
    CHECK_OK(chown(P("f"), 1000, -1));
    struct stat st;
    CHECK_OK(stat(P("f"), &st));
    CHECK_EQ(st.st_uid, 1000);
    /* Someone else's file: even naming its present owner or group needs CAP_CHOWN. */
    CHECK_OK(lower_effective(BIT(CAP_CHOWN)));
    CHECK_ERR(chown(P("f"), 1000, -1), EPERM);
    CHECK_ERR(chown(P("f"), -1, st.st_gid), EPERM);
    CHECK_OK(chown(P("f"), -1, -1));
    CHECK_OK(raise_effective());
}

/* Without CAP_DAC_OVERRIDE a mode of 0 keeps even root out for writing; reading is still
 * allowed by CAP_DAC_READ_SEARCH until that goes too. */
TEST(dac_override_and_read_search) {
    uint64_t dac = BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH);
    if (!have(dac) || !scratch()) return;
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(chmod(P("f"), 0));
    CHECK_OK(lower_effective(BIT(CAP_DAC_OVERRIDE)));
    CHECK_ERR(open(P("f"), O_WRONLY), EACCES);
    int fd = open(P("f"), O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(lower_effective(dac));
    CHECK_ERR(open(P("f"), O_RDONLY), EACCES);
    CHECK_OK(raise_effective());
    fd = open(P("f"), O_RDWR);
    CHECK(fd >= 0);
    close(fd);
}

/* access(2) checks with the real uid, and for a real uid of 0 with every permitted
 * capability; AT_EACCESS checks with the effective set. */
TEST(access_uses_the_permitted_set_of_real_root) {
    uint64_t dac = BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH);
    if (!have(dac) || getuid() != 0 || !scratch()) return;
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(chmod(P("f"), 0));
    CHECK_OK(lower_effective(dac));
    CHECK_OK(access(P("f"), R_OK | W_OK));
    CHECK_ERR(faccessat(AT_FDCWD, P("f"), R_OK, AT_EACCESS), EACCES);
    CHECK_OK(raise_effective());
}

/* chmod(2) needs the owner or CAP_FOWNER; a set-group-ID bit for a group the caller is not
 * in is cleared unless CAP_FSETID. */
TEST(chmod_needs_cap_fowner_and_keeps_setgid_with_cap_fsetid) {
    if (!have(BIT(CAP_FOWNER) | BIT(CAP_FSETID) | BIT(CAP_CHOWN)) || getegid() == 4321 ||
        !scratch())
        return;
    struct stat st;
    CHECK_EQ(put_file(P("f"), "x"), 1);
    CHECK_OK(chown(P("f"), 1000, 4321));
    CHECK_OK(lower_effective(BIT(CAP_FOWNER)));
    CHECK_ERR(chmod(P("f"), 0600), EPERM);
    CHECK_OK(raise_effective());
    CHECK_OK(chmod(P("f"), 02755));
    CHECK_OK(stat(P("f"), &st));
    CHECK_EQ(st.st_mode & 07777, 02755);
    CHECK_OK(lower_effective(BIT(CAP_FSETID)));
    CHECK_OK(chmod(P("f"), 02750));
    CHECK_OK(stat(P("f"), &st));
    CHECK_EQ(st.st_mode & 07777, 0750);
    CHECK_OK(raise_effective());
}

/* mknod(2) of a device needs CAP_MKNOD. */
TEST(mknod_of_a_device_needs_cap_mknod) {
    if (!have(BIT(CAP_MKNOD)) || !scratch()) return;
    CHECK_OK(lower_effective(BIT(CAP_MKNOD)));
    CHECK_ERR(mknod(P("null"), S_IFCHR | 0600, makedev(1, 3)), EPERM);
    /* A FIFO needs no privilege. */
    CHECK_OK(mknod(P("fifo"), S_IFIFO | 0600, 0));
    CHECK_OK(raise_effective());
}

/* Raising a hard resource limit needs CAP_SYS_RESOURCE. */
TEST(raising_a_hard_limit_needs_cap_sys_resource) {
    struct rlimit lim, low;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &lim));
    CHECK_OK(lower_effective(BIT(CAP_SYS_RESOURCE)));
    low.rlim_cur = low.rlim_max = lim.rlim_cur > 64 ? 64 : lim.rlim_cur;
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &low));
    low.rlim_max += 1;
    CHECK_ERR(setrlimit(RLIMIT_NOFILE, &low), EPERM);
}

/* setuid(2) to an id that is neither the real nor the saved uid needs CAP_SETUID. */
TEST(setuid_needs_cap_setuid) {
    if (!have(BIT(CAP_SETUID))) return;
    CHECK_OK(lower_effective(BIT(CAP_SETUID)));
    CHECK_ERR(setuid(1000), EPERM);
    CHECK_ERR(setresuid(-1, 1000, -1), EPERM);
    CHECK_OK(raise_effective());
    CHECK_OK(setresuid(-1, 1000, -1));
    CHECK_EQ(geteuid(), 1000);
}

/* kill(2): signalling a process of another user needs CAP_KILL, the existence probe
 * included; SIGCONT within the session needs nothing. */
TEST(kill_of_another_user_needs_cap_kill) {
    if (!have(BIT(CAP_KILL) | BIT(CAP_SETUID))) return;
    int ready[2];
    CHECK_OK(pipe(ready));
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        char c = 1;
        if (setresuid(1000, 1000, 1000) != 0) _exit(1);
        if (write(ready[1], &c, 1) != 1) _exit(1);
        for (;;) pause();
    }
    char c = 0;
    CHECK_EQ(read(ready[0], &c, 1), 1);
    long perm = lower_effective(BIT(CAP_KILL));
    long probe = kill(child, 0), probe_errno = errno;
    long term = kill(child, SIGTERM), term_errno = errno;
    long cont = kill(child, SIGCONT);
    raise_effective();
    CHECK_OK(kill(child, SIGKILL));
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EQ(perm, 0);
    CHECK_EQ(probe, -1);
    CHECK_EQ(probe_errno, EPERM);
    CHECK_EQ(term, -1);
    CHECK_EQ(term_errno, EPERM);
    CHECK_EQ(cont, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* ---- prctl(2): the bounding and ambient sets, keep-caps, securebits ---- */

/* "PR_CAPBSET_DROP: If the calling thread has the CAP_SETPCAP capability within its user
 * namespace, then drop the capability specified by arg2 from the calling thread's
 * capability bounding set." The effective and permitted sets keep it. */
TEST(capbset_drop_then_read) {
    if (!have(BIT(CAP_SETPCAP) | BIT(CAP_NET_RAW))) return;
    CHECK_EQ(pr(PR_CAPBSET_READ, CAP_NET_RAW, 0), 1);
    CHECK_EQ(pr(PR_CAPBSET_DROP, CAP_NET_RAW, 0), 0);
    CHECK_EQ(pr(PR_CAPBSET_READ, CAP_NET_RAW, 0), 0);
    CHECK_EQ(pr(PR_CAPBSET_DROP, CAP_NET_RAW, 0), 0);
    struct caps c;
    CHECK_OK(get_caps(&c));
    CHECK(c.eff & BIT(CAP_NET_RAW));
    CHECK_ERR(pr(PR_CAPBSET_READ, CAP_LAST_CAP + 1, 0), EINVAL);
    CHECK_ERR(pr(PR_CAPBSET_READ, -1UL, 0), EINVAL);
    CHECK_ERR(pr(PR_CAPBSET_DROP, CAP_LAST_CAP + 1, 0), EINVAL);
    /* Without CAP_SETPCAP nothing can be dropped. */
    CHECK_OK(lower_effective(BIT(CAP_SETPCAP)));
    CHECK_ERR(pr(PR_CAPBSET_DROP, CAP_CHOWN, 0), EPERM);
}

/* "PR_CAP_AMBIENT_RAISE: The capability specified in arg3 is added to the ambient set.
 * The specified capability must already be present in both the permitted and the
 * inheritable sets of the process." */
TEST(ambient_raise_needs_inheritable) {
    if (!have(BIT(CAP_NET_RAW))) return;
    CHECK_ERR(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0),
              EPERM);
    struct caps c;
    CHECK_OK(get_caps(&c));
    c.inh = BIT(CAP_NET_RAW);
    CHECK_OK(set_caps(&c));
    CHECK_EQ(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0), 0);
    CHECK_EQ(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0), 1);
    CHECK_EQ(ambient(), BIT(CAP_NET_RAW));
    /* Taking it out of the inheritable set takes it out of the ambient set. */
    c.inh = 0;
    CHECK_OK(set_caps(&c));
    CHECK_EQ(ambient(), 0);
    c.inh = BIT(CAP_NET_RAW);
    CHECK_OK(set_caps(&c));
    CHECK_EQ(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0), 0);
    CHECK_EQ(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_RAW, 0, 0), 0);
    CHECK_EQ(ambient(), 0);
    CHECK_EQ(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0), 0);
    CHECK_EQ(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), 0);
    CHECK_EQ(ambient(), 0);
    CHECK_ERR(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0), EINVAL);
    CHECK_ERR(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_LAST_CAP + 1, 0, 0),
              EINVAL);
    CHECK_ERR(syscall(SYS_prctl, PR_CAP_AMBIENT, 99, CAP_NET_RAW, 0, 0), EINVAL);
}

TEST(keepcaps_and_securebits) {
    CHECK_EQ(pr(PR_GET_KEEPCAPS, 0, 0), 0);
    CHECK_ERR(pr(PR_SET_KEEPCAPS, 2, 0), EINVAL);
    CHECK_EQ(pr(PR_SET_KEEPCAPS, 1, 0), 0);
    CHECK_EQ(pr(PR_GET_KEEPCAPS, 0, 0), 1);
    CHECK_EQ(pr(PR_GET_SECUREBITS, 0, 0), SECBIT_KEEP_CAPS);
    if (!have(BIT(CAP_SETPCAP))) return;
    /* A locked bit cannot change, and a lock cannot be released. */
    CHECK_EQ(pr(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0), 0);
    CHECK_ERR(pr(PR_SET_KEEPCAPS, 0, 0), EPERM);
    CHECK_ERR(pr(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED, 0), EPERM);
    CHECK_ERR(pr(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0), EPERM);
    CHECK_EQ(pr(PR_GET_KEEPCAPS, 0, 0), 1);
    CHECK_OK(lower_effective(BIT(CAP_SETPCAP)));
    CHECK_ERR(pr(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0), EPERM);
}

/* ---- User id changes (capabilities(7), "Effect of user ID changes on capabilities") ---- */

/* "If one or more of the real, effective, or saved set user IDs was previously 0, and as
 * a result of the UID changes all of these IDs have a nonzero value, then all capabilities
 * are cleared from the permitted, effective, and ambient capability sets." */
TEST(setuid_from_root_clears_capabilities) {
    if (!have(BIT(CAP_SETUID)) || getuid() != 0) return;
    uint64_t bnd = bounding();
    CHECK_OK(setuid(1000));
    struct caps c;
    CHECK_OK(get_caps(&c));
    CHECK_EQ(c.prm, 0);
    CHECK_EQ(c.eff, 0);
    CHECK_EQ(bounding(), bnd);
    CHECK_ERR(setuid(0), EPERM);
}

/* "SECBIT_KEEP_CAPS: Setting this flag allows a thread that has one or more 0 UIDs to
 * retain capabilities in its permitted set when it switches all of its UIDs to nonzero
 * values." The effective set is still cleared, and the ambient set too. */
TEST(setuid_with_keepcaps_keeps_permitted) {
    if (!have(BIT(CAP_SETUID) | BIT(CAP_NET_RAW)) || getuid() != 0) return;
    struct caps before, after;
    CHECK_OK(get_caps(&before));
    before.inh = BIT(CAP_NET_RAW);
    CHECK_OK(set_caps(&before));
    CHECK_OK(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0));
    CHECK_EQ(pr(PR_SET_KEEPCAPS, 1, 0), 0);
    CHECK_OK(setresuid(1000, 1000, 1000));
    CHECK_OK(get_caps(&after));
    CHECK_EQ(after.prm, before.prm);
    CHECK_EQ(after.eff, 0);
    CHECK_EQ(ambient(), 0);
    /* What is permitted can be made effective again. */
    after.eff = BIT(CAP_NET_RAW);
    CHECK_OK(set_caps(&after));
}

/* "If the effective user ID is changed from 0 to nonzero, then all capabilities are
 * cleared from the effective set. If the effective user ID is changed from nonzero to 0,
 * then the permitted set is copied to the effective set." */
TEST(effective_uid_changes_move_the_effective_set) {
    if (!have(BIT(CAP_SETUID)) || getuid() != 0) return;
    struct caps before, c;
    CHECK_OK(get_caps(&before));
    CHECK_OK(seteuid(1000));
    CHECK_OK(get_caps(&c));
    CHECK_EQ(c.eff, 0);
    CHECK_EQ(c.prm, before.prm);
    CHECK_OK(seteuid(0));
    CHECK_OK(get_caps(&c));
    CHECK_EQ(c.eff, before.prm);
}

/* "If the filesystem user ID is changed from 0 to nonzero, then the following capabilities
 * are cleared from the effective set: CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
 * CAP_FOWNER, CAP_FSETID, CAP_LINUX_IMMUTABLE, CAP_MAC_OVERRIDE, and CAP_MKNOD". */
TEST(setfsuid_moves_the_file_system_capabilities) {
    if (!have(BIT(CAP_CHOWN) | BIT(CAP_KILL) | BIT(CAP_MKNOD)) || getuid() != 0) return;
    struct caps before, c;
    CHECK_OK(get_caps(&before));
    CHECK_EQ(syscall(SYS_setfsuid, 1000), 0);
    CHECK_EQ(syscall(SYS_setfsuid, -1), 1000);
    CHECK_OK(get_caps(&c));
    CHECK_EQ(c.eff & (BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_MKNOD)), 0);
    CHECK(c.eff & BIT(CAP_KILL));
    CHECK_EQ(c.prm, before.prm);
    CHECK_EQ(syscall(SYS_setfsuid, 0), 1000);
    CHECK_OK(get_caps(&c));
    CHECK_EQ(c.eff, before.eff);
}

/* ---- execve(2) ---- */

static int drop_net_raw_from_bounding(void) {
    return pr(PR_CAPBSET_DROP, CAP_NET_RAW, 0) == 0 ? 0 : 10;
}

/* Root's program gets permitted = inheritable | bounding, all effective: a capability
 * dropped from the bounding set is gone after execve, and the bounding set stays. */
TEST(execve_as_root_after_a_bounding_drop) {
    if (!have(BIT(CAP_SETPCAP) | BIT(CAP_NET_RAW)) || getuid() != 0) return;
    struct caps c;
    CHECK_OK(get_caps(&c));
    uint64_t bnd = bounding() & ~BIT(CAP_NET_RAW);
    struct report r;
    CHECK_EQ(exec_report(drop_net_raw_from_bounding, &r), 0);
    CHECK_EQ(r.bnd, bnd);
    CHECK_EQ(r.prm, bnd | c.inh);
    CHECK_EQ(r.eff, r.prm);
    CHECK_EQ(r.prm & BIT(CAP_NET_RAW), 0);
}

static int keep_caps(void) {
    return pr(PR_SET_KEEPCAPS, 1, 0) == 0 ? 0 : 10;
}

/* "The SECBIT_KEEP_CAPS securebits flag is cleared by execve(2)." */
TEST(execve_clears_keepcaps) {
    struct report r;
    CHECK_EQ(exec_report(keep_caps, &r), 0);
    CHECK_EQ(r.keepcaps, 0);
}

static int become_1000(void) {
    return setresuid(1000, 1000, 1000) == 0 ? 0 : 10;
}

/* A program run by a user other than root gets no capabilities... */
TEST(execve_as_another_user_gets_nothing) {
    if (!have(BIT(CAP_SETUID)) || getuid() != 0) return;
    struct report r;
    CHECK_EQ(exec_report(become_1000, &r), 0);
    CHECK_EQ(r.uid, 1000);
    CHECK_EQ(r.prm, 0);
    CHECK_EQ(r.eff, 0);
}

static int become_1000_with_ambient_net_raw(void) {
    struct caps c;
    if (get_caps(&c) != 0) return 10;
    c.inh = BIT(CAP_NET_RAW);
    if (set_caps(&c) != 0) return 11;
    if (pr(PR_SET_KEEPCAPS, 1, 0) != 0) return 12;
    if (setresuid(1000, 1000, 1000) != 0) return 13;
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0)
        return 14;
    return 0;
}

/* ...but its ambient set, which becomes permitted and effective: "P'(ambient) = P(ambient);
 * P'(permitted) = ... | P'(ambient); P'(effective) = F(effective) ? P'(permitted) :
 * P'(ambient)". */
TEST(execve_as_another_user_keeps_ambient_capabilities) {
    if (!have(BIT(CAP_SETUID) | BIT(CAP_NET_RAW)) || getuid() != 0) return;
    struct report r;
    CHECK_EQ(exec_report(become_1000_with_ambient_net_raw, &r), 0);
    CHECK_EQ(r.euid, 1000);
    CHECK_EQ(r.amb, BIT(CAP_NET_RAW));
    CHECK_EQ(r.prm, BIT(CAP_NET_RAW));
    CHECK_EQ(r.eff, BIT(CAP_NET_RAW));
    CHECK_EQ(r.inh, BIT(CAP_NET_RAW));
}

static int drop_chown_with_no_new_privs(void) {
    struct caps c;
    if (get_caps(&c) != 0) return 10;
    c.eff &= ~BIT(CAP_CHOWN);
    c.prm &= ~BIT(CAP_CHOWN);
    if (set_caps(&c) != 0) return 11;
    if (pr(PR_SET_NO_NEW_PRIVS, 1, 0) != 0) return 12;
    return 0;
}

/* With no_new_privs "execve(2) promises not to grant privileges": root's program gets no
 * capability its caller had dropped from its permitted set. */
TEST(execve_with_no_new_privs_grants_nothing_new) {
    if (!have(BIT(CAP_CHOWN)) || getuid() != 0) return;
    struct report r;
    CHECK_EQ(exec_report(drop_chown_with_no_new_privs, &r), 0);
    CHECK_EQ(r.nnp, 1);
    CHECK(r.bnd & BIT(CAP_CHOWN));
    CHECK_EQ(r.prm & BIT(CAP_CHOWN), 0);
    CHECK(r.prm & BIT(CAP_KILL));
    CHECK_EQ(r.eff, r.prm);
}

/* ---- /proc/self/status ---- */

/* The value of the /proc/self/status field `name` (hexadecimal); -1 if it is missing. */
static int status_field(const char *name, uint64_t *value) {
    static char buf[8192];
    if (get_file("/proc/self/status", buf, sizeof buf) <= 0) return -1;
    char key[32];
    snprintf(key, sizeof key, "\n%s:\t", name);
    char *at = strstr(buf, key);
    if (!at) return -1;
    *value = strtoull(at + strlen(key), NULL, 16);
    return 0;
}

static int status_matches(void) {
    struct caps c;
    uint64_t inh, prm, eff, bnd, amb, nnp;
    if (get_caps(&c) != 0) return 0;
    if (status_field("CapInh", &inh) || status_field("CapPrm", &prm) ||
        status_field("CapEff", &eff) || status_field("CapBnd", &bnd) ||
        status_field("CapAmb", &amb) || status_field("NoNewPrivs", &nnp))
        return 0;
    return inh == c.inh && prm == c.prm && eff == c.eff && bnd == bounding() &&
           amb == ambient() && (long)nnp == pr(PR_GET_NO_NEW_PRIVS, 0, 0);
}

TEST(proc_status_cap_lines_match_capget) {
    CHECK(status_matches());
    if (!have(BIT(CAP_SETPCAP) | BIT(CAP_NET_RAW) | BIT(CAP_CHOWN))) return;
    struct caps c;
    CHECK_OK(get_caps(&c));
    c.eff &= ~BIT(CAP_CHOWN);
    c.inh = BIT(CAP_NET_RAW);
    CHECK_OK(set_caps(&c));
    CHECK_OK(syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0));
    CHECK_OK(pr(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0));
    CHECK_OK(pr(PR_SET_NO_NEW_PRIVS, 1, 0));
    CHECK(status_matches());
    uint64_t amb;
    CHECK_OK(status_field("CapAmb", &amb));
    CHECK_EQ(amb, BIT(CAP_NET_RAW));
}
