// SPDX-License-Identifier: GPL-2.0

//! The VFIO and iommufd uapi: structures and constants from rust-vmm's
//! `vfio-bindings` (generated from `include/uapi/linux/vfio.h`), plus what
//! that crate cannot carry: the ioctl numbers (`_IO()` macros, which bindgen
//! does not translate), the migration states (an enum there) and the one
//! iommufd structure (`include/uapi/linux/iommufd.h`) a VFIO user needs.
//!
//! All the `unsafe` code of the tool is in this file: every ioctl goes
//! through [`ioctl_ptr`] / [`ioctl_int`] with a typed argument.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

pub use vfio_bindings::bindings::vfio as vb;

/// `_IO(VFIO_TYPE, VFIO_BASE + n)`: VFIO and iommufd ioctls carry no size
/// or direction.
const fn vfio(n: u32) -> libc::c_ulong {
    nix::request_code_none!(vb::VFIO_TYPE, vb::VFIO_BASE + n) as libc::c_ulong
}

pub const VFIO_SET_IOMMU: libc::c_ulong = vfio(2);
pub const VFIO_GROUP_GET_STATUS: libc::c_ulong = vfio(3);
pub const VFIO_GROUP_SET_CONTAINER: libc::c_ulong = vfio(4);
pub const VFIO_GROUP_GET_DEVICE_FD: libc::c_ulong = vfio(6);
pub const VFIO_DEVICE_GET_INFO: libc::c_ulong = vfio(7);
pub const VFIO_DEVICE_GET_REGION_INFO: libc::c_ulong = vfio(8);
pub const VFIO_DEVICE_RESET: libc::c_ulong = vfio(11);
pub const VFIO_DEVICE_QUERY_GFX_PLANE: libc::c_ulong = vfio(14);
pub const VFIO_DEVICE_FEATURE: libc::c_ulong = vfio(17);
pub const VFIO_DEVICE_BIND_IOMMUFD: libc::c_ulong = vfio(18);
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: libc::c_ulong = vfio(19);

/// `IOMMUFD_TYPE` is `';'`, like `VFIO_TYPE`; `IOMMUFD_CMD_IOAS_ALLOC` 0x81.
pub const IOMMU_IOAS_ALLOC: libc::c_ulong = nix::request_code_none!(b';', 0x81) as libc::c_ulong;

/// `struct iommu_ioas_alloc` (include/uapi/linux/iommufd.h).
#[repr(C)]
#[derive(Default)]
pub struct IommuIoasAlloc {
    pub size: u32,
    pub flags: u32,
    pub out_ioas_id: u32,
}

/// `enum vfio_device_mig_state`.
pub const STATE_ERROR: u32 = 0;
pub const STATE_STOP: u32 = 1;
pub const STATE_RUNNING: u32 = 2;
pub const STATE_STOP_COPY: u32 = 3;
pub const STATE_RESUMING: u32 = 4;

/// A migration state's name.
pub fn state_name(s: u32) -> String {
    match s {
        STATE_ERROR => "error".into(),
        STATE_STOP => "stop".into(),
        STATE_RUNNING => "running".into(),
        STATE_STOP_COPY => "stop-copy".into(),
        STATE_RESUMING => "resuming".into(),
        5 => "running-p2p".into(),
        6 => "pre-copy".into(),
        7 => "pre-copy-p2p".into(),
        n => format!("unknown ({n})"),
    }
}

/// `DRM_PLANE_TYPE_PRIMARY` and `_CURSOR` (include/uapi/drm/drm_mode.h).
pub const DRM_PLANE_TYPE_PRIMARY: u32 = 1;
pub const DRM_PLANE_TYPE_CURSOR: u32 = 2;

/// Marker for the plain-old-data argument structures an ioctl may read and
/// write in place.
///
/// # Safety
///
/// The type must be `repr(C)`, valid for any bit pattern, and be the
/// argument the kernel expects for the ioctls it is passed to (or a byte
/// buffer at least as large as the `argsz` it declares).
pub unsafe trait Pod {}
// SAFETY: All of these are `repr(C)` integer-only structures of the uapi.
unsafe impl Pod for vb::vfio_device_info {}
// SAFETY: As above.
unsafe impl Pod for vb::vfio_region_info {}
// SAFETY: As above.
unsafe impl Pod for vb::vfio_group_status {}
// SAFETY: As above.
unsafe impl Pod for vb::vfio_device_bind_iommufd {}
// SAFETY: As above.
unsafe impl Pod for vb::vfio_device_attach_iommufd_pt {}
// SAFETY: As above (the union holds two `u32`s).
unsafe impl Pod for vb::vfio_device_gfx_plane_info {}
// SAFETY: As above.
unsafe impl Pod for IommuIoasAlloc {}
// SAFETY: An integer: `VFIO_GROUP_SET_CONTAINER` reads the container's fd.
unsafe impl Pod for i32 {}
// SAFETY: A buffer of `u64`s: any bit pattern; the caller sets the `argsz`
// its first bytes hold to at most its length (see `Buf`).
unsafe impl Pod for [u64] {}

