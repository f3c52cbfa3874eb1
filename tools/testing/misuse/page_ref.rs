// SPDX-License-Identifier: GPL-2.0

//! `page_ref::PageRef`: a driver gets page references only from the layer
//! (`alloc_zeroed`, `UserBuffer::page`, `clone`), never for a page it names
//! itself, and the page's bytes only through copies.

use crate::kernel_ext::vmalloc::UserBuffer;
use kernel::prelude::*;

/// Copies through the safe API: bytes in and out, never references.
pub fn copy(buf: &UserBuffer) -> Result<[u8; 4]> {
    let page = buf.page(0)?;
    let mut out = [0; 4];
    page.write(0, &[1, 2, 3, 4])?;
    page.read(0, &mut out)?;
    buf.fill(0, 4, 0)?;
    Ok(out)
}

/// Takes over a "reference" on any page.
#[cfg(kx_misuse_page_ref_from_raw)]
pub fn any_page(
    page: core::ptr::NonNull<crate::kernel_ext::bindings::page>,
) -> crate::kernel_ext::page_ref::PageRef {
    // SAFETY: None: the function is private to the layer.
    unsafe { crate::kernel_ext::page_ref::PageRef::from_raw(page) } //~ ERROR E0624
}
