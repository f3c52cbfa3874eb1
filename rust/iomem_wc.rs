// SPDX-License-Identifier: GPL-2.0

//! Write-combined mappings of device memory (`ioremap_wc()`).

use super::{
    bindings,
    pci_resources::{is_memory_bar, RegionRequest},
};
use core::ptr::NonNull;
use kernel::{device::Bound, pci, prelude::*};

/// A write-combined kernel mapping of the memory BAR whose region request it
/// owns, unmapped when dropped (and then the region released).
///
/// Write combining suits framebuffers: the CPU may merge and reorder writes,
/// which is what a frame of pixels wants and what register I/O must not
/// have.
///
/// Made only by [`IoMemWc::new`] from a [`RegionRequest`]: the mapping owns
/// the request of the range it maps, so it can neither map memory its owner
/// did not claim nor outlive the claim. The object hands out the mapping's
/// address, never references to the memory behind it; whoever it gives the
/// address to (the fbdev core, through [`super::fbdev::Registration`]) must
/// be done with it before it is dropped.
///
/// This module depends on `pci_resources`, never the other way round.
///
/// # Invariants
///
/// `addr` is a live `ioremap_wc()` mapping of `len > 0` bytes at `phys`, the resource of the
/// BAR `region` holds; it is unmapped only on drop, before `region` is released.
pub struct IoMemWc<'a> {
    addr: NonNull<u8>,
    len: usize,
    phys: bindings::resource_size_t,
    region: RegionRequest<'a>,
}

// SAFETY: The object owns the mapping and the region request, which any thread may release;
// it hands out the mapping's address, never references to the memory behind it.
unsafe impl Send for IoMemWc<'_> {}
// SAFETY: `&IoMemWc` only reads the immutable address, length and physical address.
unsafe impl Sync for IoMemWc<'_> {}

impl<'a> IoMemWc<'a> {
    /// Maps the whole BAR `region` requested, write-combined; the mapping
    /// takes over the request and releases it after unmapping. `EINVAL` if
    /// it is not a memory BAR (or an empty one).
    pub fn new(region: RegionRequest<'a>) -> Result<Self> {
        let pdev = region.device();
        let bar = region.bar();
        if !is_memory_bar(pdev, bar) {
            return Err(EINVAL);
        }
        let phys = pdev.resource_start(bar)?;
        let len = usize::try_from(pdev.resource_len(bar)?)?;
        if len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `phys..phys + len` is the memory resource of the BAR `region` requested, so
        // nobody else maps it with other cache attributes under us; `ioremap_wc()` fails
        // (NULL) rather than map RAM.
        let addr = unsafe { bindings::kx_ioremap_wc(phys, len) };
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(EIO)?;
        // INVARIANT: `addr` is a fresh mapping of `len > 0` bytes at `phys`, `region`'s BAR.
        Ok(Self {
            addr,
            len,
            phys,
            region,
        })
    }

    /// The bound PCI device whose BAR this maps.
    pub fn device(&self) -> &'a pci::Device<Bound> {
        self.region.device()
    }

    /// The kernel virtual address of the mapping (an `__iomem` pointer to C).
    pub fn addr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    /// Size of the mapping in bytes: the whole BAR.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a mapping is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Physical address of the mapped memory: the BAR's start.
    pub fn phys(&self) -> bindings::resource_size_t {
        self.phys
    }
}

impl Drop for IoMemWc<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `addr` is a live mapping, and this is the only place
        // that unmaps it; `region` is released only afterwards, when the fields are dropped.
        unsafe { bindings::kx_iounmap(self.addr.as_ptr().cast()) };
    }
}
