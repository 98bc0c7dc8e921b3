//! runsc-rs: runs untrusted Linux programs in a sandbox whose kernel is the Sentry.
//!
//! `cli/` parses the command line; each command does its work through the library crates.

mod cli;
mod confine;
mod container;
mod gofer;
mod logger;
mod sandbox;
mod terminal;

fn main() {
    let code = cli::main();
    std::process::exit(code);
}
