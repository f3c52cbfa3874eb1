// SPDX-License-Identifier: GPL-2.0

//! Region layout of the mdpy device file, as in the C sample.
//!
//! | index | region              | file offset | size          |
//! |-------|---------------------|-------------|---------------|
//! | 7     | PCI config space    | 0           | 256           |
//! | 0     | BAR0, framebuffer   | `PAGE_SIZE` | BAR0 size     |
//! | 16    | display (= BAR0)    | `PAGE_SIZE` | BAR0 size     |
//!
//! Other indices below `VFIO_PCI_NUM_REGIONS` exist with size zero; any
//! other index is invalid.

use crate::kernel_ext::{bindings, pci_config::CONFIG_SPACE_SIZE, vfio};
use kernel::{page::PAGE_SIZE, prelude::*};

/// Region index of the config space.
pub(crate) const CONFIG: u32 = bindings::VFIO_PCI_CONFIG_REGION_INDEX;
/// Region index of BAR0.
pub(crate) const BAR0: u32 = bindings::VFIO_PCI_BAR0_REGION_INDEX;
/// Region index of the display region (`QUERY_GFX_PLANE`'s `region_index`).
pub(crate) const DISPLAY: u32 = 16;
/// File offset of BAR0 (and of the display region).
pub(crate) const BAR0_OFFSET: usize = PAGE_SIZE;
/// Page offset of BAR0, for `mmap()`.
pub(crate) const BAR0_PGOFF: usize = BAR0_OFFSET / PAGE_SIZE;

/// Where a `len`-byte access at a file offset lands.
pub(crate) enum Target {
    /// Config space, at this offset.
    Config(usize),
    /// The framebuffer, at this offset.
    Framebuffer(usize),
}

/// Decodes an access; `EINVAL` unless it lies entirely within one region.
pub(crate) fn decode(offset: u64, len: usize, memsize: usize) -> Result<Target> {
    let offset = usize::try_from(offset).map_err(|_| EINVAL)?;
    let end = offset.checked_add(len).ok_or(EINVAL)?;
    if end <= CONFIG_SPACE_SIZE {
        Ok(Target::Config(offset))
    } else if offset >= BAR0_OFFSET && end - BAR0_OFFSET <= memsize {
        Ok(Target::Framebuffer(offset - BAR0_OFFSET))
    } else {
        Err(EINVAL)
    }
}

/// `VFIO_DEVICE_GET_REGION_INFO` for region `index`.
pub(crate) fn info(index: u32, memsize: usize) -> Result<vfio::RegionInfo> {
    let rw = vfio::REGION_READ | vfio::REGION_WRITE;
    match index {
        CONFIG => Ok(vfio::RegionInfo {
            offset: 0,
            size: CONFIG_SPACE_SIZE as u64,
            flags: rw,
        }),
        BAR0 | DISPLAY => Ok(vfio::RegionInfo {
            offset: BAR0_OFFSET as u64,
            size: memsize as u64,
            flags: rw | vfio::REGION_MMAP,
        }),
        i if i < bindings::VFIO_PCI_NUM_REGIONS => Ok(vfio::RegionInfo::default()),
        _ => Err(EINVAL),
    }
}
