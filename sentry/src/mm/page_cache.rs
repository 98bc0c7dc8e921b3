//! The page cache: a file's pages in the memory file, shared by every address space that
//! maps the file, and kept coherent with read(2), write(2) and truncation of it.
//!
//! A cache is a set of 2 MiB chunks, each one range of the memory file (sparse until
//! filled), with a bit per page saying whether the page holds the file's bytes and one
//! saying whether a shared mapping may have written it since. Mapped pages are read from
//! the file on first access, a window at a time. Dirty pages go back to the file on msync,
//! munmap and exit; until then read(2) sees them through [`after_read`], and write(2)
//! updates cached pages through [`after_write`], so the file and every mapping agree.
//!
//! Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) is a cache with no file: its pages
//! are zeros until written and never written back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use super::vma::Backing;
use super::MemoryFile;
use crate::abi::{page_down, Errno, PAGE_SIZE};
use crate::vfs::{Inode, OpenFile};

/// Bytes of the file in one chunk (one range of the memory file).
pub const CHUNK: u64 = 2 << 20;
const CHUNK_PAGES: u64 = CHUNK / PAGE_SIZE;
const WORDS: usize = (CHUNK_PAGES / 64) as usize;

/// One bit per page of a chunk.
#[derive(Debug, Clone, Copy, Default)]
struct Bits([u64; WORDS]);

impl Bits {
    fn get(&self, page: u64) -> bool {
        self.0[(page / 64) as usize] & (1 << (page % 64)) != 0
    }
    fn set(&mut self, pages: std::ops::Range<u64>, on: bool) {
        for page in pages {
            let (word, bit) = ((page / 64) as usize, page % 64);
            if on {
                self.0[word] |= 1 << bit;
            } else {
                self.0[word] &= !(1 << bit);
            }
        }
    }
    fn count(&self) -> u64 {
        self.0.iter().map(|w| w.count_ones() as u64).sum()
    }
    fn any(&self) -> bool {
        self.0.iter().any(|&w| w != 0)
    }
}

struct Chunk {
    backing: Arc<Backing>,
    filled: Bits,
    dirty: Bits,
}

/// The cached pages of one file (or of one shared anonymous mapping).
pub struct PageCache {
    memory: Arc<MemoryFile>,
    /// The inode cached, held so that its identity (the registry's key) stays unique while
    /// the cache lives; None for shared anonymous memory.
    inode: Option<Arc<dyn Inode>>,
    chunks: Mutex<BTreeMap<u64, Chunk>>,
}

/// A run of cached pages: `len` bytes of the file from `offset`, at `memory_offset` in the
/// memory file, inside `backing`.
#[derive(Debug, Clone)]
pub struct Run {
    pub offset: u64,
    pub len: u64,
    pub memory_offset: u64,
    pub backing: Arc<Backing>,
}

/// Why cached pages could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillError {
    /// The page lies wholly past the end of the file (SIGBUS for a guest access).
    PastEnd,
    Errno(Errno),
}

impl From<Errno> for FillError {
    fn from(e: Errno) -> Self {
        FillError::Errno(e)
    }
}

/// Identity of an inode object: the address of its data, unique while it is alive.
fn key_of(inode: &Arc<dyn Inode>) -> usize {
    Arc::as_ptr(inode) as *const () as usize
}

/// Every file cache that exists, by inode identity.
static CACHES: LazyLock<Mutex<HashMap<usize, Weak<PageCache>>>> = LazyLock::new(Default::default);
/// How many file caches exist: read and write skip the registry while there are none.
static LIVE: AtomicUsize = AtomicUsize::new(0);

fn registry() -> MutexGuard<'static, HashMap<usize, Weak<PageCache>>> {
    CACHES.lock().unwrap_or_else(|e| e.into_inner())
}

impl PageCache {
    /// The cache of `inode`'s pages, shared with everyone who maps it.
    pub fn of_file(memory: &Arc<MemoryFile>, inode: &Arc<dyn Inode>) -> Arc<PageCache> {
        let mut caches = registry();
        let key = key_of(inode);
        if let Some(cache) = caches.get(&key).and_then(Weak::upgrade) {
            return cache;
        }
        let cache = Arc::new(PageCache {
            memory: memory.clone(),
            inode: Some(inode.clone()),
            chunks: Mutex::new(BTreeMap::new()),
        });
        caches.insert(key, Arc::downgrade(&cache));
        LIVE.fetch_add(1, Ordering::AcqRel);
        cache
    }

