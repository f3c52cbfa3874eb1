// SPDX-License-Identifier: GPL-2.0

//! Emulated PCI configuration space.
//!
//! A 256-byte type-0 header, stored little endian whatever the CPU, with a
//! write mask: a write changes only the bits the mask marks writable. BARs
//! get a mask of their address bits, which gives standard BAR sizing for
//! free: writing all ones reads back `~(size - 1) | flags`, at any access
//! width.

use super::bindings;
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Atomic, Release},
};

/// Size of the (conventional) configuration space.
pub const CONFIG_SPACE_SIZE: usize = 256;

/// Offset of the first capability: right after the type-0 header.
pub const FIRST_CAPABILITY_OFFSET: u8 = 0x40;

/// BAR flags: a 32-bit memory BAR.
pub const BAR_MEM32: u32 =
    bindings::PCI_BASE_ADDRESS_SPACE_MEMORY | bindings::PCI_BASE_ADDRESS_MEM_TYPE_32;
/// BAR flags: a prefetchable 32-bit memory BAR.
pub const BAR_MEM32_PREFETCH: u32 = BAR_MEM32 | bindings::PCI_BASE_ADDRESS_MEM_PREFETCH;

/// Identity of an emulated PCI function.
pub struct Identity {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem: u16,
    /// Class code (base class and sub-class), e.g. `PCI_CLASS_DISPLAY_OTHER`.
    pub class: u16,
    /// Revision ID.
    pub revision: u8,
}

/// An emulated configuration space.
pub struct ConfigSpace {
    data: [u8; CONFIG_SPACE_SIZE],
    wmask: [u8; CONFIG_SPACE_SIZE],
    /// Offset of the last capability's "next" pointer, for chaining.
    last_cap_next: usize,
}

impl ConfigSpace {
    /// A header for `id`, with memory decoding on and no BARs or capabilities.
    #[inline]
    pub fn new(id: &Identity) -> Self {
        let mut cs = Self {
            data: [0; CONFIG_SPACE_SIZE],
            wmask: [0; CONFIG_SPACE_SIZE],
            last_cap_next: bindings::PCI_CAPABILITY_LIST as usize,
        };
        cs.set_u16(bindings::PCI_VENDOR_ID as usize, id.vendor);
        cs.set_u16(bindings::PCI_DEVICE_ID as usize, id.device);
        cs.set_u16(
            bindings::PCI_SUBSYSTEM_VENDOR_ID as usize,
            id.subsystem_vendor,
        );
        cs.set_u16(bindings::PCI_SUBSYSTEM_ID as usize, id.subsystem);
        // CAST: the PCI command bits are 16-bit register values.
        cs.set_u16(
            bindings::PCI_COMMAND as usize,
            (bindings::PCI_COMMAND_IO | bindings::PCI_COMMAND_MEMORY) as u16,
        );
        cs.set_u16(bindings::PCI_CLASS_DEVICE as usize, id.class);
        cs.set_u8(bindings::PCI_CLASS_REVISION as usize, id.revision);
        cs
    }

    /// Stores a byte, bypassing the write mask.
    #[inline]
    pub fn set_u8(&mut self, offset: usize, value: u8) {
        self.set_bytes(offset, &[value]);
    }

