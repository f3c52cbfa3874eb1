// SPDX-License-Identifier: GPL-2.0

//! Which pages of a device's memory changed since they were last saved:
//! the dirty log of pre-copy migration.
//!
//! A device's memory (a framebuffer, VRAM) is changed by user space in two
//! ways: through `write()`, which the driver sees, and through a shared
//! mapping, which it does not. For the second, the mapping's VMA operations
//! implement [`VmOperations::page_mkwrite`](super::vm_fault::VmOperations::page_mkwrite)
//! (pages are mapped read-only until written, see `vm_fault`) and mark the
//! page there; saving a page write-protects it again in every user mapping
//! ([`UserMappings::write_protect`]), so the next write is notified again.
//!
//! The order of the steps is what makes the log exact (no write lost, see
//! [`DirtyPages::take`] and [`DirtyPages::protect`]):
//!
//! - a notified write: page locked, page marked, entry made writable, page
//!   unlocked, then the bytes are written;
//! - `write()`: bytes copied, then page marked;
//! - saving: mark taken, page looked up, locked, write-protected, unlocked,
//!   then copied (a stopped device is not write-protected: it changes nothing).
//!
//! A write whose mark was taken before the copy lands before the copy ends
//! or faults again afterwards (and marks again); a mark set after it was
//! taken makes the page dirty again. Reads never mark anything. The log is
//! always kept: outside a migration it costs one atomic store on the first
//! write to each page of a new mapping, and nothing afterwards (nothing
//! write-protects pages outside a save).
//!
//! Not tracked: writes through mappings of other files that share the
//! pages (a dma-buf's `mmap()`), and long-term pins of the pages (GUP with
//! `FOLL_LONGTERM`, e.g. `O_DIRECT` I/O into a mapping), whose writes bypass
//! the page tables.

use super::{page_ref::PageRef, vfio::UserMappings, vmalloc::UserBuffer};
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{Atomic, Full, Relaxed, Release},
        Arc,
    },
};

/// One mark per page of a device's memory: set when the page changed since
/// it was last saved.
///
/// # Invariants
///
/// `marks` has `len.div_ceil(64)` words; bit `i % 64` of word `i / 64` is
/// page `i`'s mark, and the bits past `len` are never set.
pub struct DirtyPages {
    marks: KVVec<Atomic<u64>>,
    len: usize,
}

