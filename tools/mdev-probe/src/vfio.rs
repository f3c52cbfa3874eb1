// SPDX-License-Identifier: GPL-2.0

//! Opening an mdev through VFIO (iommufd cdev, else group/container) and
//! the queries the report is made of.

use crate::error::{Fail, Kind};
use crate::sysfs::Mdev;
use crate::uapi::{self, vb, Buf};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Interface {
    /// iommufd cdev if the device has one (its /dev/vfio/devices node),
    /// else group/container.
    Auto,
    /// /dev/vfio/devices/vfioN + /dev/iommu only.
    Cdev,
    /// /dev/vfio/N + /dev/vfio/vfio (VFIO_TYPE1v2_IOMMU) only.
    Group,
}

/// An open VFIO device and what keeps it open (dropped in field order: the
/// device first).
pub struct Device {
    pub file: File,
    _holders: Vec<OwnedFd>,
    /// How it was opened, for the report.
    pub how: String,
}

fn open_rw(p: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(p)
}

fn io_fail(what: String) -> impl FnOnce(io::Error) -> Fail {
    move |e| Fail::io(Kind::Other, what, &e)
}

fn open_cdev(m: &Mdev) -> Result<Option<Device>, Fail> {
    let dir = m.path.join("vfio-dev");
    let Ok(mut entries) = fs::read_dir(&dir) else {
        return Ok(None);
    };
    let Some(Ok(ent)) = entries.next() else {
        return Ok(None);
    };
    let node = Path::new("/dev/vfio/devices").join(ent.file_name());
    // vfio-dev/vfioN is there on every kernel; its device node only with
    // CONFIG_VFIO_DEVICE_CDEV (which needs IOMMUFD: Debian's kernel has
    // neither).
    if !node.exists() {
        return Ok(None);
    }
    let file = open_rw(&node).map_err(io_fail(format!("opening {}", node.display())))?;
    let iommu = open_rw(Path::new("/dev/iommu")).map_err(io_fail("opening /dev/iommu".into()))?;
    let mut bind = vb::vfio_device_bind_iommufd {
        argsz: std::mem::size_of::<vb::vfio_device_bind_iommufd>() as u32,
        iommufd: std::os::fd::AsRawFd::as_raw_fd(&iommu),
        ..Default::default()
    };
    uapi::ioctl_ptr(file.as_fd(), uapi::VFIO_DEVICE_BIND_IOMMUFD, &mut bind).map_err(|e| {
        // The cdev refuses a second user with EINVAL (only the group path
        // may open a device twice), or EBUSY when the group holds it.
        if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EBUSY) {
            Fail::with_errno(
                Kind::Busy,
                format!(
                    "VFIO_DEVICE_BIND_IOMMUFD on {}: {e}: the device is in use (opened by QEMU or another program); close it first",
                    node.display()
                ),
                &e,
            )
        } else {
            Fail::io(Kind::Other, format!("VFIO_DEVICE_BIND_IOMMUFD on {}", node.display()), &e)
        }
    })?;
    let mut alloc = uapi::IommuIoasAlloc {
        size: std::mem::size_of::<uapi::IommuIoasAlloc>() as u32,
        ..Default::default()
    };
    uapi::ioctl_ptr(iommu.as_fd(), uapi::IOMMU_IOAS_ALLOC, &mut alloc)
        .map_err(io_fail("IOMMU_IOAS_ALLOC".into()))?;
    let mut attach = vb::vfio_device_attach_iommufd_pt {
        argsz: std::mem::size_of::<vb::vfio_device_attach_iommufd_pt>() as u32,
        pt_id: alloc.out_ioas_id,
        ..Default::default()
    };
    uapi::ioctl_ptr(
        file.as_fd(),
        uapi::VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        &mut attach,
    )
    .map_err(io_fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT".into()))?;
    Ok(Some(Device {
        file,
        _holders: vec![iommu.into()],
        how: format!(
            "iommufd cdev {} + /dev/iommu (IOAS {})",
            node.display(),
            alloc.out_ioas_id
        ),
    }))
}

