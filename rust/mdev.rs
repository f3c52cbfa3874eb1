// SPDX-License-Identifier: GPL-2.0

//! Mediated devices: the parent device, its types, and the mdev driver.
//!
//! C header: [`include/linux/mdev.h`](srctree/include/linux/mdev.h)
//!
//! A [`Registration`] does what an mdev sample's module init does: it
//! registers an mdev driver, creates the parent (a device of a class of the
//! same name, `/sys/devices/virtual/<name>/<name>`), and registers the parent
//! with its types, which appear under
//! `/sys/class/mdev_bus/<name>/mdev_supported_types/<name>-<type>/`.
//! Creating an mdev of a type calls [`Driver::probe`], whose device data
//! becomes a registered [`vfio::Device`]; removing it unregisters that.
//!
//! The registration is pin-initialised (it lives in the module's own
//! pinned state, like `miscdevice::MiscDeviceRegistration`) and owns the
//! driver's data ([`Driver::Data`], e.g. a memory pool), which `probe` and
//! the type attributes receive.

use super::{bindings, sysfs::ShowBuffer, vfio};
use core::marker::PhantomPinned;
use kernel::{
    device::Device as KDevice,
    error::{from_err_ptr, from_result, to_result, VTABLE_DEFAULT_ERROR},
    prelude::*,
    types::Opaque,
};

/// An mdev type: its sysfs name (`vga` in `mdpy-vga`), pretty name, and the
/// driver's own description of it.
pub struct Type<D: 'static> {
    /// Directory name under `mdev_supported_types`, after the parent's name.
    pub sysfs_name: &'static CStr,
    /// The type's `name` attribute.
    pub pretty_name: &'static CStr,
    /// Driver data for this type (resolution, memory size, ...).
    pub data: D,
}

/// A mediated device being probed.
#[repr(transparent)]
pub struct Device(Opaque<bindings::mdev_device>);

impl Device {
    /// The mdev's `struct device`.
    pub fn as_device(&self) -> &KDevice {
        // SAFETY: `self` is a live mdev (it is only handed out during probe), so its
        // embedded device is live too.
        unsafe { KDevice::from_raw(&raw mut (*self.0.get()).dev) }
    }
}

