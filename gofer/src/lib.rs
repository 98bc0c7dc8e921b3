//! The gofer: the only process that touches host files and sockets, serving the Sentry over
//! shared-memory rings ([`ring`]) with the file protocol of [`proto`]. [`server`] serves one
//! ring from a root directory, confined to it; [`client`] is what the Sentry calls.
//!
//! Safe Rust only: shared memory is reached through `platform::shm`. The one exception is the
//! loom model of the ring (`ring::loom_tests`, built only with `--cfg loom`), whose stand-in
//! for shared memory needs `loom::cell::UnsafeCell` so that loom can catch a slot reused before
//! the other side consumed it.
#![cfg_attr(not(loom), forbid(unsafe_code))]
#![cfg_attr(loom, deny(unsafe_code))]

pub mod client;
pub mod proto;
pub mod ring;
pub mod server;

#[cfg(all(test, not(loom)))]
mod fs_tests;
