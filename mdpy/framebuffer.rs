// SPDX-License-Identifier: GPL-2.0

//! The framebuffer of one mdpy (BAR0): `vmalloc` memory shared with user
//! mappings, and the log of the pages user space changed, for pre-copy
//! migration.

use crate::{
    kernel_ext::{
        page_ref::PageRef,
        vm_fault::{self, VmFault, VmOperations},
        vma::NewMapping,
        vmalloc::UserBuffer,
        write_tracking::{DirtyPages, TrackedMemory},
    },
    regions,
};
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// BAR0 of an mdpy.
pub(crate) struct Framebuffer {
    buf: UserBuffer,
    dirty: DirtyPages,
}

impl Framebuffer {
    /// A zeroed framebuffer of `size` bytes.
    pub(crate) fn new(size: usize) -> Result<Arc<Self>> {
        let buf = UserBuffer::new(size)?;
        let dirty = DirtyPages::new(buf.len() / PAGE_SIZE)?;
        Ok(Arc::new(Self { buf, dirty }, GFP_KERNEL)?)
    }

    /// The memory (reads and writes that bypass the dirty log: the device's
    /// own drawing and migration).
    pub(crate) fn buf(&self) -> &UserBuffer {
        &self.buf
    }

    /// Records a change of the `len` bytes at `offset` made by user space
    /// (`write()`), after it was made.
    pub(crate) fn mark(&self, offset: usize, len: usize) {
        self.dirty.mark_bytes(offset, len);
    }

    /// `mmap()` of BAR0 from byte `offset`: every page is mapped at once,
    /// read-only, and becomes writable page by page as it is written (and
    /// logged).
    pub(crate) fn mmap(this: ArcBorrow<'_, Self>, vma: &NewMapping<'_>, offset: usize) -> Result {
        vm_fault::install(vma, this.into())?;
        this.buf.mmap(vma, offset)
    }

    /// The page index of a fault's file page offset.
    fn index(fault: &VmFault<'_>) -> Result<usize> {
        fault.pgoff().checked_sub(regions::BAR0_PGOFF).ok_or(EINVAL)
    }
}

#[vtable]
impl VmOperations for Framebuffer {
    // Pages are mapped when the mapping is made; this maps one again after
    // user space dropped it (`madvise(MADV_DONTNEED)`).
    #[inline]
    fn fault(&self, fault: &VmFault<'_>) -> Result<PageRef> {
        self.buf.page(Self::index(fault)?)
    }

    #[inline]
    fn page_mkwrite(&self, fault: &VmFault<'_>) -> Result {
        self.dirty.mark(Self::index(fault)?);
        Ok(())
    }
}

impl TrackedMemory for Framebuffer {
    fn dirty_pages(&self) -> &DirtyPages {
        &self.dirty
    }

    fn file_pgoff(&self) -> usize {
        regions::BAR0_PGOFF
    }

    fn existing_page(&self, index: usize) -> Result<Option<PageRef>> {
        self.buf.page(index).map(Some)
    }

    fn existing_from(&self, from: usize, f: &mut dyn FnMut(bool)) {
        // Every page exists.
        for _ in from..self.dirty.len() {
            f(true);
        }
    }
}
