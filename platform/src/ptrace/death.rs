//! Noticing stubs that die while nobody is switched into them: a stub killed from outside
//! (SIGKILL from the host, the OOM killer) while its guest thread sleeps in the Sentry
//! would otherwise go unseen until that thread next runs guest code. One thread polls a
//! pidfd per stub process and calls the owner's callback when one ends.

use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

type Callback = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Watched {
    next: u64,
    stubs: HashMap<u64, (OwnedFd, Arc<Callback>)>,
}

struct Watcher {
    watched: Mutex<Watched>,
    /// Written to make the polling thread look at `watched` again.
    wake: OwnedFd,
}

impl Watcher {
    fn lock(&self) -> MutexGuard<'_, Watched> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kick(&self) {
        let _ = nix::unistd::write(&self.wake, &[1]);
    }

    fn run(&self, wake: OwnedFd) {
        let mut buf = [0u8; 64];
        loop {
            let (tokens, fds): (Vec<u64>, Vec<OwnedFd>) = self
                .lock()
                .stubs
                .iter()
                .filter_map(|(&t, (fd, _))| fd.try_clone().ok().map(|fd| (t, fd)))
                .unzip();
            let mut polled = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
            polled.extend(
                fds.iter()
                    .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut polled, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
            let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
            if polled.first().is_some_and(ready) {
                let _ = nix::unistd::read(&wake, &mut buf);
            }
            let dead: Vec<u64> = tokens
                .iter()
                .zip(polled.iter().skip(1))
                .filter(|(_, p)| ready(p))
                .map(|(&t, _)| t)
                .collect();
            drop(polled);
            for token in dead {
                let callback = self.lock().stubs.remove(&token).map(|(_, cb)| cb);
                if let Some(callback) = callback {
                    callback();
                }
            }
        }
    }
}

fn watcher() -> Option<&'static Watcher> {
    static WATCHER: OnceLock<Option<&'static Watcher>> = OnceLock::new();
    *WATCHER.get_or_init(|| {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .ok()?;
        let watcher: &'static Watcher = Box::leak(Box::new(Watcher {
            watched: Mutex::default(),
            wake: write,
        }));
        std::thread::Builder::new()
            .name("stub-deaths".into())
            .spawn(move || watcher.run(read))
            .ok()?;
        Some(watcher)
    })
}

/// Calls `callback` once, on the watching thread, when process `pid` ends. Returns a token
/// for [`unwatch`], or None if the host cannot watch it (then deaths are noticed at the
/// next switch only).
pub(crate) fn watch(pid: Pid, callback: Callback) -> Option<u64> {
    let watcher = watcher()?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the descriptor was just returned by pidfd_open and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let token = {
        let mut watched = watcher.lock();
        watched.next += 1;
        let token = watched.next;
        watched.stubs.insert(token, (fd, Arc::new(callback)));
        token
    };
    watcher.kick();
    Some(token)
}

/// Stops watching (the owner is about to end the stub itself).
pub(crate) fn unwatch(token: u64) {
    if let Some(watcher) = watcher() {
        watcher.lock().stubs.remove(&token);
        watcher.kick();
    }
}
