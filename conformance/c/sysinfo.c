/* sysinfo(2): overall system statistics, which must agree with what /proc says. */
#include "harness.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

/* The first number of a /proc file (or of the line that starts with `key`), or -1. */
static double proc_number(const char *path, const char *key) {
    static char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *at = buf;
    if (key) {
        at = strstr(buf, key);
        if (!at) return -1;
        at += strlen(key);
    }
    return strtod(at, NULL);
}

TEST(fills_the_structure) {
    struct sysinfo si;
    memset(&si, 0xa5, sizeof si);
    CHECK_EQ(sysinfo(&si), 0);
    CHECK(si.mem_unit >= 1);
    CHECK(si.totalram > 0);
    CHECK(si.freeram <= si.totalram);
    CHECK(si.freeswap <= si.totalswap);
    CHECK(si.procs >= 1);
    CHECK(si.uptime >= 0);
}

/* "uptime: Seconds since boot": the same clock as /proc/uptime (sysinfo rounds up). */
TEST(uptime_agrees_with_proc_uptime) {
    struct sysinfo si;
    double before = proc_number("/proc/uptime", NULL);
    CHECK_EQ(sysinfo(&si), 0);
    double after = proc_number("/proc/uptime", NULL);
    CHECK(before >= 0);
    CHECK(si.uptime >= (long)before);
    CHECK(si.uptime <= (long)after + 1);
}

/* totalram (in mem_unit units) is /proc/meminfo's MemTotal (in kB). */
TEST(totalram_agrees_with_meminfo) {
    struct sysinfo si;
    CHECK_EQ(sysinfo(&si), 0);
    double kb = proc_number("/proc/meminfo", "MemTotal:");
    CHECK(kb > 0);
    double bytes = (double)si.totalram * si.mem_unit;
    CHECK(bytes >= kb * 1024 - 4096);
    CHECK(bytes <= kb * 1024 + 4096);
}

TEST(bad_pointer_is_efault) {
    CHECK_ERR(syscall(SYS_sysinfo, (void *)1), EFAULT);
    CHECK_ERR(syscall(SYS_sysinfo, NULL), EFAULT);
}
