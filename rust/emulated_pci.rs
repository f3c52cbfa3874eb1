// SPDX-License-Identifier: GPL-2.0

//! Emulated PCI functions: everything a VFIO device that looks like a PCI
//! function needs besides its own semantics.
//!
//! C header: [`include/uapi/linux/vfio.h`](srctree/include/uapi/linux/vfio.h)
//!
//! A driver describes its device file as a table of [`Region`]s and
//! implements [`DeviceOps`] for its per-device data `D`: accesses to its own
//! regions (already decoded and bounds-checked), reset, and, for a display,
//! typed [`DeviceOps::query_plane`] and [`DeviceOps::get_dmabuf`] hooks.
//! [`EmulatedPci<D>`] is the VFIO device around it: it owns the
//! configuration space and its lock, decodes `read()`/`write()`/`mmap()` by
//! the region table, and answers the standard ioctls (`GET_INFO`,
//! `GET_REGION_INFO` with capabilities, `GET_IRQ_INFO`, `SET_IRQS`, `RESET`,
//! `QUERY_GFX_PLANE`, `GET_GFX_DMABUF`) the same way for every driver.
//!
//! A driver that implements the migration hooks ([`DeviceOps::save_registers`]
//! and the others) gets VFIO live migration ([`super::migration`]): the
//! stream holds the configuration space, saved and restored here, the
//! driver's register sections, and its memory ([`DeviceOps::memory`]),
//! which the migration layer sends in runs of pages, and in pre-copy again
//! the pages user space changes ([`super::write_tracking`]).

use super::{
    bindings,
    migration::{
        self,
        refusal_log::RefusalLog,
        stream::{self, Origin, Section, Writer},
        Migrate, Migration,
    },
    pci_config::{ConfigMirror, ConfigSpace, CONFIG_SPACE_SIZE},
    uaccess::UserWriter,
    vfio::{self, InfoCaps, RegionInfo, UserMappings},
    vma::NewMapping,
    write_tracking::TrackedMemory,
};
use core::{
    mem::{offset_of, size_of, MaybeUninit},
    ops::Deref,
};
use kernel::{
    error::VTABLE_DEFAULT_ERROR,
    fs::{file::FileDescriptorReservation, File},
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Mutex},
    uaccess::{UserSlice, UserSliceReader},
};

/// Region index of the configuration space.
pub const CONFIG_REGION: u32 = bindings::VFIO_PCI_CONFIG_REGION_INDEX;

/// `x_hot`/`y_hot` of a plane without hotspot information (the uapi's
/// 0xFFFFFFFF).
pub const NO_HOTSPOT: u32 = u32::MAX;

/// A region capability `VFIO_REGION_INFO_CAP_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionType {
    /// `VFIO_REGION_TYPE_*`.
    pub type_: u32,
    /// `VFIO_REGION_SUBTYPE_*`.
    pub subtype: u32,
}

/// One region of the device file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Its index (`VFIO_PCI_*_REGION_INDEX` or a device-specific one).
    pub index: u32,
    /// Offset in the device file, a page multiple.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// `vfio::REGION_READ | REGION_WRITE | REGION_MMAP`.
    pub flags: u32,
    /// Its type capability, if any.
    pub region_type: Option<RegionType>,
}

impl Region {
    /// The configuration space: 256 bytes at offset 0, read-write.
    pub const CONFIG: Self = Self::new(
        CONFIG_REGION,
        0,
        CONFIG_SPACE_SIZE,
        vfio::REGION_READ | vfio::REGION_WRITE,
    );

    /// A region without capabilities.
    pub const fn new(index: u32, offset: usize, size: usize, flags: u32) -> Self {
        Self {
            index,
            offset,
            size,
            flags,
            region_type: None,
        }
    }

    /// The region with a `VFIO_REGION_INFO_CAP_TYPE` capability.
    pub const fn with_type(self, type_: u32, subtype: u32) -> Self {
        Self {
            region_type: Some(RegionType { type_, subtype }),
            ..self
        }
    }

    /// The offset in the region of `len` bytes at file offset `offset`, if
    /// they lie entirely within it.
    fn offset_of(&self, offset: usize, len: usize) -> Option<usize> {
        let start = offset.checked_sub(self.offset)?;
        (start.checked_add(len)? <= self.size).then_some(start)
    }
}

/// Which display interface a device has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// No display: `QUERY_GFX_PLANE` is `ENOTTY`.
    None,
    /// Planes in a region of the device (`VFIO_GFX_PLANE_TYPE_REGION`).
    Region,
    /// Planes as dma-bufs (`VFIO_GFX_PLANE_TYPE_DMABUF`, `GET_GFX_DMABUF`).
    DmaBuf,
}

