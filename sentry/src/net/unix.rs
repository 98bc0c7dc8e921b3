//! Unix domain sockets (unix(7)): stream, datagram and sequenced-packet sockets between the
//! processes of a sandbox, served entirely in Sentry memory, after Linux's net/unix/af_unix.c.
//!
//! Each socket is an [`Endpoint`]. Data sent to a socket becomes a [`Message`] in its peer's
//! receive queue: one per datagram or packet, and for streams one per piece of a write (what
//! Linux calls an skb), which a read may take in part and which reads glue together. A message
//! counts against its *sender's* send buffer (SO_SNDBUF) with Linux's accounting (the bytes
//! plus the overhead of an skb), until it is read; so a writer waits (or gets EAGAIN) when the
//! reader falls behind, and the capacity is Linux's: 278 one-byte writes, or 219264 bytes of
//! one big write, fit in a new socket pair.
//!
//! A connection is a pair of endpoints pointing at each other. `connect` makes the server's end
//! at once (an "embryo") and queues it on the listening socket for `accept`, as Linux does, so
//! a client may write before it is accepted. Closing an end (dropping its [`UnixSocket`]) shuts
//! its peer down: reads see end of file, writes EPIPE.
//!
//! Bound sockets are found through [`Names`], the sandbox-wide table Linux keeps per network
//! namespace: by the inode of the socket file a path names, or by an abstract name.
//!
//! Every endpoint's readiness can change only under its state lock, and its [`WaitQueue`] is
//! notified after every change; blocked readers, writers, acceptors and connectors, and poll,
//! wait on it. At most one endpoint lock is held at a time, except `connect`, which locks the
//! two ends in address order ([`lock_two`]). Messages may hold open files (SCM_RIGHTS), whose
//! last close may close other sockets, so a message is never dropped under a lock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, IntoBytes};

use crate::abi::*;
use crate::vfs::{FileOps, FileType, InodeKey, OpenFile, Owner, SeekMode, O_NONBLOCK};
use crate::waiter::{wait_until_deadline, WaitQueue};

/// SO_SNDBUF and SO_RCVBUF of a new socket (net.core.wmem_default and rmem_default).
pub const DEFAULT_BUF: usize = 212992;
/// The most SO_SNDBUF and SO_RCVBUF may ask for (net.core.wmem_max and rmem_max at their
/// defaults); the socket keeps twice what is asked, as Linux does.
const BUF_MAX: u32 = 212992;
/// The least send and receive buffers (SOCK_MIN_SNDBUF, SOCK_MIN_RCVBUF).
const SNDBUF_MIN: usize = 4608;
const RCVBUF_MIN: usize = 2304;
/// How many datagrams a socket queues from senders it is not connected to
/// (net.unix.max_dgram_qlen): a sender waits while more are queued.
const MAX_DGRAM_QLEN: usize = 10;
/// The largest listen backlog (net.core.somaxconn).
const SOMAXCONN: u32 = 4096;
/// The most files one message may carry (SCM_MAX_FD).
pub const SCM_MAX_FD: usize = 253;
/// The device sockets report in st_dev (Linux's sockfs is an anonymous device).
pub const SOCKFS_DEV: u64 = crate::fs::devices::makedev(0, 10);

/// The parts of Linux's skb accounting that decide how much fits in a send buffer.
mod skb {
    /// sizeof(struct sk_buff), cache-aligned.
    const SK_BUFF: usize = 256;
    /// sizeof(struct skb_shared_info), cache-aligned: every data buffer ends with one.
    const SHARED_INFO: usize = 320;
    const PAGE: usize = 4096;
    /// The most data a stream skb keeps in its head (SKB_MAX_HEAD(0)); the rest goes in pages.
    pub const STREAM_MAX_HEAD: usize = PAGE - SHARED_INFO;
    /// The most data one stream skb holds: a head and 32 KiB of pages (UNIX_SKB_FRAGS_SZ).
    pub const STREAM_MAX: usize = STREAM_MAX_HEAD + 32768;
    /// The most data a datagram skb keeps in its head (SKB_MAX_ALLOC).
    const DGRAM_MAX_HEAD: usize = 4 * PAGE - SHARED_INFO;
    /// Pages a datagram skb may add (MAX_SKB_FRAGS).
    const MAX_FRAGS: usize = 17;

    /// What an skb whose head holds `head` bytes and whose pages hold `paged` bytes counts
    /// against its socket (its truesize): the head is a kmalloc of the data and the shared info,
    /// which rounds up to a power of two.
    fn truesize(head: usize, paged: usize) -> usize {
        (head.next_multiple_of(64) + SHARED_INFO).next_power_of_two() + SK_BUFF + paged
    }

    /// The truesize of one stream skb of `len` (at most STREAM_MAX) bytes, as
    /// unix_stream_sendmsg lays it out.
    pub fn stream(len: usize) -> usize {
        let paged = len
            .saturating_sub(STREAM_MAX_HEAD)
            .next_multiple_of(PAGE)
            .min(len);
        truesize(len - paged, paged)
    }

    /// The truesize of a datagram of `len` bytes, as unix_dgram_sendmsg lays it out.
    pub fn dgram(len: usize) -> usize {
        if len <= DGRAM_MAX_HEAD {
            return truesize(len, 0);
        }
        let paged = (len - DGRAM_MAX_HEAD)
            .min(MAX_FRAGS * PAGE)
            .next_multiple_of(PAGE);
        truesize(len - paged.min(len), paged)
    }
}

const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = RCV_SHUTDOWN | SEND_SHUTDOWN;

/// How a socket moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockType {
    /// SOCK_STREAM: a byte stream.
    Stream,
    /// SOCK_DGRAM: datagrams, connected or not.
    Dgram,
    /// SOCK_SEQPACKET: a connection that keeps message boundaries.
    SeqPacket,
}

impl SockType {
    /// socket(2)'s type without its flags. SOCK_RAW is SOCK_DGRAM for AF_UNIX; other types
    /// are ESOCKTNOSUPPORT (unix_create).
    pub fn from_raw(ty: u64) -> Result<SockType, Errno> {
        match ty {
            SOCK_STREAM => Ok(SockType::Stream),
            SOCK_DGRAM | SOCK_RAW => Ok(SockType::Dgram),
            SOCK_SEQPACKET => Ok(SockType::SeqPacket),
            _ => Err(Errno::ESOCKTNOSUPPORT),
        }
    }

    /// The SOCK_* value (SO_TYPE).
    pub fn raw(self) -> u64 {
        match self {
            SockType::Stream => SOCK_STREAM,
            SockType::Dgram => SOCK_DGRAM,
            SockType::SeqPacket => SOCK_SEQPACKET,
        }
    }
}

/// Where `sun_path` starts in `struct sockaddr_un`.
pub const SUN_PATH_OFFSET: usize = 2;
/// sizeof(struct sockaddr_un).
pub const SOCKADDR_UN_LEN: usize = 110;

/// A socket's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A path in the file system, without its NUL.
    Path(Vec<u8>),
    /// An abstract name: `sun_path` as given, starting with its NUL.
    Abstract(Vec<u8>),
}

