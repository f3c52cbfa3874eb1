// SPDX-License-Identifier: GPL-2.0

//! The scanout buffers of a device: one per mode seen, numbered from 1,
//! exported as dma-bufs on demand.
//!
//! `QUERY_GFX_PLANE` finds or creates the buffer of the current mode (taking
//! references to its VRAM pages); `GET_GFX_DMABUF` exports it once and hands
//! out a new reference per call. At most [`MAX_BUFFERS`] are kept: a new mode
//! evicts the least recently used buffer, preferring one never exported.
//! Evicting (or closing the device) only drops the cache's references; a
//! dma-buf user space holds keeps its pages.

use crate::{
    kernel_ext::dma_buf::{self, DmaBuf},
    regs::Mode,
    vram::{FbPages, Vram},
};
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Arc},
};

/// Most buffers a device keeps.
pub(crate) const MAX_BUFFERS: usize = 16;

/// One scanout buffer.
struct Buffer {
    id: u32,
    mode: Mode,
    pages: Arc<FbPages>,
    /// The dma-buf, once exported; the cache holds one reference.
    exported: Option<ARef<DmaBuf>>,
}

/// The buffers of a device, least recently used first.
pub(crate) struct Buffers {
    list: KVec<Buffer>,
    next_id: u32,
}

impl Buffers {
    /// No buffers yet; ids start at 1.
    pub(crate) fn new() -> Self {
        Self {
            list: KVec::new(),
            next_id: 1,
        }
    }

    /// Marks buffer `index` most recently used; returns its new index.
    fn touch(&mut self, index: usize) -> Result<usize> {
        let buf = self.list.remove(index).map_err(|_| EINVAL)?;
        // Cannot fail: the element just removed left room (so no reallocation either).
        self.list.push_within_capacity(buf).map_err(|_| ENOMEM)?;
        Ok(self.list.len() - 1)
    }

    /// The id of the buffer for `mode`, created (with references to its
    /// pages in `vram`) if there is none.
    pub(crate) fn get_or_create(&mut self, mode: &Mode, vram: &Vram) -> Result<u32> {
        if let Some(index) = self.list.iter().position(|b| b.mode == *mode) {
            let index = self.touch(index)?;
            return self.list.get(index).map(|b| b.id).ok_or(EINVAL);
        }
        // `mode` lies within VRAM (see `Regs::mode`), so these pages do too;
        // `Vram::pages` checks it again.
        let first = usize::try_from(mode.offset / PAGE_SIZE as u64).map_err(|_| EINVAL)?;
        let size = usize::try_from(mode.size).map_err(|_| EINVAL)?;
        let count = size.div_ceil(PAGE_SIZE);
        let pages = FbPages::new(vram, first, count)?;
        let id = self.alloc_id();
        let buf = Buffer {
            id,
            mode: *mode,
            pages,
            exported: None,
        };
        if self.list.len() >= MAX_BUFFERS {
            let victim = self
                .list
                .iter()
                .position(|b| b.exported.is_none())
                .unwrap_or(0);
            drop(self.list.remove(victim));
        }
        self.list.push(buf, GFP_KERNEL)?;
        Ok(id)
    }

    /// A fresh id: never 0, never one in use.
    fn alloc_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.list.iter().any(|b| b.id == id) {
                return id;
            }
        }
    }

    /// A new reference to the dma-buf of buffer `id`, exported on first use.
    ///
    /// `ENOENT` for an unknown id; `EINVAL` if the buffer does not start at a
    /// page boundary (a dma-buf cannot), as in the C sample.
    pub(crate) fn dma_buf(&mut self, id: u32) -> Result<ARef<DmaBuf>> {
        let index = self.list.iter().position(|b| b.id == id).ok_or(ENOENT)?;
        let index = self.touch(index)?;
        let buf = &mut self.list[index];
        if let Some(exported) = &buf.exported {
            return Ok(exported.clone());
        }
        if buf.mode.offset % PAGE_SIZE as u64 != 0 {
            return Err(EINVAL);
        }
        let exported = dma_buf::export(buf.pages.clone(), buf.pages.size(), dma_buf::EXPORT_RDWR)?;
        buf.exported = Some(exported.clone());
        Ok(exported)
    }

    /// Drops every buffer (the device's last user closed it).
    pub(crate) fn clear(&mut self) {
        self.list.clear();
    }
}