/// An mdev driver with its types.
#[vtable]
pub trait Driver: 'static {
    /// Per-type driver data.
    type TypeData: Sync + 'static;
    /// The driver's data, owned by its [`Registration`].
    type Data: Send + Sync;
    /// Per-device data: the VFIO device's operations.
    type Device: vfio::DeviceOps;

    /// Name of the driver, the parent device and its class.
    const NAME: &'static CStr;
    /// The supported types.
    const TYPES: &'static [Type<Self::TypeData>];
    /// Name of the per-device sysfs attribute group (e.g. `vendor`).
    const ATTRIBUTE_GROUP: &'static CStr = c"vendor";
    /// Read-only per-device attributes in that group, shown by
    /// [`Driver::show_attribute`].
    const ATTRIBUTES: &'static [&'static CStr] = &[];

    /// Creates the data of a new mdev of type `ty`.
    fn probe(
        data: &Self::Data,
        mdev: &Device,
        ty: &'static Type<Self::TypeData>,
    ) -> Result<impl PinInit<Self::Device, Error>>;

    /// The type's `description` attribute.
    fn description(
        _data: &Self::Data,
        _ty: &Type<Self::TypeData>,
        _buf: &mut ShowBuffer<'_>,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The type's `available_instances`. Without it, the mdev core counts
    /// instances against the registration's `max_instances`.
    fn available_instances(_data: &Self::Data, _ty: &Type<Self::TypeData>) -> u32 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Shows attribute `ATTRIBUTES[index]` of a device.
    fn show_attribute(
        _dev: &vfio::Device<Self::Device>,
        _index: usize,
        _buf: &mut ShowBuffer<'_>,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A C `mdev_type` with the index of its [`Type`] in `Driver::TYPES` and the
/// registration's driver data.
#[repr(C)]
struct TypeEntry<T: Driver> {
    mtype: Opaque<bindings::mdev_type>,
    index: usize,
    data: *const T::Data,
}

/// A C `device_attribute` with the index of its name in `Driver::ATTRIBUTES`.
#[repr(C)]
struct AttrEntry {
    attr: Opaque<bindings::device_attribute>,
    index: usize,
}

/// The C objects of a registration and the steps of it done so far, which
/// `Drop` undoes in reverse. Boxed: the C side keeps pointers into it.
struct Inner<T: Driver> {
    driver: Opaque<bindings::mdev_driver>,
    parent: Opaque<bindings::mdev_parent>,
    types: KVec<TypeEntry<T>>,
    type_ptrs: KVec<*mut bindings::mdev_type>,
    attrs: KVec<AttrEntry>,
    attr_ptrs: KVec<*mut bindings::attribute>,
    group: Opaque<bindings::attribute_group>,
    groups: [*const bindings::attribute_group; 2],
    driver_registered: bool,
    class: *mut bindings::class,
    dev: *mut bindings::device,
    parent_registered: bool,
}

/// A registered mdev driver, parent device and types, owning the driver's
/// data.
///
/// It is `!Unpin` (like the kernel crate's `MiscDeviceRegistration`): the
/// types point into it, so once pinned it can never be moved out of its
/// place, not even out of a `Pin<KBox<_>>` (`Pin::into_inner` needs
/// `Unpin`). `tools/testing/misuse/` checks that moving it out does not
/// compile.
///
/// # Invariants
///
/// `inner` records every registration step done; they are all done once the
/// registration is initialised. The types' `data` pointers point to `data`,
/// which does not move (the registration is pinned and `!Unpin`) and is
/// dropped after `inner`, i.e. after the parent, its types and its mdevs are
/// gone.
///
/// Like the C samples, this relies on the mdev core being done with the types
/// and the parent once `mdev_unregister_parent()` returns (it is, unless
/// `CONFIG_DEBUG_KOBJECT_RELEASE` delays kobject releases).
#[pin_data]
pub struct Registration<T: Driver> {
    // Dropped first: unregisters everything that can reach `data`.
    inner: KBox<Inner<T>>,
    #[pin]
    data: T::Data,
    // The C side points into the registration: it must never move.
    #[pin]
    _pin: PhantomPinned,
}

/// Does not compile if `Registration<T>` is `Unpin` for a driver whose data
/// is `Unpin` (the case that matters: a registration without its own
/// `PhantomPinned` would be `Unpin` then): both impls of `AmbiguousIfUnpin`
/// would apply and `_` could not be inferred (`E0283`).
fn _assert_registration_not_unpin<T: Driver>()
where
    T::Data: Unpin,
{
    trait AmbiguousIfUnpin<A> {
        fn check() {}
    }
    impl<X: ?Sized> AmbiguousIfUnpin<()> for X {}
    impl<X: ?Sized + Unpin> AmbiguousIfUnpin<u8> for X {}
    <Registration<T> as AmbiguousIfUnpin<_>>::check();
}

// SAFETY: The C objects are only touched by the mdev core under its own locking; the
// registration itself is only dropped, and its data is `Send`.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: `&Registration` only exposes `&T::Data`, which is `Sync`.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Registers the driver, the parent and its types, owning `data`. With no
    /// `available_instances` callback, at most `max_instances` mdevs (over
    /// all types) can exist at a time.
    pub fn new(
        module: &'static ThisModule,
        max_instances: u32,
        data: impl PinInit<T::Data, Error>,
    ) -> impl PinInit<Self, Error> {
        // INVARIANT: `inner` is initialised last, once `register` did every step, with the
        // types pointing to the pinned `data`. If `register` fails it has undone its steps and
        // the initialiser drops `data` again.
        try_pin_init!(&this in Self {
            data <- data,
            inner: Inner::<T>::register(
                module,
                max_instances,
                // SAFETY: `this` points to the registration being initialised, whose `data`
                // field was initialised above and is pinned; only its address is taken.
                unsafe { &raw const (*this.as_ptr()).data },
            )?,
            _pin: PhantomPinned,
        })
    }

    /// The driver's data.
    pub fn data(&self) -> &T::Data {
        &self.data
    }
}

impl<T: Driver> Inner<T> {
    /// Does every step of a registration whose driver data is at `data`.
    fn register(
        module: &'static ThisModule,
        max_instances: u32,
        data: *const T::Data,
    ) -> Result<KBox<Self>> {
        let mut inner = KBox::new(
            Inner {
                driver: Opaque::zeroed(),
                parent: Opaque::zeroed(),
                types: KVec::with_capacity(T::TYPES.len(), GFP_KERNEL)?,
                type_ptrs: KVec::with_capacity(T::TYPES.len(), GFP_KERNEL)?,
                attrs: KVec::with_capacity(T::ATTRIBUTES.len(), GFP_KERNEL)?,
                attr_ptrs: KVec::with_capacity(T::ATTRIBUTES.len() + 1, GFP_KERNEL)?,
                group: Opaque::zeroed(),
                groups: [core::ptr::null(); 2],
                driver_registered: false,
                class: core::ptr::null_mut(),
                dev: core::ptr::null_mut(),
                parent_registered: false,
            },
            GFP_KERNEL,
        )?;

        // Every vector has its final capacity already: filling it never reallocates (nor
        // carries the code to), and the error below cannot happen.
        let r = &mut *inner;
        for (index, ty) in T::TYPES.iter().enumerate() {
            let mtype = Opaque::<bindings::mdev_type>::zeroed();
            // SAFETY: `mtype` is ours and not yet shared with C.
            unsafe {
                (*mtype.get()).sysfs_name = ty.sysfs_name.as_char_ptr();
                (*mtype.get()).pretty_name = ty.pretty_name.as_char_ptr();
            }
            r.types
                .push_within_capacity(TypeEntry { mtype, index, data })
                .map_err(|_| ENOMEM)?;
        }
        for entry in r.types.iter() {
            r.type_ptrs
                .push_within_capacity(entry.mtype.get())
                .map_err(|_| ENOMEM)?;
        }

        for (index, name) in T::ATTRIBUTES.iter().enumerate() {
            let attr = Opaque::<bindings::device_attribute>::zeroed();
            let a = attr.get();
            // SAFETY: `a` is ours and not yet shared with C.
            unsafe {
                (*a).attr.name = name.as_char_ptr();
                (*a).attr.mode = 0o444;
                (*a).__bindgen_anon_1.show = Some(show_attribute::<T>);
            }
            r.attrs
                .push_within_capacity(AttrEntry { attr, index })
                .map_err(|_| ENOMEM)?;
        }
        for entry in r.attrs.iter() {
            let a = entry.attr.get();
            // SAFETY: `a` points to a live `device_attribute` of ours, which does not move
            // any more (the vector is full and never reallocates); not yet shared with C.
            unsafe { bindings::kx_sysfs_attr_init(&raw mut (*a).attr) };
            // SAFETY: `a` points to a live `device_attribute`.
            let ap = unsafe { &raw mut (*a).attr };
            r.attr_ptrs.push_within_capacity(ap).map_err(|_| ENOMEM)?;
        }
        if !T::ATTRIBUTES.is_empty() {
            inner
                .attr_ptrs
                .push_within_capacity(core::ptr::null_mut())
                .map_err(|_| ENOMEM)?;
            let g = inner.group.get();
            // SAFETY: `g` is ours and not yet shared with C.
            unsafe {
                (*g).name = T::ATTRIBUTE_GROUP.as_char_ptr();
                (*g).__bindgen_anon_2.attrs = inner.attr_ptrs.as_mut_ptr();
            }
            inner.groups[0] = g;
        }

        let d = inner.driver.get();
        // SAFETY: `d` is ours and not yet shared with C.
        unsafe {
            (*d).device_api = bindings::VFIO_DEVICE_API_PCI_STRING.as_ptr().cast();
            (*d).max_instances = max_instances;
            (*d).probe = Some(probe::<T>);
            (*d).remove = Some(remove::<T>);
            (*d).show_description = if T::HAS_DESCRIPTION {
                Some(show_description::<T>)
            } else {
                None
            };
            (*d).get_available = if T::HAS_AVAILABLE_INSTANCES {
                Some(get_available::<T>)
            } else {
                None
            };
            (*d).driver.name = T::NAME.as_char_ptr();
            (*d).driver.owner = module.as_ptr();
            if !T::ATTRIBUTES.is_empty() {
                (*d).driver.dev_groups = inner.groups.as_mut_ptr();
            }
        }

        // SAFETY: The driver is fully set up and lives in `inner` until unregistered.
        to_result(unsafe { bindings::mdev_register_driver(d) })?;
        // From here on, `Drop` undoes what was done.
        inner.driver_registered = true;
        // SAFETY: `T::NAME` is a valid string; the class is destroyed in `Drop`.
        inner.class = from_err_ptr(unsafe { bindings::kx_class_create(T::NAME.as_char_ptr()) })?;
        // SAFETY: The class is live; the device is destroyed in `Drop`.
        inner.dev = from_err_ptr(unsafe {
            bindings::kx_device_create(inner.class, T::NAME.as_char_ptr())
        })?;
        let (parent, dev, drv) = (inner.parent.get(), inner.dev, inner.driver.get());
        let (types, n) = (inner.type_ptrs.as_mut_ptr(), inner.type_ptrs.len());
        // CAST: `n` is the number of the driver's types, a small constant.
        // SAFETY: All objects live in `inner`, which outlives their registration.
        to_result(unsafe { bindings::mdev_register_parent(parent, dev, drv, types, n as c_uint) })?;
        inner.parent_registered = true;
        Ok(inner)
    }
}

impl<T: Driver> Drop for Inner<T> {
    fn drop(&mut self) {
        // SAFETY: Each step undone here was recorded as done; they are undone in reverse.
        unsafe {
            if self.parent_registered {
                bindings::mdev_unregister_parent(self.parent.get());
            }
            if !self.dev.is_null() {
                bindings::device_unregister(self.dev);
            }
            if !self.class.is_null() {
                bindings::class_destroy(self.class);
            }
            if self.driver_registered {
                bindings::mdev_unregister_driver(self.driver.get());
            }
        }
    }
}

/// Returns the [`Type`] and driver data of a C `mdev_type` registered by a
/// `Registration<T>`.
///
/// # Safety
///
/// `mtype` must point to the `mtype` of a live `TypeEntry` of a `Registration<T>`, which
/// stays registered for `'a`.
unsafe fn type_of<'a, T: Driver>(
    mtype: *mut bindings::mdev_type,
) -> Result<(&'static Type<T::TypeData>, &'a T::Data)> {
    // SAFETY: `TypeEntry` is `repr(C)` with `mtype` first, and per the safety requirements
    // `mtype` is inside one.
    let entry = unsafe { &*mtype.cast::<TypeEntry<T>>() };
    // SAFETY: By the type invariant of `Registration`, `data` is live while its types are
    // registered.
    let data = unsafe { &*entry.data };
    Ok((T::TYPES.get(entry.index).ok_or(EINVAL)?, data))
}

