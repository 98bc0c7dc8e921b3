//! Pipes and fifos (pipe(7), fifo(7)): a bounded buffer in Sentry memory between read ends
//! and write ends.
//!
//! As in Linux, the buffer is a ring of page-sized buffers ("slots"). A write first tops up
//! the last buffer when the part of it that is not a whole number of pages fits there,
//! then fills fresh pages; a pipe of capacity C holds at most C / PAGE_SIZE buffers. That
//! gives Linux's observable behaviour: writes of at most PIPE_BUF bytes are atomic, a full
//! pipe takes no more (EAGAIN, or the writer waits), F_SETPIPE_SZ fails with EBUSY while
//! more buffers are in use than the new size holds, and in packet mode (O_DIRECT) each write
//! of up to PIPE_BUF bytes is a message that one read returns (the excess of a short read
//! is dropped).
//!
//! Readers of an empty pipe wait while writers exist; writers to a full pipe wait while
//! readers exist; a fifo opened for one direction waits for the other. All of them, and
//! poll, wait on the pipe's one [`WaitQueue`], notified after every change (with POLLIN
//! after a write and POLLOUT after a read that made room, so that edge-triggered epoll sees
//! the edges Linux's separate reader and writer queues make).
//!
//! A fifo (a named pipe) shares one `Pipe` among all its openers: the pipe lives while any
//! end is open, keyed in [`FIFOS`] by the fifo's inode, and whatever it held is gone once
//! every end is closed (as in Linux).

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::abi::{Errno, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::vfs::{
    FileOps, FileType, Inode, InodeKey, Owner, PerInode, SeekMode, O_ACCMODE, O_DIRECT, O_NONBLOCK,
    O_RDONLY, O_RDWR, O_WRONLY,
};
use crate::waiter::{wait_until, WaitQueue};

/// Writes of at most this many bytes are atomic (PIPE_BUF).
pub const PIPE_BUF: usize = 4096;
/// The size of one buffer of the ring.
const PAGE: usize = 4096;
/// A new pipe's capacity (16 pages, as Linux's PIPE_DEF_BUFFERS).
pub const DEFAULT_PIPE_SIZE: u64 = 65536;
/// The largest capacity F_SETPIPE_SZ grants: /proc/sys/fs/pipe-max-size's default. Linux
/// lets a task with CAP_SYS_RESOURCE go further; the Sentry does not, so that a guest cannot
/// make it hold more than this per pipe.
pub const PIPE_MAX_SIZE: u64 = 1 << 20;
/// The device pipes report in st_dev (Linux's pipefs is an anonymous device too).
pub const PIPEFS_DEV: u64 = super::devices::makedev(0, 12);

/// One buffer of the ring: `data[start..]` is unread. `packet` marks a message written in
/// packet mode, which is never merged into and is read whole or not at all.
struct Buffer {
    data: Vec<u8>,
    start: usize,
    packet: bool,
}

impl Buffer {
    fn len(&self) -> usize {
        self.data.len() - self.start
    }
}

/// A pipe's state, guarded by `Pipe::state`.
struct State {
    bufs: VecDeque<Buffer>,
    /// The capacity in buffers (Linux's max_usage).
    max_slots: usize,
    /// Open ends of each direction (an O_RDWR fifo end counts in both).
    readers: usize,
    writers: usize,
    /// How many read and write ends were ever opened: a fifo opener waits for the other
    /// counter to move (Linux's r_counter, w_counter).
    read_opens: u64,
    write_opens: u64,
}

impl State {
    /// Counts a new end in; returns the counts after it.
    fn count_open(&mut self, read: bool, write: bool) -> Counts {
        if read {
            self.readers += 1;
            self.read_opens += 1;
        }
        if write {
            self.writers += 1;
            self.write_opens += 1;
        }
        Counts {
            readers: self.readers,
            writers: self.writers,
            read_opens: self.read_opens,
            write_opens: self.write_opens,
        }
    }

    fn is_full(&self) -> bool {
        self.bufs.len() >= self.max_slots
    }

    /// Bytes waiting to be read (FIONREAD).
    fn queued(&self) -> usize {
        self.bufs.iter().map(Buffer::len).sum()
    }

    /// Copies out of the front buffers into `out`: as much as there is, or one packet.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while let Some(front) = self.bufs.front_mut() {
            if n == out.len() {
                break;
            }
            let chars = front.len().min(out.len() - n);
            let from = &front.data[front.start..front.start + chars];
            out[n..n + chars].copy_from_slice(from);
            n += chars;
            front.start += chars;
            if front.packet || front.len() == 0 {
                // A packet is read whole: what did not fit is dropped.
                let packet = front.packet;
                self.bufs.pop_front();
                if packet {
                    break;
                }
            }
        }
        n
    }

    /// Linux's merge of a write into the last buffer: the part of `data` that is not a whole
    /// number of pages goes there when it all fits (and the last buffer is no packet).
    fn merge(&mut self, data: &[u8]) -> usize {
        let chars = data.len() % PAGE;
        match self.bufs.back_mut() {
            Some(last) if chars > 0 && !last.packet && last.data.len() + chars <= PAGE => {
                last.data.extend_from_slice(&data[..chars]);
                chars
            }
            _ => 0,
        }
    }

    /// Fills free buffers from `data`; returns how much went in.
    fn fill(&mut self, data: &[u8], packet: bool) -> usize {
        let mut done = 0;
        while done < data.len() && !self.is_full() {
            let n = (data.len() - done).min(PAGE);
            let mut page = Vec::with_capacity(PAGE);
            page.extend_from_slice(&data[done..done + n]);
            self.bufs.push_back(Buffer {
                data: page,
                start: 0,
                packet,
            });
            done += n;
        }
        done
    }
}