    /// Stores a little-endian 16-bit value, bypassing the write mask.
    #[inline]
    pub fn set_u16(&mut self, offset: usize, value: u16) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Stores a little-endian 32-bit value, bypassing the write mask.
    #[inline]
    pub fn set_u32(&mut self, offset: usize, value: u32) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Reads a little-endian 32-bit value (0 outside the configuration
    /// space).
    #[inline]
    pub fn u32_at(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(src) = offset
            .checked_add(4)
            .and_then(|end| self.data.get(offset..end))
        {
            b.copy_from_slice(src);
        }
        u32::from_le_bytes(b)
    }

    // Inlined: the offsets are mostly constants, so the checks fold away.
    #[inline]
    fn set_bytes(&mut self, offset: usize, bytes: &[u8]) {
        // Offsets are driver constants; an out-of-range one is a driver bug that must not
        // corrupt anything, so it is dropped.
        let end = offset.checked_add(bytes.len());
        if let Some(dst) = end.and_then(|end| self.data.get_mut(offset..end)) {
            dst.copy_from_slice(bytes);
        }
    }

    /// Declares BAR `index` (0-5) as a 32-bit BAR of `size` bytes with the
    /// given flag bits (`BAR_MEM32*`). `size` must be a power of two.
    #[inline]
    pub fn set_bar32(&mut self, index: usize, size: u32, flags: u32) -> Result {
        if index > 5 || !size.is_power_of_two() || size < 16 {
            return Err(EINVAL);
        }
        let offset = bindings::PCI_BASE_ADDRESS_0 as usize + 4 * index;
        self.set_u32(offset, flags);
        self.wmask
            .get_mut(offset..offset + 4)
            .ok_or(EINVAL)?
            .copy_from_slice(&(!(size - 1)).to_le_bytes());
        Ok(())
    }

    /// Appends a vendor-specific capability of `len` bytes (header included)
    /// at `offset`, and links it into the capability list. The caller fills
    /// in the payload with the `set_*` methods.
    #[inline]
    pub fn add_vendor_capability(&mut self, offset: u8, len: u8) -> Result {
        let (start, end) = (usize::from(offset), usize::from(offset) + usize::from(len));
        if start < usize::from(FIRST_CAPABILITY_OFFSET) || end > CONFIG_SPACE_SIZE || len < 3 {
            return Err(EINVAL);
        }
        // CAST: PCI capability IDs and status bits fit their registers.
        self.set_u8(start, bindings::PCI_CAP_ID_VNDR as u8);
        self.set_u8(start + 1, 0);
        self.set_u8(start + 2, len);
        self.set_u8(self.last_cap_next, offset);
        self.last_cap_next = start + 1;
        let status = bindings::PCI_STATUS as usize;
        let old = u16::from_le_bytes([self.data[status], self.data[status + 1]]);
        self.set_u16(status, old | bindings::PCI_STATUS_CAP_LIST as u16);
        Ok(())
    }

    /// The `len` bytes at `offset`, as a guest/user read sees them; `EINVAL`
    /// if any of them lies outside the configuration space.
    pub fn bytes(&self, offset: usize, len: usize) -> Result<&[u8]> {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        self.data.get(offset..end).ok_or(EINVAL)
    }

    /// Guest/user write of `data` at `offset`: only writable bits change.
    /// `EINVAL` if any of it lies outside the configuration space.
    #[inline]
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        let end = offset.checked_add(data.len()).ok_or(EINVAL)?;
        let dst = self.data.get_mut(offset..end).ok_or(EINVAL)?;
        for ((d, m), v) in dst.iter_mut().zip(&self.wmask[offset..end]).zip(data) {
            *d = (*d & !m) | (v & m);
        }
        Ok(())
    }

    /// All 256 bytes, as a migration saves them.
    pub fn raw(&self) -> &[u8; CONFIG_SPACE_SIZE] {
        &self.data
    }

    /// Whether `data` could be this configuration space after guest writes:
    /// every bit a write cannot change (identity, capabilities, BAR sizes)
    /// is the same.
    #[inline]
    pub fn could_be(&self, data: &[u8; CONFIG_SPACE_SIZE]) -> bool {
        self.data
            .iter()
            .zip(&self.wmask)
            .zip(data)
            .all(|((d, m), v)| d & !m == v & !m)
    }

    /// Replaces the writable bits with those of `data` (a migration
    /// restoring a configuration space [`ConfigSpace::could_be`] accepted).
    #[inline]
    pub fn restore(&mut self, data: &[u8; CONFIG_SPACE_SIZE]) {
        for ((d, m), v) in self.data.iter_mut().zip(&self.wmask).zip(data) {
            *d = (*d & !m) | (v & m);
        }
    }
}

/// Dwords of a configuration space.
const CONFIG_SPACE_DWORDS: usize = CONFIG_SPACE_SIZE / 4;

/// A copy of a [`ConfigSpace`] that readers take without its lock: its 64
/// dwords, each stored whole. Whoever changes the configuration space (under
/// its lock) publishes the result here; a read racing a write sees each
/// dword from before or from after it, as a multi-dword read of a real PCI
/// function may.
///
/// Configuration reads are the most frequent access a guest makes (QEMU
/// forwards each one), and the lock they would take otherwise costs more
/// than the read: a lockdep-checked acquisition and release, and the lock
/// guard's own "is held" check.
pub struct ConfigMirror {
    dwords: [Atomic<u32>; CONFIG_SPACE_DWORDS],
}

impl ConfigMirror {
    /// A mirror of `config`.
    #[inline]
    pub fn new(config: &ConfigSpace) -> Self {
        let mirror = Self {
            dwords: [const { Atomic::new(0) }; CONFIG_SPACE_DWORDS],
        };
        mirror.publish(config);
        mirror
    }

    /// Makes `config` what readers see.
    #[inline]
    pub fn publish(&self, config: &ConfigSpace) {
        for (i, dword) in self.dwords.iter().enumerate() {
            dword.store(config.u32_at(i * 4), Release);
        }
    }

    /// Fills `out` with the bytes at `offset`; `EINVAL` past the end.
    #[inline]
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let end = offset.checked_add(out.len()).ok_or(EINVAL)?;
        if end > CONFIG_SPACE_SIZE {
            return Err(EINVAL);
        }
        let (mut at, mut rest) = (offset, out);
        while !rest.is_empty() {
            let dword = self.dwords.get(at / 4).ok_or(EINVAL)?.load(Acquire);
            let dword = dword.to_le_bytes();
            let from = at % 4;
            let n = (4 - from).min(rest.len());
            let (head, tail) = core::mem::take(&mut rest)
                .split_at_mut_checked(n)
                .ok_or(EINVAL)?;
            head.copy_from_slice(dword.get(from..from + n).ok_or(EINVAL)?);
            (at, rest) = (at + n, tail);
        }
        Ok(())
    }
}
