// SPDX-License-Identifier: GPL-2.0

//! `dma_buf`: an exporter gets the importer's device as a plain `&Device`,
//! never as `Device<Bound>` (a proof of ownership it does not have, which
//! opens the bus device's bound-only APIs), and can map a table only for
//! that device, in `Exporter::map` (issue 24, item 5: `Attachment::dev()`
//! was a `&Device<Bound>` and `MappedSgTable::from_pages` took any bound
//! device, so a driver could hand the importer a table mapped for another
//! device). The mapping itself is device-managed, which `rust/dma_buf.rs`
//! asserts at compile time (`_assert_mapping_device_managed`).

use crate::kernel_ext::{
    dma_buf::{Attachment, MappedSgTable},
    page_ref::PageRef,
};
use kernel::{dma::DataDirection, prelude::*};

/// What `Exporter::map` does: log with the importer's device, map the pages
/// for it.
pub fn map(
    attachment: &Attachment,
    pages: KVVec<PageRef>,
    size: usize,
    dir: DataDirection,
) -> Result<MappedSgTable> {
    dev_dbg!(attachment.dev(), "mapping {} bytes\n", size);
    MappedSgTable::from_pages(attachment, pages, size, dir)
}

/// Takes the importer's device as bound to its driver.
#[cfg(kx_misuse_dma_buf_attachment_bound)]
pub fn importer(attachment: &Attachment) -> &kernel::device::Device<kernel::device::Bound> {
    attachment.dev() //~ ERROR E0308
}

/// Takes the importer's device as bound through the layer's own accessor.
#[cfg(kx_misuse_dma_buf_bound_dev)]
pub fn importer_bound(attachment: &Attachment) -> &kernel::device::Device<kernel::device::Bound> {
    // SAFETY: None: the function is private to the layer.
    unsafe { attachment.bound_dev() } //~ ERROR E0624
}

/// Maps a table for a bound device of the driver's choosing (e.g. its own),
/// to hand to an importer whose device then DMAs to the wrong addresses.
#[cfg(kx_misuse_dma_buf_map_other_device)]
pub fn map_for(
    dev: &kernel::device::Device<kernel::device::Bound>,
    pages: KVVec<PageRef>,
    size: usize,
    dir: DataDirection,
) -> Result<MappedSgTable> {
    MappedSgTable::from_pages(dev, pages, size, dir) //~ ERROR E0308
}
