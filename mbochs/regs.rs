// SPDX-License-Identifier: GPL-2.0

//! The registers of an mbochs device: the bochs DISPI interface in BAR2
//! (with an EDID mirror), the VFIO graphics EDID region, and the scanout
//! mode they describe.
//!
//! The DISPI registers are atomics ([`Dispi`]): the guest programs them and
//! QEMU's per-frame `QUERY_GFX_PLANE` reads them, neither takes a lock (a
//! mode is computed from one load of each register, as a guest's register
//! writes land one by one anyway). The EDID state is behind the device lock
//! ([`Regs`]).
//!
//! Accesses are split into naturally aligned pieces of 4, 2 and 1 bytes, as
//! the C sample does. In BAR2, what the hardware would not decode is ignored
//! and reads as zeros, as on a real device. In the EDID region (a VFIO
//! interface to the host, not guest-visible) such accesses fail with
//! `EINVAL` and change nothing.

use crate::{kernel_ext::bindings, TypeInfo};
use core::mem::{offset_of, size_of};
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// BAR2 layout: the EDID blob, mirrored for the guest.
pub(crate) const MMIO_EDID_END: usize = 0x400;
/// BAR2 layout: the DISPI registers, 16 bits each.
const MMIO_DISPI_START: usize = 0x500;
const MMIO_DISPI_END: usize = 0x516;

/// DISPI register indices.
const VBE_DISPI_INDEX_ID: usize = 0x0;
const VBE_DISPI_INDEX_XRES: usize = 0x1;
const VBE_DISPI_INDEX_YRES: usize = 0x2;
const VBE_DISPI_INDEX_BPP: usize = 0x3;
const VBE_DISPI_INDEX_ENABLE: usize = 0x4;
const VBE_DISPI_INDEX_VIRT_WIDTH: usize = 0x6;
const VBE_DISPI_INDEX_X_OFFSET: usize = 0x8;
const VBE_DISPI_INDEX_Y_OFFSET: usize = 0x9;
const VBE_DISPI_INDEX_VIDEO_MEMORY_64K: usize = 0xa;
const VBE_DISPI_INDEX_COUNT: usize = 0xb;

/// The DISPI interface version the device reports.
const VBE_DISPI_ID5: u16 = 0xb0c5;
/// `ENABLE` bit: the display is on.
const VBE_DISPI_ENABLED: u16 = 0x01;

/// EDID region layout: registers (`struct vfio_region_gfx_edid`) in the
/// first half, the blob in the second.
pub(crate) const EDID_BLOB_OFFSET: usize = 0x800;
/// Largest EDID blob.
pub(crate) const EDID_BLOB_SIZE: usize = 0x400;
const EDID_REGS_SIZE: usize = size_of::<bindings::vfio_region_gfx_edid>();

/// The smallest mode the C sample accepts.
const MIN_RES: u32 = 64;

/// A scanout mode, as derived from the DISPI registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mode {
    /// DRM fourcc.
    pub(crate) drm_format: u32,
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
    /// Bytes per line.
    pub(crate) stride: u32,
    /// Offset of the first visible pixel in VRAM.
    pub(crate) offset: u64,
    /// `stride * height`.
    pub(crate) size: u64,
}

/// Calls `f(offset, len)` for each piece of a `len`-byte access at region
/// offset `offset`, split like the C sample splits it (regions start at page
/// boundaries, so alignment in the region is alignment in the file). Stops at
/// the first error.
pub(crate) fn for_each_piece(
    offset: usize,
    len: usize,
    mut f: impl FnMut(usize, usize) -> Result,
) -> Result {
    let mut done = 0;
    while done < len {
        let (pos, left) = (offset + done, len - done);
        let n = if left >= 4 && pos % 4 == 0 {
            4
        } else if left >= 2 && pos % 2 == 0 {
            2
        } else {
            1
        };
        f(pos, n)?;
        done += n;
    }
    Ok(())
}

