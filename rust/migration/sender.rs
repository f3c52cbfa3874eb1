// SPDX-License-Identifier: GPL-2.0

//! The source's side of a stream: sections made at `read()` time.
//!
//! Nothing of the device's memory is copied ahead: a [`Sender`] keeps the
//! sections made and not yet read (the header and registers, a run
//! section's header), the pages whose bytes follow that header (copied from
//! each page straight to the reader's buffer: one copy per byte) and two
//! cursors over the memory's pages:
//!
//! - the *pass*, which sends every page that exists once, in order (the
//!   initial data of pre-copy, or the whole memory of a stop-copy from
//!   `STOP`);
//! - the *scan*, which, once the pass is over, sends the pages marked
//!   changed since they were sent ([`DirtyPages`]), going round the memory.
//!
//! Both send runs of consecutive pages, one [`SECTION_MEM_RUN`] each: the
//! pass a run of pages that exist, the scan a run of marked pages (from
//! the first marked page before the one it found, so that a run is a whole
//! group of marked pages). A run never crosses a multiple of [`RUN_PAGES`]
//! pages, so the runs to send are a function of which pages exist or are
//! marked, which is what makes the byte counts below exact.
//!
//! A run is decided before its header is made (the header says its
//! length): for each of its pages, in order, the mark is taken first, then
//! the page is looked up (a page that does not exist ends the run; its
//! mark stays taken, as it reads as zeros) and, in pre-copy,
//! write-protected; the run holds a reference on each page until its bytes
//! are read, so exactly the pages announced are sent. A change after the
//! write-protection marks the page again (see
//! [`super::super::write_tracking`]); a stopped device is not
//! write-protected. So every byte changed is sent again, once per change
//! noticed, and a page is counted once: as initial data while the pass has
//! not reached it, as dirty data once it has.

use super::{
    stream::{Writer, HEADER_LEN, RUN_PAGES, SECTION_HEADER_LEN, SECTION_MEM_RUN},
    Migrate,
};
use crate::kernel_ext::{
    page_ref::PageRef,
    uaccess::UserWriter,
    vfio,
    vmalloc::UserBuffer,
    write_tracking::{DirtyPages, TrackedMemory},
};
use kernel::{page::PAGE_SIZE, prelude::*, sync::Arc};

/// Counts the runs the sender makes of a sequence of pages, each present
/// (exists, or is marked) or not, visited in order from some page on: a run
/// is a group of consecutive present pages that does not cross a multiple
/// of [`RUN_PAGES`].
struct RunCount {
    /// Pages present.
    pages: usize,
    /// Runs.
    runs: usize,
    /// Whether the page visited last was present.
    last: bool,
}

impl RunCount {
    fn new() -> Self {
        Self {
            pages: 0,
            runs: 0,
            last: false,
        }
    }

    /// Page `index`, present or not, follows the pages visited so far.
    fn visit(&mut self, index: usize, present: bool) {
        if present {
            self.pages += 1;
            if !self.last || index % RUN_PAGES == 0 {
                self.runs += 1;
            }
        }
        self.last = present;
    }

    /// The bytes of their sections.
    fn bytes(&self) -> usize {
        self.pages
            .saturating_mul(PAGE_SIZE)
            .saturating_add(self.runs.saturating_mul(SECTION_HEADER_LEN))
    }
}

/// The bytes of the runs of the pages that exist from page `from` on.
fn existing_bytes(mem: &dyn TrackedMemory, from: usize) -> usize {
    let mut count = RunCount::new();
    let mut index = from;
    mem.existing_from(from, &mut |exists| {
        count.visit(index, exists);
        index += 1;
    });
    count.bytes()
}

