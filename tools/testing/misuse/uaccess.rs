// SPDX-License-Identifier: GPL-2.0

//! `uaccess`: the raw user copies, which read or write memory user space
//! maps through raw pointers, are only for this layer's abstractions, which
//! own that memory; a driver copies through their bounds-checked APIs.

use crate::kernel_ext::{page_ref::PageRef, uaccess::UserWriter};
use kernel::{prelude::*, uaccess::UserSliceReader};

/// Copies between user space and a page through the safe API.
pub fn copy(page: &PageRef, out: &mut UserWriter, data: &mut UserSliceReader) -> Result {
    out.write_slice(&[0; 4])?;
    page.copy_to_user(0, 4, out)?;
    page.copy_from_user(0, 4, data)
}

/// Copies from any kernel address to user space.
#[cfg(kx_misuse_uaccess_write_raw)]
pub fn write_any(out: &mut UserWriter, src: *const u8) -> Result {
    // SAFETY: None: the method is private to the layer.
    unsafe { out.write_raw(src, 4096) } //~ ERROR E0624
}

/// Copies from user space to any kernel address.
#[cfg(kx_misuse_uaccess_read_raw)]
pub fn read_any(data: &mut UserSliceReader, dst: *mut u8) -> Result {
    // SAFETY: None: the function is private to the layer.
    unsafe { crate::kernel_ext::uaccess::read_raw(data, dst, 4096) } //~ ERROR E0603
}

/// Makes a writer for any user range.
#[cfg(kx_misuse_uaccess_writer_new)]
pub fn writer(ptr: kernel::uaccess::UserPtr) -> UserWriter {
    UserWriter::new(ptr, 4096) //~ ERROR E0624
}