/// The guest- and host-set register state a migration carries: the DISPI
/// registers and the EDID the host set (the other EDID registers are fixed
/// by the device type).
#[derive(Clone)]
pub(crate) struct Snapshot {
    /// The DISPI registers.
    pub(crate) vbe: [u16; VBE_DISPI_INDEX_COUNT],
    /// `edid_size`.
    pub(crate) edid_size: u32,
    /// `link_state`.
    pub(crate) link_state: u32,
    /// The EDID blob.
    pub(crate) edid_blob: [u8; EDID_BLOB_SIZE],
}

impl Snapshot {
    /// Bytes of [`Snapshot::vbe`] in a stream.
    pub(crate) const VBE_LEN: usize = 2 * VBE_DISPI_INDEX_COUNT;
    /// Bytes of the EDID state in a stream: size, link state, blob.
    pub(crate) const EDID_LEN: usize = 8 + EDID_BLOB_SIZE;
}

/// The DISPI registers of a device.
pub(crate) struct Dispi {
    /// The 16-bit registers, one atomic each.
    vbe: [Atomic<u32>; VBE_DISPI_INDEX_COUNT],
    /// `VBE_DISPI_INDEX_VIDEO_MEMORY_64K` after reset.
    video_memory_64k: u16,
}

impl Dispi {
    /// Registers after reset, for a device of type `ty`.
    pub(crate) fn new(ty: &TypeInfo) -> Self {
        let dispi = Self {
            vbe: [const { Atomic::new(0) }; VBE_DISPI_INDEX_COUNT],
            // CAST: at most 64 MiB / 64 KiB = 1024.
            video_memory_64k: (ty.memsize() / (64 * 1024)) as u16,
        };
        dispi.reset();
        dispi
    }

    /// Device reset: back to the initial values.
    pub(crate) fn reset(&self) {
        let mut vbe = [0; VBE_DISPI_INDEX_COUNT];
        vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
        vbe[VBE_DISPI_INDEX_VIDEO_MEMORY_64K] = self.video_memory_64k;
        self.restore(&vbe);
    }

    /// The registers' values now.
    pub(crate) fn values(&self) -> [u16; VBE_DISPI_INDEX_COUNT] {
        // CAST: only 16-bit values are ever stored.
        self.vbe.each_ref().map(|r| r.load(Relaxed) as u16)
    }

    /// Sets every register (a migrated state).
    pub(crate) fn restore(&self, vbe: &[u16; VBE_DISPI_INDEX_COUNT]) {
        for (r, v) in self.vbe.iter().zip(vbe) {
            r.store(u32::from(*v), Relaxed);
        }
    }

    /// Reads one piece of BAR2 at `offset`, at or past the EDID mirror, into
    /// `out` (zeros unless it is a DISPI register).
    pub(crate) fn mmio_read(&self, offset: usize, out: &mut [u8]) {
        match dispi_index(offset, out.len()).and_then(|i| self.vbe.get(i)) {
            // CAST: only 16-bit values are ever stored.
            Some(r) => out.copy_from_slice(&(r.load(Relaxed) as u16).to_le_bytes()),
            None => out.fill(0),
        }
    }

    /// Writes one piece of BAR2 at `offset`; only the DISPI registers take
    /// writes.
    pub(crate) fn mmio_write(&self, offset: usize, data: &[u8]) {
        let reg = dispi_index(offset, data.len()).and_then(|i| self.vbe.get(i));
        if let (Some(r), &[lo, hi]) = (reg, data) {
            r.store(u32::from(u16::from_le_bytes([lo, hi])), Relaxed);
        }
    }

