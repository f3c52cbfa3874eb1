// SPDX-License-Identifier: GPL-2.0

//! Framebuffer devices (fbdev): `fb_info` allocation, `fb_ops` and
//! registration, for framebuffers in device memory.
//!
//! C header: [`include/linux/fb.h`](srctree/include/linux/fb.h)
//!
//! A [`Registration`] allocates a `struct fb_info` whose private part (`par`)
//! holds the `fb_ops`, the 16-entry pseudo palette, the driver's data and the
//! gate of the accesses to the device: `read()`, `write()`, `mmap()` and page
//! faults of `/dev/fbN`, and `fb_setcolreg`. User mappings are filled page by
//! page on fault, never up front.
//!
//! The framebuffer is revoked when the [`Registration`] is dropped or when
//! the device is unbound, whichever comes first: the registration keeps it
//! in a [`DevresLt`] of the device whose memory it shows, as the kernel
//! crate's bound-device resources (`pci::Bar::into_devres`) do. So a driver
//! that leaks or `mem::forget`s the registration (both safe) still cannot
//! leave fbcon or user mappings on a BAR after its device is unbound.
//! Revoking the device happens while the framebuffer is still registered:
//! it closes the gate (from then on those calls fail with `ENODEV`, and
//! touching a user mapping raises `SIGBUS`), waits for the accesses in
//! flight, zaps every user mapping, drops the driver's data, unregisters the
//! framebuffer and finally unmaps the memory and releases its region
//! ([`IoMemWc`]). So once the device is unbound, nothing reaches its BAR any
//! more, although `/dev/fbN` may stay open and mapped.
//!
//! What is left, the `fb_info` with the ops, the palette and the closed gate,
//! lives on until its last user is gone. The fbdev core then frees it with
//! `framebuffer_release()` as `fb_destroy`: `fb_release()` drops the module
//! reference of the open file *before* the last `put_fb_info()`, so no code of
//! this module may run on that path (`rmmod` could have freed it).

use super::{bindings, device as kx_device, iomem_wc::IoMemWc, vma};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    mem::{align_of, size_of, ManuallyDrop},
    ptr::{addr_of_mut, NonNull},
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    devres::DevresLt,
    error::{from_result, to_result, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_int},
    mm::virt::{flags as vm_flags, VmaNew},
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    str::CStr,
    sync::Completion,
    types::{ForLt, Opaque},
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
///
/// The driver's data lives in the `fb_info`, which C code frees: hence
/// `'static`. It is dropped when the framebuffer is revoked (the registration
/// dropped or the device unbound), once no callback can use it any more.
#[vtable]
pub trait Driver: Send + Sync + Sized + 'static {
    /// Computes the pseudo-palette entry for console colour `regno`
    /// (`fb_setcolreg`); the abstraction stores it, `regno` is below
    /// [`PSEUDO_PALETTE_SIZE`].
    fn setcolreg(&self, layout: &PixelLayout, regno: u32, color: Color) -> Result<u32> {
        let _ = (layout, regno, color);
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// `users` flag: the gate is closed.
const REVOKED: u32 = 1 << 31;

/// Counts the accesses to what the registration owns (the device memory and
/// the driver's data) so that dropping the registration can revoke them:
/// once closed, no access starts any more.
///
/// # Invariants
///
/// `users` is the number of live [`Access`]es, plus [`REVOKED`] once [`Gate::revoke`] was
/// called; `idle` is completed when it reaches exactly [`REVOKED`].
#[pin_data]
struct Gate {
    users: AtomicU32,
    #[pin]
    idle: Completion,
}

impl Gate {
    fn new() -> impl PinInit<Self> {
        // INVARIANT: no accesses, open.
        pin_init!(Self {
            users: AtomicU32::new(0),
            idle <- Completion::new(),
        })
    }

    /// Starts an access, unless the gate is closed.
    ///
    /// An access in flight may start another one (a `write()` whose user
    /// buffer faults on a mapping of the same framebuffer): that one fails
    /// once the gate is closed, rather than waiting, so revoking never
    /// deadlocks.
    fn enter(&self) -> Option<Access<'_>> {
        let mut users = self.users.load(Ordering::Relaxed);
        loop {
            // Closed, or (impossibly) 2^31 - 1 accesses at once.
            if users >= REVOKED - 1 {
                return None;
            }
            match self.users.compare_exchange_weak(
                users,
                users + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                // INVARIANT: counted.
                Ok(_) => return Some(Access { gate: self }),
                Err(now) => users = now,
            }
        }
    }

    /// Closes the gate and waits until the accesses in flight are over; no
    /// access starts afterwards. Called once.
    fn revoke(&self) {
        // Acquire: what the finished accesses did happens before what follows.
        if self.users.fetch_or(REVOKED, Ordering::AcqRel) != 0 {
            // The last access to end completes `idle` (which orders as well).
            self.idle.wait_for_completion();
        }
    }
}