/// `mdev_driver.probe`: creates and registers the VFIO device of a new mdev.
///
/// # Safety
///
/// mdev core callback: `mdev` is a new mdev of one of our types.
unsafe extern "C" fn probe<T: Driver>(mdev: *mut bindings::mdev_device) -> c_int {
    from_result(|| {
        // SAFETY: `mdev` is live during probe; `Device` is a transparent wrapper.
        let (mdev_ref, mtype) = unsafe { (&*mdev.cast::<Device>(), (*mdev).type_) };
        // SAFETY: The mdev core only probes mdevs of the types we registered, while they are.
        let (ty, data) = unsafe { type_of::<T>(mtype) }?;
        let init = T::probe(data, mdev_ref, ty)?;
        let reg = vfio::Registration::<T::Device>::new(mdev_ref.as_device(), init)?;
        // SAFETY: `mdev` is live; the pointer is taken back in `remove`.
        unsafe { bindings::dev_set_drvdata(&raw mut (*mdev).dev, reg.into_raw()) };
        Ok(0)
    })
}

/// `mdev_driver.remove`: unregisters (and waits for the users of) the VFIO device.
///
/// # Safety
///
/// mdev core callback: `mdev` was successfully probed by `probe::<T>`.
unsafe extern "C" fn remove<T: Driver>(mdev: *mut bindings::mdev_device) {
    // SAFETY: `mdev` is live.
    let dev = unsafe { &raw mut (*mdev).dev };
    // SAFETY: `dev` is live; its drvdata was set by `probe`.
    let reg = unsafe { bindings::dev_get_drvdata(dev) };
    if !reg.is_null() {
        // SAFETY: `dev` is live.
        unsafe { bindings::dev_set_drvdata(dev, core::ptr::null_mut()) };
        // SAFETY: `reg` was leaked by `probe` and is taken back once; dropping it
        // unregisters the VFIO device.
        drop(unsafe { vfio::Registration::<T::Device>::from_raw(reg) });
    }
}