/// A snapshot of who has a pipe open.
#[derive(Debug, Clone, Copy)]
struct Counts {
    readers: usize,
    writers: usize,
    read_opens: u64,
    write_opens: u64,
}

/// A pipe: the buffer and who has it open. `state` guards everything that changes; `queue`
/// is notified after every change.
pub struct Pipe {
    state: Mutex<State>,
    queue: WaitQueue,
}

impl Default for Pipe {
    fn default() -> Pipe {
        Pipe {
            state: Mutex::new(State {
                bufs: VecDeque::new(),
                max_slots: DEFAULT_PIPE_SIZE as usize / PAGE,
                readers: 0,
                writers: 0,
                read_opens: 0,
                write_opens: 0,
            }),
            queue: WaitQueue::default(),
        }
    }
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The queue that readers, writers, fifo openers and poll wait on.
    pub fn queue(&self) -> &WaitQueue {
        &self.queue
    }

    /// Counts a new end open for reading and/or writing; with `need_reader`, only if the
    /// pipe has a reader (else ENXIO). Returns the counts as they were then, taken under the
    /// same lock so that a fifo opener knows which partner it waits for.
    fn open(&self, read: bool, write: bool, need_reader: bool) -> Result<Counts, Errno> {
        let mut s = self.lock();
        if need_reader && s.readers == 0 {
            return Err(Errno::ENXIO);
        }
        let counts = s.count_open(read, write);
        drop(s);
        self.queue.notify();
        Ok(counts)
    }

    /// An end is closed: readers may now see end of file, writers EPIPE.
    fn release(&self, read: bool, write: bool) {
        let mut s = self.lock();
        if read {
            s.readers = s.readers.saturating_sub(1);
        }
        if write {
            s.writers = s.writers.saturating_sub(1);
        }
        drop(s);
        self.queue.notify();
    }

    /// read(2): what is there (one packet at most), waiting while the pipe is empty and has
    /// writers unless `nonblock`; 0 at end of file.
    pub fn read(&self, out: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut was_full = false;
        let result = wait_until(&self.queue, &self.state, |s| {
            if !s.bufs.is_empty() {
                was_full = s.is_full();
                Some(Ok(s.take(out)))
            } else if s.writers == 0 {
                Some(Ok(0))
            } else if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })
        .and_then(|r| r);
        // Only a full pipe has writers waiting for room, and only then does a read make
        // an edge for EPOLLOUT watchers (Linux's pipe_read wakes writers if was_full).
        if was_full {
            self.queue.notify_events(POLLOUT | POLLWRNORM);
        }
        result
    }

