// SPDX-License-Identifier: GPL-2.0

//! The state of one mbochs device and its VFIO operations.

use crate::{
    dmabuf::Buffers,
    kernel_ext::{
        bindings,
        dma_buf::DmaBuf,
        mdev,
        pci_config::{self, ConfigSpace, Identity},
        vfio::{self, UserBuf},
        vm_fault,
        vma::NewMapping,
    },
    regions::{self, Target},
    regs::{self, Regs},
    vram::Vram,
    PoolReservation, TypeInfo,
};
use core::mem::size_of;
use kernel::{
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::UserSlice,
};

/// PCI identity: QEMU's bochs display (`-device secondary-vga`).
const IDENTITY: Identity = Identity {
    vendor: 0x1234,           // QEMU
    device: 0x1111,           // bochs/stdvga
    subsystem_vendor: 0x1af4, // PCI_SUBVENDOR_ID_REDHAT_QUMRANET
    subsystem: 0x1100,        // PCI_SUBDEVICE_ID_QEMU
    // CAST: PCI class codes are 16-bit.
    class: bindings::PCI_CLASS_DISPLAY_OTHER as u16,
    revision: 0x01,
};

/// `drm_plane_type` values (`enum drm_plane_type` of `drm/drm_plane.h`).
const DRM_PLANE_TYPE_PRIMARY: u32 = 1;

/// Everything the device lock protects.
struct State {
    config: ConfigSpace,
    regs: Regs,
    buffers: Buffers,
}

/// One mbochs device.
#[pin_data]
pub(crate) struct MbochsDevice {
    ty: &'static mdev::Type<TypeInfo>,
    /// Video memory reserved from the module's pool, returned on drop.
    _reservation: PoolReservation,
    /// BAR0. Shared with user mappings of it.
    vram: Arc<Vram>,
    /// The device lock.
    #[pin]
    state: Mutex<State>,
}

impl MbochsDevice {
    /// Reserves the video memory of a new mdev of type `ty` from the pool and
    /// sets up its state; no VRAM page is allocated yet.
    pub(crate) fn new(
        mdev: &mdev::Device,
        ty: &'static mdev::Type<TypeInfo>,
    ) -> Result<impl PinInit<Self, Error>> {
        let info = &ty.data;
        let reservation = PoolReservation::new(info.mbytes)?;
        let vram = Vram::new(info.memsize() as usize)?;
        let mut config = ConfigSpace::new(&IDENTITY);
        config.set_bar32(0, info.memsize(), pci_config::BAR_MEM32_PREFETCH)?;
        // CAST: BAR2 is one page.
        config.set_bar32(2, regions::MMIO_SIZE as u32, pci_config::BAR_MEM32)?;
        dev_info!(
            mdev.as_device(),
            "mbochs_init_dev: {}, {} MB, {} pages\n",
            ty.pretty_name.to_str().unwrap_or("mbochs"),
            info.mbytes,
            info.memsize() as usize / PAGE_SIZE
        );
        Ok(try_pin_init!(Self {
            ty,
            _reservation: reservation,
            vram,
            state <- new_mutex!(State {
                config,
                regs: Regs::new(info),
                buffers: Buffers::new(),
            }),
        }))
    }

    /// The device's type.
    pub(crate) fn type_info(&self) -> &TypeInfo {
        &self.ty.data
    }

    /// VRAM size in bytes.
    fn memsize(&self) -> usize {
        self.type_info().memsize() as usize
    }

