//! Networking: sockets served by the Sentry. Unix domain sockets (`unix`) live entirely in
//! Sentry memory; inet sockets will go through the gofer.

pub mod unix;
