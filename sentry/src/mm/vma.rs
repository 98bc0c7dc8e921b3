//! The two range maps of an address space: VMAs (what the guest asked to have mapped, with
//! which protection and from where) and PMAs (which pages of the memory file back them
//! now). A VMA without PMAs is valid: its pages are made on the first access.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use platform::Prot;

use super::page_cache::PageCache;
use super::MemoryFile;
use crate::abi::Errno;
use crate::vfs::OpenFile;

/// Something that covers `[start, end)` and can be cut to a part of that.
pub(super) trait Span: Clone {
    fn start(&self) -> u64;
    fn end(&self) -> u64;
    /// The part `[start, end)` of this span (within it).
    fn slice(&self, start: u64, end: u64) -> Self;
}

/// Non-overlapping spans by start address.
#[derive(Debug, Clone)]
pub(super) struct RangeMap<T: Span>(BTreeMap<u64, T>);

impl<T: Span> Default for RangeMap<T> {
    fn default() -> Self {
        RangeMap(BTreeMap::new())
    }
}

impl<T: Span> RangeMap<T> {
    /// The span holding `addr`.
    pub fn get(&self, addr: u64) -> Option<&T> {
        let (_, span) = self.0.range(..=addr).next_back()?;
        (span.end() > addr).then_some(span)
    }

    /// The first span that ends above `addr`.
    pub fn next_from(&self, addr: u64) -> Option<&T> {
        self.get(addr)
            .or_else(|| self.0.range(addr..).next().map(|(_, s)| s))
    }

    /// The last span that starts below `addr`.
    pub fn prev_before(&self, addr: u64) -> Option<&T> {
        self.0.range(..addr).next_back().map(|(_, s)| s)
    }

    /// The spans that overlap `[start, end)`, in address order.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &T> {
        let first = self
            .0
            .range(..=start)
            .next_back()
            .filter(|(_, s)| s.end() > start)
            .map_or(start, |(&k, _)| k);
        self.0.range(first..end).map(|(_, s)| s)
    }

    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).next().is_some()
    }

    /// Whether every byte of `[start, end)` is covered.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for span in self.overlapping(start, end) {
            if span.start() > at {
                return false;
            }
            at = span.end();
        }
        at >= end
    }

    pub fn insert(&mut self, span: T) {
        self.0.insert(span.start(), span);
    }

    /// Removes `[start, end)`, splitting the spans that straddle its ends, and returns the
    /// removed pieces.
    pub fn carve(&mut self, start: u64, end: u64) -> Vec<T> {
        let keys: Vec<u64> = self.overlapping(start, end).map(|s| s.start()).collect();
        let mut removed = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(span) = self.0.remove(&key) else {
                continue;
            };
            let (cut_start, cut_end) = (span.start().max(start), span.end().min(end));
            if span.start() < cut_start {
                self.insert(span.slice(span.start(), cut_start));
            }
            if cut_end < span.end() {
                self.insert(span.slice(cut_end, span.end()));
            }
            removed.push(span.slice(cut_start, cut_end));
        }
        removed
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.0.values()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Replaces the span starting at `start` (it must exist).
    pub fn replace(&mut self, span: T) {
        self.0.insert(span.start(), span);
    }

    pub fn remove(&mut self, start: u64) -> Option<T> {
        self.0.remove(&start)
    }
}

/// A range of the memory file. It goes back to the file when its last user is gone: the
/// PMAs made from it (after splits), and for a page-cache chunk the cache too.
pub struct Backing {
    file: Arc<MemoryFile>,
    pub offset: u64,
    pub len: u64,
    /// For private memory: how many address spaces may hold PMAs of it. Above one, a
    /// write must copy (copy-on-write); at one it may be written in place. Raised by fork,
    /// lowered when an address space goes.
    sharers: AtomicUsize,
    /// Whether this is a page-cache chunk (never written in place by a private mapping).
    pub cache: bool,
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backing({:#x}+{:#x})", self.offset, self.len)
    }
}

impl Backing {
    pub fn allocate(file: &Arc<MemoryFile>, len: u64, cache: bool) -> Result<Arc<Backing>, Errno> {
        Ok(Arc::new(Backing {
            file: file.clone(),
            offset: file.allocate(len)?,
            len,
            sharers: AtomicUsize::new(1),
            cache,
        }))
    }

    pub fn share(&self) {
        self.sharers.fetch_add(1, Ordering::AcqRel);
    }

    pub fn unshare(&self) {
        let _ = self
            .sharers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Whether only one address space holds this private memory.
    pub fn exclusive(&self) -> bool {
        !self.cache && self.sharers.load(Ordering::Acquire) <= 1
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        self.file.free(self.offset, self.len);
    }
}

/// Flags of a VMA besides its protection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmaFlags {
    /// Grows down on faults below it (MAP_GROWSDOWN, the initial stack).
    pub growsdown: bool,
    /// mlock'ed.
    pub locked: bool,
    /// MADV_DONTFORK: not in a forked child.
    pub dontfork: bool,
    /// MADV_WIPEONFORK: zeros in a forked child.
    pub wipeonfork: bool,
}

/// Where a VMA's contents come from.
#[derive(Clone)]
pub enum Source {
    /// Private anonymous memory: zeros at first.
    Anonymous,
    /// Pages of a page cache from `offset` (the page of `start`): a file's, or the
    /// anonymous one of a MAP_SHARED|MAP_ANONYMOUS mapping (`file` None).
    Cache {
        cache: Arc<PageCache>,
        offset: u64,
        file: Option<Arc<OpenFile>>,
    },
}

impl Source {
    /// The contents of a new MAP_SHARED|MAP_ANONYMOUS mapping: a cache of its own.
    pub fn shared_anonymous(memory: &Arc<MemoryFile>) -> Source {
        Source::Cache {
            cache: PageCache::anonymous(memory),
            offset: 0,
            file: None,
        }
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Anonymous => write!(f, "Anonymous"),
            Source::Cache { offset, file, .. } => {
                write!(f, "Cache(+{offset:#x}, file: {})", file.is_some())
            }
        }
    }
}

