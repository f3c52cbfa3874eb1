// SPDX-License-Identifier: GPL-2.0

//! Live migration of an mbochs: its stream sections.
//!
//! Besides the configuration space (saved by the emulated PCI layer), an
//! mbochs's state is its registers and its VRAM. The stream carries:
//!
//! | section                   | key        | payload                                        |
//! |---------------------------|------------|------------------------------------------------|
//! | [`SECTION_DISPI`] (0x100) | 0          | the 11 DISPI registers (u16 LE)                |
//! | [`SECTION_EDID`] (0x101)  | 0          | `edid_size`, `link_state` (u32 LE), 1 KiB blob |
//! | `SECTION_MEM_PAGE` (2)    | page index | one VRAM page; only the pages that exist       |
//!
//! VRAM pages are allocated on first touch; a page the source never touched
//! is not sent, and after loading a destination page the stream does not
//! hold reads as zeros, like one never touched.

use crate::{
    device::MbochsDevice,
    kernel_ext::{
        migration::stream::{self, Origin, Stream, Writer, SECTION_MEM_PAGE},
        page_ref::PageRef,
    },
    regs::Snapshot,
    MBOCHS_NAME,
};
use kernel::{device::Device as KDevice, page::PAGE_SIZE, prelude::*};

/// Section id of the DISPI registers.
pub(crate) const SECTION_DISPI: u16 = stream::SECTION_DRIVER_FIRST;
/// Section id of the EDID state.
pub(crate) const SECTION_EDID: u16 = stream::SECTION_DRIVER_FIRST + 1;

/// A page of zeros, for VRAM pages a stream does not hold.
static ZEROS: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// What [`MbochsDevice::check_sections`] prepares.
pub(crate) struct Staged {
    /// The registers, from the last register sections of the stream.
    regs: KBox<Snapshot>,
    /// For each VRAM page the stream holds, the page it goes to (allocated
    /// by the check, so that applying cannot fail).
    targets: KVVec<Option<PageRef>>,
    /// Pages allocated on this device that the stream does not hold.
    zero: KVVec<PageRef>,
}

/// The bytes of the register sections.
pub(crate) const REGS_LEN: usize =
    2 * stream::SECTION_HEADER_LEN + Snapshot::VBE_LEN + Snapshot::EDID_LEN;

impl MbochsDevice {
    /// What this device's streams say they are from.
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            driver: MBOCHS_NAME,
            type_name: self.type_name(),
            mem_size: u64::from(self.type_info().memsize()),
        }
    }

    /// Saves the registers (the VRAM pages are saved by the emulated PCI
    /// layer).
    pub(crate) fn save_sections(&self, w: &mut Writer<'_>) -> Result {
        let snap = KBox::new(self.regs_snapshot(), GFP_KERNEL)?;
        let mut vbe = [0u8; Snapshot::VBE_LEN];
        for (chunk, v) in vbe.chunks_exact_mut(2).zip(snap.vbe) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        w.section(SECTION_DISPI, 0, false, &vbe)?;
        w.section_with(SECTION_EDID, 0, false, Snapshot::EDID_LEN, |out| {
            let (head, blob) = out.split_at_mut(8);
            head[..4].copy_from_slice(&snap.edid_size.to_le_bytes());
            head[4..].copy_from_slice(&snap.link_state.to_le_bytes());
            blob.copy_from_slice(&snap.edid_blob);
            Ok(())
        })
    }

    /// Checks the device's sections: both register sections with valid
    /// values, pages within VRAM; allocates the pages the stream fills.
    pub(crate) fn check_sections(&self, dev: &KDevice, stream: &Stream<'_>) -> Result<Staged> {
        let vram = self.vram();
        let pages = vram.page_count();
        let mut in_stream = KVVec::from_elem(false, pages, GFP_KERNEL)?;
        let mut regs = KBox::new(self.regs_snapshot(), GFP_KERNEL)?;
        let (mut dispi_seen, mut edid_seen) = (false, false);
        for s in stream.driver_sections() {
            match s.id {
                SECTION_DISPI => {
                    let bytes = s.fixed::<{ Snapshot::VBE_LEN }>(dev)?;
                    for (v, chunk) in regs.vbe.iter_mut().zip(bytes.chunks_exact(2)) {
                        *v = u16::from_le_bytes([chunk[0], chunk[1]]);
                    }
                    dispi_seen = true;
                }
                SECTION_EDID => {
                    let bytes = s.fixed::<{ Snapshot::EDID_LEN }>(dev)?;
                    let (head, blob) = bytes.split_at(8);
                    regs.edid_size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                    regs.link_state = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                    regs.edid_blob.copy_from_slice(blob);
                    edid_seen = true;
                }
                SECTION_MEM_PAGE => {
                    let index = s.mem_page(dev, pages, "VRAM")?;
                    *in_stream.get_mut(index).ok_or(stream::ERR_INVALID)? = true;
                }
                _ => s.unknown(dev)?,
            }
        }
        if !dispi_seen || !edid_seen {
            dev_err!(
                dev,
                "migration: stream refused: no {} section\n",
                if dispi_seen { "EDID" } else { "DISPI register" }
            );
            return Err(stream::ERR_TRUNCATED);
        }
        if !self.regs_can_restore(&regs) {
            dev_err!(
                dev,
                "migration: stream refused: EDID of {} bytes, the most is {}\n",
                regs.edid_size,
                crate::regs::EDID_BLOB_SIZE
            );
            return Err(stream::ERR_INVALID);
        }
        // The pages the stream fills, allocated now (a new page reads as zeros, as an
        // untouched one does), and the allocated ones it does not hold, to be zeroed.
        let mut targets = KVVec::with_capacity(pages, GFP_KERNEL)?;
        for (index, wanted) in in_stream.iter().enumerate() {
            let page = if *wanted {
                Some(vram.page(index)?)
            } else {
                None
            };
            targets.push(page, GFP_KERNEL)?;
        }
        let mut zero = KVVec::new();
        for (index, page) in vram.allocated()? {
            if !in_stream.get(index).copied().unwrap_or(false) {
                zero.push(page, GFP_KERNEL)?;
            }
        }
        Ok(Staged {
            regs,
            targets,
            zero,
        })
    }

    /// Applies a checked stream: registers, then VRAM pages in stream order
    /// (a page sent again replaces the earlier copy), then zeros in the pages
    /// it does not hold.
    pub(crate) fn apply_sections(&self, stream: &Stream<'_>, staged: Staged) {
        self.regs_restore(&staged.regs);
        for s in stream.driver_sections() {
            if s.id != SECTION_MEM_PAGE {
                continue;
            }
            let target = usize::try_from(s.key)
                .ok()
                .and_then(|i| staged.targets.get(i))
                .and_then(|p| p.as_ref());
            if let Some(page) = target {
                // Checked: a whole page, so this cannot fail.
                let _ = page.write(0, s.payload);
            }
        }
        for page in staged.zero.iter() {
            // A whole page: cannot fail.
            let _ = page.write(0, &ZEROS);
        }
    }
}
