//! A process's file descriptors, and its file-system context (root, cwd, umask).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::Errno;
use crate::vfs::lock::RecordOwner;
use crate::vfs::{Location, OpenFile};

/// A descriptor table. `files` maps numbers to open file descriptions and close-on-exec.
///
/// The table is also the owner of its process's POSIX record locks, as Linux's files_struct
/// is: every descriptor it loses (close, close_range, dup2 over it, the table's end) goes
/// through `closed`, which releases the locks the process holds on that file.
#[derive(Debug)]
pub struct FdTable {
    files: Mutex<BTreeMap<i32, Descriptor>>,
    /// This table's identity as a lock owner.
    lock_owner: u64,
    /// Set once a POSIX lock was taken through this table: only then must a close look
    /// for locks to release.
    has_posix_locks: AtomicBool,
}

impl Default for FdTable {
    fn default() -> FdTable {
        static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);
        FdTable {
            files: Mutex::default(),
            lock_owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            has_posix_locks: AtomicBool::new(false),
        }
    }
}

#[derive(Debug, Clone)]
struct Descriptor {
    file: Arc<OpenFile>,
    cloexec: bool,
}

impl FdTable {
    /// A table with `files` open at their numbers, none close-on-exec (a new process's
    /// standard streams and the descriptors it was given).
    pub fn with_files(files: impl IntoIterator<Item = (i32, Arc<OpenFile>)>) -> FdTable {
        let table = FdTable::default();
        table.lock().extend(files.into_iter().map(|(fd, file)| {
            let cloexec = false;
            (fd, Descriptor { file, cloexec })
        }));
        table
    }

