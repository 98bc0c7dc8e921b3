//! eventfd(2): a 64-bit counter as a file. A write adds to it (waiting while the sum would
//! reach 2^64 - 1); a read takes it all, or one in semaphore mode (waiting while it is 0).
//! Reads and writes move exactly 8 bytes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::abi::{Errno, POLLERR, POLLIN, POLLOUT};
use crate::vfs::{FileOps, OpenFile, SeekMode, O_NONBLOCK, O_RDWR};
use crate::waiter::{wait_until, WaitQueue};

/// The counter and who waits on it. `count` is guarded by its mutex; `queue` is notified
/// after every change.
pub struct EventFd {
    count: Mutex<u64>,
    queue: WaitQueue,
    semaphore: bool,
    /// Shown in fdinfo (Linux numbers eventfds from an ida).
    id: u32,
}

impl EventFd {
    /// read(2): the counter (1 in semaphore mode), which it leaves 0 (one less).
    fn take(&self, nonblock: bool) -> Result<u64, Errno> {
        let value = wait_until(&self.queue, &self.count, |count| {
            if *count > 0 {
                let value = if self.semaphore { 1 } else { *count };
                *count -= value;
                Some(Ok(value))
            } else if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })??;
        self.queue.notify_events(POLLOUT);
        Ok(value)
    }

    /// write(2): adds `value`, once the sum stays below 2^64 - 1.
    fn add(&self, value: u64, nonblock: bool) -> Result<(), Errno> {
        if value == u64::MAX {
            return Err(Errno::EINVAL);
        }
        wait_until(&self.queue, &self.count, |count| {
            if u64::MAX - *count > value {
                *count += value;
                Some(Ok(()))
            } else if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })??;
        // Even adding 0 wakes readers, as Linux's eventfd_write does.
        self.queue.notify_events(POLLIN);
        Ok(())
    }

    fn count(&self) -> u64 {
        *self.count.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileOps for EventFd {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_stream(buf, 0)
    }

    fn write(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_stream(buf, 0)
    }

    fn seek_mode(&self) -> SeekMode {
        SeekMode::Stream
    }

    fn read_stream(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        let out = buf.get_mut(..8).ok_or(Errno::EINVAL)?;
        let value = self.take(flags & O_NONBLOCK != 0)?;
        out.copy_from_slice(&value.to_ne_bytes());
        Ok(8)
    }

    fn write_stream(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        let bytes: [u8; 8] = buf
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(Errno::EINVAL)?;
        self.add(u64::from_ne_bytes(bytes), flags & O_NONBLOCK != 0)?;
        Ok(8)
    }

    /// Linux's eventfd_poll: readable above 0, writable below 2^64 - 2; no RDNORM/WRNORM.
    fn readiness(&self) -> u16 {
        let count = self.count();
        let mut mask = 0;
        if count > 0 {
            mask |= POLLIN;
        }
        if count == u64::MAX {
            mask |= POLLERR;
        }
        if count < u64::MAX - 1 {
            mask |= POLLOUT;
        }
        mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn fdinfo(&self) -> Vec<u8> {
        format!(
            "eventfd-count: {:16x}\neventfd-id: {}\neventfd-semaphore: {}\n",
            self.count(),
            self.id,
            u8::from(self.semaphore)
        )
        .into_bytes()
    }
}

/// A new eventfd's open file, counting from `initial`; `nonblock` sets O_NONBLOCK.
pub fn new_eventfd(initial: u32, semaphore: bool, nonblock: bool) -> Arc<OpenFile> {
    static NEXT_ID: AtomicU32 = AtomicU32::new(0);
    let ops = Arc::new(EventFd {
        count: Mutex::new(u64::from(initial)),
        queue: WaitQueue::default(),
        semaphore,
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
    });
    let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
    super::anon::new_file("eventfd", ops, flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn value(file: &OpenFile) -> Result<u64, Errno> {
        let mut buf = [0u8; 8];
        file.read(&mut buf)?;
        Ok(u64::from_ne_bytes(buf))
    }

    #[test]
    fn counts_semaphores_and_limits() {
        let f = new_eventfd(3, false, true);
        assert_eq!(f.write(&5u64.to_ne_bytes()), Ok(8));
        assert_eq!(value(&f), Ok(8));
        assert_eq!(value(&f), Err(Errno::EAGAIN));
        assert_eq!(f.read(&mut [0u8; 7]), Err(Errno::EINVAL));
        assert_eq!(f.write(&[0u8; 4]), Err(Errno::EINVAL));
        assert_eq!(f.write(&u64::MAX.to_ne_bytes()), Err(Errno::EINVAL));
        assert_eq!(f.write(&(u64::MAX - 1).to_ne_bytes()), Ok(8));
        assert_eq!(f.readiness(), POLLIN);
        assert_eq!(f.write(&1u64.to_ne_bytes()), Err(Errno::EAGAIN));
        let s = new_eventfd(2, true, true);
        assert_eq!(
            (value(&s), value(&s), value(&s)),
            (Ok(1), Ok(1), Err(Errno::EAGAIN))
        );
    }

    #[test]
    fn a_blocked_reader_is_woken_by_a_write() {
        let f = new_eventfd(0, false, false);
        let g = f.clone();
        let reader = std::thread::spawn(move || value(&g));
        std::thread::sleep(Duration::from_millis(20));
        f.write(&42u64.to_ne_bytes()).unwrap();
        assert_eq!(reader.join().unwrap(), Ok(42));
    }
}