    /// The scanout mode the registers describe, if it is a valid plane in
    /// `memsize` bytes of VRAM for a device of type `ty`.
    ///
    /// Whatever the guest wrote, a returned mode lies within VRAM:
    /// `offset + size <= memsize`.
    pub(crate) fn mode(&self, ty: &TypeInfo, memsize: u64) -> Option<Mode> {
        const BYTES_PER_PIXEL: u32 = 4;
        let vbe = self.values();
        if vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED == 0 || vbe[VBE_DISPI_INDEX_BPP] != 32 {
            return None;
        }
        let width = u32::from(vbe[VBE_DISPI_INDEX_XRES]);
        let height = u32::from(vbe[VBE_DISPI_INDEX_YRES]);
        if width < MIN_RES || height < MIN_RES {
            return None;
        }
        // The EDID's largest mode (0: no limit) bounds the plane.
        if (ty.max_x != 0 && width > ty.max_x) || (ty.max_y != 0 && height > ty.max_y) {
            return None;
        }
        let virt_width = u32::from(vbe[VBE_DISPI_INDEX_VIRT_WIDTH]).max(width);
        let stride = virt_width.checked_mul(BYTES_PER_PIXEL)?;
        let size = u64::from(stride).checked_mul(u64::from(height))?;
        let offset = u64::from(vbe[VBE_DISPI_INDEX_X_OFFSET])
            .checked_mul(u64::from(BYTES_PER_PIXEL))?
            .checked_add(
                u64::from(vbe[VBE_DISPI_INDEX_Y_OFFSET]).checked_mul(u64::from(stride))?,
            )?;
        if offset.checked_add(size)? > memsize {
            return None;
        }
        Some(Mode {
            drm_format: bindings::DRM_FORMAT_XRGB8888,
            width,
            height,
            stride,
            offset,
            size,
        })
    }
}

/// The EDID state of a device (the VFIO graphics EDID region and its mirror
/// in BAR2).
pub(crate) struct Regs {
    edid: bindings::vfio_region_gfx_edid,
    edid_blob: [u8; EDID_BLOB_SIZE],
}

impl Regs {
    /// The EDID state of a new device of type `ty`.
    pub(crate) fn new(ty: &TypeInfo) -> Self {
        Self {
            edid: bindings::vfio_region_gfx_edid {
                // CAST: small constants.
                edid_offset: EDID_BLOB_OFFSET as u32,
                edid_max_size: EDID_BLOB_SIZE as u32,
                max_xres: ty.max_x,
                max_yres: ty.max_y,
                ..Default::default()
            },
            edid_blob: [0; EDID_BLOB_SIZE],
        }
    }

    /// The state a migration saves, with the DISPI registers' values `vbe`.
    pub(crate) fn snapshot(&self, vbe: [u16; VBE_DISPI_INDEX_COUNT]) -> Snapshot {
        Snapshot {
            vbe,
            edid_size: self.edid.edid_size,
            link_state: self.edid.link_state,
            edid_blob: self.edid_blob,
        }
    }

    /// Whether `snap` is a state this device could be in: an EDID no larger
    /// than the blob.
    pub(crate) fn can_restore(&self, snap: &Snapshot) -> bool {
        snap.edid_size <= self.edid.edid_max_size
    }

    /// Restores the EDID of a migrated state that [`Regs::can_restore`]
    /// accepted (the DISPI registers are [`Dispi::restore`]'s).
    pub(crate) fn restore(&mut self, snap: &Snapshot) {
        self.edid.edid_size = snap.edid_size;
        self.edid.link_state = snap.link_state;
        self.edid_blob = snap.edid_blob;
    }

    /// Reads one piece of BAR2's EDID mirror (below [`MMIO_EDID_END`]) at
    /// `offset` into `out` (zeros unless the link is up and the EDID that
    /// long).
    pub(crate) fn mmio_read(&self, offset: usize, out: &mut [u8]) {
        out.fill(0);
        let edid = &self.edid;
        // CAST: the offset is checked against 0x400 first.
        if offset < MMIO_EDID_END
            && edid.link_state == bindings::VFIO_DEVICE_GFX_LINK_STATE_UP
            && (offset as u32) < edid.edid_size
        {
            if let Some(src) = self.edid_blob.get(offset..offset + out.len()) {
                out.copy_from_slice(src);
            }
        }
    }

