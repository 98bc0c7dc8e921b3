/* shim RUNTIME ROOT BUNDLE ID [SIGNAL]: does what containerd's runc shim does with a
 * runtime, to check that the pid in --pid-file is a process whose exit is the container's.
 * It becomes a child subreaper, runs `RUNTIME --root ROOT create --bundle BUNDLE
 * --pid-file BUNDLE/pid ID` and `RUNTIME --root ROOT start ID`, optionally
 * `RUNTIME --root ROOT kill ID SIGNAL`, then waits for the pid from the pid file (which
 * was re-parented here when `create` exited) and prints "exited N" or "killed N". It
 * deletes the container at the end. Exit status: 0 if it saw the pid-file process end,
 * 1 on any other failure (said on stderr).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(char *const argv[]) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: shim RUNTIME ROOT BUNDLE ID [SIGNAL]\n");
        return 1;
    }
    char *runtime = argv[1], *root = argv[2], *bundle = argv[3], *id = argv[4];
    char pidfile[4096];
    snprintf(pidfile, sizeof pidfile, "%s/pid", bundle);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("shim: PR_SET_CHILD_SUBREAPER");
        return 1;
    }
    char *create[] = {runtime, "--root", root, "create", "--bundle", bundle,
                      "--pid-file", pidfile, id, NULL};
    if (run(create) != 0) {
        fprintf(stderr, "shim: create failed\n");
        return 1;
    }
    FILE *f = fopen(pidfile, "r");
    int pid = 0;
    if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "shim: no pid in %s\n", pidfile);
        return 1;
    }
    fclose(f);
    char *start[] = {runtime, "--root", root, "start", id, NULL};
    if (run(start) != 0) {
        fprintf(stderr, "shim: start failed\n");
        return 1;
    }
    if (argc > 5) {
        char *kill[] = {runtime, "--root", root, "kill", id, argv[5], NULL};
        if (run(kill) != 0) {
            fprintf(stderr, "shim: kill failed\n");
            return 1;
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("shim: waiting for the pid-file process");
            return 1;
        }
    }
    if (WIFEXITED(status))
        printf("exited %d\n", WEXITSTATUS(status));
    else
        printf("killed %d\n", WTERMSIG(status));
    fflush(stdout);
    char *del[] = {runtime, "--root", root, "delete", id, NULL};
    if (run(del) != 0) {
        fprintf(stderr, "shim: delete failed\n");
        return 1;
    }
    return 0;
}
