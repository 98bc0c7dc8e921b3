/* Unix domain sockets: socket(2), socketpair(2), bind(2), listen(2), accept(2), connect(2),
 * send(2)/recv(2) and their msg forms, shutdown(2), getsockname(2), getpeername(2),
 * getsockopt(2) and setsockopt(2), as unix(7) and socket(7) describe them. Cases that need a
 * second party to block against fork a child; path names are made in a scratch directory,
 * abstract names carry the pid (the abstract namespace is shared with the host natively). */
#include "scratch.h"

#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

/* Waits for `pid` and returns its exit status, or -1 if it did not exit normally. */
static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* The events poll(2) reports at once for `fd` asked for `events`. */
static int revents(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) < 0) return -1;
    return p.revents;
}

/* A sockaddr_un for `path`; its length (family, path and NUL) goes to *len. */
static struct sockaddr_un path_addr(const char *path, socklen_t *len) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    *len = offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1;
    return a;
}

/* A sockaddr_un for the abstract name "\0<tag>.<pid>"; its length goes to *len. */
static struct sockaddr_un abstract_addr(const char *tag, socklen_t *len) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "conf.%s.%d", tag, getpid());
    *len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
    return a;
}

/* A listening stream (or seqpacket) socket bound to `path`; -1 on failure. */
static int listener_at(const char *path, int type) {
    socklen_t len;
    struct sockaddr_un a = path_addr(path, &len);
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, len) != 0 || listen(s, 8) != 0) return -1;
    return s;
}

/* A socket of `type` connected to `path`; -1 on failure. */
static int connect_to(const char *path, int type) {
    socklen_t len;
    struct sockaddr_un a = path_addr(path, &len);
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, len) != 0) return -1;
    return s;
}

/* Sends `fds` over `sock` with one byte of data in an SCM_RIGHTS message. */
static long send_fds(int sock, const int *fds, int n) {
    char data = 'F';
    struct iovec iov = {.iov_base = &data, .iov_len = 1};
    char control[CMSG_SPACE(sizeof(int) * 8)];
    memset(control, 0, sizeof control);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(sock, &m, 0);
}

/* socketpair(2): "creates an unnamed pair of connected sockets"; bytes go both ways, through
 * read/write and send/recv alike. fstat shows a socket; the files are open for both. */
TEST(socketpair_stream_moves_bytes_both_ways) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(write(sv[0], "ping", 4), 4);
    char buf[16] = {0};
    CHECK_EQ(read(sv[1], buf, sizeof buf), 4);
    CHECK(!memcmp(buf, "ping", 4));
    CHECK_EQ(send(sv[1], "pong!", 5, 0), 5);
    CHECK_EQ(recv(sv[0], buf, 3, 0), 3);
    CHECK(!memcmp(buf, "pon", 3));
    CHECK_EQ(recv(sv[0], buf, sizeof buf, 0), 2);
    CHECK(!memcmp(buf, "g!", 2));
    /* readv/writev gather and scatter. */
    struct iovec out[2] = {{"ab", 2}, {"cde", 3}};
    CHECK_EQ(writev(sv[0], out, 2), 5);
    char x[2], y[8];
    struct iovec in[2] = {{x, 2}, {y, sizeof y}};
    CHECK_EQ(readv(sv[1], in, 2), 5);
    CHECK(!memcmp(x, "ab", 2) && !memcmp(y, "cde", 3));
    struct stat st;
    CHECK_OK(fstat(sv[0], &st));
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(fcntl(sv[0], F_GETFL) & O_ACCMODE, O_RDWR);
    CHECK_ERR(lseek(sv[0], 0, SEEK_SET), ESPIPE);
    CHECK_OK(close(sv[0]));
    CHECK_OK(close(sv[1]));
}

/* socket(2): SOCK_NONBLOCK and SOCK_CLOEXEC in the type set the file's flags; "EINVAL
 * Unknown protocol, or protocol family not available / Invalid flags in type";
 * EAFNOSUPPORT for an unknown family, EPROTONOSUPPORT for a protocol AF_UNIX lacks,
 * ESOCKTNOSUPPORT for a type it lacks. */
TEST(socket_flags_and_argument_errors) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    CHECK_EQ(fcntl(s, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(s, F_GETFL), O_RDWR | O_NONBLOCK);
    CHECK_OK(close(s));
    CHECK_ERR(socket(AF_UNIX, SOCK_STREAM | 0x100000, 0), EINVAL);
    CHECK_ERR(socket(AF_UNIX, 15, 0), EINVAL);
    CHECK_ERR(socket(AF_UNIX, SOCK_RDM, 0), ESOCKTNOSUPPORT);
    CHECK_ERR(socket(AF_UNIX, SOCK_STREAM, 7), EPROTONOSUPPORT);
    CHECK_ERR(socket(12345, SOCK_STREAM, 0), EAFNOSUPPORT);
    int sv[2];
    CHECK_ERR(socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);
    CHECK_ERR(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, 1L), EFAULT);
    /* The socket calls on other files: ENOTSOCK; on no file: EBADF. */
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERR(listen(p[0], 1), ENOTSOCK);
    CHECK_ERR(send(p[1], "x", 1, 0), ENOTSOCK);
    CHECK_ERR(shutdown(p[0], SHUT_RD), ENOTSOCK);
    CHECK_ERR(listen(999, 1), EBADF);
    close(p[0]);
    close(p[1]);
}

