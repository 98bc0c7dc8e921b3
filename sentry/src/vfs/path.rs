//! Path resolution: the one routine that turns a path into a place in the tree.
//!
//! It handles absolute and relative paths (from a starting directory: the cwd or a dirfd),
//! ".", ".." (which never leaves the root and climbs out of mounts), mount points, symlinks
//! (at most MAX_SYMLINKS, then ELOOP; a "magic" link such as /proc/self/fd/N jumps straight
//! to the place it stands for), trailing slashes (the result must be a directory) and
//! whether the last component's symlink is followed. See path_resolution(7).
//!
//! openat2(2)'s RESOLVE_* flags confine a resolution (`Start::resolve`):
//! RESOLVE_NO_XDEV refuses to cross a mount (EXDEV), RESOLVE_NO_SYMLINKS to follow a
//! symlink (ELOOP), RESOLVE_BENEATH to leave the starting directory by "..", an absolute
//! path or an absolute symlink (EXDEV), and RESOLVE_IN_ROOT resolves as if the starting
//! directory were the root. Magic links (/proc/PID/fd/N, exe, cwd, root) jump to the place
//! they name: RESOLVE_NO_MAGICLINKS refuses them (ELOOP), and scoped lookups and
//! RESOLVE_NO_XDEV across mounts do too (EXDEV), as Linux's nd_jump_link.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{FileType, Location, MountTable, MAX_SYMLINKS, NAME_MAX};
use crate::abi::{
    Errno, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
    RESOLVE_NO_XDEV,
};

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

/// The context of a resolution: the mounts, the task's root, where relative paths start,
/// and openat2's RESOLVE_* flags (0 for every other call).
#[derive(Clone, Copy)]
pub struct Start<'a> {
    pub mounts: &'a MountTable,
    pub root: &'a Location,
    pub at: &'a Location,
    pub resolve: u64,
}

impl<'a> Start<'a> {
    /// A resolution from `at` with no RESOLVE_* flags.
    pub fn new(mounts: &'a MountTable, root: &'a Location, at: &'a Location) -> Start<'a> {
        Start {
            mounts,
            root,
            at,
            resolve: 0,
        }
    }

    fn has(&self, flag: u64) -> bool {
        self.resolve & flag != 0
    }

    /// RESOLVE_BENEATH and RESOLVE_IN_ROOT make the starting directory the root: ".."
    /// stops there and (with IN_ROOT) absolute paths start there.
    fn scoped(self) -> Start<'a> {
        if self.has(RESOLVE_BENEATH | RESOLVE_IN_ROOT) {
            Start {
                root: self.at,
                ..self
            }
        } else {
            self
        }
    }
}

/// Resolves `path` fully. `follow` says whether a symlink as the last component is followed
/// (a trailing slash always follows it).
pub fn resolve(start: Start<'_>, path: &[u8], follow: bool) -> Result<Location, Errno> {
    let mut links = 0;
    resolve_inner(start.scoped(), path, follow, &mut links)
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
    parent_of(start.scoped(), path, &mut links)
}

/// Resolves `path` for open(O_CREAT): every component but the last, and then, when `follow`
/// and the last one is a symlink, its target the same way, so that a dangling symlink's
/// target is what gets created. Returns where the file is (or is to be made); EEXIST if
/// something that is not a symlink appeared there since the caller looked.
pub fn resolve_create(start: Start<'_>, path: &[u8], follow: bool) -> Result<Resolved, Errno> {
    let start = start.scoped();
    let mut links = 0;
    let mut parent = parent_of(start, path, &mut links)?;
    if !follow {
        return Ok(parent);
    }
    while let Ok(existing) = parent.parent.dentry.lookup(&parent.name) {
        let dir = parent.parent.clone();
        let found = Location {
            mount: dir.mount.clone(),
            dentry: existing,
        };
        // A magic link leads to a file that exists: the caller looked first, so it went.
        let Some(Link::Path(target)) = link_target(start, &dir, &found, &mut links)? else {
            return Err(Errno::EEXIST);
        };
        parent = parent_of(Start { at: &dir, ..start }, &target, &mut links)?;
    }
    Ok(parent)
}

fn parent_of(start: Start<'_>, path: &[u8], links: &mut usize) -> Result<Resolved, Errno> {
    let Some(&first) = path.first() else {
        return Err(Errno::ENOENT);
    };
    let mut at = if first == b'/' {
        if start.has(RESOLVE_BENEATH) {
            return Err(Errno::EXDEV);
        }
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
        b".." => parent_dir(start, at),
        _ if name.len() > NAME_MAX => Err(Errno::ENAMETOOLONG),
        _ => {
            let dentry = at.dentry.lookup(name)?;
            let below = start.mounts.cross_down(Location {
                mount: at.mount.clone(),
                dentry,
            });
            if start.has(RESOLVE_NO_XDEV) && !Arc::ptr_eq(&below.mount, &at.mount) {
                return Err(Errno::EXDEV);
            }
            Ok(below)
        }
    }
}

