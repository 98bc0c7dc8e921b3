//! The gofer: the only process that touches host files and sockets, serving the Sentry over
//! shared-memory rings. Nothing is here yet; the rings, protocol and server arrive with the
//! gofer/VFS work (issue 3). Until then the Sentry reads the executable it loads itself.
