//! The Sentry's side of the file protocol: one typed method per operation, over one or more
//! rings to the same server.
//!
//! A [`Client`] is `Send + Sync`. Each ring carries one request at a time, under a mutex of
//! its own; a call takes a free ring (trying them in turn from one chosen per thread) and
//! waits only when all are busy, so as many requests are in flight as the client has
//! rings. The Sentry runs each guest process on a thread of its own, so with several rings
//! one process's file calls do not queue behind another's. Fids belong to the connection,
//! not to a ring: the server shares one fid table among its rings.
//!
//! Every method returns `Result<_, Errno>`: the server's errno as is, `EINVAL`/
//! `ENAMETOOLONG` for a name refused before sending, and `EIO` once the connection is dead.
//!
//! # A dead server
//!
//! The connection dies, for good and on every ring, when a ring breaks (a protocol
//! violation), when a call gets no response within [`ClientOptions::timeout`] (30 s by
//! default), or when the gofer process exits, which the client notices at once if given a
//! pidfd of it ([`ClientOptions::server_process`]; otherwise only the timeout catches it: an
//! eventfd never reports its peer's death). From then on every call fails with `EIO`
//! without touching any ring, and [`Client::failure`] says what happened. A call never
//! hangs.
//!
//! # Sizes
//!
//! [`Client::read`], [`Client::write`] and [`Client::walk`] split what does not fit one
//! data slot into several requests; the other operations always fit.

use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::proto::{
    self, check_symlink_target, status_to_result, Attr, Created, Dirent, Fid, FidAttr, Name,
    Opcode, Request, Response, SetAttr, StatFs, MIN_PAYLOAD, MIN_VERSION, VERSION,
};
use crate::ring::{self, ShmFrontEnd};

/// How a client waits.
#[derive(Debug)]
pub struct ClientOptions {
    /// Longest wait for one response before the server is declared dead.
    pub timeout: Duration,
    /// A pidfd of the gofer process (`pidfd_open(2)`): it turns readable when the process
    /// exits, which ends any wait at once.
    pub server_process: Option<OwnedFd>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(30),
            server_process: None,
        }
    }
}

/// The owner a created file gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What [`Client::walk`] found: see [`Response::Walk`]. `nodes` are in path order; each fid
/// is the caller's to close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walked {
    pub nodes: Vec<FidAttr>,
    /// The errno of the component that could not be walked (the one after the last of
    /// `nodes`), or `None` if the walk ended at the last name, a symlink or a non-directory.
    pub error: Option<Errno>,
}

/// Why the connection died, shared by all its rings: a dead connection is dead on every
/// ring, because what broke one (a hostile or dead server) breaks them all, and a ring left
/// with a request in flight must never be used again.
struct Health {
    /// Set once the connection is dead, with `failure`: every later call is EIO.
    dead: AtomicBool,
    failure: Mutex<Option<String>>,
    server_process: Option<OwnedFd>,
}

