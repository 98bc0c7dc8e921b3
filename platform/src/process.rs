//! Ending the calling host process the way another one ended.

/// Ends the calling process killed by signal `sig`, as a process that dies of it does: the
/// default action is put back (Rust's runtime handles SIGSEGV and SIGBUS, and ignores
/// SIGPIPE), the signal is unblocked in this thread and raised, with no core dump. A
/// signal whose default action does not kill falls back to `exit(128 + sig)`, the shell's
/// convention.
pub fn die_of(sig: i32) -> ! {
    use nix::sys::signal::{SigHandler, SigSet, Signal};
    if let Ok(signal) = Signal::try_from(sig) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        // SAFETY: SIG_DFL installs no handler code, so nothing can run in signal context.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
        let mut only = SigSet::empty();
        only.add(signal);
        let _ = only.thread_unblock();
        let _ = nix::sys::signal::raise(signal);
    }
    std::process::exit(128 + sig)
}
