// SPDX-License-Identifier: GPL-2.0

//! Copies to user space from memory that user space may map.
//!
//! C header: [`include/linux/uaccess.h`](srctree/include/linux/uaccess.h)
//!
//! The kernel crate's [`UserSliceWriter`](kernel::uaccess::UserSliceWriter)
//! writes from `&[u8]`, and its raw form (`write_raw`) is private. A device
//! whose memory is also mapped into user space (a framebuffer, VRAM pages)
//! must not form a `&[u8]` over it: user space may write those bytes at any
//! time, and a shared reference promises they do not change (the same reason
//! `UserSliceWriter::write_dma` exists for DMA memory). [`UserWriter`] is
//! that writer with a raw source for the abstractions of this layer: it is
//! consumed as it is written (like `UserSliceWriter`, it cannot be copied
//! and re-read), and every copy is the checked `copy_to_user()` (hardened
//! usercopy's object-size checks included), never the unchecked variant.

use super::bindings;
use kernel::{prelude::*, uaccess::UserPtr};

/// The rest of a user buffer of a `read()`, written front to back.
///
/// # Invariants
///
/// `ptr..ptr + len` is what is left of the user range this writer was made
/// for; nothing before `ptr` is written again.
pub struct UserWriter {
    ptr: UserPtr,
    len: usize,
}

impl UserWriter {
    /// A writer for the `len` bytes of user memory at `ptr`.
    ///
    /// Only the `read()` trampolines of this layer make writers, for the
    /// buffer the VFS handed them.
    pub(in crate::kernel_ext) fn new(ptr: UserPtr, len: usize) -> Self {
        // INVARIANT: Nothing is written yet.
        Self { ptr, len }
    }

    /// Bytes left to write.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is full.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `data`; `EFAULT` if it does not fit or the user memory is bad.
    pub fn write_slice(&mut self, data: &[u8]) -> Result {
        // SAFETY: `data` is valid for reads of `data.len()` bytes.
        unsafe { self.write_raw(data.as_ptr(), data.len()) }
    }

    /// Writes `len` bytes from `src`; `EFAULT` if they do not fit or the user
    /// memory is bad. The bytes are only read by `copy_to_user()` (C), never
    /// through a Rust reference, so `src` may be memory user space writes
    /// concurrently (the result then has some mix of old and new bytes).
    ///
    /// # Safety
    ///
    /// `src` must be valid for reads of `len` bytes for the duration of the call.
    pub(in crate::kernel_ext) unsafe fn write_raw(&mut self, src: *const u8, len: usize) -> Result {
        if len > self.len {
            return Err(EFAULT);
        }
        // CAST: `len` fits `c_ulong`, which is `usize` on every kernel target.
        // SAFETY: `src` is valid for `len` bytes per the safety requirements; `copy_to_user`
        // checks the user range and the kernel object, and tolerates faults.
        let left =
            unsafe { bindings::copy_to_user(self.ptr.as_mut_ptr(), src.cast(), len as c_ulong) };
        if left != 0 {
            return Err(EFAULT);
        }
        // INVARIANT: The written bytes are left behind.
        self.ptr = self.ptr.wrapping_byte_add(len);
        self.len -= len;
        Ok(())
    }
}
