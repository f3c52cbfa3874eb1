// SPDX-License-Identifier: GPL-2.0

//! Reference-counted pages.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)
//!
//! The kernel crate's [`kernel::page::Page`] owns its page outright, so one
//! page cannot be shared between, say, a device's memory, a dma-buf and user
//! mappings. A [`PageRef`] is one reference on a page's refcount
//! (`get_page()`/`put_page()`): cloning takes another, dropping puts it, and
//! the page is freed when the last reference anywhere (ours or the page
//! tables') goes.
//!
//! The pages are meant to be mapped into user space, which may write them at
//! any time, so a `PageRef` never hands out Rust references to their bytes,
//! nor forms any itself: every access is a bounds-checked copy done by C
//! (`memcpy()`, `copy_to_user()`, or `memcpy()` from the bounce buffer of
//! [`uaccess::read_raw`]) through a raw pointer, like the kernel's accesses
//! to any memory shared with user space.
//!
//! That is why [`PageRef::read`], [`PageRef::write`] and the user copies are
//! safe although `PageRef` is `Sync` and user space or another thread may
//! access the same bytes at the same time: no Rust code ever reads or writes
//! the page's bytes or holds a reference to them, so there is no Rust data
//! race and no aliasing reference, only C copies whose bytes mix in an
//! unspecified way (every value is a valid `u8`). The kernel slice a copy
//! reads from or writes to cannot be the page itself: only this layer could
//! make a reference to the page's bytes, and it does so only for a page no
//! one else can know yet ([`PageRef::alloc_from_user`] fills the page it has
//! just allocated, before it returns the page's only reference).

use super::{
    bindings,
    uaccess::{self, UserWriter},
};
use core::ptr::NonNull;
use kernel::{page::PAGE_SIZE, prelude::*, uaccess::UserSliceReader};

/// One reference on an order-0 page.
///
/// # Invariants
///
/// `page` points to a live order-0, non-compound page, and this object owns
/// one reference on its refcount.
#[repr(transparent)]
pub struct PageRef {
    page: NonNull<bindings::page>,
}

// SAFETY: A page reference may be dropped (`put_page()`) from any thread, and the page's
// bytes are only accessed through raw copies whose synchronisation is the owner's business.
unsafe impl Send for PageRef {}
// SAFETY: `&PageRef` only allows raw copies and taking another reference, both thread safe.
unsafe impl Sync for PageRef {}

impl PageRef {
    /// Allocates a zeroed page for memory that user space maps
    /// (`GFP_HIGHUSER | __GFP_ZERO`), charged to the current task's memory
    /// cgroup.
    #[inline]
    pub fn alloc_zeroed() -> Result<Self> {
        // SAFETY: FFI call without preconditions; it may sleep, which callers of this
        // function may.
        let page = unsafe { bindings::kx_alloc_zeroed_user_page() };
        // INVARIANT: A fresh order-0 page; its initial reference is ours.
        Ok(Self {
            page: NonNull::new(page).ok_or(ENOMEM)?,
        })
    }

    /// Allocates a page for memory that user space maps and fills it with
    /// the next `PAGE_SIZE` bytes of `r`, with one copy and no zeroing;
    /// `EFAULT` if `r` has fewer or the user memory is bad. Charged like
    /// [`PageRef::alloc_zeroed`].
    ///
    /// The page is nobody else's until this returns it, so the copy may go
    /// straight into it; on an error it is freed unseen, so none of what it
    /// held before reaches anyone.
    pub fn alloc_from_user(r: &mut UserSliceReader) -> Result<Self> {
        if r.len() < PAGE_SIZE {
            return Err(EFAULT);
        }
        // SAFETY: FFI call without preconditions; it may sleep, which callers of this
        // function may.
        let page = unsafe { bindings::kx_alloc_user_page() };
        // INVARIANT: A fresh order-0 page; its initial reference is ours.
        let page = Self {
            page: NonNull::new(page).ok_or(ENOMEM)?,
        };
        page.with_mapped(0, PAGE_SIZE, |dst| {
            // SAFETY: `dst` is the start of the page, mapped for the call, valid for
            // `PAGE_SIZE` bytes. The page was allocated above and its only reference is the
            // local `page`: it is in no page table, no other object and no other thread knows
            // it, so nothing else accesses its bytes during the copy.
            unsafe { uaccess::read_exclusive(r, dst, PAGE_SIZE) }
        })??;
        Ok(page)
    }

    /// Takes over a reference on `page`.
    ///
    /// # Safety
    ///
    /// `page` must be a live order-0, non-compound page on which the caller
    /// owns a reference, which it gives up to the new object.
    pub(in crate::kernel_ext) unsafe fn from_raw(page: NonNull<bindings::page>) -> Self {
        // INVARIANT: Per the safety requirements.
        Self { page }
    }

