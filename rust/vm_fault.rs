// SPDX-License-Identifier: GPL-2.0

//! VMAs whose pages are supplied on demand by a page-fault handler.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)
//! (`struct vm_operations_struct`)
//!
//! An `mmap()` hook calls [`install`] with the [`NewMapping`] it was given
//! and an [`Arc`] of an object that implements [`VmOperations`]. The VMA
//! then keeps that object alive: each VMA (including the copies made by
//! `fork()` and the halves made by splitting it) holds one reference,
//! dropped when the VMA is unmapped. On a page fault,
//! [`VmOperations::fault`] returns the page to map (a [`PageRef`]); it is
//! inserted into the page table, which takes its own reference on the page,
//! so the page outlives the object if the mapping does.
//!
//! An object that implements [`VmOperations::page_mkwrite`] is told of every
//! write to a page that is mapped read-only, before the write happens: its
//! pages are always mapped read-only first (by the fault handler, and by the
//! mm core's write notification, which makes the VMA's protection
//! read-only), so the first write to a page after it was mapped, or after it
//! was write-protected again (`vfio::Device::write_protect`), calls the hook.
//! The hook runs with the page locked, and the page stays locked until its
//! page table entry is writable: whoever write-protects a page under its
//! lock therefore sees either the entry before the hook or the writable
//! entry after it, never a writable entry whose write was not notified.

use super::{bindings, page_ref::PageRef, vma::NewMapping};
use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};
use kernel::{
    error::VTABLE_DEFAULT_ERROR,
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// A page fault in a VMA set up by [`install`].
///
/// The mm core owns the C `struct vm_fault` and changes some of its fields
/// while the fault is handled (`pte`, `ptl`, `page`, `flags`, ... in
/// `vmf_insert_page_mkwrite()` and friends), so this holds a raw pointer,
/// never a Rust reference to it, and reads single fields through it.
///
/// # Invariants
///
/// `vmf` points to the live `vm_fault` of a fault being handled for `'a`,
/// by the thread that holds this object (it is neither `Send` nor `Sync`).
pub struct VmFault<'a> {
    vmf: NonNull<bindings::vm_fault>,
    _fault: PhantomData<&'a bindings::vm_fault>,
}

impl VmFault<'_> {
    /// The fault `vmf`.
    ///
    /// # Safety
    ///
    /// `vmf` must point to the live `vm_fault` of a fault this thread is
    /// handling, for as long as the returned object exists.
    unsafe fn from_raw(vmf: *mut bindings::vm_fault) -> Self {
        // INVARIANT: Per the safety requirements.
        Self {
            // SAFETY: Per the safety requirements `vmf` points to a live `vm_fault`.
            vmf: unsafe { NonNull::new_unchecked(vmf) },
            _fault: PhantomData,
        }
    }

    /// The faulting page's offset in the mapped file, in pages: the VMA's
    /// `vm_pgoff` plus the page's index in the VMA.
    pub fn pgoff(&self) -> usize {
        // SAFETY: By the type invariant `vmf` is live; `pgoff` is one of its `const` fields,
        // read by value.
        unsafe { (*self.vmf.as_ptr()).__bindgen_anon_1.pgoff }
    }

    /// The faulting user address, rounded down to its page.
    pub fn address(&self) -> usize {
        // SAFETY: By the type invariant `vmf` is live; `address` is one of its `const`
        // fields, read by value.
        unsafe { (*self.vmf.as_ptr()).__bindgen_anon_1.address }
    }

    /// Whether the fault is a write access.
    pub fn is_write(&self) -> bool {
        // SAFETY: By the type invariant `vmf` is live and only this thread uses it, so
        // nothing writes `flags` during this read.
        let flags = unsafe { (*self.vmf.as_ptr()).flags };
        flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }

    /// The VMA the fault is in.
    fn vma(&self) -> *mut bindings::vm_area_struct {
        // SAFETY: By the type invariant `vmf` is live; `vma` is one of its `const` fields.
        unsafe { (*self.vmf.as_ptr()).__bindgen_anon_1.vma }
    }
}