impl Addr {
    /// Reads `struct sockaddr_un` bytes as bind, connect and sendto do: EINVAL unless the
    /// family is AF_UNIX and there is at least one byte of name (unix_validate_addr). A path
    /// ends at its first NUL (unix_mkname_bsd).
    pub fn parse(bytes: &[u8]) -> Result<Addr, Errno> {
        if bytes.len() <= SUN_PATH_OFFSET || bytes.len() > SOCKADDR_UN_LEN {
            return Err(Errno::EINVAL);
        }
        if family(bytes) != Some(AF_UNIX) {
            return Err(Errno::EINVAL);
        }
        let name = &bytes[SUN_PATH_OFFSET..];
        Ok(match name.iter().position(|&b| b == 0) {
            Some(0) => Addr::Abstract(name.to_vec()),
            Some(end) => Addr::Path(name[..end].to_vec()),
            None => Addr::Path(name.to_vec()),
        })
    }

    /// The `struct sockaddr_un` getsockname reports, as long as the name needs: a path with
    /// its NUL, an abstract name as it was bound.
    pub fn to_sockaddr(&self) -> Vec<u8> {
        let mut out = UNNAMED.to_vec();
        match self {
            Addr::Path(path) => {
                out.extend_from_slice(path);
                out.push(0);
            }
            Addr::Abstract(name) => out.extend_from_slice(name),
        }
        out
    }
}

/// The address of a socket with no name: just the family.
pub const UNNAMED: [u8; 2] = (AF_UNIX as u16).to_ne_bytes();

/// The address family of sockaddr bytes, if they hold one.
pub fn family(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [a, b, ..] => Some(u64::from(u16::from_ne_bytes([*a, *b]))),
        _ => None,
    }
}

/// What SCM_CREDENTIALS shows for a message that carries none: pid 0 and the overflow ids
/// (an invalid id as from_kuid_munged maps it).
pub const NO_CRED: Ucred = Ucred {
    pid: 0,
    uid: 65534,
    gid: 65534,
};

/// What SO_PEERCRED shows on a socket with no peer credentials: pid 0 and ids -1
/// (cred_to_ucred without credentials).
pub const NO_PEER_CRED: Ucred = Ucred {
    pid: 0,
    uid: u32::MAX,
    gid: u32::MAX,
};

/// Who makes a call: its process and ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

impl Caller {
    /// The task the calling Sentry thread runs: for read(2) and write(2) on a socket, which
    /// reach it through its file without the task.
    pub fn current() -> Caller {
        let Some(current) = crate::kernel::current() else {
            return Caller::from_cred(NO_CRED);
        };
        match current.tg.view().creds {
            Some(c) => Caller {
                pid: current.tg.pid,
                uid: c.uid,
                gid: c.gid,
                euid: c.euid,
                egid: c.egid,
            },
            None => Caller {
                pid: current.tg.pid,
                ..Caller::from_cred(NO_CRED)
            },
        }
    }

    fn from_cred(c: Ucred) -> Caller {
        Caller {
            pid: c.pid,
            uid: c.uid,
            gid: c.gid,
            euid: c.uid,
            egid: c.gid,
        }
    }

    /// What its messages carry (SCM_CREDENTIALS): the real ids.
    pub fn cred(&self) -> Ucred {
        Ucred {
            pid: self.pid,
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// What its peers see with SO_PEERCRED: the effective ids.
    fn peer_cred(&self) -> Ucred {
        Ucred {
            pid: self.pid,
            uid: self.euid,
            gid: self.egid,
        }
    }
}

/// Where the bytes of a send come from, taken piece by piece as the socket has room for them
/// (guest memory, or the buffer of a write(2)).
pub trait Source {
    /// Bytes left to take.
    fn remaining(&self) -> usize;
    /// Appends the next `n` bytes (at most `remaining`) to `out`.
    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), Errno>;
}

impl Source for &[u8] {
    fn remaining(&self) -> usize {
        self.len()
    }

    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), Errno> {
        let (head, tail) = self.split_at(n.min(self.len()));
        out.extend_from_slice(head);
        *self = tail;
        Ok(())
    }
}

/// Where received bytes go.
pub trait Sink {
    /// Bytes it can still take.
    fn room(&self) -> usize;
    /// Appends `data` (at most `room` bytes).
    fn put(&mut self, data: &[u8]) -> Result<(), Errno>;
}

/// A [`Sink`] filling a buffer from its start.
pub struct BufSink<'a> {
    buf: &'a mut [u8],
    filled: usize,
}

impl<'a> BufSink<'a> {
    pub fn new(buf: &'a mut [u8]) -> BufSink<'a> {
        BufSink { buf, filled: 0 }
    }
}

impl Sink for BufSink<'_> {
    fn room(&self) -> usize {
        self.buf.len() - self.filled
    }

    fn put(&mut self, data: &[u8]) -> Result<(), Errno> {
        let to = self
            .buf
            .get_mut(self.filled..self.filled + data.len())
            .ok_or(Errno::EFAULT)?;
        to.copy_from_slice(data);
        self.filled += data.len();
        Ok(())
    }
}

/// What travels beside the bytes of a send (sendmsg's control messages).
#[derive(Debug, Default)]
pub struct Ancillary {
    /// SCM_RIGHTS: open files for the receiver.
    pub rights: Vec<Arc<OpenFile>>,
    /// SCM_CREDENTIALS given explicitly (checked by the caller); the sender's are used
    /// otherwise when credentials are passed.
    pub cred: Option<Ucred>,
}

/// What a receive got.
#[derive(Debug, Default)]
pub struct Received {
    /// The call's result: the bytes copied, or with MSG_TRUNC on a datagram socket the whole
    /// datagram's length.
    pub len: usize,
    /// The datagram did not fit (MSG_TRUNC in msg_flags).
    pub truncated: bool,
    /// The sender's name; None for an unnamed sender (the address length is then 0).
    pub from: Option<Addr>,
    /// The sender's credentials, when the receiver asked for them (SO_PASSCRED).
    pub cred: Option<Ucred>,
    /// The files the message carried (SCM_RIGHTS), for the receiver's descriptor table.
    pub rights: Vec<Arc<OpenFile>>,
}

/// The key a bound socket is found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NameKey {
    /// The inode of the socket file that `bind` made.
    Inode(InodeKey),
    /// An abstract name. Linux hashes the type in, so sockets of different types may share
    /// one name and only find their own kind.
    Abstract(SockType, Vec<u8>),
}

/// The bound sockets of a sandbox (Linux keeps these tables per network namespace). Entries
/// are weak: a socket leaves the table when it closes.
#[derive(Default)]
pub struct Names {
    map: Mutex<HashMap<NameKey, Weak<Endpoint>>>,
    /// Where autobind tries its next name.
    next_auto: AtomicU32,
}

impl Names {
    fn map(&self) -> MutexGuard<'_, HashMap<NameKey, Weak<Endpoint>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `key` to `ep`; EADDRINUSE if a live socket has it.
    fn insert(&self, key: NameKey, ep: &Arc<Endpoint>) -> Result<(), Errno> {
        let mut map = self.map();
        if map.get(&key).is_some_and(|w| w.strong_count() > 0) {
            return Err(Errno::EADDRINUSE);
        }
        // Sweeping at each power of two keeps the map within twice the live entries.
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        map.insert(key, Arc::downgrade(ep));
        Ok(())
    }

    /// Unbinds `key` if `ep` has it.
    fn remove(&self, key: &NameKey, ep: &Endpoint) {
        let mut map = self.map();
        if map.get(key).is_some_and(|w| std::ptr::eq(w.as_ptr(), ep)) {
            map.remove(key);
        }
    }

