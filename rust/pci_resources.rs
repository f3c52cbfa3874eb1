// SPDX-License-Identifier: GPL-2.0

//! PCI resources the kernel crate's `pci` module does not wrap on their own:
//! enabling memory decoding, and requesting a BAR region to map it in a way
//! `pci::Bar` does not offer (write-combined: `super::iomem_wc`, which
//! builds on this module; this module knows nothing of mappings).

use super::bindings;
use kernel::{device, error::to_result, pci, prelude::*, str::CStr};

/// Returns the C `struct pci_dev` behind `pdev`.
fn as_raw<Ctx: device::DeviceContext>(pdev: &pci::Device<Ctx>) -> *mut bindings::pci_dev {
    // CAST: `pci::Device` is `#[repr(transparent)]` over `Opaque<bindings::pci_dev>` (plus a
    // zero-sized marker), which is `#[repr(transparent)]` over the C struct.
    core::ptr::from_ref(pdev).cast_mut().cast()
}

/// Whether BAR `bar` of `pdev` is a memory BAR (not I/O ports, not absent).
pub fn is_memory_bar<Ctx: device::DeviceContext>(pdev: &pci::Device<Ctx>, bar: u32) -> bool {
    if bar >= bindings::PCI_STD_NUM_BARS {
        return false;
    }
    let Ok(bar) = i32::try_from(bar) else {
        return false;
    };
    // SAFETY: `pdev` is a valid PCI device and `bar` a valid BAR number; this only reads the
    // resource's flags.
    unsafe { bindings::kx_pci_resource_is_mem(as_raw(pdev), bar) }
}

/// Memory decoding of a bound PCI device, enabled for as long as this lives
/// (`pci_enable_device_mem()` / `pci_disable_device()`).
///
/// # Invariants
///
/// `pdev` was enabled by [`EnabledMem::new`] and is disabled exactly once, on drop.
pub struct EnabledMem<'a> {
    pdev: &'a pci::Device<device::Bound>,
}

impl<'a> EnabledMem<'a> {
    /// Enables the memory BARs of `pdev`.
    pub fn new(pdev: &'a pci::Device<device::Bound>) -> Result<Self> {
        // SAFETY: `pdev` is a valid, bound PCI device.
        to_result(unsafe { bindings::pci_enable_device_mem(as_raw(pdev)) })?;
        // INVARIANT: enabled just above.
        Ok(Self { pdev })
    }
}

impl Drop for EnabledMem<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, this balances the enable of `new`; the device is
        // still bound for `'a`.
        unsafe { bindings::pci_disable_device(as_raw(self.pdev)) };
    }
}

/// Ownership of one BAR's resource region (`pci_request_region()`), released
/// on drop.
///
/// # Invariants
///
/// `bar` of `pdev` was requested by [`RegionRequest::new`] and is released exactly once, on
/// drop.
pub struct RegionRequest<'a> {
    pdev: &'a pci::Device<device::Bound>,
    bar: i32,
}

impl<'a> RegionRequest<'a> {
    /// Requests BAR `bar` of `pdev` for the driver `name`; `EBUSY` if someone
    /// else owns it.
    pub fn new(
        pdev: &'a pci::Device<device::Bound>,
        bar: u32,
        name: &'static CStr,
    ) -> Result<Self> {
        if bar >= bindings::PCI_STD_NUM_BARS {
            return Err(EINVAL);
        }
        let bar = i32::try_from(bar)?;
        // SAFETY: `pdev` is a valid, bound PCI device, `bar` a valid BAR number and `name`
        // lives forever (the resource keeps pointing at it).
        let ret = unsafe { bindings::pci_request_region(as_raw(pdev), bar, name.as_char_ptr()) };
        if ret != 0 {
            return Err(EBUSY);
        }
        // INVARIANT: requested just above.
        Ok(Self { pdev, bar })
    }

    /// The bound device whose BAR this is.
    pub fn device(&self) -> &'a pci::Device<device::Bound> {
        self.pdev
    }

    /// The requested BAR's number.
    pub fn bar(&self) -> u32 {
        // CAST: `new` checked `bar < PCI_STD_NUM_BARS`, so it is not negative.
        self.bar as u32
    }
}

impl Drop for RegionRequest<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, this releases the region `new` requested; the device
        // is still bound for `'a`.
        unsafe { bindings::pci_release_region(as_raw(self.pdev), self.bar) };
    }
}
