//! epoll(7): an interest list of (open file, descriptor) pairs with the events each waits
//! for, and a ready list, after Linux's fs/eventpoll.c.
//!
//! Design. Each interest is an [`Entry`], which subscribes to its file's wait queue as a
//! [`Subscriber`]: when the file notifies a change that concerns events the entry watches,
//! the entry puts itself on its epoll's ready list (once) and notifies the epoll's own queue.
//! That queue wakes threads in epoll_wait and, through their own entries, epolls that watch
//! this one, so nesting needs nothing more. epoll_wait ([`Epoll::harvest`]) takes the ready
//! list and asks each entry's file for its readiness now (Linux's ep_send_events): a
//! level-triggered entry that was ready goes back on the list and is reported until its file
//! stops being ready; an edge-triggered one does not, and comes back only with its file's
//! next notification, i.e. when something changed since the last report; a one-shot one
//! is disabled until EPOLL_CTL_MOD. A file with no wait queue (a host stream) cannot
//! notify: its entry stays on the list, and epoll_wait polls the host for it.
//!
//! An entry holds its file weakly: the interest goes when the open file description's last
//! reference does, not when one descriptor of it is closed (Linux's eventpoll_release). Each
//! open file keeps the entries that watch it ([`Watches`]); its drop marks them removed and
//! unsubscribes them, and the epoll sweeps removed entries out at its next change.
//!
//! Locks, in the order they may be taken: [`NESTING`] (only to add an epoll to an epoll), an
//! epoll's `interest` (a watching epoll's before a watched one's), a file's own state (a
//! pipe's), a wait queue's list, then leaves: an epoll's `ready` list and a file's
//! `Watches`. An entry's notification runs under its file's queue lock and takes only leaves
//! and the queue of its epoll; dropping an open file takes only leaves and its own queue,
//! so the last reference to a file may go under any of these locks.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::abi::{
    EpollEvent, Errno, EPOLLET, EPOLLEXCLUSIVE, EPOLLONESHOT, EPOLLWAKEUP, EPOLL_CTL_ADD,
    EPOLL_CTL_DEL, EPOLL_CTL_MOD, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM,
};
use crate::vfs::{FileOps, OpenFile, SeekMode, O_RDWR};
use crate::waiter::{Subscriber, WaitQueue};

/// The longest chain of epolls watching epolls, in links (Linux's EP_MAX_NESTS): five
/// instances at most.
const MAX_NESTS: usize = 4;

/// The bits of an interest's events that are no poll events (EP_PRIVATE_BITS): all a one-shot
/// interest keeps once it fired.
const EP_PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;

/// What EPOLLEXCLUSIVE may come with (EPOLLEXCLUSIVE_OK_BITS).
const EXCLUSIVE_OK_BITS: u32 =
    (POLLIN | POLLOUT | POLLERR | POLLHUP) as u32 | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

/// Always watched, whatever the guest asks (epoll_ctl(2)).
const ALWAYS: u32 = (POLLERR | POLLHUP) as u32;

/// Held while an epoll is added to an epoll, so that two such additions cannot make a cycle
/// together (Linux's epnested_mutex).
static NESTING: Mutex<()> = Mutex::new(());

/// An entry's key in its interest list: the open file description's id and the descriptor.
type Key = (u64, i32);

/// One interest: `file` watched by `epoll` for `events`, reported with `data`. The events
/// and data change under the epoll's `interest` lock and are atomics so that the file's
/// notifications can read them without it.
pub struct Entry {
    me: Weak<Entry>,
    key: Key,
    file: Weak<OpenFile>,
    epoll: Weak<Epoll>,
    events: AtomicU32,
    data: AtomicU64,
    /// On the epoll's ready list (Linux's rdllink in use).
    queued: AtomicBool,
    /// Deleted, or its file is gone: notifications and harvests skip it.
    removed: AtomicBool,
    /// For a file with no wait queue: the events the last harvest saw, so that an
    /// edge-triggered entry reports only what is new.
    seen: AtomicU32,
}

impl Entry {
    fn watched(&self) -> u32 {
        self.events.load(SeqCst)
    }

    fn removed(&self) -> bool {
        self.removed.load(SeqCst)
    }

