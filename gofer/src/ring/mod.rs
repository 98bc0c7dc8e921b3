//! Shared-memory request/response rings between the Sentry and the gofer, after Xen's
//! split-driver I/O rings (`xen/include/public/io/ring.h`).
//!
//! One ring is a shared region holding
//!
//! * four header words: `req_prod` and `rsp_event`, written only by the front end (the
//!   Sentry), and `rsp_prod` and `req_event`, written only by the back end (the gofer);
//! * `slots` descriptors of [`DESCRIPTOR_SIZE`] bytes, used in turn for requests and
//!   responses (as in Xen, a response goes into the slot of a request the back end has
//!   already consumed, so one array serves both directions);
//! * `slots` data slots of `data_slot_size` bytes. Request id `i` owns data slot `i`: the
//!   front end writes the request payload there, the back end the response payload. The
//!   descriptor points to it (offset, length); payloads are never inline.
//!
//! Each side also keeps a private consumer index (`req_cons` in the back end, `rsp_cons` in
//! the front end) and a private producer index it publishes with a "push". A side that has
//! run out of work stores `event = cons + 1` ("wake me for the next one"), re-checks, and
//! sleeps on its [`Notifier`]; a producer notifies only when its push crossed the other side's
//! event (Xen's `RING_PUSH_*_AND_CHECK_NOTIFY` and `RING_FINAL_CHECK_FOR_*`), so a busy
//! peer is never woken and many requests ride one notification.
//!
//! The front end never has more than `slots` requests in flight: an id and a ring slot are
//! taken by [`FrontEnd::submit`] and given back only when the response is consumed, and
//! `submit` fails with [`Error::Full`] rather than wait. Responses carry the request id and
//! may come in any order. Private memory is bounded by `slots` and `data_slot_size`.
//!
//! Everything read from the ring is hostile: indexes, ids, offsets and lengths are checked
//! before use and a bad one is an [`Error::Protocol`], never a panic or an out-of-bounds
//! access. Payloads are copied out before they are looked at.
//!
//! The ring code is generic over the memory ([`RingMemory`]) and the wake-up channel
//! ([`Notifier`]) so that loom can model-check it (`loom_tests`); production uses
//! [`ShmRing`] (a sealed memfd) and [`EventFdNotifier`] (one eventfd per direction).

use std::time::{Duration, Instant};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

mod back;
mod front;
mod shm;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;

pub use back::{BackEnd, Request};
pub use front::{FrontEnd, Response};
pub use shm::{EventFdNotifier, RingFds, ShmBackEnd, ShmFrontEnd, ShmRing};

/// Atomics and fences: loom's when model checking, std's otherwise.
mod sync {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::fence;
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::fence;
    pub(crate) use std::sync::atomic::Ordering;
}

/// Size of one descriptor in the ring.
pub const DESCRIPTOR_SIZE: usize = size_of::<Descriptor>();
/// Most descriptors a ring may have.
pub const MAX_SLOTS: u32 = 1 << 12;

/// Failures of the ring. [`Error::Protocol`] means the other side is broken or hostile; the
/// connection should be torn down.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad ring configuration: {0}")]
    Config(String),
    #[error("ring memory: {0}")]
    Memory(#[from] platform::shm::Error),
    #[error("ring set-up or notification: {what}: {errno}")]
    Host {
        what: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("a payload of {len} bytes does not fit a {max}-byte data slot")]
    PayloadTooLarge { len: usize, max: usize },
    #[error(
        "the ring is full: all {0} request slots await responses; consume responses, then retry"
    )]
    Full(u32),
    #[error("timed out waiting for the other side of the ring")]
    TimedOut,
    #[error("call() needs a ring with nothing else in flight, but {0} requests await responses")]
    Busy(u32),
    #[error("request {0} is not awaiting a response (already answered, or never received)")]
    NotPending(u32),
    #[error("the other side of the ring broke the protocol: {0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Identifies a request in flight; the response carries the same id. Ids are reused once
/// the response has been consumed. Always below the ring's `slots`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u32);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The shape of a ring. Both sides must use the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Number of descriptors, and so of requests in flight: a power of two, 1 to [`MAX_SLOTS`].
    pub slots: u32,
    /// Largest payload of one request or response, in bytes (at least 1).
    pub data_slot_size: u32,
}

impl RingConfig {
    /// Checks the invariants the ring code relies on.
    pub fn validate(&self) -> Result<()> {
        if !self.slots.is_power_of_two() || self.slots > MAX_SLOTS {
            return Err(Error::Config(format!(
                "{} slots: must be a power of two between 1 and {MAX_SLOTS}",
                self.slots
            )));
        }
        // Data offsets travel as u32.
        if self.data_slot_size == 0 || self.slots.checked_mul(self.data_slot_size).is_none() {
            return Err(Error::Config(format!(
                "data slots of {} bytes: must be at least 1 byte, and {} of them must fit in 4 GiB",
                self.data_slot_size, self.slots
            )));
        }
        Ok(())
    }

    /// Bytes of ring memory after the header: descriptors, then data slots.
    pub fn body_size(&self) -> usize {
        self.data_area() + self.slots as usize * self.data_slot_size as usize
    }

