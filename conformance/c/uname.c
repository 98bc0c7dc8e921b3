/* uname(2): the kernel's identification. */
#include "harness.h"

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

TEST(sysname_is_linux) {
    struct utsname u;
    CHECK_OK(uname(&u));
    CHECK(strcmp(u.sysname, "Linux") == 0);
}

TEST(machine_is_x86_64) {
    struct utsname u;
    CHECK_OK(uname(&u));
    CHECK(strcmp(u.machine, "x86_64") == 0);
}

TEST(fields_are_nul_terminated) {
    struct utsname u;
    memset(&u, 'x', sizeof u);
    CHECK_OK(uname(&u));
    CHECK(memchr(u.sysname, 0, sizeof u.sysname) != NULL);
    CHECK(memchr(u.nodename, 0, sizeof u.nodename) != NULL);
    CHECK(memchr(u.release, 0, sizeof u.release) != NULL);
    CHECK(memchr(u.version, 0, sizeof u.version) != NULL);
    CHECK(memchr(u.domainname, 0, sizeof u.domainname) != NULL);
}

TEST(bad_pointer_is_efault) {
    CHECK_ERR(syscall(SYS_uname, (void *)1), EFAULT);
    CHECK_ERR(syscall(SYS_uname, NULL), EFAULT);
}