/* socket(7) options: SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ACCEPTCONN, SO_ERROR; SO_SNDBUF and
 * SO_RCVBUF "the kernel doubles this value" with a minimum; SO_PASSCRED and SO_REUSEADDR
 * are flags; an unknown option is ENOPROTOOPT and another level EOPNOTSUPP. */
TEST(socket_options) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    int v;
    socklen_t len = sizeof v;
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &len));
    CHECK_EQ(v, SOCK_SEQPACKET);
    CHECK_EQ(len, sizeof v);
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &len));
    CHECK_EQ(v, AF_UNIX);
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_PROTOCOL, &v, &len));
    CHECK_EQ(v, 0);
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_ACCEPTCONN, &v, &len));
    CHECK_EQ(v, 0);
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &v, &len));
    CHECK_EQ(v, 0);
    v = 65536;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &len));
    CHECK_EQ(v, 131072);
    v = 1;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &len));
    CHECK_EQ(v, 4608);
    v = 1;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, &len));
    CHECK_EQ(v, 2304);
    v = 1;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, sizeof v));
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, &len));
    CHECK_EQ(v, 1);
    v = 5;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, &len));
    CHECK_EQ(v, 1);
    /* A short value is EINVAL; a short result buffer gets what fits. */
    CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, 2), EINVAL);
    short half = -1;
    len = sizeof half;
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &half, &len));
    CHECK_EQ(len, sizeof half);
    CHECK_EQ(half, SOCK_SEQPACKET);
    len = -1;
    CHECK_ERR(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &len), EINVAL);
    len = sizeof v;
    CHECK_ERR(getsockopt(sv[0], SOL_SOCKET, 9999, &v, &len), ENOPROTOOPT);
    CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, 9999, &v, sizeof v), ENOPROTOOPT);
    CHECK_ERR(getsockopt(sv[0], 6 /* SOL_TCP */, 1, &v, &len), EOPNOTSUPP);
    CHECK_ERR(setsockopt(sv[0], 6 /* SOL_TCP */, 1, &v, sizeof v), EOPNOTSUPP);
    close(sv[0]);
    close(sv[1]);
}

/* SO_PEERCRED: "the credentials of the peer process connected to this socket ... at the
 * time of the call to connect(2), listen(2), or socketpair(2)". */
TEST(so_peercred_of_socketpair_and_of_a_connection) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct ucred cred;
    socklen_t len = sizeof cred;
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cred, &len));
    CHECK_EQ(len, sizeof cred);
    CHECK_EQ(cred.pid, getpid());
    CHECK_EQ(cred.uid, geteuid());
    CHECK_EQ(cred.gid, getegid());
    close(sv[0]);
    close(sv[1]);
    /* An unconnected socket has none: pid 0 and ids -1. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_OK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len));
    CHECK_EQ(cred.pid, 0);
    CHECK_EQ(cred.uid, (uid_t)-1);
    CHECK_EQ(cred.gid, (gid_t)-1);
    close(s);
    /* The accepted socket sees the process that connected. */
    CHECK(scratch() != NULL);
    int l = listener_at(P("s"), SOCK_STREAM);
    CHECK(l >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        int c = connect_to(P("s"), SOCK_STREAM);
        struct ucred lc;
        socklen_t n = sizeof lc;
        /* The client sees the listener's process. */
        int ok = c >= 0 && getsockopt(c, SOL_SOCKET, SO_PEERCRED, &lc, &n) == 0 &&
                 lc.pid == getppid();
        char b;
        if (ok) ok = read(c, &b, 1) == 0;
        _exit(ok ? 0 : 1);
    }
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0);
    CHECK_OK(getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cred, &len));
    CHECK_EQ(cred.pid, pid);
    close(a);
    CHECK_EQ(exit_code(pid), 0);
    close(l);
}

/* bind(2) to a path makes a socket file (mode 0777 less the umask); listen, connect and
 * accept make a connection; getsockname and getpeername name both ends; "EADDRINUSE The
 * given address is already in use"; "ECONNREFUSED No-one listening on the remote
 * address". */
