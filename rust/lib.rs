// SPDX-License-Identifier: GPL-2.0

//! Rust abstractions for VFIO mediated devices, shaped like `rust/kernel/`.
//!
//! The kernel crate of 7.3 has no VFIO or mdev support, so this layer adds it
//! out of tree. Every driver module includes it as its `kernel_ext` module:
//!
//! ```ignore
//! #[path = "../rust/lib.rs"]
//! pub mod kernel_ext;
//! ```
//!
//! The module is `pub` so that abstractions one driver does not use are not
//! dead code. All `unsafe` lives here; drivers use none.
//!
//! Each driver enables the parts it uses with `--cfg` flags set in the
//! top-level `Kbuild` (`kx_mdev`, ...), so a module never links against
//! subsystems it does not use (the guest driver builds for a kernel without
//! VFIO).
//!
//! Every `unsafe` block here has a `// SAFETY:` comment and every `unsafe fn`
//! a `# Safety` section: clippy fails the build otherwise (`make clippy`).

#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod bindings;
pub mod device;
#[cfg(kx_dma_buf)]
pub mod dma_buf;
#[cfg(kx_mdev)]
pub mod emulated_pci;
#[cfg(kx_fbdev)]
pub mod fbdev;
#[cfg(kx_fbdev)]
pub mod iomem_wc;
#[cfg(kx_mdev)]
pub mod mdev;
#[cfg(kx_mdev)]
pub mod migration;
pub mod module_param_sysfs;
#[cfg(any(kx_mdev, kx_dma_buf))]
pub mod page_ref;
#[cfg(kx_mdev)]
pub mod pci_config;
#[cfg(kx_fbdev)]
pub mod pci_resources;
pub mod sysfs;
#[cfg(kx_mdev)]
pub mod uaccess;
#[cfg(kx_mdev)]
pub mod vfio;
#[cfg(kx_mdev)]
pub mod vfio_ops;
#[cfg(any(kx_mdev, kx_dma_buf))]
pub mod vm_fault;
#[cfg(any(kx_mdev, kx_fbdev))]
pub mod vma;
#[cfg(kx_mdev)]
pub mod vmalloc;
#[cfg(kx_mdev)]
pub mod workqueue;
#[cfg(kx_mdev)]
pub mod write_tracking;
