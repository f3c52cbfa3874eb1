// SPDX-License-Identifier: GPL-2.0

//! `fbdev`: the only framebuffer a driver can register is device-managed
//! (issue 24, item 4: the registration revoked the device only in `Drop`,
//! and `mem::forget` is safe, so a forgotten one left fbcon and user
//! mappings on a BAR the driver no longer owned). `fbdev::Registration`
//! keeps the framebuffer in a `DevresLt` of the BAR's device, which
//! `rust/fbdev.rs` asserts at compile time
//! (`_assert_registration_device_managed`); the framebuffer without it is
//! private to the layer.

use crate::kernel_ext::{
    fbdev::{self, Xrgb8888Mode},
    iomem_wc::IoMemWc,
    pci_resources::RegionRequest,
};
use kernel::{device::Bound, pci, prelude::*, ThisModule};

/// A driver with the default palette handling.
pub struct Plain;

#[vtable]
impl fbdev::Driver for Plain {}

/// What mdpy-fb does: request BAR0, map it, register a framebuffer in it.
/// Forgetting the registration is safe: unbinding the device revokes it.
pub fn register(
    pdev: &pci::Device<Bound>,
    module: &ThisModule,
    mode: Xrgb8888Mode,
) -> Result<fbdev::Registration<Plain>> {
    let memory = IoMemWc::new(RegionRequest::new(pdev, 0, c"misuse")?)?;
    let fb = fbdev::Registration::new(module, c"misuse", mode, memory, Plain)?;
    pr_info!("fb{}\n", fb.node());
    Ok(fb)
}

/// Holds the framebuffer without the device-managed wrapper, whose
/// revocation only `Drop` would do (and `mem::forget` skip).
#[cfg(kx_misuse_fbdev_unmanaged)]
pub fn unmanaged() {
    let fb: Option<fbdev::Framebuffer<'static, Plain>> = None; //~ ERROR E0603
    core::mem::forget(fb);
}
