// SPDX-License-Identifier: GPL-2.0

//! The semantics of one mdpy device: a framebuffer with a gray gradient,
//! its mode in a vendor capability, shown through the region display
//! interface.

use crate::{
    defs,
    framebuffer::Framebuffer,
    kernel_ext::{
        bindings,
        emulated_pci::{self, Display, Plane, Region},
        mdev,
        migration::{
            refusal_log::RefusalLog,
            stream::{Origin, Section, Writer},
        },
        pci_config::{self, ConfigSpace, Identity},
        uaccess::UserWriter,
        vfio::UserMappings,
        vma::NewMapping,
        vmalloc::UserBuffer,
        write_tracking::TrackedMemory,
    },
    migration, regions, Mode,
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::UserSliceReader,
};

/// PCI identity, from the definition mdpy-fb shares (`defs`).
const IDENTITY: Identity = Identity {
    vendor: defs::MDPY_PCI_VENDOR_ID.as_raw(),
    device: defs::MDPY_PCI_DEVICE_ID,
    subsystem_vendor: defs::MDPY_PCI_SUBVENDOR_ID,
    subsystem: defs::MDPY_PCI_SUBDEVICE_ID,
    // CAST: PCI class codes are 16-bit.
    class: bindings::PCI_CLASS_DISPLAY_OTHER as u16,
    revision: 0x01,
};

/// One mdpy device.
#[pin_data]
pub(crate) struct MdpyDevice {
    ty: &'static mdev::Type<Mode>,
    regions: [Region; 3],
    /// BAR0: the framebuffer, shared with user mappings.
    fb: Arc<Framebuffer>,
    /// The device lock: serialises `read()`/`write()` of the framebuffer
    /// with reset (which redraws it).
    #[pin]
    fb_lock: Mutex<()>,
}

/// The VFIO device of an mdpy.
pub(crate) type MdpyVfio = emulated_pci::EmulatedPci<MdpyDevice>;

impl MdpyDevice {
    /// The config space, framebuffer and state of a new mdev of type `ty`.
    pub(crate) fn new(
        mdev: &mdev::Device,
        ty: &'static mdev::Type<Mode>,
    ) -> Result<impl PinInit<MdpyVfio, Error>> {
        let mode = &ty.data;
        let fb = Framebuffer::new(mode.memsize() as usize)?;
        let mut config = ConfigSpace::new(&IDENTITY);
        config.set_bar32(0, mode.memsize(), pci_config::BAR_MEM32_PREFETCH)?;
        config.add_vendor_capability(defs::MDPY_VENDORCAP_OFFSET, defs::MDPY_VENDORCAP_SIZE)?;
        config.set_u32(
            defs::MDPY_FORMAT_OFFSET.into(),
            bindings::DRM_FORMAT_XRGB8888,
        );
        config.set_u32(defs::MDPY_WIDTH_OFFSET.into(), mode.width);
        config.set_u32(defs::MDPY_HEIGHT_OFFSET.into(), mode.height);
        fill_gradient(&fb.buf(), mode)?;
        dev_info!(
            mdev.as_device(),
            "mdpy_init_dev: {} ({}x{})\n",
            ty.pretty_name.to_str().unwrap_or("mdpy"),
            mode.width,
            mode.height
        );
        let regions = regions::table(fb.len());
        Ok(emulated_pci::EmulatedPci::new(
            config,
            try_pin_init!(Self {
                ty,
                regions,
                fb,
                fb_lock <- new_mutex!(()),
            }),
        ))
    }

    /// The display mode.
    pub(crate) fn mode(&self) -> &Mode {
        &self.ty.data
    }

    /// The mdev type's name (`mdpy-xga`).
    pub(crate) fn type_name(&self) -> &'static CStr {
        self.ty.pretty_name
    }

    /// The framebuffer's memory now (a migration may replace it: see
    /// `Framebuffer::replace`).
    pub(crate) fn fb(&self) -> Arc<UserBuffer> {
        self.fb.buf()
    }

    /// The framebuffer.
    pub(crate) fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// The lock that serialises framebuffer `read()`/`write()` and reset.
    pub(crate) fn fb_lock(&self) -> &Mutex<()> {
        &self.fb_lock
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
impl emulated_pci::DeviceOps for MdpyDevice {
    const NUM_REGIONS: u32 = regions::NUM_REGIONS;
    const DISPLAY: Display = Display::Region;

    type Staged = migration::Staged;

    fn regions(&self) -> &[Region] {
        &self.regions
    }

    // BAR0 and the display region are the framebuffer: the only regions besides config.
    #[inline]
    fn read(&self, _index: u32, offset: usize, len: usize, out: &mut UserWriter) -> Result {
        let _guard = self.fb_lock.lock();
        self.fb().copy_to_user(offset, len, out)
    }

    #[inline]
    fn write(&self, _index: u32, offset: usize, len: usize, data: &mut UserSliceReader) -> Result {
        let _guard = self.fb_lock.lock();
        let res = self.fb().copy_from_user(offset, len, data);
        // Even a failed copy may have changed some bytes.
        self.fb.mark(offset, len);
        res
    }

    #[inline]
    fn mmap(&self, _index: u32, offset: usize, vma: &NewMapping<'_>) -> Result {
        Framebuffer::mmap(self.fb.as_arc_borrow(), vma, offset)
    }

    fn reset(&self) -> Result {
        let _guard = self.fb_lock.lock();
        let res = fill_gradient(&self.fb(), self.mode());
        self.fb.mark(0, self.fb.len());
        res
    }

    fn query_plane(&self, _drm_plane_type: u32) -> Result<Option<Plane>> {
        // One plane for any plane type, as the C sample: no cursor.
        let mode = self.mode();
        Ok(Some(Plane {
            drm_format: bindings::DRM_FORMAT_XRGB8888,
            width: mode.width,
            height: mode.height,
            stride: mode.stride(),
            size: mode.memsize(),
            id: regions::DISPLAY,
            ..Plane::default()
        }))
    }

    fn migration_origin(&self) -> Origin {
        self.origin()
    }

    fn registers_len(&self) -> usize {
        self.sections_len()
    }

    fn save_registers(&self, w: &mut Writer<'_>) -> Result {
        self.save_sections(w)
    }

    fn memory(&self) -> &dyn TrackedMemory {
        &*self.fb
    }

    fn load_begin(&self) -> Result<migration::Staged> {
        self.stage_begin()
    }

    fn load_section(
        &self,
        staged: &mut migration::Staged,
        section: &Section<'_>,
        log: &RefusalLog<'_>,
    ) -> Result {
        self.stage_section(staged, section, log)
    }

    fn load_page(
        &self,
        staged: &mut migration::Staged,
        key: u64,
        offset: usize,
        data: &mut UserSliceReader,
        len: usize,
        log: &RefusalLog<'_>,
    ) -> Result {
        self.stage_page(staged, key, offset, data, len, log)
    }

    fn load_finish(&self, staged: &mut migration::Staged, log: &RefusalLog<'_>) -> Result {
        self.stage_finish(staged, log)
    }

    fn load_apply(&self, staged: migration::Staged, mappings: &UserMappings<'_>) {
        self.stage_apply(staged, mappings)
    }
}
