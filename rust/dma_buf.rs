// SPDX-License-Identifier: GPL-2.0

//! dma-buf exporters.
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)
//!
//! A driver implements [`Exporter`] for the object behind its buffers and
//! calls [`export`] with an [`Arc`] of it; the dma-buf owns that reference
//! and drops it in its `release` callback, i.e. after the last file
//! descriptor, mapping and importer is gone. A [`DmaBuf`] is a reference on
//! the buffer's file; [`DmaBuf::into_file`] turns one into the file a
//! `FileDescriptorReservation` installs as the last step of a request,
//! after its fallible work (there is no "install now": a descriptor user
//! space already sees cannot be taken back).
//!
//! The dma-buf core holds a reference on the exporting module while a buffer
//! exists, so the module cannot be unloaded under its buffers. Modules using
//! this must import the `DMA_BUF` symbol namespace (`imports_ns` in
//! `module!`).

use super::{bindings, page_ref::PageRef, vma::NewMapping};
use core::{marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    device::{Bound, Device},
    dma::DataDirection,
    error::{from_err_ptr, to_result, VTABLE_DEFAULT_ERROR},
    fs::File,
    mm::virt::VmaNew,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::{ARef, AlwaysRefCounted},
        Arc, ArcBorrow,
    },
    types::Opaque,
};

/// A device's attachment to a dma-buf (`struct dma_buf_attachment`).
///
/// Only handed to [`Exporter::map`], borrowed for the call: there is no other
/// way to get one.
#[repr(transparent)]
pub struct Attachment(Opaque<bindings::dma_buf_attachment>);

impl Attachment {
    /// The importing device, for which the buffer is mapped.
    ///
    /// It is bound to a driver while the attachment is borrowed: the importer
    /// maps an attachment (`dma_buf_map_attachment()`, which is what calls
    /// [`Exporter::map`]) in order to use it for DMA by that device, and the
    /// DMA API may only be used for a device while a driver is bound to it
    /// (its driver unmaps before unbinding, like any DMA mapping). That is
    /// the contract every C exporter relies on when it calls
    /// `dma_map_sgtable()` for `attach->dev` in its `map_dma_buf`.
    pub fn dev(&self) -> &Device<Bound> {
        // SAFETY: An attachment is only handed out by `map_dma_buf`, for the call, while it
        // is live; the importer holds a reference on its device until it detaches.
        let dev: &Device = unsafe { Device::from_raw((*self.0.get()).dev) };
        // SAFETY: The device is bound for the call (see above), and the returned borrow ends
        // with that of `self`, i.e. with the call.
        unsafe { dev.as_bound() }
    }
}

/// The part of a [`MappedSgTable`] the C side sees; `sgt` comes first so the
/// `struct sg_table *` handed to the dma-buf core leads back to it. Fields
/// drop after `MappedSgTable::drop` has unmapped and freed `sgt`: the
/// device reference, then the page references.
#[repr(C)]
struct MappedInner {
    sgt: Opaque<bindings::sg_table>,
    dev: ARef<Device>,
    dir: bindings::dma_data_direction,
    pages: KVVec<PageRef>,
}

/// A scatter-gather table of pages, DMA-mapped for one device: what an
/// exporter's `map_dma_buf` returns. It owns a reference on each of its
/// pages, so they stay allocated while the device may access them; dropping
/// it unmaps and frees the table, then puts the pages.
///
/// # Invariants
///
/// `inner.sgt` was filled by `sg_alloc_table_from_pages_segment()` with the
/// pages of `inner.pages` and mapped with `dma_map_sgtable()` for
/// `inner.dev` in direction `inner.dir`.
pub struct MappedSgTable {
    inner: KBox<MappedInner>,
}

