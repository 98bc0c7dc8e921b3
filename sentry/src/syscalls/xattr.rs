//! Extended attributes: getxattr, setxattr, listxattr, removexattr and their l- and f-forms.
//!
//! No file system of the Sentry stores extended attributes yet, so every file answers as a
//! Linux file system without xattr support does (procfs, for one): after the checks of
//! fs/xattr.c (the name, flags and value, the path or descriptor, a read-only mount) and
//! xattr_permission (trusted.* for privileged callers only, user.* only on regular files and
//! directories, the file's own permissions), get, set and remove are EOPNOTSUPP and the list
//! of names is empty. Programs such as ls(1) take EOPNOTSUPP to mean "no ACLs, no labels".

use crate::abi::*;
use crate::kernel::Task;
use crate::vfs::{Attr, FileType, Location};

use super::fs::{check_writable_mount, lookup, permitted, read_path, MAY_READ, MAY_WRITE};

/// XATTR_NAME_MAX: the longest attribute name, without its NUL.
const XATTR_NAME_MAX: usize = 255;
/// XATTR_SIZE_MAX: the largest attribute value.
const XATTR_SIZE_MAX: u64 = 65536;

/// What an xattr call acts on: a path (following a final symlink or not) or a descriptor.
#[derive(Clone, Copy)]
enum Target {
    Path { path: u64, follow: bool },
    Fd(u64),
}

/// The file a call acts on: its attributes and, if it has one, its place in the tree.
fn resolve(t: &Task, target: Target) -> Result<(Attr, Option<Location>), Errno> {
    match target {
        Target::Path { path, follow } => {
            let path = read_path(t, path)?;
            let location = lookup(t, AT_FDCWD as u64, &path, follow)?;
            Ok((location.dentry.inode.attr()?, Some(location)))
        }
        Target::Fd(fd) => {
            let file = super::file::io_file(t, fd)?;
            Ok((file.attr()?, file.location.clone()))
        }
    }
}

/// Reads an attribute name as Linux's strncpy_from_user into a 256-byte buffer: EFAULT, and
/// ERANGE for an empty name or one longer than XATTR_NAME_MAX.
fn read_name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    match t.mm.read_cstring(addr, XATTR_NAME_MAX) {
        Ok(name) if name.is_empty() => Err(Errno::ERANGE),
        Ok(name) => Ok(name),
        Err(Errno::ENAMETOOLONG) => Err(Errno::ERANGE),
        Err(e) => Err(e),
    }
}