/// ".." of `at`: itself at the root (EXDEV with RESOLVE_BENEATH), else the parent,
/// climbing out of mounts first (EXDEV with RESOLVE_NO_XDEV).
fn parent_dir(start: Start<'_>, at: &Location) -> Result<Location, Errno> {
    let mut at = at.clone();
    loop {
        if at.same(start.root) {
            if start.has(RESOLVE_BENEATH) {
                return Err(Errno::EXDEV);
            }
            return Ok(at);
        }
        if !Arc::ptr_eq(&at.dentry, &at.mount.root) {
            break;
        }
        // At the root of a mount: continue from the place it is mounted on.
        match &at.mount.mountpoint {
            Some(_) if start.has(RESOLVE_NO_XDEV) => return Err(Errno::EXDEV),
            Some(below) => at = below.clone(),
            None => return Ok(at),
        }
    }
    Ok(match &at.dentry.parent {
        Some(parent) => Location {
            mount: at.mount.clone(),
            dentry: parent.clone(),
        },
        None => at,
    })
}

/// If `found` is a symlink, what it points to (resolved from `dir`, the directory holding
/// it); otherwise `found` itself.
fn follow_link(
    start: Start<'_>,
    dir: &Location,
    found: Location,
    links: &mut usize,
) -> Result<Location, Errno> {
    match link_target(start, dir, &found, links)? {
        Some(Link::Path(target)) => resolve_inner(Start { at: dir, ..start }, &target, true, links),
        Some(Link::Place(place)) => Ok(place),
        None => Ok(found),
    }
}

/// Where a symlink leads: a path to resolve, or for a magic link (/proc/PID/fd/N, exe,
/// cwd, root) the place itself.
enum Link {
    Path(Vec<u8>),
    Place(Location),
}

