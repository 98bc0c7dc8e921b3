//! Character devices, opened by device number from any inode that is one (as Linux opens a
//! driver by major:minor): /dev/null, zero, full, random, urandom. (The terminals, /dev/tty,
//! /dev/ptmx, /dev/console and /dev/pts/N, are `tty::devpts`'s.)

use std::sync::Arc;

use crate::abi::Errno;
use crate::vfs::{FileOps, SeekMode};

/// Linux's encoding of a device number (new_encode_dev).
pub const fn makedev(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

pub const NULL: u64 = makedev(1, 3);
pub const ZERO: u64 = makedev(1, 5);
pub const FULL: u64 = makedev(1, 7);
pub const RANDOM: u64 = makedev(1, 8);
pub const URANDOM: u64 = makedev(1, 9);

/// The device nodes a container's /dev holds (runc's default devices; its ptmx is a symlink
/// to pts/ptmx, see `mounts`): name, device number, permissions.
pub const DEV_NODES: &[(&str, u64, u32)] = &[
    ("null", NULL, 0o666),
    ("zero", ZERO, 0o666),
    ("full", FULL, 0o666),
    ("random", RANDOM, 0o666),
    ("urandom", URANDOM, 0o666),
    ("tty", super::tty::devpts::TTY, 0o666),
];

/// The driver for character device `rdev`, or ENXIO if there is none.
pub fn open(rdev: u64) -> Result<Arc<dyn FileOps>, Errno> {
    Ok(match rdev {
        NULL => Arc::new(Null),
        ZERO => Arc::new(Zero { full: false }),
        FULL => Arc::new(Zero { full: true }),
        RANDOM | URANDOM => Arc::new(Random),
        _ => return Err(Errno::ENXIO),
    })
}

/// /dev/null: reads end at once, writes vanish.
struct Null;

impl FileOps for Null {
    fn seek_mode(&self) -> SeekMode {
        SeekMode::AlwaysZero
    }
    fn read(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        Ok(0)
    }
    fn write(&self, _: u64, buf: &[u8]) -> Result<usize, Errno> {
        Ok(buf.len())
    }
}

/// /dev/zero (writes vanish) and /dev/full (writes fail with ENOSPC); both read zeros.
struct Zero {
    full: bool,
}

impl FileOps for Zero {
    fn seek_mode(&self) -> SeekMode {
        SeekMode::AlwaysZero
    }
    fn read(&self, _: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, _: u64, buf: &[u8]) -> Result<usize, Errno> {
        if self.full {
            Err(Errno::ENOSPC)
        } else {
            Ok(buf.len())
        }
    }
}

/// /dev/random and /dev/urandom: the host's random numbers; writes are accepted and
/// ignored (they would only mix entropy in).
struct Random;

impl FileOps for Random {
    fn seek_mode(&self) -> SeekMode {
        SeekMode::AlwaysZero
    }
    fn read(&self, _: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        rustix::rand::getrandom(&mut *buf, rustix::rand::GetRandomFlags::empty())
            .map_err(|e| Errno::from_raw(e.raw_os_error()))
    }
    fn write(&self, _: u64, buf: &[u8]) -> Result<usize, Errno> {
        Ok(buf.len())
    }
}
