// SPDX-License-Identifier: GPL-2.0

//! The mdpy device, as host (mdpy) and guest (mdpy-fb) both see it: the Rust
//! twin of `samples/vfio-mdev/mdpy-defs.h`, with the same names.
//!
//! A simple PCI display: the framebuffer is BAR0; the mode is read-only in a
//! vendor capability in config space, the format a DRM fourcc (only
//! `DRM_FORMAT_XRGB8888` so far).
//!
//! Both drivers include this very file (`#[path = "../mdpy/defs.rs"]` in
//! mdpy-fb), so they cannot disagree.

use kernel::pci;

/// PCI vendor: Red Hat (`PCI_VENDOR_ID_REDHAT`, 0x1b36).
pub const MDPY_PCI_VENDOR_ID: pci::Vendor = pci::Vendor::REDHAT;
/// PCI device id.
pub const MDPY_PCI_DEVICE_ID: u16 = 0x000f;
/// PCI subsystem vendor (`PCI_SUBVENDOR_ID_REDHAT_QUMRANET`, 0x1af4).
pub const MDPY_PCI_SUBVENDOR_ID: u16 = pci::Vendor::REDHAT_QUMRANET.as_raw();
/// PCI subsystem device (`PCI_SUBDEVICE_ID_QEMU`).
pub const MDPY_PCI_SUBDEVICE_ID: u16 = 0x1100;

/// Config space offset of the vendor capability that holds the mode.
pub const MDPY_VENDORCAP_OFFSET: u8 = 0x40;
/// Size of the vendor capability in bytes.
pub const MDPY_VENDORCAP_SIZE: u8 = 0x10;
/// Config space offset of the format (a DRM fourcc, dword).
pub const MDPY_FORMAT_OFFSET: u8 = MDPY_VENDORCAP_OFFSET + 0x04;
/// Config space offset of the width in pixels (dword).
pub const MDPY_WIDTH_OFFSET: u8 = MDPY_VENDORCAP_OFFSET + 0x08;
/// Config space offset of the height in pixels (dword).
pub const MDPY_HEIGHT_OFFSET: u8 = MDPY_VENDORCAP_OFFSET + 0x0c;