    /// write(2): all of `data`, waiting for room unless `nonblock` (then what fits, or
    /// EAGAIN if nothing does; a write of at most PIPE_BUF bytes goes in whole or not at
    /// all). EPIPE without readers. `packet`: each page written is a message of its own.
    pub fn write(&self, data: &[u8], nonblock: bool, packet: bool) -> Result<usize, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        let mut done = 0;
        let mut first = true;
        let result = wait_until(&self.queue, &self.state, |s| {
            if s.readers == 0 {
                return Some(if done == 0 {
                    Err(Errno::EPIPE)
                } else {
                    Ok(done)
                });
            }
            if std::mem::take(&mut first) {
                done += s.merge(data);
            }
            let before = done;
            done += s.fill(&data[done..], packet);
            if done == data.len() {
                return Some(Ok(done));
            }
            if nonblock {
                return Some(if done == 0 {
                    Err(Errno::EAGAIN)
                } else {
                    Ok(done)
                });
            }
            if done > before {
                // Let readers at what is there before waiting for them to make room.
                self.queue.notify_events(POLLIN | POLLRDNORM);
            }
            None
        });
        self.queue.notify_events(POLLIN | POLLRDNORM);
        match result {
            // A signal ends the wait; what was written by then counts.
            Err(Errno::EINTR) if done > 0 => Ok(done),
            result => result.and_then(|r| r),
        }
    }

    /// Bytes waiting to be read (FIONREAD).
    pub fn queued(&self) -> usize {
        self.lock().queued()
    }

    /// The capacity in bytes (F_GETPIPE_SZ).
    pub fn size(&self) -> u64 {
        (self.lock().max_slots * PAGE) as u64
    }

    /// F_SETPIPE_SZ: the capacity becomes `size` rounded up to a power-of-two number of
    /// pages (at least one); returns it. EINVAL above 2 GiB, EPERM to grow past
    /// PIPE_MAX_SIZE, EBUSY if more buffers are in use than it holds (pipe_set_size).
    pub fn set_size(&self, size: u32) -> Result<u64, Errno> {
        if size > 1 << 31 {
            return Err(Errno::EINVAL);
        }
        let bytes = (u64::from(size)).max(PAGE as u64).next_power_of_two();
        let slots = (bytes / PAGE as u64) as usize;
        let mut s = self.lock();
        if slots > s.max_slots && bytes > PIPE_MAX_SIZE {
            return Err(Errno::EPERM);
        }
        if s.bufs.len() > slots {
            return Err(Errno::EBUSY);
        }
        s.max_slots = slots;
        drop(s);
        self.queue.notify();
        Ok(bytes)
    }

    /// poll(2) of an end: readable when not empty, hung up when no writer is left (but see
    /// `PipeEnd::hup_after`); writable when a buffer is free, in error when no reader is left.
    fn readiness(&self, end: &PipeEnd) -> u16 {
        let s = self.lock();
        let mut mask = 0;
        if end.read {
            if !s.bufs.is_empty() {
                mask |= POLLIN | POLLRDNORM;
            }
            if s.writers == 0 && s.write_opens != end.hup_after {
                mask |= POLLHUP;
            }
        }
        if end.write {
            if !s.is_full() {
                mask |= POLLOUT | POLLWRNORM;
            }
            if s.readers == 0 {
                mask |= POLLERR;
            }
        }
        mask
    }
}

/// An open end of a pipe or fifo: the I/O of one open file description. Closing the
/// description (dropping this) closes the end.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
    /// poll reports no POLLHUP while the pipe's write-open count is still this: a fifo
    /// opened O_RDONLY|O_NONBLOCK before any writer is not hung up (Linux's f_pipe). 0
    /// otherwise, which the count of an anonymous pipe (1) never is.
    hup_after: u64,
}

