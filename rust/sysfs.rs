// SPDX-License-Identifier: GPL-2.0

//! sysfs `show` buffers.

use core::fmt;
use kernel::prelude::*;

/// Usable size of the page the sysfs core hands to `show` callbacks: sysfs
/// rejects a full page ("bad count"), so the last byte stays unused.
const SHOW_BUFFER_SIZE: usize = kernel::page::PAGE_SIZE - 1;

/// The output buffer of a sysfs `show` callback; write into it with `write!`.
///
/// Output that does not fit is not written and makes the write fail (so the
/// `show` callback returns an error rather than a truncated value).
pub struct ShowBuffer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> ShowBuffer<'a> {
    /// Wraps the page the sysfs core passes to a `show` callback.
    ///
    /// # Safety
    ///
    /// `buf` must be valid for reads and writes of `PAGE_SIZE` initialised bytes
    /// (sysfs hands out a zeroed page) and not be accessed by anything else for `'a`.
    pub unsafe fn from_raw(buf: *mut c_char) -> Self {
        // SAFETY: Per the safety requirements, `buf` is valid for `PAGE_SIZE` initialised
        // bytes of exclusive access during `'a`; we use one less.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), SHOW_BUFFER_SIZE) };
        Self { buf, len: 0 }
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Write for ShowBuffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Runs a `show` implementation and converts its outcome to what sysfs expects.
pub fn show_result(buf: &ShowBuffer<'_>, res: Result) -> isize {
    match res {
        // CAST: `len` is at most `PAGE_SIZE`, which fits in `isize`.
        Ok(()) => buf.len() as isize,
        Err(e) => e.to_errno() as isize,
    }
}