fn open_group(m: &Mdev) -> Result<Device, Fail> {
    let group = fs::read_link(m.path.join("iommu_group"))
        .map_err(|e| Fail::io(Kind::Other, format!("{}/iommu_group", m.path.display()), &e))?;
    let n = group
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let gnode = Path::new("/dev/vfio").join(&n);
    let container =
        open_rw(Path::new("/dev/vfio/vfio")).map_err(io_fail("opening /dev/vfio/vfio".into()))?;
    let gfile = open_rw(&gnode).map_err(io_fail(format!("opening {}", gnode.display())))?;
    let mut status = vb::vfio_group_status {
        argsz: std::mem::size_of::<vb::vfio_group_status>() as u32,
        flags: 0,
    };
    uapi::ioctl_ptr(gfile.as_fd(), uapi::VFIO_GROUP_GET_STATUS, &mut status)
        .map_err(io_fail("VFIO_GROUP_GET_STATUS".into()))?;
    if status.flags & vb::VFIO_GROUP_FLAGS_VIABLE == 0 {
        return Err(Fail::new(
            Kind::Other,
            format!("{}: group not viable", gnode.display()),
        ));
    }
    let mut cfd = std::os::fd::AsRawFd::as_raw_fd(&container);
    uapi::ioctl_ptr(gfile.as_fd(), uapi::VFIO_GROUP_SET_CONTAINER, &mut cfd)
        .map_err(io_fail("VFIO_GROUP_SET_CONTAINER".into()))?;
    uapi::ioctl_int(
        container.as_fd(),
        uapi::VFIO_SET_IOMMU,
        vb::VFIO_TYPE1v2_IOMMU as libc::c_ulong,
    )
    .map_err(io_fail("VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)".into()))?;
    let name =
        CString::new(m.uuid.clone()).map_err(|_| Fail::new(Kind::Other, "bad UUID".into()))?;
    let file = uapi::group_get_device_fd(gfile.as_fd(), &name)
        .map_err(io_fail(format!("VFIO_GROUP_GET_DEVICE_FD({})", m.uuid)))?;
    Ok(Device {
        file,
        _holders: vec![gfile.into(), container.into()],
        how: format!(
            "group {} + container /dev/vfio/vfio (VFIO_TYPE1v2_IOMMU)",
            gnode.display()
        ),
    })
}

impl Device {
    pub fn open(m: &Mdev, how: Interface) -> Result<Device, Fail> {
        match how {
            Interface::Group => open_group(m),
            Interface::Cdev => open_cdev(m)?.ok_or_else(|| {
                Fail::new(
                    Kind::Other,
                    format!(
                        "{} has no VFIO cdev (no vfio-dev/, or no /dev/vfio/devices node: a kernel without VFIO_DEVICE_CDEV)",
                        m.path.display()
                    ),
                )
            }),
            Interface::Auto => match open_cdev(m) {
                Ok(Some(d)) => Ok(d),
                Ok(None) => open_group(m),
                // Busy on the cdev: the group path says so too (EBUSY),
                // or opens a device only the group path may share.
                Err(f) if f.kind == Kind::Busy => match open_group(m) {
                    Ok(d) => Ok(d),
                    Err(g) if g.kind == Kind::Busy => Err(g),
                    Err(_) => Err(f),
                },
                Err(f) => Err(f),
            },
        }
    }

