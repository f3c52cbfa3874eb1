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
    devres::Devres,
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
/// way to get one. It is what a [`MappedSgTable`] is mapped for.
#[repr(transparent)]
pub struct Attachment(Opaque<bindings::dma_buf_attachment>);

impl Attachment {
    /// The importing device, for which the buffer is mapped (e.g. for a
    /// `dev_dbg!`).
    ///
    /// A plain [`Device`]: the exporter does not own it, so it gets no
    /// `Device<Bound>`, which would open the bound-only APIs of the
    /// importer's bus device (a PCI BAR, its devres) to it. Only
    /// [`MappedSgTable::from_pages`] uses the device as bound, for the DMA
    /// mapping, inside this layer.
    pub fn dev(&self) -> &Device {
        // SAFETY: An attachment is only handed out by `map_dma_buf`, for the call, while it
        // is live; the importer holds a reference on its device until it detaches, and the
        // returned borrow ends with that of `self`, i.e. with the call.
        unsafe { Device::from_raw((*self.0.get()).dev) }
    }

    /// The importing device as bound to its driver, for the DMA API.
    ///
    /// # Safety
    ///
    /// Only for mapping `self`'s buffer in [`Exporter::map`] (the call `self` is borrowed
    /// for): the importer maps an attachment (`dma_buf_map_attachment()`, which is what calls
    /// `map`) in order to use it for DMA by that device, and the DMA API may only be used for
    /// a device while a driver is bound to it. That is the contract every C exporter relies on
    /// when it calls `dma_map_sgtable()` for `attach->dev` in its `map_dma_buf`. The result
    /// must not reach a driver.
    unsafe fn bound_dev(&self) -> &Device<Bound> {
        // SAFETY: The device is bound for the call, per the safety requirements, and the
        // returned borrow ends with that of `self`, i.e. with the call.
        unsafe { self.dev().as_bound() }
    }
}

/// The DMA mapping of a table for one device, undone on drop. It lives in a
/// [`Devres`] of that device, like the kernel crate's `SGTable<Owned>`'s
/// mapping: it is undone when the table is dropped or when the device is
/// unbound, whichever comes first, so never on a device its driver no
/// longer owns.
///
/// # Invariants
///
/// `sgt` is a filled table, mapped with `dma_map_sgtable()` for `dev` in direction `dir`; it
/// stays allocated and unchanged until this is dropped.
struct DmaMapping {
    sgt: NonNull<bindings::sg_table>,
    dev: ARef<Device>,
    dir: bindings::dma_data_direction,
}

// SAFETY: The mapping may be undone from any thread (the devres release runs in the thread that
// unbinds the device); the table is only read.
unsafe impl Send for DmaMapping {}
// SAFETY: `&DmaMapping` offers nothing: it has no methods.
unsafe impl Sync for DmaMapping {}

