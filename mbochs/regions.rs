// SPDX-License-Identifier: GPL-2.0

//! Region layout of the mbochs device file, as in the C sample.
//!
//! | index | region                 | file offset     | size       |
//! |-------|------------------------|-----------------|------------|
//! | 7     | PCI config space       | 0               | 256        |
//! | 2     | BAR2, MMIO registers   | `PAGE_SIZE`     | `PAGE_SIZE`|
//! | 9     | graphics EDID          | `2 * PAGE_SIZE` | `PAGE_SIZE`|
//! | 0     | BAR0, VRAM             | `3 * PAGE_SIZE` | VRAM size  |
//!
//! Other indices below 10 exist with size zero; any other index is invalid.

use crate::kernel_ext::{bindings, pci_config::CONFIG_SPACE_SIZE, vfio};
use kernel::{page::PAGE_SIZE, prelude::*};

/// Region index of the config space.
pub(crate) const CONFIG: u32 = bindings::VFIO_PCI_CONFIG_REGION_INDEX;
/// Region index of BAR0, the VRAM.
pub(crate) const BAR0: u32 = bindings::VFIO_PCI_BAR0_REGION_INDEX;
/// Region index of BAR2, the MMIO registers.
pub(crate) const BAR2: u32 = bindings::VFIO_PCI_BAR2_REGION_INDEX;
/// Region index of the EDID region: the first one after the PCI regions.
pub(crate) const EDID: u32 = bindings::VFIO_PCI_NUM_REGIONS;
/// Number of regions (`VFIO_DEVICE_GET_INFO`).
pub(crate) const NUM_REGIONS: u32 = EDID + 1;

/// File offset and size of BAR2.
pub(crate) const MMIO_OFFSET: usize = PAGE_SIZE;
pub(crate) const MMIO_SIZE: usize = PAGE_SIZE;
/// File offset and size of the EDID region.
pub(crate) const EDID_OFFSET: usize = MMIO_OFFSET + MMIO_SIZE;
pub(crate) const EDID_SIZE: usize = PAGE_SIZE;
/// File offset of BAR0.
pub(crate) const BAR0_OFFSET: usize = EDID_OFFSET + EDID_SIZE;
/// Page offset of BAR0, for `mmap()`.
pub(crate) const BAR0_PGOFF: usize = BAR0_OFFSET / PAGE_SIZE;

/// Where an access lands: the region and the offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Config space.
    Config(usize),
    /// BAR2, the MMIO registers.
    Mmio(usize),
    /// The EDID region.
    Edid(usize),
    /// BAR0, the VRAM.
    Vram(usize),
}

/// Decodes a `len`-byte access at file offset `offset`; `EINVAL` unless it
/// lies entirely within one region.
pub(crate) fn decode(offset: u64, len: usize, memsize: usize) -> Result<Target> {
    let offset = usize::try_from(offset).map_err(|_| EINVAL)?;
    let end = offset.checked_add(len).ok_or(EINVAL)?;
    let within = |start: usize, size: usize| offset >= start && end - start <= size;
    if end <= CONFIG_SPACE_SIZE {
        Ok(Target::Config(offset))
    } else if within(MMIO_OFFSET, MMIO_SIZE) {
        Ok(Target::Mmio(offset - MMIO_OFFSET))
    } else if within(EDID_OFFSET, EDID_SIZE) {
        Ok(Target::Edid(offset - EDID_OFFSET))
    } else if within(BAR0_OFFSET, memsize) {
        Ok(Target::Vram(offset - BAR0_OFFSET))
    } else {
        Err(EINVAL)
    }
}

/// `VFIO_DEVICE_GET_REGION_INFO` for region `index`.
pub(crate) fn info(
    index: u32,
    memsize: usize,
    caps: &mut vfio::InfoCaps<'_>,
) -> Result<vfio::RegionInfo> {
    let rw = vfio::REGION_READ | vfio::REGION_WRITE;
    // CAST: region offsets and sizes are small `usize` constants, or the VRAM size.
    let region = |offset: usize, size: usize, flags: u32| vfio::RegionInfo {
        offset: offset as u64,
        size: size as u64,
        flags,
    };
    match index {
        CONFIG => Ok(region(0, CONFIG_SPACE_SIZE, rw)),
        BAR0 => Ok(region(BAR0_OFFSET, memsize, rw | vfio::REGION_MMAP)),
        BAR2 => Ok(region(MMIO_OFFSET, MMIO_SIZE, rw)),
        EDID => {
            caps.add_region_type(
                bindings::VFIO_REGION_TYPE_GFX,
                bindings::VFIO_REGION_SUBTYPE_GFX_EDID,
            )?;
            Ok(region(
                EDID_OFFSET,
                EDID_SIZE,
                rw | bindings::VFIO_REGION_INFO_FLAG_CAPS,
            ))
        }
        i if i < NUM_REGIONS => Ok(vfio::RegionInfo::default()),
        _ => Err(EINVAL),
    }
}