TEST(bound_stream_socket_accepts_connections) {
    CHECK(scratch() != NULL);
    mode_t old = umask(022);
    int l = listener_at(P("srv"), SOCK_STREAM);
    umask(old);
    CHECK(l >= 0);
    struct stat st;
    CHECK_OK(stat(P("srv"), &st));
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0755);
    /* The file cannot be opened. */
    CHECK_ERR(open(P("srv"), O_RDWR), ENXIO);
    int v;
    socklen_t vlen = sizeof v;
    CHECK_OK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen));
    CHECK_EQ(v, 1);
    int c = connect_to(P("srv"), SOCK_STREAM);
    CHECK(c >= 0);
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    int a = accept4(l, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    CHECK(a >= 0);
    /* The client has no name: only the family comes back. */
    CHECK_EQ(plen, sizeof(sa_family_t));
    CHECK_EQ(peer.sun_family, AF_UNIX);
    CHECK_EQ(fcntl(a, F_GETFD), FD_CLOEXEC);
    /* The accepted socket has the listener's name, which is the client's peer. */
    struct sockaddr_un name;
    socklen_t nlen = sizeof name;
    CHECK_OK(getsockname(a, (struct sockaddr *)&name, &nlen));
    CHECK_EQ(nlen, offsetof(struct sockaddr_un, sun_path) + strlen(P("srv")) + 1);
    CHECK(!strcmp(name.sun_path, P("srv")));
    nlen = sizeof name;
    CHECK_OK(getpeername(c, (struct sockaddr *)&name, &nlen));
    CHECK(!strcmp(name.sun_path, P("srv")));
    nlen = sizeof name;
    CHECK_OK(getsockname(c, (struct sockaddr *)&name, &nlen));
    CHECK_EQ(nlen, sizeof(sa_family_t));
    /* A short buffer gets what fits and the full length. */
    nlen = 4;
    memset(&name, 0, sizeof name);
    CHECK_OK(getsockname(l, (struct sockaddr *)&name, &nlen));
    CHECK_EQ(nlen, offsetof(struct sockaddr_un, sun_path) + strlen(P("srv")) + 1);
    CHECK_EQ(name.sun_path[2], 0);
    CHECK_EQ(write(c, "hello", 5), 5);
    char buf[8];
    CHECK_EQ(read(a, buf, sizeof buf), 5);
    CHECK(!memcmp(buf, "hello", 5));
    CHECK_EQ(write(a, "back", 4), 4);
    CHECK_EQ(read(c, buf, sizeof buf), 4);
    /* The name is taken while the file exists, even after the socket closes. */
    socklen_t len;
    struct sockaddr_un addr = path_addr(P("srv"), &len);
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERR(bind(other, (struct sockaddr *)&addr, len), EADDRINUSE);
    close(l);
    CHECK_ERR(connect(other, (struct sockaddr *)&addr, len), ECONNREFUSED);
    CHECK_ERR(bind(other, (struct sockaddr *)&addr, len), EADDRINUSE);
    CHECK_OK(unlink(P("srv")));
    CHECK_OK(bind(other, (struct sockaddr *)&addr, len));
    close(other);
    close(a);
    close(c);
}

/* connect(2) and bind(2) errors: ENOENT for a missing path, ECONNREFUSED for a file that is
 * no listening socket, EPROTOTYPE for a socket of another type, EISCONN when connected;
 * EINVAL for a bad address or a second bind; listen(2) needs a bound stream socket. */
TEST(connect_bind_listen_accept_errors) {
    CHECK(scratch() != NULL);
    socklen_t len;
    struct sockaddr_un missing = path_addr(P("missing"), &len);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERR(connect(s, (struct sockaddr *)&missing, len), ENOENT);
    CHECK(put_file(P("regular"), "x") == 1);
    struct sockaddr_un regular = path_addr(P("regular"), &len);
    CHECK_ERR(connect(s, (struct sockaddr *)&regular, len), ECONNREFUSED);
    /* Bound but not listening. */
    int b = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un bound = path_addr(P("bound"), &len);
    CHECK_OK(bind(b, (struct sockaddr *)&bound, len));
    CHECK_ERR(connect(s, (struct sockaddr *)&bound, len), ECONNREFUSED);
    CHECK_ERR(accept(b, NULL, NULL), EINVAL);
    CHECK_ERR(bind(b, (struct sockaddr *)&missing, len), EINVAL);
    /* A second bind that fails leaves no file behind. */
    CHECK(!exists(P("missing")));
    int l = listener_at(P("l"), SOCK_STREAM);
    CHECK(l >= 0);
    struct sockaddr_un laddr = path_addr(P("l"), &len);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK_ERR(connect(d, (struct sockaddr *)&laddr, len), EPROTOTYPE);
    CHECK_OK(connect(s, (struct sockaddr *)&laddr, len));
    CHECK_ERR(connect(s, (struct sockaddr *)&laddr, len), EISCONN);
    CHECK_ERR(listen(s, 1), EINVAL);
    CHECK_ERR(connect(l, (struct sockaddr *)&laddr, len), EINVAL);
    /* Addresses: the family must be AF_UNIX and the length fit sockaddr_un. */
    struct sockaddr_un bad = laddr;
    bad.sun_family = AF_INET;
    CHECK_ERR(connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&bad, len), EINVAL);
    CHECK_ERR(bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&laddr, 111), EINVAL);
    CHECK_ERR(bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&laddr, 1), EINVAL);
    CHECK_ERR(bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)1, len), EFAULT);
    /* listen needs a name and a connection-based socket. */
    CHECK_ERR(listen(socket(AF_UNIX, SOCK_STREAM, 0), 1), EINVAL);
    CHECK_ERR(listen(d, 1), EOPNOTSUPP);
    CHECK_ERR(accept(d, NULL, NULL), EOPNOTSUPP);
    CHECK_ERR(accept4(l, NULL, NULL, 0x40), EINVAL);
    /* Unconnected stream sockets: no peer to name, read from or write to. */
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un name;
    socklen_t nlen = sizeof name;
    CHECK_ERR(getpeername(u, (struct sockaddr *)&name, &nlen), ENOTCONN);
    char c;
    CHECK_ERR(recv(u, &c, 1, 0), EINVAL);
    CHECK_ERR(send(u, "x", 1, MSG_NOSIGNAL), ENOTCONN);
    /* A stream takes no destination: EISCONN connected, EOPNOTSUPP otherwise. */
    CHECK_ERR(sendto(s, "x", 1, 0, (struct sockaddr *)&laddr, len), EISCONN);
    CHECK_ERR(sendto(u, "x", 1, 0, (struct sockaddr *)&laddr, len), EOPNOTSUPP);
}

