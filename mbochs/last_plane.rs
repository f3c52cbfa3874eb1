// SPDX-License-Identifier: GPL-2.0

//! The plane the last `QUERY_GFX_PLANE` returned, for answering the next
//! ones without the device lock.
//!
//! QEMU queries the plane every frame, and the mode rarely changes. The
//! answer for an unchanged mode is the buffer found last time, which is
//! then still the most recently used one (anything that uses another buffer
//! forgets this record first, under the device lock), so answering from
//! here changes nothing a locked query would have changed.
//!
//! A sequence count makes a reader see one whole record or none: writers
//! (always under the device lock, so one at a time) make the count odd,
//! store the fields, make it even again; a reader that saw the count even
//! and unchanged across its loads has one writer's fields.

use crate::regs::Mode;
use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};

/// Fields of a record: format, width, height, stride, VRAM offset, size, id.
const FIELDS: usize = 7;

/// The last plane answered: its mode and buffer id (0: none).
pub(crate) struct LastPlane {
    seq: Atomic<u32>,
    fields: [Atomic<u32>; FIELDS],
}

impl LastPlane {
    /// No record.
    pub(crate) const fn new() -> Self {
        Self {
            seq: Atomic::new(0),
            fields: [const { Atomic::new(0) }; FIELDS],
        }
    }

    /// A record's fields, if `mode` fits them (VRAM offsets and sizes are at
    /// most 64 MiB).
    fn encode(mode: &Mode, id: u32) -> Option<[u32; FIELDS]> {
        Some([
            mode.drm_format,
            mode.width,
            mode.height,
            mode.stride,
            u32::try_from(mode.offset).ok()?,
            u32::try_from(mode.size).ok()?,
            id,
        ])
    }

    /// Stores `fields` as the record. The caller holds the device lock.
    fn store(&self, fields: [u32; FIELDS]) {
        let seq = self.seq.load(Relaxed);
        self.seq.store(seq.wrapping_add(1), Relaxed);
        for (f, v) in self.fields.iter().zip(fields) {
            // Release: a reader that sees this value sees the odd count too.
            f.store(v, Release);
        }
        self.seq.store(seq.wrapping_add(2), Release);
    }

    /// Records that buffer `id` is the plane of `mode`. The caller holds the
    /// device lock and just made `id` the most recently used buffer.
    pub(crate) fn set(&self, mode: &Mode, id: u32) {
        self.store(Self::encode(mode, id).unwrap_or([0; FIELDS]));
    }

    /// Forgets the record (another buffer was used, or the buffers are
    /// gone). The caller holds the device lock.
    pub(crate) fn forget(&self) {
        if self.fields[FIELDS - 1].load(Relaxed) != 0 {
            self.store([0; FIELDS]);
        }
    }

    /// The buffer id recorded.
    pub(crate) fn id(&self) -> u32 {
        self.fields[FIELDS - 1].load(Relaxed)
    }

    /// The buffer recorded for `mode`, if that is the mode recorded.
    pub(crate) fn lookup(&self, mode: &Mode) -> Option<u32> {
        let seq = self.seq.load(Acquire);
        if seq % 2 != 0 {
            return None;
        }
        // Acquire: the count is read again after the fields.
        let fields = self.fields.each_ref().map(|f| f.load(Acquire));
        if self.seq.load(Relaxed) != seq {
            return None;
        }
        let id = fields[FIELDS - 1];
        (id != 0 && Self::encode(mode, id) == Some(fields)).then_some(id)
    }
}