impl Display {
    /// The uapi plane type flag.
    const fn plane_type(self) -> u32 {
        match self {
            Display::None => 0,
            Display::Region => bindings::VFIO_GFX_PLANE_TYPE_REGION,
            Display::DmaBuf => bindings::VFIO_GFX_PLANE_TYPE_DMABUF,
        }
    }
}

/// One plane as `VFIO_DEVICE_QUERY_GFX_PLANE` reports it (without
/// hotspot: the layer reports [`NO_HOTSPOT`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plane {
    /// DRM fourcc.
    pub drm_format: u32,
    /// DRM format modifier.
    pub drm_format_mod: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line.
    pub stride: u32,
    /// Size in bytes.
    pub size: u32,
    /// Horizontal position on screen.
    pub x_pos: u32,
    /// Vertical position on screen.
    pub y_pos: u32,
    /// The region index (`Display::Region`) or dma-buf id (`Display::DmaBuf`).
    pub id: u32,
}

/// The semantics of an emulated PCI function, implemented by its driver
/// data. Region accesses arrive decoded: `index` is a region of
/// [`DeviceOps::regions`] other than the configuration space, and
/// `offset..offset + len` lies within it.
#[vtable]
pub trait DeviceOps: Send + Sync + Sized + 'static {
    /// The region count `VFIO_DEVICE_GET_INFO` reports; indexes below it that
    /// the table does not list exist with size zero.
    const NUM_REGIONS: u32;
    /// The display interface.
    const DISPLAY: Display = Display::None;

    /// The staging copy a destination fills as the stream arrives (`()`
    /// for a device that does not migrate).
    type Staged: Send + Unpin;

    /// The region table; it must include [`Region::CONFIG`] and not change.
    fn regions(&self) -> &[Region];

    /// Reads `len` bytes at `offset` of region `index` into `out` (which has
    /// room for exactly `len`).
    fn read(&self, index: u32, offset: usize, len: usize, out: &mut UserWriter) -> Result;

    /// Writes `len` bytes from `data` (which holds exactly `len`) at `offset`
    /// of region `index`.
    fn write(&self, index: u32, offset: usize, len: usize, data: &mut UserSliceReader) -> Result;

    /// Maps region `index` (a `REGION_MMAP` one) from `offset` on; the layer
    /// checked that the whole VMA lies within the region.
    fn mmap(&self, _index: u32, _offset: usize, _vma: &NewMapping<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_RESET`.
    fn reset(&self) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The last user closed the device.
    fn close(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The plane of type `drm_plane_type` (`DRM_PLANE_TYPE_*`) now; `None`
    /// for no plane (nothing is shown).
    fn query_plane(&self, _drm_plane_type: u32) -> Result<Option<Plane>> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_GFX_DMABUF` of dma-buf `id`: the buffer's file, which
    /// the layer installs as a new file descriptor (`O_CLOEXEC`) as the
    /// request's last step.
    fn get_dmabuf(&self, _id: u32) -> Result<ARef<File>> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: what the device's streams say they are from (driver,
    /// mdev type, memory size). A device implementing
    /// [`DeviceOps::save_registers`] migrates and must implement every
    /// migration hook.
    fn migration_origin(&self) -> Origin {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: the size of [`DeviceOps::save_registers`]' sections.
    fn registers_len(&self) -> usize {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: appends the device's state other than the configuration
    /// space (which this layer saves) and its memory pages (which this layer
    /// saves from [`DeviceOps::memory`]) as sections with ids from
    /// [`stream::SECTION_DRIVER_FIRST`] on.
    fn save_registers(&self, _w: &mut Writer<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: the device memory, saved as [`stream::SECTION_MEM_RUN`]
    /// sections (runs of pages, key the first page's index) and tracked in
    /// pre-copy.
    fn memory(&self) -> &dyn TrackedMemory {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: a fresh staging copy for a resuming session.
    fn load_begin(&self) -> Result<Self::Staged> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: checks one of the device's sections (any but the
    /// configuration space and the end marker) and copies it into
    /// `staged`: known ones fully, unknown ones with
    /// [`stream::Section::unknown`]. Changes nothing the guest can see; each
    /// refusal is said through `log`.
    fn load_section(
        &self,
        _staged: &mut Self::Staged,
        _section: &Section<'_>,
        _log: &RefusalLog<'_>,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: copies `len` bytes of `data` to byte `offset` of memory
    /// page `key` in `staged` (a page of a [`stream::SECTION_MEM_RUN`] or a
    /// [`stream::SECTION_MEM_PAGE`] section, whose bytes arrive in pieces,
    /// never past the page's end); refuses a key past the memory with
    /// [`stream::page_index`].
    fn load_page(
        &self,
        _staged: &mut Self::Staged,
        _key: u64,
        _offset: usize,
        _data: &mut UserSliceReader,
        _len: usize,
        _log: &RefusalLog<'_>,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: the stream is complete; checks that every section the
    /// device needs came and prepares applying it (allocations included).
    fn load_finish(&self, _staged: &mut Self::Staged, _log: &RefusalLog<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Migration: applies the staging copy [`DeviceOps::load_finish`]
    /// accepted. A device that replaces the pages of its memory (rather than
    /// copying into them) removes them from the user `mappings` of the
    /// device, so the next access maps the new ones.
    fn load_apply(&self, _staged: Self::Staged, _mappings: &UserMappings<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// An emulated PCI function with device semantics `D`: the data of its
/// [`vfio::Device`].
#[pin_data]
pub struct EmulatedPci<D: DeviceOps> {
    /// The configuration space; its lock serialises config changes only.
    #[pin]
    config: Mutex<ConfigSpace>,
    /// What config reads see: `config`, published after every change.
    config_mirror: ConfigMirror,
    #[pin]
    device: D,
    /// Live migration state (unused unless `D` migrates).
    #[pin]
    migration: Migration<Self>,
}

impl<D: DeviceOps> EmulatedPci<D> {
    /// A function with configuration space `config` and semantics `device`.
    pub fn new(config: ConfigSpace, device: impl PinInit<D, Error>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            config_mirror: ConfigMirror::new(&config),
            config <- new_mutex!(config),
            device <- device,
            migration <- Migration::new(),
        })
    }

    /// The device semantics.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The region `len` bytes at file offset `offset` lie in, and the offset
    /// in it; `EINVAL` unless they lie entirely within one readable or
    /// writable (`flag`) region.
    #[inline]
    fn decode(&self, offset: u64, len: usize, flag: u32) -> Result<(u32, usize)> {
        let offset = usize::try_from(offset).map_err(|_| EINVAL)?;
        self.device
            .regions()
            .iter()
            .filter(|r| r.flags & flag != 0)
            .find_map(|r| r.offset_of(offset, len).map(|o| (r.index, o)))
            .ok_or(EINVAL)
    }

    fn query_plane(&self, arg: UserPtr) -> Result<isize> {
        const PROBE: u32 = bindings::VFIO_GFX_PLANE_TYPE_PROBE;
        // Up to and including the `region_index`/`dmabuf_id` union.
        const MINSZ: usize =
            offset_of!(bindings::vfio_device_gfx_plane_info, __bindgen_anon_1) + size_of::<u32>();
        let plane_type = D::DISPLAY.plane_type();
        if plane_type == 0 || !D::HAS_QUERY_PLANE {
            return Err(ENOTTY);
        }
        let mut info: bindings::vfio_device_gfx_plane_info = vfio::read_arg(arg, MINSZ)?;
        if info.flags & PROBE != 0 {
            // A probe for the plane type the device has: the answer is 0.
            return if info.flags == PROBE | plane_type {
                Ok(0)
            } else {
                Err(EINVAL)
            };
        }
        if info.flags != plane_type {
            return Err(EINVAL);
        }
        let plane = self
            .device
            .query_plane(info.drm_plane_type)?
            .unwrap_or_default();
        info.drm_format = plane.drm_format;
        info.drm_format_mod = plane.drm_format_mod;
        info.width = plane.width;
        info.height = plane.height;
        info.stride = plane.stride;
        info.size = plane.size;
        info.x_pos = plane.x_pos;
        info.y_pos = plane.y_pos;
        info.x_hot = NO_HOTSPOT;
        info.y_hot = NO_HOTSPOT;
        // SAFETY: `region_index` and `dmabuf_id` are the two `u32` members of the union;
        // writing either one is always valid.
        unsafe { *info.__bindgen_anon_1.region_index.as_mut() = plane.id };
        vfio::write_arg(arg, &info, MINSZ)?;
        Ok(0)
    }

    fn get_dmabuf(&self, arg: UserPtr) -> Result<isize> {
        if D::DISPLAY != Display::DmaBuf || !D::HAS_GET_DMABUF {
            return Err(ENOTTY);
        }
        let id: u32 = UserSlice::new(arg, size_of::<u32>()).reader().read()?;
        // The descriptor is reserved first and installed last, once nothing can fail: an
        // installed descriptor cannot be taken back from user space (upstream's order).
        let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        let file = self.device.get_dmabuf(id)?;
        let ret = isize::try_from(fd.reserved_fd())?;
        fd.fd_install(file);
        Ok(ret)
    }

    fn device_info(arg: UserPtr) -> Result<isize> {
        let minsz = offset_of!(bindings::vfio_device_info, num_irqs) + size_of::<u32>();
        let mut info: bindings::vfio_device_info = vfio::read_arg(arg, minsz)?;
        info.flags = bindings::VFIO_DEVICE_FLAGS_PCI | bindings::VFIO_DEVICE_FLAGS_RESET;
        info.num_regions = D::NUM_REGIONS;
        info.num_irqs = bindings::VFIO_PCI_NUM_IRQS;
        vfio::write_arg(arg, &info, minsz)?;
        Ok(0)
    }

    /// A PCI function without interrupts: every PCI interrupt index exists
    /// with a count of 0, others are `EINVAL`.
    fn irq_info(arg: UserPtr) -> Result<isize> {
        let minsz = offset_of!(bindings::vfio_irq_info, count) + size_of::<u32>();
        let mut info: bindings::vfio_irq_info = vfio::read_arg(arg, minsz)?;
        if info.index >= bindings::VFIO_PCI_NUM_IRQS {
            return Err(EINVAL);
        }
        info.flags = 0;
        info.count = 0;
        vfio::write_arg(arg, &info, minsz)?;
        Ok(0)
    }
}

impl<D: DeviceOps> Deref for EmulatedPci<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.device
    }
}

#[vtable]
impl<D: DeviceOps> vfio::DeviceOps for EmulatedPci<D> {
    // The module that implements `D` owns the VFIO operations too.
    type OwnerModule = D::OwnerModule;

    const MIGRATION: Option<migration::VfioOps<Self>> = if D::HAS_SAVE_REGISTERS {
        Some(migration::VfioOps::new())
    } else {
        None
    };

    fn close(dev: &vfio::Device<Self>) {
        // Every migration session ends before the device's state goes.
        dev.migration.close();
        if D::HAS_CLOSE {
            dev.device.close();
        }
    }

    fn read(dev: &vfio::Device<Self>, offset: u64, out: &mut UserWriter) -> Result {
        let len = out.len();
        if len == 0 {
            return Ok(());
        }
        match dev.decode(offset, len, vfio::REGION_READ)? {
            (CONFIG_REGION, off) => {
                // From the mirror, without the lock (see `ConfigMirror`).
                let mut bounce = [0u8; CONFIG_SPACE_SIZE];
                let bytes = bounce.get_mut(..len).ok_or(EINVAL)?;
                dev.config_mirror.read(off, bytes)?;
                out.write_slice(bytes)
            }
            (index, off) => dev.device.read(index, off, len, out),
        }
    }

    fn write(dev: &vfio::Device<Self>, offset: u64, data: &mut UserSliceReader) -> Result {
        let len = data.len();
        if len == 0 {
            return Ok(());
        }
        match dev.decode(offset, len, vfio::REGION_WRITE)? {
            (CONFIG_REGION, off) => {
                // The bounce buffer is filled before use: no need to zero it.
                let mut bounce = [MaybeUninit::<u8>::uninit(); CONFIG_SPACE_SIZE];
                let bytes = bounce.get_mut(..len).ok_or(EINVAL)?;
                data.read_raw(bytes)?;
                // SAFETY: `read_raw` succeeded, so all `len` bytes are initialised; `u8` and
                // `MaybeUninit<u8>` have the same layout.
                let bytes = unsafe { &*(core::ptr::from_ref(bytes) as *const [u8]) };
                let mut config = dev.config.lock();
                config.write(off, bytes)?;
                dev.config_mirror.publish(&config);
                Ok(())
            }
            (index, off) => dev.device.write(index, off, len, data),
        }
    }

    fn ioctl(dev: &vfio::Device<Self>, cmd: u32, arg: UserPtr) -> Result<isize> {
        match cmd {
            bindings::VFIO_DEVICE_GET_INFO => Self::device_info(arg),
            bindings::VFIO_DEVICE_GET_IRQ_INFO => Self::irq_info(arg),
            bindings::VFIO_DEVICE_SET_IRQS => Err(EINVAL),
            bindings::VFIO_DEVICE_RESET => {
                dev.migration.reset(|| {
                    if D::HAS_RESET {
                        dev.device.reset()?;
                    }
                    Ok(())
                })?;
                Ok(0)
            }
            bindings::VFIO_DEVICE_QUERY_GFX_PLANE => dev.query_plane(arg),
            bindings::VFIO_DEVICE_GET_GFX_DMABUF => dev.get_dmabuf(arg),
            _ => Err(ENOTTY),
        }
    }

    fn region_info(
        dev: &vfio::Device<Self>,
        index: u32,
        caps: &mut InfoCaps<'_>,
    ) -> Result<RegionInfo> {
        if let Some(r) = dev.device.regions().iter().find(|r| r.index == index) {
            let mut flags = r.flags;
            if let Some(t) = r.region_type {
                caps.add_region_type(t.type_, t.subtype)?;
                flags |= vfio::REGION_CAPS;
            }
            // CAST: region offsets and sizes are `usize`, at most 64 bits.
            return Ok(RegionInfo {
                offset: r.offset as u64,
                size: r.size as u64,
                flags,
            });
        }
        if index < D::NUM_REGIONS {
            Ok(RegionInfo::default())
        } else {
            Err(EINVAL)
        }
    }

    fn mmap(dev: &vfio::Device<Self>, vma: &NewMapping<'_>) -> Result {
        if !D::HAS_MMAP {
            return Err(EINVAL);
        }
        let offset = vma.pgoff().checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        let (index, off) = dev
            .device
            .regions()
            .iter()
            .filter(|r| r.flags & vfio::REGION_MMAP != 0)
            .find_map(|r| r.offset_of(offset, vma.len()).map(|o| (r.index, o)))
            .ok_or(EINVAL)?;
        dev.device.mmap(index, off, vma)
    }
}

/// A destination's staging copy: the configuration space of the stream
/// and the driver's staging copy.
pub struct Staged<S> {
    config: Option<[u8; CONFIG_SPACE_SIZE]>,
    device: S,
}

impl<D: DeviceOps> Migrate for EmulatedPci<D> {
    type Staged = Staged<D::Staged>;

    fn migration(dev: &vfio::Device<Self>) -> &Migration<Self> {
        &dev.migration
    }

    fn origin(dev: &vfio::Device<Self>) -> Origin {
        dev.device.migration_origin()
    }

    fn registers_len(dev: &vfio::Device<Self>) -> usize {
        stream::SECTION_HEADER_LEN + CONFIG_SPACE_SIZE + dev.device.registers_len()
    }

    fn save_registers(dev: &vfio::Device<Self>, w: &mut Writer<'_>) -> Result {
        let config = *dev.config.lock().raw();
        w.section(stream::SECTION_PCI_CONFIG, 0, false, &config)?;
        dev.device.save_registers(w)
    }

    fn memory(dev: &vfio::Device<Self>) -> &dyn TrackedMemory {
        dev.device.memory()
    }

    fn load_begin(dev: &vfio::Device<Self>) -> Result<Self::Staged> {
        Ok(Staged {
            config: None,
            device: dev.device.load_begin()?,
        })
    }

    fn load_section(
        dev: &vfio::Device<Self>,
        staged: &mut Self::Staged,
        section: &Section<'_>,
        log: &RefusalLog<'_>,
    ) -> Result {
        if section.id != stream::SECTION_PCI_CONFIG {
            return dev.device.load_section(&mut staged.device, section, log);
        }
        let config = *section.fixed::<CONFIG_SPACE_SIZE>(log)?;
        if !dev.config.lock().could_be(&config) {
            return Err(log.refuse(
                stream::ERR_INVALID,
                format_args!("configuration space of another device (read-only bits differ)"),
            ));
        }
        staged.config = Some(config);
        Ok(())
    }

    fn load_page(
        dev: &vfio::Device<Self>,
        staged: &mut Self::Staged,
        key: u64,
        offset: usize,
        data: &mut UserSliceReader,
        len: usize,
        log: &RefusalLog<'_>,
    ) -> Result {
        dev.device
            .load_page(&mut staged.device, key, offset, data, len, log)
    }

    fn load_finish(
        dev: &vfio::Device<Self>,
        staged: &mut Self::Staged,
        log: &RefusalLog<'_>,
    ) -> Result {
        if staged.config.is_none() {
            return Err(log.refuse(
                stream::ERR_TRUNCATED,
                format_args!("no configuration space"),
            ));
        }
        dev.device.load_finish(&mut staged.device, log)
    }

    fn load_apply(dev: &vfio::Device<Self>, staged: Self::Staged) {
        if let Some(raw) = &staged.config {
            let mut config = dev.config.lock();
            config.restore(raw);
            dev.config_mirror.publish(&config);
        }
        dev.device.load_apply(staged.device, &dev.user_mappings());
    }
}