/* unix(7): "abstract: an abstract socket address is distinguished ... by the fact that
 * sun_path[0] is a null byte"; the name is the bytes the address length covers, it makes
 * no file, and it goes away when the socket closes. */
TEST(abstract_names) {
    socklen_t len;
    struct sockaddr_un a = abstract_addr("abs", &len);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_OK(bind(l, (struct sockaddr *)&a, len));
    CHECK_OK(listen(l, 4));
    struct sockaddr_un name;
    socklen_t nlen = sizeof name;
    CHECK_OK(getsockname(l, (struct sockaddr *)&name, &nlen));
    CHECK_EQ(nlen, len);
    CHECK(!memcmp(&name, &a, len));
    int taken = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERR(bind(taken, (struct sockaddr *)&a, len), EADDRINUSE);
    /* One byte less is another name, which nobody has. */
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERR(connect(c, (struct sockaddr *)&a, len - 1), ECONNREFUSED);
    CHECK_OK(connect(c, (struct sockaddr *)&a, len));
    int s = accept(l, NULL, NULL);
    CHECK(s >= 0);
    CHECK_EQ(send(c, "abc", 3, 0), 3);
    char buf[4];
    CHECK_EQ(recv(s, buf, sizeof buf, 0), 3);
    CHECK_OK(close(l));
    CHECK_OK(bind(taken, (struct sockaddr *)&a, len));
    close(taken);
    close(s);
    close(c);
}

/* "If a bind(2) call specifies addrlen as sizeof(sa_family_t) ... the socket is autobound to
 * an abstract address ... a null byte followed by 5 bytes in the character set [0-9a-f]". */
TEST(autobind_picks_an_abstract_name) {
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    CHECK_OK(bind(s, (struct sockaddr *)&a, sizeof(sa_family_t)));
    struct sockaddr_un name;
    socklen_t nlen = sizeof name;
    CHECK_OK(getsockname(s, (struct sockaddr *)&name, &nlen));
    CHECK_EQ(nlen, offsetof(struct sockaddr_un, sun_path) + 6);
    CHECK_EQ(name.sun_path[0], 0);
    for (int i = 1; i < 6; i++) CHECK(strchr("0123456789abcdef", name.sun_path[i]) != NULL);
    /* Another socket can reach it by that name. */
    int c = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK_EQ(sendto(c, "hi", 2, 0, (struct sockaddr *)&name, nlen), 2);
    char buf[4];
    CHECK_EQ(recv(s, buf, sizeof buf, MSG_DONTWAIT), 2);
    close(c);
    close(s);
}

/* Datagram sockets keep message boundaries: each recv takes one datagram, a short buffer
 * drops the rest ("MSG_TRUNC ... return the real length of the datagram, even when it was
 * longer than the passed buffer"; recvmsg sets MSG_TRUNC in msg_flags). Empty datagrams
 * exist. MSG_PEEK leaves the datagram queued. */
TEST(datagram_boundaries_and_truncation) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    CHECK_EQ(send(sv[0], "one", 3, 0), 3);
    CHECK_EQ(send(sv[0], "", 0, 0), 0);
    CHECK_EQ(send(sv[0], "three33", 7, 0), 7);
    CHECK_EQ(send(sv[0], "four4444", 8, 0), 8);
    char buf[16];
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_PEEK), 3);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, 0), 3);
    CHECK(!memcmp(buf, "one", 3));
    CHECK_EQ(recv(sv[1], buf, sizeof buf, 0), 0);
    CHECK_EQ(recv(sv[1], buf, 2, 0), 2);
    CHECK(!memcmp(buf, "th", 2));
    struct iovec iov = {.iov_base = buf, .iov_len = 3};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_EQ(recvmsg(sv[1], &m, MSG_TRUNC), 8);
    CHECK(m.msg_flags & MSG_TRUNC);
    CHECK(!memcmp(buf, "fou", 3));
    CHECK_ERR(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* FIONREAD on a datagram socket: the size of the next datagram. */
    CHECK_EQ(send(sv[0], "12345", 5, 0), 5);
    CHECK_EQ(send(sv[0], "12", 2, 0), 2);
    int n = -1;
    CHECK_OK(ioctl(sv[1], FIONREAD, &n));
    CHECK_EQ(n, 5);
    /* A datagram bigger than the send buffer never fits. */
    static char big[300000];
    CHECK_ERR(send(sv[0], big, sizeof big, 0), EMSGSIZE);
    close(sv[0]);
    close(sv[1]);
}

/* Unconnected datagram sockets: sendto(2) names the destination, recvfrom(2) the sender
 * (an unnamed sender has an address of length 0); connect(2) sets the default destination,
 * and a socket connected to another takes datagrams from that one only ("EPERM"). After
 * the peer closes, a send is refused and the socket is no longer connected. */
