/* Passing a pipe between processes with SCM_RIGHTS (unix(7)): a socket pair, fork; the
 * parent makes a pipe, sends its read end with sendmsg and closes its own copy, then
 * writes a message into the pipe; the child receives the descriptor with recvmsg, checks
 * it is a FIFO and that the control message is what Linux sends (SOL_SOCKET,
 * SCM_RIGHTS, one int), reads the message to EOF and prints it, with the data byte that
 * carried the descriptor. The parent reaps the child and prints its status. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char message[] = "hello through a passed pipe";

static int child(int sock) {
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(sock, &msg, 0);
    if (n != 1) { perror("recvmsg"); return 1; }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c) { printf("child: no control message\n"); return 1; }
    printf("child: data byte '%c', cmsg level SOL_SOCKET %s, type SCM_RIGHTS %s, "
           "len for one fd %s, MSG_CTRUNC %s\n",
           byte, c->cmsg_level == SOL_SOCKET ? "yes" : "no",
           c->cmsg_type == SCM_RIGHTS ? "yes" : "no",
           c->cmsg_len == CMSG_LEN(sizeof(int)) ? "yes" : "no",
           msg.msg_flags & MSG_CTRUNC ? "set" : "clear");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    printf("child: received fd is a FIFO: %s, is a new number: %s\n",
           S_ISFIFO(st.st_mode) ? "yes" : "no", fd != sock ? "yes" : "no");
    char buf[128];
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += r;
    if (r < 0) { perror("read"); return 1; }
    buf[got] = 0;
    printf("child: read \"%s\" then EOF\n", buf);
    fflush(stdout);
    return strcmp(buf, message) == 0 ? 0 : 1;
}

int main(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) { perror("socketpair"); return 1; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        close(sv[0]);
        _exit(child(sv[1]));
    }
    close(sv[1]);
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return 1; }
    char byte = 'R';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    if (sendmsg(sv[0], &msg, 0) != 1) { perror("sendmsg"); return 1; }
    /* The child's copy is the only read end left. */
    close(p[0]);
    if (write(p[1], message, strlen(message)) != (ssize_t)strlen(message)) {
        perror("write");
        return 1;
    }
    close(p[1]);
    int status;
    if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); return 1; }
    printf("parent: child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
