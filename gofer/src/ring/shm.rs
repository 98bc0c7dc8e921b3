//! The production ring: a sealed memfd ([`ShmRing`]) and one eventfd per direction
//! ([`EventFdNotifier`]), and the set-up that hands the back end's half to another process.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use platform::shm::SharedMemory;

use super::sync::Ordering;
use super::{BackEnd, Error, FrontEnd, Index, Notifier, Result, RingConfig, RingMemory};

// Header layout. Words written by the front end share one cache line, words written by the
// back end another, so neither side's stores invalidate the line the other writes.
const REQ_PROD: usize = 0;
const RSP_EVENT: usize = 4;
/// Written once by the creator: `MAGIC`, slots, data_slot_size, for `attach` to check.
const GEOMETRY: usize = 8;
const RSP_PROD: usize = 64;
const REQ_EVENT: usize = 68;
/// Bytes before the body (descriptors and data slots).
const HEADER_SIZE: usize = 128;
const MAGIC: u32 = u32::from_le_bytes(*b"GRng");

fn host(what: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Host { what, errno }
}

fn dup(fd: BorrowedFd<'_>, what: &'static str) -> Result<OwnedFd> {
    fd.try_clone_to_owned().map_err(|e| Error::Host {
        what,
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })
}

/// Ring memory in a [`SharedMemory`]: a [`HEADER_SIZE`]-byte header with the indexes, then
/// the body.
#[derive(Debug)]
pub struct ShmRing {
    shm: SharedMemory,
}

impl ShmRing {
    /// Creates the memory for a ring of shape `config`.
    pub fn create(config: RingConfig) -> Result<ShmRing> {
        config.validate()?;
        let shm = SharedMemory::create("gofer-ring", HEADER_SIZE + config.body_size())?;
        let geometry = [MAGIC, config.slots, config.data_slot_size];
        for (i, word) in geometry.iter().enumerate() {
            shm.write(GEOMETRY + 4 * i, &word.to_ne_bytes())?;
        }
        Ok(ShmRing { shm })
    }

    /// Maps ring memory received from the creator, checking that it was made for `config`.
    pub fn attach(config: RingConfig, memory: OwnedFd) -> Result<ShmRing> {
        config.validate()?;
        let shm = SharedMemory::from_fd(memory)?;
        let mut raw = [0u8; 12];
        shm.read(GEOMETRY, &mut raw)?;
        let word = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let (magic, slots, data_slot_size) = (word(0), word(4), word(8));
        if magic != MAGIC || slots != config.slots || data_slot_size != config.data_slot_size {
            return Err(Error::Config(format!(
                "the shared memory holds no ring of {} slots of {} bytes (magic {magic:#x}, {slots} slots of {data_slot_size} bytes)",
                config.slots, config.data_slot_size
            )));
        }
        if shm.len() < HEADER_SIZE + config.body_size() {
            return Err(Error::Config(format!(
                "the shared memory has {} bytes, fewer than the {} a ring of {} slots of {} bytes needs",
                shm.len(),
                HEADER_SIZE + config.body_size(),
                config.slots,
                config.data_slot_size
            )));
        }
        Ok(ShmRing { shm })
    }

    /// The memfd, to hand to the other side.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.shm.fd()
    }

    fn index_offset(index: Index) -> usize {
        match index {
            Index::ReqProd => REQ_PROD,
            Index::ReqEvent => REQ_EVENT,
            Index::RspProd => RSP_PROD,
            Index::RspEvent => RSP_EVENT,
        }
    }
}

impl RingMemory for ShmRing {
    fn load(&self, index: Index, order: Ordering) -> Result<u32> {
        Ok(self.shm.atomic_u32(Self::index_offset(index))?.load(order))
    }

    fn store(&self, index: Index, value: u32, order: Ordering) -> Result<()> {
        self.shm
            .atomic_u32(Self::index_offset(index))?
            .store(value, order);
        Ok(())
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        // Saturating: an absurd offset still fails the bounds check.
        Ok(self.shm.read(offset.saturating_add(HEADER_SIZE), buf)?)
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        Ok(self.shm.write(offset.saturating_add(HEADER_SIZE), data)?)
    }
}

