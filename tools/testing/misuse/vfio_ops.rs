// SPDX-License-Identifier: GPL-2.0

//! `migration::VfioOps<T>` is only ever `VfioOps::<T>::new()`: the C tables
//! in it cast their `vfio_device` to a `vfio::Device<T>`, so a driver must
//! not be able to put another type's tables into a `VfioOps<T>` (issue 24,
//! item 2: the fields were `pub(crate)`, and the layer is a module of the
//! driver's crate). The type lives in `rust/vfio_ops.rs` (which `vfio` and
//! `migration` both use); `migration` re-exports it and builds it with the
//! layer's `unsafe` `VfioOps::from_tables`.

use crate::kernel_ext::migration::VfioOps;

/// Copies a table, which a driver may do.
pub fn copy<A>(ops: &VfioOps<A>) -> VfioOps<A> {
    *ops
}

/// Puts the tables of `B` into a `VfioOps<A>`.
#[cfg(kx_misuse_vfio_ops_field)]
pub fn forge<A, B>(mut ops: VfioOps<A>, other: VfioOps<B>) -> VfioOps<A> {
    ops.mig_ops = other.mig_ops; //~ ERROR E0616
    ops
}

/// Takes `B`'s tables out through the layer's accessors.
#[cfg(kx_misuse_vfio_ops_accessor)]
pub fn tables<B>(other: &VfioOps<B>) -> &'static crate::kernel_ext::bindings::vfio_migration_ops {
    other.mig_ops() //~ ERROR E0624
}

/// Builds a `VfioOps<A>` from any tables.
#[cfg(kx_misuse_vfio_ops_literal)]
pub fn build<A>(
    mig_ops: &'static crate::kernel_ext::bindings::vfio_migration_ops,
    log_ops: &'static crate::kernel_ext::bindings::vfio_log_ops,
) -> VfioOps<A> {
    VfioOps {
        flags: 0, //~ ERROR E0451
        mig_ops,
        log_ops,
        _t: core::marker::PhantomData,
    }
}

/// Builds a `VfioOps<A>` from any tables through the layer's constructor.
#[cfg(kx_misuse_vfio_ops_from_tables)]
pub fn from_tables<A>(
    mig_ops: &'static crate::kernel_ext::bindings::vfio_migration_ops,
    log_ops: &'static crate::kernel_ext::bindings::vfio_log_ops,
) -> VfioOps<A> {
    // SAFETY: None: the function is private to the layer.
    unsafe { VfioOps::from_tables(0, mig_ops, log_ops) } //~ ERROR E0624
}