    /// A cache with no file behind it: shared anonymous memory.
    pub fn anonymous(memory: &Arc<MemoryFile>) -> Arc<PageCache> {
        Arc::new(PageCache {
            memory: memory.clone(),
            inode: None,
            chunks: Mutex::new(BTreeMap::new()),
        })
    }

    fn existing(inode: &Arc<dyn Inode>) -> Option<Arc<PageCache>> {
        if LIVE.load(Ordering::Acquire) == 0 {
            return None;
        }
        registry().get(&key_of(inode)).and_then(Weak::upgrade)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Chunk>> {
        self.chunks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_anonymous(&self) -> bool {
        self.inode.is_none()
    }

    fn chunk<'a>(
        &self,
        chunks: &'a mut BTreeMap<u64, Chunk>,
        index: u64,
    ) -> Result<&'a mut Chunk, Errno> {
        if let std::collections::btree_map::Entry::Vacant(slot) = chunks.entry(index) {
            slot.insert(Chunk {
                backing: Backing::allocate(&self.memory, CHUNK, true)?,
                filled: Bits::default(),
                dirty: Bits::default(),
            });
        }
        chunks.get_mut(&index).ok_or(Errno::ENOMEM)
    }

    /// The run of cached pages around `at` within `[lo, hi)` (page-aligned file offsets in
    /// one chunk, `lo <= at < hi`), reading the missing pages of the window from `file`.
    /// The run stops before any page wholly past the end of the file; PastEnd if `at`'s
    /// page is.
    pub fn fill(
        &self,
        at: u64,
        lo: u64,
        hi: u64,
        file: Option<&OpenFile>,
    ) -> Result<Run, FillError> {
        let index = at / CHUNK;
        debug_assert!(lo <= at && at < hi && lo / CHUNK == index && (hi - 1) / CHUNK == index);
        let base = index * CHUNK;
        let mut chunks = self.lock();
        let chunk = self.chunk(&mut chunks, index)?;
        let page = |off: u64| (off - base) / PAGE_SIZE;
        match file {
            // Anonymous memory is all there: a hole in the memory file reads as zeros.
            None => chunk.filled.set(page(lo)..page(hi), true),
            Some(file) => {
                let mut off = lo;
                while off < hi {
                    if chunk.filled.get(page(off)) {
                        off += PAGE_SIZE;
                        continue;
                    }
                    let mut end = off + PAGE_SIZE;
                    while end < hi && !chunk.filled.get(page(end)) {
                        end += PAGE_SIZE;
                    }
                    let got = read_full(file, off, (end - off) as usize)?;
                    let pages_end = off + crate::abi::page_up(got.len() as u64).unwrap_or(0);
                    if !got.is_empty() {
                        // The last page's bytes past the end of the file stay zeros.
                        let mut padded = got;
                        padded.resize((pages_end - off) as usize, 0);
                        self.memory
                            .write(chunk.backing.offset + (off - base), &padded)?;
                        chunk.filled.set(page(off)..page(pages_end), true);
                    }
                    if pages_end < end {
                        break; // The end of the file.
                    }
                    off = end;
                }
            }
        }
        if !chunk.filled.get(page(at)) {
            return Err(FillError::PastEnd);
        }
        let mut start = at;
        while start > lo && chunk.filled.get(page(start - PAGE_SIZE)) {
            start -= PAGE_SIZE;
        }
        let mut end = at + PAGE_SIZE;
        while end < hi && chunk.filled.get(page(end)) {
            end += PAGE_SIZE;
        }
        Ok(Run {
            offset: start,
            len: end - start,
            memory_offset: chunk.backing.offset + (start - base),
            backing: chunk.backing.clone(),
        })
    }

    /// The runs of `[lo, hi)` already cached, without reading anything.
    pub fn present(&self, lo: u64, hi: u64) -> Vec<Run> {
        let chunks = self.lock();
        let mut runs = Vec::new();
        let mut off = lo;
        while off < hi {
            let index = off / CHUNK;
            let base = index * CHUNK;
            let chunk_end = (base + CHUNK).min(hi);
            let Some(chunk) = chunks.get(&index) else {
                off = chunk_end;
                continue;
            };
            while off < chunk_end {
                if !chunk.filled.get((off - base) / PAGE_SIZE) {
                    off += PAGE_SIZE;
                    continue;
                }
                let start = off;
                while off < chunk_end && chunk.filled.get((off - base) / PAGE_SIZE) {
                    off += PAGE_SIZE;
                }
                runs.push(Run {
                    offset: start,
                    len: off - start,
                    memory_offset: chunk.backing.offset + (start - base),
                    backing: chunk.backing.clone(),
                });
            }
        }
        runs
    }

