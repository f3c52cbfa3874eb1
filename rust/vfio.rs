// SPDX-License-Identifier: GPL-2.0

//! VFIO devices backed by an emulated IOMMU (mediated devices).
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h)
//!
//! A driver implements [`Device`] for its per-device state and creates a
//! [`Registration`]; the VFIO core then routes the device file's read,
//! write, mmap and ioctl calls to it. `VFIO_DEVICE_GET_REGION_INFO` is
//! decoded by the core (argsz, capability chain) and reaches the driver as
//! [`Device::region_info`].

use super::{bindings, device as kx_device, uaccess::UserWriter, vma::NewMapping};
use core::{
    marker::PhantomData,
    mem::{offset_of, size_of},
    pin::Pin,
    ptr::NonNull,
};
use kernel::{
    device::Device as KDevice,
    error::{from_err_ptr, VTABLE_DEFAULT_ERROR},
    mm::virt::VmaNew,
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserSlice, UserSliceReader, UserSliceWriter},
};

/// Region flag: the region can be read.
pub const REGION_READ: u32 = bindings::VFIO_REGION_INFO_FLAG_READ;
/// Region flag: the region can be written.
pub const REGION_WRITE: u32 = bindings::VFIO_REGION_INFO_FLAG_WRITE;
/// Region flag: the region can be mmapped.
pub const REGION_MMAP: u32 = bindings::VFIO_REGION_INFO_FLAG_MMAP;

/// What `VFIO_DEVICE_GET_REGION_INFO` reports for one region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionInfo {
    /// Offset of the region in the device file.
    pub offset: u64,
    /// Size in bytes; zero for a region that does not exist.
    pub size: u64,
    /// `REGION_*` flags.
    pub flags: u32,
}

/// The capability chain of a `VFIO_DEVICE_GET_REGION_INFO` reply.
pub struct InfoCaps<'a> {
    caps: &'a mut bindings::vfio_info_cap,
}

impl InfoCaps<'_> {
    /// Adds a `VFIO_REGION_INFO_CAP_TYPE` capability (e.g. a graphics EDID region).
    pub fn add_region_type(&mut self, type_: u32, subtype: u32) -> Result {
        let mut cap = bindings::vfio_region_info_cap_type {
            header: bindings::vfio_info_cap_header {
                // CAST: capability IDs and versions are 16-bit by uapi definition.
                id: bindings::VFIO_REGION_INFO_CAP_TYPE as u16,
                version: 1,
                next: 0,
            },
            type_,
            subtype,
        };
        // SAFETY: `self.caps` is the live chain of the current ioctl; `cap` starts with a
        // `vfio_info_cap_header` and is `size_of_val(&cap)` bytes long, and is copied.
        kernel::error::to_result(unsafe {
            bindings::vfio_info_add_capability(
                self.caps,
                &mut cap.header,
                core::mem::size_of_val(&cap),
            )
        })
    }
}

/// A user buffer of a `read()`/`write()` on the device file.
#[derive(Clone, Copy)]
pub struct UserBuf {
    ptr: UserPtr,
    len: usize,
}

impl UserBuf {
    /// The user address.
    pub fn ptr(&self) -> UserPtr {
        self.ptr
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes from `offset` on, for reading from user space.
    pub fn reader_at(&self, offset: usize) -> UserSliceReader {
        UserSlice::new(
            self.ptr.wrapping_byte_add(offset),
            self.len.saturating_sub(offset),
        )
        .reader()
    }

    /// The bytes from `offset` on, for writing to user space from memory
    /// user space may map.
    pub fn user_writer_at(&self, offset: usize) -> UserWriter {
        UserWriter::new(
            self.ptr.wrapping_byte_add(offset),
            self.len.saturating_sub(offset),
        )
    }

    /// The bytes from `offset` on, for writing to user space.
    pub fn writer_at(&self, offset: usize) -> UserSliceWriter {
        UserSlice::new(
            self.ptr.wrapping_byte_add(offset),
            self.len.saturating_sub(offset),
        )
        .writer()
    }
}

/// Reads an argsz-versioned ioctl argument (`struct vfio_*` starting with
/// `u32 argsz`): the first `minsz` bytes are copied in, the rest stays zero.
///
/// Fails with `EINVAL` if the user's `argsz` is below `minsz`, `EFAULT` on a
/// bad pointer.
pub fn read_arg<T: FromBytes + AsBytes + Default>(arg: UserPtr, minsz: usize) -> Result<T> {
    if minsz < core::mem::size_of::<u32>() || minsz > core::mem::size_of::<T>() {
        return Err(EINVAL);
    }
    let mut val = T::default();
    UserSlice::new(arg, minsz)
        .reader()
        .read_slice(&mut val.as_bytes_mut()[..minsz])?;
    let mut argsz = [0u8; 4];
    argsz.copy_from_slice(&val.as_bytes()[..4]);
    // CAST: `u32` to `usize` is lossless on every kernel target.
    if (u32::from_ne_bytes(argsz) as usize) < minsz {
        return Err(EINVAL);
    }
    Ok(val)
}

/// Writes the first `minsz` bytes of `val` back to the ioctl argument.
pub fn write_arg<T: AsBytes>(arg: UserPtr, val: &T, minsz: usize) -> Result {
    let bytes = val.as_bytes().get(..minsz).ok_or(EINVAL)?;
    UserSlice::new(arg, minsz).writer().write_slice(bytes)
}

macro_rules! impl_plain_uapi {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: A uapi struct of integer fields (and unions of them) laid out without
        // padding: every bit pattern is valid and it has no uninitialised bytes.
        unsafe impl FromBytes for $t {}
        // SAFETY: See `FromBytes` above.
        unsafe impl AsBytes for $t {}
    )*};
}

