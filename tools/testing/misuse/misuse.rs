// SPDX-License-Identifier: GPL-2.0

//! Misuse checks of the `rust/` layer: code a driver must not be able to
//! compile.
//!
//! This crate includes the layer exactly as a driver does and is built by
//! Kbuild with a driver's flags (see `Kbuild` here). Each module below is
//! about one abstraction: a valid use of it, always compiled (the control
//! build checks that it compiles, so a case fails for the reason it names,
//! not because the scaffolding broke), and misuses, each under
//! `#[cfg(kx_misuse_<case>)]`, whose offending lines carry a
//! `//~ ERROR E....` mark. `check.sh` builds the crate once per case with
//! that cfg and requires exactly the marked errors, code and line.

#[path = "../../../rust/lib.rs"]
pub mod kernel_ext;

use kernel::prelude::*;

module! {
    type: Misuse,
    name: "misuse",
    authors: ["mdev-rs developers"],
    description: "Misuse checks of the rust/ layer (never loaded)",
    license: "GPL v2",
}

/// The module `#[vtable]` and `module!` need; it is only ever compiled.
pub struct Misuse;

impl kernel::Module for Misuse {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Err(ENODEV)
    }
}

pub mod dma_buf;
pub mod fbdev;
pub mod mdev_registration;
pub mod page_ref;
pub mod uaccess;
pub mod unshared_buffer;
pub mod vfio_ops;
pub mod vfio_registration;
pub mod vm_fault;