    /// Reads one piece of the EDID region at `offset` into `out`; `EINVAL` if
    /// it hits neither a register (aligned 32-bit accesses only) nor the blob
    /// (up to `edid_max_size`).
    pub(crate) fn edid_read(&self, offset: usize, out: &mut [u8]) -> Result {
        if offset < EDID_BLOB_OFFSET {
            let value = self.edid_reg(offset, out.len()).ok_or(EINVAL)?;
            out.copy_from_slice(&value.to_le_bytes());
        } else {
            let src = self
                .blob_range(offset - EDID_BLOB_OFFSET, out.len())
                .ok_or(EINVAL)?;
            out.copy_from_slice(&self.edid_blob[src]);
        }
        Ok(())
    }

    /// Checks that [`Regs::edid_write`] of this piece would succeed, without
    /// changing anything.
    pub(crate) fn edid_write_check(&self, offset: usize, data: &[u8]) -> Result {
        if offset >= EDID_BLOB_OFFSET {
            self.blob_range(offset - EDID_BLOB_OFFSET, data.len())
                .ok_or(EINVAL)?;
            return Ok(());
        }
        self.edid_reg(offset, data.len()).ok_or(EINVAL)?;
        let value = u32::from_le_bytes(<[u8; 4]>::try_from(data).map_err(|_| EINVAL)?);
        if offset == offset_of!(bindings::vfio_region_gfx_edid, edid_size)
            && value > self.edid.edid_max_size
        {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Writes one piece of the EDID region at `offset`; `EINVAL` (and no
    /// change) for what [`Regs::edid_read`] refuses, and for an `edid_size`
    /// above `edid_max_size`. Of the registers, only `edid_size` and
    /// `link_state` are writable; writes to the others are ignored.
    pub(crate) fn edid_write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.edid_write_check(offset, data)?;
        if offset >= EDID_BLOB_OFFSET {
            let dst = self
                .blob_range(offset - EDID_BLOB_OFFSET, data.len())
                .ok_or(EINVAL)?;
            self.edid_blob[dst].copy_from_slice(data);
            return Ok(());
        }
        let value = u32::from_le_bytes(<[u8; 4]>::try_from(data).map_err(|_| EINVAL)?);
        match offset {
            o if o == offset_of!(bindings::vfio_region_gfx_edid, edid_size) => {
                self.edid.edid_size = value
            }
            o if o == offset_of!(bindings::vfio_region_gfx_edid, link_state) => {
                self.edid.link_state = value
            }
            // Read-only registers.
            _ => {}
        }
        Ok(())
    }

    /// The EDID register at `offset`, if a `len`-byte access there hits one:
    /// 4-byte aligned accesses only.
    fn edid_reg(&self, offset: usize, len: usize) -> Option<u32> {
        if len != 4 || offset % 4 != 0 || offset + len > EDID_REGS_SIZE {
            return None;
        }
        let e = &self.edid;
        let regs = [
            e.edid_offset,
            e.edid_max_size,
            e.edid_size,
            e.max_xres,
            e.max_yres,
            e.link_state,
        ];
        regs.get(offset / 4).copied()
    }

    /// The blob bytes a `len`-byte access at blob offset `offset` hits, if it
    /// lies within `edid_max_size`.
    fn blob_range(&self, offset: usize, len: usize) -> Option<core::ops::Range<usize>> {
        let end = offset.checked_add(len)?;
        // CAST: `edid_max_size` is a read-only register set to `EDID_BLOB_SIZE`.
        (end <= self.edid.edid_max_size as usize && end <= EDID_BLOB_SIZE).then_some(offset..end)
    }
}

/// The DISPI register a `len`-byte BAR2 access at `offset` hits: 16-bit
/// accesses only.
fn dispi_index(offset: usize, len: usize) -> Option<usize> {
    if len != 2 || !(MMIO_DISPI_START..MMIO_DISPI_END).contains(&offset) {
        return None;
    }
    let index = (offset - MMIO_DISPI_START) / 2;
    (index < VBE_DISPI_INDEX_COUNT).then_some(index)
}