impl_plain_uapi!(
    bindings::vfio_device_info,
    bindings::vfio_irq_info,
    bindings::vfio_irq_set,
    bindings::vfio_device_gfx_plane_info,
    bindings::vfio_region_gfx_edid,
);

/// Sets the `region_index` of a `VFIO_DEVICE_QUERY_GFX_PLANE` reply (for
/// `VFIO_GFX_PLANE_TYPE_REGION` planes).
pub fn set_plane_region_index(plane: &mut bindings::vfio_device_gfx_plane_info, index: u32) {
    // SAFETY: `region_index` and `dmabuf_id` are the two `u32` members of the union;
    // writing either one is always valid.
    unsafe { *plane.__bindgen_anon_1.region_index.as_mut() = index };
}

/// Sets the `dmabuf_id` of a `VFIO_DEVICE_QUERY_GFX_PLANE` reply (for
/// `VFIO_GFX_PLANE_TYPE_DMABUF` planes).
pub fn set_plane_dmabuf_id(plane: &mut bindings::vfio_device_gfx_plane_info, id: u32) {
    // SAFETY: See `set_plane_region_index`.
    unsafe { *plane.__bindgen_anon_1.dmabuf_id.as_mut() = id };
}

/// Answers `VFIO_DEVICE_GET_INFO` for an emulated PCI device with
/// `num_regions` regions, the PCI interrupt indexes and reset support.
pub fn reply_pci_device_info(arg: UserPtr, num_regions: u32) -> Result<isize> {
    let minsz = offset_of!(bindings::vfio_device_info, num_irqs) + size_of::<u32>();
    let mut info: bindings::vfio_device_info = read_arg(arg, minsz)?;
    info.flags = bindings::VFIO_DEVICE_FLAGS_PCI | bindings::VFIO_DEVICE_FLAGS_RESET;
    info.num_regions = num_regions;
    info.num_irqs = bindings::VFIO_PCI_NUM_IRQS;
    write_arg(arg, &info, minsz)?;
    Ok(0)
}

/// Answers `VFIO_DEVICE_GET_IRQ_INFO` for a PCI device without interrupts:
/// every PCI interrupt index exists with a count of 0, others are `EINVAL`.
pub fn reply_no_irq_info(arg: UserPtr) -> Result<isize> {
    let minsz = offset_of!(bindings::vfio_irq_info, count) + size_of::<u32>();
    let mut info: bindings::vfio_irq_info = read_arg(arg, minsz)?;
    if info.index >= bindings::VFIO_PCI_NUM_IRQS {
        return Err(EINVAL);
    }
    info.flags = 0;
    info.count = 0;
    write_arg(arg, &info, minsz)?;
    Ok(0)
}

/// `argsz` a `VFIO_DEVICE_QUERY_GFX_PLANE` caller must provide: up to and
/// including the `region_index`/`dmabuf_id` union.
const PLANE_INFO_MINSZ: usize =
    offset_of!(bindings::vfio_device_gfx_plane_info, __bindgen_anon_1) + size_of::<u32>();

/// `x_hot`/`y_hot` of a plane without hotspot information (the uapi's
/// 0xFFFFFFFF).
pub const NO_HOTSPOT: u32 = u32::MAX;