TEST(datagram_addresses_and_connect) {
    CHECK(scratch() != NULL);
    socklen_t len;
    struct sockaddr_un saddr = path_addr(P("dg"), &len);
    int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK_OK(bind(srv, (struct sockaddr *)&saddr, len));
    int cli = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK_ERR(send(cli, "x", 1, 0), ENOTCONN);
    CHECK_EQ(sendto(cli, "anon", 4, 0, (struct sockaddr *)&saddr, len), 4);
    char buf[16];
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    CHECK_EQ(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen), 4);
    CHECK_EQ(flen, 0);
    /* A named sender is named. */
    socklen_t clen;
    struct sockaddr_un caddr = path_addr(P("cli"), &clen);
    CHECK_OK(bind(cli, (struct sockaddr *)&caddr, clen));
    CHECK_EQ(sendto(cli, "named", 5, 0, (struct sockaddr *)&saddr, len), 5);
    flen = sizeof from;
    CHECK_EQ(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen), 5);
    CHECK_EQ(flen, clen);
    CHECK(!strcmp(from.sun_path, P("cli")));
    CHECK_EQ(sendto(srv, "reply", 5, 0, (struct sockaddr *)&from, flen), 5);
    CHECK_EQ(recv(cli, buf, sizeof buf, 0), 5);
    /* Connected to the server, the client sends without an address. */
    CHECK_OK(connect(cli, (struct sockaddr *)&saddr, len));
    CHECK_EQ(send(cli, "conn", 4, 0), 4);
    CHECK_EQ(recv(srv, buf, sizeof buf, 0), 4);
    /* The server connected elsewhere refuses a third socket's datagrams. */
    int third = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK_OK(connect(srv, (struct sockaddr *)&caddr, clen));
    CHECK_ERR(sendto(third, "no", 2, 0, (struct sockaddr *)&saddr, len), EPERM);
    /* AF_UNSPEC disconnects. */
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    CHECK_OK(connect(srv, &unspec, sizeof unspec));
    CHECK_EQ(sendto(third, "ok", 2, 0, (struct sockaddr *)&saddr, len), 2);
    /* The peer closes: ECONNREFUSED, then the client is unconnected. */
    CHECK_OK(close(srv));
    CHECK_ERR(send(cli, "x", 1, 0), ECONNREFUSED);
    CHECK_ERR(send(cli, "x", 1, 0), ENOTCONN);
    close(cli);
    close(third);
}

/* SOCK_SEQPACKET: "a sequenced, reliable, two-way connection-based data transmission path
 * ... a consumer is required to read an entire packet with each input system call". When
 * the peer closes, reads see end of file and writes EPIPE, without SIGPIPE. */
TEST(seqpacket_keeps_boundaries_over_a_connection) {
    CHECK(scratch() != NULL);
    int l = listener_at(P("sp"), SOCK_SEQPACKET);
    CHECK(l >= 0);
    int c = connect_to(P("sp"), SOCK_SEQPACKET);
    CHECK(c >= 0);
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0);
    CHECK_EQ(send(c, "first", 5, 0), 5);
    CHECK_EQ(send(c, "second", 6, 0), 6);
    char buf[16];
    CHECK_EQ(recv(a, buf, 3, 0), 3);
    CHECK(!memcmp(buf, "fir", 3));
    struct iovec iov = {.iov_base = buf, .iov_len = 2};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_EQ(recvmsg(a, &m, 0), 2);
    CHECK(m.msg_flags & MSG_TRUNC);
    CHECK_ERR(recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* An unconnected packet socket can do neither. */
    int u = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK_ERR(send(u, "x", 1, 0), ENOTCONN);
    CHECK_ERR(recv(u, buf, 1, 0), ENOTCONN);
    CHECK_OK(close(c));
    CHECK_EQ(recv(a, buf, sizeof buf, 0), 0);
    CHECK_EQ(recv(a, buf, sizeof buf, MSG_DONTWAIT), 0);
    /* SIGPIPE stays at its default: a signal would kill the process. */
    CHECK_ERR(send(a, "x", 1, 0), EPIPE);
    CHECK_ERR(write(a, "x", 1), EPIPE);
    close(a);
    close(u);
    close(l);
}

/* SCM_RIGHTS: "send or receive a set of open file descriptors from another process ... as
 * though they had been created with dup(2)". A forked child makes a pipe, writes into it and
 * sends its read end; the parent reads what the child wrote. MSG_CMSG_CLOEXEC sets the
 * close-on-exec flag of the new descriptor. */
TEST(scm_rights_passes_a_pipe_from_a_child) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    pid_t pid = fork();
    if (pid == 0) {
        int p[2];
        if (pipe(p) != 0 || write(p[1], "from child", 10) != 10) _exit(1);
        if (send_fds(sv[1], &p[0], 1) != 1) _exit(2);
        _exit(0);
    }
    CHECK_EQ(exit_code(pid), 0);
    char data;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &data, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = sizeof control};
    CHECK_EQ(recvmsg(sv[0], &m, MSG_CMSG_CLOEXEC), 1);
    CHECK_EQ(data, 'F');
    CHECK_EQ(m.msg_flags & MSG_CTRUNC, 0);
    CHECK_EQ(m.msg_controllen, CMSG_SPACE(sizeof(int)));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    CHECK(c != NULL);
    CHECK_EQ(c->cmsg_level, SOL_SOCKET);
    CHECK_EQ(c->cmsg_type, SCM_RIGHTS);
    CHECK_EQ(c->cmsg_len, CMSG_LEN(sizeof(int)));
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    CHECK(fd > sv[1]);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    char buf[16] = {0};
    CHECK_EQ(read(fd, buf, sizeof buf), 10);
    CHECK(!strcmp(buf, "from child"));
    /* The child's write end is closed: the pipe is at its end. */
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    close(fd);
    close(sv[0]);
    close(sv[1]);
}

