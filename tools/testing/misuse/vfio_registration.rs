// SPDX-License-Identifier: GPL-2.0

//! `vfio::Device` and `vfio::Registration`: only the mdev probe path creates
//! and registers VFIO devices, and a device's parent is the layer's to
//! reference (issue 24, item 3: `vfio::Device` now owns a reference on it,
//! which `rust/vfio.rs` asserts at compile time).

use crate::{kernel_ext::vfio, mdev_registration::Nothing};
use kernel::device::Device;

/// The device of a registration and its parent, as a driver sees them.
pub fn parent(reg: &vfio::Registration<Nothing>) -> &Device {
    reg.device().parent()
}

/// Creates and registers a VFIO device for any device.
#[cfg(kx_misuse_vfio_registration_new)]
pub fn register(dev: &Device) -> kernel::error::Result<vfio::Registration<Nothing>> {
    vfio::Registration::new(dev, Ok::<_, kernel::error::Error>(Nothing)) //~ ERROR E0624
}
