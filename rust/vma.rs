// SPDX-License-Identifier: GPL-2.0

//! VMA accessors the kernel crate's `mm::virt` does not have yet, and the
//! VMA of our `mmap()` hooks.

#[cfg(kx_mdev)]
use core::cell::Cell;
use kernel::mm::virt::VmaRef;
#[cfg(kx_mdev)]
use kernel::{
    mm::virt::{flags, VmaNew},
    prelude::*,
};

/// The VMA's offset into the mapped file, in pages (`vm_pgoff`).
pub fn pgoff(vma: &VmaRef) -> usize {
    // SAFETY: `vma` is a live VMA (a `VmaRef` guarantees the mmap or VMA read lock is
    // held), and `vm_pgoff` is only written while the VMA is set up or split under the
    // write lock.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

/// A VMA being set up by one of this layer's `mmap()` trampolines, handed
/// to the driver's `mmap` hook.
///
/// Whatever a hook installs into the VMA (see
/// [`vm_fault::install`](super::vm_fault)) it records here with its undo;
/// if the hook then fails, [`NewMapping::finish`] undoes it. The mm core
/// drops a VMA whose `mmap()` failed without calling its `close`, so without
/// this a hook that fails after installing would leak what it installed,
/// whatever order its steps were in.
#[cfg(kx_mdev)]
pub struct NewMapping<'a> {
    vma: &'a VmaNew,
    undo: Cell<Option<unsafe fn(&VmaNew)>>,
}

#[cfg(kx_mdev)]
impl<'a> NewMapping<'a> {
    /// Wraps the VMA of an `mmap()` hook. Only this layer's trampolines do.
    pub(in crate::kernel_ext) fn new(vma: &'a VmaNew) -> Self {
        Self {
            vma,
            undo: Cell::new(None),
        }
    }

    /// The VMA.
    pub fn vma(&self) -> &VmaNew {
        self.vma
    }

    /// Its offset into the mapped file, in pages (`vm_pgoff`).
    pub fn pgoff(&self) -> usize {
        pgoff(self.vma)
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.vma.end() - self.vma.start()
    }

    /// Always `false`: a VMA is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether it is a shared mapping (`VM_SHARED`): writes reach the mapped
    /// object, and no copy-on-write pages are made.
    pub fn is_shared(&self) -> bool {
        self.vma.flags() & flags::SHARED != 0
    }

    /// Records `undo` as what undoes the caller's installation into the VMA;
    /// `EBUSY` if something was installed already (a VMA has one set of
    /// operations).
    ///
    /// # Safety
    ///
    /// Called right after installing into this VMA; `undo`, given the VMA,
    /// must undo exactly that installation.
    // Only `vm_fault` installs (the dma-buf drivers).
    #[cfg(kx_dma_buf)]
    pub(in crate::kernel_ext) unsafe fn set_undo(&self, undo: unsafe fn(&VmaNew)) -> Result {
        if self.undo.get().is_some() {
            return Err(EBUSY);
        }
        self.undo.set(Some(undo));
        Ok(())
    }

    /// Ends the hook with its result, as the C errno: on an error, first
    /// undoes what was installed.
    pub(in crate::kernel_ext) fn finish(self, res: Result) -> c_int {
        match res {
            Ok(()) => 0,
            Err(e) => {
                if let Some(undo) = self.undo.take() {
                    // SAFETY: `undo` was recorded by `set_undo` for this VMA, whose hook is
                    // failing: the installation is undone once, before the mm core drops it.
                    unsafe { undo(self.vma) };
                }
                e.to_errno()
            }
        }
    }
}