/* "If the buffer used to receive the ancillary data ... is too small ... the ancillary data
 * is truncated ... and the MSG_CTRUNC flag is set"; descriptors that do not fit are closed.
 * A bad descriptor in SCM_RIGHTS is EBADF; MSG_PEEK passes the files too. */
TEST(scm_rights_truncation_and_errors) {
    int sv[2], p[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    CHECK_OK(pipe(p));
    int three[3] = {p[0], p[1], p[0]};
    CHECK_EQ(send_fds(sv[0], three, 3), 1);
    char data;
    char control[CMSG_SPACE(sizeof(int) * 3)];
    struct iovec iov = {.iov_base = &data, .iov_len = 1};
    /* Room for one descriptor only. */
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = CMSG_LEN(sizeof(int))};
    CHECK_EQ(recvmsg(sv[1], &m, 0), 1);
    CHECK(m.msg_flags & MSG_CTRUNC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    CHECK(c != NULL);
    CHECK_EQ(c->cmsg_len, CMSG_LEN(sizeof(int)));
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    struct stat a, b;
    CHECK_OK(fstat(fd, &a));
    CHECK_OK(fstat(p[0], &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    close(fd);
    /* No control buffer at all: MSG_CTRUNC, and the files are gone. */
    CHECK_EQ(send_fds(sv[0], three, 2), 1);
    struct msghdr bare = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_EQ(recvmsg(sv[1], &bare, 0), 1);
    CHECK(bare.msg_flags & MSG_CTRUNC);
    /* MSG_PEEK gives copies and leaves the message. */
    CHECK_EQ(send_fds(sv[0], three, 1), 1);
    m.msg_controllen = sizeof control;
    CHECK_EQ(recvmsg(sv[1], &m, MSG_PEEK), 1);
    CHECK(CMSG_FIRSTHDR(&m) != NULL);
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
    m.msg_controllen = sizeof control;
    CHECK_EQ(recvmsg(sv[1], &m, 0), 1);
    int fd2;
    memcpy(&fd2, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd2);
    CHECK(fd2 != fd);
    close(fd);
    close(fd2);
    int bad = 999;
    CHECK_ERR(send_fds(sv[0], &bad, 1), EBADF);
    /* A control message whose length runs past the buffer is EINVAL. */
    char control2[CMSG_SPACE(sizeof(int))] = {0};
    struct msghdr m2 = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control2,
                        .msg_controllen = sizeof control2};
    c = CMSG_FIRSTHDR(&m2);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = sizeof control2 + 8;
    CHECK_ERR(sendmsg(sv[0], &m2, 0), EINVAL);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* SCM_CREDENTIALS: "To receive a struct ucred message, the SO_PASSCRED option must be
 * enabled on the socket"; the sender may give its own (checked: an id of -1 is EINVAL) or
 * the kernel fills them in. */
TEST(scm_credentials_with_so_passcred) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    int on = 1;
    CHECK_OK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    CHECK_EQ(send(sv[0], "a", 1, 0), 1);
    char data;
    char control[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = &data, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = sizeof control};
    CHECK_EQ(recvmsg(sv[1], &m, 0), 1);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    CHECK(c != NULL);
    CHECK_EQ(c->cmsg_type, SCM_CREDENTIALS);
    CHECK_EQ(c->cmsg_len, CMSG_LEN(sizeof(struct ucred)));
    struct ucred cred;
    memcpy(&cred, CMSG_DATA(c), sizeof cred);
    CHECK_EQ(cred.pid, getpid());
    CHECK_EQ(cred.uid, getuid());
    CHECK_EQ(cred.gid, getgid());
    /* Explicit credentials. */
    char out[CMSG_SPACE(sizeof(struct ucred))] = {0};
    struct msghdr sm = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = out,
                        .msg_controllen = sizeof out};
    c = CMSG_FIRSTHDR(&sm);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred mine = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
    memcpy(CMSG_DATA(c), &mine, sizeof mine);
    CHECK_EQ(sendmsg(sv[0], &sm, 0), 1);
    m.msg_controllen = sizeof control;
    CHECK_EQ(recvmsg(sv[1], &m, 0), 1);
    memcpy(&cred, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof cred);
    CHECK_EQ(cred.pid, getpid());
    struct ucred invalid = {.pid = getpid(), .uid = (uid_t)-1, .gid = getgid()};
    memcpy(CMSG_DATA(c), &invalid, sizeof invalid);
    CHECK_ERR(sendmsg(sv[0], &sm, 0), EINVAL);
    /* Without SO_PASSCRED on either side, none come. */
    int off = 0;
    CHECK_OK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &off, sizeof off));
    CHECK_EQ(send(sv[0], "b", 1, 0), 1);
    m.msg_controllen = sizeof control;
    CHECK_EQ(recvmsg(sv[1], &m, 0), 1);
    CHECK_EQ(m.msg_controllen, 0);
    close(sv[0]);
    close(sv[1]);
}

