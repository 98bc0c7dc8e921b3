//! The Sentry: a Linux-compatible kernel in user space.
//!
//! Every system call a guest makes is trapped by a [`platform`] and served here as an ordinary
//! function call. Guest input is hostile: handlers return `Result<u64, Errno>`, every user
//! pointer goes through the memory manager (which answers `EFAULT`), and nothing a guest
//! does may panic the Sentry.
#![deny(unsafe_code)]

pub mod abi;
pub mod fs;
pub mod ipc;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod strace;
pub mod syscalls;
pub mod vfs;
pub mod waiter;

pub use kernel::{Config, ExitStatus, Kernel};
