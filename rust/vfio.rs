// SPDX-License-Identifier: GPL-2.0

//! VFIO devices backed by an emulated IOMMU (mediated devices).
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h)
//!
//! A [`Device<T>`] is one C allocation, like the kernel crate's
//! `drm::Device`: the C `struct vfio_device` first, then the driver's data
//! `T`, pin-initialised in place. It is reference counted ([`ARef`]); `T` is
//! dropped by the C `release` callback, when the last reference goes, after
//! every file descriptor is closed. The VFIO core routes the device file's
//! read, write, mmap and ioctl calls to `T`'s [`DeviceOps`], which receive
//! the `&Device<T>`.
//!
//! Only this layer creates and registers devices: the mdev probe path
//! ([`super::mdev`]) does, for the mdev being probed, and unregisters it in
//! `remove`. Drivers see devices only in their callbacks.

use super::{
    bindings, device as kx_device, page_ref::PageLock, uaccess::UserWriter, vfio_ops::VfioOps,
    vma::NewMapping,
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};
use kernel::{
    device::Device as KDevice,
    error::{from_err_ptr, VTABLE_DEFAULT_ERROR},
    mm::virt::VmaNew,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    transmute::{AsBytes, FromBytes},
    types::Opaque,
    uaccess::{UserSlice, UserSliceReader},
};

/// Region flag: the region can be read.
pub const REGION_READ: u32 = bindings::VFIO_REGION_INFO_FLAG_READ;
/// Region flag: the region can be written.
pub const REGION_WRITE: u32 = bindings::VFIO_REGION_INFO_FLAG_WRITE;
/// Region flag: the region can be mmapped.
pub const REGION_MMAP: u32 = bindings::VFIO_REGION_INFO_FLAG_MMAP;
/// Region flag: the region info has a capability chain.
pub const REGION_CAPS: u32 = bindings::VFIO_REGION_INFO_FLAG_CAPS;

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
    #[inline]
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
    bindings::vfio_precopy_info,
);

