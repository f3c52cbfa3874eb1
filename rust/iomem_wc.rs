// SPDX-License-Identifier: GPL-2.0

//! Write-combined mappings of device memory (`ioremap_wc()`).

use super::bindings;
use core::ptr::NonNull;
use kernel::prelude::*;

/// A write-combined kernel mapping of `len` bytes of device memory at the
/// physical address `phys`, unmapped when dropped.
///
/// Write combining suits framebuffers: the CPU may merge and reorder writes,
/// which is what a frame of pixels wants and what register I/O must not
/// have. The mapping itself does not reserve the memory: its owner requests
/// the region (e.g. [`super::pci_resources::RegionRequest`]).
///
/// # Invariants
///
/// `addr` is a live `ioremap_wc()` mapping of `len > 0` bytes at `phys`.
pub struct IoMemWc {
    addr: NonNull<u8>,
    len: usize,
    phys: bindings::resource_size_t,
}

// SAFETY: The object only owns the mapping; it hands out its address, never references to
// the memory behind it, so it may move between threads and be shared.
unsafe impl Send for IoMemWc {}
// SAFETY: See `Send`.
unsafe impl Sync for IoMemWc {}

impl IoMemWc {
    /// Maps `len` bytes of device memory at `phys` write-combined.
    pub fn new(phys: bindings::resource_size_t, len: usize) -> Result<Self> {
        if len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: FFI call without preconditions; a range that is not device memory makes it
        // fail (NULL).
        let addr = unsafe { bindings::kx_ioremap_wc(phys, len) };
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(EIO)?;
        // INVARIANT: `addr` is a fresh mapping of `len > 0` bytes at `phys`.
        Ok(Self { addr, len, phys })
    }

    /// The kernel virtual address of the mapping (an `__iomem` pointer to C).
    pub fn addr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a mapping is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Physical address of the mapped memory.
    pub fn phys(&self) -> bindings::resource_size_t {
        self.phys
    }
}

impl Drop for IoMemWc {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `addr` is a live mapping, and this is the only place
        // that unmaps it.
        unsafe { bindings::kx_iounmap(self.addr.as_ptr().cast()) };
    }
}