    /// Where the descriptor for ring position `pos` (a free-running index) lives.
    fn descriptor_offset(&self, pos: u32) -> usize {
        (pos & (self.slots - 1)) as usize * DESCRIPTOR_SIZE
    }

    /// Start of the data area in the body.
    fn data_area(&self) -> usize {
        self.slots as usize * DESCRIPTOR_SIZE
    }

    /// Offset of request `id`'s data slot, relative to the data area (as in descriptors).
    /// Callers pass `id < slots`, which cannot overflow (see `validate`); saturating anyway so
    /// that a stray id cannot panic.
    fn data_slot(&self, id: u32) -> u32 {
        id.saturating_mul(self.data_slot_size)
    }

    /// Body offset of a descriptor's payload.
    fn payload_offset(&self, data_offset: u32) -> usize {
        self.data_area() + data_offset as usize
    }
}

/// One ring entry, a request or a response. All fields are chosen by the side that wrote
/// it, so the reader checks every one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
struct Descriptor {
    /// The request id; a response repeats it.
    id: u32,
    /// The opcode in a request, the status in a response.
    code: u32,
    /// Where the payload starts, relative to the data area. Always the id's own data slot
    /// for now; carried so that the format can later let payloads span slots.
    data_offset: u32,
    /// Payload length in bytes, at most `data_slot_size`.
    data_len: u32,
    /// Zero when written; ignored when read.
    reserved: [u32; 4],
}

/// The four shared ring indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// Requests published by the front end (free-running count).
    ReqProd,
    /// The back end wants a notification when `req_prod` reaches this.
    ReqEvent,
    /// Responses published by the back end (free-running count).
    RspProd,
    /// The front end wants a notification when `rsp_prod` reaches this.
    RspEvent,
}

/// The memory a ring lives in: the four [`Index`] words, used atomically, and the body
/// (descriptors and data slots), reached only by copying. Implementations check bounds.
pub trait RingMemory {
    fn load(&self, index: Index, order: sync::Ordering) -> Result<u32>;
    fn store(&self, index: Index, value: u32, order: sync::Ordering) -> Result<()>;
    /// Copies `buf.len()` bytes out of the body at `offset`.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()>;
    /// Copies `data` into the body at `offset`.
    fn write(&self, offset: usize, data: &[u8]) -> Result<()>;
}

/// A one-way wake-up channel to one waiting thread, level-triggered like an eventfd: a
/// notification sent while nobody waits is kept for the next `wait`.
pub trait Notifier {
    fn notify(&self) -> Result<()>;
    /// Blocks until notified or until `timeout` passes (`Ok(false)`). May return early
    /// without a notification; callers re-check the ring.
    fn wait(&self, timeout: Option<Duration>) -> Result<bool>;
}

/// Xen's notification test: notify when the other side's event threshold lies in
/// `(old, new]`, i.e. the push just crossed it. Written with wrapping arithmetic so that
/// free-running indexes may wrap around `u32`.
fn crosses_event(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// Reads the descriptor at ring position `pos`.
fn read_descriptor<M: RingMemory>(mem: &M, config: &RingConfig, pos: u32) -> Result<Descriptor> {
    let mut desc = Descriptor::default();
    mem.read(config.descriptor_offset(pos), desc.as_mut_bytes())?;
    Ok(desc)
}

/// Writes a descriptor and its payload (into the id's data slot) at ring position `pos`.
fn write_entry<M: RingMemory>(
    mem: &M,
    config: &RingConfig,
    pos: u32,
    id: u32,
    code: u32,
    payload: &[u8],
) -> Result<()> {
    let data_offset = config.data_slot(id);
    mem.write(config.payload_offset(data_offset), payload)?;
    let desc = Descriptor {
        id,
        code,
        data_offset,
        // Callers check the payload against data_slot_size (a u32).
        data_len: payload.len() as u32,
        reserved: [0; 4],
    };
    mem.write(config.descriptor_offset(pos), desc.as_bytes())
}

/// Checks that a descriptor read from the other side names an id in range whose payload lies
/// in that id's data slot. `what` names the direction for the error.
fn check_descriptor(config: &RingConfig, desc: &Descriptor, what: &str) -> Result<()> {
    if desc.id >= config.slots {
        return Err(Error::Protocol(format!(
            "{what} id {} is out of range (the ring has {} slots)",
            desc.id, config.slots
        )));
    }
    if desc.data_offset != config.data_slot(desc.id) || desc.data_len > config.data_slot_size {
        return Err(Error::Protocol(format!(
            "{what} {} points to {} bytes at data offset {}, outside its {}-byte data slot at {}",
            desc.id,
            desc.data_len,
            desc.data_offset,
            config.data_slot_size,
            config.data_slot(desc.id)
        )));
    }
    Ok(())
}

/// Time left until `deadline`, or `Err(TimedOut)` once it has passed.
fn remaining(deadline: Option<Instant>) -> Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(Error::TimedOut),
        },
    }
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    // A timeout too large to represent is no timeout.
    timeout.and_then(|t| Instant::now().checked_add(t))
}