/// `mdev_driver.show_description`: the type's `description` attribute.
///
/// # Safety
///
/// mdev core callback: `mtype` is ours, `buf` a sysfs page.
unsafe extern "C" fn show_description<T: Driver>(
    mtype: *mut bindings::mdev_type,
    buf: *mut c_char,
) -> isize {
    // SAFETY: Per the callback contract.
    let mut out = unsafe { ShowBuffer::from_raw(buf) };
    // SAFETY: Per the callback contract; types are registered while their attributes exist.
    let res =
        unsafe { type_of::<T>(mtype) }.and_then(|(ty, data)| T::description(data, ty, &mut out));
    super::sysfs::show_result(&out, res)
}

/// `mdev_driver.get_available`: the type's `available_instances`.
///
/// # Safety
///
/// mdev core callback: `mtype` is ours.
unsafe extern "C" fn get_available<T: Driver>(mtype: *mut bindings::mdev_type) -> c_uint {
    // SAFETY: Per the callback contract; types are registered while their attributes exist.
    match unsafe { type_of::<T>(mtype) } {
        Ok((ty, data)) => T::available_instances(data, ty),
        Err(_) => 0,
    }
}

/// `device_attribute.show` of the per-device attributes.
///
/// # Safety
///
/// sysfs callback of an attribute of ours on a probed mdev; `buf` a sysfs page.
unsafe extern "C" fn show_attribute<T: Driver>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: Per the callback contract.
    let mut out = unsafe { ShowBuffer::from_raw(buf) };
    // SAFETY: `AttrEntry` is `repr(C)` with `attr` first and `attr` is inside one.
    let index = unsafe { (*attr.cast::<AttrEntry>()).index };
    // SAFETY: The driver core removes `dev_groups` before calling `remove`, so the
    // drvdata set by `probe` is live while the attribute can be shown.
    let reg = unsafe { bindings::dev_get_drvdata(dev) };
    let res = if reg.is_null() {
        Err(ENODEV)
    } else {
        // SAFETY: See above: `reg` is the registration leaked by `probe`, not yet taken back.
        let vdev = unsafe { vfio::Registration::<T::Device>::borrow_raw(reg) };
        T::show_attribute(vdev, index, &mut out)
    };
    super::sysfs::show_result(&out, res)
}
