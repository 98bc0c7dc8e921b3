//! vCPUs shared by contexts.
//!
//! A context takes a vCPU when it enters `switch` and keeps it afterwards as a cache: the
//! next switch of the same context finds its guest thread's FP state still in it and runs
//! with no ioctl but KVM_RUN. There are at most as many vCPUs as the fixed region has
//! pages for, and far more guest threads may live (most of them blocked in the Sentry, not
//! in `switch`), so when every vCPU has been made a context that needs one takes it from a
//! context that is not running guest code: the victim's FP state is saved into the
//! victim's [`GuestThread`] and goes into whichever vCPU it gets next. Everything else a
//! guest thread has in a vCPU travels on every switch anyway (registers and FS/GS bases in
//! `Regs`, CR3 from the address space); debug registers are not used.
//!
//! Locking: each vCPU sits in a mutex that its owner holds for the whole of a switch (and
//! of an FP-state read or write). A context looking for a vCPU only ever `try_lock`s: if
//! it gets the lock, the owner is not in `switch` and cannot enter it until the vCPU has
//! changed hands. The owner word beside the mutex tells the old owner, without waiting
//! for the lock (the new owner may hold it through a long KVM_RUN), that it must look
//! for a vCPU itself. A context that finds every vCPU running guest code waits for one
//! to be let go. Lock order: the search, then a vCPU, then a [`GuestThread`]'s fields.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::Duration;

use kvm_bindings::kvm_xsave;
use kvm_ioctls::VcpuFd;

use super::{kvm_err, lock};
use crate::{Error, Interrupt, Result};

/// The XSAVE area as KVM_GET_XSAVE hands it out (the legacy 4 KiB buffer).
pub(super) type XsaveRegion = [u32; 1024];

/// One vCPU of the VM.
pub(super) struct Vcpu {
    pub fd: VcpuFd,
    /// Its number, which also picks its GDT/TSS/stack page.
    pub index: usize,
    /// kvm_run's immediate_exit byte, for kicks from other threads.
    pub immediate_exit: *mut u8,
}

// SAFETY: `immediate_exit` points into the vCPU's kvm_run mapping, owned by `fd`; it is
// only written atomically (see Kick), and the VcpuFd itself may move between threads.
unsafe impl Send for Vcpu {}

impl Vcpu {
    /// Clears a kick left in kvm_run.immediate_exit.
    pub fn clear_immediate_exit(&self) {
        // SAFETY: the byte is in this vCPU's kvm_run mapping, alive as long as `fd`; KVM
        // reads it, so it is only accessed atomically.
        unsafe { AtomicU8::from_ptr(self.immediate_exit).store(0, Ordering::SeqCst) };
    }
}

/// What of a context's guest thread other Sentry threads reach: its kick, and its FP state
/// while no vCPU holds it.
#[derive(Default)]
pub(super) struct GuestThread {
    pub kick: Kick,
    /// The FP state, saved here when a vCPU was taken from the thread; `None` while a vCPU
    /// holds it, or when the thread has the initial state.
    pub saved_fp: Mutex<Option<Box<XsaveRegion>>>,
}

impl Interrupt for GuestThread {
    fn interrupt(&self) {
        self.kick.interrupt();
    }
}

/// Cuts a context's KVM_RUN short: sets kvm_run.immediate_exit (so a KVM_RUN about to
/// start returns at once) and, while the vCPU runs, sends its thread
/// [`super::KICK_SIGNAL`].
#[derive(Default)]
pub(super) struct Kick {
    /// A kick not yet seen by the context: its next switch returns at once.
    pub pending: AtomicBool,
    /// The context's thread is in (or about to enter) KVM_RUN.
    pub running: AtomicBool,
    /// The thread and immediate_exit byte of the vCPU the context holds. Set and cleared
    /// only under that vCPU's lock, so a kick never reaches a vCPU that changed hands.
    pub target: Mutex<Option<(i32, ImmediateExit)>>,
}

pub(super) struct ImmediateExit(*mut u8);
// SAFETY: the pointer is only used under Kick::target's lock, and the target is cleared
// (under that lock) whenever the vCPU it points into leaves the context; vCPUs live as long
// as the VM, which the context keeps alive.
unsafe impl Send for ImmediateExit {}

impl Kick {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let target = lock(&self.target);
        if let Some((tid, ImmediateExit(byte))) = *target {
            // SAFETY: the byte is in the live kvm_run mapping of the vCPU the context holds
            // (see ImmediateExit); KVM reads it, so it is only accessed atomically.
            unsafe { AtomicU8::from_ptr(byte).store(1, Ordering::SeqCst) };
            if self.running.load(Ordering::SeqCst) {
                // SAFETY: tgkill only sends a signal; the thread has the empty handler.
                unsafe {
                    libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, super::KICK_SIGNAL);
                }
            }
        }
    }
}

/// A vCPU and the guest thread whose state it holds.
struct VcpuState {
    vcpu: Vcpu,
    /// `None` for a vCPU no context holds (never used, or its thread exited).
    owner: Option<Arc<GuestThread>>,
}