/// One access through an open [`Gate`]; ends when dropped.
struct Access<'a> {
    gate: &'a Gate,
}

impl Drop for Access<'_> {
    fn drop(&mut self) {
        // Release: pairs with the acquire of `revoke`.
        if self.gate.users.fetch_sub(1, Ordering::Release) == REVOKED + 1 {
            self.gate.idle.complete_all();
        }
    }
}

/// The address space of a file through which user space mapped a
/// framebuffer, with a reference on its inode: revoking zaps its mappings.
///
/// # Invariants
///
/// `mapping` is a live `address_space` whose `host` inode this object holds a reference on.
struct HeldMapping {
    mapping: NonNull<bindings::address_space>,
}

impl HeldMapping {
    /// Takes a reference on the inode of `mapping`.
    ///
    /// # Safety
    ///
    /// `mapping` is the `f_mapping` of a live file.
    unsafe fn new(mapping: NonNull<bindings::address_space>) -> Self {
        // SAFETY: A live file's `f_mapping` is its inode's `i_mapping`, embedded in `host`
        // (the inode), which the file holds; so `host` is live and we may take a reference,
        // which keeps `mapping` alive.
        unsafe { bindings::ihold((*mapping.as_ptr()).host) };
        // INVARIANT: reference taken just above.
        Self { mapping }
    }

    /// Unmaps every user mapping of the file's whole range (`MAP_SHARED`
    /// only: the framebuffer refuses private ones).
    fn zap(&self) {
        // SAFETY: By the type invariant `mapping` is live; `unmap_mapping_range()` takes the
        // locks it needs. Offset 0 with length 0 means the whole file.
        unsafe { bindings::unmap_mapping_range(self.mapping.as_ptr(), 0, 0, 1) };
    }
}

impl Drop for HeldMapping {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold a reference on `host`, dropped once here.
        unsafe { bindings::iput((*self.mapping.as_ptr()).host) };
    }
}

/// The private part of the `fb_info` (`info->par`): everything the fbdev core
/// and user mappings may still use after the registration is dropped.
///
/// C code frees it with the `fb_info` (`framebuffer_release()`), without
/// dropping it: when that happens, `mapped` is empty and `data` dropped.
///
/// # Invariants
///
/// - `data` is initialised until [`Framebuffer`] drops it after closing `gate`, and only
///   used within an [`Access`] of `gate` (or before the framebuffer is registered).
/// - `mapped` is only used by `fb_mmap` within an [`Access`] under the `fb_info`'s `mm_lock`,
///   and by [`Framebuffer`] once `gate` is closed; it holds the address spaces of all files
///   that `mmap()` succeeded on.
/// - User space may map `pages` pages from page frame `first_pfn`: the memory of the
///   registration's [`IoMemWc`], live while `gate` is open.
#[pin_data]
#[repr(C)]
struct Par<T> {
    ops: bindings::fb_ops,
    palette: Opaque<[u32; PSEUDO_PALETTE_SIZE]>,
    #[pin]
    gate: Gate,
    first_pfn: usize,
    pages: usize,
    mapped: UnsafeCell<KVec<HeldMapping>>,
    data: UnsafeCell<ManuallyDrop<T>>,
}

impl<T> Par<T> {
    /// The driver's data, for the duration of `access`.
    fn data<'a>(&'a self, access: &'a Access<'a>) -> &'a T {
        let _ = access;
        // SAFETY: By the type invariant `data` is initialised and not dropped while an access
        // of `gate` lives, and nothing mutates it meanwhile.
        unsafe { &*self.data.get() }
    }
}

/// A registered framebuffer in the memory of an [`IoMemWc`], as a driver
/// holds it: dropping it, or unbinding the device whose BAR the memory is,
/// revokes the device and unregisters the framebuffer, whichever comes first
/// (see the module documentation for what lives on).
///
/// The framebuffer itself is kept in a [`DevresLt`] of that device: the
/// driver cannot keep it past the device's binding, even by leaking or
/// forgetting this handle. `_assert_registration_device_managed` below fails
/// to compile if it stops being so.
///
/// # Invariants
///
/// `node` is the minor of the framebuffer `_fb` registered.
pub struct Registration<T: Driver> {
    _fb: DevresLt<Framebuffer<'static, T>>,
    node: i32,
}

