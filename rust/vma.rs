// SPDX-License-Identifier: GPL-2.0

//! VMA accessors the kernel crate's `mm::virt` does not have yet, and the
//! VMA of our `mmap()` hooks.

use kernel::mm::virt::VmaRef;

// Only modules with `mmap()` trampolines (the VFIO and dma-buf parts) have
// new mappings.
#[cfg(any(kx_mdev, kx_dma_buf))]
pub use new_mapping::NewMapping;

/// The VMA's offset into the mapped file, in pages (`vm_pgoff`).
pub fn pgoff(vma: &VmaRef) -> usize {
    // SAFETY: `vma` is a live VMA (a `VmaRef` guarantees the mmap or VMA read lock is
    // held), and `vm_pgoff` is only written while the VMA is set up or split under the
    // write lock.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

#[cfg(any(kx_mdev, kx_dma_buf))]
mod new_mapping {
    use super::{super::bindings, pgoff};
    use core::{cell::Cell, ffi::c_void};
    use kernel::{
        mm::virt::{flags, VmaNew},
        prelude::*,
    };

    /// A VMA being set up by one of this layer's `mmap()` trampolines, handed
    /// to the driver's `mmap` hook.
    ///
    /// What a hook installs into the VMA (operations and private data, see
    /// `vm_fault::install`) goes through
    /// [`NewMapping::set_ops`], which records what it replaced; if the hook then
    /// fails, [`NewMapping::finish`] undoes it. The mm core drops a VMA whose
    /// `mmap()` failed without calling its `close`, so without this a hook that
    /// fails after installing would leak what it installed, whatever order its
    /// steps were in.
    ///
    /// A `NewMapping` is only ever borrowed by a hook (it cannot outlive the
    /// call) and is not `Sync` (the hook's thread alone installs into the VMA).
    pub struct NewMapping<'a> {
        vma: &'a VmaNew,
        installed: Cell<Option<Installed>>,
    }

    /// What [`NewMapping::set_ops`] did to the VMA, and how to take it back.
    #[derive(Clone, Copy)]
    struct Installed {
        /// The `vm_ops` it replaced.
        old_ops: *const bindings::vm_operations_struct,
        /// The `vm_private_data` it replaced.
        old_data: *mut c_void,
        /// The private data it installed, owned by the VMA once the hook succeeds.
        data: *mut c_void,
        /// Gives up what `data` owns (what the installed `close` would do).
        release: unsafe fn(*mut c_void),
    }

    impl<'a> NewMapping<'a> {
        /// Wraps the VMA of an `mmap()` hook. Only this layer's trampolines do,
        /// and each ends the hook with [`NewMapping::finish`].
        pub(in crate::kernel_ext) fn new(vma: &'a VmaNew) -> Self {
            Self {
                vma,
                installed: Cell::new(None),
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

        /// Whether operations were installed into the VMA already.
        pub(in crate::kernel_ext) fn is_installed(&self) -> bool {
            self.installed.get().is_some()
        }

        /// Installs `ops` and `data` as the VMA's operations and private data,
        /// once per mapping: `EBUSY` if something was installed already (a VMA
        /// has one set of operations).
        ///
        /// `data` is given up in every case: on an error at once with `release`,
        /// if the hook fails by [`NewMapping::finish`] (also with `release`), and
        /// otherwise it belongs to the VMA.
        ///
        /// # Safety
        ///
        /// `release(data)` must give up what `data` owns, once. `ops` must be
        /// valid for the VMA with `data` as its private data, its `close` giving
        /// `data` up like `release` and its `open` taking what a copy of the VMA
        /// needs.
        #[inline]
        pub(in crate::kernel_ext) unsafe fn set_ops(
            &self,
            ops: &'static bindings::vm_operations_struct,
            data: *mut c_void,
            release: unsafe fn(*mut c_void),
        ) -> Result {
            if self.is_installed() {
                // SAFETY: Per the safety requirements; `data` was not installed.
                unsafe { release(data) };
                return Err(EBUSY);
            }
            let raw = self.vma.as_ptr();
            // SAFETY: `raw` is being set up in an `mmap()` hook (a `NewMapping` only exists in
            // one), under the mmap write lock: we may replace its operations and private data,
            // and no other code looks at them until the hook returns.
            let (old_ops, old_data) = unsafe {
                let old = ((*raw).vm_ops, (*raw).vm_private_data);
                (*raw).vm_ops = ops;
                (*raw).vm_private_data = data;
                old
            };
            self.installed.set(Some(Installed {
                old_ops,
                old_data,
                data,
                release,
            }));
            Ok(())
        }

        /// Makes the pages the hook itself inserts read-only, as the mm core
        /// makes every page inserted later once the hook returns, because the
        /// operations it installed want to be told of writes (`page_mkwrite`,
        /// see `vm_fault`). Lowers permissions only.
        #[inline]
        pub(in crate::kernel_ext) fn set_write_notify_prot(&self) {
            // SAFETY: The VMA is being set up in an `mmap()` hook, under the mmap write lock:
            // its `vm_page_prot` may be changed, and the mm core recomputes it (to the same
            // value for a VMA with `page_mkwrite`) when the hook returns.
            unsafe { bindings::kx_vma_set_write_notify_prot(self.vma.as_ptr()) };
        }

        /// Ends the hook with its result, as the C errno. If the hook failed
        /// after [`NewMapping::set_ops`], first restores the VMA's previous
        /// operations and private data and gives up the installed data: the mm
        /// core never calls the `close` of a VMA whose `mmap()` failed.
        #[inline]
        pub(in crate::kernel_ext) fn finish(self, res: Result) -> c_int {
            match res {
                Ok(()) => 0,
                Err(e) => {
                    if let Some(i) = self.installed.take() {
                        let raw = self.vma.as_ptr();
                        // SAFETY: The hook is still running (under the mmap write lock) and
                        // failing, so no `close` will see `i.data`: the VMA gets back what
                        // `set_ops` replaced, and `i.data` is given up once, per the safety
                        // requirements of `set_ops`.
                        unsafe {
                            (*raw).vm_ops = i.old_ops;
                            (*raw).vm_private_data = i.old_data;
                            (i.release)(i.data);
                        }
                    }
                    e.to_errno()
                }
            }
        }
    }
}
