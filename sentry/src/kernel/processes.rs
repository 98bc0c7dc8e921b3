//! The sandbox's processes: pid allocation, the parent/child tree, process groups and
//! sessions with their controlling terminals, zombies, and waiting for children (wait4,
//! waitid).
//!
//! One lock guards the whole tree, as Linux's tasklist_lock does: every question here
//! (who are my children, which have exited, who adopts the orphans) needs a consistent view
//! of several processes at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::signals::{self, SigInfo, Target};
use super::{ExitStatus, ThreadGroup};
use crate::abi::Errno;
use crate::fs::tty::Tty;
use crate::waiter::WaitQueue;

/// The highest pid (Linux's default pid_max is 4194304 on 64-bit machines).
pub const PID_MAX: i32 = 4_194_304;
/// The signal a parent is sent when its child exits, by default.
pub const SIGCHLD: i32 = 17;
/// How many exits of processes without a parent in the sandbox are kept for
/// [`ProcessTable::wait_process`] before the oldest are forgotten.
const DETACHED_EXITS_KEPT: usize = 1024;

/// Every process of the sandbox, live or zombie. `tree` is guarded by its mutex; `changed`
/// is notified whenever a process exits, stops or continues, so waiters look again.
#[derive(Debug, Default)]
pub struct ProcessTable {
    tree: Mutex<Tree>,
    changed: WaitQueue,
    exit_hook: ExitHook,
}

/// What is done with a process's pid as it exits, before its parent can see the exit.
#[derive(Default)]
struct ExitHook(OnceLock<Box<dyn Fn(i32) + Send + Sync>>);

impl std::fmt::Debug for ExitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExitHook({})", self.0.get().is_some())
    }
}

#[derive(Debug, Default)]
struct Tree {
    /// The next pid to try.
    next: i32,
    processes: BTreeMap<i32, Process>,
    /// Threads other than group leaders: tid → the pid of their process. Tids and pids
    /// are one number space, as in Linux.
    threads: BTreeMap<i32, i32>,
    /// How processes started from outside the sandbox (no parent in it) ended, oldest
    /// first, until someone asks ([`ProcessTable::wait_process`]); their pids are not
    /// handed out again meanwhile, so that the answer is about the right process.
    detached_exits: VecDeque<(i32, ExitStatus)>,
}

impl Tree {
    /// The next free pid after the last handed out, wrapping around past 300 as Linux
    /// does (EAGAIN if every pid is in use).
    fn alloc(&mut self) -> Result<i32, Errno> {
        let mut pid = self.next.max(1);
        let mut tries = 0;
        let taken = |tree: &Tree, pid: i32| {
            tree.processes.contains_key(&pid)
                || tree.threads.contains_key(&pid)
                || tree.detached_exits.iter().any(|&(p, _)| p == pid)
        };
        while taken(self, pid) || pid >= PID_MAX {
            pid = if pid >= PID_MAX { 300 } else { pid + 1 };
            tries += 1;
            if tries > PID_MAX {
                return Err(Errno::EAGAIN);
            }
        }
        self.next = pid + 1;
        Ok(pid)
    }
}

#[derive(Debug)]
struct Process {
    tg: Arc<ThreadGroup>,
    /// The parent's pid; 0 for the sandbox's init and for processes started from outside
    /// the sandbox (runc exec), whose parent is outside it.
    parent: i32,
    pgid: i32,
    sid: i32,
    /// The signal the parent gets when this process exits (clone's low byte; 0 for none).
    exit_signal: i32,
    /// Whether it has called execve since fork (setpgid then refuses with EACCES).
    execed: bool,
    /// Set once it has exited: a zombie until its parent reaps it.
    exit: Option<Exited>,
    /// The signal that stopped it, until a wait reports the stop (WUNTRACED).
    stop_report: Option<i32>,
    /// Its controlling terminal (Linux keeps it per process, in signal->tty): inherited by
    /// children, dropped by setsid and when the session loses the terminal.
    ctty: Option<Arc<Tty>>,
}

impl Process {
    /// A process with no parent in the sandbox (init, or one started from outside it),
    /// leading a session and process group of its own.
    fn session_leader(tg: Arc<ThreadGroup>) -> Process {
        let pid = tg.pid;
        Process {
            tg,
            parent: 0,
            pgid: pid,
            sid: pid,
            exit_signal: SIGCHLD,
            execed: true,
            exit: None,
            stop_report: None,
            ctty: None,
        }
    }
}