impl PipeEnd {
    /// Opens an end (see `Pipe::open`).
    fn open(
        pipe: Arc<Pipe>,
        read: bool,
        write: bool,
        need_reader: bool,
    ) -> Result<(PipeEnd, Counts), Errno> {
        let counts = pipe.open(read, write, need_reader)?;
        let end = PipeEnd {
            pipe,
            read,
            write,
            hup_after: 0,
        };
        Ok((end, counts))
    }

    /// Waits until `moved` says the counts moved past `since` (a fifo's partner came).
    fn wait_for_partner(
        &self,
        since: Counts,
        moved: impl Fn(&State, Counts) -> bool,
    ) -> Result<(), Errno> {
        wait_until(&self.pipe.queue, &self.pipe.state, |s| {
            moved(s, since).then_some(())
        })
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.pipe.release(self.read, self.write);
    }
}

impl FileOps for PipeEnd {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_stream(buf, 0)
    }

    fn write(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_stream(buf, 0)
    }

    fn read_stream(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.pipe.read(buf, flags & O_NONBLOCK != 0)
    }

    fn write_stream(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        self.pipe
            .write(buf, flags & O_NONBLOCK != 0, flags & O_DIRECT != 0)
    }

    fn seek_mode(&self) -> SeekMode {
        SeekMode::Stream
    }

    fn readiness(&self) -> u16 {
        self.pipe.readiness(self)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn pipe(&self) -> Option<&Pipe> {
        Some(self.pipe.as_ref())
    }
}

/// A new anonymous pipe (pipe(2)) made by `owner`: its inode, its read end and its write
/// end.
pub fn new_pipe(owner: Owner) -> (Arc<dyn Inode>, Arc<dyn FileOps>, Arc<dyn FileOps>) {
    let pipe = Arc::new(Pipe::default());
    let end = |read: bool| -> Arc<dyn FileOps> {
        pipe.lock().count_open(read, !read);
        Arc::new(PipeEnd {
            pipe: pipe.clone(),
            read,
            write: !read,
            hup_after: 0,
        })
    };
    let (reader, writer) = (end(true), end(false));
    (
        super::pseudo::PseudoInode::new(FileType::Fifo, 0o600, PIPEFS_DEV, owner),
        reader,
        writer,
    )
}

/// The pipes of the fifos that are open, by inode.
static FIFOS: LazyLock<PerInode<Pipe>> = LazyLock::new(PerInode::default);

