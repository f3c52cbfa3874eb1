// SPDX-License-Identifier: GPL-2.0

//! VMA accessors the kernel crate's `mm::virt` does not have yet.

use kernel::mm::virt::VmaRef;

/// The VMA's offset into the mapped file, in pages (`vm_pgoff`).
pub fn pgoff(vma: &VmaRef) -> usize {
    // SAFETY: `vma` is a live VMA (a `VmaRef` guarantees the mmap or VMA read lock is
    // held), and `vm_pgoff` is only written while the VMA is set up or split under the
    // write lock.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}
