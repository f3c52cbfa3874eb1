// SPDX-License-Identifier: GPL-2.0

//! sysfs files for module parameters.
//!
//! The `module!` macro of 7.3 registers parameters with permission 0: they
//! can be given at load time but get no `/sys/module/<module>/parameters/`
//! file. The C samples declare theirs 0444, and tools read them there to learn
//! a module's limits. [`module_param_readable!`] adds that file to a
//! parameter declared in `module!`.
//!
//! It registers a second `kernel_param` of the same name, sharing the first
//! one's storage (`module_parameters::<name>`) and `set` callback, with
//! permission 0444 and a `get` callback. The kernel's argument parser stores a
//! value through the first entry of that name it finds; both store it in the
//! same place, so the value is the same whichever one that is. Only entries
//! with a non-zero permission get a sysfs file, so there is exactly one.
//!
//! [`module_param_readable!`]: crate::module_param_readable

use super::sysfs::ShowBuffer;
use core::{fmt::Write, marker::PhantomData};
use kernel::{
    bindings,
    module_param::{KernelParam, ModuleParam, ModuleParamAccess},
    prelude::*,
};

/// A parameter type whose value sysfs can show.
pub trait Readable: ModuleParam + core::fmt::Display + 'static {
    /// The `kernel_param_ops` that `module!` uses for this type.
    const MODULE_OPS: &'static bindings::kernel_param_ops;
}

impl Readable for u32 {
    const MODULE_OPS: &'static bindings::kernel_param_ops = &kernel::module_param::PARAM_OPS_U32;
}

impl Readable for i32 {
    const MODULE_OPS: &'static bindings::kernel_param_ops = &kernel::module_param::PARAM_OPS_I32;
}

/// The `kernel_param_ops` of a readable parameter of type `T`.
pub struct ReadableOps<T>(PhantomData<T>);

impl<T: Readable> ReadableOps<T> {
    /// `module!`'s `set` (so a value given at load time lands where
    /// `module_parameters::<name>` reads it) and a `get` that prints the value.
    pub const OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
        flags: 0,
        set: T::MODULE_OPS.set,
        get: Some(Self::get),
        free: None,
    };

    /// `get`: the parameter's value (the default if none was given), one line.
    ///
    /// # Safety
    ///
    /// Parameter callback: `buffer` is the zeroed `PAGE_SIZE` page of a sysfs
    /// `show`, and `param` an entry built by [`readable`] for this `T`, whose
    /// `arg` is a live `ModuleParamAccess<T>`.
    unsafe extern "C" fn get(buffer: *mut c_char, param: *const bindings::kernel_param) -> c_int {
        // SAFETY: `param` is valid per the callback contract; its `arg` was set from a
        // `&'static ModuleParamAccess<T>` by `readable`.
        let access = unsafe { &*(*param).__bindgen_anon_1.arg.cast::<ModuleParamAccess<T>>() };
        // SAFETY: `buffer` is the zeroed page of a sysfs `show`, ours for the call.
        let mut buf = unsafe { ShowBuffer::from_raw(buffer) };
        match writeln!(buf, "{}", access.value()) {
            // CAST: the length is at most `PAGE_SIZE`, which fits in `c_int`.
            Ok(()) => buf.len() as c_int,
            Err(_) => EINVAL.to_errno(),
        }
    }
}

/// A `kernel_param` entry for the parameter `name` of this module, stored in
/// `storage` (a `module_parameters::<name>` of `module!`), readable by
/// everyone in sysfs through [`ReadableOps::OPS`].
///
/// Use [`module_param_readable!`](crate::module_param_readable), which puts it
/// in the `__param` section.
pub const fn readable<T: Readable>(
    name: &'static CStr,
    storage: &'static ModuleParamAccess<T>,
) -> KernelParam {
    KernelParam::new(bindings::kernel_param {
        name: kernel::str::as_char_ptr_in_const_context(name),
        // The module owning the parameter: the parameter lock and the sysfs file use it.
        // Only its address is taken here.
        mod_: &raw mut bindings::__this_module,
        ops: &ReadableOps::<T>::OPS,
        perm: 0o444,
        level: -1,
        flags: 0,
        __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
            arg: storage.as_void_ptr(),
        },
    })
}

/// Gives the `module!` parameter `name` of type `ty` (`u32` or `i32`) a
/// read-only (0444) file in `/sys/module/<module>/parameters/`, like the C
/// `module_param(name, type, 0444)`.
///
/// ```ignore
/// kernel_ext::module_param_readable!(count: u32);
/// ```
#[macro_export]
macro_rules! module_param_readable {
    ($name:ident: $ty:ty) => {
        const _: () = {
            // Why `link_section` is sound here: `__param` is the array of `struct
            // kernel_param` the module loader parses (`section_objs(.., "__param",
            // sizeof(struct kernel_param))`); `KernelParam` is `#[repr(transparent)]` over
            // `kernel_param`, so the entry has its size and alignment, like the entries
            // `module!` puts there.
            #[unsafe(link_section = "__param")]
            #[used(compiler)]
            static PARAM: ::kernel::module_param::KernelParam =
                $crate::kernel_ext::module_param_sysfs::readable::<$ty>(
                    ::kernel::c_str!(::core::stringify!($name)),
                    &$crate::module_parameters::$name,
                );
        };
    };
}
