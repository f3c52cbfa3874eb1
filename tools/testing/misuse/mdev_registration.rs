// SPDX-License-Identifier: GPL-2.0

//! `mdev::Registration` is `!Unpin`: the types' C objects point into it, so
//! a driver must not be able to move it out of its pinned place (issue 24,
//! item 1: it was `Unpin` for `Unpin` driver data, and
//! `KBox::into_inner(Pin::into_inner(b))` freed what the types pointed to).

use crate::kernel_ext::{mdev, vfio};
use core::pin::Pin;
use kernel::prelude::*;

/// A VFIO device without operations.
pub struct Nothing;

#[vtable]
impl vfio::DeviceOps for Nothing {}

/// An mdev driver with one type and `Unpin` driver data (`()`).
pub struct Sample;

#[vtable]
impl mdev::Driver for Sample {
    type TypeData = ();
    type Data = ();
    type Device = Nothing;

    const NAME: &'static CStr = c"misuse";
    const TYPES: &'static [mdev::Type<()>] = &[mdev::Type {
        sysfs_name: c"1",
        pretty_name: c"misuse",
        data: (),
    }];

    fn probe(
        _data: &(),
        _mdev: &mdev::Device,
        _ty: &'static mdev::Type<()>,
    ) -> Result<impl PinInit<Nothing, Error>> {
        Ok(Ok::<_, Error>(Nothing))
    }
}

/// Registers the driver in a pinned box, as a module's state keeps it.
pub fn register(module: &'static ThisModule) -> Result<Pin<KBox<mdev::Registration<Sample>>>> {
    let data = Ok::<_, Error>(());
    KBox::pin_init(
        mdev::Registration::<Sample>::new(module, 1, data),
        GFP_KERNEL,
    )
}

/// Uses it in place.
pub fn data(reg: &Pin<KBox<mdev::Registration<Sample>>>) -> &() {
    reg.data()
}

/// Moves it out of its box, which is then freed.
#[cfg(kx_misuse_mdev_registration_move)]
pub fn move_out(reg: Pin<KBox<mdev::Registration<Sample>>>) -> mdev::Registration<Sample> {
    KBox::into_inner(Pin::into_inner(reg)) //~ ERROR E0277
}

/// Moves it out of a pinned reference.
#[cfg(kx_misuse_mdev_registration_get_mut)]
pub fn swap(a: Pin<&mut mdev::Registration<Sample>>, b: &mut mdev::Registration<Sample>) {
    core::mem::swap(Pin::get_mut(a), b); //~ ERROR E0277
}
