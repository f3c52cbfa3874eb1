// SPDX-License-Identifier: GPL-2.0

//! Framebuffer devices (fbdev): `fb_info` allocation, `fb_ops` and
//! registration, for framebuffers in device memory.
//!
//! C header: [`include/linux/fb.h`](srctree/include/linux/fb.h)
//!
//! A [`Registration`] allocates a `struct fb_info` whose private part (`par`)
//! holds the `fb_ops`, the 16-entry pseudo palette, the framebuffer's
//! [`IoMemWc`] mapping and the driver's data. Dropping the registration
//! unregisters the framebuffer; the `fb_info` and everything in it live on
//! until its last user (an open `/dev/fbN`) is gone, when the fbdev core
//! calls `fb_destroy`: only then is the memory unmapped, exactly once. So a
//! device may be unbound while its framebuffer is open.

use super::{bindings, device as kx_device, iomem_wc::IoMemWc};
use core::{
    marker::PhantomData,
    mem::{align_of, size_of},
    ptr::{addr_of_mut, NonNull},
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    device::{self, Device},
    error::{from_result, to_result, VTABLE_DEFAULT_ERROR},
    prelude::*,
    str::CStr,
    types::Opaque,
    ThisModule,
};

/// Entries of the pseudo palette fbcon uses for truecolor visuals.
pub const PSEUDO_PALETTE_SIZE: usize = 16;

/// Position and width of one colour channel in a pixel (`struct fb_bitfield`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitfield {
    /// Bit offset of the channel's least significant bit.
    pub offset: u32,
    /// Number of bits; 0 if the pixel has no such channel.
    pub length: u32,
}

impl Bitfield {
    fn from_raw(b: &bindings::fb_bitfield) -> Self {
        Self {
            offset: b.offset,
            length: b.length,
        }
    }
}

/// The pixel layout the framebuffer currently uses (from `fb_var_screeninfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelLayout {
    /// Red channel.
    pub red: Bitfield,
    /// Green channel.
    pub green: Bitfield,
    /// Blue channel.
    pub blue: Bitfield,
    /// Alpha channel.
    pub transp: Bitfield,
}

/// One colour as fbcon asks for it in `fb_setcolreg`: 16-bit channel values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color {
    /// Red, 0..=0xffff.
    pub red: u32,
    /// Green, 0..=0xffff.
    pub green: u32,
    /// Blue, 0..=0xffff.
    pub blue: u32,
    /// Transparency, 0..=0xffff.
    pub transp: u32,
}

/// The visible mode of a packed 32 bits-per-pixel truecolor framebuffer
/// (XRGB8888: blue in bits 0-7, green 8-15, red 16-23, alpha 24-31).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Xrgb8888Mode {
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in pixels.
    pub height: u32,
    /// Bytes from one line to the next.
    pub line_length: u32,
}

/// An 8-bit channel at bit `offset` of a pixel.
fn bitfield(offset: u32) -> bindings::fb_bitfield {
    bindings::fb_bitfield {
        offset,
        length: 8,
        msb_right: 0,
    }
}