impl MappedSgTable {
    /// Builds a table of `pages` (the first `size` bytes of them) and maps it
    /// for DMA by `dev` in direction `dir`; the table keeps the references
    /// `pages` holds. `EINVAL` for no pages, for more than `size` covers, for
    /// [`DataDirection::None`] (which the DMA API cannot map) and for a
    /// device that cannot take even one page per DMA segment.
    ///
    /// Segments are at most the device's maximum segment size
    /// (`dma_get_max_seg_size()`) and maximum mapping size
    /// (`dma_max_mapping_size()`, as the kernel crate's `SGTable` and
    /// `drm_prime_pages_to_sg()` use), so they fit the device whether or not
    /// an IOMMU or bounce buffers merge or split them.
    pub fn from_pages(
        dev: &Device<Bound>,
        pages: KVVec<PageRef>,
        size: usize,
        dir: DataDirection,
    ) -> Result<Self> {
        // `dma_map_sgtable()` BUG()s on `DMA_NONE`; an importer may pass anything.
        if dir == DataDirection::None {
            return Err(EINVAL);
        }
        // `sg_alloc_table_from_pages_segment()` needs at least one page.
        if pages.is_empty() || size > pages.len().checked_mul(PAGE_SIZE).ok_or(EINVAL)? {
            return Err(EINVAL);
        }
        let n = c_uint::try_from(pages.len()).map_err(|_| EINVAL)?;
        let max_segment = Self::max_segment(dev)?;
        let dir = bindings::dma_data_direction::from(dir);
        let inner = KBox::new(
            MappedInner {
                sgt: Opaque::zeroed(),
                dev: dev.into(),
                dir,
                pages,
            },
            GFP_KERNEL,
        )?;
        let sgt = inner.sgt.get();
        // SAFETY: `sgt` is a zeroed table of ours; `inner.pages` holds references on `n`
        // live pages, covering `size` bytes, which the table keeps until it is dropped (after
        // the table is unmapped and freed). The array is only read. `max_segment` is at
        // least a page.
        to_result(unsafe {
            bindings::sg_alloc_table_from_pages_segment(
                sgt,
                PageRef::as_raw_array(&inner.pages).cast_mut(),
                n,
                0,
                size as c_ulong,
                max_segment,
                bindings::GFP_KERNEL,
            )
        })?;
        // SAFETY: `sgt` is a filled table and `dev` a device bound to a driver, so the DMA
        // API may map for it.
        let ret = unsafe { bindings::dma_map_sgtable(super::device::as_raw(dev), sgt, dir, 0) };
        if ret != 0 {
            // SAFETY: The table was allocated above and is not mapped.
            unsafe { bindings::sg_free_table(sgt) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Filled with `inner.pages` and mapped for `dev` in `dir`.
        Ok(Self { inner })
    }

    /// The largest scatterlist segment for `dev`, a page multiple; `EINVAL`
    /// if that is less than a page (`sg_alloc_table_from_pages_segment()`
    /// would warn and fail).
    fn max_segment(dev: &Device<Bound>) -> Result<c_uint> {
        let raw = super::device::as_raw(dev);
        // SAFETY: `raw` is a live device; both only read its DMA parameters.
        let (seg, mapping) = unsafe {
            (
                bindings::kx_dma_get_max_seg_size(raw),
                bindings::dma_max_mapping_size(raw),
            )
        };
        // `dma_max_mapping_size()` is `SIZE_MAX`, or 0 without DMA ops, when it sets no limit.
        let mapping = match mapping {
            0 => c_uint::MAX,
            m => c_uint::try_from(m).unwrap_or(c_uint::MAX),
        };
        // CAST: `PAGE_SIZE` fits `c_uint`.
        let page = PAGE_SIZE as c_uint;
        let max = seg.min(mapping) / page * page;
        if max == 0 {
            return Err(EINVAL);
        }
        Ok(max)
    }

    /// Hands the table to C as the `struct sg_table *` of a `map_dma_buf`.
    fn into_raw(self) -> *mut bindings::sg_table {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is neither used nor dropped again, so `inner` may be moved out.
        let inner = unsafe { core::ptr::read(&this.inner) };
        // `sgt` is the first field of the `#[repr(C)]` `MappedInner`.
        KBox::into_raw(inner).cast()
    }

    /// Takes back a table handed out by [`MappedSgTable::into_raw`].
    ///
    /// # Safety
    ///
    /// `sgt` must come from `into_raw` and not have been taken back yet.
    unsafe fn from_raw(sgt: *mut bindings::sg_table) -> Self {
        // SAFETY: Per the safety requirements `sgt` is the leaked `MappedInner` of a table.
        let inner = unsafe { KBox::from_raw(sgt.cast::<MappedInner>()) };
        Self { inner }
    }
}

impl Drop for MappedSgTable {
    fn drop(&mut self) {
        let sgt = self.inner.sgt.get();
        // SAFETY: By the type invariant the table is mapped for `dev` in `dir`; this is
        // `dma_unmap_sgtable()` (an inline function), followed by freeing the table.
        unsafe {
            bindings::dma_unmap_sg_attrs(
                super::device::as_raw(&self.inner.dev),
                (*sgt).sgl,
                // CAST: `orig_nents` is bounded by the `c_uint` page count of `from_pages`
                // and the C function takes it as an `int`.
                (*sgt).orig_nents as c_int,
                self.inner.dir,
                0,
            );
            bindings::sg_free_table(sgt);
        }
    }
}

/// The operations of an exported buffer; the implementing type is the
/// buffer's private data. Its `Drop` is the buffer's `release`.
#[vtable]
pub trait Exporter: Send + Sync + Sized + 'static {
    /// Maps the buffer for DMA by `attachment.dev()`, bound for the call.
    ///
    /// The buffer (hence `self`) outlives the mapping: the dma-buf core
    /// unmaps every attachment before releasing it. The table owns references
    /// to its pages in any case.
    fn map(&self, attachment: &Attachment, dir: DataDirection) -> Result<MappedSgTable>;

    /// `mmap()` of the buffer (through its file descriptor or an importer).
    /// The core has checked that the VMA lies within the buffer. If the hook
    /// fails, what it installed into `vma` is undone.
    fn mmap(_this: ArcBorrow<'_, Self>, _vma: &NewMapping<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// An exported dma-buf: one reference on it (on its file).
///
/// Instances are only used through [`ARef<DmaBuf>`].
#[repr(transparent)]
pub struct DmaBuf(Opaque<bindings::dma_buf>);

// SAFETY: The reference count is that of a `struct file`, atomic; the buffer may be used
// and released from any thread.
unsafe impl Send for DmaBuf {}
// SAFETY: `&DmaBuf` only reads immutable fields and takes references.
unsafe impl Sync for DmaBuf {}

// SAFETY: `get_dma_buf()` and `dma_buf_put()` take and drop a reference on the buffer's
// file, which keeps the buffer alive.
unsafe impl AlwaysRefCounted for DmaBuf {
    fn inc_ref(&self) {
        // SAFETY: `self` is live, so its file has a reference we can add to.
        unsafe { bindings::kx_get_dma_buf(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference, which is given up here.
        unsafe { bindings::dma_buf_put(obj.as_ptr().cast()) };
    }
}

impl DmaBuf {
    /// Size of the buffer in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: `size` is set at export and never changes.
        unsafe { (*self.0.get()).size }
    }

    /// The buffer's file, owning the reference `this` was (a dma-buf's
    /// reference count is its file's): what a
    /// `kernel::fs::file::FileDescriptorReservation` installs, as the last
    /// step of a request, after its fallible work.
    pub fn into_file(this: ARef<Self>) -> ARef<File> {
        let buf = ARef::into_raw(this);
        // SAFETY: `buf` is a live dma-buf; `file` is set at export and never changes.
        let file = unsafe { (*buf.as_ptr().cast::<bindings::dma_buf>()).file };
        // SAFETY: We own a reference on `buf`, i.e. on `file` (`get_dma_buf()` is `get_file()`
        // of it and `dma_buf_put()` its `fput()`), which becomes the `ARef`'s; `File` is a
        // transparent wrapper of `struct file`. `File`'s invariant is about `fdget_pos` calls
        // that skip `f_pos_lock`, which exist for a dma-buf file (it is not
        // `FMODE_ATOMIC_POS`), but nothing ever reads or writes its position: `dma_buf_fops`
        // has no `read` or `write`, and its `llseek` returns a value without setting `f_pos`.
        unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) }
    }
}

/// File flags for [`export`]: the buffer's file is opened read-write, so
/// user space can map it `MAP_SHARED` with `PROT_WRITE`.
pub const EXPORT_RDWR: u32 = bindings::O_RDWR;

/// Exports a dma-buf of `size` bytes backed by `data`, with file flags
/// `flags` (e.g. [`EXPORT_RDWR`]). The buffer holds the reference `data` was
/// until it is released.
pub fn export<T: Exporter>(data: Arc<T>, size: usize, flags: u32) -> Result<ARef<DmaBuf>> {
    let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
    let priv_ = Arc::into_raw(data).cast_mut();
    // SAFETY: The ops table is `'static`; `priv_` is a leaked `Arc<T>` that the buffer's
    // `release` reclaims, or we do below if there is no buffer.
    let buf = from_err_ptr(unsafe {
        bindings::kx_dma_buf_export(OpsTable::<T>::build(), size, flags, priv_.cast())
    });
    match buf {
        // SAFETY: A fresh buffer: its initial reference is ours.
        Ok(buf) => Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(buf.cast::<DmaBuf>())) }),
        Err(e) => {
            // SAFETY: Export failed, so no buffer owns `priv_`; take it back.
            drop(unsafe { Arc::from_raw(priv_) });
            Err(e)
        }
    }
}

