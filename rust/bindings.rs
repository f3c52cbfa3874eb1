// SPDX-License-Identifier: GPL-2.0

//! Bindings for the C API this layer needs beyond the kernel crate's.
//!
//! Generated at build time by bindgen from `rust/bindings_helper.h` with the
//! kernel's C flags (see the top-level `Kbuild`). Only our items are
//! generated; the glob import supplies every other type they refer to, so
//! `device`, `file`, `vm_area_struct`, ... are the kernel crate's own.

#![allow(
    clippy::all,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    dead_code,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks
)]

pub use kernel::bindings::*;
use kernel::ffi;

include!("generated/bindings.rs");
