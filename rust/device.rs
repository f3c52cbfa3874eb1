// SPDX-License-Identifier: GPL-2.0

//! Glue between the kernel crate's [`Device`] and raw `struct device`s.

use super::bindings;
use kernel::device::Device;

/// Returns the C `struct device` behind `dev`.
///
/// The kernel crate keeps `Device::as_raw` crate-private; this is the same
/// conversion for code outside it.
pub fn as_raw(dev: &Device) -> *mut bindings::device {
    // CAST: `Device` is `#[repr(transparent)]` over `Opaque<bindings::device>`, which is
    // `#[repr(transparent)]` over the C struct, so both pointers have the same address.
    core::ptr::from_ref(dev).cast_mut().cast()
}