/// The target of `found` if it is a symlink to follow, counted against MAX_SYMLINKS; None
/// if it is no symlink. ELOOP with RESOLVE_NO_SYMLINKS; EXDEV with RESOLVE_NO_XDEV for an
/// absolute target from another mount than the root's (the jump to the root crosses).
/// Magic links follow Linux's nd_jump_link: ELOOP with RESOLVE_NO_MAGICLINKS, EXDEV with
/// RESOLVE_NO_XDEV to another mount, and EXDEV in any scoped (BENEATH, IN_ROOT) lookup.
fn link_target(
    start: Start<'_>,
    dir: &Location,
    found: &Location,
    links: &mut usize,
) -> Result<Option<Link>, Errno> {
    let attr = found.dentry.inode.attr()?;
    if attr.file_type() != Some(FileType::Symlink) {
        return Ok(None);
    }
    if start.has(RESOLVE_NO_SYMLINKS) {
        return Err(Errno::ELOOP);
    }
    *links += 1;
    if *links > MAX_SYMLINKS {
        return Err(Errno::ELOOP);
    }
    if let Some(place) = found.dentry.inode.magic_link()? {
        if start.has(RESOLVE_NO_MAGICLINKS) {
            return Err(Errno::ELOOP);
        }
        let other_mount = !Arc::ptr_eq(&dir.mount, &place.mount);
        if (start.has(RESOLVE_NO_XDEV) && other_mount)
            || start.has(RESOLVE_BENEATH | RESOLVE_IN_ROOT)
        {
            return Err(Errno::EXDEV);
        }
        return Ok(Some(Link::Place(place)));
    }
    let target = found.dentry.inode.readlink()?;
    let absolute = target.first() == Some(&b'/');
    if absolute && start.has(RESOLVE_NO_XDEV) && !Arc::ptr_eq(&dir.mount, &start.root.mount) {
        return Err(Errno::EXDEV);
    }
    Ok(Some(Link::Path(target)))
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
        let at = resolve(Start::new(&mounts, &root, &root), b"/mnt", true).unwrap();
        let other = Tmpfs::new(2);
        dir(&other.root(), b"inner");
        mounts
            .mount(
                &at,
                other.root(),
                "tmpfs",
                crate::vfs::MountFlags::default(),
            )
            .unwrap();
        (mounts, root)
    }

    fn name_of(loc: &Location) -> String {
        String::from_utf8_lossy(&loc.dentry.name).into_owned()
    }

    #[test]
    fn resolves_names_dots_links_and_mounts() {
        let (mounts, root) = tree();
        let s = Start::new(&mounts, &root, &root);
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
        let s = Start::new(&mounts, &root, &root);
        let a = resolve(s, b"/a", true).unwrap();
        let jailed = Start::new(&mounts, &a, &a);
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
        let s = Start::new(&mounts, &root, &root);
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
        mounts
            .mount(&at, dir, "proc", crate::vfs::MountFlags::READ_ONLY)
            .unwrap();
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
        let s = Start::new(&mounts, &root, &root);
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

    #[test]
    fn resolve_flags_confine_the_walk() {
        use crate::abi::*;
        let (mounts, root) = tree();
        let s = Start::new(&mounts, &root, &root);
        let a = resolve(s, b"/a", true).unwrap();
        let from_a = |resolve_flags: u64| Start {
            resolve: resolve_flags,
            ..Start::new(&mounts, &root, &a)
        };
        // BENEATH: "..", absolute paths and absolute links leave; staying below is fine.
        let beneath = from_a(RESOLVE_BENEATH);
        assert_eq!(
            name_of(&resolve(beneath, b"b/../b/file", true).unwrap()),
            "file"
        );
        assert_eq!(resolve(beneath, b"..", true).unwrap_err(), Errno::EXDEV);
        assert_eq!(
            resolve(beneath, b"b/../../a", true).unwrap_err(),
            Errno::EXDEV
        );
        assert_eq!(resolve(beneath, b"/a", true).unwrap_err(), Errno::EXDEV);
        assert_eq!(
            resolve(beneath, b"link_up", true).unwrap_err(),
            Errno::EXDEV
        );
        assert_eq!(resolve_parent(beneath, b"../x").unwrap_err(), Errno::EXDEV);
        // IN_ROOT: /a is the root; ".." stops there and absolute paths start there.
        let in_root = from_a(RESOLVE_IN_ROOT);
        assert!(resolve(in_root, b"../..", true).unwrap().same(&a));
        assert_eq!(
            name_of(&resolve(in_root, b"/b/file", true).unwrap()),
            "file"
        );
        assert!(resolve(in_root, b"link_up", true).unwrap().same(&a));
        // NO_SYMLINKS: any link followed is ELOOP; one not followed is fine.
        let no_links = Start {
            resolve: RESOLVE_NO_SYMLINKS,
            ..s
        };
        assert_eq!(
            resolve(no_links, b"/abs/file", true).unwrap_err(),
            Errno::ELOOP
        );
        assert_eq!(resolve(no_links, b"/abs", true).unwrap_err(), Errno::ELOOP);
        assert_eq!(name_of(&resolve(no_links, b"/abs", false).unwrap()), "abs");
        // NO_XDEV: into a mount or out of one is EXDEV; within one is fine.
        let no_xdev = Start {
            resolve: RESOLVE_NO_XDEV,
            ..s
        };
        assert_eq!(
            resolve(no_xdev, b"/mnt/inner", true).unwrap_err(),
            Errno::EXDEV
        );
        assert_eq!(
            name_of(&resolve(no_xdev, b"/a/b/file", true).unwrap()),
            "file"
        );
        let inner = resolve(s, b"/mnt/inner", true).unwrap();
        let from_inner = Start {
            resolve: RESOLVE_NO_XDEV,
            ..Start::new(&mounts, &root, &inner)
        };
        assert!(resolve(from_inner, b".", true).is_ok());
        assert_eq!(
            resolve(from_inner, b"../..", true).unwrap_err(),
            Errno::EXDEV
        );
    }

    #[test]
    fn creation_follows_dangling_links_to_their_target() {
        let (mounts, root) = tree();
        let s = Start::new(&mounts, &root, &root);
        let p = resolve_create(s, b"/dangling", true).unwrap();
        assert_eq!(
            (name_of(&p.parent), p.name.as_slice()),
            ("/".into(), &b"nope"[..])
        );
        let p = resolve_create(s, b"/dangling", false).unwrap();
        assert_eq!(p.name.as_slice(), b"dangling");
        assert_eq!(resolve_create(s, b"/loop", true).unwrap_err(), Errno::ELOOP);
        // An existing file is where it is.
        let p = resolve_create(s, b"/a/b/file", true);
        assert_eq!(p.unwrap_err(), Errno::EEXIST);
        let no_links = Start {
            resolve: crate::abi::RESOLVE_NO_SYMLINKS,
            ..s
        };
        assert_eq!(
            resolve_create(no_links, b"/dangling", true).unwrap_err(),
            Errno::ELOOP
        );
    }
}