/// The operations of a VMA set up by [`install`].
#[vtable]
pub trait VmOperations: Send + Sync + Sized + 'static {
    /// Returns the page to map for `fault`. An error makes the access fail
    /// with `SIGBUS` (or the out-of-memory handling for `ENOMEM`).
    fn fault(&self, _fault: &VmFault<'_>) -> Result<PageRef> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// User space is about to write the page at `fault.pgoff()`, mapped
    /// read-only until now; called with the page locked. An error makes the
    /// write fail with `SIGBUS` (or the out-of-memory handling for `ENOMEM`).
    ///
    /// Implementing it makes every mapping of the object read-only until
    /// written, page by page (the write notification of shared mappings).
    fn page_mkwrite(&self, _fault: &VmFault<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Sets up `vma` to take its pages from `data`'s [`VmOperations::fault`].
///
/// The VMA becomes `VM_MIXEDMAP` (its pages are inserted one by one) and
/// `VM_DONTEXPAND` (`mremap()` cannot grow it past what the `mmap()` hook
/// checked). It holds a reference on `data` until it is unmapped; if the
/// hook fails after this, whatever its order of steps, its trampoline
/// ([`NewMapping::finish`]) drops that reference again.
///
/// Fails with `EINVAL` for a private mapping: the fault handler's pages are
/// inserted as they are, without copy-on-write, so writes through a private
/// mapping would reach the shared pages. Fails with `EBUSY` if something was
/// installed into `vma` already. On an error the VMA is left as it was.
pub fn install<T: VmOperations>(vma: &NewMapping<'_>, data: Arc<T>) -> Result {
    if !vma.is_shared() {
        return Err(EINVAL);
    }
    let data = Arc::into_raw(data).cast_mut().cast();
    // SAFETY: `data` is a leaked `Arc<T>`: `OpsTable::<T>::release` reclaims it, as the
    // table's `close` does, and its `open` takes a reference for each copy of the VMA.
    unsafe { vma.set_ops(OpsTable::<T>::build(), data, OpsTable::<T>::release)? };
    vma.vma().set_mixedmap();
    vma.vma().set_dontexpand();
    if T::HAS_PAGE_MKWRITE {
        // Whatever the hook maps itself after this is read-only too.
        vma.set_write_notify_prot();
    }
    Ok(())
}

/// The `vm_operations_struct` of a [`VmOperations`] implementation.
struct OpsTable<T: VmOperations>(PhantomData<T>);

impl<T: VmOperations> OpsTable<T> {
    const OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        open: Some(Self::open),
        close: Some(Self::close),
        fault: if T::HAS_FAULT {
            Some(Self::fault)
        } else {
            None
        },
        page_mkwrite: if T::HAS_PAGE_MKWRITE {
            Some(Self::page_mkwrite)
        } else {
            None
        },
        // SAFETY: All-zero is a valid `vm_operations_struct`: `None`s.
        ..unsafe { core::mem::zeroed() }
    };

    /// The table, with `'static` lifetime (it is a promoted constant).
    const fn build() -> &'static bindings::vm_operations_struct {
        &Self::OPS
    }

    /// The object of a VMA set up by [`install::<T>`].
    ///
    /// # Safety
    ///
    /// `vma` must be a live VMA set up by `install::<T>` that is not yet closed; the
    /// returned borrow must not outlive that.
    unsafe fn data<'a>(vma: *const bindings::vm_area_struct) -> ArcBorrow<'a, T> {
        // SAFETY: Per the safety requirements the private data is a leaked `Arc<T>` whose
        // reference the VMA still holds.
        unsafe { ArcBorrow::from_raw((*vma).vm_private_data.cast::<T>()) }
    }

    /// `open`: a new VMA was made from one of ours (`fork()`, split, `mremap()`); it
    /// shares the private data, so it takes a reference of its own.
    ///
    /// # Safety
    ///
    /// mm callback: `vma` is a live copy of a VMA set up by `install::<T>`.
    unsafe extern "C" fn open(vma: *mut bindings::vm_area_struct) {
        // SAFETY: Per the callback contract; the original VMA holds a reference meanwhile.
        let data = unsafe { Self::data(vma) };
        // The new reference belongs to `vma` and is reclaimed by its `close`.
        let _ = Arc::into_raw(Arc::from(data));
    }

    /// `close`: the VMA is going away; drop its reference.
    ///
    /// # Safety
    ///
    /// mm callback: `vma` was set up by `install::<T>` (or `open`), called once.
    unsafe extern "C" fn close(vma: *mut bindings::vm_area_struct) {
        // SAFETY: The private data is a leaked `Arc<T>` owned by `vma`, reclaimed once here.
        unsafe { Self::release((*vma).vm_private_data) };
    }

    /// Drops the reference a VMA's private data is.
    ///
    /// # Safety
    ///
    /// `data` is a leaked `Arc<T>` whose reference the caller owns and gives up.
    // Not inlined: it is also the VMA's release function, so `close` calls this one copy of
    // the drop of `T`.
    #[inline(never)]
    unsafe fn release(data: *mut c_void) {
        // SAFETY: Per the safety requirements.
        drop(unsafe { Arc::from_raw(data.cast::<T>()) });
    }

    /// `fault`: maps the page `T::fault` returns.
    ///
    /// # Safety
    ///
    /// mm callback: `vmf` is a valid fault in a live VMA set up by `install::<T>`.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: Per the callback contract `vmf` is the live fault this thread handles, for
        // the call, which `fault` does not outlive.
        let fault = unsafe { VmFault::from_raw(vmf) };
        // SAFETY: Per the callback contract the VMA is live and set up by `install::<T>`;
        // it holds its reference for the whole fault.
        let data = unsafe { Self::data(fault.vma()) };
        // With write notification even a write fault maps the page read-only: the write
        // is retried, faults again on the read-only entry, and reaches `page_mkwrite`.
        let writable = fault.is_write() && !T::HAS_PAGE_MKWRITE;
        match data.fault(&fault) {
            // SAFETY: `vmf` is a valid fault of a `VM_MIXEDMAP | VM_SHARED` VMA (`install`
            // refused the others) and `page` a live order-0 page; the page table takes its own
            // reference on it, so `page` may be dropped.
            Ok(page) => unsafe { bindings::vmf_insert_page_mkwrite(vmf, page.as_ptr(), writable) },
            Err(e) => Self::error(e),
        }
    }

    /// The fault result of an error.
    fn error(e: Error) -> bindings::vm_fault_t {
        if e == ENOMEM {
            bindings::vm_fault_reason_VM_FAULT_OOM
        } else {
            bindings::vm_fault_reason_VM_FAULT_SIGBUS
        }
    }

    /// `page_mkwrite`: a write to a read-only entry of a shared mapping; the page
    /// becomes writable once this returns `VM_FAULT_LOCKED` with the page locked (the mm
    /// core unlocks it after updating the entry).
    ///
    /// # Safety
    ///
    /// mm callback: `vmf` is a valid write fault in a live VMA set up by `install::<T>`,
    /// `vmf->page` the mapped page (`do_wp_page()` -> `wp_page_shared()`).
    unsafe extern "C" fn page_mkwrite(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: Per the callback contract `vmf` is the live fault this thread handles, for
        // the call, which `fault` does not outlive.
        let fault = unsafe { VmFault::from_raw(vmf) };
        // SAFETY: Per the callback contract the VMA is live and set up by `install::<T>`.
        let data = unsafe { Self::data(fault.vma()) };
        // SAFETY: `vmf` is live for the call; `page` is read by value.
        let page = unsafe { (*vmf).page };
        if page.is_null() {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        // Locked before the hook, so that the hook's record and the entry becoming writable
        // are one step for whoever write-protects the page under its lock.
        // SAFETY: `page` is the mapped page, on which the mm core holds a reference for the
        // fault; sleeping is allowed here.
        unsafe { bindings::kx_lock_page(page) };
        match data.page_mkwrite(&fault) {
            Ok(()) => bindings::vm_fault_reason_VM_FAULT_LOCKED,
            Err(e) => {
                // SAFETY: Locked above; the write fails, so the mm core will not unlock it.
                unsafe { bindings::kx_unlock_page(page) };
                Self::error(e)
            }
        }
    }
}
