// SPDX-License-Identifier: GPL-2.0

//! `vmalloc::UnsharedBuffer`: user copies go straight into its bytes, which
//! is sound only while nobody else can reach them, so it hands out no page
//! and takes writes only through `&mut`; `share` ends that for good.

use crate::kernel_ext::vmalloc::{UnsharedBuffer, UserBuffer};
use kernel::{prelude::*, uaccess::UserSliceReader};

/// Fills a buffer of its own from user space, then shares it.
pub fn fill_then_share(data: &mut UserSliceReader) -> Result<UserBuffer> {
    let mut buf = UnsharedBuffer::new(4096)?;
    buf.copy_from_user(0, 16, data)?;
    buf.write(16, &[1, 2, 3, 4])?;
    let shared = buf.share();
    let _page = shared.page(0)?;
    Ok(shared)
}

/// A page of an unshared buffer, which a mapping could then write while a
/// copy goes straight in.
#[cfg(kx_misuse_unshared_buffer_page)]
pub fn page_of(buf: &UnsharedBuffer) -> Result {
    let _page = buf.page(0)?; //~ ERROR E0599
    Ok(())
}

/// A copy through a shared reference: two of them could write the same
/// bytes at once.
#[cfg(kx_misuse_unshared_buffer_shared_copy)]
pub fn copy_shared(buf: &UnsharedBuffer, data: &mut UserSliceReader) -> Result {
    buf.copy_from_user(0, 16, data) //~ ERROR E0596
}
