// SPDX-License-Identifier: GPL-2.0

//! The source's side of a stream: sections made at `read()` time.
//!
//! Nothing of the device's memory is copied ahead: a [`Sender`] keeps the
//! sections made and not yet read (the header and registers, a page
//! section's header), the page whose bytes follow that header (copied from
//! the page straight to the reader's buffer: one copy per byte) and two
//! cursors over the memory's pages:
//!
//! - the *pass*, which sends every page that exists once, in order (the
//!   initial data of pre-copy, or the whole memory of a stop-copy from
//!   `STOP`);
//! - the *scan*, which, once the pass is over, sends the pages marked
//!   changed since they were sent ([`DirtyPages`]), going round the memory.
//!
//! Sending a page takes its mark first, then looks the page up and, in
//! pre-copy, write-protects it before copying it, so a change after that
//! marks it again (see [`super::super::write_tracking`]); a stopped device
//! is not write-protected. So every byte changed is sent again, once per
//! change noticed, and a page is counted once: as initial data while the
//! pass has not reached it, as dirty data once it has.

use super::{
    stream::{Writer, HEADER_LEN, SECTION_HEADER_LEN, SECTION_MEM_PAGE},
    Migrate,
};
use crate::kernel_ext::{page_ref::PageRef, uaccess::UserWriter, vfio, write_tracking::DirtyPages};
use kernel::{page::PAGE_SIZE, prelude::*};

/// The bytes of a memory page's section.
pub(super) const PAGE_SECTION_LEN: usize = SECTION_HEADER_LEN + PAGE_SIZE;

/// A page whose section header is made and whose bytes are being read.
struct PageInFlight {
    page: PageRef,
    /// Bytes of the page read.
    sent: usize,
    /// Where in `pending` its bytes go: after its header, before anything
    /// made later.
    at: usize,
}

/// What a saving session has sent and has left to send.
pub(super) struct Sender {
    /// Sections made and not all read yet (the bytes of a page excepted).
    pending: KVVec<u8>,
    /// Bytes of `pending` read.
    pos: usize,
    /// The page being read.
    in_flight: Option<PageInFlight>,
    /// Bytes not read yet (of `pending` and the page) that are initial data.
    initial_unread: usize,
    /// The pass: the next page it looks at; `None` once it looked at all.
    pass: Option<usize>,
    /// Pages the pass sent.
    pass_sent: usize,
    /// Where the scan for changed pages goes on.
    scan: usize,
    /// Whether pages are write-protected as they are sent (pre-copy).
    protect: bool,
    /// Whether the end marker was made (stop-copy).
    end_made: bool,
}

impl Sender {
    /// A session of `dev` starting with its header and registers: pre-copy
    /// (`precopy`) or stop-copy from `STOP`.
    pub(super) fn new<T: Migrate>(dev: &vfio::Device<T>, precopy: bool) -> Result<Self> {
        let mut pending = KVVec::new();
        let mut w = Writer::new(&mut pending);
        w.header(&T::origin(dev))?;
        T::save_registers(dev, &mut w)?;
        Ok(Self {
            initial_unread: pending.len(),
            pending,
            pos: 0,
            in_flight: None,
            pass: Some(0),
            pass_sent: 0,
            scan: 0,
            protect: precopy,
            end_made: false,
        })
    }

    /// Pre-copy ends (the device is stopped): the registers again, after
    /// what is made already; then what is left of the pass, the changed
    /// pages and the end marker, unprotected.
    pub(super) fn stop_copy<T: Migrate>(&mut self, dev: &vfio::Device<T>) -> Result {
        self.drop_read();
        T::save_registers(dev, &mut Writer::new(&mut self.pending))?;
        self.protect = false;
        Ok(())
    }

    /// Frees the bytes read, if that is all of them.
    fn drop_read(&mut self) {
        if self.pos == self.pending.len() && self.in_flight.is_none() {
            self.pending.clear();
            self.pos = 0;
        }
    }

    /// Bytes made and not read yet.
    fn unread(&self) -> usize {
        let page = self.in_flight.as_ref().map_or(0, |f| PAGE_SIZE - f.sent);
        (self.pending.len() - self.pos).saturating_add(page)
    }

