//! Path resolution: the one routine that turns a path into a place in the tree.
//!
//! It handles absolute and relative paths (from a starting directory: the cwd or a dirfd),
//! ".", ".." (which never leaves the root and climbs out of mounts), mount points, symlinks
//! (at most MAX_SYMLINKS, then ELOOP; a "magic" link such as /proc/self/fd/N jumps straight
//! to the place it stands for), trailing slashes (the result must be a directory) and
//! whether the last component's symlink is followed. See path_resolution(7).

use std::collections::VecDeque;

use super::{FileType, Location, MountTable, MAX_SYMLINKS, NAME_MAX};
use crate::abi::Errno;

/// The outcome of resolving all but the last component.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The directory that holds the last component.
    pub parent: Location,
    /// The last component ("." and ".." included, for the caller to refuse); empty for "/".
    pub name: Vec<u8>,
    /// The path ended with a slash: the last component must be a directory.
    pub trailing_slash: bool,
}

/// The context of a resolution: the mounts, the task's root, where relative paths start.
#[derive(Clone, Copy)]
pub struct Start<'a> {
    pub mounts: &'a MountTable,
    pub root: &'a Location,
    pub at: &'a Location,
}

/// Resolves `path` fully. `follow` says whether a symlink as the last component is followed
/// (a trailing slash always follows it).
pub fn resolve(start: Start<'_>, path: &[u8], follow: bool) -> Result<Location, Errno> {
    let mut links = 0;
    resolve_inner(start, path, follow, &mut links)
}

fn resolve_inner(
    start: Start<'_>,
    path: &[u8],
    follow: bool,
    links: &mut usize,
) -> Result<Location, Errno> {
    let parent = parent_of(start, path, links)?;
    let found = step(start, &parent.parent, &parent.name)?;
    let follow = follow || parent.trailing_slash;
    let found = if follow {
        follow_link(start, &parent.parent, found, links)?
    } else {
        found
    };
    if parent.trailing_slash && !found.dentry.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(found)
}

/// Resolves every component of `path` but the last, for calls that create or remove it.
pub fn resolve_parent(start: Start<'_>, path: &[u8]) -> Result<Resolved, Errno> {
    let mut links = 0;
    parent_of(start, path, &mut links)
}

fn parent_of(start: Start<'_>, path: &[u8], links: &mut usize) -> Result<Resolved, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let mut at = if path[0] == b'/' {
        start.root.clone()
    } else {
        start.at.clone()
    };
    let mut parts: VecDeque<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    let trailing_slash = path.len() > 1 && path.ends_with(b"/");
    let Some(last) = parts.pop_back() else {
        // "/" (or "///"): the root itself, with no last component.
        return Ok(Resolved {
            parent: at,
            name: Vec::new(),
            trailing_slash: false,
        });
    };
    for part in parts {
        let next = step(start, &at, part)?;
        let next = follow_link(start, &at, next, links)?;
        if !next.dentry.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        at = next;
    }
    if last.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(Resolved {
        parent: at,
        name: last.to_vec(),
        trailing_slash,
    })
}

/// One component from directory `at`: ".", "..", or a name (crossing into mounts).
fn step(start: Start<'_>, at: &Location, name: &[u8]) -> Result<Location, Errno> {
    if !at.dentry.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    match name {
        b"" | b"." => Ok(at.clone()),
        b".." => Ok(parent_dir(start, at)),
        _ if name.len() > NAME_MAX => Err(Errno::ENAMETOOLONG),
        _ => {
            let dentry = at.dentry.lookup(name)?;
            Ok(start.mounts.cross_down(Location {
                mount: at.mount.clone(),
                dentry,
            }))
        }
    }
}

/// ".." of `at`: itself at the task's root, else the parent, climbing out of mounts first.
fn parent_dir(start: Start<'_>, at: &Location) -> Location {
    let mut at = at.clone();
    loop {
        if at.same(start.root) {
            return at;
        }
        if !std::sync::Arc::ptr_eq(&at.dentry, &at.mount.root) {
            break;
        }
        // At the root of a mount: continue from the place it is mounted on.
        match &at.mount.mountpoint {
            Some(below) => at = below.clone(),
            None => return at,
        }
    }
    match &at.dentry.parent {
        Some(parent) => Location {
            mount: at.mount.clone(),
            dentry: parent.clone(),
        },
        None => at,
    }
}

