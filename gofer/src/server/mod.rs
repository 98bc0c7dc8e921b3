//! The gofer's file server: serves one ring for one root directory.
//!
//! The Sentry on the other end is assumed compromised, so the server
//!
//! * only uses handles it handed out: a fid table maps [`Fid`](crate::proto::Fid)s to host
//!   descriptors (walked nodes are `O_PATH | O_NOFOLLOW`, opened files real opens); an
//!   unknown fid, or one of the wrong kind, is `EBADF`; the table is bounded
//!   ([`ServerOptions::max_fids`], then `EMFILE`);
//! * never resolves a path: every host call is relative to a directory descriptor with one
//!   checked name (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
//!   RESOLVE_NO_SYMLINKS`, `*at` calls with `AT_SYMLINK_NOFOLLOW`), so no symlink, `..` or
//!   magic link in the root can lead out of it;
//! * opens a walked node for I/O again by its parent and name (never through
//!   `/proc/self/fd`) and checks the result is the same inode (`ESTALE` otherwise);
//! * refuses every mutation with `EROFS` in read-only mode;
//! * answers anything malformed with an errno, and stops only at `Shutdown` or when the
//!   ring itself breaks ([`crate::ring::Error::Protocol`]).
//!
//! One thread per ring, blocking on the ring's eventfd; requests are served in order.
//!
//! Limits: `chmod` of a regular file or FIFO reopens it read-only, and truncation reopens it
//! write-only, so a gofer without `CAP_DAC_OVERRIDE` cannot change the mode of a file it
//! cannot read. FIFOs, sockets and device nodes can be walked and stat'ed but not opened
//! (`ENXIO`): the Sentry implements them.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;

use crate::proto::MIN_PAYLOAD;
use crate::ring::{self, ShmBackEnd};

mod files;
mod host;

use files::Files;

/// How a server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Refuse every mutation (writes, creations, removals, renames, attribute changes, opens
    /// for writing or truncation) with `EROFS`.
    pub read_only: bool,
    /// Most fids (nodes and open files) the client may hold at once; past it, `EMFILE`.
    /// Each fid holds a host descriptor, so keep `RLIMIT_NOFILE` above it.
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
    #[error(transparent)]
    Ring(#[from] ring::Error),
}

/// Serves one ring for one root directory.
pub struct Server {
    ring: ShmBackEnd,
    files: Files,
}

impl Server {
    /// `root` is the directory to serve (opened `O_PATH | O_DIRECTORY`, or any descriptor of
    /// a directory).
    pub fn new(
        ring: ShmBackEnd,
        root: OwnedFd,
        options: ServerOptions,
    ) -> Result<Server, ServerError> {
        let max_payload = ring.config().data_slot_size;
        if max_payload < MIN_PAYLOAD {
            return Err(ServerError::SlotTooSmall(max_payload));
        }
        let (id, attr) = host::stat_fd(root.as_fd()).map_err(ServerError::Root)?;
        if !attr.is_dir() {
            return Err(ServerError::Root(Errno::ENOTDIR));
        }
        Ok(Server {
            ring,
            files: Files::new(root, id, options, max_payload),
        })
    }

    /// Makes the server use `openat` with `O_NOFOLLOW` as on a kernel without `openat2`.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn without_openat2(mut self) -> Self {
        self.files.use_openat2 = false;
        self
    }

    /// Serves requests until a `Shutdown` (answered before returning `Ok`) or until the ring
    /// breaks (`Err`: a protocol violation by the client, or a failing host call on the
    /// ring). Blocks on the ring's eventfd while there is nothing to do.
    pub fn serve(&mut self) -> Result<(), ServerError> {
        loop {
            let Some(request) = self.ring.next_request()? else {
                self.ring.wait_for_requests(None)?;
                continue;
            };
            let reply = self.files.handle(request.opcode, &request.payload);
            match self.ring.respond(request.id, reply.status, &reply.payload) {
                Err(ring::Error::PayloadTooLarge { .. }) => {
                    // Responses are sized to the slot; should one not fit, still answer.
                    let eio = crate::proto::errno_status(Errno::EIO);
                    self.ring.respond(request.id, eio, &[])?;
                }
                other => other?,
            }
            // Publish at once: the client waits for this one response. A notification is
            // sent only if it sleeps.
            self.ring.push_responses()?;
            if reply.shutdown {
                return Ok(());
            }
        }
    }
}
