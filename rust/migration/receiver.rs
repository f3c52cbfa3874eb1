// SPDX-License-Identifier: GPL-2.0

//! The destination's side of a stream: taken apart as user space writes it.
//!
//! A [`Receiver`] keeps only what it needs to go on: the header until it is
//! whole (checked as soon as it is, see [`check_header`]), the section
//! header being received, and the payload of the section being received
//! (at most [`MAX_SECTION_LEN`] bytes). Each whole section goes to the
//! device at once, which checks it and copies it to its staging copy, so
//! a stream has no length limit: pre-copy may send a page any number of
//! times, and each copy only overwrites the staged one. The bytes of a
//! page section, or of a run of pages (2.x), go from user space straight to
//! their pages' places in the staging copy ([`Sink::page`]), page by page
//! as they arrive: one copy per byte, whatever the `write()`s' sizes, and
//! never a whole run held. A run's bounds are checked when its header is
//! in, before any of its bytes.
//!
//! The first refusal ends the session: every later `write()` and
//! `RESUMING -> STOP` fail with the same errno, and nothing more is logged.

use super::{
    refusal_log::RefusalLog,
    stream::{
        check_header, le_u16, le_u32, le_u64, Origin, Section, ERR_CORRUPT, ERR_INVALID,
        ERR_TRUNCATED, MAX_HEADER_LEN, MAX_SECTION_LEN, SECTION_END, SECTION_HEADER_LEN,
        SECTION_MEM_PAGE, SECTION_MEM_RUN,
    },
};
use kernel::{page::PAGE_SIZE, prelude::*, uaccess::UserSliceReader};

/// Where a received stream goes: the device's staging copy.
pub(super) trait Sink {
    /// A whole section other than the end marker and the page sections
    /// [`Sink::page`] took: checks it and copies it into the staging copy.
    fn section(&mut self, section: &Section<'_>) -> Result;

    /// Copies `len` bytes of `data` to byte `offset` of page `key` (a page
    /// section's key, or a page of a run) in the staging copy, as the
    /// section's bytes arrive (never past the page's end); refuses a key
    /// past the device's memory.
    fn page(&mut self, key: u64, offset: usize, data: &mut UserSliceReader, len: usize) -> Result;

    /// The number of pages of the device's memory (a run must end inside).
    fn pages(&self) -> usize;
}

/// The section whose header is in and whose payload is being received.
struct Current {
    id: u16,
    flags: u16,
    key: u64,
    /// Its payload length, as its header says.
    len: usize,
    /// Payload bytes received so far.
    have: usize,
    /// Byte offset of its header in the stream, for refusals.
    at: u64,
    /// A page section or a run of pages, written straight into its
    /// pages' places ([`Sink::page`]).
    pages: bool,
}

/// A stream being received.
pub(super) struct Receiver {
    /// Bytes received so far.
    received: u64,
    /// The header while it is incomplete; freed once it is accepted.
    header: KVVec<u8>,
    /// The major version of the accepted header (0 before).
    major: u16,
    /// The section header being received.
    sec_hdr: [u8; SECTION_HEADER_LEN],
    /// Bytes of `sec_hdr` received.
    sec_hdr_have: usize,
    /// The section being received.
    current: Option<Current>,
    /// Its payload (when it is at most [`MAX_SECTION_LEN`] bytes).
    payload: KVVec<u8>,
    /// The end marker came: nothing may follow.
    ended: bool,
    /// The refusal that ended the session.
    refused: Option<Error>,
}

impl Receiver {
    /// A session that has received nothing.
    pub(super) fn new() -> Self {
        Self {
            received: 0,
            header: KVVec::new(),
            major: 0,
            sec_hdr: [0; SECTION_HEADER_LEN],
            sec_hdr_have: 0,
            current: None,
            payload: KVVec::new(),
            ended: false,
            refused: None,
        }
    }

    /// Takes in the bytes of `data`: checks the header against `expect` and
    /// hands the sections to `sink`. A refusal, by either, ends the session.
    pub(super) fn feed(
        &mut self,
        data: &mut UserSliceReader,
        expect: &Origin,
        log: &RefusalLog<'_>,
        sink: &mut dyn Sink,
    ) -> Result {
        if let Some(e) = self.refused {
            return Err(e);
        }
        let res = self.feed_bytes(data, expect, log, sink);
        if let Err(e) = res {
            // A fault while copying from user space leaves part of a write behind: refused too.
            self.refused = Some(e);
        }
        res
    }