/// The `dma_buf_ops` of an [`Exporter`] implementation.
struct OpsTable<T: Exporter>(PhantomData<T>);

impl<T: Exporter> OpsTable<T> {
    const OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
        map_dma_buf: Some(Self::map_dma_buf),
        unmap_dma_buf: Some(Self::unmap_dma_buf),
        release: Some(Self::release),
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        // SAFETY: All-zero is a valid `dma_buf_ops`: `None`s.
        ..unsafe { core::mem::zeroed() }
    };

    /// The table, with `'static` lifetime (it is a promoted constant).
    const fn build() -> &'static bindings::dma_buf_ops {
        &Self::OPS
    }

    /// The private data of a buffer exported by `export::<T>`.
    ///
    /// # Safety
    ///
    /// `buf` must be such a buffer, not yet released, for the returned lifetime.
    unsafe fn data<'a>(buf: *const bindings::dma_buf) -> ArcBorrow<'a, T> {
        // SAFETY: Per the safety requirements `priv` is the leaked `Arc<T>` the buffer owns.
        unsafe { ArcBorrow::from_raw((*buf).priv_.cast::<T>()) }
    }

    /// Converts a C DMA direction; `None` for values the C enum does not have.
    fn direction(dir: bindings::dma_data_direction) -> Option<DataDirection> {
        [
            DataDirection::Bidirectional,
            DataDirection::ToDevice,
            DataDirection::FromDevice,
            DataDirection::None,
        ]
        .into_iter()
        .find(|&d| bindings::dma_data_direction::from(d) == dir)
    }

    /// `map_dma_buf`.
    ///
    /// # Safety
    ///
    /// dma-buf core callback: `attach` is a live attachment to one of our buffers.
    unsafe extern "C" fn map_dma_buf(
        attach: *mut bindings::dma_buf_attachment,
        dir: bindings::dma_data_direction,
    ) -> *mut bindings::sg_table {
        // SAFETY: Per the callback contract; the buffer outlives its attachments.
        let (data, attachment) =
            unsafe { (Self::data((*attach).dmabuf), &*attach.cast::<Attachment>()) };
        let res = Self::direction(dir)
            .ok_or(EINVAL)
            .and_then(|d| data.map(attachment, d));
        match res {
            Ok(table) => table.into_raw(),
            Err(e) => e.to_ptr(),
        }
    }

    /// `unmap_dma_buf`.
    ///
    /// # Safety
    ///
    /// dma-buf core callback: `sgt` was returned by `map_dma_buf` and is unmapped once.
    unsafe extern "C" fn unmap_dma_buf(
        _attach: *mut bindings::dma_buf_attachment,
        sgt: *mut bindings::sg_table,
        _dir: bindings::dma_data_direction,
    ) {
        // SAFETY: Per the callback contract; dropping the table unmaps it for the device and
        // direction it was mapped with.
        drop(unsafe { MappedSgTable::from_raw(sgt) });
    }

    /// `release`: the last reference to the buffer is gone.
    ///
    /// # Safety
    ///
    /// dma-buf core callback, once per buffer exported by `export::<T>`.
    unsafe extern "C" fn release(buf: *mut bindings::dma_buf) {
        // SAFETY: The buffer owns the leaked `Arc<T>`; nothing uses it after this.
        drop(unsafe { Arc::from_raw((*buf).priv_.cast::<T>()) });
    }

    /// `mmap`.
    ///
    /// # Safety
    ///
    /// dma-buf core callback from an `mmap()` hook: `buf` is live, `vma` being set up.
    unsafe extern "C" fn mmap(
        buf: *mut bindings::dma_buf,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: Per the callback contract; the VMA's file holds the buffer during the call.
        let (data, vma) = unsafe { (Self::data(buf), VmaNew::from_raw(vma)) };
        let mapping = NewMapping::new(vma);
        let res = T::mmap(data, &mapping);
        mapping.finish(res)
    }
}
