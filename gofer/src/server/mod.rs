//! The gofer's file server: serves one or more rings for one root directory.
//!
//! The Sentry on the other end is assumed compromised, so the server
//!
//! * only uses handles it handed out: a fid table maps [`Fid`](crate::proto::Fid)s to host
//!   descriptors (walked nodes are `O_PATH | O_NOFOLLOW`, opened files real opens); an
//!   unknown fid, or one of the wrong kind, is `EBADF`; the table is bounded
//!   ([`ServerOptions::max_fids`] over all rings, then `EMFILE`);
//! * never resolves a path: every host call is relative to a directory descriptor with one
//!   checked name (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
//!   RESOLVE_NO_SYMLINKS`, `*at` calls with `AT_SYMLINK_NOFOLLOW`), so no symlink, `..` or
//!   magic link in the root can lead out of it;
//! * opens a walked node for I/O again by its parent and name (never through
//!   `/proc/self/fd`) and checks the result is the same inode (`ESTALE` otherwise);
//! * refuses every mutation with `EROFS` in read-only mode;
//! * answers anything malformed with an errno, and stops only at `Shutdown` or when a
//!   ring itself breaks ([`crate::ring::Error::Protocol`]).
//!
//! A server serves one or more rings for the same root, with one fid table shared by all of
//! them: a fid handed out on one ring is valid on every ring. The Sentry runs each guest
//! process on a thread of its own, and each thread takes a free ring, so several requests
//! can be in flight at once. One thread per ring, blocking on the ring's eventfd; requests on
//! one ring are served in order. A `Shutdown` on any ring, or a ring that breaks, stops
//! them all.
//!
//! Limits: `chmod` of a regular file or FIFO reopens it read-only, and truncation reopens it
//! write-only, so a gofer without `CAP_DAC_OVERRIDE` cannot change the mode of a file it
//! cannot read. FIFOs, sockets and device nodes can be walked and stat'ed but not opened
//! (`ENXIO`): the Sentry implements them.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use nix::errno::Errno;

use crate::proto::MIN_PAYLOAD;
use crate::ring::{self, EventFdNotifier, Notifier, ShmBackEnd};

mod fids;
mod files;
mod host;

use files::Files;

/// How a server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Refuse every mutation (writes, creations, removals, renames, attribute changes, opens
    /// for writing or truncation) with `EROFS`.
    pub read_only: bool,
    /// Most fids (nodes and open files) the client may hold at once, over all rings; past
    /// it, `EMFILE`. Each fid holds a host descriptor, so keep `RLIMIT_NOFILE` above it.
    pub max_fids: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            read_only: false,
            max_fids: 4096,
        }
    }
}

/// Failures to set up or run a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the gofer root cannot be served: {0}")]
    Root(Errno),
    #[error(
        "ring data slots of {0} bytes are too small for the file protocol (at least {MIN_PAYLOAD})"
    )]
    SlotTooSmall(u32),
    #[error("a server needs at least one ring")]
    NoRings,
    #[error(transparent)]
    Ring(#[from] ring::Error),
    #[error("starting the thread of a ring: {0}")]
    Thread(std::io::Error),
    #[error("the thread serving a ring panicked")]
    Panicked,
    #[error("{0}")]
    Confine(String),
}

/// Serves one or more rings for one root directory.
pub struct Server {
    rings: Vec<ShmBackEnd>,
    files: Files,
    /// Tells every ring's thread to stop; see [`Stop`].
    stop: Stop,
}

/// How one ring's thread stops the others: a flag, and a second handle on each ring's
/// request eventfd to wake the thread sleeping on it.
struct Stop {
    stopping: AtomicBool,
    wakers: Vec<EventFdNotifier>,
}

impl Stop {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops every ring's thread after the request it is serving.
    fn stop_all(&self) {
        self.stopping.store(true, Ordering::Release);
        for waker in &self.wakers {
            // Best effort: an eventfd write fails only if the descriptor is broken, and then
            // that ring's thread fails on its own wait.
            let _ = waker.notify();
        }
    }
}

/// Where the threads of rings after the first wait before serving, until the server is
/// confined ([`Server::serve_confined`]). Each says it is ready first: a new thread makes
/// host calls of its own as it starts (`set_robust_list`, `rseq`, `sigaltstack`, `prctl`
/// for its name) that a confined process may not, so confining waits for them all.
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