impl Health {
    /// Marks the connection dead; returns the EIO to report. The first reason is kept.
    fn fail(&self, why: String) -> Errno {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.get_or_insert(why);
        self.dead.store(true, Ordering::Release);
        Errno::EIO
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Sends one request on `front` (which has nothing else in flight) and waits for its
    /// response: `(status, payload)`.
    fn call(
        &self,
        front: &mut ShmFrontEnd,
        opcode: u32,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(u32, Vec<u8>), Errno> {
        self.call_with(front, opcode, payload, timeout, |status, payload| {
            (status, payload.to_vec())
        })
    }

    /// As [`Health::call`], but hands `(status, payload)` to `take` while the payload is
    /// still in the ring's private copy, so that a large one is copied once, to where it
    /// goes. (Copied into a fresh buffer first, each 1 MiB read cost the Sentry two 1 MiB
    /// allocations, which glibc's heap gave back and faulted in again every time.)
    fn call_with<T>(
        &self,
        front: &mut ShmFrontEnd,
        opcode: u32,
        payload: &[u8],
        timeout: Duration,
        take: impl FnOnce(u32, &[u8]) -> T,
    ) -> Result<T, Errno> {
        if self.is_dead() {
            return Err(Errno::EIO);
        }
        let what = Opcode::from_u32(opcode).map_or("an unknown request", Opcode::name);
        let id = match front.submit(opcode, payload) {
            Ok(id) => id,
            // The methods size requests to fit; refuse rather than kill the connection.
            Err(ring::Error::PayloadTooLarge { .. }) => return Err(Errno::EINVAL),
            Err(e) => return Err(self.fail(format!("gofer {}: {e}", what))),
        };
        if let Err(e) = front.push() {
            return Err(self.fail(format!("gofer {}: {e}", what)));
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut server_exited = false;
        let mut take = Some(take);
        loop {
            let mut response = None;
            // One request in flight: poll_responses refuses any other id.
            let polled = front.poll_responses(|got, status, payload| {
                if let Some(take) = take.take().filter(|_| got == id) {
                    response = Some(take(status, payload));
                }
            });
            if let Err(e) = polled {
                return Err(self.fail(format!("gofer {}: {e}", what)));
            }
            if let Some(response) = response {
                return Ok(response);
            }
            if server_exited {
                return Err(self.fail(format!("the gofer process exited while serving {}", what)));
            }
            match front.final_check_for_responses() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Err(self.fail(format!("gofer {}: {e}", what))),
            }
            let left = deadline.and_then(|d| d.checked_duration_since(Instant::now()));
            let left = match left {
                Some(left) if !left.is_zero() => Some(left),
                None if deadline.is_none() => None,
                _ => {
                    return Err(self.fail(format!(
                        "the gofer did not answer {} within {timeout:?}",
                        what
                    )))
                }
            };
            match self.wait(front, left) {
                Ok(exited) => server_exited = exited,
                Err(errno) => {
                    return Err(self.fail(format!("waiting for the gofer: poll: {errno}")))
                }
            }
        }
    }

    /// Sleeps until `front`'s response eventfd fires, the server process exits, or `left`
    /// passes. Returns whether the process exited (then the caller looks at the ring once
    /// more: the response may have come just before).
    fn wait(&self, front: &ShmFrontEnd, left: Option<Duration>) -> Result<bool, Errno> {
        let timeout = match left {
            None => PollTimeout::NONE,
            // Round up, so that a sub-millisecond rest does not spin on 0 ms polls.
            Some(t) => {
                PollTimeout::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(PollTimeout::MAX)
            }
        };
        let events = front.wake_notifier();
        let mut fds = vec![PollFd::new(events.fd(), PollFlags::POLLIN)];
        if let Some(process) = &self.server_process {
            fds.push(PollFd::new(process.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
        let fired = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let notified = fired(&fds[0]);
        let exited = fds.get(1).is_some_and(fired);
        drop(fds);
        if notified {
            events.clear().map_err(|_| Errno::EIO)?;
        }
        Ok(exited)
    }
}

/// Numbers the threads that use clients, so that each starts its search for a free ring at
/// a ring of its own (see [`Client::ring`]).
static NEXT_HOME: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's number (from [`NEXT_HOME`]), taken at its first call.
    static HOME: Cell<Option<usize>> = const { Cell::new(None) };
}

fn home() -> usize {
    HOME.with(|home| match home.get() {
        Some(n) => n,
        None => {
            let n = NEXT_HOME.fetch_add(1, Ordering::Relaxed);
            home.set(Some(n));
            n
        }
    })
}

/// The Sentry's connection to one gofer: one or more rings to the same server, which
/// share its fids.
pub struct Client {
    /// Each ring carries one request at a time, under its mutex.
    rings: Vec<Mutex<ShmFrontEnd>>,
    health: Health,
    timeout: Duration,
    version: u32,
    max_payload: u32,
    root: FidAttr,
}

fn name(bytes: &[u8]) -> Result<Name, Errno> {
    Name::new(bytes).map_err(|e| e.errno())
}

impl Client {
    /// Takes over the front end of a fresh ring and shakes hands with the server. Fails with
    /// `EINVAL` if the ring's data slots are smaller than [`MIN_PAYLOAD`],
    /// `EPROTONOSUPPORT` if the server speaks no version this client speaks, `EIO` if it
    /// does not answer.
    pub fn connect(front: ShmFrontEnd, options: ClientOptions) -> Result<Client, Errno> {
        Client::connect_rings(vec![front], options)
    }

    /// As [`Client::connect`], over several rings to one server (which serves them all with
    /// one fid table, [`crate::server::Server::with_rings`]). The handshake goes over the
    /// first ring. `EINVAL` if `fronts` is empty.
    pub fn connect_rings(
        fronts: Vec<ShmFrontEnd>,
        options: ClientOptions,
    ) -> Result<Client, Errno> {
        let slot = fronts
            .iter()
            .map(|front| front.config().data_slot_size)
            .min()
            .ok_or(Errno::EINVAL)?;
        if slot < MIN_PAYLOAD {
            return Err(Errno::EINVAL);
        }
        let health = Health {
            dead: AtomicBool::new(false),
            failure: Mutex::new(None),
            server_process: options.server_process,
        };
        let mut rings: Vec<Mutex<ShmFrontEnd>> = fronts.into_iter().map(Mutex::new).collect();
        let request = Request::Version { version: VERSION };
        let first = rings.first_mut().ok_or(Errno::EINVAL)?;
        let first = first.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (status, payload) = health.call(
            first,
            Opcode::Version as u32,
            &request.to_bytes(),
            options.timeout,
        )?;
        match status_to_result(status) {
            Ok(()) => {}
            Err(Some(errno)) => return Err(errno),
            Err(None) => return Err(Errno::EIO),
        }
        let Ok(Response::Version {
            version,
            max_payload,
            root,
        }) = Response::decode(Opcode::Version, &payload)
        else {
            return Err(Errno::EIO);
        };
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err(Errno::EPROTONOSUPPORT);
        }
        if max_payload < MIN_PAYLOAD || !root.attr.is_dir() {
            return Err(Errno::EIO);
        }
        Ok(Client {
            rings,
            health,
            timeout: options.timeout,
            version,
            // Both ends know the slot size; trust the smaller.
            max_payload: max_payload.min(slot),
            root,
        })
    }

    /// How many rings the connection has.
    pub fn rings(&self) -> usize {
        self.rings.len()
    }

    /// The root directory's fid and attributes.
    pub fn root(&self) -> FidAttr {
        self.root
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The largest payload either way (the ring's data slot size).
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// Why the connection is dead, if it is: one line for the user.
    pub fn failure(&self) -> Option<String> {
        self.health
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A ring to send a request on, with nothing in flight: the first free one, trying them
    /// in turn from this thread's own (so threads spread over the rings and tend to keep
    /// theirs); if every ring is busy, waits for this thread's own.
    fn ring(&self) -> Result<MutexGuard<'_, ShmFrontEnd>, Errno> {
        // A thread that panicked mid-call may have left a request in flight: the ring, and
        // so the connection, is unusable.
        let poisoned = |_| {
            self.health
                .fail("a thread panicked while talking to the gofer".into())
        };
        let n = self.rings.len();
        let start = home() % n;
        for i in 0..n {
            // In bounds: start < n, and the index is taken modulo n (n >= 1 by connect).
            match self.rings[(start + i) % n].try_lock() {
                Ok(ring) => return Ok(ring),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Poisoned(e)) => return Err(poisoned(e)),
            }
        }
        self.rings[start].lock().map_err(poisoned)
    }

    /// Sends an encoded request: `(status, payload)`. For tests that play a hostile client.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn call_raw(&self, opcode: u32, payload: &[u8]) -> Result<(u32, Vec<u8>), Errno> {
        let mut ring = self.ring()?;
        self.health.call(&mut ring, opcode, payload, self.timeout)
    }

    /// Sends an encoded request on ring `index`. For tests of fids shared across rings.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn call_raw_on(
        &self,
        index: usize,
        opcode: u32,
        payload: &[u8],
    ) -> Result<(u32, Vec<u8>), Errno> {
        let ring = self.rings.get(index).ok_or(Errno::EINVAL)?;
        let mut ring = ring.lock().map_err(|_| Errno::EIO)?;
        self.health.call(&mut ring, opcode, payload, self.timeout)
    }

    /// One request, one response, decoded, on a free ring. A response the server should
    /// never send kills the connection.
    fn request(&self, request: &Request) -> Result<Response, Errno> {
        let mut ring = self.ring()?;
        self.request_on(&mut ring, request)
    }

    fn request_on(&self, ring: &mut ShmFrontEnd, request: &Request) -> Result<Response, Errno> {
        let op = request.opcode();
        let (status, payload) =
            self.health
                .call(ring, op as u32, &request.to_bytes(), self.timeout)?;
        match status_to_result(status) {
            Ok(()) => Response::decode(op, &payload).map_err(|e| {
                self.health.fail(format!(
                    "the gofer sent a malformed {} response: {e}",
                    op.name()
                ))
            }),
            Err(Some(errno)) => Err(errno),
            Err(None) => Err(self.health.fail(format!(
                "the gofer answered {} with status {status}, which is no errno",
                op.name()
            ))),
        }
    }

    /// Kills the connection over a response that decodes but makes no sense.
    fn bad_response(&self, op: Opcode, what: &str) -> Errno {
        self.health
            .fail(format!("the gofer's {} response {what}", op.name()))
    }

    fn expect_node(&self, op: Opcode, response: Response) -> Result<FidAttr, Errno> {
        match response {
            Response::Node(node) => Ok(node),
            _ => Err(self.bad_response(op, "has the wrong shape")),
        }
    }

    fn expect_empty(&self, op: Opcode, response: Response) -> Result<(), Errno> {
        match response {
            Response::Empty => Ok(()),
            _ => Err(self.bad_response(op, "has the wrong shape")),
        }
    }

    fn expect_attr(&self, op: Opcode, response: Response) -> Result<Attr, Errno> {
        match response {
            Response::Attr(attr) => Ok(attr),
            _ => Err(self.bad_response(op, "has the wrong shape")),
        }
    }

    /// Walks `names` from the directory `dir`, component by component, without following
    /// symlinks. Stops after a symlink or a non-directory (the caller resolves or refuses
    /// it), or at the first component that cannot be walked (`error`). A bad name fails the
    /// whole call before anything is walked.
    pub fn walk<N: AsRef<[u8]>>(&self, dir: Fid, names: &[N]) -> Result<Walked, Errno> {
        let names = names
            .iter()
            .map(|n| name(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        // As many names as the response has room for, and as the request has room for
        // with names of the longest kind.
        let by_request = (self.max_payload as usize - proto::walk_request_size::<&[u8]>(&[]))
            / (1 + proto::NAME_MAX);
        let per_request = proto::max_walk(self.max_payload).min(by_request).max(1);
        let mut walked = Walked {
            nodes: Vec::with_capacity(names.len()),
            error: None,
        };
        let mut dir = dir;
        for chunk in names.chunks(per_request) {
            let response = self.request(&Request::Walk {
                dir,
                names: chunk.to_vec(),
            })?;
            let Response::Walk { nodes, error } = response else {
                return Err(self.bad_response(Opcode::Walk, "has the wrong shape"));
            };
            if nodes.len() > chunk.len() {
                return Err(self.bad_response(Opcode::Walk, "has more nodes than names"));
            }
            let whole = nodes.len() == chunk.len() && error.is_none();
            let next = nodes.last().filter(|n| n.attr.is_dir()).map(|n| n.fid);
            walked.nodes.extend(nodes);
            walked.error = error;
            match next {
                Some(fid) if whole => dir = fid,
                _ => break,
            }
        }
        Ok(walked)
    }

    pub fn stat(&self, fid: Fid) -> Result<Attr, Errno> {
        let response = self.request(&Request::Stat { fid })?;
        self.expect_attr(Opcode::Stat, response)
    }

    /// Opens the node `fid` (a regular file or directory) and returns a new, open fid; `fid`
    /// stays a node. Symlinks fail with `ELOOP`, FIFOs, sockets and devices with `ENXIO`.
    /// `flags`: the access mode, `O_APPEND`, `O_TRUNC`, `O_DSYNC`, `O_SYNC`, `O_DIRECTORY`.
    pub fn open(&self, fid: Fid, flags: OFlag) -> Result<Fid, Errno> {
        let flags = flags.bits() as u32;
        match self.request(&Request::Open { fid, flags })? {
            Response::Opened(fid) => Ok(fid),
            _ => Err(self.bad_response(Opcode::Open, "has the wrong shape")),
        }
    }

    /// Reads into `buf` from `offset` of an open fid, in as many requests as needed.
    /// Returns fewer bytes than `buf` holds only at the end of the file (or if an error
    /// follows some data, as `read(2)`).
    pub fn read(&self, fid: Fid, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let max = proto::max_read(self.max_payload) as usize;
        let mut done = 0;
        // An empty read still goes out: it checks the fid, as read(2) of 0 bytes.
        loop {
            let want = (buf.len() - done).min(max);
            let request = Request::Read {
                fid,
                offset: offset.saturating_add(done as u64),
                len: want as u32,
            };
            let got = match self.read_into(&request, &mut buf[done..done + want]) {
                Ok(got) => got,
                Err(_) if done > 0 => break,
                Err(errno) => return Err(errno),
            };
            done += got;
            if got < want || done == buf.len() {
                break;
            }
        }
        Ok(done)
    }

    /// Sends one `Read` and copies its data from the ring straight into `dst`, which is as
    /// long as the read asked for; returns how many bytes came.
    fn read_into(&self, request: &Request, dst: &mut [u8]) -> Result<usize, Errno> {
        let mut ring = self.ring()?;
        let op = Opcode::Read;
        let copied = self.health.call_with(
            &mut ring,
            op as u32,
            &request.to_bytes(),
            self.timeout,
            |status, payload| match status_to_result(status) {
                Ok(()) => {
                    let data = Response::read_data(payload);
                    let Some(dst) = dst.get_mut(..data.len()) else {
                        return Err("has more bytes than asked".to_string());
                    };
                    dst.copy_from_slice(data);
                    Ok(Ok(data.len()))
                }
                Err(Some(errno)) => Ok(Err(errno)),
                Err(None) => Err(format!("has status {status}, which is no errno")),
            },
        )?;
        match copied {
            Ok(result) => result,
            Err(what) => Err(self.bad_response(op, &what)),
        }
    }

    /// Writes `data` at `offset` of an open fid, in as many requests as needed. Returns
    /// fewer bytes than given only if the host wrote fewer (a full disk, as `write(2)`).
    pub fn write(&self, fid: Fid, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let max = proto::max_write(self.max_payload) as usize;
        let mut done = 0;
        // An empty write still goes out: it checks the fid, as write(2) of 0 bytes.
        loop {
            let chunk = &data[done..data.len().min(done + max)];
            let request = Request::Write {
                fid,
                offset: offset.saturating_add(done as u64),
                data: chunk.to_vec(),
            };
            let written = match self.request(&request) {
                Ok(Response::Written(n)) => n,
                Ok(_) => return Err(self.bad_response(Opcode::Write, "has the wrong shape")),
                Err(_) if done > 0 => break,
                Err(errno) => return Err(errno),
            };
            let Some(written) = usize::try_from(written).ok().filter(|&n| n <= chunk.len()) else {
                return Err(self.bad_response(Opcode::Write, "counts more bytes than sent"));
            };
            done += written;
            if written < chunk.len() || done == data.len() {
                break;
            }
        }
        Ok(done)
    }

    /// Creates `dir/name` exclusively and opens it: a node fid and an open fid. `mode` is
    /// applied exactly (permission bits only); `flags` as for [`Client::open`] without
    /// `O_DIRECTORY`.
    pub fn create(
        &self,
        dir: Fid,
        name_bytes: &[u8],
        flags: OFlag,
        mode: u32,
        owner: Owner,
    ) -> Result<Created, Errno> {
        let request = Request::Create {
            dir,
            name: name(name_bytes)?,
            flags: flags.bits() as u32,
            mode,
            uid: owner.uid,
            gid: owner.gid,
        };
        match self.request(&request)? {
            Response::Created(created) => Ok(created),
            _ => Err(self.bad_response(Opcode::Create, "has the wrong shape")),
        }
    }

    pub fn mkdir(
        &self,
        dir: Fid,
        name_bytes: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<FidAttr, Errno> {
        let request = Request::Mkdir {
            dir,
            name: name(name_bytes)?,
            mode,
            uid: owner.uid,
            gid: owner.gid,
        };
        let response = self.request(&request)?;
        self.expect_node(Opcode::Mkdir, response)
    }

    /// `mode` includes the file type, which must be `S_IFIFO` (`EPERM` otherwise).
    pub fn mknod(
        &self,
        dir: Fid,
        name_bytes: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<FidAttr, Errno> {
        let request = Request::Mknod {
            dir,
            name: name(name_bytes)?,
            mode,
            rdev: 0,
            uid: owner.uid,
            gid: owner.gid,
        };
        let response = self.request(&request)?;
        self.expect_node(Opcode::Mknod, response)
    }

    pub fn symlink(
        &self,
        dir: Fid,
        name_bytes: &[u8],
        target: &[u8],
        owner: Owner,
    ) -> Result<FidAttr, Errno> {
        check_symlink_target(target)?;
        let request = Request::Symlink {
            dir,
            name: name(name_bytes)?,
            target: target.to_vec(),
            uid: owner.uid,
            gid: owner.gid,
        };
        let response = self.request(&request)?;
        self.expect_node(Opcode::Symlink, response)
    }

    /// Makes `dir/name` a hard link to the node `target`; returns a node fid for it.
    pub fn link(&self, dir: Fid, name_bytes: &[u8], target: Fid) -> Result<FidAttr, Errno> {
        let request = Request::Link {
            dir,
            name: name(name_bytes)?,
            target,
        };
        let response = self.request(&request)?;
        self.expect_node(Opcode::Link, response)
    }

    /// `flags`: 0 or [`proto::AT_REMOVEDIR`].
    pub fn unlink(&self, dir: Fid, name_bytes: &[u8], flags: u32) -> Result<(), Errno> {
        let request = Request::Unlink {
            dir,
            name: name(name_bytes)?,
            flags,
        };
        let response = self.request(&request)?;
        self.expect_empty(Opcode::Unlink, response)
    }

    /// `flags`: 0, [`proto::RENAME_NOREPLACE`] or [`proto::RENAME_EXCHANGE`]. Node fids of
    /// the renamed files stay valid.
    pub fn rename(
        &self,
        old_dir: Fid,
        old_name: &[u8],
        new_dir: Fid,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let request = Request::Rename {
            old_dir,
            old_name: name(old_name)?,
            new_dir,
            new_name: name(new_name)?,
            flags,
        };
        let response = self.request(&request)?;
        self.expect_empty(Opcode::Rename, response)
    }

    pub fn readlink(&self, fid: Fid) -> Result<Vec<u8>, Errno> {
        match self.request(&Request::Readlink { fid })? {
            Response::Data(target) if check_symlink_target(&target).is_ok() => Ok(target),
            _ => Err(self.bad_response(Opcode::Readlink, "is no symlink target")),
        }
    }

    /// Reads entries of an open directory from `cookie` (0: the start; then the last
    /// entry's `next_cookie`), at most `max` encoded bytes (capped to one data slot). An
    /// empty result is the end. `.` and `..` are never returned.
    pub fn getdents(&self, fid: Fid, cookie: u64, max: u32) -> Result<Vec<Dirent>, Errno> {
        match self.request(&Request::Getdents { fid, cookie, max })? {
            Response::Dirents(entries) => Ok(entries),
            _ => Err(self.bad_response(Opcode::Getdents, "has the wrong shape")),
        }
    }

    /// Changes the attributes named by `attr.mask`; returns the attributes after.
    pub fn set_attr(&self, fid: Fid, attr: &SetAttr) -> Result<Attr, Errno> {
        let response = self.request(&Request::SetAttr { fid, attr: *attr })?;
        self.expect_attr(Opcode::SetAttr, response)
    }

    pub fn statfs(&self, fid: Fid) -> Result<StatFs, Errno> {
        match self.request(&Request::StatFs { fid })? {
            Response::StatFs(statfs) => Ok(statfs),
            _ => Err(self.bad_response(Opcode::StatFs, "has the wrong shape")),
        }
    }

    /// `fsync(2)` (or `fdatasync(2)`) of an open fid.
    pub fn fsync(&self, fid: Fid, datasync: bool) -> Result<(), Errno> {
        let flags = if datasync { proto::FSYNC_DATASYNC } else { 0 };
        let response = self.request(&Request::Fsync { fid, flags })?;
        self.expect_empty(Opcode::Fsync, response)
    }

    /// Gives a fid back (node or open file).
    pub fn close(&self, fid: Fid) -> Result<(), Errno> {
        let response = self.request(&Request::Close { fid })?;
        self.expect_empty(Opcode::Close, response)
    }

    /// Stops the server. Every later call fails with `EIO`. Waits for the calls in flight on
    /// other rings first: the server stops all its rings at once, and a call it never
    /// answered would wait for the timeout (or for the server process to exit).
    pub fn shutdown(&self) -> Result<(), Errno> {
        let mut rings = Vec::with_capacity(self.rings.len());
        // Always in index order: no other path holds two rings at once.
        for ring in &self.rings {
            rings.push(ring.lock().map_err(|_| {
                self.health
                    .fail("a thread panicked while talking to the gofer".into())
            })?);
        }
        let Some(first) = rings.first_mut() else {
            return Err(Errno::EIO);
        };
        let response = self.request_on(first, &Request::Shutdown);
        self.health
            .fail("the gofer connection was shut down".into());
        response.map(drop)
    }
}
