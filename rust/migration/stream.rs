// SPDX-License-Identifier: GPL-2.0

//! The migration stream: a versioned, self-describing byte format.
//!
//! ```text
//! header   magic "MDEVRSMG", major u16, minor u16, header_len u32,
//!          driver [u8; 16], type [u8; 32] (NUL padded),
//!          mem_size u64, page_size u32, flags u32        (80 bytes in x.0)
//! section  id u16, flags u16, len u32, key u64, then len payload bytes
//! ...
//! end      a section with id 0, flags 0, len 0, key 0; nothing after it
//! ```
//!
//! All integers are little endian. A section is identified by `id` and
//! `key` (e.g. `id` "framebuffer page", `key` the page index) and may
//! appear several times: a later one replaces an earlier one, which is what
//! lets pre-copy send a section and stop-copy send it again when it
//! changed. A section flagged [`SECTION_OPTIONAL`] that the destination does
//! not know (from a newer minor version) is skipped; an unknown section
//! without that flag is refused. A newer minor may have a longer header,
//! whose extra bytes are skipped.
//!
//! Versions: 2.0 is written. It adds [`SECTION_MEM_RUN`], a run of
//! consecutive memory pages under one section header, which the source
//! sends instead of [`SECTION_MEM_PAGE`]s; a 1.x destination does not know
//! it (a mandatory section), hence the new major. A destination reads
//! majors [`OLDEST_MAJOR`] to [`MAJOR`]: a 1.x stream (page sections) is
//! read as 1.0 defines it (a run section in it is an unknown section); any
//! other major is refused with [`ERR_MAJOR`].
//!
//! [`Writer`] builds a stream; [`super::receiver::Receiver`] takes a received
//! one apart as it arrives, with [`check_header`] and [`Section`]'s checks:
//! every refusal has its errno and a line saying why, logged through a
//! [`RefusalLog`].

use super::refusal_log::RefusalLog;
use kernel::prelude::*;

/// The first bytes of every stream.
pub const MAGIC: [u8; 8] = *b"MDEVRSMG";
/// Format major version written; a destination reads it and the majors
/// from [`OLDEST_MAJOR`] on, and refuses any other.
pub const MAJOR: u16 = 2;
/// The oldest major version a destination still reads (1.x: page sections
/// only).
pub const OLDEST_MAJOR: u16 = 1;
/// Format minor version: newer minors only add optional sections or
/// header fields.
pub const MINOR: u16 = 0;
/// Size of the header of every x.0 version.
pub const HEADER_LEN: usize = 80;
/// Size of a section header.
pub const SECTION_HEADER_LEN: usize = 16;

/// Section flag: a destination that does not know the section skips it.
pub const SECTION_OPTIONAL: u16 = 1 << 0;

/// Section id of the end marker.
pub const SECTION_END: u16 = 0;
/// Section id of the PCI configuration space (256 bytes, key 0), saved by
/// the emulated PCI layer.
pub const SECTION_PCI_CONFIG: u16 = 1;
/// Section id of one page of device memory (framebuffer, VRAM): key the
/// page index, `PAGE_SIZE` bytes. Only pages that exist are sent; a
/// destination page the stream does not hold reads as zeros after loading.
/// Every version reads it; since 2.0 the source sends [`SECTION_MEM_RUN`]s.
pub const SECTION_MEM_PAGE: u16 = 2;
/// Section id of a run of consecutive pages of device memory (from 2.0):
/// key the index of its first page, `n * PAGE_SIZE` bytes for its `n >= 1`
/// pages, which must all be inside the memory. A destination refuses a
/// length that is not a whole number of pages ([`ERR_CORRUPT`]) and a run
/// past the end of memory ([`ERR_INVALID`]) as soon as its header is in,
/// and copies the payload page by page as it arrives, never holding a
/// whole run. The source sends at most [`RUN_PAGES`] pages per run.
pub const SECTION_MEM_RUN: u16 = 3;
/// The most pages a source puts in one run: a run never crosses a multiple
/// of `RUN_PAGES` pages (1 MiB of 4 KiB pages), so its pages can be held
/// while it is read. A destination takes any run inside the memory.
pub const RUN_PAGES: usize = 256;
/// First section id a driver may use for its own sections.
pub const SECTION_DRIVER_FIRST: u16 = 0x100;