/// An ioctl whose argument is a pointer to `arg`; returns its
/// non-negative return value.
pub fn ioctl_ptr<T: Pod + ?Sized>(
    fd: BorrowedFd<'_>,
    req: libc::c_ulong,
    arg: &mut T,
) -> io::Result<i32> {
    // SAFETY: `fd` is an open descriptor; `arg` is valid for reads and
    // writes of its whole size, which by `Pod` is what the kernel accesses
    // for `req` (at most the `argsz` the structure declares).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, arg as *mut T as *mut libc::c_void) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An ioctl whose argument is an integer (or none).
pub fn ioctl_int(fd: BorrowedFd<'_>, req: libc::c_ulong, arg: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: `fd` is an open descriptor; these requests take an integer
    // argument (or ignore it) and access no user memory.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `VFIO_GROUP_GET_DEVICE_FD`: its argument is the device name, a C string;
/// the device file it opens.
pub fn group_get_device_fd(
    group: BorrowedFd<'_>,
    name: &std::ffi::CStr,
) -> io::Result<std::fs::File> {
    // SAFETY: `group` is an open descriptor; the kernel reads the
    // NUL-terminated `name` and nothing else.
    let r = unsafe { libc::ioctl(group.as_raw_fd(), VFIO_GROUP_GET_DEVICE_FD, name.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a descriptor the ioctl just installed for us, owned by no one else.
    Ok(std::fs::File::from(unsafe {
        std::os::fd::OwnedFd::from_raw_fd(r)
    }))
}

/// An 8-byte aligned buffer for the variable-length ioctls (region info
/// with capabilities, device features).
pub struct Buf(Vec<u64>);

impl Buf {
    /// A zeroed buffer of at least `len` bytes.
    pub fn new(len: usize) -> Self {
        Buf(vec![0; len.div_ceil(8)])
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }
    pub fn set_bytes(&mut self, at: usize, src: &[u8]) {
        let mut b = self.bytes();
        b[at..at + src.len()].copy_from_slice(src);
        for (w, c) in self.0.iter_mut().zip(b.chunks_exact(8)) {
            *w = u64::from_ne_bytes(c.try_into().expect("8 bytes"));
        }
    }
    pub fn words(&mut self) -> &mut [u64] {
        &mut self.0
    }
}

/// A little-endian (host order: VFIO is host-endian) integer at `at`.
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The symbolic name of an errno ("EBUSY").
pub fn errno_name(e: &io::Error) -> String {
    errno_name_of(e.raw_os_error().unwrap_or(0))
}

/// The symbolic name of errno `n` ("EBUSY"), or "errno N".
pub fn errno_name_of(n: i32) -> String {
    match nix::errno::Errno::from_raw(n) {
        nix::errno::Errno::UnknownErrno => format!("errno {n}"),
        e => format!("{e:?}"),
    }
}

/// A `vfio_device_gfx_plane_info` with `argsz` set and everything else 0.
pub fn plane_info(flags: u32, drm_plane_type: u32) -> vb::vfio_device_gfx_plane_info {
    vb::vfio_device_gfx_plane_info {
        argsz: std::mem::size_of::<vb::vfio_device_gfx_plane_info>() as u32,
        flags,
        drm_plane_type,
        drm_format: 0,
        drm_format_mod: 0,
        width: 0,
        height: 0,
        stride: 0,
        size: 0,
        x_pos: 0,
        y_pos: 0,
        x_hot: 0,
        y_hot: 0,
        __bindgen_anon_1: vb::vfio_device_gfx_plane_info__bindgen_ty_1 { region_index: 0 },
        reserved: 0,
    }
}

/// The plane's `region_index` / `dmabuf_id` (one `u32`, a union).
pub fn plane_id(p: &vb::vfio_device_gfx_plane_info) -> u32 {
    // SAFETY: Both members of the union are `u32`s at offset 0: reading
    // either is reading the same initialised four bytes.
    unsafe { p.__bindgen_anon_1.region_index }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes() {
        // include/uapi/linux/vfio.h: _IO(';', 100 + n); iommufd.h: _IO(';', 0x81).
        assert_eq!(VFIO_DEVICE_GET_INFO, 0x3b6b);
        assert_eq!(VFIO_DEVICE_FEATURE, 0x3b75);
        assert_eq!(VFIO_DEVICE_ATTACH_IOMMUFD_PT, 0x3b77);
        assert_eq!(IOMMU_IOAS_ALLOC, 0x3b81);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name_of(libc::EBUSY), "EBUSY");
        assert_eq!(errno_name_of(libc::EPROTONOSUPPORT), "EPROTONOSUPPORT");
        assert_eq!(errno_name_of(libc::EOPNOTSUPP), "EOPNOTSUPP");
        assert_eq!(errno_name_of(libc::ENOTTY), "ENOTTY");
        assert_eq!(errno_name_of(0), "errno 0");
        assert_eq!(errno_name_of(4095), "errno 4095");
    }
}