/// Linux's xattr_permission: whether the caller may read (`write` false) or change the
/// attribute `name` of a file with attributes `attr`.
fn xattr_permission(t: &Task, attr: &Attr, name: &[u8], write: bool) -> Result<(), Errno> {
    // Reads of what the caller may not see look like a missing attribute.
    let hidden = if write { Errno::EPERM } else { Errno::ENODATA };
    if name.starts_with(b"security.") || name.starts_with(b"system.") {
        return Ok(());
    }
    if name.starts_with(b"trusted.") {
        return if t.creds.capable(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(hidden)
        };
    }
    if name.starts_with(b"user.") {
        let kind = attr.file_type();
        if kind != Some(FileType::Regular) && kind != Some(FileType::Directory) {
            return Err(hidden);
        }
        let sticky_dir = kind == Some(FileType::Directory) && attr.mode & 0o1000 != 0;
        let owner = attr.uid == t.creds.fsuid || t.creds.capable(CAP_FOWNER);
        if sticky_dir && write && !owner {
            return Err(Errno::EPERM);
        }
    }
    let want = if write { MAY_WRITE } else { MAY_READ };
    if !permitted(t, attr, want) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// The get calls: name, then file, then permission; no file system here holds the value.
fn get(t: &Task, target: Target, name: u64) -> SysResult {
    let name = read_name(t, name)?;
    let (attr, _) = resolve(t, target)?;
    xattr_permission(t, &attr, &name, false)?;
    Err(Errno::EOPNOTSUPP)
}

/// The set calls: flags, name and value are checked and copied in before the file is
/// looked at (as Linux 6.13 and later do), then the mount and permission.
fn set(t: &Task, target: Target, name: u64, value: u64, size: u64, flags: u64) -> SysResult {
    // The flags are an int.
    if flags as u32 as u64 & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_name(t, name)?;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut buf = vec![0u8; size as usize];
    if size > 0 {
        t.mm.copy_in(value, &mut buf)?;
    }
    let (attr, location) = resolve(t, target)?;
    check_writable_mount(location.as_ref())?;
    if is_posix_acl(&name) {
        // Linux parses an ACL before it asks the file system (do_set_acl).
        check_acl_header(&buf)?;
        return Err(Errno::EOPNOTSUPP);
    }
    xattr_permission(t, &attr, &name, true)?;
    Err(Errno::EOPNOTSUPP)
}

fn is_posix_acl(name: &[u8]) -> bool {
    name == b"system.posix_acl_access" || name == b"system.posix_acl_default"
}

/// The checks of Linux's posix_acl_from_xattr on the header of an ACL value: a 4-byte
/// version (2, else EOPNOTSUPP) and whole 8-byte entries (EINVAL). An empty value removes
/// the ACL. The entries themselves are not checked (Linux would call a malformed list EINVAL
/// where this says EOPNOTSUPP: no file system here takes ACLs either way).
fn check_acl_header(value: &[u8]) -> Result<(), Errno> {
    const POSIX_ACL_XATTR_VERSION: u32 = 2;
    if value.is_empty() {
        return Ok(());
    }
    let Some(&[a, b, c, d]) = value.get(..4) else {
        return Err(Errno::EINVAL);
    };
    if u32::from_le_bytes([a, b, c, d]) != POSIX_ACL_XATTR_VERSION {
        return Err(Errno::EOPNOTSUPP);
    }
    if !(value.len() - 4).is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// The remove calls.
fn remove(t: &Task, target: Target, name: u64) -> SysResult {
    let name = read_name(t, name)?;
    let (attr, location) = resolve(t, target)?;
    check_writable_mount(location.as_ref())?;
    xattr_permission(t, &attr, &name, true)?;
    Err(Errno::EOPNOTSUPP)
}

/// The list calls: no names, so nothing is written and the size needed is 0.
fn list(t: &Task, target: Target) -> SysResult {
    resolve(t, target)?;
    Ok(0)
}

fn path(a: &[u64; 6], follow: bool) -> Target {
    Target::Path { path: a[0], follow }
}

pub fn getxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    get(t, path(a, true), a[1])
}

pub fn lgetxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    get(t, path(a, false), a[1])
}

pub fn fgetxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    get(t, Target::Fd(a[0]), a[1])
}

pub fn setxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set(t, path(a, true), a[1], a[2], a[3], a[4])
}

pub fn lsetxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set(t, path(a, false), a[1], a[2], a[3], a[4])
}

pub fn fsetxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set(t, Target::Fd(a[0]), a[1], a[2], a[3], a[4])
}

pub fn listxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    list(t, path(a, true))
}

pub fn llistxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    list(t, path(a, false))
}

pub fn flistxattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    list(t, Target::Fd(a[0]))
}

pub fn removexattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    remove(t, path(a, true), a[1])
}

pub fn lremovexattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    remove(t, path(a, false), a[1])
}

pub fn fremovexattr(t: &mut Task, a: &[u64; 6]) -> SysResult {
    remove(t, Target::Fd(a[0]), a[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_header_checks_follow_posix_acl_from_xattr() {
        assert_eq!(check_acl_header(&[]), Ok(()));
        assert_eq!(check_acl_header(b"v"), Err(Errno::EINVAL));
        assert_eq!(check_acl_header(&[2, 0, 0]), Err(Errno::EINVAL));
        assert_eq!(check_acl_header(&[1, 0, 0, 0]), Err(Errno::EOPNOTSUPP));
        assert_eq!(check_acl_header(&[2, 0, 0, 0]), Ok(()));
        assert_eq!(check_acl_header(&[2, 0, 0, 0, 1, 0, 6]), Err(Errno::EINVAL));
        let mut two_entries = vec![2, 0, 0, 0];
        two_entries.extend_from_slice(&[0; 16]);
        assert_eq!(check_acl_header(&two_entries), Ok(()));
    }

    #[test]
    fn only_the_two_acl_names_are_acls() {
        assert!(is_posix_acl(b"system.posix_acl_access"));
        assert!(is_posix_acl(b"system.posix_acl_default"));
        assert!(!is_posix_acl(b"system.posix_acl"));
        assert!(!is_posix_acl(b"user.posix_acl_access"));
    }
}