impl Process {
    fn info(&self) -> ProcessInfo {
        ProcessInfo {
            parent: self.parent,
            pgid: self.pgid,
            sid: self.sid,
            exit_signal: self.exit_signal,
            exit: self.exit,
        }
    }
}

/// What a wait reports about a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEvent {
    Exited(Exited),
    Stopped { pid: i32, signo: i32 },
    Continued { pid: i32 },
}

impl ChildEvent {
    pub fn pid(&self) -> i32 {
        match *self {
            ChildEvent::Exited(e) => e.pid,
            ChildEvent::Stopped { pid, .. } | ChildEvent::Continued { pid } => pid,
        }
    }
}

/// A process's place in the tree and its exit, if it has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessInfo {
    pub parent: i32,
    pub pgid: i32,
    pub sid: i32,
    pub exit_signal: i32,
    pub exit: Option<Exited>,
}

/// What a zombie leaves for its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited {
    pub pid: i32,
    pub uid: u32,
    pub status: ExitStatus,
    /// CPU time it used.
    pub cpu: Duration,
}

/// Which children a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    Any,
    Pid(i32),
    /// Members of this process group.
    Group(i32),
}

/// How a wait selects and treats children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitOptions {
    /// WNOHANG: return at once if no child has exited.
    pub no_hang: bool,
    /// WNOWAIT: leave the zombie to be waited for again.
    pub no_reap: bool,
    /// __WALL: children with any exit signal; __WCLONE: only those whose exit signal is not
    /// SIGCHLD. Neither: only those that signal SIGCHLD.
    pub all: bool,
    pub clone_only: bool,
    /// WEXITED (always for wait4), WUNTRACED/WSTOPPED, WCONTINUED.
    pub exited: bool,
    pub stopped: bool,
    pub continued: bool,
}

