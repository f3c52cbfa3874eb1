// SPDX-License-Identifier: GPL-2.0

//! Video memory: pages allocated on first use, shared by reference with
//! user mappings of BAR0 and with dma-bufs, and the log of the pages user
//! space changed, for pre-copy migration.

use crate::{
    kernel_ext::{
        dma_buf::{self, Attachment, MappedSgTable},
        page_ref::PageRef,
        vm_fault::{self, VmFault, VmOperations},
        vma::NewMapping,
        write_tracking::{DirtyPages, PageLookup, TrackedMemory},
    },
    regions,
};
use kernel::{
    dma::DataDirection,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// The VRAM of one device (BAR0).
///
/// Each page is allocated, zeroed, when something first touches it, and
/// stays until [`Vram::release_all`] (the device's last user closed it).
/// Whoever else uses a page (a user mapping, a dma-buf) holds its own
/// reference, so releasing the VRAM never frees a page still in use.
#[pin_data]
pub(crate) struct Vram {
    #[pin]
    pages: Mutex<KVVec<Option<PageRef>>>,
    /// The pages user space changed since they were last saved.
    dirty: DirtyPages,
}

impl Vram {
    /// VRAM of `size` bytes, a page multiple; no page is allocated yet.
    pub(crate) fn new(size: usize) -> Result<Arc<Self>> {
        if size % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let count = size / PAGE_SIZE;
        let mut pages = KVVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            pages.push(None, GFP_KERNEL)?;
        }
        let dirty = DirtyPages::new(count)?;
        Arc::pin_init(
            pin_init!(Self {
                pages <- new_mutex!(pages),
                dirty,
            }),
            GFP_KERNEL,
        )
    }

    /// Page `index`, allocated if need be; `EINVAL` past the end.
    pub(crate) fn page(&self, index: usize) -> Result<PageRef> {
        let mut pages = self.pages.lock();
        Self::page_locked(&mut pages, index)
    }

    fn page_locked(pages: &mut KVVec<Option<PageRef>>, index: usize) -> Result<PageRef> {
        let slot = pages.get_mut(index).ok_or(EINVAL)?;
        if let Some(page) = slot {
            return Ok(page.clone());
        }
        let page = PageRef::alloc_zeroed()?;
        *slot = Some(page.clone());
        Ok(page)
    }

    /// References to `count` pages from page `first` on, allocated if need be.
    pub(crate) fn pages(&self, first: usize, count: usize) -> Result<KVVec<PageRef>> {
        let end = first.checked_add(count).ok_or(EINVAL)?;
        let mut out = KVVec::with_capacity(count, GFP_KERNEL)?;
        let mut pages = self.pages.lock();
        if end > pages.len() {
            return Err(EINVAL);
        }
        for index in first..end {
            out.push(Self::page_locked(&mut pages, index)?, GFP_KERNEL)?;
        }
        Ok(out)
    }

    /// Records that user space changed page `index` (`write()`), after it did.
    pub(crate) fn mark(&self, index: usize) {
        self.dirty.mark(index);
    }

    /// Number of pages.
    pub(crate) fn page_count(&self) -> usize {
        self.pages.lock().len()
    }

    /// Swaps the VRAM's pages with `pages` (as many), e.g. a migration's
    /// staged VRAM: O(1), no page is copied. The caller removes the old
    /// pages from user mappings.
    pub(crate) fn swap_pages(&self, pages: &mut KVVec<Option<PageRef>>) {
        let mut ours = self.pages.lock();
        if ours.len() == pages.len() {
            core::mem::swap(&mut *ours, pages);
        }
    }

    /// Drops the VRAM's own references to its pages; pages still used
    /// elsewhere live on there, the others are freed. Later accesses start
    /// from zeroed pages again.
    pub(crate) fn release_all(&self) {
        let mut pages = self.pages.lock();
        for slot in pages.iter_mut() {
            *slot = None;
        }
    }
}

/// The VRAM page index of a fault in a mapping of BAR0.
fn fault_index(fault: &VmFault<'_>) -> Result<usize> {
    fault.pgoff().checked_sub(regions::BAR0_PGOFF).ok_or(EINVAL)
}

/// `mmap()` of BAR0: pages are mapped read-only as they are touched, and
/// become writable as they are written (and logged).
#[vtable]
impl VmOperations for Vram {
    fn fault(&self, fault: &VmFault<'_>) -> Result<PageRef> {
        self.page(fault_index(fault)?)
    }

    #[inline]
    fn page_mkwrite(&self, fault: &VmFault<'_>) -> Result {
        self.dirty.mark(fault_index(fault)?);
        Ok(())
    }
}

impl TrackedMemory for Vram {
    fn dirty_pages(&self) -> &DirtyPages {
        &self.dirty
    }

    fn file_pgoff(&self) -> usize {
        regions::BAR0_PGOFF
    }

    fn with_existing(&self, f: &mut dyn FnMut(&PageLookup<'_>)) {
        let pages = self.pages.lock();
        f(&|index| Ok(pages.get(index).ok_or(EINVAL)?.clone()));
    }

    fn existing_from(&self, from: usize, f: &mut dyn FnMut(bool)) {
        let pages = self.pages.lock();
        for page in pages.get(from..).unwrap_or(&[]) {
            f(page.is_some());
        }
    }
}

/// The pages of one scanout buffer: what a dma-buf exports.
pub(crate) struct FbPages {
    pages: KVVec<PageRef>,
}

impl FbPages {
    /// Takes references to `count` VRAM pages from page `first` on.
    pub(crate) fn new(vram: &Vram, first: usize, count: usize) -> Result<Arc<Self>> {
        let pages = vram.pages(first, count)?;
        Ok(Arc::new(Self { pages }, GFP_KERNEL)?)
    }

    /// Size in bytes: whole pages.
    pub(crate) fn size(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }
}

#[vtable]
impl dma_buf::Exporter for FbPages {
    #[inline]
    fn map(&self, attachment: &Attachment, dir: DataDirection) -> Result<MappedSgTable> {
        // The table takes references of its own on the pages.
        let mut pages = KVVec::with_capacity(self.pages.len(), GFP_KERNEL)?;
        for page in self.pages.iter() {
            pages.push(page.clone(), GFP_KERNEL)?;
        }
        MappedSgTable::from_pages(attachment, pages, self.size(), dir)
    }

    #[inline]
    fn mmap(this: ArcBorrow<'_, Self>, vma: &NewMapping<'_>) -> Result {
        // Like the C sample, shared mappings only (`install` refuses the
        // others; the buffer is exported read-write, so `MAP_SHARED` gets
        // `VM_SHARED`).
        vm_fault::install(vma, this.into())
    }
}

/// `mmap()` of a dma-buf: its pages, by offset in the buffer.
#[vtable]
impl VmOperations for FbPages {
    fn fault(&self, fault: &VmFault<'_>) -> Result<PageRef> {
        self.pages.get(fault.pgoff()).cloned().ok_or(EINVAL)
    }
}