/// Longest driver name in a header.
const DRIVER_LEN: usize = 16;
/// Longest type name in a header.
const TYPE_LEN: usize = 32;

/// Errno of a stream with a bad magic.
pub const ERR_MAGIC: Error = EINVAL;
/// Errno of a stream of a major version the destination does not read.
pub const ERR_MAJOR: Error = EPROTONOSUPPORT;
/// Errno of a stream from another driver or mdev type.
pub const ERR_FOREIGN: Error = EXDEV;
/// Errno of a stream from a device with another memory or page size.
pub const ERR_SIZE: Error = ERANGE;
/// Errno of a truncated stream: it ends inside the header or a section, or
/// before its end marker, or lacks a section the device needs.
pub const ERR_TRUNCATED: Error = ENODATA;
/// Errno of a corrupt stream: a section or header length that is wrong for
/// what it holds (a run that is not a whole number of pages), or bytes
/// after the end marker.
pub const ERR_CORRUPT: Error = EBADMSG;
/// Errno of a stream with a mandatory section the device does not know.
pub const ERR_UNKNOWN: Error = EPROTO;
/// Errno of a stream whose contents are invalid for the device (a value out
/// of range, a page or a run of pages past the end of memory, a read-only
/// configuration byte that differs).
pub const ERR_INVALID: Error = EINVAL;
/// The longest section payload a destination takes (a page, registers);
/// a longer one is corrupt ([`ERR_CORRUPT`]) once it is all there.
pub const MAX_SECTION_LEN: usize = 64 * 1024;
/// The longest header a destination takes (a newer minor's may be longer
/// than 1.0's, not this long).
pub const MAX_HEADER_LEN: usize = 4096;

/// What a stream says it was saved from, and what a destination requires.
#[derive(Clone, Copy)]
pub struct Origin {
    /// The driver (`mdpy`, `mbochs`); at most 16 bytes.
    pub driver: &'static CStr,
    /// The mdev type (`mdpy-xga`); at most 32 bytes.
    pub type_name: &'static CStr,
    /// Size of the device's memory (framebuffer, VRAM) in bytes.
    pub mem_size: u64,
}

/// A name as a fixed, NUL-padded field; `EINVAL` if it does not fit.
fn name_field<const N: usize>(name: &CStr) -> Result<[u8; N]> {
    let bytes = name.to_bytes();
    let mut out = [0u8; N];
    out.get_mut(..bytes.len())
        .ok_or(EINVAL)?
        .copy_from_slice(bytes);
    Ok(out)
}

