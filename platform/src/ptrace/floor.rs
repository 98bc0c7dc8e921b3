//! The cost floor of the ptrace platform, for benchmarks: a bare `PTRACE_SYSEMU` tracer that
//! emulates `getpid` with the least work a real emulator must do (wait, read the registers to
//! learn the call, write the result) and lets every other system call run natively.
//!
//! The Sentry does the same per trap plus its own dispatch; comparing the two in one run shows
//! what the Sentry adds.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::{pin_current_thread, wait_stop, Stop, RAX_OFFSET};
use crate::{Error, Result};

/// Runs `program` with `args` (argv[0] included) with getpid emulated under PTRACE_SYSEMU and
/// returns its exit status.
pub fn run_getpid_floor(program: &Path, args: &[String]) -> Result<i32> {
    let path = CString::new(program.as_os_str().as_bytes()).map_err(|_| Error::Host {
        what: "program path",
        errno: Errno::EINVAL,
    })?;
    let argv: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    pin_current_thread();
    // SAFETY: the child makes only async-signal-safe calls before execve or _exit.
    let pid = match unsafe { libc::fork() } {
        -1 => return Err(Error::host("fork")(Errno::last())),
        0 => unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
            libc::_exit(127)
        },
        pid => Pid::from_raw(pid),
    };
    let fake_pid = pid.as_raw() as i64;
    let wait = |pid| wait_stop(pid).map_err(Error::host("waitpid"));
    // The SIGSTOP, then the SIGTRAP that follows a traced execve.
    if !matches!(wait(pid)?, Stop::Signal(libc::SIGSTOP)) {
        return Err(Error::host("starting the traced program")(Errno::ECHILD));
    }
    let options = ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESYSGOOD;
    ptrace::setoptions(pid, options).map_err(Error::host("PTRACE_SETOPTIONS"))?;
    ptrace::cont(pid, None).map_err(Error::host("PTRACE_CONT"))?;
    if !matches!(wait(pid)?, Stop::Signal(libc::SIGTRAP)) {
        return Err(Error::host("executing the traced program")(Errno::ENOEXEC));
    }
    let mut deliver = None;
    loop {
        ptrace::sysemu(pid, deliver.take()).map_err(Error::host("PTRACE_SYSEMU"))?;
        match wait(pid)? {
            Stop::Syscall => {
                let mut regs = ptrace::getregs(pid).map_err(Error::host("GETREGS"))?;
                if regs.orig_rax == libc::SYS_getpid as u64 {
                    ptrace::write_user(pid, RAX_OFFSET as ptrace::AddressType, fake_pid)
                        .map_err(Error::host("POKEUSER"))?;
                    continue;
                }
                // Anything else runs for real: step back onto the `syscall` instruction and
                // let it execute under PTRACE_SYSCALL (entry stop, exit stop).
                regs.rip -= 2;
                regs.rax = regs.orig_rax;
                ptrace::setregs(pid, regs).map_err(Error::host("SETREGS"))?;
                for _ in 0..2 {
                    ptrace::syscall(pid, None).map_err(Error::host("PTRACE_SYSCALL"))?;
                    match wait(pid)? {
                        Stop::Syscall => {}
                        Stop::Exited(code) => return Ok(code),
                        Stop::Killed(sig) => return Ok(128 + sig),
                        other => {
                            return Err(Error::StubDied {
                                pid: pid.as_raw(),
                                how: format!("unexpected stop {other:?} in a native call"),
                            })
                        }
                    }
                }
            }
            Stop::Signal(sig) => {
                deliver = nix::sys::signal::Signal::try_from(sig).ok();
            }
            Stop::Event(_) => {}
            Stop::Exited(code) => return Ok(code),
            Stop::Killed(sig) => return Ok(128 + sig),
        }
    }
}