/// What a framebuffer driver implements.
///
/// The drawing, read/write and mmap operations are the fbdev core's helpers
/// for framebuffers in device memory (`FB_DEFAULT_IOMEM_OPS`).
#[vtable]
///
/// The driver's data lives in the `fb_info` until its last user is gone,
/// possibly after the device is unbound: hence `'static`.
pub trait Driver: Send + Sync + Sized + 'static {
    /// Computes the pseudo-palette entry for console colour `regno`
    /// (`fb_setcolreg`); the abstraction stores it, `regno` is below
    /// [`PSEUDO_PALETTE_SIZE`].
    fn setcolreg(&self, layout: &PixelLayout, regno: u32, color: Color) -> Result<u32> {
        let _ = (layout, regno, color);
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The private part of the `fb_info` (`info->par`): everything the fbdev core
/// may still use after the registration is dropped.
#[repr(C)]
struct Par<T> {
    ops: bindings::fb_ops,
    palette: Opaque<[u32; PSEUDO_PALETTE_SIZE]>,
    memory: IoMemWc,
    data: T,
}

/// A registered framebuffer; dropping it unregisters it (see the module
/// documentation for what lives on).
///
/// # Invariants
///
/// `info` is a registered `fb_info` allocated by [`Registration::new`] whose `par` is an
/// initialised `Par<T>`; the registration owns the reference `register_framebuffer()` took.
pub struct Registration<T: Driver> {
    info: NonNull<bindings::fb_info>,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds a pointer to a registered `fb_info`, which the fbdev core
// lets any thread unregister; `T` is `Send + Sync`.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: `&Registration` only reads the immutable `node`.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Allocates and registers a framebuffer of `mode` in `memory` for the bound
    /// `parent`, named `id` (at most 15 bytes, `fix.id`). `module` owns the
    /// `fb_ops` (`THIS_MODULE`), so it stays loaded while the device is open.
    pub fn new(
        parent: &Device<device::Bound>,
        module: &ThisModule,
        id: &CStr,
        mode: Xrgb8888Mode,
        memory: IoMemWc,
        data: T,
    ) -> Result<Self> {
        const { assert!(align_of::<Par<T>>() <= size_of::<usize>()) };
        let id = id.to_bytes();
        // `fix.id` is 16 bytes and NUL-terminated.
        if id.len() >= 16 {
            return Err(EINVAL);
        }
        let smem_len = u32::try_from(memory.len())?;
        let smem_start = usize::try_from(memory.phys())?;
        let frame = u64::from(mode.line_length) * u64::from(mode.height);
        if mode.width == 0
            || mode.height == 0
            || u64::from(mode.line_length) < u64::from(mode.width) * 4
            || frame > u64::from(smem_len)
        {
            return Err(EINVAL);
        }

        // SAFETY: `parent` is a valid device; `framebuffer_alloc()` returns an `fb_info`
        // with `size` zeroed private bytes at `par`, aligned to `sizeof(long)`.
        let info =
            unsafe { bindings::framebuffer_alloc(size_of::<Par<T>>(), kx_device::as_raw(parent)) };
        let info = NonNull::new(info).ok_or(ENOMEM)?;
        let raw = info.as_ptr();
        // SAFETY: `info` is a fresh allocation nobody else knows about yet.
        let par = unsafe { (*raw).par }.cast::<Par<T>>();

        let mut ops = Self::OPS;
        ops.owner = module.as_ptr();
        // SAFETY: `par` points to `size_of::<Par<T>>()` bytes, aligned enough for `Par<T>`
        // (checked above), which nothing else uses yet.
        unsafe {
            par.write(Par {
                ops,
                palette: Opaque::new([0; PSEUDO_PALETTE_SIZE]),
                memory,
                data,
            })
        };

        // SAFETY: `raw` is ours until registered; `par` was initialised above and lives as
        // long as `raw`.
        unsafe {
            let fix = &mut (*raw).fix;
            for (dst, src) in fix.id.iter_mut().zip(id) {
                *dst = *src;
            }
            fix.smem_start = smem_start;
            fix.smem_len = smem_len;
            fix.type_ = bindings::FB_TYPE_PACKED_PIXELS;
            fix.visual = bindings::FB_VISUAL_TRUECOLOR;
            fix.accel = bindings::FB_ACCEL_NONE;
            fix.line_length = mode.line_length;

            let var = &mut (*raw).var;
            var.xres = mode.width;
            var.yres = mode.height;
            var.xres_virtual = mode.width;
            var.yres_virtual = mode.height;
            var.bits_per_pixel = 32;
            var.red = bitfield(16);
            var.green = bitfield(8);
            var.blue = bitfield(0);
            var.transp = bitfield(24);
            // Physical size unknown.
            var.height = u32::MAX;
            var.width = u32::MAX;
            var.activate = bindings::FB_ACTIVATE_NOW;
            var.vmode = bindings::FB_VMODE_NONINTERLACED;

            (*raw).__bindgen_anon_1.screen_base = (*par).memory.addr().cast();
            (*raw).screen_size = (*par).memory.len();
            (*raw).fbops = addr_of_mut!((*par).ops);
            (*raw).pseudo_palette = (*par).palette.get().cast();
        }

        // SAFETY: `raw` is a fully set up `fb_info`.
        if let Err(e) = to_result(unsafe { bindings::register_framebuffer(raw) }) {
            // SAFETY: Registration failed, so the fbdev core holds no reference and will not
            // call `fb_destroy`: undo `new` here, once.
            unsafe { Self::free(raw) };
            return Err(e);
        }
        // INVARIANT: `raw` is registered and its `par` initialised.
        Ok(Self {
            info,
            _t: PhantomData,
        })
    }

    /// The framebuffer's minor number: it is `/dev/fb<node>`.
    pub fn node(&self) -> i32 {
        // SAFETY: By the type invariant `info` is registered; `node` does not change while it is.
        unsafe { (*self.info.as_ptr()).node }
    }

    const OPS: bindings::fb_ops = bindings::fb_ops {
        fb_read: Some(bindings::fb_io_read),
        fb_write: Some(bindings::fb_io_write),
        fb_mmap: Some(bindings::fb_io_mmap),
        fb_fillrect: Some(bindings::cfb_fillrect),
        fb_copyarea: Some(bindings::cfb_copyarea),
        fb_imageblit: Some(bindings::cfb_imageblit),
        fb_destroy: Some(Self::destroy_callback),
        fb_setcolreg: if T::HAS_SETCOLREG {
            Some(Self::setcolreg_callback)
        } else {
            None
        },
        // SAFETY: All-zero is a valid `fb_ops`: no owner and no further callbacks.
        ..unsafe { core::mem::zeroed() }
    };

    /// Drops the `Par<T>` and frees the `fb_info`.
    ///
    /// # Safety
    ///
    /// `info` was allocated by [`Registration::new`] with an initialised `par`, and nobody
    /// uses it any more (not registered, no references left).
    unsafe fn free(info: *mut bindings::fb_info) {
        // SAFETY: By the safety requirements `par` is an initialised `Par<T>` nobody uses; the
        // screen pointer goes away with the mapping.
        unsafe {
            (*info).__bindgen_anon_1.screen_base = core::ptr::null_mut();
            core::ptr::drop_in_place((*info).par.cast::<Par<T>>());
            bindings::framebuffer_release(info);
        }
    }

    /// `fb_destroy`: the last reference to the `fb_info` is gone.
    extern "C" fn destroy_callback(info: *mut bindings::fb_info) {
        // SAFETY: The fbdev core calls this once, when the last reference to a registered
        // `info` of ours is dropped (after `unregister_framebuffer()`).
        unsafe { Self::free(info) };
    }

    /// `fb_setcolreg`: stores the driver's value for console colour `regno`.
    extern "C" fn setcolreg_callback(
        regno: u32,
        red: u32,
        green: u32,
        blue: u32,
        transp: u32,
        info: *mut bindings::fb_info,
    ) -> i32 {
        from_result(|| {
            let index = usize::try_from(regno).map_err(|_| EINVAL)?;
            if index >= PSEUDO_PALETTE_SIZE {
                return Err(EINVAL);
            }
            // SAFETY: `info` is a live `fb_info` of ours (the core calls ops only on those), so
            // its `var` is readable and `par` is an initialised `Par<T>`.
            let (var, par) = unsafe { (&(*info).var, &*(*info).par.cast::<Par<T>>()) };
            let layout = PixelLayout {
                red: Bitfield::from_raw(&var.red),
                green: Bitfield::from_raw(&var.green),
                blue: Bitfield::from_raw(&var.blue),
                transp: Bitfield::from_raw(&var.transp),
            };
            let color = Color {
                red,
                green,
                blue,
                transp,
            };
            let value = par.data.setcolreg(&layout, regno, color)?;
            // fbcon (console lock) and FBIOPUTCMAP (fb_info lock) may call this concurrently,
            // and the drawing code reads the palette without locks: store atomically.
            // SAFETY: `index` is in bounds of the palette array, which lives as long as `info`;
            // its `u32`s are suitably aligned for `AtomicU32`, and every Rust access to them is
            // atomic.
            let slot = unsafe { AtomicU32::from_ptr(par.palette.get().cast::<u32>().add(index)) };
            slot.store(value, Ordering::Relaxed);
            Ok(0)
        })
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `info` is registered and we own the registration's
        // reference; the core frees it through `fb_destroy` once unused, so it is not touched
        // after this.
        unsafe { bindings::unregister_framebuffer(self.info.as_ptr()) };
    }
}
