// SPDX-License-Identifier: GPL-2.0

//! The state of one mdpy device and its VFIO operations.

use crate::{
    kernel_ext::{
        bindings, mdev,
        pci_config::{self, ConfigSpace, Identity},
        vfio::{self, UserBuf},
        vma::NewMapping,
        vmalloc::UserBuffer,
    },
    regions::{self, Target},
    Mode,
};
use kernel::{new_mutex, prelude::*, sync::Mutex};

/// PCI identity, from `samples/vfio-mdev/mdpy-defs.h`.
const IDENTITY: Identity = Identity {
    vendor: 0x1b36,           // PCI_VENDOR_ID_REDHAT
    device: 0x000f,           // MDPY_PCI_DEVICE_ID
    subsystem_vendor: 0x1af4, // PCI_SUBVENDOR_ID_REDHAT_QUMRANET
    subsystem: 0x1100,        // PCI_SUBDEVICE_ID_QEMU
    // CAST: PCI class codes are 16-bit.
    class: bindings::PCI_CLASS_DISPLAY_OTHER as u16,
    revision: 0x01,
};

/// The vendor capability that tells the guest driver the mode.
const VENDORCAP_OFFSET: u8 = 0x40;
const VENDORCAP_SIZE: u8 = 0x10;
const FORMAT_OFFSET: usize = VENDORCAP_OFFSET as usize + 0x04;
const WIDTH_OFFSET: usize = VENDORCAP_OFFSET as usize + 0x08;
const HEIGHT_OFFSET: usize = VENDORCAP_OFFSET as usize + 0x0c;

/// One mdpy device.
#[pin_data]
pub(crate) struct MdpyDevice {
    ty: &'static mdev::Type<Mode>,
    /// BAR0: the framebuffer, shared with user mappings.
    fb: UserBuffer,
    /// The config space. Its lock is also the device lock: it serialises
    /// `read()`/`write()` with reset.
    #[pin]
    config: Mutex<ConfigSpace>,
}

impl MdpyDevice {
    /// Allocates the framebuffer and config space of a new mdev of type `ty`.
    pub(crate) fn new(
        mdev: &mdev::Device,
        ty: &'static mdev::Type<Mode>,
    ) -> Result<impl PinInit<Self, Error>> {
        let mode = &ty.data;
        let fb = UserBuffer::new(mode.memsize() as usize)?;
        let mut config = ConfigSpace::new(&IDENTITY);
        config.set_bar32(0, mode.memsize(), pci_config::BAR_MEM32_PREFETCH)?;
        config.add_vendor_capability(VENDORCAP_OFFSET, VENDORCAP_SIZE)?;
        config.set_u32(FORMAT_OFFSET, bindings::DRM_FORMAT_XRGB8888);
        config.set_u32(WIDTH_OFFSET, mode.width);
        config.set_u32(HEIGHT_OFFSET, mode.height);
        fill_gradient(&fb, mode)?;
        dev_info!(
            mdev.as_device(),
            "mdpy_init_dev: {} ({}x{})\n",
            ty.pretty_name.to_str().unwrap_or("mdpy"),
            mode.width,
            mode.height
        );
        Ok(try_pin_init!(Self {
            ty,
            fb,
            config <- new_mutex!(config),
        }))
    }

    /// The display mode.
    pub(crate) fn mode(&self) -> &Mode {
        &self.ty.data
    }

    fn reset(&self) -> Result {
        let _guard = self.config.lock();
        fill_gradient(&self.fb, self.mode())
    }

    fn query_gfx_plane(&self, arg: UserPtr) -> Result<isize> {
        let mut plane = match vfio::read_plane_query(arg, bindings::VFIO_GFX_PLANE_TYPE_REGION)? {
            // Probing: only the region interface is supported.
            vfio::PlaneQuery::Probe => return Ok(0),
            vfio::PlaneQuery::Query(plane) => plane,
        };
        let mode = self.mode();
        plane.drm_format = bindings::DRM_FORMAT_XRGB8888;
        plane.drm_format_mod = 0;
        plane.width = mode.width;
        plane.height = mode.height;
        plane.stride = mode.stride();
        plane.size = mode.memsize();
        plane.x_pos = 0;
        plane.y_pos = 0;
        // No cursor, so no hotspot (the C sample says 0, a valid position).
        plane.x_hot = vfio::NO_HOTSPOT;
        plane.y_hot = vfio::NO_HOTSPOT;
        vfio::set_plane_region_index(&mut plane, regions::DISPLAY);
        vfio::reply_plane(arg, &plane)
    }
}

/// Fills the visible area with the C sample's gray gradient (row `i` is
/// `i * 255 / height`).
fn fill_gradient(fb: &UserBuffer, mode: &Mode) -> Result {
    let stride = mode.stride() as usize;
    for row in 0..mode.height {
        // CAST: the quotient is at most 255.
        let gray = (row * 255 / mode.height) as u8;
        fb.fill(row as usize * stride, stride, gray)?;
    }
    Ok(())
}

#[vtable]
impl vfio::Device for MdpyDevice {
    fn read(&self, offset: u64, buf: UserBuf) -> Result<usize> {
        let len = buf.len();
        if len == 0 {
            return Ok(0);
        }
        match regions::decode(offset, len, self.fb.len())? {
            Target::Config(off) => {
                let mut bytes = [0u8; pci_config::CONFIG_SPACE_SIZE];
                self.config.lock().read(off, &mut bytes[..len])?;
                buf.writer_at(0).write_slice(&bytes[..len])?;
            }
            Target::Framebuffer(off) => {
                let _guard = self.config.lock();
                self.fb.copy_to_user(off, buf.ptr(), len)?;
            }
        }
        Ok(len)
    }

    fn write(&self, offset: u64, buf: UserBuf) -> Result<usize> {
        let len = buf.len();
        if len == 0 {
            return Ok(0);
        }
        match regions::decode(offset, len, self.fb.len())? {
            Target::Config(off) => {
                let mut bytes = [0u8; pci_config::CONFIG_SPACE_SIZE];
                buf.reader_at(0).read_slice(&mut bytes[..len])?;
                self.config.lock().write(off, &bytes[..len])?;
            }
            Target::Framebuffer(off) => {
                let _guard = self.config.lock();
                self.fb.copy_from_user(off, buf.ptr(), len)?;
            }
        }
        Ok(len)
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr) -> Result<isize> {
        match cmd {
            bindings::VFIO_DEVICE_GET_INFO => {
                vfio::reply_pci_device_info(arg, bindings::VFIO_PCI_NUM_REGIONS)
            }
            bindings::VFIO_DEVICE_GET_IRQ_INFO => vfio::reply_no_irq_info(arg),
            bindings::VFIO_DEVICE_QUERY_GFX_PLANE => self.query_gfx_plane(arg),
            bindings::VFIO_DEVICE_SET_IRQS => Err(EINVAL),
            bindings::VFIO_DEVICE_RESET => self.reset().map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    fn region_info(&self, index: u32, _caps: &mut vfio::InfoCaps<'_>) -> Result<vfio::RegionInfo> {
        regions::info(index, self.fb.len())
    }

    fn mmap(&self, vma: &NewMapping<'_>) -> Result {
        // Device memory is shared by nature: no private (copy-on-write) mappings.
        if !vma.is_shared() {
            return Err(EINVAL);
        }
        let fb_pgoff = vma.pgoff().checked_sub(regions::BAR0_PGOFF).ok_or(EINVAL)?;
        self.fb.mmap(vma.vma(), fb_pgoff)
    }
}