    fn find(&self, key: &NameKey) -> Option<Arc<Endpoint>> {
        self.map().get(key).and_then(Weak::upgrade)
    }

    /// The socket bound to the socket file whose inode is `key`, for a connect or send from a
    /// socket of type `ty`: ECONNREFUSED if none is, EPROTOTYPE if it is of another type
    /// (unix_find_bsd).
    pub fn find_path(&self, key: InodeKey, ty: SockType) -> Result<Arc<Endpoint>, Errno> {
        let ep = self.find(&NameKey::Inode(key)).ok_or(Errno::ECONNREFUSED)?;
        if ep.ty != ty {
            return Err(Errno::EPROTOTYPE);
        }
        Ok(ep)
    }

    /// The socket of type `ty` bound to the abstract name `name`: ECONNREFUSED if none.
    pub fn find_abstract(&self, name: &[u8], ty: SockType) -> Result<Arc<Endpoint>, Errno> {
        self.find(&NameKey::Abstract(ty, name.to_vec()))
            .ok_or(Errno::ECONNREFUSED)
    }
}

/// Data in a receive queue: a datagram, a packet, or a piece of a stream.
struct Message {
    data: Vec<u8>,
    /// How much of `data` was read: a stream read may take part of a message.
    read: usize,
    /// The sender's name when it sent.
    from: Option<Addr>,
    /// The sender's credentials, when they were to be passed (unix_maybe_add_creds).
    cred: Option<Ucred>,
    /// Files passed with it (SCM_RIGHTS); they go to the first read that takes a byte.
    rights: Vec<Arc<OpenFile>>,
    /// What it counts against its sender's send buffer (the skb's truesize).
    charge: usize,
    sender: Weak<Endpoint>,
}

impl Message {
    /// A message from `sender`, counted against its send buffer until it is dropped.
    fn new(sender: &Arc<Endpoint>, data: Vec<u8>, charge: usize) -> Message {
        sender.wmem.fetch_add(charge, Ordering::SeqCst);
        Message {
            data,
            read: 0,
            from: None,
            cred: None,
            rights: Vec::new(),
            charge,
            sender: Arc::downgrade(sender),
        }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.read
    }

    /// Frees its room in the sender's buffer (sock_wfree): it was read, or is thrown away.
    fn uncharge(&mut self) {
        let charge = std::mem::take(&mut self.charge);
        if charge > 0 {
            if let Some(sender) = self.sender.upgrade() {
                sender.wmem.fetch_sub(charge, Ordering::SeqCst);
                sender.queue.notify();
            }
        }
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        self.uncharge();
    }
}

/// Where a socket is in its life (Linux's sk_state and unix_peer).
enum Conn {
    /// Not connected (TCP_CLOSE).
    Unconnected,
    /// Listening for connections (TCP_LISTEN).
    Listening,
    /// Connected to the peer (TCP_ESTABLISHED). A stream or packet socket stays connected to
    /// its peer after the peer closes (it is shut down instead), as in Linux.
    Connected(Arc<Endpoint>),
}

/// An endpoint's state, guarded by `Endpoint::state`.
struct State {
    conn: Conn,
    /// What was sent to this socket and not read yet.
    recv: VecDeque<Message>,
    /// Connections made to this listening socket, not accepted yet.
    pending: VecDeque<Arc<Endpoint>>,
    /// The queue is full when it holds more than this: pending connections (the listen
    /// backlog), or datagrams from senders this socket is not connected to.
    max_queue: usize,
    /// The name it was bound to (or, accepted, its listener's).
    addr: Option<Addr>,
    /// Its entry in the name table.
    bound: Option<NameKey>,
    /// RCV_SHUTDOWN and SEND_SHUTDOWN.
    shutdown: u8,
    /// The pending error (sk_err) that SO_ERROR and the next call report once.
    error: Option<Errno>,
    passcred: bool,
    reuseaddr: bool,
    sndbuf: usize,
    rcvbuf: usize,
    /// SO_RCVTIMEO and SO_SNDTIMEO: None waits forever, zero never waits.
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// SO_PEERCRED: the peer's process when the connection was made, or this socket's own
    /// when it listens (what connecting clients get).
    peer_cred: Option<Ucred>,
    /// Closed (SOCK_DEAD): nothing is queued to it any more.
    dead: bool,
    /// Datagram sockets waiting for room in this one's receive queue, to be woken when a
    /// datagram is read (Linux's peer_wait relay).
    write_waiters: Vec<Weak<Endpoint>>,
}

impl State {
    fn new() -> State {
        State {
            conn: Conn::Unconnected,
            recv: VecDeque::new(),
            pending: VecDeque::new(),
            max_queue: MAX_DGRAM_QLEN,
            addr: None,
            bound: None,
            shutdown: 0,
            error: None,
            passcred: false,
            reuseaddr: false,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            rcvtimeo: None,
            sndtimeo: None,
            peer_cred: None,
            dead: false,
            write_waiters: Vec::new(),
        }
    }

    fn peer(&self) -> Option<&Arc<Endpoint>> {
        match &self.conn {
            Conn::Connected(peer) => Some(peer),
            _ => None,
        }
    }

    /// Whether this socket is connected to `ep`.
    fn is_peer(&self, ep: &Endpoint) -> bool {
        self.peer().is_some_and(|p| std::ptr::eq(p.as_ref(), ep))
    }

    /// Whether `ep` may send to this socket: it is connected to nobody or to `ep`
    /// (unix_may_send).
    fn accepts_from(&self, ep: &Endpoint) -> bool {
        self.peer().is_none() || self.is_peer(ep)
    }

    fn add_write_waiter(&mut self, ep: &Arc<Endpoint>) {
        let weak = Arc::downgrade(ep);
        if !self.write_waiters.iter().any(|w| w.ptr_eq(&weak)) {
            self.write_waiters.push(weak);
        }
    }
}

/// Wakes the sockets that waited for room in another's queue.
fn wake(waiters: Vec<Weak<Endpoint>>) {
    for ep in waiters.iter().filter_map(Weak::upgrade) {
        ep.queue.notify();
    }
}

/// How a call may wait: not at all (MSG_DONTWAIT, O_NONBLOCK, or a zero timeout), or until a
/// deadline (SO_RCVTIMEO, SO_SNDTIMEO) or forever.
fn wait_mode(nonblock: bool, timeout: Option<Duration>) -> (bool, Option<Instant>) {
    match timeout {
        _ if nonblock => (true, None),
        Some(d) if d.is_zero() => (true, None),
        Some(d) => (false, Instant::now().checked_add(d)),
        None => (false, None),
    }
}

/// The result of a wait: what `check` returned; EAGAIN when the deadline passed.
fn waited<R>(r: Result<Option<Result<R, Errno>>, Errno>) -> Result<R, Errno> {
    r.and_then(|r| r.unwrap_or(Err(Errno::EAGAIN)))
}

/// One socket (Linux's struct unix_sock). See the module documentation.
pub struct Endpoint {
    ty: SockType,
    names: Arc<Names>,
    state: Mutex<State>,
    /// Notified after every change of `state` or `wmem`.
    queue: WaitQueue,
    /// What this socket's unread messages count against its send buffer (sk_wmem_alloc).
    wmem: AtomicUsize,
}

