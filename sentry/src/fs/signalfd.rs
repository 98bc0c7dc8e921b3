//! signalfd(2): a file from which the reading thread takes its pending signals of a mask,
//! as `struct signalfd_siginfo` records, instead of having them delivered. As in Linux the
//! signals are the reader's (the calling thread's and its process's), whoever made the
//! file; readiness and wake-ups come from the process that made it.

use std::sync::{Arc, Mutex};

use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::abi::{Errno, SigSet, POLLIN, UNBLOCKABLE};
use crate::kernel::signals::{self, SigInfo};
use crate::kernel::ThreadGroup;
use crate::vfs::{FileOps, SeekMode, O_NONBLOCK};
use crate::waiter::{wait_until, WaitQueue};

/// `struct signalfd_siginfo`.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromZeros, IntoBytes, Immutable, KnownLayout)]
struct SignalfdSiginfo {
    signo: u32,
    errno: i32,
    code: i32,
    pid: u32,
    uid: u32,
    fd: i32,
    tid: u32,
    band: u32,
    overrun: u32,
    trapno: u32,
    status: i32,
    int: i32,
    ptr: u64,
    utime: u64,
    stime: u64,
    addr: u64,
    addr_lsb: u16,
    pad2: u16,
    syscall: i32,
    call_addr: u64,
    arch: u32,
    pad: [u8; 28],
}

impl SignalfdSiginfo {
    /// The record of `info`, its union read as its signal and code say (Linux's
    /// signalfd_copyinfo).
    fn of(info: &SigInfo) -> SignalfdSiginfo {
        let mut out = SignalfdSiginfo::new_zeroed();
        out.signo = info.signo as u32;
        out.errno = info.errno;
        out.code = info.code;
        let [first, second, third, fourth, ..] = info.fields;
        let lo = first as u32;
        let hi = (first >> 32) as u32;
        match (info.signo, info.code) {
            (_, signals::SI_TIMER) => {
                out.tid = lo;
                out.overrun = hi;
                out.ptr = second;
                out.int = second as i32;
            }
            (4 | 5 | 7 | 8 | 11, code) if code > 0 => out.addr = first,
            (signals::SIGCHLD, code) if code > 0 => {
                out.pid = lo;
                out.uid = hi;
                out.status = second as i32;
                out.utime = third;
                out.stime = fourth;
            }
            _ => {
                out.pid = lo;
                out.uid = hi;
                out.ptr = second;
                out.int = second as i32;
            }
        }
        out
    }
}

/// A signalfd: the signals it takes, and the process whose queue wakes its readers.
pub struct SignalFd {
    mask: Mutex<SigSet>,
    owner: Arc<ThreadGroup>,
    /// Stands for the state `wait_until` looks at: the signals live in the process.
    state: Mutex<()>,
}

impl SignalFd {
    pub fn new(owner: Arc<ThreadGroup>, mask: SigSet) -> SignalFd {
        SignalFd {
            mask: Mutex::new(mask & !UNBLOCKABLE),
            owner,
            state: Mutex::new(()),
        }
    }

    pub fn set_mask(&self, mask: SigSet) {
        *self.mask.lock().unwrap_or_else(|e| e.into_inner()) = mask & !UNBLOCKABLE;
        self.owner.signal_queue.notify();
    }

    fn mask(&self) -> SigSet {
        *self.mask.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileOps for SignalFd {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_stream(buf, 0)
    }

    fn write(&self, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn seek_mode(&self) -> SeekMode {
        SeekMode::Stream
    }

    fn read_stream(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        const RECORD: usize = std::mem::size_of::<SignalfdSiginfo>();
        if buf.len() < RECORD {
            return Err(Errno::EINVAL);
        }
        let me = crate::kernel::current().ok_or(Errno::EINVAL)?;
        let take = || signals::take_from(&me.tg, me.tid, self.mask());
        let first = if flags & O_NONBLOCK != 0 {
            take().ok_or(Errno::EAGAIN)?
        } else {
            wait_until(&self.owner.signal_queue, &self.state, |_| take())?
        };
        let mut done = 0;
        let mut next = Some(first);
        while let Some(info) = next {
            buf[done..done + RECORD].copy_from_slice(SignalfdSiginfo::of(&info).as_bytes());
            done += RECORD;
            next = if buf.len() - done >= RECORD {
                take()
            } else {
                None
            };
        }
        Ok(done)
    }

    fn readiness(&self) -> u16 {
        let Some(me) = crate::kernel::current() else {
            return 0;
        };
        if signals::pending(&me.tg, me.tid) & self.mask() != 0 {
            POLLIN
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.owner.signal_queue)
    }

    fn fdinfo(&self) -> Vec<u8> {
        format!("sigmask:\t{:016x}\n", self.mask()).into_bytes()
    }

    fn signalfd(&self) -> Option<&SignalFd> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_128_bytes_and_read_the_union_by_kind() {
        assert_eq!(std::mem::size_of::<SignalfdSiginfo>(), 128);
        let child = SignalfdSiginfo::of(&SigInfo::child(17, 1, 42, 1000, 3, 7));
        assert_eq!(
            (child.pid, child.uid, child.status, child.utime),
            (42, 1000, 3, 7)
        );
        let timer = SignalfdSiginfo::of(&SigInfo::timer(14, 5, 2, 99));
        assert_eq!((timer.tid, timer.overrun, timer.ptr), (5, 2, 99));
        let fault = SignalfdSiginfo::of(&SigInfo::fault(11, 1, 0xdead));
        assert_eq!(fault.addr, 0xdead);
    }
}