/// Opens the fifo whose inode is `key` with open flags `flags`, as Linux's fifo_open: all
/// openers share one pipe. O_RDWR never waits. O_RDONLY waits for a writer unless
/// O_NONBLOCK; O_WRONLY waits for a reader, or with O_NONBLOCK fails with ENXIO when there
/// is none.
pub fn open_fifo(key: InodeKey, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
    let pipe = FIFOS.get_or_insert_with(key, Pipe::default);
    let nonblock = flags & O_NONBLOCK != 0;
    let end = match flags & O_ACCMODE {
        O_RDONLY => {
            let (mut end, counts) = PipeEnd::open(pipe, true, false, false)?;
            if counts.writers == 0 && nonblock {
                end.hup_after = counts.write_opens;
            } else if counts.writers == 0 {
                end.wait_for_partner(counts, |s, c| s.write_opens != c.write_opens)?;
            }
            end
        }
        O_WRONLY => {
            let (end, counts) = PipeEnd::open(pipe, false, true, nonblock)?;
            if counts.readers == 0 {
                end.wait_for_partner(counts, |s, c| s.read_opens != c.read_opens)?;
            }
            end
        }
        O_RDWR => PipeEnd::open(pipe, true, true, false)?.0,
        _ => return Err(Errno::EINVAL),
    };
    Ok(Arc::new(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ME: Owner = Owner { uid: 7, gid: 8 };

    fn ends() -> (Arc<dyn FileOps>, Arc<dyn FileOps>) {
        let (_, r, w) = new_pipe(ME);
        (r, w)
    }

    const NB: u32 = O_NONBLOCK;

    #[test]
    fn bytes_flow_and_a_full_pipe_takes_no_more() {
        let (r, w) = ends();
        let mut buf = [0u8; 8];
        assert_eq!(r.read_stream(&mut buf, NB), Err(Errno::EAGAIN));
        assert_eq!(w.write_stream(b"abc", NB), Ok(3));
        assert_eq!(w.write_stream(b"de", NB), Ok(2));
        assert_eq!(r.pipe().unwrap().queued(), 5);
        assert_eq!(r.read_stream(&mut buf[..4], NB), Ok(4));
        assert_eq!(&buf[..4], b"abcd");
        assert_eq!(r.read_stream(&mut buf, NB), Ok(1));
        // 64 KiB fill it; the next byte does not fit.
        let big = vec![1u8; 65536];
        assert_eq!(w.write_stream(&big, NB), Ok(65536));
        assert_eq!(w.write_stream(b"x", NB), Err(Errno::EAGAIN));
        assert_eq!(w.readiness() & POLLOUT, 0);
        assert_eq!(r.readiness(), POLLIN | POLLRDNORM);
    }

    #[test]
    fn small_writes_are_atomic_and_big_ones_partial() {
        let (r, w) = ends();
        // Small writes share a page while they fit in it.
        assert_eq!(w.write_stream(b"x", NB), Ok(1));
        assert_eq!(w.write_stream(&[1u8; 4095], NB), Ok(4095));
        assert_eq!(w.write_stream(&[2u8; 15 * 4096], NB), Ok(15 * 4096));
        // Full: a small write goes in whole or not at all.
        assert_eq!(w.write_stream(&[3u8; 100], NB), Err(Errno::EAGAIN));
        let mut page = vec![0u8; 4096];
        assert_eq!(r.read_stream(&mut page, NB), Ok(4096));
        assert_eq!(&page[..2], &[b'x', 1]);
        // A big write fills what is free and says how much.
        assert_eq!(w.write_stream(&[5u8; 3 * 4096], NB), Ok(4096));
        assert_eq!(r.pipe().unwrap().queued(), 65536);
    }

    #[test]
    fn packets_are_read_one_at_a_time() {
        let (r, w) = ends();
        assert_eq!(w.write_stream(b"first", NB | O_DIRECT), Ok(5));
        assert_eq!(w.write_stream(b"second", NB | O_DIRECT), Ok(6));
        let mut buf = [0u8; 64];
        assert_eq!(r.read_stream(&mut buf, NB), Ok(5));
        // A short read drops the rest of the packet.
        assert_eq!(r.read_stream(&mut buf[..3], NB), Ok(3));
        assert_eq!(&buf[..3], b"sec");
        assert_eq!(r.read_stream(&mut buf, NB), Err(Errno::EAGAIN));
    }

    #[test]
    fn closing_ends_gives_eof_epipe_hup_and_err() {
        let (r, w) = ends();
        assert_eq!(w.write_stream(b"ab", NB), Ok(2));
        drop(w);
        let mut buf = [0u8; 8];
        assert_eq!(r.readiness(), POLLIN | POLLRDNORM | POLLHUP);
        assert_eq!(r.read_stream(&mut buf, 0), Ok(2));
        assert_eq!(r.read_stream(&mut buf, 0), Ok(0));
        let (r, w) = ends();
        drop(r);
        assert_eq!(w.write_stream(b"x", 0), Err(Errno::EPIPE));
        assert_eq!(w.write_stream(b"", 0), Ok(0));
        assert_eq!(w.readiness(), POLLOUT | POLLWRNORM | POLLERR);
    }

    #[test]
    fn set_size_rounds_and_refuses() {
        let (r, w) = ends();
        let pipe = r.pipe().unwrap();
        assert_eq!(pipe.size(), 65536);
        assert_eq!(pipe.set_size(0), Ok(4096));
        assert_eq!(pipe.set_size(5000), Ok(8192));
        assert_eq!(pipe.set_size(1 << 20), Ok(1 << 20));
        assert_eq!(pipe.set_size((1 << 20) + 1), Err(Errno::EPERM));
        assert_eq!(pipe.set_size((1 << 31) + 1), Err(Errno::EINVAL));
        assert_eq!(w.write_stream(&[0u8; 3 * 4096], NB), Ok(3 * 4096));
        assert_eq!(pipe.set_size(8192), Err(Errno::EBUSY));
        assert_eq!(pipe.set_size(16384), Ok(16384));
        assert_eq!(pipe.size(), 16384);
    }

    #[test]
    fn a_blocked_reader_is_woken_by_a_writer_on_another_thread() {
        let (r, w) = ends();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let n = r.read_stream(&mut buf, 0).unwrap();
            buf[..n].to_vec()
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(w.write_stream(b"wake", 0), Ok(4));
        assert_eq!(reader.join().unwrap(), b"wake");
    }

    #[test]
    fn a_blocked_writer_is_woken_by_a_reader_and_by_the_last_reader_leaving() {
        let (r, w) = ends();
        let w2 = w.clone();
        assert_eq!(w.write_stream(&[0u8; 65536], NB), Ok(65536));
        let writer = std::thread::spawn(move || w2.write_stream(&[1u8; 100], 0));
        std::thread::sleep(Duration::from_millis(20));
        let mut page = vec![0u8; 4096];
        assert_eq!(r.read_stream(&mut page, 0), Ok(4096));
        assert_eq!(writer.join().unwrap(), Ok(100));
        // Full again: a blocked writer gets EPIPE when the reader goes.
        let w3 = w.clone();
        let writer = std::thread::spawn(move || w3.write_stream(&[1u8; 4096], 0));
        std::thread::sleep(Duration::from_millis(20));
        drop(r);
        assert_eq!(writer.join().unwrap(), Err(Errno::EPIPE));
    }

    #[test]
    fn a_blocked_reader_sees_eof_when_the_writer_closes() {
        let (r, w) = ends();
        let reader = std::thread::spawn(move || r.read_stream(&mut [0u8; 4], 0));
        std::thread::sleep(Duration::from_millis(20));
        drop(w);
        assert_eq!(reader.join().unwrap(), Ok(0));
    }

    #[test]
    fn fifo_opens_wait_for_their_partner() {
        // A device number no other test uses: FIFOS is shared by the whole process.
        let key = (super::super::devices::makedev(0, 99), 1);
        assert_eq!(
            open_fifo(key, O_WRONLY | O_NONBLOCK).err(),
            Some(Errno::ENXIO)
        );
        let reader = open_fifo(key, O_RDONLY | O_NONBLOCK).unwrap();
        // No writer was ever there: not hung up, and reads see end of file.
        assert_eq!(reader.readiness(), 0);
        assert_eq!(reader.read_stream(&mut [0u8; 4], O_NONBLOCK), Ok(0));
        let writer = open_fifo(key, O_WRONLY | O_NONBLOCK).unwrap();
        assert_eq!(writer.write_stream(b"hi", 0), Ok(2));
        drop(writer);
        assert_eq!(reader.readiness(), POLLIN | POLLRDNORM | POLLHUP);
        drop(reader);
        // Everything closed: the data is gone with the pipe. A blocking reader waits for a
        // writer, which comes from another thread.
        let blocked = std::thread::spawn(move || open_fifo(key, O_RDONLY).map(|_| ()));
        std::thread::sleep(Duration::from_millis(20));
        let writer = open_fifo(key, O_WRONLY).unwrap();
        assert_eq!(blocked.join().unwrap(), Ok(()));
        assert_eq!(writer.pipe().unwrap().queued(), 0);
        // O_RDWR never waits.
        assert!(open_fifo((key.0, 2), O_RDWR).is_ok());
    }
}
