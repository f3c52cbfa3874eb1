// SPDX-License-Identifier: GPL-2.0

//! Zeroed `vmalloc` memory that can be shared with user space, page by
//! page.

use super::{
    bindings,
    page_ref::PageRef,
    uaccess::{self, UserWriter},
};
use core::ptr::NonNull;
use kernel::{page::PAGE_SIZE, prelude::*, uaccess::UserSliceReader};

/// A buffer of zeroed `vmalloc` memory, charged to the allocating task's
/// memory cgroup (`GFP_KERNEL_ACCOUNT`), whose pages a fault handler may map
/// into user space ([`UserBuffer::page`]): they hold nothing but what was
/// written into the buffer.
///
/// Its bytes are shared with every VMA it is mapped into and user space may
/// change them at any time, so it never hands out Rust references to them,
/// nor forms any itself: every access is a bounds-checked copy done by C
/// through a raw pointer (`memset()`, `memcpy()`, the checked
/// `copy_to_user()`, and `memcpy()` from the bounce buffer of
/// [`uaccess::read_raw`]), like the kernel's accesses to any memory shared
/// with user space.
///
/// That is why [`fill`](Self::fill), [`read`](Self::read),
/// [`write`](Self::write) and the user copies are safe on a `Sync` type:
/// concurrent accesses (user space, another thread's copy) are C copies
/// whose bytes mix in an unspecified order, never a Rust data race or an
/// aliasing reference, and the kernel slice a copy uses cannot be the
/// buffer's own bytes, since nothing makes a reference to them.
/// Serialising accesses, where the result matters, is the owner's business.
///
/// # Invariants
///
/// `ptr` is the start of a live, zero-initialised `vmalloc` allocation of
/// `len` bytes, `len` is a non-zero multiple of `PAGE_SIZE`.
pub struct UserBuffer {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: The buffer is plain memory owned by this object; all accesses are raw copies
// whose synchronisation is the owner's business, so it may be sent and shared.
unsafe impl Send for UserBuffer {}
// SAFETY: See `Send`; `&UserBuffer` only exposes raw copies.
unsafe impl Sync for UserBuffer {}

impl UserBuffer {
    /// Allocates `len` zeroed bytes, rounded up to whole pages, charged to
    /// the current task's memory cgroup.
    #[inline]
    pub fn new(len: usize) -> Result<Self> {
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .filter(|&l| l != 0)
            .ok_or(EINVAL)?;
        // SAFETY: FFI call without preconditions.
        let ptr = unsafe { bindings::kx_vmalloc_zeroed_account(len) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: `ptr` is a fresh, zeroed `vmalloc` allocation of `len` bytes, a page
        // multiple.
        Ok(Self { ptr, len })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: buffers are at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Returns a pointer to `len` bytes at `offset`, or `EINVAL` if that range
    /// does not lie within the buffer.
    #[inline]
    fn range(&self, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {
                // SAFETY: `offset <= self.len`, so the result stays within the allocation
                // (or one past its end).
                Ok(unsafe { self.ptr.as_ptr().add(offset) })
            }
            _ => Err(EINVAL),
        }
    }

    /// Sets `len` bytes at `offset` to `value`.
    #[inline]
    pub fn fill(&self, offset: usize, len: usize, value: u8) -> Result {
        let dst = self.range(offset, len)?;
        // SAFETY: `range` checked that `dst..dst + len` lies within the allocation.
        unsafe { bindings::memset(dst.cast(), c_int::from(value), len) };
        Ok(())
    }

    /// Copies `len` bytes at `offset` to user space through `out`.
    #[inline]
    pub fn copy_to_user(&self, offset: usize, len: usize, out: &mut UserWriter) -> Result {
        let src = self.range(offset, len)?;
        // SAFETY: `range` checked that `src..src + len` lies within the allocation, which
        // lives for the call; the bytes are only read by C (see `UserWriter::write_raw`).
        unsafe { out.write_raw(src, len) }
    }

    /// Copies `len` bytes from user space (`data`) into the buffer at `offset`.
    #[inline]
    pub fn copy_from_user(&self, offset: usize, len: usize, data: &mut UserSliceReader) -> Result {
        let dst = self.range(offset, len)?;
        // SAFETY: `range` checked that `dst..dst + len` lies within the allocation, which
        // lives for the call; `read_raw` writes it only with C `memcpy()` through the raw
        // pointer, so user space writing the same bytes through a mapping meanwhile is a race
        // of C accesses with an unspecified result, not a Rust data race.
        unsafe { uaccess::read_raw(data, dst, len) }
    }

    /// Copies `out.len()` bytes at `offset` into `out`.
    #[inline]
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let src = self.range(offset, out.len())?;
        // SAFETY: `src` is valid for `out.len()` bytes. `out` is a Rust reference, so it is not
        // the buffer's bytes (no reference to those exists) and cannot overlap them.
        unsafe { bindings::memcpy(out.as_mut_ptr().cast(), src.cast(), out.len()) };
        Ok(())
    }