/// A stream being written: appends the header and sections to a buffer.
pub struct Writer<'a> {
    buf: &'a mut KVVec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`.
    pub(in crate::kernel_ext) fn new(buf: &'a mut KVVec<u8>) -> Self {
        Self { buf }
    }

    /// Bytes written to the buffer so far (including earlier contents).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends the header for a device of identity `id`.
    pub(in crate::kernel_ext) fn header(&mut self, id: &Origin) -> Result {
        let driver: [u8; DRIVER_LEN] = name_field(id.driver)?;
        let type_name: [u8; TYPE_LEN] = name_field(id.type_name)?;
        let start = self.buf.len();
        self.buf.reserve(HEADER_LEN, GFP_KERNEL_ACCOUNT)?;
        self.buf.extend_from_slice(&MAGIC, GFP_KERNEL_ACCOUNT)?;
        self.buf
            .extend_from_slice(&MAJOR.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        self.buf
            .extend_from_slice(&MINOR.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        // CAST: the header is 80 bytes.
        self.buf
            .extend_from_slice(&(HEADER_LEN as u32).to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        self.buf.extend_from_slice(&driver, GFP_KERNEL_ACCOUNT)?;
        self.buf.extend_from_slice(&type_name, GFP_KERNEL_ACCOUNT)?;
        self.buf
            .extend_from_slice(&id.mem_size.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        // CAST: pages are at most 64 KiB.
        self.buf.extend_from_slice(
            &(kernel::page::PAGE_SIZE as u32).to_le_bytes(),
            GFP_KERNEL_ACCOUNT,
        )?;
        self.buf
            .extend_from_slice(&0u32.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        if self.buf.len() - start != HEADER_LEN {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Appends a section `id`/`key` of `len` payload bytes, which `fill`
    /// writes (it gets exactly `len` zeroed bytes). `optional`: a
    /// destination that does not know `id` may skip it.
    pub fn section_with(
        &mut self,
        id: u16,
        key: u64,
        optional: bool,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result,
    ) -> Result {
        if id < SECTION_DRIVER_FIRST && id != SECTION_PCI_CONFIG && id != SECTION_MEM_PAGE {
            return Err(EINVAL);
        }
        let len32 = u32::try_from(len).map_err(|_| EINVAL)?;
        let flags = if optional { SECTION_OPTIONAL } else { 0 };
        let start = self.buf.len();
        self.buf
            .reserve(SECTION_HEADER_LEN + len, GFP_KERNEL_ACCOUNT)?;
        self.push_section_header(id, flags, len32, key)?;
        let payload = start + SECTION_HEADER_LEN;
        self.buf.resize(payload + len, 0, GFP_KERNEL_ACCOUNT)?;
        let res = match self.buf.get_mut(payload..) {
            Some(bytes) => fill(bytes),
            None => Err(EINVAL),
        };
        if res.is_err() {
            self.buf.truncate(start);
        }
        res
    }

    /// Appends the header of a mandatory section `id`/`key` of `len` payload
    /// bytes, which the caller sends right after it.
    pub(in crate::kernel_ext) fn section_header(
        &mut self,
        id: u16,
        key: u64,
        len: usize,
    ) -> Result {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        self.push_section_header(id, 0, len, key)
    }

    /// Appends a section `id`/`key` holding `payload`.
    pub fn section(&mut self, id: u16, key: u64, optional: bool, payload: &[u8]) -> Result {
        self.section_with(id, key, optional, payload.len(), |out| {
            out.copy_from_slice(payload);
            Ok(())
        })
    }

    /// Appends the end marker.
    pub(in crate::kernel_ext) fn end(&mut self) -> Result {
        self.push_section_header(SECTION_END, 0, 0, 0)
    }

    fn push_section_header(&mut self, id: u16, flags: u16, len: u32, key: u64) -> Result {
        self.buf
            .extend_from_slice(&id.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        self.buf
            .extend_from_slice(&flags.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        self.buf
            .extend_from_slice(&len.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        self.buf
            .extend_from_slice(&key.to_le_bytes(), GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }
}

/// One section of a received stream.
#[derive(Clone, Copy)]
pub struct Section<'a> {
    /// Its id.
    pub id: u16,
    /// Its flags (`SECTION_*`).
    pub flags: u16,
    /// Its key (which instance of `id`: e.g. a page index).
    pub key: u64,
    /// Its payload.
    pub payload: &'a [u8],
}

impl Section<'_> {
    /// The payload as a fixed-size array; [`ERR_CORRUPT`], logged, if its
    /// length is not `N`.
    pub fn fixed<const N: usize>(&self, log: &RefusalLog<'_>) -> Result<&[u8; N]> {
        <&[u8; N]>::try_from(self.payload).map_err(|_| {
            log.refuse(
                ERR_CORRUPT,
                format_args!(
                    "section {:#x} has {} bytes, expected {}",
                    self.id,
                    self.payload.len(),
                    N
                ),
            )
        })
    }

    /// The page index of a [`SECTION_MEM_PAGE`] section: checks that it
    /// holds one page and that its key is below `pages`, the size of the
    /// device's `memory` (named in the refusal).
    pub fn mem_page(&self, log: &RefusalLog<'_>, pages: usize, memory: &str) -> Result<usize> {
        self.fixed::<{ kernel::page::PAGE_SIZE }>(log)?;
        page_index(self.key, log, pages, memory)
    }

    /// A section this device does not know: `Ok` (skipped) if it is
    /// optional, else [`ERR_UNKNOWN`], logged.
    pub fn unknown(&self, log: &RefusalLog<'_>) -> Result {
        if self.flags & SECTION_OPTIONAL != 0 {
            return Ok(());
        }
        Err(log.refuse(
            ERR_UNKNOWN,
            format_args!(
                "unknown mandatory section {:#x} (from a newer format?)",
                self.id
            ),
        ))
    }
}

/// The page index `key` of a [`SECTION_MEM_PAGE`] section: checks that it
/// is below `pages`, the size of the device's `memory` (named in the
/// refusal).
pub fn page_index(key: u64, log: &RefusalLog<'_>, pages: usize, memory: &str) -> Result<usize> {
    usize::try_from(key)
        .ok()
        .filter(|&i| i < pages)
        .ok_or_else(|| {
            log.refuse(
                ERR_INVALID,
                format_args!("page {} past the {}-page {}", key, pages, memory),
            )
        })
}

/// A NUL-padded name field as text, for a log line.
fn printable(b: &[u8]) -> &str {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(b.get(..end).unwrap_or(b)).unwrap_or("<not UTF-8>")
}

/// Little-endian readers over a byte slice that fail with `None` past its end.
pub(super) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
pub(super) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
pub(super) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Checks the header at the start of `bytes` against `expect`: `Some` of
/// its length and major version, or `None` while `bytes` is too short to
/// tell; each refusal is logged with its reason. A destination checks it as
/// soon as it has it, so that a stream from another device fails while it
/// is written (QEMU changes the device's state only when the destination VM
/// starts, after the migration has completed).
pub fn check_header(
    bytes: &[u8],
    expect: &Origin,
    log: &RefusalLog<'_>,
) -> Result<Option<(usize, u16)>> {
    // Magic, version and header length first.
    let (Some(major), Some(minor), Some(header_len)) =
        (le_u16(bytes, 8), le_u16(bytes, 10), le_u32(bytes, 12))
    else {
        return Ok(None);
    };
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(log.refuse(ERR_MAGIC, format_args!("bad magic")));
    }
    if !(OLDEST_MAJOR..=MAJOR).contains(&major) {
        return Err(log.refuse(
            ERR_MAJOR,
            format_args!(
                "format {}.{}, this driver reads {}.x to {}.x",
                major, minor, OLDEST_MAJOR, MAJOR
            ),
        ));
    }
    // CAST: `u32` to `usize` is lossless on every kernel target.
    let header_len = header_len as usize;
    // A newer minor may only grow the header; an x.0 header has exactly 80 bytes.
    if !(HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len)
        || (minor == 0 && header_len != HEADER_LEN)
    {
        return Err(log.refuse(
            ERR_CORRUPT,
            format_args!(
                "header length {} for format {}.{}",
                header_len, major, minor
            ),
        ));
    }
    let Some(header) = bytes.get(..header_len) else {
        return Ok(None);
    };
    let driver = &header[16..16 + DRIVER_LEN];
    let type_name = &header[16 + DRIVER_LEN..16 + DRIVER_LEN + TYPE_LEN];
    let want_driver: [u8; DRIVER_LEN] = name_field(expect.driver)?;
    let want_type: [u8; TYPE_LEN] = name_field(expect.type_name)?;
    if driver != want_driver || type_name != want_type {
        return Err(log.refuse(
            ERR_FOREIGN,
            format_args!(
                "saved from {}/{}, this is {}/{}",
                printable(driver),
                printable(type_name),
                expect.driver.to_str().unwrap_or("?"),
                expect.type_name.to_str().unwrap_or("?")
            ),
        ));
    }
    let mem_size = le_u64(header, 64).ok_or(ERR_TRUNCATED)?;
    let page_size = le_u32(header, 72).ok_or(ERR_TRUNCATED)?;
    // CAST: pages are at most 64 KiB.
    let our_page = kernel::page::PAGE_SIZE as u32;
    if mem_size != expect.mem_size || page_size != our_page {
        return Err(log.refuse(
            ERR_SIZE,
            format_args!(
                "memory {} bytes in {}-byte pages, this device has {} in {}",
                mem_size, page_size, expect.mem_size, our_page
            ),
        ));
    }
    Ok(Some((header_len, major)))
}
