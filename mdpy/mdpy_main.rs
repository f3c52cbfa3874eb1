// SPDX-License-Identifier: GPL-2.0

//! Mediated virtual PCI display host device driver (Rust).
//!
//! A drop-in for `samples/vfio-mdev/mdpy.c`: mdev types `mdpy-vga`,
//! `mdpy-xga` and `mdpy-hd`, each a PCI display (1b36:000f) whose BAR0 is an
//! XRGB8888 framebuffer and whose mode sits in a vendor capability, shown to
//! the host through the VFIO region display interface
//! (`VFIO_DEVICE_QUERY_GFX_PLANE` with `VFIO_GFX_PLANE_TYPE_REGION`).
//!
//! Unlike the C sample, BAR accesses honour their offset, partial and
//! misaligned accesses never touch memory they should not, config space is a
//! full 256 bytes stored little endian, and `GET_IRQ_INFO` does not depend on
//! `GET_INFO` having been called first.

#[path = "../rust/lib.rs"]
pub mod kernel_ext;

pub mod defs;
mod device;
mod framebuffer;
mod migration;
mod regions;

use kernel::prelude::*;
use kernel_ext::mdev;

module! {
    type: MdpyModule,
    name: "mdpy",
    authors: ["mdev-rs developers"],
    description: "Mediated virtual PCI display host device driver",
    license: "GPL v2",
    params: {
        count: u32 {
            default: 4,
            description: "number of mdpy devices",
        },
    },
}

// Readable in sysfs, as the C sample's (0444).
crate::module_param_readable!(count: u32);

/// Name of the driver, its parent device and class.
const MDPY_NAME: &CStr = c"mdpy";

/// A display mode, the data of an mdpy type.
pub(crate) struct Mode {
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
    /// Bytes per line.
    stride: u32,
    /// Framebuffer (BAR0) size.
    memsize: u32,
}

impl Mode {
    /// Bytes per pixel of XRGB8888, the only format.
    pub(crate) const BYTES_PER_PIXEL: u32 = 4;

    /// A `width` x `height` mode. Evaluated when the module is compiled (the
    /// types are constants): an overflow is a build error, and the running
    /// module carries no arithmetic for it.
    // `#[inline]`: only for constants, so no copy of it is compiled into the module.
    #[inline]
    const fn new(width: u32, height: u32) -> Self {
        let stride = width * Self::BYTES_PER_PIXEL;
        Self {
            width,
            height,
            stride,
            memsize: (stride * height).next_power_of_two(),
        }
    }

    /// Bytes per line.
    pub(crate) const fn stride(&self) -> u32 {
        self.stride
    }

    /// Framebuffer (BAR0) size: the visible area rounded up to a power of
    /// two, as a PCI BAR must be.
    pub(crate) const fn memsize(&self) -> u32 {
        self.memsize
    }
}

struct Mdpy;

#[vtable]
impl mdev::Driver for Mdpy {
    type TypeData = Mode;
    type Data = ();
    type Device = device::MdpyVfio;

    const NAME: &'static CStr = MDPY_NAME;
    const TYPES: &'static [mdev::Type<Mode>] = &[
        mdev::Type {
            sysfs_name: c"vga",
            pretty_name: c"mdpy-vga",
            data: Mode::new(640, 480),
        },
        mdev::Type {
            sysfs_name: c"xga",
            pretty_name: c"mdpy-xga",
            data: Mode::new(1024, 768),
        },
        mdev::Type {
            sysfs_name: c"hd",
            pretty_name: c"mdpy-hd",
            data: Mode::new(1920, 1080),
        },
    ];
    const ATTRIBUTES: &'static [&'static CStr] = &[c"resolution"];

    #[inline]
    fn probe(
        _data: &(),
        mdev: &mdev::Device,
        ty: &'static mdev::Type<Mode>,
    ) -> Result<impl PinInit<Self::Device, Error>> {
        device::MdpyDevice::new(mdev, ty)
    }

    #[inline]
    fn description(
        _data: &(),
        ty: &mdev::Type<Mode>,
        buf: &mut kernel_ext::sysfs::ShowBuffer<'_>,
    ) -> Result {
        use core::fmt::Write;
        writeln!(
            buf,
            "virtual display, {}x{} framebuffer",
            ty.data.width, ty.data.height
        )
        .map_err(|_| EINVAL)
    }

    #[inline]
    fn show_attribute(
        dev: &kernel_ext::vfio::Device<Self::Device>,
        _index: usize,
        buf: &mut kernel_ext::sysfs::ShowBuffer<'_>,
    ) -> Result {
        use core::fmt::Write;
        // `resolution` is the only attribute.
        let mode = dev.mode();
        writeln!(buf, "{}x{}", mode.width, mode.height).map_err(|_| EINVAL)
    }
}

#[pin_data]
struct MdpyModule {
    #[pin]
    _registration: mdev::Registration<Mdpy>,
}

impl kernel::InPlaceModule for MdpyModule {
    #[inline]
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let count = module_parameters::count.value();
        try_pin_init!(Self {
            _registration <- mdev::Registration::new(module, count, Ok(())),
        })
    }
}