    /// What a harvest would report for `file` now, as (events to report, events ready).
    fn check(&self, file: &OpenFile) -> (u32, u32) {
        let watched = self.watched();
        let now = u32::from(file.readiness()) & watched;
        if file.wait_queue().is_none() && watched & EPOLLET != 0 {
            (now & !self.seen.load(SeqCst), now)
        } else {
            (now, now)
        }
    }

    /// Leaves the file's queue and its list of watchers.
    fn unsubscribe(self: &Arc<Self>, file: &OpenFile) {
        self.removed.store(true, SeqCst);
        if let Some(queue) = file.wait_queue() {
            queue.remove(&(self.clone() as Arc<dyn Subscriber>));
        }
        file.watches().remove(self);
    }
}

impl Subscriber for Entry {
    /// Linux's ep_poll_callback: a change to events the entry watches makes it ready.
    fn notify(&self, events: u16) {
        let watched = self.watched();
        // A one-shot entry that fired waits for EPOLL_CTL_MOD.
        if watched & !EP_PRIVATE_BITS == 0 || u32::from(events) & watched == 0 || self.removed() {
            return;
        }
        if let (Some(me), Some(epoll)) = (self.me.upgrade(), self.epoll.upgrade()) {
            epoll.mark_ready(me);
            epoll.queue.notify_events(POLLIN | POLLRDNORM);
        }
    }
}

/// The entries watching one open file (Linux's file->f_ep), kept by the file so that its
/// last reference can end them.
#[derive(Default)]
pub struct Watches {
    entries: Mutex<Vec<Arc<Entry>>>,
}

impl Watches {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, entry: Arc<Entry>) {
        self.lock().push(entry);
    }

    fn remove(&self, entry: &Arc<Entry>) {
        self.lock().retain(|e| !Arc::ptr_eq(e, entry));
    }

    /// The epolls watching the file.
    fn epolls(&self) -> Vec<Arc<Epoll>> {
        let entries = self.lock().clone();
        entries
            .iter()
            .filter(|e| !e.removed())
            .filter_map(|e| e.epoll.upgrade())
            .collect()
    }

    /// The file's last reference is gone: every interest in it ends. `queue` is the file's
    /// wait queue.
    pub fn release(&self, queue: Option<&WaitQueue>) {
        let entries = std::mem::take(&mut *self.lock());
        for entry in entries {
            entry.removed.store(true, SeqCst);
            if let Some(queue) = queue {
                queue.remove(&(entry.clone() as Arc<dyn Subscriber>));
            }
            if let Some(epoll) = entry.epoll.upgrade() {
                epoll.dead.fetch_add(1, SeqCst);
            }
        }
    }
}

/// An epoll instance (Linux's struct eventpoll). `interest` is the interest list and
/// serializes changes and harvests; `ready` holds entries that may be ready; `queue` is
/// notified when one may have become so.
#[derive(Default)]
pub struct Epoll {
    interest: Mutex<BTreeMap<Key, Arc<Entry>>>,
    ready: Mutex<VecDeque<Arc<Entry>>>,
    queue: WaitQueue,
    /// The open file that is this instance, for the epolls that watch it.
    file: OnceLock<Weak<OpenFile>>,
    /// How many entries were removed by their file going away since the last sweep.
    dead: AtomicUsize,
}