struct GateState {
    ready: usize,
    /// Set once: whether to serve.
    open: Option<bool>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, go: bool) {
        self.lock().open = Some(go);
        self.changed.notify_all();
    }

    /// Called by a ring's thread: says it is ready, then waits until the gate is set;
    /// returns whether to serve.
    fn ready_then_wait(&self) -> bool {
        let mut state = self.lock();
        state.ready += 1;
        self.changed.notify_all();
        loop {
            if let Some(go) = state.open {
                return go;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `threads` threads are ready.
    fn wait_ready(&self, threads: usize) {
        let mut state = self.lock();
        while state.ready < threads {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Server {
    /// Serves one ring. `root` is the directory to serve (opened `O_PATH | O_DIRECTORY`, or
    /// any descriptor of a directory).
    pub fn new(
        ring: ShmBackEnd,
        root: OwnedFd,
        options: ServerOptions,
    ) -> Result<Server, ServerError> {
        Server::with_rings(vec![ring], root, options)
    }

    /// Serves every ring of `rings` (at least one) for the same root, one thread each, with
    /// one fid table. Payloads are limited by the smallest data slot of them all.
    pub fn with_rings(
        rings: Vec<ShmBackEnd>,
        root: OwnedFd,
        options: ServerOptions,
    ) -> Result<Server, ServerError> {
        let max_payload = rings
            .iter()
            .map(|ring| ring.config().data_slot_size)
            .min()
            .ok_or(ServerError::NoRings)?;
        if max_payload < MIN_PAYLOAD {
            return Err(ServerError::SlotTooSmall(max_payload));
        }
        let (id, attr) = host::stat_fd(root.as_fd()).map_err(ServerError::Root)?;
        if !attr.is_dir() {
            return Err(ServerError::Root(Errno::ENOTDIR));
        }
        let wakers = rings
            .iter()
            .map(|ring| {
                let fd = ring
                    .wake_notifier()
                    .fd()
                    .try_clone_to_owned()
                    .map_err(|e| ring::Error::Host {
                        what: "dup of a ring's request eventfd",
                        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                    })?;
                EventFdNotifier::from_fd(fd)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Server {
            rings,
            files: Files::new(root, id, options, max_payload),
            stop: Stop {
                stopping: AtomicBool::new(false),
                wakers,
            },
        })
    }

    /// Makes the server use `openat` with `O_NOFOLLOW` as on a kernel without `openat2`.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn without_openat2(mut self) -> Self {
        *self.files.use_openat2.get_mut() = false;
        self
    }

    /// Fids the client holds now, for tests of the bound.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn fids_held(&self) -> usize {
        self.files.fids_held()
    }

    /// Serves requests until a `Shutdown` on any ring (answered before returning `Ok`) or
    /// until a ring breaks (`Err`: a protocol violation by the client, or a failing host call
    /// on the ring). Blocks on the rings' eventfds while there is nothing to do. The first
    /// ring is served on the calling thread, the others on threads of their own.
    pub fn serve(&mut self) -> Result<(), ServerError> {
        self.serve_confined(|| Ok(()))
    }

    /// As [`Server::serve`], but calls `confine` once the threads of the other rings exist and
    /// before any ring is served: a process that confines itself with a seccomp filter on all
    /// its threads (TSYNC) then needs no thread-creating call in its allow-list. If `confine`
    /// fails, nothing is served and its message is returned.
    pub fn serve_confined(
        &mut self,
        confine: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), ServerError> {
        let (files, stop) = (&self.files, &self.stop);
        let Some((first, others)) = self.rings.split_first_mut() else {
            return Err(ServerError::NoRings);
        };
        let gate = Gate {
            state: Mutex::new(GateState {
                ready: 0,
                open: None,
            }),
            changed: Condvar::new(),
        };
        let gate = &gate;
        if !others.is_empty() {
            files.presize_fd_table();
        }
        std::thread::scope(|scope| {
            let mut threads = Vec::with_capacity(others.len());
            for (i, ring) in others.iter_mut().enumerate() {
                let spawned = std::thread::Builder::new()
                    .name(format!("gofer ring {}", i + 1))
                    .spawn_scoped(scope, move || {
                        if !gate.ready_then_wait() {
                            return Ok(());
                        }
                        serve_ring(files, ring, stop)
                    });
                match spawned {
                    Ok(thread) => threads.push(thread),
                    Err(e) => {
                        gate.set(false);
                        return Err(ServerError::Thread(e));
                    }
                }
            }
            gate.wait_ready(threads.len());
            if let Err(why) = confine() {
                gate.set(false);
                return Err(ServerError::Confine(why));
            }
            gate.set(true);
            let mut result = serve_ring(files, first, stop);
            for thread in threads {
                let joined = thread.join().unwrap_or(Err(ServerError::Panicked));
                // The first ring's error first, then the others' in order: all stopped
                // because of the first failure, and later ones may only echo it.
                if result.is_ok() {
                    result = joined;
                }
            }
            result
        })
    }
}

/// Serves one ring until `stop` says so, a `Shutdown` arrives on it, or it breaks; in the
/// last two cases stops every other ring too.
fn serve_ring(files: &Files, ring: &mut ShmBackEnd, stop: &Stop) -> Result<(), ServerError> {
    let result = serve_requests(files, ring, stop);
    stop.stop_all();
    result
}

fn serve_requests(files: &Files, ring: &mut ShmBackEnd, stop: &Stop) -> Result<(), ServerError> {
    loop {
        if stop.stopping() {
            return Ok(());
        }
        let Some(request) = ring.next_request()? else {
            ring.push_responses()?;
            // Sleep only after asking to be woken and finding nothing (Xen's final check);
            // a wake-up may also be another ring's thread telling this one to stop.
            if !ring.final_check_for_requests()? {
                ring.wake_notifier().wait(None)?;
            }
            continue;
        };
        let reply = files.handle(request.opcode, &request.payload);
        match ring.respond(request.id, reply.status, &reply.payload) {
            Err(ring::Error::PayloadTooLarge { .. }) => {
                // Responses are sized to the slot; should one not fit, still answer.
                let eio = crate::proto::errno_status(Errno::EIO);
                ring.respond(request.id, eio, &[])?;
            }
            other => other?,
        }
        // Publish at once: the client waits for this one response. A notification is sent
        // only if it sleeps.
        ring.push_responses()?;
        if reply.shutdown {
            return Ok(());
        }
    }
}