/// The operations of a VFIO device, implemented by its driver data `T`;
/// each receives the [`Device<T>`].
///
/// Offsets are positions in the device file, as `pread()`/`pwrite()` and
/// `mmap()` see them; which region an offset belongs to is the driver's
/// region layout (see [`DeviceOps::region_info`]).
#[vtable]
pub trait DeviceOps: Send + Sync + Sized + 'static {
    /// Live migration: the tables of a type implementing
    /// `migration::Migrate` (`VfioOps::new()`), installed before the device
    /// is registered; `None` for a device that does not migrate.
    const MIGRATION: Option<VfioOps<Self>> = None;

    /// The first user opened the device.
    fn open(_dev: &Device<Self>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The last user closed the device.
    fn close(_dev: &Device<Self>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `pread()` at `offset` into `out`. What the call wrote to `out` is
    /// what the read returns (a short read writes less); on an error the
    /// read fails, whatever was written.
    fn read(_dev: &Device<Self>, _offset: u64, _out: &mut UserWriter) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `pwrite()` at `offset` from `data`. What the call consumed of `data`
    /// is what the write returns.
    fn write(_dev: &Device<Self>, _offset: u64, _data: &mut UserSliceReader) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// A device ioctl other than `VFIO_DEVICE_GET_REGION_INFO`.
    fn ioctl(_dev: &Device<Self>, _cmd: u32, _arg: UserPtr) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for region `index`; capabilities go to `caps`.
    fn region_info(
        _dev: &Device<Self>,
        _index: u32,
        _caps: &mut InfoCaps<'_>,
    ) -> Result<RegionInfo> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `mmap()` of the device file; `vma.pgoff()` selects what is mapped.
    fn mmap(_dev: &Device<Self>, _vma: &NewMapping<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A VFIO device with driver data `T`: one allocation holding the C
/// `struct vfio_device` and `T`.
///
/// It holds a reference on its parent (the mdev's `struct device`) for its
/// whole life, as `drm_dev_init()` does: the VFIO core only holds one while
/// the device is registered, and an `ARef<Device<T>>` (an exported dma-buf,
/// a migration data file) may outlive that and the mdev's removal.
///
/// # Invariants
///
/// `vdev` was allocated by `_vfio_alloc_device()` for a `Device<T>` (so
/// `self` is that allocation), `data` and `parent` are initialised (`parent`
/// is `vdev->dev`), and the device's ops are `OpsTable::<T>::OPS`, whose
/// `release` drops `data`, then `parent`. Instances only exist behind
/// references to a live device.
#[repr(C)]
#[pin_data]
pub struct Device<T: DeviceOps> {
    vdev: Opaque<bindings::vfio_device>,
    parent: ARef<KDevice>,
    #[pin]
    data: T,
}

/// Does not compile unless a `Device<T>` owns a counted reference on its
/// parent, the one [`Device::parent`] borrows.
fn _assert_device_owns_parent_ref<T: DeviceOps>(dev: &Device<T>) -> &ARef<KDevice> {
    &dev.parent
}

// SAFETY: The C device is reference counted with atomics and may be released from any thread;
// `T: Send + Sync`.
unsafe impl<T: DeviceOps> Send for Device<T> {}
// SAFETY: `&Device<T>` only gives `&T` (which is `Sync`) and thread-safe C calls.
unsafe impl<T: DeviceOps> Sync for Device<T> {}

// SAFETY: `get_device()`/`put_device()` on the embedded `struct device` keep the allocation
// alive; the last `put_device()` runs `release`, which drops `T`, and frees it.
unsafe impl<T: DeviceOps> AlwaysRefCounted for Device<T> {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: `self` is live, so its reference count is non-zero.
        unsafe { bindings::kx_vfio_get_device(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference, which is given up here.
        unsafe { bindings::kx_vfio_put_device(obj.as_ptr().cast()) };
    }
}

impl<T: DeviceOps> Deref for Device<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: DeviceOps> Device<T> {
    /// Allocates a device for `parent` (the mdev's `struct device`) with its
    /// data initialised by `init`; not yet registered.
    fn new(parent: &KDevice, init: impl PinInit<T, Error>) -> Result<ARef<Self>> {
        const {
            // `_vfio_alloc_device()` kvzalloc()s: `kmalloc()`'s minimum alignment.
            assert!(core::mem::align_of::<Self>() <= bindings::ARCH_KMALLOC_MINALIGN);
            // `vfio_alloc_device()` requires the C struct at offset 0.
            assert!(core::mem::offset_of!(Self, vdev) == 0);
        };
        // Until `data` is initialised the device has ops without `release`, so a failed
        // init frees the allocation without dropping an uninitialised `T`.
        // SAFETY: `parent` is a live device; the ops table is `'static`.
        let vdev = from_err_ptr(unsafe {
            bindings::_vfio_alloc_device(
                core::mem::size_of::<Self>(),
                kx_device::as_raw(parent),
                OpsTable::<T>::ALLOC_OPS_REF,
            )
        })?;
        let this = vdev.cast::<Self>();
        // SAFETY: `this` is the fresh, zeroed allocation of `size_of::<Self>()` bytes, private
        // to us; `data` is its field and never moves (the allocation is freed in place).
        let data = unsafe { &raw mut (*this).data };
        // SAFETY: `data` is valid for writes and pinned, see above.
        if let Err(e) = unsafe { pin_init::raw_try_init(data, init) } {
            // SAFETY: We own the only reference; `release` is not set, so nothing is dropped.
            unsafe { bindings::kx_vfio_put_device(vdev) };
            return Err(e);
        }
        // The device's own reference on its parent, dropped by `release` (after `data`).
        // SAFETY: `this` is still private to us; `parent` is its field, not initialised yet.
        unsafe { (&raw mut (*this).parent).write(ARef::from(parent)) };
        // SAFETY: `vdev` is still private to us; from now on `release` drops `data` and
        // `parent`.
        unsafe { bindings::kx_vfio_device_set_ops(vdev, OpsTable::<T>::OPS_REF) };
        if let Some(mig) = T::MIGRATION {
            // SAFETY: `vdev` is not registered yet; the tables are `'static` and, by the
            // invariant of `VfioOps<T>`, made for a `Device<T>`, which this is.
            unsafe {
                bindings::kx_vfio_device_set_migration(
                    vdev,
                    mig.flags(),
                    mig.mig_ops(),
                    mig.log_ops(),
                )
            };
        }
        // SAFETY: The allocation's initial reference becomes the `ARef`'s.
        // INVARIANT: Allocated for `Self` with `vdev->dev` set to `parent` by
        // `_vfio_alloc_device()`, `data` and `parent` initialised, final ops set.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(this)) })
    }

    /// The C `struct vfio_device`.
    fn as_raw(&self) -> *mut bindings::vfio_device {
        self.vdev.get()
    }

    /// The `struct device` of the mdev this device was created for. Valid
    /// as long as the device is, even after the mdev was removed: the device
    /// holds a reference on it.
    pub fn parent(&self) -> &KDevice {
        &self.parent
    }

    /// The driver data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The user mappings of the device's files, to write-protect pages in.
    pub fn user_mappings(&self) -> UserMappings<'_> {
        // INVARIANT: The device is live for `'_`.
        UserMappings {
            vdev: self.as_raw(),
            _dev: PhantomData,
        }
    }

    /// Whether user space opted in to `VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2`.
    pub(in crate::kernel_ext) fn precopy_info_v2(&self) -> bool {
        // SAFETY: `self` is a live device; the flag is a plain byte the core sets.
        unsafe { bindings::kx_vfio_device_precopy_info_v2(self.as_raw()) }
    }

    /// The next single arc from `cur` towards `new` (`vfio_mig_get_next_state()`),
    /// by the device's migration flags; `EINVAL` if `new` cannot be reached.
    pub(in crate::kernel_ext) fn mig_next_state(
        &self,
        cur: bindings::vfio_device_mig_state,
        new: bindings::vfio_device_mig_state,
    ) -> Result<bindings::vfio_device_mig_state> {
        let mut next = cur;
        // SAFETY: `self` is a live device; `next` is valid for writes.
        kernel::error::to_result(unsafe {
            bindings::vfio_mig_get_next_state(self.as_raw(), cur, new, &mut next)
        })?;
        Ok(next)
    }

    /// The `Device<T>` of one of our C devices.
    ///
    /// # Safety
    ///
    /// `vdev` must be the `vfio_device` of a live `Device<T>` for `'a`.
    pub(in crate::kernel_ext) unsafe fn from_raw<'a>(vdev: *mut bindings::vfio_device) -> &'a Self {
        // SAFETY: By the type invariant the C struct is at offset 0 of the `Device<T>`, which
        // is live per the safety requirements.
        unsafe { &*vdev.cast::<Self>() }
    }
}

/// Every user mapping of one VFIO device's files (they all share the
/// device inode's address space, however the device was opened).
///
/// # Invariants
///
/// `vdev` is a live `vfio_device` for `'a`.
pub struct UserMappings<'a> {
    vdev: *mut bindings::vfio_device,
    _dev: PhantomData<&'a ()>,
}

impl UserMappings<'_> {
    /// Write-protects the `locked` page, mapped at file page offset `pgoff`,
    /// in every shared user mapping of the device: the next write through any
    /// of them faults (and is notified to a VMA with `page_mkwrite`, see
    /// `vm_fault`). The page lock orders this with a notified write in flight.
    ///
    /// Sound for any arguments: it only lowers the permissions of page table
    /// entries that map exactly `page` at `pgoff` in the device's files, and
    /// a later access faults and is served by the mapping's own handler.
    #[inline]
    pub fn write_protect(&self, pgoff: usize, locked: &PageLock<'_>) {
        // SAFETY: By the type invariant `vdev` is live (its inode with it); the page is live
        // (its `PageRef` is borrowed by the lock) and locked.
        unsafe {
            bindings::kx_vfio_device_wrprotect_page(self.vdev, pgoff, locked.page().as_ptr())
        };
    }

    /// Removes the file pages `pgoff..pgoff + pages` of the device from every
    /// user mapping (`unmap_mapping_range()`): the next access faults and is
    /// served by the mapping's handler, which maps what the device has now.
    ///
    /// Sound for any arguments: it only removes page table entries (each put
    /// its page reference); a mapping with no fault handler then faults with
    /// `SIGBUS`, a user-visible error, not a kernel one.
    #[inline]
    pub fn zap(&self, pgoff: usize, pages: usize) {
        // SAFETY: By the type invariant `vdev` is live (its inode with it).
        unsafe { bindings::kx_vfio_device_zap_range(self.vdev, pgoff, pages) };
    }
}

/// A VFIO device registered with the emulated-IOMMU backends (iommufd cdev
/// and the legacy group/container), reachable through
/// `/dev/vfio/devices/vfioN` and its group.
///
/// Dropping it unregisters the device, which waits until every user has
/// closed it, and drops the registration's reference.
///
/// # Invariants
///
/// `dev` is registered, by this object.
pub struct Registration<T: DeviceOps> {
    dev: ARef<Device<T>>,
}

impl<T: DeviceOps> Registration<T> {
    /// Creates the device of the mdev `parent` with data from `init` and
    /// registers it. Only the mdev probe path calls this.
    pub(in crate::kernel_ext) fn new(
        parent: &KDevice,
        init: impl PinInit<T, Error>,
    ) -> Result<Self> {
        let dev = Device::new(parent, init)?;
        // SAFETY: `dev` is fully initialised and not registered.
        kernel::error::to_result(unsafe {
            bindings::vfio_register_emulated_iommu_dev(dev.as_raw())
        })?;
        // INVARIANT: Registered just above.
        Ok(Self { dev })
    }

    /// The device.
    pub fn device(&self) -> &Device<T> {
        &self.dev
    }

    /// Leaks the registration as a pointer for a C `drvdata` slot.
    pub(in crate::kernel_ext) fn into_raw(self) -> *mut core::ffi::c_void {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so its `ARef` may be moved out.
        let dev = unsafe { core::ptr::read(&this.dev) };
        ARef::into_raw(dev).as_ptr().cast()
    }

    /// Takes back a registration leaked by [`Registration::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_raw` and not have been taken back yet.
    pub(in crate::kernel_ext) unsafe fn from_raw(ptr: *mut core::ffi::c_void) -> Self {
        // SAFETY: Per the safety requirements `ptr` is a leaked, registered `ARef<Device<T>>`.
        let dev = unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast::<Device<T>>())) };
        // INVARIANT: Still registered.
        Self { dev }
    }

    /// The device of a registration leaked by [`Registration::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_raw` and not be taken back for `'a`.
    pub(in crate::kernel_ext) unsafe fn borrow_raw<'a>(
        ptr: *mut core::ffi::c_void,
    ) -> &'a Device<T> {
        // SAFETY: Per the safety requirements the leaked reference keeps the device alive.
        unsafe { &*ptr.cast::<Device<T>>() }
    }
}