/* shutdown(2): SHUT_WR makes the peer read end of file and this end's writes fail with
 * EPIPE; SHUT_RD makes this end's reads return 0 and the peer's writes fail; an unknown
 * `how` is EINVAL. poll shows POLLRDHUP, and POLLHUP once both directions are shut. */
TEST(shutdown_gives_eof_and_epipe) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_ERR(shutdown(sv[0], 3), EINVAL);
    CHECK_EQ(write(sv[0], "last", 4), 4);
    CHECK_OK(shutdown(sv[0], SHUT_WR));
    CHECK_ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    char buf[8];
    CHECK_EQ(read(sv[1], buf, sizeof buf), 4);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 0);
    CHECK_EQ(revents(sv[1], POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    /* The other direction still works. */
    CHECK_EQ(write(sv[1], "back", 4), 4);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 4);
    CHECK_OK(shutdown(sv[1], SHUT_RD));
    CHECK_EQ(revents(sv[1], POLLIN | POLLOUT) & POLLHUP, 0);
    CHECK_OK(shutdown(sv[0], SHUT_RD));
    CHECK_EQ(revents(sv[1], POLLIN | POLLOUT) & POLLHUP, POLLHUP);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 0);
    CHECK_ERR(send(sv[1], "x", 1, MSG_NOSIGNAL), EPIPE);
    close(sv[0]);
    close(sv[1]);
}

/* Closing one end: the other reads end of file, polls POLLIN|POLLHUP|POLLRDHUP, and a write
 * gets EPIPE and SIGPIPE (which kills by default) unless MSG_NOSIGNAL. */
TEST(close_gives_eof_and_sigpipe) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(write(sv[1], "bye", 3), 3);
    CHECK_OK(close(sv[1]));
    char buf[8];
    CHECK_EQ(revents(sv[0], POLLIN | POLLOUT | POLLRDHUP) & (POLLIN | POLLHUP | POLLRDHUP),
             POLLIN | POLLHUP | POLLRDHUP);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 3);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 0);
    CHECK_ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(sv[0], "x", 1);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(WTERMSIG(status), SIGPIPE);
    close(sv[0]);
}

/* Without waiting (O_NONBLOCK or MSG_DONTWAIT), calls that would block fail with EAGAIN: a
 * read of nothing, a write to a full socket, an accept with nothing pending, a connect to a
 * full backlog. What a full socket held is all read back in order. */
TEST(nonblocking_calls_say_eagain) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
    char buf[4096];
    CHECK_ERR(read(sv[0], buf, sizeof buf), EAGAIN);
    CHECK_ERR(recv(sv[0], buf, 1, MSG_DONTWAIT), EAGAIN);
    static char chunk[65536];
    for (unsigned i = 0; i < sizeof chunk; i++) chunk[i] = (char)i;
    long total = 0;
    for (;;) {
        long n = write(sv[0], chunk, sizeof chunk);
        if (n < 0) {
            CHECK_EQ(errno, EAGAIN);
            break;
        }
        CHECK(n > 0);
        total += n;
        CHECK(total < 8 << 20);
    }
    /* Linux fits a little over the default 212992-byte send buffer. */
    CHECK(total >= 100000);
    CHECK_EQ(revents(sv[0], POLLOUT), 0);
    long got = 0;
    for (;;) {
        long n = read(sv[1], buf, sizeof buf);
        if (n < 0) {
            CHECK_EQ(errno, EAGAIN);
            break;
        }
        for (long i = 0; i < n; i++) CHECK_EQ((unsigned char)buf[i], (unsigned char)((got + i) % 65536 % 256));
        got += n;
    }
    CHECK_EQ(got, total);
    CHECK_EQ(revents(sv[0], POLLOUT), POLLOUT);
    close(sv[0]);
    close(sv[1]);
    /* accept and connect. */
    CHECK(scratch() != NULL);
    socklen_t len;
    struct sockaddr_un a = path_addr(P("nb"), &len);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_OK(bind(l, (struct sockaddr *)&a, len));
    CHECK_OK(listen(l, 0));
    CHECK_ERR(accept(l, NULL, NULL), EAGAIN);
    int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_OK(connect(c1, (struct sockaddr *)&a, len));
    int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_ERR(connect(c2, (struct sockaddr *)&a, len), EAGAIN);
    int s = accept(l, NULL, NULL);
    CHECK(s >= 0);
    CHECK_OK(connect(c2, (struct sockaddr *)&a, len));
    close(s);
    close(c1);
    close(c2);
    close(l);
}

/* poll(2) on sockets: a new stream socket is writable and hung up (not connected); a pair is
 * writable; data makes the peer readable; a listener is readable once a connection waits. */