/// If `found` is a symlink, what it points to (resolved from `dir`, the directory holding
/// it); otherwise `found` itself.
fn follow_link(
    start: Start<'_>,
    dir: &Location,
    found: Location,
    links: &mut usize,
) -> Result<Location, Errno> {
    let attr = found.dentry.inode.attr()?;
    if attr.file_type() != Some(FileType::Symlink) {
        return Ok(found);
    }
    *links += 1;
    if *links > MAX_SYMLINKS {
        return Err(Errno::ELOOP);
    }
    if let Some(place) = found.dentry.inode.magic_link()? {
        return Ok(place);
    }
    let target = found.dentry.inode.readlink()?;
    let from = Start { at: dir, ..start };
    resolve_inner(from, &target, true, links)
}

/// The absolute path of `location` as seen from `root` (climbing out of mounts).
pub fn absolute(location: &Location, root: &Location) -> Vec<u8> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut at = location.clone();
    loop {
        if at.same(root) {
            break;
        }
        if std::sync::Arc::ptr_eq(&at.dentry, &at.mount.root) {
            match &at.mount.mountpoint {
                Some(below) => {
                    at = below.clone();
                    continue;
                }
                None => break,
            }
        }
        names.push(at.dentry.name.clone());
        match &at.dentry.parent {
            Some(p) => {
                at = Location {
                    mount: at.mount.clone(),
                    dentry: p.clone(),
                }
            }
            None => break,
        }
    }
    if names.is_empty() {
        return b"/".to_vec();
    }
    names
        .iter()
        .rev()
        .flat_map(|n| [b"/".as_slice(), n.as_slice()].concat())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fs::tmpfs::Tmpfs;
    use crate::vfs::{Inode, NewNode, Owner};

    const ROOT: Owner = Owner { uid: 0, gid: 0 };

    /// /a/b/file, /a/link_up -> .., /abs -> /a/b, /loop -> /loop, /dangling -> /nope,
    /// /mnt with a second tmpfs mounted holding /mnt/inner.
    fn tree() -> (MountTable, Location) {
        let mounts = MountTable::default();
        let fs = Tmpfs::new(1);
        let root = mounts.root(fs.root(), "tmpfs");
        let dir = |parent: &Arc<dyn Inode>, name: &[u8]| {
            parent
                .create(name, &NewNode::Directory { mode: 0o755 }, ROOT)
                .unwrap()
        };
        let link = |parent: &Arc<dyn Inode>, name: &[u8], target: &[u8]| {
            parent
                .create(
                    name,
                    &NewNode::Symlink {
                        target: target.to_vec(),
                    },
                    ROOT,
                )
                .unwrap();
        };
        let r = root.dentry.inode.clone();
        let a = dir(&r, b"a");
        let b = dir(&a, b"b");
        b.create(b"file", &NewNode::File { mode: 0o644 }, ROOT)
            .unwrap();
        link(&a, b"link_up", b"..");
        link(&r, b"abs", b"/a/b");
        link(&r, b"loop", b"/loop");
        link(&r, b"dangling", b"/nope");
        let mnt = dir(&r, b"mnt");
        let _ = mnt;
        let at = resolve(
            Start {
                mounts: &mounts,
                root: &root,
                at: &root,
            },
            b"/mnt",
            true,
        )
        .unwrap();
        let other = Tmpfs::new(2);
        dir(&other.root(), b"inner");
        mounts.mount(&at, other.root(), "tmpfs", false).unwrap();
        (mounts, root)
    }

    fn name_of(loc: &Location) -> String {
        String::from_utf8_lossy(&loc.dentry.name).into_owned()
    }

    #[test]
    fn resolves_names_dots_links_and_mounts() {
        let (mounts, root) = tree();
        let s = Start {
            mounts: &mounts,
            root: &root,
            at: &root,
        };
        let r = |p: &[u8]| resolve(s, p, true);
        assert_eq!(name_of(&r(b"/a/b/file").unwrap()), "file");
        assert_eq!(name_of(&r(b"a/./b//file").unwrap()), "file");
        assert_eq!(name_of(&r(b"/a/b/../b/file").unwrap()), "file");
        // ".." at the root stays at the root.
        assert!(r(b"/../../..").unwrap().same(&root));
        // Relative and absolute symlinks, in the middle and at the end.
        assert_eq!(name_of(&r(b"/abs/file").unwrap()), "file");
        assert_eq!(name_of(&r(b"/a/link_up/a/b").unwrap()), "b");
        assert!(r(b"/a/link_up").unwrap().same(&root));
        // Not following the last component gives the link itself.
        assert_eq!(name_of(&resolve(s, b"/abs", false).unwrap()), "abs");
        // A trailing slash follows it and wants a directory.
        assert_eq!(name_of(&resolve(s, b"/abs/", false).unwrap()), "b");
        assert_eq!(r(b"/a/b/file/").unwrap_err(), Errno::ENOTDIR);
        assert_eq!(r(b"/a/b/file/x").unwrap_err(), Errno::ENOTDIR);
        assert_eq!(r(b"/loop").unwrap_err(), Errno::ELOOP);
        assert_eq!(r(b"/dangling").unwrap_err(), Errno::ENOENT);
        assert_eq!(r(b"/nope").unwrap_err(), Errno::ENOENT);
        assert_eq!(r(b"").unwrap_err(), Errno::ENOENT);
        let long = [b'x'; 256];
        assert_eq!(r(&long).unwrap_err(), Errno::ENAMETOOLONG);
        // Into a mount and back out with "..".
        let inner = r(b"/mnt/inner").unwrap();
        assert_eq!(name_of(&inner), "inner");
        assert_ne!(inner.mount.id, root.mount.id);
        assert!(r(b"/mnt/..").unwrap().same(&root));
        assert!(r(b"/mnt/inner/../..").unwrap().same(&root));
    }

    #[test]
    fn a_chroot_like_root_is_never_left() {
        let (mounts, root) = tree();
        let s = Start {
            mounts: &mounts,
            root: &root,
            at: &root,
        };
        let a = resolve(s, b"/a", true).unwrap();
        let jailed = Start {
            mounts: &mounts,
            root: &a,
            at: &a,
        };
        // "..", absolute symlinks and link_up all stay inside /a.
        assert!(resolve(jailed, b"../../..", true).unwrap().same(&a));
        assert_eq!(name_of(&resolve(jailed, b"/b/file", true).unwrap()), "file");
        assert!(resolve(jailed, b"link_up", true).unwrap().same(&a));
        assert_eq!(resolve(jailed, b"/abs", true).unwrap_err(), Errno::ENOENT);
    }

    #[test]
    fn magic_links_jump_to_their_place() {
        use crate::fs::kernfs::{Dir, Link, Meta};
        let (mounts, root) = tree();
        let s = Start {
            mounts: &mounts,
            root: &root,
            at: &root,
        };
        let b = resolve(s, b"/a/b", true).unwrap();
        let target = b.clone();
        // A link whose text names nothing; resolution goes to /a/b all the same.
        let link = Link::magic(
            Meta::new(3, b"/m", 0o777),
            Box::new(|| Ok(b"thing:[1]".to_vec())),
            Box::new(move || Ok(target.clone())),
            0,
        );
        let dir = Dir::new(Meta::new(3, b"/", 0o555), vec![(b"m".to_vec(), link)]);
        root.dentry
            .inode
            .create(b"magic", &NewNode::Directory { mode: 0o755 }, ROOT)
            .unwrap();
        let at = resolve(s, b"/magic", true).unwrap();
        mounts.mount(&at, dir, "proc", true).unwrap();
        assert!(resolve(s, b"/magic/m", true).unwrap().same(&b));
        assert_eq!(
            name_of(&resolve(s, b"/magic/m/file", true).unwrap()),
            "file"
        );
        assert!(resolve(s, b"/magic/m/..", true)
            .unwrap()
            .same(&resolve(s, b"/a", true).unwrap()));
        let itself = resolve(s, b"/magic/m", false).unwrap();
        assert_eq!(itself.dentry.inode.readlink().unwrap(), b"thing:[1]");
        assert_eq!(resolve(s, b"/magic/m/", false).unwrap().dentry.name, b"b");
    }

    #[test]
    fn parent_resolution_for_creation() {
        let (mounts, root) = tree();
        let s = Start {
            mounts: &mounts,
            root: &root,
            at: &root,
        };
        let p = resolve_parent(s, b"/a/b/new").unwrap();
        assert_eq!(
            (name_of(&p.parent), p.name.as_slice(), p.trailing_slash),
            ("b".into(), &b"new"[..], false)
        );
        let p = resolve_parent(s, b"/abs/newdir/").unwrap();
        assert_eq!((name_of(&p.parent), p.trailing_slash), ("b".into(), true));
        let p = resolve_parent(s, b"/").unwrap();
        assert!(p.name.is_empty() && p.parent.same(&root));
        assert_eq!(resolve_parent(s, b"/nope/x").unwrap_err(), Errno::ENOENT);
        assert_eq!(
            resolve_parent(s, b"/a/b/file/x").unwrap_err(),
            Errno::ENOTDIR
        );
    }
}
