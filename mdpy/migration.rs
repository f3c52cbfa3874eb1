// SPDX-License-Identifier: GPL-2.0

//! Live migration of an mdpy: its stream sections.
//!
//! Besides the configuration space (saved by the emulated PCI layer, with
//! the vendor capability that holds the mode), an mdpy's state is its
//! framebuffer. The stream carries:
//!
//! | section                  | key        | payload                                  |
//! |--------------------------|------------|------------------------------------------|
//! | [`SECTION_MODE`] (0x100) | 0          | format, width, height, stride (u32 LE)   |
//! | `SECTION_MEM_RUN` (3)    | first page | runs of framebuffer pages, all of BAR0   |
//!
//! (A 1.x stream holds `SECTION_MEM_PAGE` (2) sections, one page each,
//! instead of runs; the migration layer hands the pages of both to
//! `Migrate::load_page`
//! one by one.)
//!
//! The mode is fixed by the mdev type, so a destination only checks it.
//! Every page must come at least once; a destination keeps a staging copy
//! of the framebuffer, written to the device at `RESUMING -> STOP`.

use crate::{
    device::MdpyDevice,
    kernel_ext::{
        bindings,
        migration::{
            refusal_log::RefusalLog,
            stream::{self, Origin, Section, Writer, SECTION_MEM_PAGE},
        },
    },
    MDPY_NAME,
};
use kernel::{page::PAGE_SIZE, prelude::*, uaccess::UserSliceReader};

/// A destination's staging copy.
pub(crate) struct Staged {
    /// The framebuffer the stream makes.
    fb: KVVec<u8>,
    /// Which of its pages the stream held.
    seen: KVVec<bool>,
    /// Whether the mode section came.
    mode_seen: bool,
}

/// Section id of the mode.
pub(crate) const SECTION_MODE: u16 = stream::SECTION_DRIVER_FIRST;

/// Size of the mode section's payload.
const MODE_LEN: usize = 16;

impl MdpyDevice {
    /// The mode section's payload.
    fn mode_bytes(&self) -> [u8; MODE_LEN] {
        let mode = self.mode();
        let mut out = [0u8; MODE_LEN];
        let fields = [
            bindings::DRM_FORMAT_XRGB8888,
            mode.width,
            mode.height,
            mode.stride(),
        ];
        for (chunk, v) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Framebuffer pages.
    fn pages(&self) -> usize {
        self.fb().len() / PAGE_SIZE
    }

    /// What this device's streams say they are from.
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            driver: MDPY_NAME,
            type_name: self.type_name(),
            // CAST: `usize` to `u64` is lossless on every kernel target.
            mem_size: self.fb().len() as u64,
        }
    }

    /// Bytes of the device's register sections (the framebuffer pages are
    /// saved by the emulated PCI layer).
    pub(crate) fn sections_len(&self) -> usize {
        stream::SECTION_HEADER_LEN + MODE_LEN
    }

    /// Saves the mode.
    pub(crate) fn save_sections(&self, w: &mut Writer<'_>) -> Result {
        w.section(SECTION_MODE, 0, false, &self.mode_bytes())
    }

    /// A fresh staging copy: a framebuffer of zeros, no page seen.
    pub(crate) fn stage_begin(&self) -> Result<Staged> {
        Ok(Staged {
            fb: KVVec::from_elem(0u8, self.fb().len(), GFP_KERNEL_ACCOUNT)?,
            seen: KVVec::from_elem(false, self.pages(), GFP_KERNEL_ACCOUNT)?,
            mode_seen: false,
        })
    }

    /// Checks one section (the same mode; pages within the framebuffer)
    /// and copies a page into the staging copy.
    pub(crate) fn stage_section(
        &self,
        staged: &mut Staged,
        s: &Section<'_>,
        log: &RefusalLog<'_>,
    ) -> Result {
        match s.id {
            SECTION_MODE => {
                if *s.fixed::<MODE_LEN>(log)? != self.mode_bytes() {
                    return Err(
                        log.refuse(stream::ERR_INVALID, format_args!("another display mode"))
                    );
                }
                staged.mode_seen = true;
            }
            SECTION_MEM_PAGE => {
                let index = s.mem_page(log, self.pages(), "framebuffer")?;
                let bytes = s.fixed::<PAGE_SIZE>(log)?;
                let at = index * PAGE_SIZE;
                // An array copy: the lengths are the same by type, no panic path.
                let page: &mut [u8; PAGE_SIZE] = staged
                    .fb
                    .get_mut(at..at + PAGE_SIZE)
                    .and_then(|p| p.try_into().ok())
                    .ok_or(stream::ERR_INVALID)?;
                *page = *bytes;
                *staged.seen.get_mut(index).ok_or(stream::ERR_INVALID)? = true;
            }
            _ => s.unknown(log)?,
        }
        Ok(())
    }

    /// Copies `len` bytes of `data` to byte `offset` of page `key` in the
    /// staging copy; the page then counts as sent.
    pub(crate) fn stage_page(
        &self,
        staged: &mut Staged,
        key: u64,
        offset: usize,
        data: &mut UserSliceReader,
        len: usize,
        log: &RefusalLog<'_>,
    ) -> Result {
        let index = stream::page_index(key, log, self.pages(), "framebuffer")?;
        *staged.seen.get_mut(index).ok_or(stream::ERR_INVALID)? = true;
        let at = index * PAGE_SIZE + offset;
        match offset.checked_add(len) {
            Some(end) if end <= PAGE_SIZE => {}
            _ => return Err(EINVAL),
        }
        // The staging copy is kernel memory only this session uses.
        data.read_slice(staged.fb.get_mut(at..at + len).ok_or(EINVAL)?)
    }

    /// The stream is complete: it had the mode and every framebuffer page
    /// (at least once).
    pub(crate) fn stage_finish(&self, staged: &Staged, log: &RefusalLog<'_>) -> Result {
        if !staged.mode_seen {
            return Err(log.refuse(stream::ERR_TRUNCATED, format_args!("no mode section")));
        }
        if let Some(missing) = staged.seen.iter().position(|&s| !s) {
            return Err(log.refuse(
                stream::ERR_TRUNCATED,
                format_args!("framebuffer page {} missing", missing),
            ));
        }
        Ok(())
    }

    /// Writes the staging copy to the framebuffer (in place: user mappings
    /// keep mapping it).
    pub(crate) fn stage_apply(&self, staged: Staged) {
        let _guard = self.fb_lock().lock();
        // The staging copy is as long as the framebuffer: this cannot fail.
        let _ = self.fb().write(0, &staged.fb);
    }
}
