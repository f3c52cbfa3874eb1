// SPDX-License-Identifier: GPL-2.0

//! Copies between user space and memory that user space may map.
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
//!
//! The other direction, [`read_raw`], copies from a kernel crate
//! [`UserSliceReader`] to a raw destination. The reader's user pointer is
//! private to the kernel crate and its only raw read takes the destination
//! as a `&mut [MaybeUninit<u8>]`, which must not be formed over such memory
//! either (two concurrent writes would make two live `&mut` to the same
//! bytes); so the bytes go through a small bounce buffer on the stack, the
//! only memory a Rust reference is formed over, and from there to the
//! destination with C `memcpy()`.

use super::bindings;
use core::mem::MaybeUninit;
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSliceReader},
};

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
    #[inline]
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
    #[inline]
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

/// Reads `len` bytes from `r` straight into `dst`: one copy, no bounce
/// buffer; `EFAULT` if `r` has fewer or the user memory is bad (then `dst`
/// holds some of them).
///
/// For memory no one else can reach yet (a page just allocated, a buffer
/// none of whose pages was handed out): the one place in this layer that
/// forms a slice over memory meant for user mappings, so the static check
/// `no-slices-over-user-memory` lets this line alone through (its
/// `EXCLUSIVE-DST` mark).
///
/// # Safety
///
/// `dst` must be valid for writes of `len` bytes, and nothing else may
/// access them during the call: no Rust reference, no C copy, no user
/// mapping, no device.
#[inline]
pub(in crate::kernel_ext) unsafe fn read_exclusive(
    r: &mut UserSliceReader,
    dst: *mut u8,
    len: usize,
) -> Result {
    // SAFETY: `dst` is valid for writes of `len` bytes and, per the safety requirements,
    // this slice is the only access to them for its lifetime, the call. `MaybeUninit<u8>`
    // has no invalid values.
    let dst = unsafe { core::slice::from_raw_parts_mut(dst.cast::<MaybeUninit<u8>>(), len) }; // EXCLUSIVE-DST
    r.read_raw(dst)
}

/// Bytes [`read_raw`] copies at a time: its stack bounce buffer.
const BOUNCE_LEN: usize = 512;

/// Reads `len` bytes from `r` to `dst`; `EFAULT` if `r` has fewer or the
/// user memory is bad.
///
/// `dst` may be memory user space maps and writes concurrently, or that
/// another copy writes: it is only written by C `memcpy()` through the raw
/// pointer, never through a Rust reference (concurrent writers leave some
/// mix of their bytes). The checked `copy_from_user()` writes into a bounce
/// buffer on the stack, private to this call. On an error the chunks read
/// before the bad one are in `dst` and the rest of `dst` is unchanged (a
/// failed `copy_from_user()` straight into `dst` would also have changed
/// some of it).
///
/// # Safety
///
/// `dst` must be valid for writes of `len` bytes for the duration of the call.
#[inline]
pub(in crate::kernel_ext) unsafe fn read_raw(
    r: &mut UserSliceReader,
    dst: *mut u8,
    len: usize,
) -> Result {
    if len > r.len() {
        return Err(EFAULT);
    }
    let mut bounce = [MaybeUninit::<u8>::uninit(); BOUNCE_LEN];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(BOUNCE_LEN);
        let chunk = &mut bounce[..n];
        r.read_raw(chunk)?;
        // SAFETY: `done + n <= len`, so `dst + done..dst + done + n` is valid for writes per
        // the safety requirements. `read_raw` succeeded, so `chunk`'s `n` bytes are
        // initialised; it is a local array and cannot overlap `dst`.
        unsafe { bindings::memcpy(dst.add(done).cast(), chunk.as_ptr().cast(), n) };
        done += n;
    }
    Ok(())
}