/// Locks two distinct endpoints in address order (unix_state_double_lock), so that two
/// callers locking the same pair never wait for each other.
fn lock_two<'a>(
    a: &'a Endpoint,
    b: &'a Endpoint,
) -> (MutexGuard<'a, State>, MutexGuard<'a, State>) {
    if (a as *const Endpoint) < (b as *const Endpoint) {
        let first = a.lock();
        (first, b.lock())
    } else {
        let second = b.lock();
        (a.lock(), second)
    }
}

impl Endpoint {
    fn with_state(ty: SockType, names: Arc<Names>, state: State) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            ty,
            names,
            state: Mutex::new(state),
            queue: WaitQueue::default(),
            wmem: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bind(self: &Arc<Self>, addr: Addr, key: NameKey) -> Result<(), Errno> {
        let mut s = self.lock();
        if s.addr.is_some() {
            return Err(Errno::EINVAL);
        }
        self.names.insert(key.clone(), self)?;
        s.addr = Some(addr);
        s.bound = Some(key);
        Ok(())
    }

    /// Binds an unbound socket to a free abstract name "\0XXXXX" of five hex digits
    /// (unix_autobind); ENOSPC when all are taken. A bound socket keeps its name.
    fn autobind(self: &Arc<Self>) -> Result<(), Errno> {
        const NAMES: u32 = 1 << 20;
        let mut s = self.lock();
        if s.addr.is_some() {
            return Ok(());
        }
        for _ in 0..NAMES {
            let n = self.names.next_auto.fetch_add(1, Ordering::Relaxed) % NAMES;
            let name = format!("\0{n:05x}").into_bytes();
            match self
                .names
                .insert(NameKey::Abstract(self.ty, name.clone()), self)
            {
                Ok(()) => {
                    s.bound = Some(NameKey::Abstract(self.ty, name.clone()));
                    s.addr = Some(Addr::Abstract(name));
                    return Ok(());
                }
                Err(_) => continue,
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Autobinds a socket that passes credentials before it connects or sends: its peer
    /// must be able to name it (unix_may_passcred in connect and sendmsg).
    fn autobind_if_passcred(self: &Arc<Self>) -> Result<(), Errno> {
        let needed = {
            let s = self.lock();
            s.passcred && s.addr.is_none()
        };
        if needed {
            self.autobind()?;
        }
        Ok(())
    }

    fn listen(&self, backlog: i32, caller: &Caller) -> Result<(), Errno> {
        if self.ty == SockType::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.lock();
        if s.addr.is_none() {
            return Err(Errno::EINVAL);
        }
        if !matches!(s.conn, Conn::Unconnected | Conn::Listening) {
            return Err(Errno::EINVAL);
        }
        // listen(2) takes the backlog as unsigned and caps it at somaxconn.
        s.max_queue = (backlog as u32).min(SOMAXCONN) as usize;
        s.conn = Conn::Listening;
        // Clients that connect get the listener's credentials (unix_listen).
        s.peer_cred = Some(caller.peer_cred());
        drop(s);
        self.queue.notify();
        Ok(())
    }

    fn accept(&self, nonblock: bool) -> Result<Arc<Endpoint>, Errno> {
        if self.ty == SockType::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        let timeout = {
            let s = self.lock();
            if !matches!(s.conn, Conn::Listening) {
                return Err(Errno::EINVAL);
            }
            s.rcvtimeo
        };
        let (nonblock, deadline) = wait_mode(nonblock, timeout);
        let accepted = waited(wait_until_deadline(
            &self.queue,
            &self.state,
            deadline,
            |s| {
                if let Some(e) = s.error.take() {
                    return Some(Err(e));
                }
                if let Some(ep) = s.pending.pop_front() {
                    return Some(Ok(ep));
                }
                // A listener shut down for reading accepts nothing more (unix_accept).
                if s.shutdown & RCV_SHUTDOWN != 0 || !matches!(s.conn, Conn::Listening) {
                    return Some(Err(Errno::EINVAL));
                }
                nonblock.then_some(Err(Errno::EAGAIN))
            },
        ))?;
        // Room in the backlog: connectors waiting for it may go on.
        self.queue.notify();
        Ok(accepted)
    }

    /// connect(2) of a stream or packet socket to the listening socket `target`
    /// (unix_stream_connect): the server's end is made now and queued for accept.
    fn connect_stream(
        self: &Arc<Self>,
        target: &Arc<Endpoint>,
        caller: &Caller,
        nonblock: bool,
    ) -> Result<(), Errno> {
        self.autobind_if_passcred()?;
        let timeout = self.lock().sndtimeo;
        let (nonblock, deadline) = wait_mode(nonblock, timeout);
        if Arc::ptr_eq(target, self) {
            // Only a listener finds itself, and a listener cannot connect.
            let s = self.lock();
            let listening = matches!(s.conn, Conn::Listening) && s.shutdown & RCV_SHUTDOWN == 0;
            return Err(if listening {
                Errno::EINVAL
            } else {
                Errno::ECONNREFUSED
            });
        }
        loop {
            let (mut ts, mut ss) = lock_two(target, self);
            if ts.dead || !matches!(ts.conn, Conn::Listening) || ts.shutdown & RCV_SHUTDOWN != 0 {
                return Err(Errno::ECONNREFUSED);
            }
            if ts.pending.len() > ts.max_queue {
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                drop((ts, ss));
                waited(wait_until_deadline(
                    &target.queue,
                    &target.state,
                    deadline,
                    |ts| {
                        let changed = ts.dead || !matches!(ts.conn, Conn::Listening);
                        (changed || ts.pending.len() <= ts.max_queue).then_some(Ok(()))
                    },
                ))?;
                continue;
            }
            match ss.conn {
                Conn::Unconnected => {}
                Conn::Connected(_) => return Err(Errno::EISCONN),
                Conn::Listening => return Err(Errno::EINVAL),
            }
            let mut embryo = State::new();
            embryo.conn = Conn::Connected(self.clone());
            embryo.peer_cred = Some(caller.peer_cred());
            // The accepted socket has its listener's name and SO_PASSCRED.
            embryo.addr = ts.addr.clone();
            embryo.passcred = ts.passcred;
            let embryo = Endpoint::with_state(self.ty, self.names.clone(), embryo);
            ss.conn = Conn::Connected(embryo.clone());
            ss.peer_cred = ts.peer_cred;
            ts.pending.push_back(embryo);
            drop((ts, ss));
            target.queue.notify();
            self.queue.notify();
            return Ok(());
        }
    }

    /// connect(2) of a datagram socket: sets (or with None, clears) the default peer, which
    /// must accept datagrams from it (unix_dgram_connect). Datagrams queued from a previous
    /// peer are dropped.
    fn connect_dgram(self: &Arc<Self>, target: Option<&Arc<Endpoint>>) -> Result<(), Errno> {
        let old = match target {
            Some(t) if Arc::ptr_eq(t, self) => {
                let mut s = self.lock();
                if !s.accepts_from(self) {
                    return Err(Errno::EPERM);
                }
                std::mem::replace(&mut s.conn, Conn::Connected(self.clone()))
            }
            Some(t) => {
                let (ts, mut ss) = lock_two(t, self);
                if ts.dead {
                    return Err(Errno::ECONNREFUSED);
                }
                if !ts.accepts_from(self) {
                    return Err(Errno::EPERM);
                }
                std::mem::replace(&mut ss.conn, Conn::Connected(t.clone()))
            }
            None => std::mem::replace(&mut self.lock().conn, Conn::Unconnected),
        };
        if let Conn::Connected(old) = old {
            if !target.is_some_and(|t| Arc::ptr_eq(t, &old)) {
                self.disconnected_from(&old);
            }
        }
        self.queue.notify();
        Ok(())
    }

    /// A datagram socket left its peer `old` (unix_dgram_disconnected): what it had queued
    /// is dropped, and if that was a two-way link, `old` learns of it (ECONNRESET).
    fn disconnected_from(self: &Arc<Self>, old: &Arc<Endpoint>) {
        let dropped = std::mem::take(&mut self.lock().recv);
        if dropped.is_empty() {
            return;
        }
        if !Arc::ptr_eq(old, self) {
            let mut os = old.lock();
            if !os.dead && os.is_peer(self) {
                os.error = Some(Errno::ECONNRESET);
            }
            drop(os);
            old.queue.notify();
        }
        drop(dropped);
    }

    fn shutdown(&self, how: u64) -> Result<(), Errno> {
        let mode = match how {
            SHUT_RD => RCV_SHUTDOWN,
            SHUT_WR => SEND_SHUTDOWN,
            SHUT_RDWR => SHUTDOWN_MASK,
            _ => return Err(Errno::EINVAL),
        };
        let (peer, waiters) = {
            let mut s = self.lock();
            s.shutdown |= mode;
            (s.peer().cloned(), std::mem::take(&mut s.write_waiters))
        };
        self.queue.notify();
        wake(waiters);
        // A connection's other end sees the mirror image: our SHUT_WR is its end of file.
        if let Some(peer) = peer.filter(|_| self.ty != SockType::Dgram) {
            let mirrored = ((mode & RCV_SHUTDOWN) << 1) | ((mode & SEND_SHUTDOWN) >> 1);
            let waiters = {
                let mut ps = peer.lock();
                ps.shutdown |= mirrored;
                std::mem::take(&mut ps.write_waiters)
            };
            peer.queue.notify();
            wake(waiters);
        }
        Ok(())
    }

    /// Closes the socket (unix_release_sock): it leaves the name table, its peer of a
    /// connection is shut down (with ECONNRESET if this end had unread data or was never
    /// accepted), unaccepted connections are closed, and what was queued is dropped.
    fn release(self: &Arc<Self>, embryo: bool) {
        let (conn, recv, pending, bound, waiters) = {
            let mut s = self.lock();
            s.dead = true;
            s.shutdown = SHUTDOWN_MASK;
            (
                std::mem::replace(&mut s.conn, Conn::Unconnected),
                std::mem::take(&mut s.recv),
                std::mem::take(&mut s.pending),
                s.bound.take(),
                std::mem::take(&mut s.write_waiters),
            )
        };
        if let Some(key) = bound {
            self.names.remove(&key, self);
        }
        self.queue.notify();
        wake(waiters);
        if let Conn::Connected(peer) = conn {
            if self.ty != SockType::Dgram && !Arc::ptr_eq(&peer, self) {
                let waiters = {
                    let mut ps = peer.lock();
                    ps.shutdown = SHUTDOWN_MASK;
                    if !recv.is_empty() || embryo {
                        ps.error = Some(Errno::ECONNRESET);
                    }
                    std::mem::take(&mut ps.write_waiters)
                };
                peer.queue.notify();
                wake(waiters);
            }
        }
        for ep in pending {
            ep.release(true);
        }
        drop(recv);
    }

    /// Waits until this socket's sent-but-unread messages leave room in its send buffer
    /// (sock_alloc_send_pskb); returns the buffer's size.
    fn wait_for_room(&self, nonblock: bool, deadline: Option<Instant>) -> Result<usize, Errno> {
        waited(wait_until_deadline(
            &self.queue,
            &self.state,
            deadline,
            |s| {
                if let Some(e) = s.error.take() {
                    return Some(Err(e));
                }
                if s.shutdown & SEND_SHUTDOWN != 0 {
                    return Some(Err(Errno::EPIPE));
                }
                if self.wmem.load(Ordering::SeqCst) < s.sndbuf {
                    return Some(Ok(s.sndbuf));
                }
                nonblock.then_some(Err(Errno::EAGAIN))
            },
        ))
    }

    /// The credentials a message to a receiver with SO_PASSCRED `receiver_passcred` carries:
    /// the explicit ones, or the sender's when either side passes credentials.
    fn message_cred(
        &self,
        explicit: Option<Ucred>,
        sender_passcred: bool,
        receiver_passcred: bool,
        caller: &mut Option<Caller>,
    ) -> Option<Ucred> {
        explicit.or_else(|| {
            (sender_passcred || receiver_passcred)
                .then(|| caller.get_or_insert_with(Caller::current).cred())
        })
    }

    fn send(
        self: &Arc<Self>,
        to: Option<&Arc<Endpoint>>,
        src: &mut dyn Source,
        anc: Ancillary,
        flags: u64,
        caller: Option<&Caller>,
    ) -> Result<usize, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut caller = caller.copied();
        match self.ty {
            SockType::Stream => self.send_stream(src, anc, flags, &mut caller),
            SockType::Dgram => self.send_dgram(to, src, anc, flags, &mut caller),
            SockType::SeqPacket => {
                // unix_seqpacket_sendmsg: a pending error first, then the connection; any
                // address is ignored.
                {
                    let mut s = self.lock();
                    if let Some(e) = s.error.take() {
                        return Err(e);
                    }
                    if s.peer().is_none() {
                        return Err(Errno::ENOTCONN);
                    }
                }
                self.send_dgram(None, src, anc, flags, &mut caller)
            }
        }
    }

    /// unix_stream_sendmsg: the bytes go to the peer in pieces of at most half the send
    /// buffer, each waiting for room; the files go with the first. What was sent before an
    /// error is the result.
    fn send_stream(
        self: &Arc<Self>,
        src: &mut dyn Source,
        mut anc: Ancillary,
        flags: u64,
        caller: &mut Option<Caller>,
    ) -> Result<usize, Errno> {
        let (peer, timeout, passcred, from) = {
            let s = self.lock();
            let peer = s.peer().cloned().ok_or(Errno::ENOTCONN)?;
            if s.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            (peer, s.sndtimeo, s.passcred, s.addr.clone())
        };
        let (nonblock, deadline) = wait_mode(flags & MSG_DONTWAIT != 0, timeout);
        let partial = |sent: usize, e: Errno| if sent > 0 { Ok(sent) } else { Err(e) };
        let total = src.remaining();
        let mut sent = 0;
        while sent < total {
            let sndbuf = match self.wait_for_room(nonblock, deadline) {
                Ok(sndbuf) => sndbuf,
                Err(e) => return partial(sent, e),
            };
            let size = (total - sent).min(sndbuf / 2 - 64).min(skb::STREAM_MAX);
            let mut data = Vec::with_capacity(size);
            if let Err(e) = src.take(size, &mut data) {
                return partial(sent, e);
            }
            let mut msg = Message::new(self, data, skb::stream(size));
            msg.rights = std::mem::take(&mut anc.rights);
            let mut ps = peer.lock();
            if ps.dead || ps.shutdown & RCV_SHUTDOWN != 0 {
                drop(ps);
                drop(msg);
                return partial(sent, Errno::EPIPE);
            }
            msg.from = from.clone();
            msg.cred = self.message_cred(anc.cred, passcred, ps.passcred, caller);
            ps.recv.push_back(msg);
            drop(ps);
            peer.queue.notify();
            sent += size;
        }
        Ok(sent)
    }

    /// unix_dgram_sendmsg (and, connected, packets): one message to `to` or the peer.
    fn send_dgram(
        self: &Arc<Self>,
        to: Option<&Arc<Endpoint>>,
        src: &mut dyn Source,
        anc: Ancillary,
        flags: u64,
        caller: &mut Option<Caller>,
    ) -> Result<usize, Errno> {
        let len = src.remaining();
        self.autobind_if_passcred()?;
        let (sndbuf, timeout) = {
            let s = self.lock();
            (s.sndbuf, s.sndtimeo)
        };
        if len > sndbuf - 32 {
            return Err(Errno::EMSGSIZE);
        }
        let (nonblock, deadline) = wait_mode(flags & MSG_DONTWAIT != 0, timeout);
        self.wait_for_room(nonblock, deadline)?;
        let mut data = Vec::with_capacity(len);
        src.take(len, &mut data)?;
        let (target, from, passcred) = {
            let s = self.lock();
            let target = match to {
                Some(t) => t.clone(),
                None => s.peer().cloned().ok_or(Errno::ENOTCONN)?,
            };
            (target, s.addr.clone(), s.passcred)
        };
        let mut msg = Message::new(self, data, skb::dgram(len));
        msg.from = from;
        msg.rights = anc.rights;
        loop {
            let mut ts = target.lock();
            if !ts.accepts_from(self) {
                return Err(Errno::EPERM);
            }
            if ts.dead {
                drop(ts);
                return Err(self.found_dead(&target, to.is_some()));
            }
            if ts.shutdown & RCV_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            // A receiver that is not connected back takes a bounded number of datagrams.
            let bounded = !Arc::ptr_eq(&target, self) && !ts.is_peer(self);
            if bounded && ts.recv.len() > ts.max_queue {
                if nonblock {
                    ts.add_write_waiter(self);
                    return Err(Errno::EAGAIN);
                }
                drop(ts);
                waited(wait_until_deadline(
                    &target.queue,
                    &target.state,
                    deadline,
                    |ts| {
                        let gone = ts.dead || ts.shutdown & RCV_SHUTDOWN != 0;
                        (gone || ts.recv.len() <= ts.max_queue).then_some(Ok(()))
                    },
                ))?;
                continue;
            }
            msg.cred = self.message_cred(anc.cred, passcred, ts.passcred, caller);
            ts.recv.push_back(msg);
            drop(ts);
            target.queue.notify();
            return Ok(len);
        }
    }

    /// What a datagram send to the closed socket `target` fails with: a packet socket's
    /// peer is gone (EPIPE); a datagram socket connected to it is disconnected
    /// (ECONNREFUSED); a send to it by name finds nobody (ECONNREFUSED), a send to a peer
    /// that changed meanwhile ECONNRESET.
    fn found_dead(self: &Arc<Self>, target: &Arc<Endpoint>, named: bool) -> Errno {
        if self.ty == SockType::SeqPacket {
            return Errno::EPIPE;
        }
        let mut s = self.lock();
        if s.is_peer(target) {
            s.conn = Conn::Unconnected;
            drop(s);
            self.disconnected_from(target);
            self.queue.notify();
            return Errno::ECONNREFUSED;
        }
        if named {
            Errno::ECONNREFUSED
        } else {
            Errno::ECONNRESET
        }
    }

    fn recv(self: &Arc<Self>, sink: &mut dyn Sink, flags: u64) -> Result<Received, Errno> {
        match self.ty {
            SockType::Stream => self.recv_stream(sink, flags),
            SockType::Dgram => self.recv_dgram(sink, flags),
            SockType::SeqPacket => {
                if self.lock().peer().is_none() {
                    return Err(Errno::ENOTCONN);
                }
                self.recv_dgram(sink, flags)
            }
        }
    }

    /// unix_stream_read_generic: reads across messages until the sink is full or, without
    /// MSG_WAITALL, until something was read and nothing more is queued. A read stops after
    /// a message that carried files, and with SO_PASSCRED before a message from another
    /// writer. MSG_PEEK leaves everything queued.
    fn recv_stream(&self, sink: &mut dyn Sink, flags: u64) -> Result<Received, Errno> {
        let timeout = {
            let s = self.lock();
            if s.peer().is_none() {
                return Err(Errno::EINVAL);
            }
            s.rcvtimeo
        };
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let peek = flags & MSG_PEEK != 0;
        let (nonblock, deadline) = wait_mode(flags & MSG_DONTWAIT != 0, timeout);
        // sock_rcvlowat: everything with MSG_WAITALL, else one byte.
        let target = if flags & MSG_WAITALL != 0 {
            sink.room().max(1)
        } else {
            1
        };
        let mut out = Received::default();
        let mut copied = 0usize;
        let mut first_cred: Option<Option<Ucred>> = None;
        let mut named = false;
        let mut passcred = false;
        let mut read_through: Vec<Message> = Vec::new();
        let result = wait_until_deadline(&self.queue, &self.state, deadline, |s| {
            passcred = s.passcred;
            // What a peek already copied is skipped when it goes on after a wait.
            let mut skip = if peek { copied } else { 0 };
            let mut i = 0;
            loop {
                let Some(msg) = s.recv.get_mut(i) else {
                    if copied >= target {
                        return Some(Ok(()));
                    }
                    if let Some(e) = s.error.take() {
                        return Some(Err(e));
                    }
                    if s.shutdown & RCV_SHUTDOWN != 0 {
                        return Some(Ok(()));
                    }
                    return nonblock.then_some(Err(Errno::EAGAIN));
                };
                if skip >= msg.remaining() {
                    skip -= msg.remaining();
                    i += 1;
                    continue;
                }
                if passcred {
                    match first_cred {
                        None => first_cred = Some(msg.cred),
                        Some(cred) if cred != msg.cred => return Some(Ok(())),
                        Some(_) => {}
                    }
                }
                if !named {
                    out.from = msg.from.clone();
                    named = true;
                }
                let start = msg.read + skip;
                let chunk = (msg.data.len() - start).min(sink.room());
                if let Err(e) = sink.put(&msg.data[start..start + chunk]) {
                    return Some(if copied == 0 { Err(e) } else { Ok(()) });
                }
                copied += chunk;
                if peek {
                    if !msg.rights.is_empty() {
                        out.rights = msg.rights.clone();
                        return Some(Ok(()));
                    }
                    skip = 0;
                    i += 1;
                    if sink.room() == 0 {
                        return Some(Ok(()));
                    }
                    continue;
                }
                msg.read += chunk;
                if !msg.rights.is_empty() {
                    out.rights = std::mem::take(&mut msg.rights);
                }
                if msg.remaining() > 0 {
                    return Some(Ok(()));
                }
                // Read through: its writer may go on at once, even while this read waits
                // for more (MSG_WAITALL); it is dropped (with no files left) after the lock.
                if let Some(mut done) = s.recv.pop_front() {
                    done.uncharge();
                    read_through.push(done);
                }
                if !out.rights.is_empty() || sink.room() == 0 {
                    return Some(Ok(()));
                }
            }
        });
        drop(read_through);
        match waited(result) {
            Ok(()) => {}
            Err(e) if copied == 0 => return Err(e),
            Err(_) => {}
        }
        out.len = copied;
        if passcred {
            out.cred = Some(first_cred.flatten().unwrap_or(NO_CRED));
        }
        Ok(out)
    }

    /// unix_dgram_recvmsg: one datagram or packet, cut to the sink (MSG_TRUNC says so). A
    /// pending error comes first; end of file is 0 for a socket shut down for reading
    /// (without waiting, only a packet socket; a datagram socket says EAGAIN).
    fn recv_dgram(&self, sink: &mut dyn Sink, flags: u64) -> Result<Received, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let peek = flags & MSG_PEEK != 0;
        let timeout = self.lock().rcvtimeo;
        let (nonblock, deadline) = wait_mode(flags & MSG_DONTWAIT != 0, timeout);
        let mut out = Received::default();
        let mut taken: Option<Message> = None;
        let mut waiters = Vec::new();
        let result = wait_until_deadline(&self.queue, &self.state, deadline, |s| {
            if let Some(e) = s.error.take() {
                return Some(Err(e));
            }
            let passcred = s.passcred;
            if let Some(msg) = s.recv.front_mut() {
                let n = msg.data.len().min(sink.room());
                let copied = sink.put(&msg.data[..n]);
                out.truncated = n < msg.data.len();
                out.len = if flags & MSG_TRUNC != 0 {
                    msg.data.len()
                } else {
                    n
                };
                out.from = msg.from.clone();
                out.cred = passcred.then(|| msg.cred.unwrap_or(NO_CRED));
                if peek {
                    out.rights = msg.rights.clone();
                } else {
                    out.rights = std::mem::take(&mut msg.rights);
                    taken = s.recv.pop_front();
                    waiters = std::mem::take(&mut s.write_waiters);
                }
                return Some(copied);
            }
            if s.shutdown & RCV_SHUTDOWN != 0 && (!nonblock || self.ty == SockType::SeqPacket) {
                return Some(Ok(()));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        });
        if taken.is_some() {
            drop(taken);
            // Room in the queue for senders that wait for it.
            self.queue.notify();
            wake(waiters);
        }
        waited(result)?;
        Ok(out)
    }

    /// poll(2) (unix_poll, unix_dgram_poll).
    fn readiness(self: &Arc<Self>) -> u16 {
        let (mut mask, peer) = {
            let s = self.lock();
            let mut mask = 0;
            if s.error.is_some() {
                mask |= POLLERR;
            }
            if s.shutdown == SHUTDOWN_MASK {
                mask |= POLLHUP;
            }
            if s.shutdown & RCV_SHUTDOWN != 0 {
                mask |= POLLRDHUP | POLLIN | POLLRDNORM;
            }
            if !s.recv.is_empty() || !s.pending.is_empty() {
                mask |= POLLIN | POLLRDNORM;
            }
            // A connection-based socket that is neither connected nor listening is hung up.
            if self.ty != SockType::Dgram && matches!(s.conn, Conn::Unconnected) {
                mask |= POLLHUP;
            }
            // Writable while at most a quarter of the send buffer is in use (unix_writable).
            let listening = matches!(s.conn, Conn::Listening);
            if !listening && self.wmem.load(Ordering::SeqCst) * 4 <= s.sndbuf {
                mask |= POLLOUT | POLLWRNORM | POLLWRBAND;
            }
            let peer = match s.peer() {
                Some(p) if self.ty == SockType::Dgram && !Arc::ptr_eq(p, self) => Some(p.clone()),
                _ => None,
            };
            (mask, peer)
        };
        // A datagram socket whose peer is not connected back waits for room in the peer's
        // queue, and is woken when it is read.
        if let Some(peer) = peer.filter(|_| mask & POLLOUT != 0) {
            let mut ps = peer.lock();
            if !ps.dead && !ps.is_peer(self) && ps.recv.len() > ps.max_queue {
                ps.add_write_waiter(self);
                mask &= !(POLLOUT | POLLWRNORM | POLLWRBAND);
            }
        }
        mask
    }

    fn getsockopt(&self, name: u64) -> Result<Vec<u8>, Errno> {
        let mut s = self.lock();
        let int = |v: i64| (v as i32).to_ne_bytes().to_vec();
        Ok(match name {
            SO_TYPE => int(self.ty.raw() as i64),
            SO_DOMAIN => int(AF_UNIX as i64),
            SO_PROTOCOL => int(0),
            SO_ERROR => int(s.error.take().map_or(0, |e| e as i64)),
            SO_PASSCRED => int(i64::from(s.passcred)),
            SO_REUSEADDR => int(i64::from(s.reuseaddr)),
            SO_SNDBUF => int(s.sndbuf as i64),
            SO_RCVBUF => int(s.rcvbuf as i64),
            SO_ACCEPTCONN => int(i64::from(matches!(s.conn, Conn::Listening))),
            SO_PEERCRED => s.peer_cred.unwrap_or(NO_PEER_CRED).as_bytes().to_vec(),
            SO_RCVTIMEO => timeval_of(s.rcvtimeo).as_bytes().to_vec(),
            SO_SNDTIMEO => timeval_of(s.sndtimeo).as_bytes().to_vec(),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// setsockopt(2) at SOL_SOCKET (sk_setsockopt): every option takes at least an int.
    fn setsockopt(&self, name: u64, val: &[u8]) -> Result<(), Errno> {
        let int = match val.get(..4) {
            Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            None => return Err(Errno::EINVAL),
        };
        let mut s = self.lock();
        match name {
            // The value asked for is capped at the maximum and doubled for the kernel's
            // bookkeeping (socket(7)).
            SO_SNDBUF => s.sndbuf = ((int as u32).min(BUF_MAX) as usize * 2).max(SNDBUF_MIN),
            SO_RCVBUF => s.rcvbuf = ((int as u32).min(BUF_MAX) as usize * 2).max(RCVBUF_MIN),
            SO_PASSCRED => s.passcred = int != 0,
            SO_REUSEADDR => s.reuseaddr = int != 0,
            SO_RCVTIMEO => s.rcvtimeo = timeout_of(val)?,
            SO_SNDTIMEO => s.sndtimeo = timeout_of(val)?,
            _ => return Err(Errno::ENOPROTOOPT),
        }
        drop(s);
        // A bigger send buffer may make a writer's room.
        self.queue.notify();
        Ok(())
    }
}

/// A socket timeout from setsockopt's `struct timeval` (sock_set_timeout): EINVAL if short,
/// EDOM for microseconds out of range; zero waits forever and a negative time never waits.
fn timeout_of(val: &[u8]) -> Result<Option<Duration>, Errno> {
    let tv = Timeval::read_from_prefix(val).map_err(|_| Errno::EINVAL)?.0;
    if !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(Errno::EDOM);
    }
    Ok(match (tv.tv_sec, tv.tv_usec) {
        (s, _) if s < 0 => Some(Duration::ZERO),
        (0, 0) => None,
        (s, us) => Some(Duration::new(s as u64, us as u32 * 1000)),
    })
}

fn timeval_of(timeout: Option<Duration>) -> Timeval {
    let d = timeout.unwrap_or_default();
    Timeval {
        tv_sec: d.as_secs() as i64,
        tv_usec: i64::from(d.subsec_micros()),
    }
}

/// An open unix socket: the I/O of its file description. Dropping it (the description's
/// last close) closes the socket.
pub struct UnixSocket {
    ep: Arc<Endpoint>,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        self.ep.release(false);
    }
}

impl UnixSocket {
    /// Whether SO_RCVTIMEO or SO_SNDTIMEO is set: a signal then ends its blocking calls
    /// with EINTR even under SA_RESTART (Linux's sock_intr_errno).
    pub fn has_timeout(&self) -> bool {
        let s = self.ep.lock();
        s.rcvtimeo.is_some() || s.sndtimeo.is_some()
    }

    /// A new unconnected socket (socket(2)).
    pub fn new(ty: SockType, names: Arc<Names>) -> UnixSocket {
        UnixSocket {
            ep: Endpoint::with_state(ty, names, State::new()),
        }
    }

    /// Two sockets connected to each other (socketpair(2)); each sees `caller` as its peer.
    pub fn pair(ty: SockType, names: Arc<Names>, caller: &Caller) -> (UnixSocket, UnixSocket) {
        let a = UnixSocket::new(ty, names.clone());
        let b = UnixSocket::new(ty, names);
        for (end, peer) in [(&a, &b), (&b, &a)] {
            let mut s = end.ep.lock();
            s.conn = Conn::Connected(peer.ep.clone());
            s.peer_cred = Some(caller.peer_cred());
        }
        (a, b)
    }

    pub fn sock_type(&self) -> SockType {
        self.ep.ty
    }

    pub fn names(&self) -> &Arc<Names> {
        &self.ep.names
    }

    /// Whether it has a name.
    pub fn is_bound(&self) -> bool {
        self.ep.lock().addr.is_some()
    }

    /// Whether it is connected (also after its peer closed).
    pub fn is_connected(&self) -> bool {
        self.ep.lock().peer().is_some()
    }

    /// bind(2) to the socket file whose inode is `key`, made for `path`; EINVAL if bound.
    pub fn bind_path(&self, path: Vec<u8>, key: InodeKey) -> Result<(), Errno> {
        self.ep.bind(Addr::Path(path), NameKey::Inode(key))
    }

    /// bind(2) to an abstract name (starting with NUL); EINVAL if bound, EADDRINUSE if taken.
    pub fn bind_abstract(&self, name: Vec<u8>) -> Result<(), Errno> {
        let key = NameKey::Abstract(self.ep.ty, name.clone());
        self.ep.bind(Addr::Abstract(name), key)
    }

    /// bind(2) with only a family: a free abstract name.
    pub fn autobind(&self) -> Result<(), Errno> {
        self.ep.autobind()
    }

    pub fn listen(&self, backlog: i32, caller: &Caller) -> Result<(), Errno> {
        self.ep.listen(backlog, caller)
    }

    /// accept(2): the next connection, as a socket of its own.
    pub fn accept(&self, nonblock: bool) -> Result<UnixSocket, Errno> {
        self.ep.accept(nonblock).map(|ep| UnixSocket { ep })
    }

    /// connect(2) to `target` (None: AF_UNSPEC, which disconnects a datagram socket).
    pub fn connect(
        &self,
        target: Option<&Arc<Endpoint>>,
        caller: &Caller,
        nonblock: bool,
    ) -> Result<(), Errno> {
        match (self.ep.ty, target) {
            (SockType::Dgram, target) => {
                if target.is_some() {
                    self.ep.autobind_if_passcred()?;
                }
                self.ep.connect_dgram(target)
            }
            (_, Some(target)) => self.ep.connect_stream(target, caller, nonblock),
            (_, None) => Err(Errno::EINVAL),
        }
    }

    /// sendmsg(2): the bytes of `src` to `to` (a datagram socket's destination) or the peer.
    /// `flags` are MSG_* flags with MSG_DONTWAIT for a non-blocking file; `caller` is who
    /// sends (None: the thread's task, looked up if its credentials are needed).
    pub fn send(
        &self,
        to: Option<&Arc<Endpoint>>,
        src: &mut dyn Source,
        anc: Ancillary,
        flags: u64,
        caller: Option<&Caller>,
    ) -> Result<usize, Errno> {
        self.ep.send(to, src, anc, flags, caller)
    }

    /// recvmsg(2) into `sink`; `flags` as for `send`.
    pub fn recv(&self, sink: &mut dyn Sink, flags: u64) -> Result<Received, Errno> {
        self.ep.recv(sink, flags)
    }

    pub fn shutdown(&self, how: u64) -> Result<(), Errno> {
        self.ep.shutdown(how)
    }

    /// getsockname(2): its name, None if it has none.
    pub fn name(&self) -> Option<Addr> {
        self.ep.lock().addr.clone()
    }

    /// getpeername(2): the peer's name (None if it has none); ENOTCONN without a peer.
    pub fn peer_name(&self) -> Result<Option<Addr>, Errno> {
        let peer = self.ep.lock().peer().cloned().ok_or(Errno::ENOTCONN)?;
        let name = peer.lock().addr.clone();
        Ok(name)
    }

    /// getsockopt(2) at SOL_SOCKET: the option's value; ENOPROTOOPT for options it lacks.
    pub fn getsockopt(&self, name: u64) -> Result<Vec<u8>, Errno> {
        self.ep.getsockopt(name)
    }

    /// setsockopt(2) at SOL_SOCKET.
    pub fn setsockopt(&self, name: u64, val: &[u8]) -> Result<(), Errno> {
        self.ep.setsockopt(name, val)
    }

    /// SIOCINQ (FIONREAD): unread bytes of a stream or packet socket, the next datagram's
    /// length; EINVAL on a listener (unix_inq_len).
    pub fn inq(&self) -> Result<usize, Errno> {
        let s = self.ep.lock();
        if matches!(s.conn, Conn::Listening) {
            return Err(Errno::EINVAL);
        }
        Ok(match self.ep.ty {
            SockType::Dgram => s.recv.front().map_or(0, |m| m.data.len()),
            _ => s.recv.iter().map(Message::remaining).sum(),
        })
    }

    /// SIOCOUTQ: what its unread messages count against its send buffer.
    pub fn outq(&self) -> usize {
        self.ep.wmem.load(Ordering::SeqCst)
    }
}

impl FileOps for UnixSocket {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_stream(buf, 0)
    }

    fn write(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_stream(buf, 0)
    }

    /// read(2) is recv(2) without flags; files passed with the data are closed.
    fn read_stream(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        let flags = if flags & O_NONBLOCK != 0 {
            MSG_DONTWAIT
        } else {
            0
        };
        self.recv(&mut BufSink::new(buf), flags).map(|r| r.len)
    }

    /// write(2) is send(2) without flags.
    fn write_stream(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        let flags = if flags & O_NONBLOCK != 0 {
            MSG_DONTWAIT
        } else {
            0
        };
        let mut src = buf;
        self.send(None, &mut src, Ancillary::default(), flags, None)
    }

    fn seek_mode(&self) -> SeekMode {
        SeekMode::Stream
    }

    fn readiness(&self) -> u16 {
        self.ep.readiness()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.ep.queue)
    }

    fn socket(&self) -> Option<&UnixSocket> {
        Some(self)
    }
}

/// The inode of a socket (in sockfs, with no name in the tree): what fstat shows, and what
/// /proc/PID/fd names "socket:[INO]".
pub fn socket_inode(owner: Owner) -> Arc<crate::fs::pseudo::PseudoInode> {
    crate::fs::pseudo::PseudoInode::new(FileType::Socket, 0o777, SOCKFS_DEV, owner)
}

#[cfg(test)]
mod tests;
