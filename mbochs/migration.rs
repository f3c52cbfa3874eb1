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
        migration::{
            refusal_log::RefusalLog,
            stream::{self, Origin, Section, Writer, SECTION_MEM_PAGE},
        },
        page_ref::PageRef,
    },
    regs::Snapshot,
    MBOCHS_NAME,
};
use kernel::{page::PAGE_SIZE, prelude::*};

/// Section id of the DISPI registers.
pub(crate) const SECTION_DISPI: u16 = stream::SECTION_DRIVER_FIRST;
/// Section id of the EDID state.
pub(crate) const SECTION_EDID: u16 = stream::SECTION_DRIVER_FIRST + 1;

/// A page of zeros, for VRAM pages a stream does not hold.
static ZEROS: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// A destination's staging copy.
pub(crate) struct Staged {
    /// The registers, from the last register sections of the stream.
    regs: KBox<Snapshot>,
    dispi_seen: bool,
    edid_seen: bool,
    /// The last copy of each VRAM page the stream holds.
    pages: KVVec<Option<KVVec<u8>>>,
    /// Prepared by [`MbochsDevice::stage_finish`], so that applying cannot
    /// fail: the VRAM page each staged page goes to, and the allocated pages
    /// the stream does not hold (to be zeroed).
    targets: KVVec<(usize, PageRef)>,
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

    /// A fresh staging copy: the registers as they are, no page.
    pub(crate) fn stage_begin(&self) -> Result<Staged> {
        let count = self.vram().page_count();
        let mut pages = KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..count {
            pages.push(None, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Staged {
            regs: KBox::new(self.regs_snapshot(), GFP_KERNEL_ACCOUNT)?,
            dispi_seen: false,
            edid_seen: false,
            pages,
            targets: KVVec::new(),
            zero: KVVec::new(),
        })
    }

    /// Checks one section (register sections of the right size and with
    /// values the device takes, pages within VRAM) and copies it into the
    /// staging copy.
    pub(crate) fn stage_section(
        &self,
        staged: &mut Staged,
        s: &Section<'_>,
        log: &RefusalLog<'_>,
    ) -> Result {
        match s.id {
            SECTION_DISPI => {
                let bytes = s.fixed::<{ Snapshot::VBE_LEN }>(log)?;
                for (v, chunk) in staged.regs.vbe.iter_mut().zip(bytes.chunks_exact(2)) {
                    *v = u16::from_le_bytes([chunk[0], chunk[1]]);
                }
                staged.dispi_seen = true;
            }
            SECTION_EDID => {
                let bytes = s.fixed::<{ Snapshot::EDID_LEN }>(log)?;
                let (head, blob) = bytes.split_at(8);
                let regs = &mut staged.regs;
                regs.edid_size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                regs.link_state = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                regs.edid_blob.copy_from_slice(blob);
                if !self.regs_can_restore(regs) {
                    return Err(log.refuse(
                        stream::ERR_INVALID,
                        format_args!(
                            "EDID of {} bytes, the most is {}",
                            regs.edid_size,
                            crate::regs::EDID_BLOB_SIZE
                        ),
                    ));
                }
                staged.edid_seen = true;
            }
            SECTION_MEM_PAGE => {
                let index = s.mem_page(log, self.vram().page_count(), "VRAM")?;
                let bytes = s.fixed::<PAGE_SIZE>(log)?;
                match staged.pages.get_mut(index).ok_or(stream::ERR_INVALID)? {
                    Some(page) => {
                        // An array copy: the lengths are the same by type, no panic path.
                        let page: &mut [u8; PAGE_SIZE] =
                            page.as_mut_slice().try_into().map_err(|_| EINVAL)?;
                        *page = *bytes;
                    }
                    slot => {
                        let mut page = KVVec::with_capacity(PAGE_SIZE, GFP_KERNEL_ACCOUNT)?;
                        page.extend_from_slice(bytes, GFP_KERNEL_ACCOUNT)?;
                        *slot = Some(page);
                    }
                }
            }
            _ => s.unknown(log)?,
        }
        Ok(())
    }

    /// The place of page `key` in the staging copy (a page of zeros the
    /// first time).
    pub(crate) fn stage_page<'a>(
        &self,
        staged: &'a mut Staged,
        key: u64,
        log: &RefusalLog<'_>,
    ) -> Result<&'a mut [u8; PAGE_SIZE]> {
        let index = stream::page_index(key, log, self.vram().page_count(), "VRAM")?;
        let slot = staged.pages.get_mut(index).ok_or(stream::ERR_INVALID)?;
        let page = match slot {
            Some(page) => page,
            None => slot.insert(KVVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL_ACCOUNT)?),
        };
        page.as_mut_slice().try_into().map_err(|_| EINVAL)
    }

    /// The stream is complete: both register sections came; allocates the
    /// VRAM pages the stream fills.
    pub(crate) fn stage_finish(&self, staged: &mut Staged, log: &RefusalLog<'_>) -> Result {
        if !staged.dispi_seen || !staged.edid_seen {
            return Err(log.refuse(
                stream::ERR_TRUNCATED,
                format_args!(
                    "no {} section",
                    if staged.dispi_seen {
                        "EDID"
                    } else {
                        "DISPI register"
                    }
                ),
            ));
        }
        // The pages the stream fills, allocated now (a new page reads as zeros, as an
        // untouched one does), and the allocated ones it does not hold, to be zeroed.
        let vram = self.vram();
        let mut targets = KVVec::new();
        for (index, page) in staged.pages.iter().enumerate() {
            if page.is_some() {
                targets.push((index, vram.page(index)?), GFP_KERNEL_ACCOUNT)?;
            }
        }
        let mut zero = KVVec::new();
        for (index, page) in vram.allocated()? {
            if staged.pages.get(index).is_none_or(|p| p.is_none()) {
                zero.push(page, GFP_KERNEL_ACCOUNT)?;
            }
        }
        staged.targets = targets;
        staged.zero = zero;
        Ok(())
    }

    /// Applies an accepted staging copy: registers, VRAM pages, zeros in the
    /// pages the stream did not hold.
    pub(crate) fn stage_apply(&self, staged: Staged) {
        self.regs_restore(&staged.regs);
        for (index, target) in staged.targets.iter() {
            if let Some(Some(bytes)) = staged.pages.get(*index) {
                // A whole page: cannot fail.
                let _ = target.write(0, bytes);
            }
        }
        for page in staged.zero.iter() {
            // A whole page: cannot fail.
            let _ = page.write(0, &ZEROS);
        }
    }
}
