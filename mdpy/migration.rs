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
//! Every page must come at least once; a destination writes the pages into
//! a staging framebuffer, which becomes the device's at `RESUMING -> STOP`
//! (swapped in, O(1): nothing is copied at the switch-over).

use crate::{
    device::MdpyDevice,
    kernel_ext::{
        bindings,
        migration::{
            refusal_log::RefusalLog,
            stream::{self, Origin, Section, Writer, SECTION_MEM_PAGE},
        },
        vfio::UserMappings,
        vmalloc::{UnsharedBuffer, UserBuffer},
    },
    regions, MDPY_NAME,
};
use core::mem::MaybeUninit;
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, UniqueArc},
    uaccess::UserSliceReader,
};

/// A destination's staging copy.
pub(crate) struct Staged {
    /// The framebuffer the stream makes (charged to the destination's
    /// memory cgroup, as the device's from the switch-over on); nobody
    /// else's until then, so the stream's bytes are copied straight in.
    fb: UnsharedBuffer,
    /// Where it goes at the switch-over, allocated up front so that the
    /// switch-over cannot fail.
    shared: UniqueArc<MaybeUninit<UserBuffer>>,
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
        self.framebuffer().len() / PAGE_SIZE
    }

    /// What this device's streams say they are from.
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            driver: MDPY_NAME,
            type_name: self.type_name(),
            // CAST: `usize` to `u64` is lossless on every kernel target.
            mem_size: self.framebuffer().len() as u64,
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
            fb: UnsharedBuffer::new(self.framebuffer().len())?,
            shared: UniqueArc::new_uninit(GFP_KERNEL_ACCOUNT)?,
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
                staged
                    .fb
                    .write(index * PAGE_SIZE, bytes)
                    .map_err(|_| stream::ERR_INVALID)?;
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
        match offset.checked_add(len) {
            Some(end) if end <= PAGE_SIZE => {}
            _ => return Err(EINVAL),
        }
        // `offset < PAGE_SIZE` and `index` is a page of the framebuffer: no overflow.
        staged
            .fb
            .copy_from_user(index * PAGE_SIZE + offset, len, data)
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

    /// Makes the staging copy the device's framebuffer: swapped in whole,
    /// no byte copied. The old pages leave every user mapping (the next
    /// access maps the new ones); the old memory is freed once the last
    /// access that took it is done.
    pub(crate) fn stage_apply(&self, staged: Staged, mappings: &UserMappings<'_>) {
        let new: Arc<UserBuffer> = staged.shared.write(staged.fb.share()).into();
        let old = {
            let _guard = self.fb_lock().lock();
            // `stage_begin` made the staging copy as long as the framebuffer, so it is
            // always taken.
            let old = self.framebuffer().replace(new);
            mappings.zap(regions::BAR0_PGOFF, self.pages());
            old
        };
        drop(old);
    }
}