impl<T: Driver> Registration<T> {
    /// Allocates and registers a framebuffer of `mode` in `memory`, named
    /// `id` (at most 15 bytes, `fix.id`), for the PCI device whose BAR
    /// `memory` maps; it is revoked when that device is unbound at the
    /// latest. `module` owns the `fb_ops` (`THIS_MODULE`), so it stays loaded
    /// while the device is open.
    pub fn new(
        module: &ThisModule,
        id: &CStr,
        mode: Xrgb8888Mode,
        memory: IoMemWc<'_>,
        data: T,
    ) -> Result<Self> {
        let parent = memory.device().as_ref();
        let fb = Framebuffer::new(module, id, mode, memory, data)?;
        let node = fb.node();
        // SAFETY: `DevresLt` may keep `fb` until `parent` is unbound, past the borrow of
        // `memory`. That is sound because a `Framebuffer` holds only what stays valid for the
        // device's whole bound scope: an `fb_info` of its own and the `IoMemWc`, which owns its
        // mapping and region request and borrows the bound device itself, `parent` (as the
        // kernel crate's `pci::Bar::into_devres` argues for its `Bar`). The framebuffer is
        // dropped at the latest by the devres release of `parent`'s unbinding, before the
        // device is unbound. Nothing takes the `'static` device reference out of it: the
        // `DevresLt` is never accessed, only dropped.
        // If this fails, `fb` is dropped: revoked and unregistered at once.
        let fb = unsafe { DevresLt::new(parent, fb) }?;
        // INVARIANT: `node` was read from `fb`, registered.
        Ok(Self { _fb: fb, node })
    }

    /// The framebuffer's minor number: it is `/dev/fb<node>`.
    pub fn node(&self) -> i32 {
        self.node
    }
}

/// The framebuffer of a [`Registration`] is device-managed: this fails to
/// compile once the registration holds it other than in a [`DevresLt`]
/// (issue 24, item 4: revoked only in `Drop`, a forgotten registration left
/// fbcon and user mappings on a BAR the driver no longer owned).
fn _assert_registration_device_managed<T: Driver>(
    r: &Registration<T>,
) -> &DevresLt<Framebuffer<'static, T>> {
    &r._fb
}

/// A registered framebuffer in the memory of an [`IoMemWc`]; dropping it
/// revokes the device and unregisters the framebuffer. Private: drivers get
/// it only inside the device-managed [`Registration`].
///
/// # Invariants
///
/// `info` is a registered `fb_info` allocated by [`Framebuffer::new`] whose `par` is an
/// initialised `Par<T>` mapping `_memory` to user space; the framebuffer owns the reference
/// `register_framebuffer()` took, and `screen_base` points into `_memory`.
struct Framebuffer<'a, T: Driver> {
    info: NonNull<bindings::fb_info>,
    _memory: IoMemWc<'a>,
    _t: PhantomData<T>,
}

impl<T: Driver> ForLt for Framebuffer<'static, T> {
    type Of<'a> = Framebuffer<'a, T>;
}

// SAFETY: The framebuffer only holds a pointer to a registered `fb_info`, which the fbdev core
// lets any thread unregister, and the `Send` mapping; `T` is `Send + Sync`.
unsafe impl<T: Driver> Send for Framebuffer<'_, T> {}
// SAFETY: `&Framebuffer` only reads the immutable `node`.
unsafe impl<T: Driver> Sync for Framebuffer<'_, T> {}