impl Epoll {
    /// The interest list, without the entries whose files went away.
    fn interest(&self) -> MutexGuard<'_, BTreeMap<Key, Arc<Entry>>> {
        let mut interest = self.interest.lock().unwrap_or_else(|e| e.into_inner());
        if self.dead.swap(0, SeqCst) > 0 {
            interest.retain(|_, e| !e.removed());
        }
        interest
    }

    fn ready(&self) -> MutexGuard<'_, VecDeque<Arc<Entry>>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The queue epoll_wait sleeps on.
    pub fn queue(&self) -> &WaitQueue {
        &self.queue
    }

    /// Puts `entry` on the ready list unless it is there.
    fn mark_ready(&self, entry: Arc<Entry>) {
        if !entry.queued.swap(true, SeqCst) {
            self.ready().push_back(entry);
        }
    }

    /// epoll_ctl(2) once the descriptors are checked: `op` on the interest in `target` at
    /// descriptor `fd`. EEXIST, ENOENT, EINVAL (a bad op, EPOLLEXCLUSIVE misused) and ELOOP
    /// as Linux's do_epoll_ctl.
    pub fn ctl(
        self: &Arc<Self>,
        op: u64,
        fd: i32,
        target: &Arc<OpenFile>,
        event: EpollEvent,
    ) -> Result<(), Errno> {
        let (events, data) = (event.events, event.data);
        if op != EPOLL_CTL_DEL && events & EPOLLEXCLUSIVE != 0 {
            let bad_add = op == EPOLL_CTL_ADD
                && (target.epoll().is_some() || events & !EXCLUSIVE_OK_BITS != 0);
            if op == EPOLL_CTL_MOD || bad_add {
                return Err(Errno::EINVAL);
            }
        }
        let _nesting = match (op, target.epoll()) {
            (EPOLL_CTL_ADD, Some(inner)) => {
                let guard = NESTING.lock().unwrap_or_else(|e| e.into_inner());
                self.check_nesting(inner)?;
                Some(guard)
            }
            _ => None,
        };
        let key = (target.id(), fd);
        let mut interest = self.interest();
        let entry = match op {
            EPOLL_CTL_ADD => {
                if interest.contains_key(&key) {
                    return Err(Errno::EEXIST);
                }
                let entry = Arc::new_cyclic(|me| Entry {
                    me: me.clone(),
                    key,
                    file: Arc::downgrade(target),
                    epoll: Arc::downgrade(self),
                    events: AtomicU32::new(events | ALWAYS),
                    data: AtomicU64::new(data),
                    queued: AtomicBool::new(false),
                    removed: AtomicBool::new(false),
                    seen: AtomicU32::new(0),
                });
                interest.insert(key, entry.clone());
                target.watches().add(entry.clone());
                if let Some(queue) = target.wait_queue() {
                    queue.add(entry.clone());
                }
                entry
            }
            EPOLL_CTL_DEL => {
                let entry = interest.remove(&key).ok_or(Errno::ENOENT)?;
                drop(interest);
                entry.unsubscribe(target);
                return Ok(());
            }
            EPOLL_CTL_MOD => {
                let entry = interest.get(&key).ok_or(Errno::ENOENT)?.clone();
                // An exclusive interest cannot be changed, only deleted.
                if entry.watched() & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                entry.events.store(events | ALWAYS, SeqCst);
                entry.data.store(data, SeqCst);
                entry.seen.store(0, SeqCst);
                entry
            }
            _ => return Err(Errno::EINVAL),
        };
        drop(interest);
        // The file may be ready already (ep_insert and ep_modify poll it): let the next
        // harvest look, and wake whoever waits for one.
        self.mark_ready(entry);
        self.queue.notify_events(POLLIN | POLLRDNORM);
        Ok(())
    }

    /// Linux's ep_loop_check: adding `to` to this epoll must close no cycle and make no
    /// chain of epolls longer than MAX_NESTS links, counting those above this one.
    fn check_nesting(&self, to: &Arc<Epoll>) -> Result<(), Errno> {
        let down = to.depth_below(self, 0, &mut HashMap::new());
        if down > MAX_NESTS {
            return Err(Errno::ELOOP);
        }
        let up = self.depth_above(0, &mut HashMap::new());
        if down + 1 + up > MAX_NESTS {
            return Err(Errno::ELOOP);
        }
        Ok(())
    }

    /// The epolls this one watches.
    fn children(&self) -> Vec<Arc<Epoll>> {
        let entries: Vec<Arc<Entry>> = self.interest().values().cloned().collect();
        entries
            .iter()
            .filter_map(|e| e.file.upgrade())
            .filter_map(|f| f.epoll().cloned())
            .collect()
    }

    /// The longest chain of epolls below this one, or MAX_NESTS + 1 if one reaches `into`
    /// or goes too deep (ep_loop_check_proc). `memo` keeps what was found per instance.
    fn depth_below(&self, into: &Epoll, depth: usize, memo: &mut HashMap<usize, usize>) -> usize {
        let id = self as *const Epoll as usize;
        if let Some(&known) = memo.get(&id) {
            return known;
        }
        let mut result = 0;
        for child in self.children() {
            result = if std::ptr::eq(&*child, into) || depth > MAX_NESTS {
                MAX_NESTS + 1
            } else {
                result.max(child.depth_below(into, depth + 1, memo) + 1)
            };
            if result > MAX_NESTS {
                break;
            }
        }
        memo.insert(id, result);
        result
    }

    /// The longest chain of epolls above this one (ep_get_upwards_depth_proc).
    fn depth_above(&self, depth: usize, memo: &mut HashMap<usize, usize>) -> usize {
        let id = self as *const Epoll as usize;
        if let Some(&known) = memo.get(&id) {
            return known;
        }
        let parents = match self.file.get().and_then(Weak::upgrade) {
            Some(file) => file.watches().epolls(),
            None => Vec::new(),
        };
        let mut result = 0;
        for parent in parents {
            // The graph has no cycles; the bound only keeps a bug from recursing forever.
            if depth > MAX_NESTS {
                result = MAX_NESTS + 1;
                break;
            }
            result = result.max(parent.depth_above(depth + 1, memo) + 1);
        }
        memo.insert(id, result);
        result
    }

    /// epoll_wait's harvest: up to `max` events of the entries on the ready list, as Linux's
    /// ep_send_events. Level-triggered entries that were ready stay on the list; entries
    /// not looked at keep their place at its head.
    pub fn harvest(&self, max: usize) -> Vec<EpollEvent> {
        // Files the harvest held last: they may close when dropped, after the locks.
        let mut files = Vec::new();
        let mut out = Vec::new();
        let mut again = Vec::new();
        let interest = self.interest();
        let mut batch = std::mem::take(&mut *self.ready());
        while out.len() < max {
            let Some(entry) = batch.pop_front() else {
                break;
            };
            // Cleared before the file is asked: a change from now on queues it again.
            entry.queued.store(false, SeqCst);
            if entry.removed() {
                continue;
            }
            let Some(file) = entry.file.upgrade() else {
                continue;
            };
            let watched = entry.watched();
            let (report, now) = entry.check(&file);
            let unwatched = file.wait_queue().is_none();
            files.push(file);
            if unwatched {
                // It cannot say when it changes: looked at in every harvest.
                entry.seen.store(now, SeqCst);
                again.push(entry.clone());
            }
            if report == 0 {
                continue;
            }
            out.push(EpollEvent {
                events: report,
                data: entry.data.load(SeqCst),
            });
            if watched & EPOLLONESHOT != 0 {
                entry.events.fetch_and(EP_PRIVATE_BITS, SeqCst);
            } else if watched & EPOLLET == 0 && !unwatched {
                again.push(entry);
            }
        }
        let mut ready = self.ready();
        while let Some(entry) = batch.pop_back() {
            ready.push_front(entry);
        }
        drop(ready);
        for entry in again {
            self.mark_ready(entry);
        }
        drop(interest);
        drop(files);
        out
    }

    /// poll(2) of the epoll file: readable when a harvest would report something
    /// (ep_eventpoll_poll). Nothing is taken off the ready list.
    pub fn readiness(&self) -> u16 {
        let queued: Vec<Arc<Entry>> = self.ready().iter().cloned().collect();
        let ready = queued
            .iter()
            .filter(|e| !e.removed())
            .any(|e| e.file.upgrade().is_some_and(|file| e.check(&file).0 != 0));
        if ready {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }

    /// The host streams in the interest list, with the events a wait should poll the host
    /// for (an edge-triggered entry: only those not seen yet).
    pub fn host_streams(&self) -> Vec<(Arc<OwnedFd>, u16)> {
        let entries: Vec<Arc<Entry>> = self.interest().values().cloned().collect();
        entries
            .iter()
            .filter(|e| !e.removed())
            .filter_map(|e| {
                let file = e.file.upgrade()?;
                let fd = super::host::host_stream(&file)?;
                let watched = e.watched();
                let mut want = watched as u16;
                if watched & EPOLLET != 0 {
                    let seen = e.seen.load(SeqCst) as u16;
                    // The host reports a hangup or error whether asked or not: once
                    // reported, polling for its edges would return at once for ever.
                    if seen & (POLLERR | POLLHUP) != 0 {
                        return None;
                    }
                    want &= !seen;
                }
                (want != 0 && watched & !EP_PRIVATE_BITS != 0).then_some((fd, want))
            })
            .collect()
    }

    /// The lines of /proc/PID/fdinfo/N, one per interest (ep_show_fdinfo).
    fn fdinfo(&self) -> Vec<u8> {
        let entries: Vec<Arc<Entry>> = self.interest().values().cloned().collect();
        let mut out = String::new();
        for entry in entries.iter().filter(|e| !e.removed()) {
            let Some(file) = entry.file.upgrade() else {
                continue;
            };
            let attr = file.attr().unwrap_or_default();
            // The kernel's own dev_t (MKDEV), not the one stat shows.
            let (d, ino) = (attr.dev, attr.ino);
            let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
            let minor = (d & 0xff) | ((d >> 12) & !0xff);
            out.push_str(&format!(
                "tfd: {:8} events: {:8x} data: {:16x}  pos:{} ino:{:x} sdev:{:x}\n",
                entry.key.1,
                entry.watched(),
                entry.data.load(SeqCst),
                file.offset() as i64,
                ino,
                (major << 20) | minor,
            ));
        }
        out.into_bytes()
    }

    /// The epoll file's last reference is gone: every interest ends.
    fn close(&self) {
        let entries = std::mem::take(&mut *self.interest());
        self.ready().clear();
        for entry in entries.into_values() {
            entry.removed.store(true, SeqCst);
            if let Some(file) = entry.file.upgrade() {
                entry.unsubscribe(&file);
            }
        }
    }
}