impl<T: DeviceOps> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device is registered by us; unregistering waits
        // for all users to close it.
        unsafe { bindings::vfio_unregister_group_dev(self.dev.as_raw()) };
    }
}

/// An error as the negative `ssize_t` the VFS expects.
fn errno_isize(e: Error) -> isize {
    // CAST: errnos are small negative numbers.
    e.to_errno() as isize
}

/// A `read()`/`write()` of `count` bytes at the file position `*ppos`: runs
/// `access` at that offset and advances the position by what it transferred,
/// which it reports as the bytes of the user buffer it consumed.
///
/// # Safety
///
/// `ppos` must be valid for reads and writes for the duration of the call.
unsafe fn access_at(
    ppos: *mut bindings::loff_t,
    count: usize,
    access: impl FnOnce(u64) -> Result<usize>,
) -> isize {
    // SAFETY: `ppos` is valid per the safety requirements.
    let pos = unsafe { *ppos };
    let Ok(offset) = u64::try_from(pos) else {
        return errno_isize(EINVAL);
    };
    match access(offset) {
        Ok(left) => {
            // The user buffer only shrinks as it is consumed; anything else is a bug of ours.
            let Some(done) = count.checked_sub(left) else {
                return errno_isize(EIO);
            };
            // CAST: `done <= count`, which the VFS bounds by `MAX_RW_COUNT`.
            let done = done as isize;
            // SAFETY: `ppos` is valid per the safety requirements.
            unsafe { *ppos = pos + done as bindings::loff_t };
            done
        }
        Err(e) => errno_isize(e),
    }
}