/// One vCPU and who holds it.
struct Slot {
    /// The address of the owner's [`GuestThread`] (0 for none), written with
    /// `state.owner` under its lock: it lets a context see that it lost the vCPU without
    /// waiting for the lock, which the new owner holds through its KVM_RUN.
    owner: AtomicUsize,
    state: Mutex<VcpuState>,
}

fn address(thread: &Arc<GuestThread>) -> usize {
    Arc::as_ptr(thread) as usize
}

/// A locked vCPU. Letting go of it wakes a context waiting for a vCPU.
pub(super) struct HeldVcpu<'p> {
    state: ManuallyDrop<MutexGuard<'p, VcpuState>>,
    slot: &'p Slot,
    pool: &'p VcpuPool,
}

impl HeldVcpu<'_> {
    fn owned_by(&self, thread: &Arc<GuestThread>) -> bool {
        self.state
            .owner
            .as_ref()
            .is_some_and(|owner| Arc::ptr_eq(owner, thread))
    }

    /// Lets go of the owner: its kicks no longer reach this vCPU. An owner whose thread
    /// exits calls this; its FP state goes with it.
    pub fn disown(&mut self) -> Option<Arc<GuestThread>> {
        let owner = self.state.owner.take()?;
        self.slot.owner.store(0, Ordering::Release);
        *lock(&owner.kick.target) = None;
        // A kick that came after the owner's last run must not cut the next one short.
        self.clear_immediate_exit();
        Some(owner)
    }

    /// Makes `thread` the owner, run by the calling thread: its kicks reach this vCPU.
    fn own(&mut self, thread: &Arc<GuestThread>) {
        self.state.owner = Some(thread.clone());
        self.slot.owner.store(address(thread), Ordering::Release);
        self.clear_immediate_exit();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        *lock(&thread.kick.target) = Some((tid, ImmediateExit(self.immediate_exit)));
    }
}

impl Deref for HeldVcpu<'_> {
    type Target = Vcpu;
    fn deref(&self) -> &Vcpu {
        &self.state.vcpu
    }
}

impl DerefMut for HeldVcpu<'_> {
    fn deref_mut(&mut self) -> &mut Vcpu {
        &mut self.state.vcpu
    }
}

impl Drop for HeldVcpu<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard is dropped here, once, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.state) };
        self.pool.unlocked();
    }
}

/// The VM's vCPUs: made as needed up to a limit, then shared.
pub(super) struct VcpuPool {
    /// vCPU `i` once made (they are made in order and live as long as the VM).
    slots: Box<[OnceLock<Slot>]>,
    /// Serializes the search for a vCPU.
    search: Mutex<Search>,
    /// Signalled when a vCPU is let go while a context waits for one.
    freed: Condvar,
    /// Contexts waiting for a vCPU (every one of them was running guest code).
    waiting: AtomicUsize,
    /// How many times a vCPU was taken from an idle context.
    steals: AtomicU64,
}

struct Search {
    /// vCPUs made so far: slots `0..made` are set.
    made: usize,
    /// How many may be made: the number of slots, or fewer once making one failed.
    limit: usize,
    /// Where the next search for a vCPU to take starts, so they are taken in turn.
    next_victim: usize,
}