    fn query_gfx_plane(&self, arg: UserPtr) -> Result<isize> {
        let mut plane = match vfio::read_plane_query(arg, bindings::VFIO_GFX_PLANE_TYPE_DMABUF)? {
            // Probing: only the dma-buf interface is supported.
            vfio::PlaneQuery::Probe => return Ok(0),
            vfio::PlaneQuery::Query(plane) => plane,
        };
        plane.drm_format_mod = 0;
        plane.x_pos = 0;
        plane.y_pos = 0;
        plane.x_hot = vfio::NO_HOTSPOT;
        plane.y_hot = vfio::NO_HOTSPOT;
        plane.drm_format = 0;
        plane.width = 0;
        plane.height = 0;
        plane.stride = 0;
        plane.size = 0;
        let mut id = 0;
        if plane.drm_plane_type == DRM_PLANE_TYPE_PRIMARY {
            let mut state = self.state.lock();
            // CAST: VRAM sizes are at most 64 MiB.
            if let Some(mode) = state.regs.mode(self.type_info(), self.memsize() as u64) {
                id = state.buffers.get_or_create(&mode, &self.vram)?;
                plane.drm_format = mode.drm_format;
                plane.width = mode.width;
                plane.height = mode.height;
                plane.stride = mode.stride;
                // A mode lies within VRAM, at most 64 MiB.
                plane.size = u32::try_from(mode.size).map_err(|_| EINVAL)?;
            }
        }
        // No valid mode, or another plane (there is no cursor): an empty plane.
        vfio::set_plane_dmabuf_id(&mut plane, id);
        vfio::reply_plane(arg, &plane)
    }

    fn get_gfx_dmabuf(&self, arg: UserPtr) -> Result<isize> {
        let id: u32 = UserSlice::new(arg, size_of::<u32>()).reader().read()?;
        let buf = self.state.lock().buffers.dma_buf(id)?;
        let fd = DmaBuf::install_fd(buf, bindings::O_CLOEXEC)?;
        // CAST: file descriptors are `int`s.
        Ok(fd as isize)
    }

    fn reset(&self) -> Result<isize> {
        self.state.lock().regs.reset();
        Ok(0)
    }

    /// Register access (BAR2, EDID region) at region offset `target`: split
    /// into pieces like the C sample, all under the device lock; `buf` is
    /// copied before (write) or after (read) taking it. An EDID access fails
    /// as a whole if any piece does.
    fn regs_access(&self, target: Target, buf: UserBuf, write: bool) -> Result {
        let len = buf.len();
        // Register accesses are 1 to 8 bytes: no allocation for them (they are
        // the per-access cost of a guest programming the device).
        let mut small = [0u8; 8];
        let mut large;
        let bytes = if len <= small.len() {
            &mut small[..len]
        } else {
            large = KVec::from_elem(0u8, len, GFP_KERNEL)?;
            &mut large[..]
        };
        if write {
            buf.reader_at(0).read_slice(bytes)?;
        }
        let (base, edid) = match target {
            Target::Mmio(o) => (o, false),
            Target::Edid(o) => (o, true),
            _ => return Err(EINVAL),
        };
        {
            let mut state = self.state.lock();
            let regs = &mut state.regs;
            let bytes = &mut *bytes;
            // The bytes of the piece at region offset `off`.
            fn piece(bytes: &mut [u8], start: usize, n: usize) -> Result<&mut [u8]> {
                bytes.get_mut(start..start + n).ok_or(EINVAL)
            }
            match (edid, write) {
                (false, false) => regs::for_each_piece(base, len, |off, n| {
                    regs.mmio_read(off, piece(bytes, off - base, n)?);
                    Ok(())
                })?,
                (false, true) => regs::for_each_piece(base, len, |off, n| {
                    regs.mmio_write(off, piece(bytes, off - base, n)?);
                    Ok(())
                })?,
                (true, false) => regs::for_each_piece(base, len, |off, n| {
                    regs.edid_read(off, piece(bytes, off - base, n)?)
                })?,
                (true, true) => {
                    // All or nothing: check every piece before changing anything.
                    regs::for_each_piece(base, len, |off, n| {
                        regs.edid_write_check(off, piece(bytes, off - base, n)?)
                    })?;
                    regs::for_each_piece(base, len, |off, n| {
                        regs.edid_write(off, piece(bytes, off - base, n)?)
                    })?;
                }
            }
        }
        if !write {
            buf.writer_at(0).write_slice(bytes)?;
        }
        Ok(())
    }

