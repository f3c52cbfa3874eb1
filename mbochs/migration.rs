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
//! | `SECTION_MEM_RUN` (3)     | first page | a run of VRAM pages; only the pages that exist |
//!
//! (A 1.x stream holds `SECTION_MEM_PAGE` (2) sections, one VRAM page each,
//! instead of runs; the migration layer hands the pages of both to
//! `Migrate::load_page`
//! one by one.)
//!
//! VRAM pages are allocated on first touch; a page the source never touched
//! is not sent, and after loading a destination page the stream does not
//! hold reads as zeros, like one never touched.

use crate::{
    kernel_ext::{
        migration::{
            refusal_log::RefusalLog,
            stream::{self, Origin, Section, Writer, SECTION_MEM_PAGE},
        },
        page_ref::PageRef,
        vfio::UserMappings,
        workqueue::OwnedQueue,
    },
    regions,
    regs::Snapshot,
    vram::Vram,
    TypeInfo, MBOCHS_NAME,
};
use kernel::{page::PAGE_SIZE, prelude::*, uaccess::UserSliceReader};

/// Section id of the DISPI registers.
pub(crate) const SECTION_DISPI: u16 = stream::SECTION_DRIVER_FIRST;
/// Section id of the EDID state.
pub(crate) const SECTION_EDID: u16 = stream::SECTION_DRIVER_FIRST + 1;

/// A destination's staging copy.
pub(crate) struct Staged {
    /// The registers, from the last register sections of the stream.
    regs: KBox<Snapshot>,
    dispi_seen: bool,
    edid_seen: bool,
    /// The VRAM to be: a new page for each page the stream holds (its last
    /// copy), none for the others (they read as zeros, like pages never
    /// touched). Applying swaps it with the VRAM's.
    pages: KVVec<Option<PageRef>>,
}

/// The bytes of the register sections.
pub(crate) const REGS_LEN: usize =
    2 * stream::SECTION_HEADER_LEN + Snapshot::VBE_LEN + Snapshot::EDID_LEN;

/// What the migration of an mbochs needs of its device.
/// `device::MbochsDevice` implements it, so that the dependency goes one
/// way: the device uses its migration, not the other way round.
pub(crate) trait MigratedDevice {
    /// The device's mdev type name.
    fn type_name(&self) -> &'static CStr;
    /// The device's type.
    fn type_info(&self) -> &TypeInfo;
    /// The device's VRAM.
    fn vram(&self) -> &Vram;
    /// Drops the scanout buffers made of the VRAM's pages.
    fn drop_scanouts(&self);
    /// The registers as they are.
    fn regs_snapshot(&self) -> Snapshot;
    /// Whether the device takes these registers.
    fn regs_can_restore(&self, snap: &Snapshot) -> bool;
    /// Sets the registers.
    fn regs_restore(&self, snap: &Snapshot);
    /// Where memory the device no longer uses is freed out of the way.
    fn reclaim_queue(&self) -> &OwnedQueue;
}

/// The migration of an mbochs: its register sections and its staging
/// copy, for any [`MigratedDevice`] (there is one, `MbochsDevice`).
pub(crate) trait Migration: MigratedDevice {
    /// What this device's streams say they are from.
    fn origin(&self) -> Origin {
        Origin {
            driver: MBOCHS_NAME,
            type_name: self.type_name(),
            mem_size: u64::from(self.type_info().memsize()),
        }
    }

    /// Saves the registers (the VRAM pages are saved by the emulated PCI
    /// layer).
    fn save_sections(&self, w: &mut Writer<'_>) -> Result {
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
    fn stage_begin(&self) -> Result<Staged> {
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
        })
    }

    /// Checks one section (register sections of the right size and with
    /// values the device takes, pages within VRAM) and copies it into the
    /// staging copy.
    fn stage_section(&self, staged: &mut Staged, s: &Section<'_>, log: &RefusalLog<'_>) -> Result {
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
                // A section of one page goes to `stage_page` as it arrives: this one has
                // another length, which `mem_page` refuses.
                let index = s.mem_page(log, self.vram().page_count(), "VRAM")?;
                let slot = staged.pages.get_mut(index).ok_or(stream::ERR_INVALID)?;
                let page = match slot {
                    Some(page) => page,
                    None => slot.insert(PageRef::alloc_zeroed()?),
                };
                page.write(0, s.fixed::<PAGE_SIZE>(log)?)?;
            }
            _ => s.unknown(log)?,
        }
        Ok(())
    }

    /// Copies `len` bytes of `data` to byte `offset` of page `key` in the
    /// staging copy (a new page of zeros the first time; a page that comes
    /// whole the first time is made from its bytes, one copy, not zeroed).
    fn stage_page(
        &self,
        staged: &mut Staged,
        key: u64,
        offset: usize,
        data: &mut UserSliceReader,
        len: usize,
        log: &RefusalLog<'_>,
    ) -> Result {
        let index = stream::page_index(key, log, self.vram().page_count(), "VRAM")?;
        let slot = staged.pages.get_mut(index).ok_or(stream::ERR_INVALID)?;
        let page = match slot {
            Some(page) => page,
            None if offset == 0 && len == PAGE_SIZE => {
                *slot = Some(PageRef::alloc_from_user(data)?);
                return Ok(());
            }
            None => slot.insert(PageRef::alloc_zeroed()?),
        };
        page.copy_from_user(offset, len, data)
    }

    /// The stream is complete: both register sections came.
    fn stage_finish(&self, staged: &Staged, log: &RefusalLog<'_>) -> Result {
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
        Ok(())
    }

    /// Applies an accepted staging copy: the registers, and the VRAM
    /// swapped whole with the staged one (no page is copied). The old pages
    /// leave every user mapping (the next access maps the new ones) and the
    /// scanout buffers made of them are dropped (dma-bufs already handed
    /// out keep their own references to the old pages).
    fn stage_apply(&self, mut staged: Staged, mappings: &UserMappings<'_>) {
        self.regs_restore(&staged.regs);
        self.drop_scanouts();
        self.vram().swap_pages(&mut staged.pages);
        mappings.zap(regions::BAR0_PGOFF, self.vram().page_count());
        // `staged` now holds the old pages. Freeing them (up to 16384 for mbochs-large) here
        // would make the switch-over as slow as VRAM is large: the reclaim queue frees them
        // after it (and here, if it cannot take them).
        let old = staged.pages;
        let _ = self
            .reclaim_queue()
            .try_spawn(GFP_KERNEL, move || drop(old));
    }
}

impl<D: MigratedDevice + ?Sized> Migration for D {}
