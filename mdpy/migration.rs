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
//! | `SECTION_MEM_PAGE` (2)   | page index | one framebuffer page, every page of BAR0 |
//!
//! The mode is fixed by the mdev type, so a destination only checks it.

use crate::{
    device::MdpyDevice,
    kernel_ext::{
        bindings,
        migration::stream::{self, Origin, Stream, Writer, SECTION_MEM_PAGE},
    },
    MDPY_NAME,
};
use kernel::{device::Device as KDevice, page::PAGE_SIZE, prelude::*};

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

    /// Checks the device's sections: the same mode, every framebuffer page
    /// (at least once) and nothing past the framebuffer.
    pub(crate) fn check_sections(&self, dev: &KDevice, stream: &Stream<'_>) -> Result {
        let pages = self.pages();
        let mut seen = KVVec::from_elem(false, pages, GFP_KERNEL)?;
        let mut mode_seen = false;
        for s in stream.driver_sections() {
            match s.id {
                SECTION_MODE => {
                    if *s.fixed::<MODE_LEN>(dev)? != self.mode_bytes() {
                        dev_err!(dev, "migration: stream refused: another display mode\n");
                        return Err(stream::ERR_INVALID);
                    }
                    mode_seen = true;
                }
                SECTION_MEM_PAGE => {
                    let index = s.mem_page(dev, pages, "framebuffer")?;
                    *seen.get_mut(index).ok_or(stream::ERR_INVALID)? = true;
                }
                _ => s.unknown(dev)?,
            }
        }
        if !mode_seen {
            dev_err!(dev, "migration: stream refused: no mode section\n");
            return Err(stream::ERR_TRUNCATED);
        }
        if let Some(missing) = seen.iter().position(|&s| !s) {
            dev_err!(
                dev,
                "migration: stream refused: framebuffer page {} missing\n",
                missing
            );
            return Err(stream::ERR_TRUNCATED);
        }
        Ok(())
    }

    /// Writes the framebuffer pages of a checked stream, in stream order (a
    /// page sent again replaces the earlier copy).
    pub(crate) fn apply_sections(&self, stream: &Stream<'_>) {
        let _guard = self.fb_lock().lock();
        for s in stream.driver_sections() {
            if s.id != SECTION_MEM_PAGE {
                continue;
            }
            let offset = usize::try_from(s.key)
                .ok()
                .and_then(|page| page.checked_mul(PAGE_SIZE));
            if let Some(offset) = offset {
                // Checked by `check_sections`: a whole page within the framebuffer, so
                // this cannot fail.
                let _ = self.fb().write(offset, s.payload);
            }
        }
    }
}