/// One mapping the guest made.
#[derive(Debug, Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    /// The protections mprotect may grant (a shared mapping of a file opened read-only
    /// never becomes writable).
    pub max_prot: Prot,
    pub shared: bool,
    pub source: Source,
    pub flags: VmaFlags,
}

impl Span for Vma {
    fn start(&self) -> u64 {
        self.start
    }
    fn end(&self) -> u64 {
        self.end
    }
    fn slice(&self, start: u64, end: u64) -> Vma {
        let source = match &self.source {
            Source::Anonymous => Source::Anonymous,
            Source::Cache {
                cache,
                offset,
                file,
            } => Source::Cache {
                cache: cache.clone(),
                offset: offset + (start - self.start),
                file: file.clone(),
            },
        };
        Vma {
            start,
            end,
            source,
            ..self.clone()
        }
    }
}

impl Vma {
    #[allow(clippy::len_without_is_empty)] // A VMA is never empty.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the guest itself could access this VMA the given way (on x86, any access
    /// permission implies read).
    pub fn allows(&self, write: bool) -> bool {
        if write {
            self.prot & libc::PROT_WRITE != 0
        } else {
            self.prot != libc::PROT_NONE
        }
    }

    /// The page cache and the cache offset of `addr`, for a VMA backed by one.
    pub fn cache_at(&self, addr: u64) -> Option<(&Arc<PageCache>, u64)> {
        match &self.source {
            Source::Anonymous => None,
            Source::Cache { cache, offset, .. } => Some((cache, offset + (addr - self.start))),
        }
    }

    pub fn file(&self) -> Option<&Arc<OpenFile>> {
        match &self.source {
            Source::Cache { file, .. } => file.as_ref(),
            Source::Anonymous => None,
        }
    }

    /// Whether `next` continues this VMA so that the two can be one (Linux's vma_merge).
    pub fn merges_with(&self, next: &Vma) -> bool {
        let same_source = match (&self.source, &next.source) {
            (Source::Anonymous, Source::Anonymous) => true,
            (
                Source::Cache {
                    cache: a,
                    offset: o,
                    ..
                },
                Source::Cache {
                    cache: b,
                    offset: p,
                    ..
                },
            ) => Arc::ptr_eq(a, b) && o + self.len() == *p,
            _ => false,
        };
        self.end == next.start
            && same_source
            && (self.prot, self.max_prot, self.shared, self.flags)
                == (next.prot, next.max_prot, next.shared, next.flags)
    }
}

/// Pages of the memory file backing `[start, end)` of an address space, from
/// `file_offset` inside `backing`.
#[derive(Debug, Clone)]
pub struct Pma {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub backing: Arc<Backing>,
    /// Whether the guest may write these pages in place: false for page-cache pages of a
    /// private mapping, private memory shared with a forked process, and shared file pages
    /// not yet marked dirty. A write to such a page faults and is resolved by the Sentry.
    pub writable: bool,
}

impl Span for Pma {
    fn start(&self) -> u64 {
        self.start
    }
    fn end(&self) -> u64 {
        self.end
    }
    fn slice(&self, start: u64, end: u64) -> Pma {
        Pma {
            start,
            end,
            file_offset: self.file_offset + (start - self.start),
            ..self.clone()
        }
    }
}

impl Pma {
    #[allow(clippy::len_without_is_empty)] // A PMA is never empty.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct S(u64, u64, u64);

    impl Span for S {
        fn start(&self) -> u64 {
            self.0
        }
        fn end(&self) -> u64 {
            self.1
        }
        fn slice(&self, start: u64, end: u64) -> S {
            S(start, end, self.2 + (start - self.0))
        }
    }

    #[test]
    fn carve_splits_and_keeps_offsets() {
        let mut m = RangeMap::default();
        m.insert(S(0x1000, 0x5000, 0x10000));
        m.insert(S(0x6000, 0x8000, 0x20000));
        let removed = m.carve(0x2000, 0x7000);
        assert_eq!(
            removed,
            vec![S(0x2000, 0x5000, 0x11000), S(0x6000, 0x7000, 0x20000)]
        );
        let left: Vec<S> = m.iter().cloned().collect();
        assert_eq!(
            left,
            vec![S(0x1000, 0x2000, 0x10000), S(0x7000, 0x8000, 0x21000)]
        );
        assert!(m.covers(0x1000, 0x2000));
        assert!(!m.covers(0x1000, 0x3000));
        assert!(m.overlaps(0x1fff, 0x2000));
        assert!(!m.overlaps(0x2000, 0x7000));
        assert_eq!(m.get(0x7fff), Some(&S(0x7000, 0x8000, 0x21000)));
        assert_eq!(m.get(0x8000), None);
        assert_eq!(m.next_from(0x2000), Some(&S(0x7000, 0x8000, 0x21000)));
    }
}