impl VcpuPool {
    pub fn new(limit: usize) -> VcpuPool {
        VcpuPool {
            slots: (0..limit).map(|_| OnceLock::new()).collect(),
            search: Mutex::new(Search {
                made: 0,
                limit,
                next_victim: 0,
            }),
            freed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            steals: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> usize {
        self.slots.len()
    }

    pub fn steals(&self) -> u64 {
        self.steals.load(Ordering::Relaxed)
    }

    /// vCPU `index`, locked, if `thread` owns it: the common case of a context running
    /// on its own vCPU again, with no ioctl. Never waits for another owner's KVM_RUN.
    pub fn lock_owned(&self, index: usize, thread: &Arc<GuestThread>) -> Option<HeldVcpu<'_>> {
        let slot = self.slots.get(index)?.get()?;
        loop {
            if slot.owner.load(Ordering::Acquire) != address(thread) {
                return None;
            }
            // Still ours: anyone else holding the lock is looking for a vCPU, or taking
            // this one (and then changes the owner before it lets go or runs).
            if let Some(guard) = try_lock(&slot.state) {
                let held = self.held(slot, guard);
                return held.owned_by(thread).then_some(held);
            }
            std::thread::yield_now();
        }
    }

    fn held<'p>(&'p self, slot: &'p Slot, guard: MutexGuard<'p, VcpuState>) -> HeldVcpu<'p> {
        HeldVcpu {
            state: ManuallyDrop::new(guard),
            slot,
            pool: self,
        }
    }

    /// Makes one more vCPU (made by `make` from its index), if the limit allows.
    pub fn add(&self, make: &dyn Fn(usize) -> Result<Vcpu>) -> Result<()> {
        let mut search = lock(&self.search);
        self.make(&mut search, make).map(drop)
    }

    fn make<'p>(
        &'p self,
        search: &mut Search,
        make: &dyn Fn(usize) -> Result<Vcpu>,
    ) -> Result<(&'p Slot, MutexGuard<'p, VcpuState>)> {
        let index = search.made;
        let cell = self.slots.get(index).ok_or(Error::Host {
            what: "every vCPU of the sandbox is made",
            errno: nix::errno::Errno::EAGAIN,
        })?;
        let slot = Slot {
            owner: AtomicUsize::new(0),
            state: Mutex::new(VcpuState {
                vcpu: make(index)?,
                owner: None,
            }),
        };
        // Slots are only set here, in order, under the search lock: this one is empty.
        let _ = cell.set(slot);
        search.made += 1;
        let slot = cell.get().ok_or(Error::Host {
            what: "a vCPU slot was not filled",
            errno: nix::errno::Errno::EINVAL,
        })?;
        Ok((slot, lock(&slot.state)))
    }

    /// A vCPU for `thread`, locked, with the thread's FP state in it (or `init`, for a
    /// thread that has none saved) and its kick pointed at it. `make` makes a new vCPU
    /// from its index.
    pub fn acquire(
        &self,
        thread: &Arc<GuestThread>,
        init: &XsaveRegion,
        make: &dyn Fn(usize) -> Result<Vcpu>,
    ) -> Result<HeldVcpu<'_>> {
        let mut held = self.take(make)?;
        if held.state.owner.is_some() {
            // The owner is not in switch (it would hold the lock): its FP state moves out
            // to it, for whichever vCPU it gets next.
            let saved = held
                .fd
                .get_xsave()
                .map_err(kvm_err("saving an idle guest thread's FP state"))?;
            if let Some(victim) = held.disown() {
                *lock(&victim.saved_fp) = Some(Box::new(saved.region));
            }
            self.steals.fetch_add(1, Ordering::Relaxed);
        }
        let saved = lock(&thread.saved_fp).take();
        if let Err(e) = set_region(&held.fd, saved.as_deref().unwrap_or(init)) {
            *lock(&thread.saved_fp) = saved;
            return Err(e);
        }
        held.own(thread);
        Ok(held)
    }

    /// A locked vCPU that no context runs: one no context holds, else a new one while the
    /// limit allows, else one whose owner is idle (taken in turn), else the first to come
    /// free.
    fn take(&self, make: &dyn Fn(usize) -> Result<Vcpu>) -> Result<HeldVcpu<'_>> {
        let mut search = lock(&self.search);
        let mut counted = false;
        let taken = loop {
            let made = search.made;
            let mut free = None;
            let mut idle = None;
            for k in 0..made {
                let index = (search.next_victim + k) % made;
                let Some(slot) = self.slots.get(index).and_then(OnceLock::get) else {
                    continue;
                };
                let Some(guard) = try_lock(&slot.state) else {
                    continue;
                };
                if guard.owner.is_none() {
                    free = Some((slot, guard));
                    break;
                }
                if idle.is_none() {
                    idle = Some((index, slot, guard));
                }
            }
            if let Some(found) = free {
                break Ok(found);
            }
            if made < search.limit {
                drop(idle);
                match self.make(&mut search, make) {
                    // Sharing the vCPUs there are will do if the host has no more.
                    Err(_) if made > 0 => search.limit = made,
                    result => break result,
                }
                continue;
            }
            if let Some((index, slot, guard)) = idle {
                search.next_victim = (index + 1) % made;
                break Ok((slot, guard));
            }
            // Every vCPU runs guest code. Count ourselves as waiting, then look once more:
            // a vCPU let go before the count was seen is found then (see `unlocked`).
            if !counted {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                counted = true;
                continue;
            }
            // The timeout only bounds the cost of a wake-up this reasoning missed.
            search = self
                .freed
                .wait_timeout(search, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        if counted {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        drop(search);
        // Guards passed over above were let go under the search lock, without a wake-up.
        self.unlocked();
        taken.map(|(slot, guard)| self.held(slot, guard))
    }

    /// After a vCPU's lock is let go: wakes the contexts waiting for one, if any.
    fn unlocked(&self) {
        // Pairs with the fence in `take`: either the waiter's second look finds this vCPU
        // unlocked, or this load sees it counted. Taking the search lock makes sure it is
        // asleep (or not yet looking) when notified.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            let _search = lock(&self.search);
            self.freed.notify_all();
        }
    }
}

fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// KVM_SET_XSAVE of `region`.
pub(super) fn set_region(fd: &VcpuFd, region: &XsaveRegion) -> Result<()> {
    let xsave = kvm_xsave {
        region: *region,
        ..Default::default()
    };
    // SAFETY: kvm_xsave is the 4 KiB legacy buffer KVM_SET_XSAVE reads; the guest's XSAVE
    // area was checked to fit it when the VM was made.
    unsafe { fd.set_xsave(&xsave) }.map_err(kvm_err("writing the guest's FP state"))
}