/// A decoded `VFIO_DEVICE_QUERY_GFX_PLANE` request.
pub enum PlaneQuery {
    /// A probe for the plane type the device has: the answer is 0.
    Probe,
    /// A query of plane `drm_plane_type`: fill it in and [`reply_plane`].
    Query(bindings::vfio_device_gfx_plane_info),
}

/// Reads a `VFIO_DEVICE_QUERY_GFX_PLANE` argument for a device whose planes
/// are of `plane_type` (`VFIO_GFX_PLANE_TYPE_REGION` or `_DMABUF`): a probe
/// for anything else, or a query with other flags, is `EINVAL`.
pub fn read_plane_query(arg: UserPtr, plane_type: u32) -> Result<PlaneQuery> {
    const PROBE: u32 = bindings::VFIO_GFX_PLANE_TYPE_PROBE;
    let plane: bindings::vfio_device_gfx_plane_info = read_arg(arg, PLANE_INFO_MINSZ)?;
    if plane.flags & PROBE != 0 {
        return if plane.flags == PROBE | plane_type {
            Ok(PlaneQuery::Probe)
        } else {
            Err(EINVAL)
        };
    }
    if plane.flags != plane_type {
        return Err(EINVAL);
    }
    Ok(PlaneQuery::Query(plane))
}

/// Writes the answer to a `VFIO_DEVICE_QUERY_GFX_PLANE` query back.
pub fn reply_plane(arg: UserPtr, plane: &bindings::vfio_device_gfx_plane_info) -> Result<isize> {
    write_arg(arg, plane, PLANE_INFO_MINSZ)?;
    Ok(0)
}

