// SPDX-License-Identifier: GPL-2.0

//! The semantics of one mbochs device: VRAM in BAR0, the bochs DISPI
//! registers in BAR2, the EDID region, and its scanout as dma-bufs.

use crate::{
    dmabuf::Buffers,
    kernel_ext::{
        bindings,
        dma_buf::DmaBuf,
        emulated_pci::{self, Display, Plane, Region},
        mdev,
        migration::{
            refusal_log::RefusalLog,
            stream::{Origin, Section, Writer},
        },
        pci_config::{self, ConfigSpace, Identity},
        uaccess::UserWriter,
        vfio::UserMappings,
        vm_fault,
        vma::NewMapping,
        workqueue::OwnedQueue,
        write_tracking::TrackedMemory,
    },
    last_plane::LastPlane,
    migration::{self, MigratedDevice, Migration as _},
    regions,
    regs::{self, Dispi, Regs, Snapshot},
    vram::Vram,
    Pool, PoolReservation, TypeInfo,
};
use kernel::{
    fs::File,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Arc, Mutex},
    uaccess::UserSliceReader,
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
    /// The EDID.
    regs: Regs,
    /// The cache of scanout buffers seen, and their dma-bufs once exported.
    scanouts: Buffers,
}

/// One mbochs device.
#[pin_data]
pub(crate) struct MbochsDevice {
    ty: &'static mdev::Type<TypeInfo>,
    regions: [Region; 4],
    /// Video memory reserved from the module's pool, returned on drop.
    reservation: PoolReservation,
    /// BAR0. Shared with user mappings of it.
    vram: Arc<Vram>,
    /// The DISPI registers (BAR2), lock-free.
    dispi: Dispi,
    /// The plane the last query returned, for lock-free repeats; changed
    /// under the device lock.
    last_plane: LastPlane,
    /// The device lock.
    #[pin]
    state: Mutex<State>,
}

/// The VFIO device of an mbochs.
pub(crate) type MbochsVfio = emulated_pci::EmulatedPci<MbochsDevice>;

impl MbochsDevice {
    /// Reserves the video memory of a new mdev of type `ty` from `pool` and
    /// sets up its state; no VRAM page is allocated yet.
    pub(crate) fn new(
        pool: &Arc<Pool>,
        mdev: &mdev::Device,
        ty: &'static mdev::Type<TypeInfo>,
    ) -> Result<impl PinInit<MbochsVfio, Error>> {
        let info = &ty.data;
        let reservation = PoolReservation::new(pool, info.mbytes)?;
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
        Ok(emulated_pci::EmulatedPci::new(
            config,
            try_pin_init!(Self {
                ty,
                regions: regions::table(info.memsize() as usize),
                reservation,
                vram,
                dispi: Dispi::new(info),
                last_plane: LastPlane::new(),
                state <- new_mutex!(State {
                    regs: Regs::new(info),
                    scanouts: Buffers::new(),
                }),
            }),
        ))
    }

    /// The device's type.
    pub(crate) fn type_info(&self) -> &TypeInfo {
        &self.ty.data
    }