impl DmaMapping {
    /// Maps `sgt` for DMA by `dev` in direction `dir`.
    ///
    /// # Safety
    ///
    /// `sgt` is a filled table that stays allocated and unchanged until the returned mapping is
    /// dropped; `dir` is not `DMA_NONE`.
    #[inline]
    unsafe fn new(
        sgt: NonNull<bindings::sg_table>,
        dev: &Device<Bound>,
        dir: bindings::dma_data_direction,
    ) -> Result<Self> {
        // SAFETY: `sgt` is a filled table (safety requirements) and `dev` a device bound to a
        // driver, so the DMA API may map for it; `dir` is a valid direction.
        let ret =
            unsafe { bindings::dma_map_sgtable(super::device::as_raw(dev), sgt.as_ptr(), dir, 0) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Mapped just above; the table outlives `self` per the safety requirements.
        Ok(Self {
            sgt,
            dev: dev.into(),
            dir,
        })
    }
}

impl Drop for DmaMapping {
    #[inline]
    fn drop(&mut self) {
        let sgt = self.sgt.as_ptr();
        // SAFETY: By the type invariant the table is live and mapped for `dev` in `dir`; this is
        // `dma_unmap_sgtable()` (an inline function). `Devres` drops this at the latest while
        // `dev` is unbinding, i.e. while it is still bound.
        unsafe {
            bindings::dma_unmap_sg_attrs(
                super::device::as_raw(&self.dev),
                (*sgt).sgl,
                // CAST: `orig_nents` is bounded by the `c_uint` page count of `from_pages`
                // and the C function takes it as an `int`.
                (*sgt).orig_nents as c_int,
                self.dir,
                0,
            );
        }
    }
}

/// The part of a [`MappedSgTable`] the C side sees; `sgt` comes first so the
/// `struct sg_table *` handed to the dma-buf core leads back to it.
/// `MappedSgTable::drop` drops the mapping, then frees `sgt`; the page
/// references drop after that, with the fields.
#[repr(C)]
struct MappedInner {
    sgt: Opaque<bindings::sg_table>,
    dma: Option<Devres<DmaMapping>>,
    pages: KVVec<PageRef>,
}

/// A scatter-gather table of pages, DMA-mapped for the device of an
/// [`Attachment`]: what an exporter's `map_dma_buf` returns. It owns a
/// reference on each of its pages, so they stay allocated while the device
/// may access them; dropping it unmaps (unless the device's unbinding did
/// already) and frees the table, then puts the pages.
///
/// # Invariants
///
/// `inner.sgt` was filled by `sg_alloc_table_from_pages_segment()` with the
/// pages of `inner.pages`; `inner.dma` is `Some`, the `Devres` of its mapping.
pub struct MappedSgTable {
    inner: KBox<MappedInner>,
}

/// The DMA mapping of a [`MappedSgTable`] is device-managed: this fails to
/// compile once the table holds it other than in a [`Devres`] (issue 24,
/// item 5: unmapped only in `Drop`, with no ordering against the importer's
/// unbinding).
fn _assert_mapping_device_managed(t: &MappedSgTable) -> &Option<Devres<DmaMapping>> {
    &t.inner.dma
}

impl MappedSgTable {
    /// Builds a table of `pages` (the first `size` bytes of them) and maps it
    /// for DMA by the device of `attachment` in direction `dir`; the table
    /// keeps the references `pages` holds. `EINVAL` for no pages, for more
    /// than `size` covers, for [`DataDirection::None`] (which the DMA API
    /// cannot map) and for a device that cannot take even one page per DMA
    /// segment.
    ///
    /// It maps for an attachment's device only, and only while the
    /// attachment is borrowed, i.e. in [`Exporter::map`], the one time the
    /// importer's device is known to be bound: a driver cannot map for a
    /// device of its own choosing, nor hand an importer a table mapped for
    /// another device. The mapping is undone when the table is dropped (the
    /// importer unmaps) or when the importer's device is unbound, whichever
    /// comes first.
    ///
    /// Segments are at most the device's maximum segment size
    /// (`dma_get_max_seg_size()`) and maximum mapping size
    /// (`dma_max_mapping_size()`, as the kernel crate's `SGTable` and
    /// `drm_prime_pages_to_sg()` use), so they fit the device whether or not
    /// an IOMMU or bounce buffers merge or split them.
    #[inline]
    pub fn from_pages(
        attachment: &Attachment,
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
        let max_segment = Self::max_segment(attachment.dev())?;
        let dir = bindings::dma_data_direction::from(dir);
        let mut inner = KBox::new(
            MappedInner {
                sgt: Opaque::zeroed(),
                dma: None,
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
        // SAFETY: We are in `Exporter::map` for `attachment` (the only place one is borrowed),
        // mapping its buffer; the device reference goes no further than the `Devres` below.
        let dev = unsafe { attachment.bound_dev() };
        // SAFETY: `sgt` is a filled table, in a box that neither moves nor frees it until
        // `MappedSgTable::drop` has dropped the mapping (or, if this fails, below); `dir` is
        // not `DMA_NONE` (checked above).
        let mapping = unsafe { DmaMapping::new(NonNull::new_unchecked(sgt), dev, dir) };
        match Devres::new(dev, mapping) {
            Ok(dma) => inner.dma = Some(dma),
            Err(e) => {
                // SAFETY: The table was allocated above and is no longer mapped: the mapping
                // failed, or it was dropped with the failed `Devres`.
                unsafe { bindings::sg_free_table(sgt) };
                return Err(e);
            }
        }
        // INVARIANT: Filled with `inner.pages`; `dma` holds its mapping for `dev` in `dir`.
        Ok(Self { inner })
    }

    /// The largest scatterlist segment for `dev`, a page multiple; `EINVAL`
    /// if that is less than a page (`sg_alloc_table_from_pages_segment()`
    /// would warn and fail).
    #[inline]
    fn max_segment(dev: &Device) -> Result<c_uint> {
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
        // Unmaps, or waits until the unbinding of the device that revoked the mapping is done
        // with it.
        drop(self.inner.dma.take());
        // SAFETY: By the type invariant the table was allocated; it is no longer mapped (see
        // above) and nothing uses it any more. The pages are put after this, with `inner`.
        unsafe { bindings::sg_free_table(self.inner.sgt.get()) };
    }
}

/// The operations of an exported buffer; the implementing type is the
/// buffer's private data. Its `Drop` is the buffer's `release`.
#[vtable]
pub trait Exporter: Send + Sync + Sized + 'static {
    /// Maps the buffer for DMA by the attachment's device: builds the table
    /// with [`MappedSgTable::from_pages`], the only way to one, which maps
    /// for that device only.
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
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: `self` is live, so its file has a reference we can add to.
        unsafe { bindings::kx_get_dma_buf(self.0.get()) };
    }

    #[inline]
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
