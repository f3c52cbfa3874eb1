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

use crate::kernel_ext::{
    bindings,
    emulated_pci::Region,
    vfio::{REGION_MMAP, REGION_READ, REGION_WRITE},
};
use kernel::page::PAGE_SIZE;

/// Region index of BAR0.
pub(crate) const BAR0: u32 = bindings::VFIO_PCI_BAR0_REGION_INDEX;
/// Region index of the display region (`QUERY_GFX_PLANE`'s `region_index`).
pub(crate) const DISPLAY: u32 = 16;
/// Regions `VFIO_DEVICE_GET_INFO` reports.
pub(crate) const NUM_REGIONS: u32 = bindings::VFIO_PCI_NUM_REGIONS;
/// File offset of BAR0 (and of the display region).
const BAR0_OFFSET: usize = PAGE_SIZE;
/// File offset of BAR0, in pages.
pub(crate) const BAR0_PGOFF: usize = BAR0_OFFSET / PAGE_SIZE;

/// The region table of a device whose framebuffer is `memsize` bytes.
pub(crate) const fn table(memsize: usize) -> [Region; 3] {
    let flags = REGION_READ | REGION_WRITE | REGION_MMAP;
    [
        Region::CONFIG,
        Region::new(BAR0, BAR0_OFFSET, memsize, flags),
        Region::new(DISPLAY, BAR0_OFFSET, memsize, flags),
    ]
}