/// The `vfio_device_ops` of a [`DeviceOps`] implementation, built at compile time.
struct OpsTable<T: DeviceOps>(PhantomData<T>);

impl<T: DeviceOps> OpsTable<T> {
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

    /// The ops a device has while its data is being initialised: no `release`.
    const ALLOC_OPS: bindings::vfio_device_ops = bindings::vfio_device_ops {
        release: None,
        ..Self::OPS
    };

    /// `'static` references to the tables (promoted constants).
    const OPS_REF: &'static bindings::vfio_device_ops = &Self::OPS;
    const ALLOC_OPS_REF: &'static bindings::vfio_device_ops = &Self::ALLOC_OPS;

    /// `release`: drops the driver data, then the reference on the parent;
    /// the VFIO core frees the allocation.
    ///
    /// # Safety
    ///
    /// Called by the VFIO core once, when the last reference to `vdev` is dropped.
    unsafe extern "C" fn release(vdev: *mut bindings::vfio_device) {
        let dev = vdev.cast::<Device<T>>();
        // SAFETY: `vdev` is a `Device<T>` (only its ops table has this callback) whose data is
        // initialised (the table is set after that); nothing uses it any more.
        unsafe { core::ptr::drop_in_place(&raw mut (*dev).data) };
        // SAFETY: `parent` was initialised before the table was set and is dropped once,
        // here, after the data (whose drop may still use `parent()`); the VFIO core does not
        // use `vdev->dev` after `release`.
        unsafe { core::ptr::drop_in_place(&raw mut (*dev).parent) };
    }