    /// The mdev type's name (`mbochs-small`).
    pub(crate) fn type_name(&self) -> &'static CStr {
        self.ty.pretty_name
    }

    /// The VRAM.
    pub(crate) fn vram(&self) -> &Vram {
        &self.vram
    }

    /// Where memory the device no longer uses is freed out of the way.
    pub(crate) fn reclaim_queue(&self) -> &OwnedQueue {
        self.reservation.reclaim_queue()
    }

    /// Drops the scanout buffers (and forgets the last plane): the next
    /// query makes them again from the VRAM's pages.
    #[inline]
    pub(crate) fn drop_scanouts(&self) {
        let mut state = self.state.lock();
        self.last_plane.forget();
        state.scanouts.clear();
    }

    /// The registers' migrated state.
    pub(crate) fn regs_snapshot(&self) -> Snapshot {
        self.state.lock().regs.snapshot(self.dispi.values())
    }

    /// Whether the registers could take `snap`.
    pub(crate) fn regs_can_restore(&self, snap: &Snapshot) -> bool {
        self.state.lock().regs.can_restore(snap)
    }

    /// Restores the registers' migrated state.
    pub(crate) fn regs_restore(&self, snap: &Snapshot) {
        self.state.lock().regs.restore(snap);
        self.dispi.restore(&snap.vbe);
    }

    /// VRAM size in bytes.
    fn memsize(&self) -> usize {
        self.type_info().memsize() as usize
    }

    /// Register access (BAR2, EDID region) of `len` bytes at `base` in
    /// region `index`: split into pieces like the C sample; the user's bytes
    /// are copied before (write) or after (read). The DISPI registers take no
    /// lock; the EDID (region, and its mirror in BAR2) is read and written
    /// under the device lock. An EDID access fails as a whole if any piece
    /// does.
    fn regs_access(&self, index: u32, base: usize, len: usize, mut user: UserIo<'_>) -> Result {
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
        let write = match &mut user {
            UserIo::Write(data) => {
                data.read_slice(bytes)?;
                true
            }
            UserIo::Read(_) => false,
        };
        let edid = match index {
            regions::BAR2 => false,
            regions::EDID => true,
            _ => return Err(EINVAL),
        };
        {
            let bytes = &mut *bytes;
            // The bytes of the piece at region offset `off`.
            fn piece(bytes: &mut [u8], start: usize, n: usize) -> Result<&mut [u8]> {
                bytes.get_mut(start..start + n).ok_or(EINVAL)
            }
            // BAR2 writes only reach the DISPI registers; reads past the EDID mirror only
            // read them: no lock for either.
            let bar2_lock_free = write || base >= regs::MMIO_EDID_END;
            let mut state = if edid || !bar2_lock_free {
                Some(self.state.lock())
            } else {
                None
            };
            let dispi = &self.dispi;
            match (edid, write, state.as_deref_mut()) {
                (false, false, state) => regs::for_each_piece(base, len, |off, n| {
                    let out = piece(bytes, off - base, n)?;
                    match &state {
                        Some(s) if off < regs::MMIO_EDID_END => s.regs.mmio_read(off, out),
                        _ => dispi.mmio_read(off, out),
                    }
                    Ok(())
                })?,
                (false, true, _) => regs::for_each_piece(base, len, |off, n| {
                    dispi.mmio_write(off, piece(bytes, off - base, n)?);
                    Ok(())
                })?,
                (true, _, None) => return Err(EINVAL),
                (true, false, Some(State { regs, .. })) => {
                    regs::for_each_piece(base, len, |off, n| {
                        regs.edid_read(off, piece(bytes, off - base, n)?)
                    })?
                }
                (true, true, Some(State { regs, .. })) => {
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
        if let UserIo::Read(out) = &mut user {
            out.write_slice(bytes)?;
        }
        Ok(())
    }

    /// BAR0 access: `len` bytes at VRAM offset `offset`, page by page.
    /// Only taking a page reference locks; the copy runs unlocked, so it may
    /// fault on a user mapping of this very VRAM.
    fn vram_access(&self, offset: usize, len: usize, mut user: UserIo<'_>) -> Result {
        let mut done = 0;
        while done < len {
            let pos = offset + done;
            let (index, in_page) = (pos / PAGE_SIZE, pos % PAGE_SIZE);
            let n = (PAGE_SIZE - in_page).min(len - done);
            let page = self.vram.page(index)?;
            match &mut user {
                UserIo::Write(data) => {
                    let res = page.copy_from_user(in_page, n, data);
                    // Even a failed copy may have changed some bytes.
                    self.vram.mark(index);
                    res?
                }
                UserIo::Read(out) => page.copy_to_user(in_page, n, out)?,
            }
            done += n;
        }
        Ok(())
    }
}

impl MigratedDevice for MbochsDevice {
    fn type_name(&self) -> &'static CStr {
        MbochsDevice::type_name(self)
    }

    fn type_info(&self) -> &TypeInfo {
        MbochsDevice::type_info(self)
    }

    fn vram(&self) -> &Vram {
        MbochsDevice::vram(self)
    }

    fn drop_scanouts(&self) {
        MbochsDevice::drop_scanouts(self)
    }

    fn regs_snapshot(&self) -> Snapshot {
        MbochsDevice::regs_snapshot(self)
    }

    fn regs_can_restore(&self, snap: &Snapshot) -> bool {
        MbochsDevice::regs_can_restore(self, snap)
    }

    fn regs_restore(&self, snap: &Snapshot) {
        MbochsDevice::regs_restore(self, snap)
    }

    fn reclaim_queue(&self) -> &OwnedQueue {
        MbochsDevice::reclaim_queue(self)
    }
}

/// The user side of a region access.
enum UserIo<'a> {
    /// A `read()`: the bytes go out here.
    Read(&'a mut UserWriter),
    /// A `write()`: the bytes come from here.
    Write(&'a mut UserSliceReader),
}

#[vtable]
impl emulated_pci::DeviceOps for MbochsDevice {
    const NUM_REGIONS: u32 = regions::NUM_REGIONS;
    const DISPLAY: Display = Display::DmaBuf;

    type Staged = migration::Staged;

    fn regions(&self) -> &[Region] {
        &self.regions
    }

    #[inline]
    fn read(&self, index: u32, offset: usize, len: usize, out: &mut UserWriter) -> Result {
        match index {
            regions::BAR0 => self.vram_access(offset, len, UserIo::Read(out)),
            _ => self.regs_access(index, offset, len, UserIo::Read(out)),
        }
    }

    #[inline]
    fn write(&self, index: u32, offset: usize, len: usize, data: &mut UserSliceReader) -> Result {
        match index {
            regions::BAR0 => self.vram_access(offset, len, UserIo::Write(data)),
            _ => self.regs_access(index, offset, len, UserIo::Write(data)),
        }
    }

    #[inline]
    fn mmap(&self, _index: u32, _offset: usize, vma: &NewMapping<'_>) -> Result {
        // BAR0 is the only mappable region; the fault handler maps its pages by offset.
        vm_fault::install(vma, self.vram.clone())
    }

    fn close(&self) {
        // Like the C sample's close_device: drop the device's buffers and VRAM pages.
        // dma-bufs still open keep their own page references.
        self.drop_scanouts();
        self.vram.release_all();
    }

    fn reset(&self) -> Result {
        self.dispi.reset();
        Ok(())
    }

    fn query_plane(&self, drm_plane_type: u32) -> Result<Option<Plane>> {
        // Only a primary plane: there is no cursor.
        if drm_plane_type != DRM_PLANE_TYPE_PRIMARY {
            return Ok(None);
        }
        // CAST: VRAM sizes are at most 64 MiB.
        let Some(mode) = self.dispi.mode(self.type_info(), self.memsize() as u64) else {
            return Ok(None);
        };
        // The mode of the last query (every frame but a mode change): its buffer, no lock.
        let id = match self.last_plane.lookup(&mode) {
            Some(id) => id,
            None => {
                let mut state = self.state.lock();
                let id = state.scanouts.get_or_create(&mode, &self.vram)?;
                self.last_plane.set(&mode, id);
                id
            }
        };
        Ok(Some(Plane {
            drm_format: mode.drm_format,
            width: mode.width,
            height: mode.height,
            stride: mode.stride,
            // A mode lies within VRAM, at most 64 MiB.
            size: u32::try_from(mode.size).map_err(|_| EINVAL)?,
            id,
            ..Plane::default()
        }))
    }

    fn get_dmabuf(&self, id: u32) -> Result<ARef<File>> {
        let mut state = self.state.lock();
        if id != self.last_plane.id() {
            // Another buffer becomes the most recently used.
            self.last_plane.forget();
        }
        let buf = state.scanouts.dma_buf(id)?;
        drop(state);
        Ok(DmaBuf::into_file(buf))
    }

    fn migration_origin(&self) -> Origin {
        self.origin()
    }

    fn registers_len(&self) -> usize {
        migration::REGS_LEN
    }

    fn save_registers(&self, w: &mut Writer<'_>) -> Result {
        self.save_sections(w)
    }

    fn memory(&self) -> &dyn TrackedMemory {
        &*self.vram
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
        // Nothing to prepare: applying swaps the VRAM.
        self.stage_finish(staged, log)
    }

    fn load_apply(&self, staged: migration::Staged, mappings: &UserMappings<'_>) {
        self.stage_apply(staged, mappings)
    }
}