    /// Locks the page (`lock_page()`, which may sleep) until the guard is
    /// dropped.
    #[inline]
    pub fn lock(&self) -> PageLock<'_> {
        // SAFETY: By the type invariant the page is live; we hold a reference for as long as
        // the guard borrows `self`.
        unsafe { bindings::kx_lock_page(self.as_ptr()) };
        // INVARIANT: Locked just now.
        PageLock { page: self }
    }

    /// The C `struct page`.
    pub fn as_ptr(&self) -> *mut bindings::page {
        self.page.as_ptr()
    }

    /// The pages of `refs` as the C array of `struct page *` that functions
    /// such as `sg_alloc_table_from_pages()` take. The pointer is valid while
    /// `refs` is borrowed.
    pub fn as_raw_array(refs: &[PageRef]) -> *const *mut bindings::page {
        // CAST: `PageRef` is `#[repr(transparent)]` over a non-null `*mut page`.
        refs.as_ptr().cast()
    }

    /// Runs `f` with the page mapped into the kernel at `offset`, after
    /// checking that `offset..offset + len` lies within the page.
    fn with_mapped<T>(&self, offset: usize, len: usize, f: impl FnOnce(*mut u8) -> T) -> Result<T> {
        match offset.checked_add(len) {
            Some(end) if end <= PAGE_SIZE => {}
            _ => return Err(EINVAL),
        }
        // SAFETY: By the type invariant the page is live; a local mapping may be used by
        // this task for the duration of the call.
        let base = unsafe { bindings::kmap_local_page(self.as_ptr()) }.cast::<u8>();
        // SAFETY: `offset <= PAGE_SIZE`, so the pointer stays within the mapping or one past it.
        let res = f(unsafe { base.add(offset) });
        // SAFETY: `base` is the most recent local mapping of this task: `f` cannot leave
        // another one behind (local mappings are only created in scoped helpers like this).
        unsafe { bindings::kunmap_local(base.cast()) };
        Ok(res)
    }

    /// Copies `len` bytes at `offset` of the page to user space; `EINVAL`
    /// if they are not within the page, `EFAULT` if they do not fit `w` or
    /// the user memory is bad.
    #[inline]
    pub fn copy_to_user(&self, offset: usize, len: usize, w: &mut UserWriter) -> Result {
        self.with_mapped(offset, len, |src| {
            // SAFETY: `src..src + len` lies within the page, mapped for the call. The bytes
            // are only read by `copy_to_user()` (C), so user space may write them meanwhile.
            unsafe { w.write_raw(src, len) }
        })?
    }

    /// Copies `len` bytes from user space into the page at `offset`;
    /// `EINVAL` if they are not within the page, `EFAULT` if `r` has fewer
    /// or the user memory is bad.
    #[inline]
    pub fn copy_from_user(&self, offset: usize, len: usize, r: &mut UserSliceReader) -> Result {
        self.with_mapped(offset, len, |dst| {
            // SAFETY: `dst..dst + len` lies within the page, mapped for the call. `read_raw`
            // writes it only with C `memcpy()` through the raw pointer, so user space (which
            // may map the page) or another copy writing it meanwhile only mixes the bytes.
            unsafe { uaccess::read_raw(r, dst, len) }
        })?
    }

    /// Copies `out.len()` bytes at `offset` in the page into `out`; `EINVAL`
    /// if they are not within the page.
    ///
    /// Safe although others may write the page meanwhile: C `memcpy()` reads
    /// it through a raw pointer (see the module documentation), so `out`
    /// gets some mix of old and new bytes, never undefined behaviour.
    #[inline]
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        self.with_mapped(offset, out.len(), |src| {
            // SAFETY: `src` is valid for `out.len()` bytes of the page, mapped for the call.
            // `out` is a Rust reference, so it is not the page's bytes (no reference to those
            // exists) and cannot overlap them.
            unsafe { bindings::memcpy(out.as_mut_ptr().cast(), src.cast(), out.len()) };
        })
    }

    /// Copies `data` into the page at `offset`; `EINVAL` if it does not fit
    /// within the page.
    ///
    /// Safe although others may access the page meanwhile: C `memcpy()`
    /// writes it through a raw pointer (see the module documentation).
    #[inline]
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        self.with_mapped(offset, data.len(), |dst| {
            // SAFETY: `dst` is valid for `data.len()` bytes of the page, mapped for the call.
            // `data` is a Rust reference, so it is not the page's bytes (no reference to those
            // exists) and cannot overlap them.
            unsafe { bindings::memcpy(dst.cast(), data.as_ptr().cast(), data.len()) };
        })
    }
}

impl Clone for PageRef {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: By the type invariant the page is live and we hold a reference.
        unsafe { bindings::kx_get_page(self.as_ptr()) };
        // INVARIANT: The reference just taken is the new object's.
        Self { page: self.page }
    }
}

impl Drop for PageRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one reference, which is given up here.
        unsafe { bindings::kx_put_page(self.as_ptr()) };
    }
}

/// The lock of a page, held: see [`PageRef::lock`].
///
/// # Invariants
///
/// This object holds the lock of `page`.
pub struct PageLock<'a> {
    page: &'a PageRef,
}

impl PageLock<'_> {
    /// The locked page.
    pub fn page(&self) -> &PageRef {
        self.page
    }
}

impl Drop for PageLock<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold the lock of this live page.
        unsafe { bindings::kx_unlock_page(self.page.as_ptr()) };
    }
}