    /// `open_device`: the first user opened the device.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live registered device of ours.
    unsafe extern "C" fn open_device(vdev: *mut bindings::vfio_device) -> c_int {
        // SAFETY: Per the callback contract.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        match T::open(dev) {
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
        T::close(unsafe { Device::<T>::from_raw(vdev) });
    }

    /// `read`: a `pread()` on the device file.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is live, `ppos` a valid file position, `buf` the user
    /// buffer of `count` bytes.
    unsafe extern "C" fn read(
        vdev: *mut bindings::vfio_device,
        buf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let mut out = UserWriter::new(UserPtr::from_ptr(buf.cast()), count);
        // SAFETY: `ppos` is valid per the callback contract.
        unsafe {
            access_at(ppos, count, |offset| {
                T::read(dev, offset, &mut out)?;
                Ok(out.len())
            })
        }
    }

    /// `write`: a `pwrite()` on the device file.
    ///
    /// # Safety
    ///
    /// VFIO core callback: `vdev` is live, `ppos` a valid file position, `buf` the user
    /// buffer of `count` bytes.
    unsafe extern "C" fn write(
        vdev: *mut bindings::vfio_device,
        buf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let mut data = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
        // SAFETY: `ppos` is valid per the callback contract.
        unsafe {
            access_at(ppos, count, |offset| {
                T::write(dev, offset, &mut data)?;
                Ok(data.len())
            })
        }
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
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        // `arg` is a user address for every VFIO device ioctl.
        match T::ioctl(dev, cmd, UserPtr::from_addr(arg)) {
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
        let (dev, info, caps) = unsafe { (Device::<T>::from_raw(vdev), &mut *info, &mut *caps) };
        match T::region_info(dev, info.index, &mut InfoCaps { caps }) {
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
        let (dev, vma) = unsafe { (Device::<T>::from_raw(vdev), VmaNew::from_raw(vma)) };
        let mapping = NewMapping::new(vma);
        let res = T::mmap(dev, &mapping);
        mapping.finish(res)
    }
}