    /// The file open at `fd`, or EBADF.
    pub fn get(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        let fd = number(fd)?;
        self.lock()
            .get(&fd)
            .map(|d| d.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free number ≥ `min`, below `limit` (RLIMIT_NOFILE),
    /// else EMFILE.
    pub fn install(
        &self,
        file: Arc<OpenFile>,
        cloexec: bool,
        min: i32,
        limit: u64,
    ) -> Result<i32, Errno> {
        let mut files = self.lock();
        let mut fd = min;
        for (&used, _) in files.range(min..) {
            if used != fd {
                break;
            }
            fd += 1;
        }
        if fd as u64 >= limit {
            return Err(Errno::EMFILE);
        }
        files.insert(fd, Descriptor { file, cloexec });
        Ok(fd)
    }

    /// Installs `file` at `fd`, closing what was there (dup2, dup3).
    pub fn install_at(
        &self,
        fd: u64,
        file: Arc<OpenFile>,
        cloexec: bool,
        limit: u64,
    ) -> Result<(), Errno> {
        let fd = number(fd)?;
        if fd as u64 >= limit {
            return Err(Errno::EBADF);
        }
        let old = self.lock().insert(fd, Descriptor { file, cloexec });
        if let Some(old) = old {
            self.closed(&old.file);
        }
        Ok(())
    }

    pub fn cloexec(&self, fd: u64) -> Result<bool, Errno> {
        let fd = number(fd)?;
        self.lock().get(&fd).map(|d| d.cloexec).ok_or(Errno::EBADF)
    }

    /// Sets or clears the close-on-exec flag of `fd`.
    pub fn set_cloexec(&self, fd: u64, cloexec: bool) -> Result<(), Errno> {
        let fd = number(fd)?;
        let mut files = self.lock();
        let slot = files.get_mut(&fd).ok_or(Errno::EBADF)?;
        slot.cloexec = cloexec;
        Ok(())
    }

    /// Closes `fd`, or EBADF if it was not open.
    pub fn close(&self, fd: u64) -> Result<(), Errno> {
        let fd = number(fd)?;
        let removed = self.lock().remove(&fd).ok_or(Errno::EBADF)?;
        self.closed(&removed.file);
        Ok(())
    }

    /// close_range(2): closes (or marks close-on-exec) every descriptor in `[first, last]`.
    pub fn close_range(&self, first: u32, last: u32, cloexec_only: bool) {
        let mut files = self.lock();
        let range = (first.min(i32::MAX as u32) as i32)..=(last.min(i32::MAX as u32) as i32);
        if cloexec_only {
            files.range_mut(range).for_each(|(_, d)| d.cloexec = true);
            return;
        }
        let doomed: Vec<i32> = files.range(range).map(|(&fd, _)| fd).collect();
        let removed: Vec<Descriptor> = doomed.iter().filter_map(|fd| files.remove(fd)).collect();
        drop(files);
        for d in &removed {
            self.closed(&d.file);
        }
    }

    /// The owner of the POSIX record locks taken through this table; from now on, closes
    /// release them.
    pub fn posix_lock_owner(&self) -> RecordOwner {
        self.has_posix_locks.store(true, Ordering::SeqCst);
        RecordOwner::Process(self.lock_owner)
    }

    /// The owner POSIX lock queries (F_GETLK) ask for: the process itself never conflicts.
    pub fn posix_query_owner(&self) -> RecordOwner {
        RecordOwner::Process(self.lock_owner)
    }

    /// A descriptor of `file` left the table: the process's POSIX locks on it go.
    fn closed(&self, file: &OpenFile) {
        if self.has_posix_locks.load(Ordering::SeqCst) {
            file.release_posix_locks(self.lock_owner);
        }
    }

    /// A copy of the table for a forked child: the same open file descriptions at the same
    /// numbers.
    pub fn fork(&self) -> FdTable {
        let table = FdTable::default();
        *table.lock() = self.lock().clone();
        table
    }

    /// execve: closes every close-on-exec descriptor.
    pub fn close_on_exec(&self) {
        // Dropped after the lock is released: a last close may talk to the gofer.
        let mut closed = Vec::new();
        self.lock().retain(|_, d| {
            if d.cloexec {
                closed.push(d.file.clone());
            }
            !d.cloexec
        });
        for file in closed {
            self.closed(&file);
        }
    }

    /// The highest open descriptor, if any (select bounds its sets by it).
    pub fn highest(&self) -> Option<i32> {
        self.lock().keys().next_back().copied()
    }

    /// Every open descriptor, by number, with its close-on-exec flag (for /proc).
    pub fn entries(&self) -> Vec<(i32, Arc<OpenFile>, bool)> {
        self.lock()
            .iter()
            .map(|(&fd, d)| (fd, d.file.clone(), d.cloexec))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, Descriptor>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FdTable {
    /// The process is done with the table (it exited or replaced it): every descriptor
    /// closes.
    fn drop(&mut self) {
        let files = std::mem::take(&mut *self.lock());
        for d in files.values() {
            self.closed(&d.file);
        }
    }
}

/// A descriptor number from a register (an int in Linux's ABI), or EBADF.
fn number(fd: u64) -> Result<i32, Errno> {
    i32::try_from(fd as i64)
        .ok()
        .filter(|&fd| fd >= 0)
        .ok_or(Errno::EBADF)
}

/// Where a process's paths start: its root, its working directory, its umask (Linux's
/// fs_struct). Guarded by the mutex in `FsContext`.
#[derive(Debug, Clone)]
pub struct FsState {
    pub root: Location,
    pub cwd: Location,
    pub umask: u32,
}

/// A process's file-system context, shareable between threads (CLONE_FS).
#[derive(Debug)]
pub struct FsContext {
    state: Mutex<FsState>,
}

impl FsContext {
    pub fn new(root: Location) -> FsContext {
        FsContext {
            state: Mutex::new(FsState {
                cwd: root.clone(),
                root,
                umask: 0o022,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, FsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy for a child forked without CLONE_FS.
    pub fn fork(&self) -> FsContext {
        FsContext {
            state: Mutex::new(self.lock().clone()),
        }
    }
}
