//! The OCI container life cycle as a library (youki's split): `cli/` parses flags and calls
//! this module; this module owns a container's state directory, its state machine
//! (creating → created → running ⇄ paused → stopped) and the sandbox behind it.
//!
//! A container is one sandbox: `create` starts a hidden `runsc-rs boot` process that sets
//! up the Sentry and its gofers for the bundle, loads the container's process and waits;
//! its pid goes into `--pid-file`, and it exits with the container's exit status. Later
//! commands reach it over a unix socket in the state directory (`control.rs`).

pub mod mounts;
