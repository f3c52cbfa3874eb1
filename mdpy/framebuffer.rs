// SPDX-License-Identifier: GPL-2.0

//! The framebuffer of one mdpy (BAR0): `vmalloc` memory shared with user
//! mappings page by page, and the log of the pages user space changed, for
//! pre-copy migration.

use crate::{
    kernel_ext::{
        page_ref::PageRef,
        vm_fault::{self, VmFault, VmOperations},
        vma::NewMapping,
        vmalloc::UserBuffer,
        write_tracking::{DirtyPages, PageLookup, TrackedMemory},
    },
    regions,
};
use kernel::{
    new_spinlock,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, ArcBorrow, SpinLock},
};

/// BAR0 of an mdpy.
///
/// The memory can be replaced whole ([`Framebuffer::replace`]: a migration
/// destination's staged framebuffer), so whoever uses it takes a reference
/// to the current one ([`Framebuffer::buf`]) for the time of its access:
/// a replaced buffer lives on until its last user is done.
///
/// # Invariants
///
/// The buffer in `buf` is always `len` bytes long.
#[pin_data]
pub(crate) struct Framebuffer {
    #[pin]
    buf: SpinLock<Arc<UserBuffer>>,
    len: usize,
    dirty: DirtyPages,
}

impl Framebuffer {
    /// A zeroed framebuffer of `size` bytes.
    pub(crate) fn new(size: usize) -> Result<Arc<Self>> {
        let buf = Arc::new(UserBuffer::new(size)?, GFP_KERNEL)?;
        let len = buf.len();
        let dirty = DirtyPages::new(len / PAGE_SIZE)?;
        // INVARIANT: `len` is the buffer's length.
        Arc::pin_init(
            pin_init!(Self {
                buf <- new_spinlock!(buf),
                len,
                dirty,
            }),
            GFP_KERNEL,
        )
    }

    /// The memory now (reads and writes that bypass the dirty log: the
    /// device's own drawing and migration).
    pub(crate) fn buf(&self) -> Arc<UserBuffer> {
        self.buf.lock().clone()
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes `new` the framebuffer's memory, in O(1), and returns the
    /// memory it replaces (to be dropped where sleeping is allowed); `new`
    /// is handed back, unused, unless it is as long as the framebuffer.
    /// User mappings keep the pages they have: the caller removes them
    /// (`UserMappings::zap`), and the next access maps the new pages.
    pub(crate) fn replace(
        &self,
        new: Arc<UserBuffer>,
    ) -> core::result::Result<Arc<UserBuffer>, Arc<UserBuffer>> {
        if new.len() != self.len {
            return Err(new);
        }
        // INVARIANT: `new` is `len` bytes long.
        Ok(core::mem::replace(&mut *self.buf.lock(), new))
    }

    /// Records a change of the `len` bytes at `offset` made by user space
    /// (`write()`), after it was made.
    pub(crate) fn mark(&self, offset: usize, len: usize) {
        self.dirty.mark_bytes(offset, len);
    }

    /// `mmap()` of BAR0 from byte `offset`: pages are mapped as they are
    /// touched, read-only, and become writable page by page as they are
    /// written (and logged).
    pub(crate) fn mmap(this: ArcBorrow<'_, Self>, vma: &NewMapping<'_>, offset: usize) -> Result {
        match offset.checked_add(vma.len()) {
            Some(end) if offset % PAGE_SIZE == 0 && end <= this.len => {}
            _ => return Err(EINVAL),
        }
        vm_fault::install(vma, this.into())
    }

    /// The page index of a fault's file page offset.
    fn index(fault: &VmFault<'_>) -> Result<usize> {
        fault.pgoff().checked_sub(regions::BAR0_PGOFF).ok_or(EINVAL)
    }
}

#[vtable]
impl VmOperations for Framebuffer {
    #[inline]
    fn fault(&self, fault: &VmFault<'_>) -> Result<PageRef> {
        self.buf().page(Self::index(fault)?)
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

    fn with_existing(&self, f: &mut dyn FnMut(&PageLookup<'_>)) {
        // Every page exists; one reference to the memory for all the lookups.
        let buf = self.buf();
        f(&|index| buf.page(index).map(Some));
    }

    fn contiguous(&self) -> Option<Arc<UserBuffer>> {
        Some(self.buf())
    }

    fn existing_from(&self, from: usize, f: &mut dyn FnMut(bool)) {
        // Every page exists.
        for _ in from..self.dirty.len() {
            f(true);
        }
    }
}