    /// Whether the page at `offset` is cached (mincore).
    pub fn is_cached(&self, offset: u64) -> bool {
        let chunks = self.lock();
        chunks
            .get(&(offset / CHUNK))
            .is_some_and(|c| c.filled.get((offset % CHUNK) / PAGE_SIZE))
    }

    /// Records that a shared mapping may write the cached pages of `[lo, hi)`.
    pub fn mark_dirty(&self, lo: u64, hi: u64) {
        if self.is_anonymous() {
            return;
        }
        let mut chunks = self.lock();
        let mut off = lo;
        while off < hi {
            let index = off / CHUNK;
            let end = ((index + 1) * CHUNK).min(hi);
            if let Some(chunk) = chunks.get_mut(&index) {
                let base = index * CHUNK;
                chunk.dirty.set(
                    (off - base) / PAGE_SIZE..(end - base).div_ceil(PAGE_SIZE),
                    true,
                );
            }
            off = end;
        }
    }

    /// Writes the dirty pages of `[lo, hi)` to `file`, never past its end. The pages stay
    /// marked dirty: mappings may still write them without the Sentry seeing it.
    pub fn write_back(&self, lo: u64, hi: u64, file: &OpenFile) -> Result<(), Errno> {
        if self.is_anonymous() {
            return Ok(());
        }
        let runs = self.dirty_runs(lo, hi);
        if runs.is_empty() {
            return Ok(());
        }
        let size = file.attr()?.size;
        for (offset, memory_offset, len) in runs {
            let len = len.min(size.saturating_sub(offset));
            if len == 0 {
                continue;
            }
            let mut buf = vec![0u8; len as usize];
            self.memory.read(memory_offset, &mut buf)?;
            let mut done = 0;
            while done < buf.len() {
                match file.write_uncached(offset + done as u64, &buf[done..])? {
                    0 => return Err(Errno::EIO),
                    n => done += n,
                }
            }
        }
        Ok(())
    }

    /// `(file offset, memory offset, len)` of the dirty runs in `[lo, hi)`.
    fn dirty_runs(&self, lo: u64, hi: u64) -> Vec<(u64, u64, u64)> {
        let chunks = self.lock();
        let mut runs: Vec<(u64, u64, u64)> = Vec::new();
        for (&index, chunk) in chunks.range(lo / CHUNK..hi.div_ceil(CHUNK)) {
            if !chunk.dirty.any() {
                continue;
            }
            let base = index * CHUNK;
            let mut off = lo.max(base);
            let end = hi.min(base + CHUNK);
            while off < end {
                if chunk.dirty.get((off - base) / PAGE_SIZE) {
                    let memory_offset = chunk.backing.offset + (off - base);
                    match runs.last_mut() {
                        Some(last)
                            if last.0 + last.2 == off && last.1 + last.2 == memory_offset =>
                        {
                            last.2 += PAGE_SIZE
                        }
                        _ => runs.push((off, memory_offset, PAGE_SIZE)),
                    }
                }
                off += PAGE_SIZE;
            }
        }
        runs
    }

    /// Makes `[lo, hi)` zeros (MADV_REMOVE on shared anonymous memory).
    pub fn zero(&self, lo: u64, hi: u64) {
        let chunks = self.lock();
        self.each_cached(&chunks, lo, hi - lo, |memory_offset, _, n| {
            let _ = self.memory.write(memory_offset, &vec![0u8; n]);
        });
    }

    /// Bytes of memory the cached pages use.
    pub fn cached_bytes(&self) -> u64 {
        self.lock()
            .values()
            .map(|c| c.filled.count() * PAGE_SIZE)
            .sum()
    }

    /// write(2) put `data` at `offset` of the file: cached pages take the new bytes.
    fn wrote(&self, offset: u64, data: &[u8]) {
        let chunks = self.lock();
        self.each_cached(
            &chunks,
            offset,
            data.len() as u64,
            |memory_offset, at, n| {
                let _ = self.memory.write(memory_offset, &data[at..at + n]);
            },
        );
    }