    pub fn info(&self) -> io::Result<vb::vfio_device_info> {
        let mut info = vb::vfio_device_info {
            argsz: std::mem::size_of::<vb::vfio_device_info>() as u32,
            ..Default::default()
        };
        uapi::ioctl_ptr(self.file.as_fd(), uapi::VFIO_DEVICE_GET_INFO, &mut info)?;
        Ok(info)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` with its capability chain: the info
    /// and the whole buffer (capabilities at `cap_offset`).
    pub fn region_info(&self, index: u32) -> io::Result<(vb::vfio_region_info, Vec<u8>)> {
        let base = std::mem::size_of::<vb::vfio_region_info>();
        let mut len = base;
        for _ in 0..2 {
            let mut buf = Buf::new(len);
            let mut head = Vec::new();
            head.extend_from_slice(&(len as u32).to_ne_bytes());
            head.extend_from_slice(&0u32.to_ne_bytes());
            head.extend_from_slice(&index.to_ne_bytes());
            buf.set_bytes(0, &head);
            uapi::ioctl_ptr(
                self.file.as_fd(),
                uapi::VFIO_DEVICE_GET_REGION_INFO,
                buf.words(),
            )?;
            let b = buf.bytes();
            let argsz = uapi::u32_at(&b, 0).unwrap_or(0) as usize;
            let info = vb::vfio_region_info {
                argsz: argsz as u32,
                flags: uapi::u32_at(&b, 4).unwrap_or(0),
                index: uapi::u32_at(&b, 8).unwrap_or(0),
                cap_offset: uapi::u32_at(&b, 12).unwrap_or(0),
                size: uapi::u64_at(&b, 16).unwrap_or(0),
                offset: uapi::u64_at(&b, 24).unwrap_or(0),
            };
            if argsz > len && info.flags & vb::VFIO_REGION_INFO_FLAG_CAPS != 0 {
                len = argsz;
                continue;
            }
            return Ok((info, b));
        }
        Err(io::Error::other("region info grew twice"))
    }

    pub fn read_u32(&self, offset: u64) -> io::Result<u32> {
        let mut b = [0u8; 4];
        let n = self.file.read_at(&mut b, offset)?;
        if n != 4 {
            return Err(io::Error::other(format!("short read ({n} bytes)")));
        }
        Ok(u32::from_ne_bytes(b))
    }

    pub fn query_plane(
        &self,
        flags: u32,
        plane: u32,
    ) -> io::Result<vb::vfio_device_gfx_plane_info> {
        let mut p = uapi::plane_info(flags, plane);
        uapi::ioctl_ptr(self.file.as_fd(), uapi::VFIO_DEVICE_QUERY_GFX_PLANE, &mut p)?;
        Ok(p)
    }

    pub fn reset(&self) -> io::Result<()> {
        uapi::ioctl_int(self.file.as_fd(), uapi::VFIO_DEVICE_RESET, 0).map(|_| ())
    }

    /// `VFIO_DEVICE_FEATURE` with `flags` (op | feature) and `payload`;
    /// returns the payload as the kernel left it.
    pub fn feature(&self, flags: u32, payload: &[u8]) -> io::Result<Vec<u8>> {
        let len = 8 + payload.len();
        let mut buf = Buf::new(len);
        let mut head = Vec::with_capacity(len);
        head.extend_from_slice(&(len as u32).to_ne_bytes());
        head.extend_from_slice(&flags.to_ne_bytes());
        head.extend_from_slice(payload);
        buf.set_bytes(0, &head);
        uapi::ioctl_ptr(self.file.as_fd(), uapi::VFIO_DEVICE_FEATURE, buf.words())?;
        Ok(buf.bytes()[8..len].to_vec())
    }

    pub fn mig_state(&self) -> io::Result<u32> {
        let out = self.feature(
            vb::VFIO_DEVICE_FEATURE_GET | vb::VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
            &[0u8; 8],
        )?;
        Ok(uapi::u32_at(&out, 0).unwrap_or(u32::MAX))
    }

    /// Moves to `state`; the data fd it returns (STOP_COPY, RESUMING).
    pub fn set_mig_state(&self, state: u32) -> io::Result<Option<File>> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&state.to_ne_bytes());
        payload.extend_from_slice(&(-1i32).to_ne_bytes());
        let out = self.feature(
            vb::VFIO_DEVICE_FEATURE_SET | vb::VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
            &payload,
        )?;
        let fd = uapi::u32_at(&out, 4).unwrap_or(u32::MAX) as i32;
        if fd < 0 {
            return Ok(None);
        }
        // SAFETY: The kernel just installed `fd` for us; no one else owns it.
        Ok(Some(File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Runs the device through STOP -> STOP_COPY, reads the whole stream
    /// (at most `limit` bytes) and goes back to RUNNING: the stream's
    /// first `keep` bytes and its length.
    pub fn save_stream(&self, keep: usize, limit: u64) -> io::Result<(Vec<u8>, u64)> {
        let res = (|| {
            self.set_mig_state(uapi::STATE_STOP)?;
            let mut data = self
                .set_mig_state(uapi::STATE_STOP_COPY)?
                .ok_or_else(|| io::Error::other("STOP_COPY returned no data fd"))?;
            let mut head = Vec::new();
            let mut total = 0u64;
            let mut chunk = vec![0u8; 1 << 20];
            loop {
                let n = data.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                if head.len() < keep {
                    let take = n.min(keep - head.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                total += n as u64;
                if total > limit {
                    return Err(io::Error::other(format!(
                        "stream longer than {limit} bytes"
                    )));
                }
            }
            Ok((head, total))
        })();
        // Back to RUNNING whatever happened (STOP_COPY -> STOP -> RUNNING;
        // from ERROR only a reset leaves).
        let back = self
            .set_mig_state(uapi::STATE_RUNNING)
            .map(|_| ())
            .or_else(|_| self.reset());
        match (res, back) {
            (Ok(r), Ok(())) => Ok(r),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(io::Error::other(format!("returning to RUNNING: {e}"))),
        }
    }

    /// Loads `stream` through STOP -> RESUMING -> STOP, then RUNNING (or a
    /// reset if the device refused it): what the kernel said.
    pub fn load_stream(&self, stream: &[u8]) -> io::Result<()> {
        let res = (|| {
            self.set_mig_state(uapi::STATE_STOP)?;
            let mut data = self
                .set_mig_state(uapi::STATE_RESUMING)?
                .ok_or_else(|| io::Error::other("RESUMING returned no data fd"))?;
            std::io::Write::write_all(&mut data, stream)?;
            drop(data);
            self.set_mig_state(uapi::STATE_STOP)?;
            Ok(())
        })();
        if res.is_ok() {
            self.set_mig_state(uapi::STATE_RUNNING)?;
        } else {
            let _ = self.reset();
        }
        res
    }

    /// The whole stream of this device (STOP_COPY), then back to RUNNING.
    pub fn save_all(&self, limit: u64) -> io::Result<Vec<u8>> {
        let (v, n) = self.save_stream(limit as usize, limit)?;
        if v.len() as u64 != n {
            return Err(io::Error::other("stream longer than the limit"));
        }
        Ok(v)
    }
}
