/* execve(2) and execveat(2): replacing the program, close-on-exec, #! scripts, errors.
 * The programs exec'd are the static busybox (/bin/busybox, from busybox-static). */
#include "scratch.h"

#include <sys/wait.h>

#define BUSYBOX "/bin/busybox"

/* Runs execve(path, argv, envp) in a child; returns its exit status, or 1000 + errno if
 * execve failed. */
static int run(const char *path, char *const argv[]) {
    char *envp[] = {"PATH=/bin:/usr/bin", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execve(path, argv, envp);
        _exit(errno < 200 ? 200 + errno : 255);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    int code = WEXITSTATUS(status);
    return code >= 200 && code < 255 ? 1000 + code - 200 : code;
}

static int make_file(const char *path, const char *text, int mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* "execve() executes the program referred to by pathname": its exit status is the
 * child's. */
TEST(runs_the_new_program) {
    char *t[] = {"true", NULL}, *f[] = {"false", NULL};
    CHECK_EQ(run(BUSYBOX, t), 0);
    CHECK_EQ(run(BUSYBOX, f), 1);
}

/* The process keeps its pid across execve. */
TEST(keeps_the_pid) {
    char *argv[] = {"sh", "-c", "exit $(($$ % 200))", NULL};
    char *envp[] = {NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execve(BUSYBOX, argv, envp);
        _exit(255);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), pid % 200);
}

/* "By default, file descriptors remain open across an execve(). File descriptors that are
 * marked close-on-exec are closed." */
TEST(close_on_exec_descriptors_are_closed) {
    CHECK(scratch());
    int keep = open(P("keep"), O_WRONLY | O_CREAT, 0644);
    int gone = open(P("gone"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    CHECK(keep >= 0 && gone >= 0);
    char script[64];
    snprintf(script, sizeof script, "echo x >&%d", keep);
    char *a[] = {"sh", "-c", script, NULL};
    CHECK_EQ(run(BUSYBOX, a), 0);
    snprintf(script, sizeof script, "echo x >&%d", gone);
    char *b[] = {"sh", "-c", script, NULL};
    CHECK(run(BUSYBOX, b) != 0);
    struct stat st;
    CHECK_OK(stat(P("keep"), &st));
    CHECK_EQ(st.st_size, 2);
    CHECK_OK(stat(P("gone"), &st));
    CHECK_EQ(st.st_size, 0);
}

/* ERRORS: ENOENT for a missing file, EACCES for a directory or a file without execute
 * permission, ENOEXEC for an executable that is neither ELF nor a script, EFAULT for a bad
 * path. */
TEST(errors_for_what_cannot_run) {
    CHECK(scratch());
    char *argv[] = {"x", NULL};
    CHECK_EQ(run(P("missing"), argv), 1000 + ENOENT);
    CHECK_EQ(run(P(""), argv), 1000 + EACCES);
    CHECK_OK(make_file(P("noexec"), "#!/bin/busybox true\n", 0644));
    CHECK_EQ(run(P("noexec"), argv), 1000 + EACCES);
    CHECK_OK(make_file(P("garbage"), "this is not a program\n", 0755));
    CHECK_EQ(run(P("garbage"), argv), 1000 + ENOEXEC);
    CHECK_ERR(syscall(SYS_execve, 8, argv, NULL), EFAULT);
}

/* A "#!interpreter [optional-arg]" script runs as interpreter [optional-arg] pathname
 * arg..., argv[0] of the script being dropped. */
TEST(scripts_run_through_their_interpreter) {
    CHECK(scratch());
    CHECK_OK(make_file(P("count"), "#!/bin/busybox sh\nexit $#\n", 0755));
    char *argv[] = {"ignored", "a", "b", "c", NULL};
    CHECK_EQ(run(P("count"), argv), 3);
    /* The optional argument comes before the script's path, without the blanks around
     * it: here `/bin/busybox sh script`. */
    CHECK_OK(make_file(P("opt"), "#! /bin/busybox  sh \nexit 9\n", 0755));
    char *none[] = {"opt", NULL};
    CHECK_EQ(run(P("opt"), none), 9);
    /* Everything after the interpreter is ONE argument: busybox is asked for an applet
     * called "echo a b", which it does not have (127). */
    CHECK_OK(make_file(P("one"), "#!/bin/busybox echo a b\n", 0755));
    CHECK_EQ(run(P("one"), none), 127);
}

/* A script whose interpreter is itself a script is followed, to a limit: ELOOP. */
TEST(interpreter_chains_end_in_eloop) {
    CHECK(scratch());
    char line[PATH_MAX + 8];
    snprintf(line, sizeof line, "#!%s\n", P("loop"));
    CHECK_OK(make_file(P("loop"), line, 0755));
    char *argv[] = {"loop", NULL};
    CHECK_EQ(run(P("loop"), argv), 1000 + ELOOP);
    snprintf(line, sizeof line, "#!%s\n", P("count"));
    CHECK_OK(make_file(P("count"), "#!/bin/busybox sh\nexit $#\n", 0755));
    CHECK_OK(make_file(P("wrapper"), line, 0755));
    char *two[] = {"wrapper", "x", NULL};
    /* sh count wrapper x: $# is 2. */
    CHECK_EQ(run(P("wrapper"), two), 2);
}

/* "E2BIG The total number of bytes in the environment (envp) and argument list (argv) is
 * too large" — a single string longer than MAX_ARG_STRLEN (32 pages) is too. */
TEST(e2big_for_an_overlong_argument) {
    size_t len = 33 * 4096;
    char *big = malloc(len + 1);
    CHECK(big != NULL);
    memset(big, 'a', len);
    big[len] = 0;
    char *argv[] = {"true", big, NULL};
    CHECK_EQ(run(BUSYBOX, argv), 1000 + E2BIG);
    free(big);
}

/* execveat(fd, "", ..., AT_EMPTY_PATH) runs the file open at fd; bad flags are EINVAL. */
TEST(execveat_runs_an_open_file) {
    int fd = open(BUSYBOX, O_PATH | O_CLOEXEC);
    CHECK(fd >= 0);
    char *argv[] = {"false", NULL}, *envp[] = {NULL};
    /* The name is looked at before the flags. */
    CHECK_ERR(syscall(SYS_execveat, fd, "", argv, envp, 0x4), ENOENT);
    CHECK_ERR(syscall(SYS_execveat, AT_FDCWD, BUSYBOX, argv, envp, 0x4), EINVAL);
    pid_t pid = fork();
    if (pid == 0) {
        syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
        _exit(200);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 1);
    close(fd);
}