    /// BAR0 access: `buf.len()` bytes at VRAM offset `offset`, page by page.
    /// Only taking a page reference locks; the copy runs unlocked, so it may
    /// fault on a user mapping of this very VRAM.
    fn vram_access(&self, offset: usize, buf: UserBuf, write: bool) -> Result {
        let mut reader = buf.reader_at(0);
        let mut writer = buf.user_writer_at(0);
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done;
            let (index, in_page) = (pos / PAGE_SIZE, pos % PAGE_SIZE);
            let n = (PAGE_SIZE - in_page).min(buf.len() - done);
            let page = self.vram.page(index)?;
            if write {
                page.copy_from_user(in_page, n, &mut reader)?;
            } else {
                page.copy_to_user(in_page, n, &mut writer)?;
            }
            done += n;
        }
        Ok(())
    }

    fn access(&self, offset: u64, buf: UserBuf, write: bool) -> Result<usize> {
        let len = buf.len();
        if len == 0 {
            return Ok(0);
        }
        match regions::decode(offset, len, self.memsize())? {
            Target::Config(off) => {
                let mut bytes = [0u8; pci_config::CONFIG_SPACE_SIZE];
                if write {
                    buf.reader_at(0).read_slice(&mut bytes[..len])?;
                    self.state.lock().config.write(off, &bytes[..len])?;
                } else {
                    self.state.lock().config.read(off, &mut bytes[..len])?;
                    buf.writer_at(0).write_slice(&bytes[..len])?;
                }
            }
            Target::Vram(off) => self.vram_access(off, buf, write)?,
            target => self.regs_access(target, buf, write)?,
        }
        Ok(len)
    }
}

#[vtable]
impl vfio::Device for MbochsDevice {
    fn close(&self) {
        // Like the C sample's close_device: drop the device's buffers and VRAM pages.
        // dma-bufs still open keep their own page references.
        self.state.lock().buffers.clear();
        self.vram.release_all();
    }

    fn read(&self, offset: u64, buf: UserBuf) -> Result<usize> {
        self.access(offset, buf, false)
    }

    fn write(&self, offset: u64, buf: UserBuf) -> Result<usize> {
        self.access(offset, buf, true)
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr) -> Result<isize> {
        match cmd {
            bindings::VFIO_DEVICE_GET_INFO => {
                vfio::reply_pci_device_info(arg, regions::NUM_REGIONS)
            }
            bindings::VFIO_DEVICE_GET_IRQ_INFO => vfio::reply_no_irq_info(arg),
            bindings::VFIO_DEVICE_QUERY_GFX_PLANE => self.query_gfx_plane(arg),
            bindings::VFIO_DEVICE_GET_GFX_DMABUF => self.get_gfx_dmabuf(arg),
            bindings::VFIO_DEVICE_SET_IRQS => Err(EINVAL),
            bindings::VFIO_DEVICE_RESET => self.reset(),
            _ => Err(ENOTTY),
        }
    }

    fn region_info(&self, index: u32, caps: &mut vfio::InfoCaps<'_>) -> Result<vfio::RegionInfo> {
        regions::info(index, self.memsize(), caps)
    }

    fn mmap(&self, vma: &NewMapping<'_>) -> Result {
        // BAR0 only, from any page in it, and entirely within it. Device
        // memory is shared by nature: `install` refuses private mappings.
        let first = vma.pgoff().checked_sub(regions::BAR0_PGOFF).ok_or(EINVAL)?;
        let end = first
            .checked_mul(PAGE_SIZE)
            .and_then(|o| o.checked_add(vma.len()))
            .ok_or(EINVAL)?;
        if end > self.memsize() {
            return Err(EINVAL);
        }
        vm_fault::install(vma, self.vram.clone())
    }
}