impl<'a, T: Driver> Framebuffer<'a, T> {
    /// Allocates and registers a framebuffer of `mode` in `memory`, named
    /// `id`, with the device whose BAR `memory` maps as its parent.
    fn new(
        module: &ThisModule,
        id: &CStr,
        mode: Xrgb8888Mode,
        memory: IoMemWc<'a>,
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
        // The pages user space may map, as `fb_io_mmap()` computes them: those that hold
        // `smem_start..smem_start + smem_len`.
        let first_pfn = smem_start >> PAGE_SHIFT;
        let pages = (smem_start % PAGE_SIZE)
            .checked_add(memory.len())
            .and_then(|end| end.checked_add(PAGE_SIZE - 1))
            .ok_or(EINVAL)?
            >> PAGE_SHIFT;

        let parent = kx_device::as_raw(memory.device().as_ref());
        // SAFETY: `parent` is a valid device; `framebuffer_alloc()` returns an `fb_info`
        // with `size` zeroed private bytes at `par`, aligned to `sizeof(long)`.
        let info = unsafe { bindings::framebuffer_alloc(size_of::<Par<T>>(), parent) };
        let info = NonNull::new(info).ok_or(ENOMEM)?;
        let raw = info.as_ptr();
        // SAFETY: `info` is a fresh allocation nobody else knows about yet.
        let par = unsafe { (*raw).par }.cast::<Par<T>>();

        let mut ops = Self::OPS;
        ops.owner = module.as_ptr();
        let init = pin_init!(Par {
            ops,
            palette: Opaque::new([0; PSEUDO_PALETTE_SIZE]),
            gate <- Gate::new(),
            first_pfn,
            pages,
            mapped: UnsafeCell::new(KVec::new()),
            data: UnsafeCell::new(ManuallyDrop::new(data)),
        });
        // SAFETY: `par` points to `size_of::<Par<T>>()` bytes, aligned enough for `Par<T>`
        // (checked above), which nothing else uses yet and which never move: they are part of
        // the `fb_info` allocation.
        // INVARIANT: the gate is open and `data` initialised; nothing is mapped yet.
        unsafe { pin_init::raw_init(par, init) };

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

            (*raw).__bindgen_anon_1.screen_base = memory.addr().cast();
            (*raw).screen_size = memory.len();
            (*raw).fbops = addr_of_mut!((*par).ops);
            (*raw).pseudo_palette = (*par).palette.get().cast();
        }