impl ProcessTable {
    fn lock(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds the sandbox's first process; its pid must be 1.
    pub fn add_init(&self, tg: Arc<ThreadGroup>) {
        let mut tree = self.lock();
        let pid = tg.pid;
        tree.next = pid + 1;
        tree.processes.insert(pid, Process::session_leader(tg));
    }

    /// Adds a process started from outside the sandbox (runc exec), made by `make` with a
    /// new pid: it has no parent in the sandbox and leads a new session and process group.
    /// It is reaped as it exits; [`ProcessTable::wait_process`] tells how it ended.
    pub fn add_detached(
        &self,
        make: impl FnOnce(i32) -> Arc<ThreadGroup>,
    ) -> Result<Arc<ThreadGroup>, Errno> {
        let mut tree = self.lock();
        let pid = tree.alloc()?;
        let tg = make(pid);
        tree.processes
            .insert(pid, Process::session_leader(tg.clone()));
        Ok(tg)
    }

    /// Adds a child forked by `parent`, made by `make` with a new pid: the next free one
    /// after the last handed out, wrapping around past 300 as Linux does (EAGAIN if every
    /// pid is in use). The child joins the parent's process group and session.
    pub fn add_child(
        &self,
        parent: i32,
        exit_signal: i32,
        make: impl FnOnce(i32) -> Arc<ThreadGroup>,
    ) -> Result<Arc<ThreadGroup>, Errno> {
        let mut tree = self.lock();
        let pid = tree.alloc()?;
        let (pgid, sid, ctty) = tree
            .processes
            .get(&parent)
            .map_or((parent, parent, None), |p| (p.pgid, p.sid, p.ctty.clone()));
        let tg = make(pid);
        tree.processes.insert(
            pid,
            Process {
                tg: tg.clone(),
                parent,
                pgid,
                sid,
                exit_signal,
                execed: false,
                exit: None,
                stop_report: None,
                ctty,
            },
        );
        Ok(tg)
    }

    /// A tid for a new thread of process `pid`.
    pub fn add_thread(&self, pid: i32) -> Result<i32, Errno> {
        let mut tree = self.lock();
        let tid = tree.alloc()?;
        tree.threads.insert(tid, pid);
        Ok(tid)
    }

    /// Frees the tid of a thread that has exited.
    pub fn remove_thread(&self, tid: i32) {
        self.lock().threads.remove(&tid);
    }

    /// The process that thread `tid` belongs to (a pid is its own process's leader), live
    /// or zombie (a zombie can still be sent signals, which it ignores).
    pub fn process_of(&self, tid: i32) -> Option<Arc<ThreadGroup>> {
        let tree = self.lock();
        let pid = tree.threads.get(&tid).copied().unwrap_or(tid);
        tree.processes.get(&pid).map(|p| p.tg.clone())
    }

    /// Every live process in process group `pgid`.
    pub fn group(&self, pgid: i32) -> Vec<Arc<ThreadGroup>> {
        self.lock()
            .processes
            .values()
            .filter(|p| p.pgid == pgid && p.exit.is_none())
            .map(|p| p.tg.clone())
            .collect()
    }

    /// Records that process `tg` stopped for `signo` and tells its parent (SIGCHLD with
    /// CLD_STOPPED unless the parent asked for SA_NOCLDSTOP).
    pub fn stopped(&self, tg: &ThreadGroup, signo: i32) {
        let parent = {
            let mut tree = self.lock();
            if let Some(p) = tree.processes.get_mut(&tg.pid) {
                p.stop_report = Some(signo);
            }
            tree.processes
                .get(&tg.pid)
                .and_then(|p| tree.processes.get(&p.parent))
                .map(|p| p.tg.clone())
        };
        self.changed.notify();
        if let Some(parent) = parent {
            let nocldstop =
                parent.actions()[(SIGCHLD - 1) as usize].flags & signals::SA_NOCLDSTOP != 0;
            if !nocldstop {
                let info = SigInfo::child(SIGCHLD, signals::CLD_STOPPED, tg.pid, 0, signo, 0);
                let _ = signals::send(&parent, Target::Process, info);
            }
        }
    }

    /// Sets what is done for each process as it exits (once; later calls are ignored).
    pub fn on_exit(&self, hook: Box<dyn Fn(i32) + Send + Sync>) {
        let _ = self.exit_hook.0.set(hook);
    }

    /// Records that `pid` has exited: it becomes a zombie for its parent to reap (or is
    /// reaped at once if the parent ignores SIGCHLD), its parent gets its exit signal, and
    /// its children are adopted by init.
    pub fn exit(&self, exited: Exited) {
        let pid = exited.pid;
        if let Some(hook) = self.exit_hook.0.get() {
            hook(pid);
        }
        let mut tree = self.lock();
        // A session leader's exit takes the controlling terminal from its session.
        let leader_tty = tree
            .processes
            .get_mut(&pid)
            .and_then(|p| p.ctty.take().filter(|_| p.sid == pid));
        // The groups this exit may orphan: its own, if its parent was its link to the
        // session, and its children's, where it was theirs (Linux's kill_orphaned_pgrp).
        let mut may_orphan = Vec::new();
        if let Some(me) = tree.processes.get(&pid) {
            let link = |other: Option<&Process>| {
                other.is_some_and(|o| o.pgid != me.pgid && o.sid == me.sid)
            };
            if link(tree.processes.get(&me.parent)) {
                may_orphan.push(me.pgid);
            }
            for child in tree.processes.values() {
                if child.parent == pid && child.pgid != me.pgid && child.sid == me.sid {
                    may_orphan.push(child.pgid);
                }
            }
        }
        // Orphans go to the nearest live ancestor that is a subreaper, else to init.
        let mut reaper = 1;
        let mut ancestor = tree.processes.get(&pid).map_or(0, |p| p.parent);
        while let Some(p) = tree.processes.get(&ancestor) {
            if p.exit.is_none() && p.tg.subreaper.load(Ordering::Relaxed) {
                reaper = ancestor;
                break;
            }
            ancestor = p.parent;
        }
        let mut orphans = Vec::new();
        for child in tree.processes.values_mut() {
            if child.parent == pid {
                child.parent = reaper;
                if child.exit.is_none() {
                    orphans.push(child.tg.clone());
                }
            }
        }
        // Reaped at once if the parent ignores SIGCHLD; otherwise a zombie for the parent
        // (init's parent is outside the sandbox: it stays a zombie, never waited for). A
        // process started from outside is reaped, its status kept for wait_process.
        let parent = tree.processes.get(&pid).map(|p| p.parent);
        let detached = parent == Some(0) && pid != 1;
        let autoreap = detached
            || parent
                .and_then(|ppid| tree.processes.get(&ppid))
                .is_some_and(|parent| parent.tg.ignores_children());
        if detached {
            if tree.detached_exits.len() >= DETACHED_EXITS_KEPT {
                tree.detached_exits.pop_front();
            }
            tree.detached_exits.push_back((pid, exited.status));
        }
        let exit_signal = tree.processes.get(&pid).map_or(0, |p| p.exit_signal);
        let parent_tg = parent
            .and_then(|ppid| tree.processes.get(&ppid))
            .map(|p| p.tg.clone());
        if autoreap {
            tree.processes.remove(&pid);
        } else if let Some(p) = tree.processes.get_mut(&pid) {
            p.exit = Some(exited);
        }
        drop(tree);
        self.changed.notify();
        if let Some(tty) = leader_tty {
            tty.disassociate(self, true);
        }
        may_orphan.sort_unstable();
        may_orphan.dedup();
        for pgid in may_orphan {
            self.hang_up_if_orphaned(pgid);
        }
        // PR_SET_PDEATHSIG: children that asked are told their parent died.
        for orphan in orphans {
            let sig = orphan.pdeath_signal.load(Ordering::Relaxed);
            if sig > 0 {
                let _ = signals::send(
                    &orphan,
                    Target::Process,
                    SigInfo::new(sig, signals::SI_USER),
                );
            }
        }
        if let (Some(parent), true) = (parent_tg, exit_signal > 0) {
            let (code, status) = match exited.status {
                ExitStatus::Exited(code) => (signals::CLD_EXITED, code as i32),
                ExitStatus::Signaled(sig) => (signals::CLD_KILLED, sig),
            };
            let ticks = (exited.cpu.as_millis() / 10) as i64;
            let info = SigInfo::child(exit_signal, code, pid, exited.uid, status, ticks);
            let _ = signals::send(&parent, Target::Process, info);
        }
    }

    /// POSIX: a process group that became orphaned with a stopped member gets SIGHUP and
    /// SIGCONT, since no job-control shell is left to continue it.
    fn hang_up_if_orphaned(&self, pgid: i32) {
        if !self.is_orphaned_pgrp(pgid) {
            return;
        }
        let members = self.group(pgid);
        if !members.iter().any(|tg| tg.signals().stop.is_some()) {
            return;
        }
        for sig in [signals::SIGHUP, signals::SIGCONT] {
            for tg in &members {
                let info = SigInfo::new(sig, signals::SI_KERNEL);
                let _ = signals::send(tg, Target::Process, info);
            }
        }
        for tg in &members {
            self.continued(tg);
        }
    }

    /// Forgets a child that never ran (its thread could not be started).
    pub fn remove(&self, pid: i32) {
        self.lock().processes.remove(&pid);
    }

    /// Marks `pid` as having called execve.
    pub fn execed(&self, pid: i32) {
        if let Some(p) = self.lock().processes.get_mut(&pid) {
            p.execed = true;
        }
    }

    /// Waits until process `pid` has exited (init has no parent in the sandbox to wait for
    /// it) and returns how it ended; a process that is gone counts as killed.
    pub fn wait_exit(&self, pid: i32) -> ExitStatus {
        let waker = crate::waiter::Waker::current();
        let _subscription = self.changed.subscribe(&waker);
        loop {
            match self.lock().processes.get(&pid) {
                Some(Process {
                    exit: Some(exited), ..
                }) => return exited.status,
                None => return ExitStatus::Signaled(crate::abi::SIGKILL),
                Some(_) => {}
            }
            waker.sleep(None);
        }
    }

    /// Waits until process `pid` has exited and tells how it ended: a zombie's status
    /// (left for its parent to reap), or once that of a process started from outside the
    /// sandbox, which was reaped as it exited. None if there is no such process (or its
    /// exit was already told).
    pub fn wait_process(&self, pid: i32) -> Option<ExitStatus> {
        let waker = crate::waiter::Waker::current();
        let _subscription = self.changed.subscribe(&waker);
        loop {
            {
                let mut tree = self.lock();
                let kept = tree.detached_exits.iter().position(|&(p, _)| p == pid);
                if let Some(i) = kept {
                    return tree.detached_exits.remove(i).map(|(_, status)| status);
                }
                match tree.processes.get(&pid) {
                    None => return None,
                    Some(Process {
                        exit: Some(exited), ..
                    }) => return Some(exited.status),
                    Some(_) => {}
                }
            }
            waker.sleep(None);
        }
    }

    /// Waits until no process is live, or until `deadline`: whether none is.
    pub fn wait_none_live(&self, deadline: std::time::Instant) -> bool {
        let waker = crate::waiter::Waker::current();
        let _subscription = self.changed.subscribe(&waker);
        loop {
            if self.lock().processes.values().all(|p| p.exit.is_some()) {
                return true;
            }
            if !waker.sleep(Some(deadline)) {
                return self.lock().processes.values().all(|p| p.exit.is_some());
            }
        }
    }

    /// After SIGCONT reached `tg`: if that ended a stop, its parent is told (SIGCHLD with
    /// CLD_CONTINUED unless SA_NOCLDSTOP) and WCONTINUED waits look again.
    pub fn continued(&self, tg: &ThreadGroup) {
        if !tg.signals().continued {
            return;
        }
        if let Some(p) = self.lock().processes.get_mut(&tg.pid) {
            p.stop_report = None;
        }
        self.changed.notify();
        let parent = self.get(self.parent_of(tg.pid));
        if let Some(parent) = parent {
            let nocldstop =
                parent.actions()[(SIGCHLD - 1) as usize].flags & signals::SA_NOCLDSTOP != 0;
            if !nocldstop {
                let info = SigInfo::child(
                    SIGCHLD,
                    signals::CLD_CONTINUED,
                    tg.pid,
                    0,
                    signals::SIGCONT,
                    0,
                );
                let _ = signals::send(&parent, Target::Process, info);
            }
        }
    }

    /// wait4/waitid: a child of `waiter` that `which` and `options` select and that has
    /// exited (reaped unless `no_reap`), or stopped or continued if those are asked for.
    /// Blocks until there is one, unless `no_hang` (then `Ok(None)`); EINTR if a signal
    /// comes first. ECHILD if `waiter` has no such child at all.
    pub fn wait(
        &self,
        waiter: i32,
        which: WaitFor,
        options: WaitOptions,
    ) -> Result<Option<ChildEvent>, Errno> {
        crate::waiter::wait_until(&self.changed, &self.tree, |tree| {
            match Self::find(tree, waiter, which, options) {
                Ok(None) if !options.no_hang => None,
                result => Some(result),
            }
        })?
    }

    fn find(
        tree: &mut Tree,
        waiter: i32,
        which: WaitFor,
        options: WaitOptions,
    ) -> Result<Option<ChildEvent>, Errno> {
        let mut any = false;
        let mut found = None;
        for (&pid, p) in tree.processes.iter_mut() {
            let selected = p.parent == waiter
                && match which {
                    WaitFor::Any => true,
                    WaitFor::Pid(want) => pid == want,
                    WaitFor::Group(pgid) => p.pgid == pgid,
                }
                && (options.all || (p.exit_signal == SIGCHLD) != options.clone_only);
            if !selected {
                continue;
            }
            any = true;
            if let Some(exited) = p.exit {
                if options.exited {
                    found = Some(ChildEvent::Exited(exited));
                    break;
                }
                continue;
            }
            if options.stopped {
                if let Some(signo) = p.stop_report {
                    if !options.no_reap {
                        p.stop_report = None;
                    }
                    found = Some(ChildEvent::Stopped { pid, signo });
                    break;
                }
            }
            if options.continued {
                let mut signals = p.tg.signals();
                if signals.continued {
                    if !options.no_reap {
                        signals.continued = false;
                    }
                    found = Some(ChildEvent::Continued { pid });
                    break;
                }
            }
        }
        if let Some(ChildEvent::Exited(exited)) = found {
            if !options.no_reap {
                // The parent takes over the CPU time of the child and of the children
                // it reaped (RUSAGE_CHILDREN).
                if let Some(child) = tree.processes.remove(&exited.pid) {
                    let inherited = exited.cpu + *child.tg.children_cpu();
                    if let Some(parent) = tree.processes.get(&waiter) {
                        *parent.tg.children_cpu() += inherited;
                    }
                }
            }
        }
        if found.is_none() && !any {
            return Err(Errno::ECHILD);
        }
        Ok(found)
    }

    /// The parent's pid (0 for init or a process that is gone).
    pub fn parent_of(&self, pid: i32) -> i32 {
        self.lock().processes.get(&pid).map_or(0, |p| p.parent)
    }

    /// The process group of `pid`, or ESRCH.
    pub fn pgid_of(&self, pid: i32) -> Result<i32, Errno> {
        self.lock()
            .processes
            .get(&pid)
            .map(|p| p.pgid)
            .ok_or(Errno::ESRCH)
    }

    /// The session of `pid`, or ESRCH.
    pub fn sid_of(&self, pid: i32) -> Result<i32, Errno> {
        self.lock()
            .processes
            .get(&pid)
            .map(|p| p.sid)
            .ok_or(Errno::ESRCH)
    }

    /// setpgid(2) by `caller`: moves `pid` (the caller or one of its children) into process
    /// group `pgid`, which must be its own pid or an existing group of the same session.
    pub fn setpgid(&self, caller: i32, pid: i32, pgid: i32) -> Result<(), Errno> {
        let pid = if pid == 0 { caller } else { pid };
        let pgid = if pgid == 0 { pid } else { pgid };
        if pgid < 0 {
            return Err(Errno::EINVAL);
        }
        let mut tree = self.lock();
        let caller_sid = tree.processes.get(&caller).ok_or(Errno::ESRCH)?.sid;
        let target = tree.processes.get(&pid).ok_or(Errno::ESRCH)?;
        if pid != caller {
            if target.parent != caller {
                return Err(Errno::ESRCH);
            }
            if target.sid != caller_sid {
                return Err(Errno::EPERM);
            }
            if target.execed {
                return Err(Errno::EACCES);
            }
        }
        if target.sid == pid {
            return Err(Errno::EPERM);
        }
        if pgid != pid
            && !tree
                .processes
                .values()
                .any(|p| p.pgid == pgid && p.sid == caller_sid && p.exit.is_none())
        {
            return Err(Errno::EPERM);
        }
        if let Some(target) = tree.processes.get_mut(&pid) {
            target.pgid = pgid;
        }
        Ok(())
    }

    /// setsid(2): `pid` leads a new session and process group, unless it already leads a
    /// process group (EPERM).
    pub fn setsid(&self, pid: i32) -> Result<i32, Errno> {
        let mut tree = self.lock();
        if tree.processes.values().any(|p| p.pgid == pid) {
            return Err(Errno::EPERM);
        }
        let p = tree.processes.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.pgid = pid;
        p.sid = pid;
        p.ctty = None;
        Ok(pid)
    }

    /// The controlling terminal of `pid`.
    pub fn ctty_of(&self, pid: i32) -> Option<Arc<Tty>> {
        self.lock().processes.get(&pid).and_then(|p| p.ctty.clone())
    }

    /// Gives `pid` controlling terminal `tty` (None: takes it away, as TIOCNOTTY of a
    /// process that does not lead its session).
    pub fn set_ctty(&self, pid: i32, tty: Option<Arc<Tty>>) {
        if let Some(p) = self.lock().processes.get_mut(&pid) {
            p.ctty = tty;
        }
    }

    /// Takes `tty` from every process of session `sid` that has it as its controlling
    /// terminal (Linux's session_clear_tty); returns the session leader if it was one of
    /// them.
    pub fn clear_ctty(&self, sid: i32, tty: &Tty) -> Option<Arc<ThreadGroup>> {
        let mut tree = self.lock();
        let mut leader = None;
        for (&pid, p) in tree.processes.iter_mut() {
            let has = p
                .ctty
                .as_ref()
                .is_some_and(|c| std::ptr::eq(Arc::as_ptr(c), tty));
            if p.sid == sid && has {
                p.ctty = None;
                if pid == sid && p.exit.is_none() {
                    leader = Some(p.tg.clone());
                }
            }
        }
        leader
    }

    /// Whether process group `pgid` has a live member in session `sid`: ESRCH if the group
    /// has no live member at all, EPERM if it is in another session (TIOCSPGRP's checks).
    pub fn group_in_session(&self, pgid: i32, sid: i32) -> Result<(), Errno> {
        let tree = self.lock();
        let mut members = tree
            .processes
            .values()
            .filter(|p| p.pgid == pgid && p.exit.is_none())
            .peekable();
        if members.peek().is_none() {
            return Err(Errno::ESRCH);
        }
        if members.any(|p| p.sid == sid) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// Whether process group `pgid` is orphaned: no member has a parent in another group of
    /// the same session, so no job-control shell is there to continue it (POSIX; Linux's
    /// will_become_orphaned_pgrp). Init's parent is outside the sandbox and counts for
    /// nothing.
    pub fn is_orphaned_pgrp(&self, pgid: i32) -> bool {
        let tree = self.lock();
        !tree
            .processes
            .values()
            .filter(|p| p.pgid == pgid && p.exit.is_none())
            .any(|p| {
                tree.processes
                    .get(&p.parent)
                    .is_some_and(|parent| parent.pgid != pgid && parent.sid == p.sid)
            })
    }

    /// The process `pid`, live or zombie.
    pub fn get(&self, pid: i32) -> Option<Arc<ThreadGroup>> {
        self.lock().processes.get(&pid).map(|p| p.tg.clone())
    }

    /// Every process that has not exited, by pid.
    pub fn live(&self) -> Vec<Arc<ThreadGroup>> {
        self.lock()
            .processes
            .values()
            .filter(|p| p.exit.is_none())
            .map(|p| p.tg.clone())
            .collect()
    }

    /// Every process in the table, live or zombie, by pid, with its place in the tree.
    pub fn entries(&self) -> Vec<(Arc<ThreadGroup>, ProcessInfo)> {
        self.lock()
            .processes
            .values()
            .map(|p| (p.tg.clone(), p.info()))
            .collect()
    }

    /// Every pid in the table, live or zombie, in order (for /proc).
    pub fn pids(&self) -> Vec<i32> {
        self.lock().processes.keys().copied().collect()
    }

    /// Where `pid` stands in the tree (for /proc/PID/stat and status).
    pub fn info(&self, pid: i32) -> Option<ProcessInfo> {
        self.lock().processes.get(&pid).map(Process::info)
    }

    /// The pid handed out last (/proc/loadavg shows it).
    pub fn last_pid(&self) -> i32 {
        (self.lock().next - 1).max(0)
    }

    /// Whether `pid` exists and has exited (a zombie).
    pub fn is_zombie(&self, pid: i32) -> bool {
        self.lock()
            .processes
            .get(&pid)
            .is_some_and(|p| p.exit.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{Rlimit, RLIM_NLIMITS};

    fn tg(pid: i32) -> Arc<ThreadGroup> {
        let unlimited = Rlimit {
            cur: u64::MAX,
            max: u64::MAX,
        };
        Arc::new(ThreadGroup::new(
            pid,
            "/x".into(),
            [unlimited; RLIM_NLIMITS],
        ))
    }

    fn exited(pid: i32, code: u8) -> Exited {
        Exited {
            pid,
            uid: 0,
            status: ExitStatus::Exited(code),
            cpu: Duration::ZERO,
        }
    }

    const EXITED: WaitOptions = WaitOptions {
        no_hang: false,
        no_reap: false,
        all: false,
        clone_only: false,
        exited: true,
        stopped: false,
        continued: false,
    };

    fn gone(pid: i32, code: u8) -> ChildEvent {
        ChildEvent::Exited(exited(pid, code))
    }

    #[test]
    fn children_are_waited_for_and_reaped_once() {
        let table = ProcessTable::default();
        table.add_init(tg(1));
        let child = table.add_child(1, SIGCHLD, tg).unwrap();
        assert_eq!(child.pid, 2);
        let hang = WaitOptions {
            no_hang: true,
            exited: true,
            ..WaitOptions::default()
        };
        assert_eq!(table.wait(1, WaitFor::Any, hang), Ok(None));
        assert_eq!(table.wait(2, WaitFor::Any, hang), Err(Errno::ECHILD));
        assert_eq!(table.wait(1, WaitFor::Pid(3), hang), Err(Errno::ECHILD));
        table.exit(exited(2, 7));
        let peek = WaitOptions {
            no_reap: true,
            ..hang
        };
        assert_eq!(table.wait(1, WaitFor::Any, peek), Ok(Some(gone(2, 7))));
        assert_eq!(table.wait(1, WaitFor::Any, hang), Ok(Some(gone(2, 7))));
        assert_eq!(table.wait(1, WaitFor::Any, hang), Err(Errno::ECHILD));
    }

    #[test]
    fn a_blocked_wait_wakes_when_the_child_exits() {
        let table = Arc::new(ProcessTable::default());
        table.add_init(tg(1));
        table.add_child(1, SIGCHLD, tg).unwrap();
        let t2 = table.clone();
        let exiter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.exit(exited(2, 3));
        });
        let got = table.wait(1, WaitFor::Any, EXITED);
        assert_eq!(got, Ok(Some(gone(2, 3))));
        exiter.join().unwrap();
    }

    #[test]
    fn orphans_go_to_init_and_groups_follow_linux_rules() {
        let table = ProcessTable::default();
        table.add_init(tg(1));
        table.add_child(1, SIGCHLD, tg).unwrap();
        table.add_child(2, SIGCHLD, tg).unwrap();
        assert_eq!(table.pgid_of(3), Ok(1));
        assert_eq!(table.setpgid(2, 3, 0), Ok(()));
        assert_eq!(table.pgid_of(3), Ok(3));
        assert_eq!(table.setpgid(2, 3, 77), Err(Errno::EPERM));
        assert_eq!(table.setpgid(2, 1, 0), Err(Errno::ESRCH));
        assert_eq!(table.setpgid(2, 0, -1), Err(Errno::EINVAL));
        // 3 leads a group, so it cannot start a session; 2 can.
        assert_eq!(table.setsid(3), Err(Errno::EPERM));
        assert_eq!(table.setsid(2), Ok(2));
        assert_eq!(table.sid_of(2), Ok(2));
        // A session leader cannot change its group.
        assert_eq!(table.setpgid(2, 0, 3), Err(Errno::EPERM));
        table.exit(exited(2, 0));
        assert_eq!(table.parent_of(3), 1);
        let got = table.wait(1, WaitFor::Any, EXITED);
        assert_eq!(got, Ok(Some(gone(2, 0))));
        table.exit(exited(3, 1));
        let got = table.wait(1, WaitFor::Group(3), EXITED);
        assert_eq!(got, Ok(Some(gone(3, 1))));
    }

    #[test]
    fn a_process_started_from_outside_is_reaped_and_its_status_told_once() {
        let table = Arc::new(ProcessTable::default());
        table.add_init(tg(1));
        let detached = table.add_detached(tg).unwrap();
        assert_eq!(detached.pid, 2);
        assert_eq!(table.parent_of(2), 0);
        assert_eq!((table.pgid_of(2), table.sid_of(2)), (Ok(2), Ok(2)));
        let child = table.add_child(2, SIGCHLD, tg).unwrap();
        let t2 = table.clone();
        let waiter = std::thread::spawn(move || t2.wait_process(2));
        std::thread::sleep(Duration::from_millis(20));
        table.exit(exited(2, 5));
        assert_eq!(waiter.join().unwrap(), Some(ExitStatus::Exited(5)));
        // Reaped as it exited: nobody can wait for it, and its child went to init.
        assert_eq!(table.get(2).map(|tg| tg.pid), None);
        assert_eq!(table.parent_of(child.pid), 1);
        assert_eq!(table.wait_process(2), None);
        assert_eq!(table.wait_process(99), None);
        // A kept status holds its pid until it is told.
        table.add_detached(tg).unwrap();
        table.exit(exited(4, 0));
        table.lock().next = 4;
        assert_eq!(table.add_detached(tg).unwrap().pid, 5);
        assert_eq!(table.wait_process(4), Some(ExitStatus::Exited(0)));
        // A zombie's status is told as long as it is a zombie.
        table.exit(exited(child.pid, 1));
        assert_eq!(table.wait_process(child.pid), Some(ExitStatus::Exited(1)));
        assert!(table.is_zombie(child.pid));
    }

    #[test]
    fn wclone_selects_children_by_exit_signal() {
        let table = ProcessTable::default();
        table.add_init(tg(1));
        table.add_child(1, 0, tg).unwrap();
        let hang = WaitOptions {
            no_hang: true,
            exited: true,
            ..WaitOptions::default()
        };
        assert_eq!(table.wait(1, WaitFor::Any, hang), Err(Errno::ECHILD));
        let clone_only = WaitOptions {
            clone_only: true,
            ..hang
        };
        assert_eq!(table.wait(1, WaitFor::Any, clone_only), Ok(None));
        let all = WaitOptions { all: true, ..hang };
        table.exit(exited(2, 0));
        assert_eq!(table.wait(1, WaitFor::Any, all), Ok(Some(gone(2, 0))));
    }
}