/// A [`Notifier`] over a non-blocking eventfd. The other process holds the same eventfd;
/// the gofer's async server can poll [`EventFdNotifier::fd`] instead of calling `wait`.
#[derive(Debug)]
pub struct EventFdNotifier {
    fd: OwnedFd,
}

impl EventFdNotifier {
    pub fn new() -> Result<EventFdNotifier> {
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(host("eventfd"))?;
        Ok(EventFdNotifier { fd: efd.into() })
    }

    /// Wraps an eventfd received from the other side, making it non-blocking.
    pub fn from_fd(fd: OwnedFd) -> Result<EventFdNotifier> {
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(host("fcntl(F_GETFL) of an eventfd"))?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(host("fcntl(F_SETFL) of an eventfd"))?;
        Ok(EventFdNotifier { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Takes pending notifications without blocking (after an external poll said readable).
    pub fn clear(&self) -> Result<()> {
        let mut count = [0u8; 8];
        match nix::unistd::read(&self.fd, &mut count) {
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(()),
            Err(errno) => Err(host("read of the ring eventfd")(errno)),
        }
    }
}

impl Notifier for EventFdNotifier {
    fn notify(&self) -> Result<()> {
        match nix::unistd::write(&self.fd, &1u64.to_ne_bytes()) {
            // EAGAIN: the counter is saturated, so a notification is pending anyway.
            Ok(_) | Err(Errno::EAGAIN) => Ok(()),
            Err(errno) => Err(host("write of the ring eventfd")(errno)),
        }
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let timeout = match timeout {
            None => PollTimeout::NONE,
            // Round up: a sub-millisecond rest would otherwise spin on 0 ms polls.
            Some(t) => {
                PollTimeout::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(false),
            // A signal: report a (spurious) wake-up; the caller re-checks the ring.
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(host("poll of the ring eventfd")(errno)),
        }
        self.clear()?;
        Ok(true)
    }
}

/// What the back end needs to attach to a ring, to be passed to the gofer process.
#[derive(Debug)]
pub struct RingFds {
    /// The ring memory (a sealed memfd).
    pub memory: OwnedFd,
    /// The eventfd the front end kicks when requests are waiting.
    pub requests: OwnedFd,
    /// The eventfd the back end kicks when responses are waiting.
    pub responses: OwnedFd,
}

/// The Sentry's side of a ring in shared memory.
pub type ShmFrontEnd = FrontEnd<ShmRing, EventFdNotifier>;
/// The gofer's side of a ring in shared memory.
pub type ShmBackEnd = BackEnd<ShmRing, EventFdNotifier>;

impl ShmFrontEnd {
    /// Creates a ring and its eventfds; returns the front end and the descriptors to hand to
    /// the back end ([`ShmBackEnd::attach`]).
    pub fn create(config: RingConfig) -> Result<(ShmFrontEnd, RingFds)> {
        let ring = ShmRing::create(config)?;
        let requests = EventFdNotifier::new()?;
        let responses = EventFdNotifier::new()?;
        let fds = RingFds {
            memory: dup(ring.fd(), "dup of the ring memfd")?,
            requests: dup(requests.fd(), "dup of the request eventfd")?,
            responses: dup(responses.fd(), "dup of the response eventfd")?,
        };
        let front = FrontEnd::new(ring, config, requests, responses)?;
        Ok((front, fds))
    }
}

impl ShmBackEnd {
    /// Attaches to a ring made by [`ShmFrontEnd::create`], mapping its memory afresh.
    pub fn attach(config: RingConfig, fds: RingFds) -> Result<ShmBackEnd> {
        let ring = ShmRing::attach(config, fds.memory)?;
        let requests = EventFdNotifier::from_fd(fds.requests)?;
        let responses = EventFdNotifier::from_fd(fds.responses)?;
        BackEnd::new(ring, config, responses, requests)
    }
}