    /// Copies `data` into the buffer at `offset`.
    #[inline]
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        let dst = self.range(offset, data.len())?;
        // SAFETY: `dst` is valid for `data.len()` bytes. `data` is a Rust reference, so it is
        // not the buffer's bytes (no reference to those exists) and cannot overlap them.
        unsafe { bindings::memcpy(dst.cast(), data.as_ptr().cast(), data.len()) };
        Ok(())
    }

    /// A reference to page `index` of the buffer; `EINVAL` past its end.
    #[inline]
    pub fn page(&self, index: usize) -> Result<PageRef> {
        let addr = self.range(index.checked_mul(PAGE_SIZE).ok_or(EINVAL)?, PAGE_SIZE)?;
        // SAFETY: `addr` is the start of a page of this live `vmalloc` allocation.
        let page = unsafe { bindings::kx_vmalloc_page_get(addr.cast()) };
        let page = NonNull::new(page).ok_or(EINVAL)?;
        // SAFETY: `vmalloc` memory not asked for huge mappings is made of order-0 pages; the
        // helper took the reference that the `PageRef` now owns.
        Ok(unsafe { PageRef::from_raw(page) })
    }
}

/// A [`UserBuffer`] no one else can see yet: none of its pages was handed
/// out and it is in no shared object, so `&mut self` is the only access to
/// its bytes and user copies go straight into it (one copy, no bounce
/// buffer). [`UnsharedBuffer::share`] makes it an ordinary, shareable
/// [`UserBuffer`], for good.
///
/// # Invariants
///
/// No page of the inner buffer was ever handed out ([`UserBuffer::page`] is
/// not reachable through this type) and no reference to its bytes outlives
/// a method call.
pub struct UnsharedBuffer(UserBuffer);

impl UnsharedBuffer {
    /// Allocates `len` zeroed bytes, as [`UserBuffer::new`].
    #[inline]
    pub fn new(len: usize) -> Result<Self> {
        // INVARIANT: A fresh buffer: nothing of it was handed out.
        Ok(Self(UserBuffer::new(len)?))
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: buffers are at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Copies `len` bytes from user space (`data`) into the buffer at
    /// `offset`; `EINVAL` if they are not within the buffer, `EFAULT` if
    /// `data` has fewer or the user memory is bad.
    #[inline]
    pub fn copy_from_user(
        &mut self,
        offset: usize,
        len: usize,
        data: &mut UserSliceReader,
    ) -> Result {
        let dst = self.0.range(offset, len)?;
        // SAFETY: `range` checked that `dst..dst + len` lies within the live allocation. By
        // the type invariant no page of it is mapped anywhere and nothing else refers to its
        // bytes, and `&mut self` excludes every other access through this object during the
        // call: nothing else accesses them meanwhile.
        unsafe { uaccess::read_exclusive(data, dst, len) }
    }

    /// Copies `data` into the buffer at `offset`.
    #[inline]
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.0.write(offset, data)
    }

    /// The buffer, shareable from now on (its pages may be handed out).
    pub fn share(self) -> UserBuffer {
        self.0
    }
}

impl Drop for UserBuffer {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant `ptr` is a live `vmalloc` allocation we own. Pages
        // still mapped into user VMAs hold their own references and outlive this.
        unsafe { bindings::vfree(self.ptr.as_ptr().cast()) };
    }
}