    /// read(2) got `buf` from `offset` of the file: dirty pages have newer bytes.
    fn overlay_dirty(&self, offset: u64, buf: &mut [u8]) {
        let chunks = self.lock();
        if !chunks.values().any(|c| c.dirty.any()) {
            return;
        }
        let mut off = offset;
        let end = offset + buf.len() as u64;
        while off < end {
            let index = off / CHUNK;
            let base = index * CHUNK;
            let page_end = (page_down(off) + PAGE_SIZE).min(end);
            if let Some(chunk) = chunks.get(&index) {
                if chunk.dirty.get((off - base) / PAGE_SIZE) {
                    let at = (off - offset) as usize;
                    let n = (page_end - off) as usize;
                    let _ = self
                        .memory
                        .read(chunk.backing.offset + (off - base), &mut buf[at..at + n]);
                }
            }
            off = page_end;
        }
    }

    /// Calls `f(memory offset, offset into the range, len)` for each cached piece of
    /// `[offset, offset + len)`.
    fn each_cached(
        &self,
        chunks: &BTreeMap<u64, Chunk>,
        offset: u64,
        len: u64,
        mut f: impl FnMut(u64, usize, usize),
    ) {
        let end = offset.saturating_add(len);
        let mut off = offset;
        while off < end {
            let index = off / CHUNK;
            let base = index * CHUNK;
            let page_end = (page_down(off) + PAGE_SIZE).min(end);
            if let Some(chunk) = chunks.get(&index) {
                if chunk.filled.get((off - base) / PAGE_SIZE) {
                    f(
                        chunk.backing.offset + (off - base),
                        (off - offset) as usize,
                        (page_end - off) as usize,
                    );
                }
            }
            off = page_end;
        }
    }

    /// The file is now `size` bytes: pages past it are no longer cached, and the bytes of
    /// the last page past the end read as zeros. (Pages still mapped keep their memory
    /// until unmapped; an access to them is not turned into SIGBUS.)
    fn truncated(&self, size: u64) {
        let mut chunks = self.lock();
        let keep_pages = size.div_ceil(PAGE_SIZE);
        chunks.retain(|&index, chunk| {
            let first = index * CHUNK_PAGES;
            if first >= keep_pages {
                return false;
            }
            let from = keep_pages.saturating_sub(first).min(CHUNK_PAGES);
            chunk.filled.set(from..CHUNK_PAGES, false);
            chunk.dirty.set(from..CHUNK_PAGES, false);
            true
        });
        if !size.is_multiple_of(PAGE_SIZE) {
            let index = size / CHUNK;
            if let Some(chunk) = chunks.get(&index) {
                if chunk.filled.get((size % CHUNK) / PAGE_SIZE) {
                    let tail = (PAGE_SIZE - size % PAGE_SIZE) as usize;
                    let at = chunk.backing.offset + size % CHUNK;
                    let _ = self.memory.write(at, &vec![0u8; tail]);
                }
            }
        }
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        if let Some(inode) = &self.inode {
            let mut caches = registry();
            let key = key_of(inode);
            if caches.get(&key).is_some_and(|w| w.strong_count() == 0) {
                caches.remove(&key);
            }
            LIVE.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Reads up to `len` bytes at `offset`, fewer only at the end of the file.
fn read_full(file: &OpenFile, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_uncached(offset + done as u64, &mut buf[done..])? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// write(2) and friends wrote `data` at `offset` of `inode`.
pub fn after_write(inode: &Arc<dyn Inode>, offset: u64, data: &[u8]) {
    if let Some(cache) = PageCache::existing(inode) {
        cache.wrote(offset, data);
    }
}

/// read(2) and friends read `buf` at `offset` of `inode`.
pub fn after_read(inode: &Arc<dyn Inode>, offset: u64, buf: &mut [u8]) {
    if let Some(cache) = PageCache::existing(inode) {
        cache.overlay_dirty(offset, buf);
    }
}

/// `inode`'s size was set to `size` (truncate, O_TRUNC).
pub fn after_truncate(inode: &Arc<dyn Inode>, size: u64) {
    if let Some(cache) = PageCache::existing(inode) {
        cache.truncated(size);
    }
}

/// Bytes of memory all file caches use (/proc/meminfo's Cached).
pub fn total_cached() -> u64 {
    let caches: Vec<Arc<PageCache>> = registry().values().filter_map(Weak::upgrade).collect();
    caches.iter().map(|c| c.cached_bytes()).sum()
}
