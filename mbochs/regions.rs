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

use crate::kernel_ext::{
    bindings,
    emulated_pci::Region,
    vfio::{REGION_MMAP, REGION_READ, REGION_WRITE},
};
use kernel::page::PAGE_SIZE;

/// Region index of BAR0, the VRAM.
pub(crate) const BAR0: u32 = bindings::VFIO_PCI_BAR0_REGION_INDEX;
/// Region index of BAR2, the MMIO registers.
pub(crate) const BAR2: u32 = bindings::VFIO_PCI_BAR2_REGION_INDEX;
/// Region index of the EDID region: the first one after the PCI regions.
pub(crate) const EDID: u32 = bindings::VFIO_PCI_NUM_REGIONS;
/// Number of regions (`VFIO_DEVICE_GET_INFO`).
pub(crate) const NUM_REGIONS: u32 = EDID + 1;

/// File offset and size of BAR2.
const MMIO_OFFSET: usize = PAGE_SIZE;
pub(crate) const MMIO_SIZE: usize = PAGE_SIZE;
/// File offset and size of the EDID region.
const EDID_OFFSET: usize = MMIO_OFFSET + MMIO_SIZE;
const EDID_SIZE: usize = PAGE_SIZE;
/// File offset of BAR0.
const BAR0_OFFSET: usize = EDID_OFFSET + EDID_SIZE;
/// Page offset of BAR0, for `mmap()`.
pub(crate) const BAR0_PGOFF: usize = BAR0_OFFSET / PAGE_SIZE;

/// The region table of a device with `memsize` bytes of VRAM.
pub(crate) const fn table(memsize: usize) -> [Region; 4] {
    let rw = REGION_READ | REGION_WRITE;
    [
        Region::CONFIG,
        Region::new(BAR2, MMIO_OFFSET, MMIO_SIZE, rw),
        Region::new(EDID, EDID_OFFSET, EDID_SIZE, rw).with_type(
            bindings::VFIO_REGION_TYPE_GFX,
            bindings::VFIO_REGION_SUBTYPE_GFX_EDID,
        ),
        Region::new(BAR0, BAR0_OFFSET, memsize, rw | REGION_MMAP),
    ]
}