/// The I/O of an epoll file: none, but it can be polled and watched.
struct EpollFile {
    epoll: Arc<Epoll>,
}

impl Drop for EpollFile {
    fn drop(&mut self) {
        self.epoll.close();
    }
}

impl FileOps for EpollFile {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    /// lseek answers 0, as Linux's noop_llseek.
    fn seek_mode(&self) -> SeekMode {
        SeekMode::AlwaysZero
    }

    fn readiness(&self) -> u16 {
        self.epoll.readiness()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.epoll.queue)
    }

    fn epoll(&self) -> Option<&Arc<Epoll>> {
        Some(&self.epoll)
    }

    fn fdinfo(&self) -> Vec<u8> {
        self.epoll.fdinfo()
    }
}

/// A new epoll instance's open file (epoll_create1(2)).
pub fn new_epoll_file() -> Arc<OpenFile> {
    let epoll = Arc::new(Epoll::default());
    let ops = Arc::new(EpollFile {
        epoll: epoll.clone(),
    });
    let file = super::anon::new_file("eventpoll", ops, O_RDWR);
    // Set once, here: the instance and its file live and die together.
    let _ = epoll.file.set(Arc::downgrade(&file));
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::pipe::new_pipe;
    use crate::vfs::{Owner, O_NONBLOCK, O_RDONLY, O_WRONLY};
    use std::time::Duration;

    const IN: u32 = POLLIN as u32;
    const OUT: u32 = POLLOUT as u32;
    const HUP: u32 = POLLHUP as u32;
    const RDNORM: u32 = POLLRDNORM as u32;

    /// A pipe's read and write ends as open files.
    fn pipe() -> (Arc<OpenFile>, Arc<OpenFile>) {
        let (inode, r, w) = new_pipe(Owner { uid: 0, gid: 0 });
        (
            OpenFile::new(None, inode.clone(), r, O_RDONLY | O_NONBLOCK),
            OpenFile::new(None, inode, w, O_WRONLY | O_NONBLOCK),
        )
    }

    fn epoll() -> (Arc<OpenFile>, Arc<Epoll>) {
        let file = new_epoll_file();
        let epoll = file.epoll().expect("an epoll file").clone();
        (file, epoll)
    }

    fn ev(events: u32, data: u64) -> EpollEvent {
        EpollEvent { events, data }
    }

    /// The (events, data) of a harvest of up to 16.
    fn harvest(epoll: &Epoll) -> Vec<(u32, u64)> {
        epoll
            .harvest(16)
            .into_iter()
            .map(|e| (e.events, e.data))
            .collect()
    }

    #[test]
    fn add_mod_del_follow_the_interest_list_rules() {
        let (_f, ep) = epoll();
        let (r, _w) = pipe();
        assert_eq!(ep.ctl(EPOLL_CTL_MOD, 3, &r, ev(IN, 1)), Err(Errno::ENOENT));
        assert_eq!(ep.ctl(EPOLL_CTL_DEL, 3, &r, ev(0, 0)), Err(Errno::ENOENT));
        assert_eq!(ep.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN, 1)), Ok(()));
        assert_eq!(ep.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN, 1)), Err(Errno::EEXIST));
        // The same file at another descriptor is another interest.
        assert_eq!(ep.ctl(EPOLL_CTL_ADD, 4, &r, ev(IN, 2)), Ok(()));
        assert_eq!(ep.ctl(EPOLL_CTL_MOD, 3, &r, ev(OUT, 1)), Ok(()));
        assert_eq!(ep.ctl(9, 3, &r, ev(IN, 1)), Err(Errno::EINVAL));
        assert_eq!(ep.ctl(EPOLL_CTL_DEL, 3, &r, ev(0, 0)), Ok(()));
        assert_eq!(ep.ctl(EPOLL_CTL_DEL, 3, &r, ev(0, 0)), Err(Errno::ENOENT));
        // EPOLLEXCLUSIVE: not with EPOLLONESHOT, never changed by MOD.
        let bad = EPOLLEXCLUSIVE | EPOLLONESHOT | IN;
        assert_eq!(ep.ctl(EPOLL_CTL_ADD, 5, &r, ev(bad, 0)), Err(Errno::EINVAL));
        let excl = EPOLLEXCLUSIVE | IN;
        assert_eq!(ep.ctl(EPOLL_CTL_ADD, 5, &r, ev(excl, 0)), Ok(()));
        assert_eq!(ep.ctl(EPOLL_CTL_MOD, 5, &r, ev(IN, 0)), Err(Errno::EINVAL));
        assert_eq!(ep.ctl(EPOLL_CTL_DEL, 5, &r, ev(0, 0)), Ok(()));
    }

    #[test]
    fn level_triggered_reports_until_drained() {
        let (_f, ep) = epoll();
        let (r, w) = pipe();
        ep.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN, 7)).unwrap();
        assert_eq!(harvest(&ep), vec![]);
        assert_eq!(ep.readiness(), 0);
        w.write(b"ab").unwrap();
        assert_eq!(ep.readiness(), POLLIN | POLLRDNORM);
        assert_eq!(harvest(&ep), vec![(IN, 7)]);
        assert_eq!(harvest(&ep), vec![(IN, 7)], "still ready: reported again");
        r.read(&mut [0u8; 2]).unwrap();
        assert_eq!(harvest(&ep), vec![]);
        assert_eq!(ep.readiness(), 0);
    }

    #[test]
    fn edge_triggered_reports_each_change_once() {
        let (_f, ep) = epoll();
        let (r, w) = pipe();
        ep.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN | RDNORM | EPOLLET, 1))
            .unwrap();
        w.write(b"ab").unwrap();
        assert_eq!(harvest(&ep), vec![(IN | RDNORM, 1)]);
        assert_eq!(harvest(&ep), vec![], "nothing new");
        // Reading changes nothing a reader watches (Linux wakes only writers).
        r.read(&mut [0u8; 1]).unwrap();
        assert_eq!(harvest(&ep), vec![]);
        w.write(b"c").unwrap();
        assert_eq!(harvest(&ep), vec![(IN | RDNORM, 1)], "new data");
        // The writer leaving is a change too.
        drop(w);
        assert_eq!(harvest(&ep), vec![(IN | RDNORM | HUP, 1)]);
    }

    #[test]
    fn one_shot_fires_once_until_modified() {
        let (_f, ep) = epoll();
        let (r, w) = pipe();
        ep.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN | EPOLLONESHOT, 1))
            .unwrap();
        w.write(b"a").unwrap();
        assert_eq!(harvest(&ep), vec![(IN, 1)]);
        w.write(b"b").unwrap();
        assert_eq!(harvest(&ep), vec![], "disabled");
        ep.ctl(EPOLL_CTL_MOD, 3, &r, ev(IN | EPOLLONESHOT, 2))
            .unwrap();
        assert_eq!(harvest(&ep), vec![(IN, 2)], "re-armed");
    }

    #[test]
    fn max_events_leaves_the_rest_for_the_next_harvest() {
        let (_f, ep) = epoll();
        let pipes: Vec<_> = (0..3).map(|_| pipe()).collect();
        for (i, (r, w)) in pipes.iter().enumerate() {
            ep.ctl(EPOLL_CTL_ADD, i as i32, r, ev(IN, i as u64))
                .unwrap();
            w.write(b"x").unwrap();
        }
        let first: Vec<u64> = ep.harvest(2).iter().map(|e| e.data).collect();
        assert_eq!(first, vec![0, 1]);
        // The one not looked at comes first, then the level-triggered ones again.
        let next: Vec<u64> = ep.harvest(3).iter().map(|e| e.data).collect();
        assert_eq!(next, vec![2, 0, 1]);
    }

    #[test]
    fn the_interest_goes_with_the_last_reference_to_the_file() {
        let (_f, ep) = epoll();
        let (r, w) = pipe();
        let r2 = r.clone(); // as dup(2) would
        ep.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN, 1)).unwrap();
        w.write(b"a").unwrap();
        drop(r);
        assert_eq!(harvest(&ep), vec![(IN, 1)], "a reference is left");
        let queue_len = |f: &OpenFile| format!("{:?}", f.wait_queue().unwrap());
        assert!(queue_len(&w).contains("subscribers: 1"));
        drop(r2);
        assert_eq!(harvest(&ep), vec![]);
        assert!(queue_len(&w).contains("subscribers: 0"), "unsubscribed");
        assert!(ep.interest().is_empty(), "swept");
    }

    #[test]
    fn closing_the_epoll_unsubscribes_its_entries() {
        let (f, ep) = epoll();
        let (r, w) = pipe();
        ep.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN, 1)).unwrap();
        drop((f, ep));
        w.write(b"a").unwrap();
        assert!(format!("{:?}", r.wait_queue().unwrap()).contains("subscribers: 0"));
        assert!(r.watches().lock().is_empty());
    }

    #[test]
    fn nested_epolls_see_readiness_and_refuse_cycles_and_depth() {
        let files: Vec<_> = (0..6).map(|_| epoll()).collect();
        let (r, w) = pipe();
        files[0].1.ctl(EPOLL_CTL_ADD, 9, &r, ev(IN, 0)).unwrap();
        // A chain of five: e0 in e1 in ... in e4.
        for i in 0..4 {
            let (inner, outer) = (&files[i].0, &files[i + 1].1);
            assert_eq!(
                outer.ctl(EPOLL_CTL_ADD, i as i32, inner, ev(IN, i as u64)),
                Ok(())
            );
        }
        assert_eq!(
            files[5].1.ctl(EPOLL_CTL_ADD, 4, &files[4].0, ev(IN, 4)),
            Err(Errno::ELOOP),
            "a sixth level"
        );
        assert_eq!(
            files[0].1.ctl(EPOLL_CTL_ADD, 2, &files[2].0, ev(IN, 2)),
            Err(Errno::ELOOP),
            "a cycle"
        );
        assert_eq!(files[4].1.readiness(), 0);
        w.write(b"x").unwrap();
        assert_eq!(files[4].1.readiness(), POLLIN | POLLRDNORM);
        assert_eq!(harvest(&files[4].1), vec![(IN, 3)]);
    }

    #[test]
    fn a_waiter_is_woken_through_two_levels() {
        let (inner_file, inner) = epoll();
        let (_outer_file, outer) = epoll();
        let (r, w) = pipe();
        inner.ctl(EPOLL_CTL_ADD, 3, &r, ev(IN, 1)).unwrap();
        outer
            .ctl(EPOLL_CTL_ADD, 4, &inner_file, ev(IN | EPOLLET, 2))
            .unwrap();
        assert_eq!(harvest(&outer), vec![]);
        let waiter = std::thread::spawn(move || {
            crate::waiter::wait_until(outer.queue(), &Mutex::new(()), |_| {
                let got = harvest(&outer);
                (!got.is_empty()).then_some(got)
            })
        });
        std::thread::sleep(Duration::from_millis(20));
        w.write(b"x").unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(vec![(IN, 2)]));
    }
}