impl DirtyPages {
    /// A log of `pages` pages, none marked.
    #[inline]
    pub fn new(pages: usize) -> Result<Self> {
        let words = pages.div_ceil(64);
        let mut marks = KVVec::with_capacity(words, GFP_KERNEL)?;
        for _ in 0..words {
            marks.push(Atomic::new(0), GFP_KERNEL)?;
        }
        // INVARIANT: `words` words, all zero.
        Ok(Self { marks, len: pages })
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the log has no pages.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The word that holds page `index`'s mark, and the mark's bit in it;
    /// `None` past the end.
    #[inline]
    fn slot(&self, index: usize) -> Option<(&Atomic<u64>, u64)> {
        if index >= self.len {
            return None;
        }
        Some((self.marks.get(index / 64)?, 1u64 << (index % 64)))
    }

    /// Records that page `index` changed (nothing past the end). Call it
    /// after the change (`write()`), or with the page locked before it is
    /// made writable (`page_mkwrite`).
    #[inline]
    pub fn mark(&self, index: usize) {
        let Some((w, bit)) = self.slot(index) else {
            return;
        };
        // Release, and a write even if the bit is set already: whoever takes the mark
        // reads from this write (or a later one) and sees the bytes written before it.
        let mut old = w.load(Relaxed);
        while let Err(now) = w.cmpxchg(old, old | bit, Release) {
            old = now;
        }
    }

    /// Records that the `len` bytes at byte `offset` changed.
    #[inline]
    pub fn mark_bytes(&self, offset: usize, len: usize) {
        if len == 0 {
            return;
        }
        let last = offset.saturating_add(len - 1) / PAGE_SIZE;
        for index in offset / PAGE_SIZE..=last.min(self.len().saturating_sub(1)) {
            self.mark(index);
        }
    }

    /// Takes the mark of page `index`: clears it, and says whether it was
    /// set. Saving a page takes its mark *before* it looks at the page (and
    /// before [`DirtyPages::protect`]), so a change made after that marks
    /// it again, even the first touch that creates it.
    #[inline]
    pub fn take(&self, index: usize) -> bool {
        let Some((w, bit)) = self.slot(index) else {
            return false;
        };
        // Full, and a write even if the bit is clear: the mark is taken before the page is
        // looked up, locked and copied.
        let mut old = w.load(Relaxed);
        while let Err(now) = w.cmpxchg(old, old & !bit, Full) {
            old = now;
        }
        old & bit != 0
    }

    /// Whether page `index` is marked now.
    pub fn is_marked(&self, index: usize) -> bool {
        self.slot(index)
            .is_some_and(|(w, bit)| w.load(Relaxed) & bit != 0)
    }

    /// The first marked page from `index` on: 64 marks a load, so that
    /// looking for changes in a large memory that has few costs little.
    #[inline]
    pub fn next_marked(&self, index: usize) -> Option<usize> {
        let (_, bit) = self.slot(index)?;
        let first = index / 64;
        // The marks of the first word from `index` on.
        let mut mask = !(bit - 1);
        for (i, w) in self.marks.get(first..)?.iter().enumerate() {
            let bits = w.load(Relaxed) & mask;
            if bits != 0 {
                // CAST: `trailing_zeros()` of a non-zero `u64` is below 64.
                let found = (first + i) * 64 + bits.trailing_zeros() as usize;
                // By the type invariant no bit past `len` is set.
                return Some(found);
            }
            mask = !0;
        }
        None
    }

    /// Write-protects `page`, mapped at file page offset `pgoff` of the
    /// device, in every user mapping of the device, after its mark was
    /// taken ([`DirtyPages::take`]) and before it is copied.
    ///
    /// Every change the copy may miss is marked again: a `write()` marks
    /// after copying, and a write through a mapping is notified (and marks)
    /// once the page is write-protected. The page lock orders the
    /// write-protection with a notified write in flight, whose entry becomes
    /// writable only before the lock is released.
    #[inline]
    pub fn protect(&self, mappings: &UserMappings<'_>, pgoff: usize, page: &PageRef) {
        let lock = page.lock();
        mappings.write_protect(pgoff, &lock);
    }
}

/// A lookup of the pages of a [`TrackedMemory`] that exist: page `index`,
/// `None` for a page never used, `EINVAL` past the end.
pub type PageLookup<'a> = dyn Fn(usize) -> Result<Option<PageRef>> + 'a;

/// A device memory that migration saves page by page and whose changes
/// pre-copy tracks: the mapped region behind a [`DirtyPages`] log.
pub trait TrackedMemory: Send + Sync {
    /// The dirty log, one mark per page.
    fn dirty_pages(&self) -> &DirtyPages;

    /// The offset of the memory's first page in the device file, in pages
    /// (where its region is mapped).
    fn file_pgoff(&self) -> usize;

    /// Calls `f` once with a lookup of the pages that exist, valid for the
    /// call (e.g. under one lock, so that a run of pages costs one lock):
    /// `lookup(index)` is page `index` if it exists, `None` for a page never
    /// used (which reads as zeros and is not saved), `EINVAL` past the end.
    /// `f` must not call back into the memory.
    fn with_existing(&self, f: &mut dyn FnMut(&PageLookup<'_>));

    /// The memory as one buffer, page `i` at byte `i * PAGE_SIZE`, if it is
    /// one (then every page exists): migration copies runs of pages from it
    /// in one piece. `None` (the default): pages are copied one by one.
    fn contiguous(&self) -> Option<Arc<UserBuffer>> {
        None
    }

    /// Calls `f` for each page from page `from` to the end of the memory,
    /// in order, with whether it exists now (a consistent view, e.g. under
    /// one lock; `f` must not call back into the memory).
    fn existing_from(&self, from: usize, f: &mut dyn FnMut(bool));
}
