use super::*;
use crate::vfs::O_RDWR;
use std::time::Duration;

const ME: Caller = Caller {
    pid: 7,
    uid: 1000,
    gid: 100,
    euid: 1001,
    egid: 101,
};
const NB: u64 = MSG_DONTWAIT;

fn names() -> Arc<Names> {
    Arc::new(Names::default())
}

fn pair(ty: SockType) -> (UnixSocket, UnixSocket) {
    UnixSocket::pair(ty, names(), &ME)
}

fn send(s: &UnixSocket, data: &[u8], flags: u64) -> Result<usize, Errno> {
    let mut src = data;
    s.send(None, &mut src, Ancillary::default(), flags, Some(&ME))
}

fn recv(s: &UnixSocket, len: usize, flags: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let got = s.recv(&mut BufSink::new(&mut buf), flags)?;
    buf.truncate(got.len.min(len));
    Ok(buf)
}

/// Writes `chunk` bytes at a time without waiting until the socket is full; the bytes taken.
fn fill(s: &UnixSocket, chunk: usize) -> usize {
    let data = vec![7u8; chunk];
    let mut total = 0;
    loop {
        match send(s, &data, NB) {
            Ok(n) => total += n,
            Err(Errno::EAGAIN) => return total,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A socket wrapped in an open file, as SCM_RIGHTS carries it.
fn file_of(sock: UnixSocket) -> Arc<OpenFile> {
    let owner = Owner { uid: 0, gid: 0 };
    OpenFile::new(None, socket_inode(owner), Arc::new(sock), O_RDWR)
}

#[test]
fn send_buffers_hold_what_linux_holds() {
    // Measured on Linux 6.18 with the default 212992-byte SO_SNDBUF: the bytes a stream pair
    // takes by writes of each size, and the datagrams of each size a datagram pair takes.
    for (chunk, total) in [
        (1, 278),
        (100, 27800),
        (1000, 93000),
        (4096, 180224),
        (65536, 233152),
        (1 << 20, 219264),
    ] {
        let (a, _b) = pair(SockType::Stream);
        assert_eq!(fill(&a, chunk), total, "stream writes of {chunk}");
        assert_eq!(a.ep.readiness() & POLLOUT, 0);
    }
    for (size, count) in [
        (0, 278),
        (1, 278),
        (100, 278),
        (1000, 93),
        (10000, 13),
        (100000, 3),
    ] {
        let (a, _b) = pair(SockType::Dgram);
        assert_eq!(
            fill(&a, size.max(1)) / size.max(1),
            count,
            "datagrams of {size}"
        );
    }
    let (a, _b) = pair(SockType::Dgram);
    assert_eq!(send(&a, &vec![0; 212961], NB), Err(Errno::EMSGSIZE));
    assert_eq!(send(&a, &vec![0; 212960], NB), Ok(212960));
}

#[test]
fn a_full_stream_is_writable_again_once_a_quarter_is_in_use() {
    let (a, b) = pair(SockType::Stream);
    let total = fill(&a, 4096);
    assert_eq!(a.outq(), 44 * skb::stream(4096));
    let mut read = 0;
    while a.ep.readiness() & POLLOUT == 0 {
        read += recv(&b, 4096, NB).unwrap().len();
    }
    assert!(a.outq() * 4 <= DEFAULT_BUF);
    assert_eq!(b.inq(), Ok(total - read));
}

#[test]
fn stream_reads_glue_writes_and_take_part_of_one() {
    let (a, b) = pair(SockType::Stream);
    assert_eq!(send(&a, b"abc", 0), Ok(3));
    assert_eq!(send(&a, b"defg", 0), Ok(4));
    assert_eq!(recv(&b, 2, NB).unwrap(), b"ab");
    assert_eq!(recv(&b, 4, MSG_PEEK).unwrap(), b"cdef");
    assert_eq!(recv(&b, 10, NB).unwrap(), b"cdefg");
    assert_eq!(recv(&b, 10, NB), Err(Errno::EAGAIN));
    // A zero-length read of a stream with data returns at once.
    assert_eq!(send(&a, b"x", 0), Ok(1));
    assert_eq!(recv(&b, 0, 0).unwrap(), b"");
    assert_eq!(b.inq(), Ok(1));
}

#[test]
fn datagrams_keep_their_boundaries() {
    let (a, b) = pair(SockType::Dgram);
    for d in [&b"one"[..], b"", b"three"] {
        assert_eq!(send(&a, d, 0), Ok(d.len()));
    }
    assert_eq!(recv(&b, 10, 0).unwrap(), b"one");
    assert_eq!(recv(&b, 10, 0).unwrap(), b"");
    let mut buf = [0u8; 2];
    let got = b.recv(&mut BufSink::new(&mut buf), MSG_TRUNC).unwrap();
    assert_eq!((got.len, got.truncated, &buf), (5, true, b"th"));
    assert_eq!(recv(&b, 10, NB), Err(Errno::EAGAIN));
}

#[test]
fn credentials_come_with_so_passcred_and_writers_are_not_glued() {
    let (a, b) = pair(SockType::Stream);
    b.setsockopt(SO_PASSCRED, &1i32.to_ne_bytes()).unwrap();
    let other = Caller { pid: 9, ..ME };
    let mut src = &b"ab"[..];
    a.send(None, &mut src, Ancillary::default(), 0, Some(&ME))
        .unwrap();
    let mut src = &b"cd"[..];
    a.send(None, &mut src, Ancillary::default(), 0, Some(&other))
        .unwrap();
    let mut buf = [0u8; 8];
    let got = b.recv(&mut BufSink::new(&mut buf), 0).unwrap();
    assert_eq!((got.len, got.cred), (2, Some(ME.cred())));
    let got = b.recv(&mut BufSink::new(&mut buf), 0).unwrap();
    assert_eq!((got.len, got.cred.map(|c| c.pid)), (2, Some(9)));
    // SO_PEERCRED of a pair: the creator, with its effective ids.
    let peer = a.getsockopt(SO_PEERCRED).unwrap();
    assert_eq!(Ucred::read_from_bytes(&peer).unwrap(), ME.peer_cred());
}

#[test]
fn shutdown_and_close_end_the_connection() {
    let (a, b) = pair(SockType::Stream);
    assert_eq!(send(&a, b"last", 0), Ok(4));
    a.shutdown(SHUT_WR).unwrap();
    assert_eq!(send(&a, b"x", 0), Err(Errno::EPIPE));
    assert_eq!(recv(&b, 8, 0).unwrap(), b"last");
    assert_eq!(recv(&b, 8, 0).unwrap(), b"");
    assert_eq!(b.ep.readiness() & POLLRDHUP, POLLRDHUP);
    // Closing with unread data resets the peer: ECONNRESET once, then end of file.
    let (a, b) = pair(SockType::Stream);
    assert_eq!(send(&b, b"unread", 0), Ok(6));
    drop(a);
    assert_eq!(send(&b, b"x", 0), Err(Errno::EPIPE));
    assert_eq!(recv(&b, 8, 0), Err(Errno::ECONNRESET));
    assert_eq!(recv(&b, 8, 0).unwrap(), b"");
    assert_eq!(b.ep.readiness() & (POLLHUP | POLLIN), POLLHUP | POLLIN);
    // The sender's buffer is free again: what it sent was thrown away.
    assert_eq!(b.outq(), 0);
}

#[test]
fn a_blocked_reader_is_woken_by_a_writer_on_another_thread() {
    let (a, b) = pair(SockType::Stream);
    let reader = std::thread::spawn(move || recv(&b, 8, MSG_WAITALL));
    for piece in [&b"1234"[..], b"5678"] {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(send(&a, piece, 0), Ok(4));
    }
    assert_eq!(reader.join().unwrap().unwrap(), b"12345678");
}

#[test]
fn a_blocked_writer_waits_for_the_reader_then_for_the_close() {
    let (a, b) = pair(SockType::Stream);
    let a = Arc::new(a);
    fill(&a, 65536);
    let writer = {
        let a = a.clone();
        std::thread::spawn(move || send(&a, &[1u8; 100], 0))
    };
    std::thread::sleep(Duration::from_millis(20));
    while recv(&b, 65536, NB).is_ok() {}
    assert_eq!(writer.join().unwrap(), Ok(100));
    fill(&a, 65536);
    let writer = {
        let a = a.clone();
        std::thread::spawn(move || send(&a, &[1u8; 100], 0))
    };
    std::thread::sleep(Duration::from_millis(20));
    // The reader closes with data unread: the blocked writer takes the reset (as Linux's
    // sock_alloc_send_pskb does), the next write finds the socket shut down.
    drop(b);
    assert_eq!(writer.join().unwrap(), Err(Errno::ECONNRESET));
    assert_eq!(send(&a, b"x", 0), Err(Errno::EPIPE));
    assert_eq!(recv(&a, 1, 0).unwrap(), b"");
}

#[test]
fn a_signal_interrupts_a_blocked_read_but_data_read_first_counts() {
    let (a, b) = pair(SockType::Stream);
    let (tx, rx) = std::sync::mpsc::channel();
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        tx.send(crate::waiter::Waker::current()).unwrap();
        let first = recv(&b, 8, 0);
        tx.send(crate::waiter::Waker::current()).unwrap();
        wait_go.recv().unwrap();
        // Interrupted still: MSG_WAITALL gives up, but returns what it read.
        let second = recv(&b, 8, MSG_WAITALL);
        (first, second)
    });
    let waker = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    waker.interrupt();
    rx.recv().unwrap();
    assert_eq!(send(&a, b"abc", 0), Ok(3));
    go.send(()).unwrap();
    let (first, second) = reader.join().unwrap();
    assert_eq!(first, Err(Errno::EINTR));
    assert_eq!(second.unwrap(), b"abc");
}

#[test]
fn listeners_queue_connections_up_to_their_backlog() {
    let names = names();
    let l = UnixSocket::new(SockType::Stream, names.clone());
    l.bind_abstract(b"\0listener".to_vec()).unwrap();
    l.listen(0, &ME).unwrap();
    let target = names
        .find_abstract(b"\0listener", SockType::Stream)
        .unwrap();
    assert_eq!(
        names.find_abstract(b"\0listener", SockType::Dgram).err(),
        Some(Errno::ECONNREFUSED)
    );
    let c1 = UnixSocket::new(SockType::Stream, names.clone());
    let c2 = UnixSocket::new(SockType::Stream, names.clone());
    c1.connect(Some(&target), &ME, true).unwrap();
    // Backlog 0 holds one connection; a full backlog is checked before the connector's own
    // state, as in Linux.
    assert_eq!(c2.connect(Some(&target), &ME, true), Err(Errno::EAGAIN));
    assert_eq!(c1.connect(Some(&target), &ME, true), Err(Errno::EAGAIN));
    // The client writes before it is accepted.
    assert_eq!(send(&c1, b"hi", 0), Ok(2));
    let s1 = l.accept(true).unwrap();
    assert_eq!(c1.connect(Some(&target), &ME, true), Err(Errno::EISCONN));
    assert_eq!(recv(&s1, 8, 0).unwrap(), b"hi");
    assert_eq!(s1.name(), Some(Addr::Abstract(b"\0listener".to_vec())));
    c2.connect(Some(&target), &ME, true).unwrap();
    // Closing the listener resets the connection it never accepted.
    drop(l);
    assert_eq!(recv(&c2, 8, 0), Err(Errno::ECONNRESET));
    assert_eq!(send(&c2, b"x", 0), Err(Errno::EPIPE));
    // Its name is free again.
    let again = UnixSocket::new(SockType::Stream, names);
    again.bind_abstract(b"\0listener".to_vec()).unwrap();
}

#[test]
fn names_are_taken_once_per_type_and_autobind_finds_free_ones() {
    let names = names();
    let a = UnixSocket::new(SockType::Dgram, names.clone());
    let b = UnixSocket::new(SockType::Dgram, names.clone());
    let s = UnixSocket::new(SockType::Stream, names.clone());
    a.bind_abstract(b"\0n".to_vec()).unwrap();
    assert_eq!(b.bind_abstract(b"\0n".to_vec()), Err(Errno::EADDRINUSE));
    s.bind_abstract(b"\0n".to_vec()).unwrap();
    assert_eq!(a.bind_abstract(b"\0m".to_vec()), Err(Errno::EINVAL));
    b.autobind().unwrap();
    let Some(Addr::Abstract(auto)) = b.name() else {
        panic!("no name");
    };
    assert_eq!(auto.len(), 6);
    assert_eq!(Addr::Abstract(auto).to_sockaddr().len(), 8);
    // A bound socket keeps its name.
    a.autobind().unwrap();
    assert_eq!(a.name(), Some(Addr::Abstract(b"\0n".to_vec())));
}

#[test]
fn addresses_parse_as_linux_reads_them() {
    let sa = |path: &[u8]| [&UNNAMED[..], path].concat();
    assert_eq!(
        Addr::parse(&sa(b"/tmp/s\0junk")),
        Ok(Addr::Path(b"/tmp/s".to_vec()))
    );
    assert_eq!(Addr::parse(&sa(b"rel")), Ok(Addr::Path(b"rel".to_vec())));
    assert_eq!(
        Addr::parse(&sa(b"\0ab\0")),
        Ok(Addr::Abstract(b"\0ab\0".to_vec()))
    );
    assert_eq!(Addr::parse(&UNNAMED), Err(Errno::EINVAL));
    assert_eq!(Addr::parse(&sa(&[b'x'; 109])), Err(Errno::EINVAL));
    assert_eq!(Addr::parse(&[2, 0, b'x']), Err(Errno::EINVAL));
    assert_eq!(Addr::Path(b"/s".to_vec()).to_sockaddr(), sa(b"/s\0"));
}

#[test]
fn datagram_receivers_bound_what_unconnected_senders_queue() {
    let names = names();
    let server = UnixSocket::new(SockType::Dgram, names.clone());
    server.bind_abstract(b"\0log".to_vec()).unwrap();
    let target = names.find_abstract(b"\0log", SockType::Dgram).unwrap();
    let client = UnixSocket::new(SockType::Dgram, names);
    client.connect(Some(&target), &ME, false).unwrap();
    // max_dgram_qlen (10): the queue is full when it holds more than that.
    for _ in 0..=MAX_DGRAM_QLEN {
        assert_eq!(send(&client, b"m", NB), Ok(1));
    }
    assert_eq!(send(&client, b"m", NB), Err(Errno::EAGAIN));
    assert_eq!(client.ep.readiness() & POLLOUT, 0);
    recv(&server, 1, 0).unwrap();
    assert_eq!(client.ep.readiness() & POLLOUT, POLLOUT);
    // The server closes: the client's next send is refused and it is disconnected.
    drop(server);
    assert_eq!(send(&client, b"m", 0), Err(Errno::ECONNREFUSED));
    assert_eq!(send(&client, b"m", 0), Err(Errno::ENOTCONN));
}

#[test]
fn passed_files_go_to_the_first_read_and_close_when_thrown_away() {
    let (a, b) = pair(SockType::Stream);
    let (inner, inner_peer) = pair(SockType::Stream);
    let anc = Ancillary {
        rights: vec![file_of(inner)],
        cred: None,
    };
    let mut src = &b"xy"[..];
    assert_eq!(a.send(None, &mut src, anc, 0, Some(&ME)), Ok(2));
    let mut buf = [0u8; 1];
    let peeked = b.recv(&mut BufSink::new(&mut buf), MSG_PEEK).unwrap();
    assert_eq!(peeked.rights.len(), 1);
    drop(peeked);
    let got = b.recv(&mut BufSink::new(&mut buf), 0).unwrap();
    assert_eq!(got.rights.len(), 1);
    let got = b.recv(&mut BufSink::new(&mut buf), 0).unwrap();
    assert!(got.rights.is_empty());
    // Files still in flight close with the socket that holds them, and that may close
    // further sockets: the inner pair's other end sees end of file.
    let (a, b) = pair(SockType::Dgram);
    let (inner, inner_peer2) = pair(SockType::Stream);
    let anc = Ancillary {
        rights: vec![file_of(inner)],
        cred: None,
    };
    let mut src = &b"z"[..];
    assert_eq!(a.send(None, &mut src, anc, 0, Some(&ME)), Ok(1));
    drop(b);
    assert_eq!(recv(&inner_peer2, 4, 0).unwrap(), b"");
    drop((a, inner_peer));
}

#[test]
fn options_round_trip_and_unknown_ones_are_refused() {
    let (a, _b) = pair(SockType::SeqPacket);
    let int = |v: &[u8]| i32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
    assert_eq!(int(&a.getsockopt(SO_TYPE).unwrap()), SOCK_SEQPACKET as i32);
    assert_eq!(int(&a.getsockopt(SO_SNDBUF).unwrap()), DEFAULT_BUF as i32);
    a.setsockopt(SO_SNDBUF, &(-1i32).to_ne_bytes()).unwrap();
    assert_eq!(int(&a.getsockopt(SO_SNDBUF).unwrap()), 2 * BUF_MAX as i32);
    assert_eq!(a.setsockopt(SO_SNDBUF, &[1, 0]), Err(Errno::EINVAL));
    assert_eq!(a.getsockopt(SO_KEEPALIVE), Err(Errno::ENOPROTOOPT));
    let tv = Timeval {
        tv_sec: 1,
        tv_usec: 500_000,
    };
    a.setsockopt(SO_SNDTIMEO, tv.as_bytes()).unwrap();
    assert_eq!(a.getsockopt(SO_SNDTIMEO).unwrap(), tv.as_bytes());
    let bad = Timeval {
        tv_sec: 1,
        tv_usec: -1,
    };
    assert_eq!(a.setsockopt(SO_SNDTIMEO, bad.as_bytes()), Err(Errno::EDOM));
    assert_eq!(timeout_of(&[0u8; 16]), Ok(None));
}