        // SAFETY: `raw` is a fully set up `fb_info`.
        if let Err(e) = to_result(unsafe { bindings::register_framebuffer(raw) }) {
            // SAFETY: Registration failed, so the fbdev core holds no reference: nobody but us
            // used `par`, which is initialised; drop the data and free the `fb_info`, once.
            unsafe {
                ManuallyDrop::drop(&mut *(*par).data.get());
                bindings::framebuffer_release(raw);
            }
            return Err(e);
        }
        // INVARIANT: `raw` is registered, its `par` initialised and its memory `memory`.
        Ok(Self {
            info,
            _memory: memory,
            _t: PhantomData,
        })
    }

    /// The framebuffer's minor number: it is `/dev/fb<node>`.
    fn node(&self) -> i32 {
        // SAFETY: By the type invariant `info` is registered; `node` does not change while it is.
        unsafe { (*self.info.as_ptr()).node }
    }

    const OPS: bindings::fb_ops = bindings::fb_ops {
        fb_read: Some(Self::read_callback),
        fb_write: Some(Self::write_callback),
        fb_mmap: Some(Self::mmap_callback),
        fb_fillrect: Some(bindings::cfb_fillrect),
        fb_copyarea: Some(bindings::cfb_copyarea),
        fb_imageblit: Some(bindings::cfb_imageblit),
        // C only: the last reference may be dropped after our module's (see the module
        // documentation); `Par<T>` needs no drop by then.
        fb_destroy: Some(bindings::framebuffer_release),
        fb_setcolreg: if T::HAS_SETCOLREG {
            Some(Self::setcolreg_callback)
        } else {
            None
        },
        // SAFETY: All-zero is a valid `fb_ops`: no owner and no further callbacks.
        ..unsafe { core::mem::zeroed() }
    };

    /// The operations of the VMAs `fb_mmap` sets up.
    const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault_callback),
        // SAFETY: All-zero is a valid `vm_operations_struct`: `None`s.
        ..unsafe { core::mem::zeroed() }
    };

    /// The `Par<T>` of `info`.
    ///
    /// # Safety
    ///
    /// `info` is an `fb_info` allocated by [`Framebuffer::new`] that is still live (the
    /// caller holds a reference: an open file, a VMA of one, or the framebuffer) for `'b`.
    unsafe fn par<'b>(info: *mut bindings::fb_info) -> &'b Par<T> {
        // SAFETY: Per the safety requirements `par` is an initialised `Par<T>` that lives for
        // `'b`; it is only mutated through its `UnsafeCell`s and atomics.
        unsafe { &*(*info).par.cast::<Par<T>>() }
    }

    /// Runs `io` while the gate of `info` is open, so that the device memory
    /// `screen_base` maps stays there until it returns; `ENODEV` once revoked.
    ///
    /// # Safety
    ///
    /// `info` is an `fb_info` of ours, live for the call.
    unsafe fn gated(info: *mut bindings::fb_info, io: impl FnOnce() -> isize) -> isize {
        // SAFETY: Per the safety requirements `info` is ours and live.
        let par = unsafe { Self::par(info) };
        let Some(_access) = par.gate.enter() else {
            // CAST: errnos fit `isize`; there is no `From<i32>` for it.
            return ENODEV.to_errno() as isize;
        };
        io()
    }

    /// `fb_read`: `fb_io_read()`, while the device is there.
    ///
    /// # Safety
    ///
    /// fbdev callback: `info` is an `fb_info` of ours held by the open file being read; the
    /// other arguments are those of `fb_io_read()`.
    unsafe extern "C" fn read_callback(
        info: *mut bindings::fb_info,
        buf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract `info` is ours and live; `gated` calls the
        // closure only while `screen_base` maps the device memory, and the rest is the
        // callback contract.
        unsafe { Self::gated(info, || bindings::fb_io_read(info, buf, count, ppos)) }
    }

    /// `fb_write`: `fb_io_write()`, while the device is there.
    ///
    /// # Safety
    ///
    /// fbdev callback: `info` is an `fb_info` of ours held by the open file being written;
    /// the other arguments are those of `fb_io_write()`.
    unsafe extern "C" fn write_callback(
        info: *mut bindings::fb_info,
        buf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract `info` is ours and live; `gated` calls the
        // closure only while `screen_base` maps the device memory, and the rest is the
        // callback contract.
        unsafe { Self::gated(info, || bindings::fb_io_write(info, buf, count, ppos)) }
    }

    /// `fb_mmap`: sets `vma` up to map the framebuffer's pages as they are
    /// touched (see `fault_callback`), and remembers the file's address space
    /// so that revoking can zap the mapping.
    ///
    /// Private writable mappings are refused (`EINVAL`): copy-on-write of
    /// device memory is not what a framebuffer wants, and PFN mappings cannot
    /// have it.
    ///
    /// # Safety
    ///
    /// fbdev callback: `info` is an `fb_info` of ours held by the open file, `vma` is being
    /// set up by that file's `mmap()` hook, and the caller holds `info->mm_lock`.
    unsafe extern "C" fn mmap_callback(
        info: *mut bindings::fb_info,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: Per the callback contract `info` is ours and live.
        let par = unsafe { Self::par(info) };
        from_result(|| {
            let _access = par.gate.enter().ok_or(ENODEV)?;
            // SAFETY: Per the callback contract `vma` is being set up in an `mmap()` hook.
            let new = unsafe { VmaNew::from_raw(vma) };
            if new.flags() & (vm_flags::SHARED | vm_flags::MAYWRITE) == vm_flags::MAYWRITE {
                return Err(EINVAL);
            }
            // As `vm_iomap_memory()`: the VMA must lie within the framebuffer's pages.
            let vm_pages = (new.end() - new.start()) >> PAGE_SHIFT;
            let pgoff = vma::pgoff(new);
            if pgoff > par.pages || vm_pages > par.pages - pgoff {
                return Err(EINVAL);
            }

            // SAFETY: `vm_file` of a VMA being set up by a file's `mmap()` hook is that live
            // file, whose `f_mapping` does not change.
            let mapping = unsafe { (*(*vma).vm_file).f_mapping };
            let mapping = NonNull::new(mapping).ok_or(EINVAL)?;
            // SAFETY: We are within an access and the caller holds `mm_lock`, so by the `Par`
            // invariant nothing else uses `mapped`.
            let mapped = unsafe { &mut *par.mapped.get() };
            if !mapped.iter().any(|m| m.mapping == mapping) {
                // SAFETY: `mapping` is the `f_mapping` of the live file.
                mapped.push(unsafe { HeldMapping::new(mapping) }, GFP_KERNEL)?;
            }

            new.set_io();
            new.set_dontexpand();
            new.set_dontdump();
            // `VM_PFNMAP` is set behind `VmaNew`'s back: the kernel crate offers no setter,
            // and `VmaNew::set_mixedmap()` is safe because of that (`VM_MIXEDMAP` and
            // `VM_PFNMAP` together are invalid flags). Setting it here is sound because no
            // `VM_MIXEDMAP` can come with it: the VMA is fresh from the fbdev core's
            // `fb_mmap()`, which sets neither flag, we did not call `set_mixedmap()` above,
            // and `new` is a local of this callback that ends with it (no hook or
            // `vma::NewMapping` ever sees this VMA, and `VmaRef::as_mixedmap_vma()` refuses
            // it). The mm core then treats the VMA as a PFN map, which is what
            // `vmf_insert_pfn()` in `fault_callback` needs.
            //
            // SAFETY: The VMA is being set up, so nothing else looks at its flags; it is not
            // `VM_MIXEDMAP` (see above), so `VM_PFNMAP` keeps the flags valid. The page
            // protection is the one `fb_io_mmap()` uses. The ops are `'static`; the private
            // data is `info`, which the VMA's file keeps alive.
            unsafe {
                (*vma).__bindgen_anon_2.vm_flags |= vm_flags::PFNMAP;
                bindings::kx_fb_set_page_prot(vma, (*info).fix.smem_start);
                (*vma).vm_ops = &Self::VM_OPS;
                (*vma).vm_private_data = info.cast();
            }
            Ok(0)
        })
    }

    /// `fault`: maps the framebuffer page the fault is on, while the device
    /// is there; `SIGBUS` once it is revoked.
    ///
    /// # Safety
    ///
    /// mm callback: `vmf` is a valid fault in a live VMA set up by `mmap_callback`.
    unsafe extern "C" fn fault_callback(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: Per the callback contract `vmf` is valid for the call.
        let (vma, pgoff, address) = unsafe {
            let f = &(*vmf).__bindgen_anon_1;
            (f.vma, f.pgoff, f.address)
        };
        // SAFETY: `mmap_callback` set the private data to the `fb_info`, which the VMA's file
        // holds a reference on.
        let par = unsafe { Self::par((*vma).vm_private_data.cast()) };
        let Some(_access) = par.gate.enter() else {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        };
        let pfn = match par.first_pfn.checked_add(pgoff) {
            Some(pfn) if pgoff < par.pages => pfn,
            _ => return bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        };
        // SAFETY: `vma` is a `VM_PFNMAP` VMA that is not copy-on-write (`mmap_callback` refused
        // those) and `address` the faulting address in it. By the `Par` invariant `pfn` is a
        // page of the device memory, live while the gate is open: `_access` keeps it open
        // until the page is mapped, and revoking zaps the mapping afterwards.
        unsafe { bindings::vmf_insert_pfn(vma, address, pfn) }
    }

    /// `fb_setcolreg`: stores the driver's value for console colour `regno`.
    ///
    /// # Safety
    ///
    /// fbdev callback: `info` is a live `fb_info` of ours.
    unsafe extern "C" fn setcolreg_callback(
        regno: u32,
        red: u32,
        green: u32,
        blue: u32,
        transp: u32,
        info: *mut bindings::fb_info,
    ) -> c_int {
        // SAFETY: Per the callback contract `info` is ours and live.
        let par = unsafe { Self::par(info) };
        from_result(|| {
            let access = par.gate.enter().ok_or(ENODEV)?;
            let index = usize::try_from(regno).map_err(|_| EINVAL)?;
            if index >= PSEUDO_PALETTE_SIZE {
                return Err(EINVAL);
            }
            // SAFETY: `info` is live, so its `var` is readable; the core writes it only under
            // the locks its callers of `fb_setcolreg` hold.
            let var = unsafe { &(*info).var };
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
            let value = par.data(&access).setcolreg(&layout, regno, color)?;
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

impl<T: Driver> Drop for Framebuffer<'_, T> {
    fn drop(&mut self) {
        let info = self.info.as_ptr();
        // SAFETY: By the type invariant `info` is ours and registered: we hold a reference.
        let par = unsafe { Self::par(info) };
        par.gate.revoke();
        // SAFETY: The gate is closed, so by the `Par` invariant nothing else uses `mapped` or
        // `data` any more.
        let mapped = core::mem::take(unsafe { &mut *par.mapped.get() });
        // No access is in flight, none starts: after the zap, user space cannot reach the
        // memory. Still registered, so no other framebuffer has the minor of these files.
        for mapping in &mapped {
            mapping.zap();
        }
        drop(mapped);
        // SAFETY: See above; `data` is initialised (type invariant) and dropped once, here.
        unsafe { ManuallyDrop::drop(&mut *par.data.get()) };
        // SAFETY: By the type invariant `info` is registered and we own the registration's
        // reference, which this drops: `info` is not touched after it. fbcon stops drawing
        // into `_memory` here; read/write/mmap/faults and `fb_setcolreg` fail, so nothing uses
        // `_memory` when it is unmapped right after this.
        unsafe { bindings::unregister_framebuffer(info) };
    }
}
