// SPDX-License-Identifier: GPL-2.0

//! The C migration and logging tables of a VFIO device type ([`VfioOps`]).
//!
//! The type `vfio` installs (`vfio::DeviceOps::MIGRATION`) and `migration`
//! makes (`VfioOps::new`, for a type implementing `migration::Migrate`):
//! both depend on this module, which depends on neither, so `vfio` does not
//! depend on `migration`.

use super::bindings;
use core::marker::PhantomData;

/// The C migration and logging tables of a VFIO device data type `T`, for
/// `vfio::DeviceOps::MIGRATION`.
///
/// Only `VfioOps::new` (in `migration`) makes one, through the `unsafe`
/// [`VfioOps::from_tables`], and the fields are private to this module (read
/// by `vfio` through `pub(in crate::kernel_ext)` accessors): a driver can
/// neither build nor change a `VfioOps<T>` holding another type's tables
/// (`tools/testing/misuse/` checks that it does not compile).
///
/// # Invariants
///
/// The tables' callbacks treat their `vfio_device` as a `vfio::Device<T>`.
pub struct VfioOps<T> {
    flags: u32,
    mig_ops: &'static bindings::vfio_migration_ops,
    log_ops: &'static bindings::vfio_log_ops,
    _t: PhantomData<T>,
}

impl<T> VfioOps<T> {
    /// The tables `mig_ops` and `log_ops` with the `VFIO_MIGRATION_*` flags
    /// `flags`.
    ///
    /// # Safety
    ///
    /// The callbacks of `mig_ops` and `log_ops` treat their `vfio_device` as a
    /// `vfio::Device<T>`.
    pub(in crate::kernel_ext) const unsafe fn from_tables(
        flags: u32,
        mig_ops: &'static bindings::vfio_migration_ops,
        log_ops: &'static bindings::vfio_log_ops,
    ) -> Self {
        // INVARIANT: Per the safety requirements.
        Self {
            flags,
            mig_ops,
            log_ops,
            _t: PhantomData,
        }
    }

    /// The `VFIO_MIGRATION_*` flags.
    pub(in crate::kernel_ext) const fn flags(&self) -> u32 {
        self.flags
    }

    /// The migration table, made for a `vfio::Device<T>`.
    pub(in crate::kernel_ext) const fn mig_ops(&self) -> &'static bindings::vfio_migration_ops {
        self.mig_ops
    }

    /// The DMA logging table, made for a `vfio::Device<T>`.
    pub(in crate::kernel_ext) const fn log_ops(&self) -> &'static bindings::vfio_log_ops {
        self.log_ops
    }
}

impl<T> Clone for VfioOps<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for VfioOps<T> {}