    /// Copies the stream to `out` as far as it goes now: until `out` is
    /// full or nothing is left to send (then, in stop-copy, after the end
    /// marker). The number of bytes copied; 0 is the end of the data.
    pub(super) fn read<T: Migrate>(
        &mut self,
        dev: &vfio::Device<T>,
        out: &mut UserWriter,
        stop_copy: bool,
    ) -> Result<usize> {
        let mut total = 0;
        while !out.is_empty() {
            let page_next = self.in_flight.as_ref().is_some_and(|f| f.at == self.pos);
            let res = if page_next {
                // The page's bytes come right after its header.
                self.send_page(out)
            } else {
                let end = self.in_flight.as_ref().map_or(self.pending.len(), |f| f.at);
                if self.pos == end {
                    self.drop_read();
                    if !self.make_next(dev, stop_copy)? {
                        break;
                    }
                    continue;
                }
                let n = (end - self.pos).min(out.len());
                let bytes = self.pending.get(self.pos..self.pos + n).ok_or(EINVAL)?;
                out.write_slice(bytes).map(|()| {
                    self.pos += n;
                    n
                })
            };
            match res {
                Ok(n) => {
                    self.initial_unread = self.initial_unread.saturating_sub(n);
                    total += n;
                }
                // What reached user space before the fault stays read; the next read goes on
                // from there.
                Err(_) if total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Copies what `out` takes of the page in flight, straight from the
    /// page; the number of bytes.
    fn send_page(&mut self, out: &mut UserWriter) -> Result<usize> {
        let Some(f) = self.in_flight.as_mut() else {
            return Ok(0);
        };
        let n = (PAGE_SIZE - f.sent).min(out.len());
        f.page.copy_to_user(f.sent, n, out)?;
        f.sent += n;
        if f.sent == PAGE_SIZE {
            self.in_flight = None;
        }
        Ok(n)
    }

    /// Makes the next section: a page of the pass, a changed page, or in
    /// stop-copy the end marker. `false` if there is none now.
    fn make_next<T: Migrate>(&mut self, dev: &vfio::Device<T>, stop_copy: bool) -> Result<bool> {
        let pages = T::memory(dev).dirty_pages().len();
        while let Some(index) = self.pass {
            if index >= pages {
                self.pass = None;
                break;
            }
            self.pass = Some(index + 1);
            if self.make_page(dev, index)? {
                self.pass_sent += 1;
                self.initial_unread += PAGE_SECTION_LEN;
                return Ok(true);
            }
        }
        while let Some(index) = self.next_marked(T::memory(dev).dirty_pages()) {
            if self.make_page(dev, index)? {
                return Ok(true);
            }
        }
        if stop_copy && !self.end_made {
            Writer::new(&mut self.pending).end()?;
            self.end_made = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// The next marked page from the scan cursor on, going round once.
    fn next_marked(&mut self, log: &DirtyPages) -> Option<usize> {
        let index = log
            .next_marked(self.scan)
            .or_else(|| log.next_marked(0).filter(|&i| i < self.scan))?;
        self.scan = index + 1;
        Some(index)
    }

    /// Makes page `index`'s section header, if the page exists, with the
    /// page in flight after it; takes its mark. Only when nothing is in
    /// flight.
    fn make_page<T: Migrate>(&mut self, dev: &vfio::Device<T>, index: usize) -> Result<bool> {
        let mem = T::memory(dev);
        let log = mem.dirty_pages();
        let was_marked = log.take(index);
        let res = (|| {
            let Some(page) = mem.existing_page(index)? else {
                // Never touched: reads as zeros, nothing to send. A first touch from now on
                // marks it.
                return Ok(false);
            };
            if self.protect {
                log.protect(&dev.user_mappings(), mem.file_pgoff() + index, &page);
            }
            // CAST: `usize` to `u64` is lossless on every kernel target.
            Writer::new(&mut self.pending).section_header(
                SECTION_MEM_PAGE,
                index as u64,
                PAGE_SIZE,
            )?;
            self.in_flight = Some(PageInFlight {
                page,
                sent: 0,
                at: self.pending.len(),
            });
            Ok(true)
        })();
        if res.is_err() && was_marked {
            // Not sent: still changed.
            log.mark(index);
        }
        res
    }

    /// `VFIO_MIG_GET_PRECOPY_INFO`'s `initial_bytes`: what is left of the
    /// header, registers and pass (the pages that exist and the pass has not
    /// reached; an estimate while pages are first touched behind it).
    pub(super) fn initial_bytes<T: Migrate>(&self, dev: &vfio::Device<T>) -> usize {
        let pass_left = match self.pass {
            Some(_) => T::memory(dev)
                .existing_count()
                .saturating_sub(self.pass_sent),
            None => 0,
        };
        self.initial_unread
            .saturating_add(pass_left.saturating_mul(PAGE_SECTION_LEN))
    }

    /// `VFIO_MIG_GET_PRECOPY_INFO`'s `dirty_bytes`: the changed page section
    /// being read, and the pages marked behind the pass (all marked pages
    /// once it is over), each once.
    pub(super) fn dirty_bytes<T: Migrate>(&self, dev: &vfio::Device<T>) -> usize {
        let log = T::memory(dev).dirty_pages();
        let marked = match self.pass {
            Some(next) => log.count_below(next),
            None => log.count_below(log.len()),
        };
        (self.unread() - self.initial_unread.min(self.unread()))
            .saturating_add(marked.saturating_mul(PAGE_SECTION_LEN))
    }

    /// What a stop-copy would send now, after pre-copy: what is made and
    /// unread, the registers, the pages left of the pass, the changed pages,
    /// the end marker.
    pub(super) fn stop_copy_len<T: Migrate>(&self, dev: &vfio::Device<T>) -> usize {
        // Initial and dirty bytes together are what is unread and what is left to make.
        self.initial_bytes(dev)
            .saturating_add(self.dirty_bytes(dev))
            .saturating_add(T::registers_len(dev))
            .saturating_add(SECTION_HEADER_LEN)
    }
}

/// The length of a whole stream of `dev` now: header, registers, the pages
/// that exist, the end marker (a stop-copy from `STOP`).
pub(super) fn full_len<T: Migrate>(dev: &vfio::Device<T>) -> usize {
    T::memory(dev)
        .existing_count()
        .saturating_mul(PAGE_SECTION_LEN)
        .saturating_add(HEADER_LEN + SECTION_HEADER_LEN)
        .saturating_add(T::registers_len(dev))
}