TEST(poll_readiness) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_EQ(revents(s, POLLIN | POLLOUT), POLLOUT | POLLHUP);
    close(s);
    s = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK_EQ(revents(s, POLLIN | POLLOUT), POLLOUT);
    close(s);
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(revents(sv[1], POLLIN | POLLOUT), POLLOUT);
    CHECK_EQ(send(sv[0], "x", 1, 0), 1);
    CHECK_EQ(revents(sv[1], POLLIN | POLLOUT), POLLIN | POLLOUT);
    close(sv[0]);
    close(sv[1]);
    CHECK(scratch() != NULL);
    int l = listener_at(P("pl"), SOCK_STREAM);
    CHECK(l >= 0);
    CHECK_EQ(revents(l, POLLIN | POLLOUT), 0);
    int c = connect_to(P("pl"), SOCK_STREAM);
    CHECK(c >= 0);
    CHECK_EQ(revents(l, POLLIN | POLLOUT), POLLIN);
    /* A client may write before it is accepted. */
    CHECK_EQ(revents(c, POLLOUT), POLLOUT);
    CHECK_EQ(write(c, "early", 5), 5);
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0);
    CHECK_EQ(revents(a, POLLIN), POLLIN);
    /* A poll that waits is woken by a child's write. */
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(50);
        _exit(write(c, "late", 4) == 4 ? 0 : 1);
    }
    char buf[16];
    CHECK_EQ(read(a, buf, sizeof buf), 5);
    struct pollfd p = {.fd = a, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_EQ(p.revents, POLLIN);
    CHECK_EQ(exit_code(pid), 0);
    close(a);
    close(c);
    close(l);
}

/* Blocking calls wait for the other party: accept for a connection, connect for room in the
 * backlog, recv for data (with MSG_WAITALL for all of it), send for room. */
TEST(blocking_calls_wait_for_a_child) {
    CHECK(scratch() != NULL);
    int l = listener_at(P("blk"), SOCK_STREAM);
    CHECK(l >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(50);
        int c = connect_to(P("blk"), SOCK_STREAM);
        if (c < 0) _exit(1);
        sleep_ms(30);
        if (write(c, "12345", 5) != 5) _exit(2);
        sleep_ms(30);
        if (write(c, "67890", 5) != 5) _exit(3);
        /* Fill the parent's socket, which it then drains. */
        static char big[1 << 20];
        if (write(c, big, sizeof big) != sizeof big) _exit(4);
        _exit(0);
    }
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0);
    char buf[16];
    CHECK_EQ(recv(a, buf, 10, MSG_WAITALL), 10);
    CHECK(!memcmp(buf, "1234567890", 10));
    static char big[1 << 20];
    CHECK_EQ(recv(a, big, sizeof big, MSG_WAITALL), sizeof big);
    CHECK_EQ(exit_code(pid), 0);
    CHECK_EQ(read(a, buf, sizeof buf), 0);
    close(a);
    close(l);
}

/* MSG_PEEK on a stream: "returns data from the beginning of the receive queue without
 * removing that data from the queue"; a peek may span several writes. */
TEST(stream_peek_and_fionread) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(send(sv[0], "abc", 3, 0), 3);
    CHECK_EQ(send(sv[0], "def", 3, 0), 3);
    int n = -1;
    CHECK_OK(ioctl(sv[1], FIONREAD, &n));
    CHECK_EQ(n, 6);
    char buf[8] = {0};
    CHECK_EQ(recv(sv[1], buf, 5, MSG_PEEK), 5);
    CHECK(!memcmp(buf, "abcde", 5));
    CHECK_EQ(recv(sv[1], buf, sizeof buf, 0), 6);
    CHECK(!memcmp(buf, "abcdef", 6));
    CHECK_OK(ioctl(sv[1], FIONREAD, &n));
    CHECK_EQ(n, 0);
    close(sv[0]);
    close(sv[1]);
}

/* SO_RCVTIMEO: "if no data has been received within the timeout, the call returns ... with
 * errno set to EAGAIN". */
TEST(receive_timeout) {
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    struct timeval got;
    socklen_t len = sizeof got;
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len));
    CHECK_EQ(got.tv_sec, 0);
    CHECK_EQ(got.tv_usec, 100000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char c;
    CHECK_ERR(recv(sv[0], &c, 1, 0), EAGAIN);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 90);
    tv.tv_usec = 1000000;
    CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), EDOM);
    close(sv[0]);
    close(sv[1]);
}

/* /proc/PID/fd shows a socket as "socket:[INODE]", the inode fstat reports. */
TEST(proc_fd_link_names_the_socket) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct stat st;
    CHECK_OK(fstat(s, &st));
    char path[64], link[64], want[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", s);
    long n = readlink(path, link, sizeof link - 1);
    CHECK(n > 0);
    link[n] = 0;
    snprintf(want, sizeof want, "socket:[%lu]", (unsigned long)st.st_ino);
    CHECK(!strcmp(link, want));
    close(s);
}

static void on_alarm(int sig) { (void)sig; }

/* socket(7): a blocking call on a socket with SO_RCVTIMEO (or SO_SNDTIMEO) that a signal
 * interrupts fails with EINTR even if the handler has SA_RESTART. */
TEST(a_timed_receive_is_not_restarted) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct timeval tv = {5, 0};
    CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    CHECK_EQ(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval it = {{0, 0}, {0, 100000}};
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    char c;
    CHECK_ERR(recv(sv[0], &c, 1, 0), EINTR);
    CHECK_EQ(sigaction(SIGALRM, &old, NULL), 0);
    close(sv[0]);
    close(sv[1]);
}