    fn feed_bytes(
        &mut self,
        data: &mut UserSliceReader,
        expect: &Origin,
        log: &RefusalLog<'_>,
        sink: &mut dyn Sink,
    ) -> Result {
        loop {
            if let Some(cur) = self.current.as_ref().filter(|c| c.have == c.len) {
                let (id, flags, key, len, at) = (cur.id, cur.flags, cur.key, cur.len, cur.at);
                let pages = cur.pages;
                self.current = None;
                if pages {
                    // Already in its place.
                    continue;
                }
                if len > MAX_SECTION_LEN {
                    return Err(log.refuse(
                        ERR_CORRUPT,
                        format_args!(
                            "section {:#x} at byte {} has {} bytes, the most is {}",
                            id, at, len, MAX_SECTION_LEN
                        ),
                    ));
                }
                let payload = self.payload.get(..len).ok_or(EINVAL)?;
                sink.section(&Section {
                    id,
                    flags,
                    key,
                    payload,
                })?;
            }
            if data.is_empty() {
                return Ok(());
            }
            if self.ended {
                return Err(log.refuse(
                    ERR_CORRUPT,
                    format_args!("{} bytes after the end marker", data.len()),
                ));
            }
            if self.major == 0 {
                self.take_header(data, expect, log)?;
            } else if let Some(cur) = self.current.as_mut() {
                let mut n = (cur.len - cur.have).min(data.len());
                if cur.pages {
                    // Up to the end of the page: a run goes page by page.
                    let (page, offset) = (cur.have / PAGE_SIZE, cur.have % PAGE_SIZE);
                    n = n.min(PAGE_SIZE - offset);
                    // CAST: `usize` to `u64` is lossless on every kernel target.
                    let key = cur.key.checked_add(page as u64).ok_or(EINVAL)?;
                    sink.page(key, offset, data, n)?;
                } else {
                    match self.payload.get_mut(cur.have..cur.have + n) {
                        Some(out) if cur.len <= MAX_SECTION_LEN => data.read_slice(out)?,
                        // Too long to keep: counted, refused once it is all there.
                        _ => data.skip(n)?,
                    }
                }
                cur.have += n;
                self.add_received(n);
            } else {
                self.take_section_header(data, log, sink)?;
            }
        }
    }

    fn add_received(&mut self, n: usize) {
        // CAST: `usize` to `u64` is lossless on every kernel target.
        self.received = self.received.saturating_add(n as u64);
    }

    /// Takes header bytes: the first 16, which give its length, then the
    /// rest; checks it as soon as it can tell.
    fn take_header(
        &mut self,
        data: &mut UserSliceReader,
        expect: &Origin,
        log: &RefusalLog<'_>,
    ) -> Result {
        let want = match le_u32(&self.header, 12) {
            // CAST: `u32` to `usize` is lossless on every kernel target.
            Some(len) => (len as usize).clamp(16, MAX_HEADER_LEN),
            None => 16,
        };
        let have = self.header.len();
        let n = want.saturating_sub(have).min(data.len()).max(1);
        self.header.resize(have + n, 0, GFP_KERNEL_ACCOUNT)?;
        data.read_slice(self.header.get_mut(have..).ok_or(EINVAL)?)?;
        self.add_received(n);
        if let Some((_, major)) = check_header(&self.header, expect, log)? {
            self.major = major;
            self.header = KVVec::new();
        }
        Ok(())
    }

