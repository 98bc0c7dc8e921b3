//! The sandbox's processes: pid allocation, the parent/child tree, process groups and
//! sessions, zombies, and waiting for children (wait4, waitid).
//!
//! One lock guards the whole tree, as Linux's tasklist_lock does: every question here
//! (who are my children, which have exited, who adopts the orphans) needs a consistent view
//! of several processes at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::{ExitStatus, ThreadGroup};
use crate::abi::Errno;

/// The highest pid (Linux's default pid_max is 4194304 on 64-bit machines).
pub const PID_MAX: i32 = 4_194_304;
/// The signal a parent is sent when its child exits, by default.
pub const SIGCHLD: i32 = 17;

/// Every process of the sandbox, live or zombie. `tree` is guarded by its mutex; `changed`
/// is notified whenever a process exits, so waiters look again.
#[derive(Debug, Default)]
pub struct ProcessTable {
    tree: Mutex<Tree>,
    changed: Condvar,
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
}

#[derive(Debug)]
struct Process {
    tg: Arc<ThreadGroup>,
    /// The parent's pid; 0 for the sandbox's init, whose parent is outside the sandbox.
    parent: i32,
    pgid: i32,
    sid: i32,
    /// The signal the parent gets when this process exits (clone's low byte; 0 for none).
    exit_signal: i32,
    /// Whether it has called execve since fork (setpgid then refuses with EACCES).
    execed: bool,
    /// Set once it has exited: a zombie until its parent reaps it.
    exit: Option<Exited>,
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
        tree.processes.insert(
            pid,
            Process {
                tg,
                parent: 0,
                pgid: pid,
                sid: pid,
                exit_signal: SIGCHLD,
                execed: true,
                exit: None,
            },
        );
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
        let mut pid = tree.next.max(1);
        let mut tries = 0;
        while tree.processes.contains_key(&pid) || pid >= PID_MAX {
            pid = if pid >= PID_MAX { 300 } else { pid + 1 };
            tries += 1;
            if tries > PID_MAX {
                return Err(Errno::EAGAIN);
            }
        }
        let (pgid, sid) = tree
            .processes
            .get(&parent)
            .map_or((parent, parent), |p| (p.pgid, p.sid));
        let tg = make(pid);
        tree.next = pid + 1;
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
            },
        );
        Ok(tg)
    }

    /// Sets what is done for each process as it exits (once; later calls are ignored).
    pub fn on_exit(&self, hook: Box<dyn Fn(i32) + Send + Sync>) {
        let _ = self.exit_hook.0.set(hook);
    }

    /// Records that `pid` has exited: it becomes a zombie for its parent to reap (or is
    /// reaped at once if the parent ignores SIGCHLD), and its children are adopted by init.
    pub fn exit(&self, exited: Exited) {
        let pid = exited.pid;
        if let Some(hook) = self.exit_hook.0.get() {
            hook(pid);
        }
        let mut tree = self.lock();
        for child in tree.processes.values_mut() {
            if child.parent == pid {
                child.parent = 1;
            }
        }
        // Reaped at once if the parent ignores SIGCHLD; otherwise a zombie for the parent
        // (init's parent is outside the sandbox: it stays a zombie, never waited for).
        let parent = tree.processes.get(&pid).map(|p| p.parent);
        let autoreap = parent
            .and_then(|ppid| tree.processes.get(&ppid))
            .is_some_and(|parent| parent.tg.ignores_children());
        if autoreap {
            tree.processes.remove(&pid);
        } else if let Some(p) = tree.processes.get_mut(&pid) {
            p.exit = Some(exited);
        }
        drop(tree);
        self.changed.notify_all();
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

    /// wait4/waitid: a child of `waiter` that `which` and `options` select and that has
    /// exited, reaped unless `no_reap`. Blocks until there is one, unless `no_hang`
    /// (then `Ok(None)`). ECHILD if `waiter` has no such child at all.
    pub fn wait(
        &self,
        waiter: i32,
        which: WaitFor,
        options: WaitOptions,
    ) -> Result<Option<Exited>, Errno> {
        let mut tree = self.lock();
        loop {
            let mut any = false;
            let mut found = None;
            for (&pid, p) in &tree.processes {
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
                    found = Some(exited);
                    break;
                }
            }
            if let Some(exited) = found {
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
                return Ok(Some(exited));
            }
            if !any {
                return Err(Errno::ECHILD);
            }
            if options.no_hang {
                return Ok(None);
            }
            tree = self.changed.wait(tree).unwrap_or_else(|e| e.into_inner());
        }
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
        Ok(pid)
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

    /// Every pid in the table, live or zombie, in order (for /proc).
    pub fn pids(&self) -> Vec<i32> {
        self.lock().processes.keys().copied().collect()
    }

    /// Where `pid` stands in the tree (for /proc/PID/stat and status).
    pub fn info(&self, pid: i32) -> Option<ProcessInfo> {
        self.lock().processes.get(&pid).map(|p| ProcessInfo {
            parent: p.parent,
            pgid: p.pgid,
            sid: p.sid,
            exit_signal: p.exit_signal,
            exit: p.exit,
        })
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

    #[test]
    fn children_are_waited_for_and_reaped_once() {
        let table = ProcessTable::default();
        table.add_init(tg(1));
        let child = table.add_child(1, SIGCHLD, tg).unwrap();
        assert_eq!(child.pid, 2);
        let hang = WaitOptions {
            no_hang: true,
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
        assert_eq!(table.wait(1, WaitFor::Any, peek), Ok(Some(exited(2, 7))));
        assert_eq!(table.wait(1, WaitFor::Any, hang), Ok(Some(exited(2, 7))));
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
        let got = table.wait(1, WaitFor::Any, WaitOptions::default());
        assert_eq!(got, Ok(Some(exited(2, 3))));
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
        let got = table.wait(1, WaitFor::Any, WaitOptions::default());
        assert_eq!(got, Ok(Some(exited(2, 0))));
        table.exit(exited(3, 1));
        let got = table.wait(1, WaitFor::Group(3), WaitOptions::default());
        assert_eq!(got, Ok(Some(exited(3, 1))));
    }

    #[test]
    fn wclone_selects_children_by_exit_signal() {
        let table = ProcessTable::default();
        table.add_init(tg(1));
        table.add_child(1, 0, tg).unwrap();
        let hang = WaitOptions {
            no_hang: true,
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
        assert_eq!(table.wait(1, WaitFor::Any, all), Ok(Some(exited(2, 0))));
    }
}