/// What a saving session has sent and has left to send.
pub(super) struct Sender {
    /// Sections made and not all read yet (the bytes of the run excepted).
    pending: KVVec<u8>,
    /// Bytes of `pending` read.
    pos: usize,
    /// References to the pages of the run whose header is made and whose
    /// bytes are being read (empty when there is none, or when `run_buf`
    /// holds the memory); room for [`RUN_PAGES`].
    run: KVVec<PageRef>,
    /// The memory of the run when it is one buffer (see
    /// [`TrackedMemory::contiguous`]): its bytes are copied from there, as
    /// many pages at a time as the reader takes.
    run_buf: Option<Arc<UserBuffer>>,
    /// The run's first page and its number of pages (0: no run).
    run_first: usize,
    run_pages: usize,
    /// Bytes of the run read.
    run_sent: usize,
    /// Where in `pending` the run's bytes go: after its header, before
    /// anything made later.
    run_at: usize,
    /// Bytes not read yet (of `pending` and the run) that are initial data.
    initial_unread: usize,
    /// The pass: the next page it looks at; `None` once it looked at all.
    pass: Option<usize>,
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
            run: KVVec::with_capacity(RUN_PAGES, GFP_KERNEL_ACCOUNT)?,
            run_buf: None,
            run_first: 0,
            run_pages: 0,
            run_sent: 0,
            run_at: 0,
            pass: Some(0),
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
        if self.pos == self.pending.len() && self.run_pages == 0 {
            self.pending.clear();
            self.pos = 0;
        }
    }

    /// The bytes of the run not read yet.
    fn run_unread(&self) -> usize {
        (self.run_pages * PAGE_SIZE).saturating_sub(self.run_sent)
    }

    /// Bytes made and not read yet.
    fn unread(&self) -> usize {
        (self.pending.len() - self.pos).saturating_add(self.run_unread())
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
            let run_next = self.run_pages != 0 && self.run_at == self.pos;
            let res = if run_next {
                // The run's bytes come right after its header.
                self.send_run(out)
            } else {
                let end = if self.run_pages == 0 {
                    self.pending.len()
                } else {
                    self.run_at
                };
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

    /// Copies what `out` takes of the run's bytes, straight from the
    /// memory (all the run's pages in one copy when it is one buffer, else
    /// the current page); the number of bytes.
    fn send_run(&mut self, out: &mut UserWriter) -> Result<usize> {
        let n = if let Some(buf) = &self.run_buf {
            let n = self.run_unread().min(out.len());
            buf.copy_to_user(self.run_first * PAGE_SIZE + self.run_sent, n, out)?;
            n
        } else {
            let (index, offset) = (self.run_sent / PAGE_SIZE, self.run_sent % PAGE_SIZE);
            let Some(page) = self.run.get(index) else {
                return Ok(0);
            };
            let n = (PAGE_SIZE - offset).min(out.len());
            page.copy_to_user(offset, n, out)?;
            n
        };
        self.run_sent += n;
        if self.run_unread() == 0 {
            // Drops the references to the pages or the memory.
            self.run.clear();
            self.run_buf = None;
            self.run_pages = 0;
            self.run_sent = 0;
        }
        Ok(n)
    }

    /// Makes the next section: a run of the pass, a run of changed pages,
    /// or in stop-copy the end marker. `false` if there is none now.
    fn make_next<T: Migrate>(&mut self, dev: &vfio::Device<T>, stop_copy: bool) -> Result<bool> {
        let log = T::memory(dev).dirty_pages();
        let pages = log.len();
        while let Some(first) = self.pass {
            if first >= pages {
                self.pass = None;
                break;
            }
            let next = self.make_run(dev, first, false)?;
            self.pass = Some(next);
            if self.run_pages != 0 {
                self.initial_unread += SECTION_HEADER_LEN + self.run_unread();
                return Ok(true);
            }
        }
        while let Some(found) = self.next_marked(log) {
            // From the first of the marked pages just before it, in its stretch of
            // `RUN_PAGES`: a run is a whole group of marked pages.
            let floor = found - found % RUN_PAGES;
            let mut first = found;
            while first > floor && log.is_marked(first - 1) {
                first -= 1;
            }
            self.scan = self.make_run(dev, first, true)?;
            if self.run_pages != 0 {
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
    fn next_marked(&self, log: &DirtyPages) -> Option<usize> {
        log.next_marked(self.scan)
            .or_else(|| log.next_marked(0).filter(|&i| i < self.scan))
    }

    /// Makes the run from page `first` (only when no run is in flight): its
    /// pages up to the first that does not exist (the pass, `marked` false)
    /// or is not marked (the scan), at most up to the next multiple of
    /// [`RUN_PAGES`] or the end of memory; each page's mark taken before it
    /// is looked up (all of the run's lookups under one lock of the
    /// memory), then, in pre-copy, the run's pages write-protected, then
    /// the run's header. The page after the run's pages and the pages
    /// looked at; the run is empty if the first page does not exist (or,
    /// scanning, is not marked).
    fn make_run<T: Migrate>(
        &mut self,
        dev: &vfio::Device<T>,
        first: usize,
        marked: bool,
    ) -> Result<usize> {
        let mem = T::memory(dev);
        let log = mem.dirty_pages();
        let end = (first - first % RUN_PAGES)
            .saturating_add(RUN_PAGES)
            .min(log.len());
        // A memory that is one buffer has every page and is copied from the buffer: without
        // write-protection to do (a stopped device), its pages need no lookup.
        let buf = mem.contiguous();
        let lookups = buf.is_none() || self.protect;
        let run = &mut self.run;
        let mut count = 0;
        let mut index = first;
        let mut res = Ok(());
        mem.with_existing(&mut |lookup| {
            while index < end {
                let was_marked = log.take(index);
                if marked && !was_marked {
                    // Not changed: not part of the run (a page the run did not look at).
                    if index == first {
                        index += 1;
                    }
                    break;
                }
                if !lookups {
                    index += 1;
                    count += 1;
                    continue;
                }
                let page = match lookup(index) {
                    Ok(page) => page,
                    Err(e) => {
                        if was_marked {
                            // Not sent: still changed.
                            log.mark(index);
                        }
                        if count == 0 {
                            res = Err(e);
                        }
                        // The pages so far go as a shorter run.
                        break;
                    }
                };
                index += 1;
                let Some(page) = page else {
                    // Never touched: reads as zeros, nothing to send. A first touch from now
                    // on marks it.
                    break;
                };
                // Within the capacity reserved: no allocation.
                if let Err(e) = run.push(page, GFP_KERNEL_ACCOUNT) {
                    log.mark(index - 1);
                    if count == 0 {
                        res = Err(e.into());
                    }
                    index -= 1;
                    break;
                }
                count += 1;
            }
        });
        res?;
        if self.protect {
            // After the lookups, before any byte is copied: a write from now on faults and
            // marks its page again; one before it is in the copy.
            let mappings = dev.user_mappings();
            for (i, page) in self.run.iter().enumerate() {
                log.protect(&mappings, mem.file_pgoff() + first + i, page);
            }
        }
        if count != 0 {
            let len = count * PAGE_SIZE;
            // CAST: `usize` to `u64` is lossless on every kernel target.
            let header =
                Writer::new(&mut self.pending).section_header(SECTION_MEM_RUN, first as u64, len);
            if let Err(e) = header {
                // Not sent: still changed.
                for i in first..first + count {
                    log.mark(i);
                }
                self.run.clear();
                return Err(e);
            }
            if buf.is_some() {
                // The buffer holds the memory: the page references are not needed.
                self.run.clear();
            }
            self.run_buf = buf;
            self.run_first = first;
            self.run_pages = count;
            self.run_sent = 0;
            self.run_at = self.pending.len();
        }
        Ok(index)
    }

    /// `VFIO_MIG_GET_PRECOPY_INFO`'s `initial_bytes`: what is left of the
    /// header, registers and pass (the runs of the pages that exist and the
    /// pass has not reached; an estimate while pages are first touched
    /// behind it).
    pub(super) fn initial_bytes<T: Migrate>(&self, dev: &vfio::Device<T>) -> usize {
        let pass_left = match self.pass {
            Some(next) => existing_bytes(T::memory(dev), next),
            None => 0,
        };
        self.initial_unread.saturating_add(pass_left)
    }

    /// `VFIO_MIG_GET_PRECOPY_INFO`'s `dirty_bytes`: the changed pages' run
    /// being read, and the runs of the pages marked behind the pass (all
    /// marked pages once it is over), each page once.
    pub(super) fn dirty_bytes<T: Migrate>(&self, dev: &vfio::Device<T>) -> usize {
        let log = T::memory(dev).dirty_pages();
        let below = self.pass.unwrap_or(log.len()).min(log.len());
        let mut count = RunCount::new();
        for index in 0..below {
            count.visit(index, log.is_marked(index));
        }
        (self.unread() - self.initial_unread.min(self.unread())).saturating_add(count.bytes())
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

/// The length of a whole stream of `dev` now: header, registers, the runs
/// of the pages that exist, the end marker (a stop-copy from `STOP`).
pub(super) fn full_len<T: Migrate>(dev: &vfio::Device<T>) -> usize {
    existing_bytes(T::memory(dev), 0)
        .saturating_add(HEADER_LEN + SECTION_HEADER_LEN)
        .saturating_add(T::registers_len(dev))
}
