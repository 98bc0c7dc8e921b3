//! The Sentry's side of the file protocol: one typed method per operation over one ring.
//!
//! A [`Client`] is `Send + Sync`; for now a mutex serialises calls, so one request is in
//! flight at a time. Every method returns `Result<_, Errno>`: the server's errno as is,
//! `EINVAL`/`ENAMETOOLONG` for a name refused before sending, and `EIO` once the connection
//! is dead.
//!
//! # A dead server
//!
//! The connection dies, for good, when the ring breaks (a protocol violation), when a call
//! gets no response within [`ClientOptions::timeout`] (30 s by default), or when the gofer
//! process exits, which the client notices at once if given a pidfd of it
//! ([`ClientOptions::server_process`]; otherwise only the timeout catches it: an eventfd
//! never reports its peer's death). From then on every call fails with `EIO` without
//! touching the ring, and [`Client::failure`] says what happened. A call never hangs.
//!
//! # Sizes
//!
//! [`Client::read`], [`Client::write`] and [`Client::walk`] split what does not fit one
//! data slot into several requests; the other operations always fit.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
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

/// The ring and why it died, guarded by the client's mutex.
struct Ring {
    front: ShmFrontEnd,
    server_process: Option<OwnedFd>,
    /// Set once the connection is dead: every later call is EIO.
    failure: Option<String>,
}

impl Ring {
    /// Marks the connection dead; returns the EIO to report.
    fn fail(&mut self, why: String) -> Errno {
        self.failure.get_or_insert(why);
        Errno::EIO
    }

    /// Sends one request and waits for its response: `(status, payload)`.
    fn call(
        &mut self,
        opcode: u32,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(u32, Vec<u8>), Errno> {
        if self.failure.is_some() {
            return Err(Errno::EIO);
        }
        let what = Opcode::from_u32(opcode).map_or("an unknown request", Opcode::name);
        let id = match self.front.submit(opcode, payload) {
            Ok(id) => id,
            // The methods size requests to fit; refuse rather than kill the connection.
            Err(ring::Error::PayloadTooLarge { .. }) => return Err(Errno::EINVAL),
            Err(e) => return Err(self.fail(format!("gofer {}: {e}", what))),
        };
        if let Err(e) = self.front.push() {
            return Err(self.fail(format!("gofer {}: {e}", what)));
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut server_exited = false;
        loop {
            let mut response = None;
            // One request in flight: poll_responses refuses any other id.
            let polled = self.front.poll_responses(|got, status, payload| {
                if got == id {
                    response = Some((status, payload.to_vec()));
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
            match self.front.final_check_for_responses() {
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
            match self.wait(left) {
                Ok(exited) => server_exited = exited,
                Err(errno) => {
                    return Err(self.fail(format!("waiting for the gofer: poll: {errno}")))
                }
            }
        }
    }

    /// Sleeps until the response eventfd fires, the server process exits, or `left` passes.
    /// Returns whether the process exited (then the caller looks at the ring once more: the
    /// response may have come just before).
    fn wait(&self, left: Option<Duration>) -> Result<bool, Errno> {
        let timeout = match left {
            None => PollTimeout::NONE,
            // Round up, so that a sub-millisecond rest does not spin on 0 ms polls.
            Some(t) => {
                PollTimeout::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(PollTimeout::MAX)
            }
        };
        let events = self.front.wake_notifier();
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

/// The Sentry's connection to one gofer ring.
pub struct Client {
    ring: Mutex<Ring>,
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
        let slot = front.config().data_slot_size;
        if slot < MIN_PAYLOAD {
            return Err(Errno::EINVAL);
        }
        let mut ring = Ring {
            front,
            server_process: options.server_process,
            failure: None,
        };
        let request = Request::Version { version: VERSION };
        let (status, payload) =
            ring.call(Opcode::Version as u32, &request.to_bytes(), options.timeout)?;
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
            ring: Mutex::new(ring),
            timeout: options.timeout,
            version,
            // Both ends know the slot size; trust the smaller.
            max_payload: max_payload.min(slot),
            root,
        })
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
        match self.ring.lock() {
            Ok(ring) => ring.failure.clone(),
            Err(_) => Some("a thread panicked while talking to the gofer".into()),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Ring>, Errno> {
        // A thread that panicked mid-call may have left a request in flight: the ring is
        // unusable.
        self.ring.lock().map_err(|_| Errno::EIO)
    }

    /// Sends an encoded request: `(status, payload)`. For tests that play a hostile client.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn call_raw(&self, opcode: u32, payload: &[u8]) -> Result<(u32, Vec<u8>), Errno> {
        self.lock()?.call(opcode, payload, self.timeout)
    }

    /// One request, one response, decoded. A response the server should never send kills
    /// the connection.
    fn request(&self, request: &Request) -> Result<Response, Errno> {
        let op = request.opcode();
        let mut ring = self.lock()?;
        let (status, payload) = ring.call(op as u32, &request.to_bytes(), self.timeout)?;
        match status_to_result(status) {
            Ok(()) => Response::decode(op, &payload).map_err(|e| {
                ring.fail(format!(
                    "the gofer sent a malformed {} response: {e}",
                    op.name()
                ))
            }),
            Err(Some(errno)) => Err(errno),
            Err(None) => Err(ring.fail(format!(
                "the gofer answered {} with status {status}, which is no errno",
                op.name()
            ))),
        }
    }

    /// Kills the connection over a response that decodes but makes no sense.
    fn bad_response(&self, op: Opcode, what: &str) -> Errno {
        match self.ring.lock() {
            Ok(mut ring) => ring.fail(format!("the gofer's {} response {what}", op.name())),
            Err(_) => Errno::EIO,
        }
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
            let data = match self.request(&request) {
                Ok(Response::Data(data)) => data,
                Ok(_) => return Err(self.bad_response(Opcode::Read, "has the wrong shape")),
                Err(_) if done > 0 => break,
                Err(errno) => return Err(errno),
            };
            let Some(dst) = buf
                .get_mut(done..done + data.len())
                .filter(|_| data.len() <= want)
            else {
                return Err(self.bad_response(Opcode::Read, "has more bytes than asked"));
            };
            dst.copy_from_slice(&data);
            done += data.len();
            if data.len() < want || done == buf.len() {
                break;
            }
        }
        Ok(done)
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

    /// Stops the server. Every later call fails with `EIO`.
    pub fn shutdown(&self) -> Result<(), Errno> {
        let response = self.request(&Request::Shutdown);
        let mut ring = self.lock()?;
        ring.failure
            .get_or_insert_with(|| "the gofer connection was shut down".into());
        response.map(drop)
    }
}