    /// Takes section header bytes; a whole header starts a section, or ends
    /// the stream.
    fn take_section_header(
        &mut self,
        data: &mut UserSliceReader,
        log: &RefusalLog<'_>,
        sink: &dyn Sink,
    ) -> Result {
        let have = self.sec_hdr_have;
        let n = (SECTION_HEADER_LEN - have).min(data.len());
        data.read_slice(self.sec_hdr.get_mut(have..have + n).ok_or(EINVAL)?)?;
        self.sec_hdr_have += n;
        self.add_received(n);
        if self.sec_hdr_have < SECTION_HEADER_LEN {
            return Ok(());
        }
        self.sec_hdr_have = 0;
        let h = &self.sec_hdr;
        let (id, flags, len, key) = (
            le_u16(h, 0).ok_or(EINVAL)?,
            le_u16(h, 2).ok_or(EINVAL)?,
            le_u32(h, 4).ok_or(EINVAL)?,
            le_u64(h, 8).ok_or(EINVAL)?,
        );
        // CAST: `usize` to `u64` is lossless on every kernel target.
        let at = self.received - SECTION_HEADER_LEN as u64;
        if id == SECTION_END {
            if flags != 0 || len != 0 || key != 0 {
                return Err(log.refuse(
                    ERR_CORRUPT,
                    format_args!("corrupt end marker at byte {}", at),
                ));
            }
            self.ended = true;
            return Ok(());
        }
        // CAST: `u32` to `usize` is lossless on every kernel target.
        let len = len as usize;
        // A run (2.x; in 1.x it is an unknown section) is checked now, before its bytes.
        let run = id == SECTION_MEM_RUN && self.major >= 2;
        if run {
            self.check_run(key, len, at, log, sink.pages())?;
        }
        // A page section of the right length goes straight to its place; any other
        // length is kept and refused by the device's check.
        let pages = run || (id == SECTION_MEM_PAGE && len == PAGE_SIZE);
        if !pages && len <= MAX_SECTION_LEN {
            self.payload.resize(len, 0, GFP_KERNEL_ACCOUNT)?;
        }
        self.current = Some(Current {
            id,
            flags,
            key,
            len,
            have: 0,
            at,
            pages,
        });
        Ok(())
    }

    /// Checks the header of a run of `len` bytes from page `key` (at byte
    /// `at`): a whole number of pages, at least one, all inside the
    /// memory's `pages`.
    fn check_run(
        &self,
        key: u64,
        len: usize,
        at: u64,
        log: &RefusalLog<'_>,
        pages: usize,
    ) -> Result {
        if len == 0 || len % PAGE_SIZE != 0 {
            return Err(log.refuse(
                ERR_CORRUPT,
                format_args!(
                    "run at byte {} has {} bytes, not a whole number of {}-byte pages",
                    at, len, PAGE_SIZE
                ),
            ));
        }
        let n = len / PAGE_SIZE;
        // CAST: `usize` to `u64` is lossless on every kernel target.
        let inside = key
            .checked_add(n as u64)
            .is_some_and(|end| end <= pages as u64);
        if !inside {
            return Err(log.refuse(
                ERR_INVALID,
                format_args!(
                    "run of {} pages from page {} at byte {} past the {}-page memory",
                    n, key, at, pages
                ),
            ));
        }
        Ok(())
    }

    /// The stream is over (`RESUMING -> STOP`): it must have ended with its
    /// end marker. `Ok` means every section was accepted.
    pub(super) fn finish(&mut self, log: &RefusalLog<'_>) -> Result {
        if let Some(e) = self.refused {
            return Err(e);
        }
        let res = self.check_complete(log);
        if let Err(e) = res {
            self.refused = Some(e);
        }
        res
    }

    fn check_complete(&self, log: &RefusalLog<'_>) -> Result {
        if self.major == 0 {
            return Err(match le_u32(&self.header, 12) {
                Some(len) => log.refuse(
                    ERR_TRUNCATED,
                    format_args!("{} bytes, header needs {}", self.received, len),
                ),
                None => log.refuse(
                    ERR_TRUNCATED,
                    format_args!("{} bytes, shorter than a header", self.received),
                ),
            });
        }
        if let Some(cur) = &self.current {
            return Err(log.refuse(
                ERR_TRUNCATED,
                format_args!(
                    "section {:#x} at byte {} claims {} bytes, {} are left",
                    cur.id, cur.at, cur.len, cur.have
                ),
            ));
        }
        if !self.ended {
            return Err(log.refuse(
                ERR_TRUNCATED,
                format_args!("ends at byte {} without an end marker", self.received),
            ));
        }
        Ok(())
    }

    /// Ends the session with refusal `err` (the first one stays).
    pub(super) fn refuse(&mut self, err: Error) {
        self.refused.get_or_insert(err);
    }
}
