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

pub mod bindings;
pub mod device;
pub mod mdev;
pub mod pci_config;
pub mod sysfs;
pub mod vfio;
pub mod vma;
pub mod vmalloc;