/// Operations of a VFIO device; the `&self` is the driver's per-device state.
///
/// Offsets are positions in the device file, as `pread()`/`pwrite()` and
/// `mmap()` see them; which region an offset belongs to is the driver's
/// region layout (see [`Device::region_info`]).
#[vtable]
pub trait Device: Send + Sync + Sized {
    /// The first user opened the device.
    fn open(&self) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The last user closed the device.
    fn close(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `pread()` of `buf.len()` bytes at `offset`; returns the bytes read.
    fn read(&self, _offset: u64, _buf: UserBuf) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `pwrite()` of `buf.len()` bytes at `offset`; returns the bytes written.
    fn write(&self, _offset: u64, _buf: UserBuf) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// A device ioctl other than `VFIO_DEVICE_GET_REGION_INFO`.
    fn ioctl(&self, _cmd: u32, _arg: UserPtr) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for region `index`; capabilities go to `caps`.
    fn region_info(&self, _index: u32, _caps: &mut InfoCaps<'_>) -> Result<RegionInfo> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `mmap()` of the device file; `vma.pgoff()` selects what is mapped.
    fn mmap(&self, _vma: &NewMapping<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A VFIO device registered with the emulated-IOMMU backends (iommufd cdev
/// and the legacy group/container), owning the driver's state `T`.
///
/// Dropping it unregisters the device, which waits until every user has
/// closed it; `T` is dropped when the last reference to the C device goes.
///
/// # Invariants
///
/// `vdev` was allocated by `kx_vfio_alloc_device` with `OpsTable::<T>`, is
/// registered, and this object owns one reference to it. Its data pointer is
/// a leaked `Pin<KBox<T>>`, freed by the `release` callback.
pub struct Registration<T: Device> {
    vdev: NonNull<bindings::vfio_device>,
    _t: PhantomData<T>,
}

// SAFETY: The registration only hands out `&T`, and `T: Send + Sync`.
unsafe impl<T: Device> Send for Registration<T> {}
// SAFETY: See `Send`.
unsafe impl<T: Device> Sync for Registration<T> {}

impl<T: Device> Registration<T> {
    /// Creates the device state with `init` and registers a VFIO device for
    /// `parent` (the mdev's `struct device`).
    pub fn new(parent: &KDevice, init: impl PinInit<T, Error>) -> Result<Self> {
        let data = KBox::pin_init(init, GFP_KERNEL)?;
        // SAFETY: `parent` is a live device; the ops table is `'static`.
        let vdev = from_err_ptr(unsafe {
            bindings::kx_vfio_alloc_device(kx_device::as_raw(parent), OpsTable::<T>::build())
        })?;
        // SAFETY: `from_err_ptr` let only valid pointers through.
        let vdev = unsafe { NonNull::new_unchecked(vdev) };
        // SAFETY: The data is only ever used as a pinned `&T` and freed by `release`, so
        // it never moves.
        let data = KBox::into_raw(unsafe { Pin::into_inner_unchecked(data) });
        // SAFETY: `vdev` is a fresh, not yet registered `kx_vfio_device`.
        unsafe { bindings::kx_vfio_device_set_data(vdev.as_ptr(), data.cast()) };
        // SAFETY: `vdev` is fully initialised.
        let ret = unsafe { bindings::vfio_register_emulated_iommu_dev(vdev.as_ptr()) };
        if ret != 0 {
            // SAFETY: We own the only reference; `release` frees `data`.
            unsafe { bindings::kx_vfio_put_device(vdev.as_ptr()) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Registered, one reference owned, data set as described.
        Ok(Self {
            vdev,
            _t: PhantomData,
        })
    }

    /// The driver's state.
    pub fn data(&self) -> &T {
        // SAFETY: By the type invariant the device lives (we own a reference) and holds
        // its data.
        unsafe { data::<T>(self.vdev.as_ptr()) }
    }
}

impl<T: Device> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device is registered and we own a reference;
        // unregistering waits for all users to close it.
        unsafe {
            bindings::vfio_unregister_group_dev(self.vdev.as_ptr());
            bindings::kx_vfio_put_device(self.vdev.as_ptr());
        }
    }
}

/// Returns the driver data of `vdev`.
///
/// # Safety
///
/// `vdev` must be a live device of a [`Registration<T>`] whose `release`
/// callback has not run, for the returned lifetime.
unsafe fn data<'a, T: Device>(vdev: *mut bindings::vfio_device) -> &'a T {
    // SAFETY: Per the safety requirements the data pointer is a live `KBox<T>`.
    unsafe { &*bindings::kx_vfio_device_data(vdev).cast::<T>() }
}

/// An error as the negative `ssize_t` the VFS expects.
fn errno_isize(e: Error) -> isize {
    // CAST: errnos are small negative numbers.
    e.to_errno() as isize
}

/// A `read()`/`write()` of `ubuf` at the file position `*ppos`: runs `access`
/// at that offset and advances the position by what it transferred.
///
/// # Safety
///
/// `ppos` must be valid for reads and writes for the duration of the call.
unsafe fn access_at(
    ppos: *mut bindings::loff_t,
    ubuf: UserBuf,
    access: impl FnOnce(u64, UserBuf) -> Result<usize>,
) -> isize {
    // SAFETY: `ppos` is valid per the safety requirements.
    let pos = unsafe { *ppos };
    let Ok(offset) = u64::try_from(pos) else {
        return errno_isize(EINVAL);
    };
    match access(offset, ubuf) {
        Ok(n) => {
            // CAST: `n <= ubuf.len`, which the VFS bounds by `MAX_RW_COUNT`.
            // SAFETY: `ppos` is valid per the safety requirements.
            unsafe { *ppos = pos + n as bindings::loff_t };
            n as isize
        }
        Err(e) => errno_isize(e),
    }
}

/// The `vfio_device_ops` of a [`Device`] implementation, built at compile time.
struct OpsTable<T: Device>(PhantomData<T>);

impl<T: Device> OpsTable<T> {
    const OPS: bindings::vfio_device_ops = bindings::vfio_device_ops {
        release: Some(Self::release),
        #[cfg(CONFIG_IOMMUFD)]
        bind_iommufd: Some(bindings::vfio_iommufd_emulated_bind),
        #[cfg(CONFIG_IOMMUFD)]
        unbind_iommufd: Some(bindings::vfio_iommufd_emulated_unbind),
        #[cfg(CONFIG_IOMMUFD)]
        attach_ioas: Some(bindings::vfio_iommufd_emulated_attach_ioas),
        #[cfg(CONFIG_IOMMUFD)]
        detach_ioas: Some(bindings::vfio_iommufd_emulated_detach_ioas),
        open_device: if T::HAS_OPEN {
            Some(Self::open_device)
        } else {
            None
        },
        close_device: if T::HAS_CLOSE {
            Some(Self::close_device)
        } else {
            None
        },
        read: if T::HAS_READ { Some(Self::read) } else { None },
        write: if T::HAS_WRITE {
            Some(Self::write)
        } else {
            None
        },
        ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl)
        } else {
            None
        },
        get_region_info_caps: if T::HAS_REGION_INFO {
            Some(Self::get_region_info_caps)
        } else {
            None
        },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        // SAFETY: All-zero is a valid `vfio_device_ops`: null pointers and `None`s.
        ..unsafe { core::mem::zeroed() }
    };

    /// The table, with `'static` lifetime (it is a promoted constant).
    const fn build() -> &'static bindings::vfio_device_ops {
        &Self::OPS
    }

    /// `release`: frees the driver state with the C device.
    ///
    /// # Safety
    ///
    /// Called by the VFIO core when the last reference to `vdev` is dropped.
    unsafe extern "C" fn release(vdev: *mut bindings::vfio_device) {
        // SAFETY: `vdev` is ours and about to be freed.
        let data = unsafe { bindings::kx_vfio_device_data(vdev) }.cast::<T>();
        if !data.is_null() {
            // SAFETY: `data` is the `KBox<T>` leaked by `Registration::new`; no callback
            // can run any more.
            drop(unsafe { KBox::from_raw(data) });
        }
    }

    /// `open_device`: the first user opened the device.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live registered device of ours.
    unsafe extern "C" fn open_device(vdev: *mut bindings::vfio_device) -> c_int {
        // SAFETY: Per the callback contract.
        let dev = unsafe { data::<T>(vdev) };
        match dev.open() {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// `close_device`: the last user closed the device.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live registered device of ours.
    unsafe extern "C" fn close_device(vdev: *mut bindings::vfio_device) {
        // SAFETY: Per the callback contract.
        unsafe { data::<T>(vdev) }.close();
    }

    /// `read`: a `pread()` on the device file.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is live, `ppos` a valid file position.
    unsafe extern "C" fn read(
        vdev: *mut bindings::vfio_device,
        buf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract.
        let dev = unsafe { data::<T>(vdev) };
        let ubuf = UserBuf {
            ptr: UserPtr::from_ptr(buf.cast()),
            len: count,
        };
        // SAFETY: `ppos` is valid per the callback contract.
        unsafe { access_at(ppos, ubuf, |offset, ubuf| dev.read(offset, ubuf)) }
    }

    /// `write`: a `pwrite()` on the device file.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is live, `ppos` a valid file position.
    unsafe extern "C" fn write(
        vdev: *mut bindings::vfio_device,
        buf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract.
        let dev = unsafe { data::<T>(vdev) };
        let ubuf = UserBuf {
            ptr: UserPtr::from_ptr(buf.cast_mut().cast()),
            len: count,
        };
        // SAFETY: `ppos` is valid per the callback contract.
        unsafe { access_at(ppos, ubuf, |offset, ubuf| dev.write(offset, ubuf)) }
    }

    /// `ioctl`: a device ioctl the core does not handle itself.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live registered device of ours.
    unsafe extern "C" fn ioctl(
        vdev: *mut bindings::vfio_device,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: Per the callback contract.
        let dev = unsafe { data::<T>(vdev) };
        // `arg` is a user address for every VFIO device ioctl.
        match dev.ioctl(cmd, UserPtr::from_addr(arg)) {
            // CAST: `c_long` and `isize` are the same size on every kernel target.
            Ok(v) => v as c_long,
            // CAST: errnos fit any integer type.
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// `get_region_info_caps`: `VFIO_DEVICE_GET_REGION_INFO` after the core's argsz checks.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is live, `info` and `caps` valid for the call.
    unsafe extern "C" fn get_region_info_caps(
        vdev: *mut bindings::vfio_device,
        info: *mut bindings::vfio_region_info,
        caps: *mut bindings::vfio_info_cap,
    ) -> c_int {
        // SAFETY: Per the callback contract.
        let (dev, info, caps) = unsafe { (data::<T>(vdev), &mut *info, &mut *caps) };
        match dev.region_info(info.index, &mut InfoCaps { caps }) {
            Ok(r) => {
                info.offset = r.offset;
                info.size = r.size;
                info.flags = r.flags;
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// `mmap`: an `mmap()` of the device file.
    ///
    /// # Safety
    ///
    /// VFIO core callback from the device file's `mmap`: `vma` is being set up.
    unsafe extern "C" fn mmap(
        vdev: *mut bindings::vfio_device,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: Per the callback contract, with the mmap lock held for `vma`.
        let (dev, vma) = unsafe { (data::<T>(vdev), VmaNew::from_raw(vma)) };
        let mapping = NewMapping::new(vma);
        let res = dev.mmap(&mapping);
        mapping.finish(res)
    }
}
