// SPDX-License-Identifier: GPL-2.0

//! Mediated virtual PCI display host device driver, bochs flavour (Rust).
//!
//! A drop-in for `samples/vfio-mdev/mbochs.c`: mdev types `mbochs-small`,
//! `mbochs-medium` and `mbochs-large`, each a PCI display (1234:1111, what
//! the guest's `bochs` DRM driver drives) with VRAM in BAR0 and the bochs
//! DISPI registers in BAR2. The host sees the guest's scanout as dma-bufs
//! (`VFIO_DEVICE_QUERY_GFX_PLANE` with `VFIO_GFX_PLANE_TYPE_DMABUF`, then
//! `VFIO_DEVICE_GET_GFX_DMABUF`), and sets the monitor's EDID through a VFIO
//! graphics EDID region.
//!
//! Unlike the C sample, the first query of a new mode returns the plane,
//! every `GET_GFX_DMABUF` returns a new close-on-exec descriptor with its own
//! reference, dma-bufs can be mapped by user space and keep their pages (and
//! nothing else) alive, so removing the device under them is safe, BAR0
//! accesses honour their offset, ignored register reads return zeros, and
//! hostile DISPI values never make a buffer reach outside VRAM.

#[path = "../rust/lib.rs"]
pub mod kernel_ext;

mod device;
mod dmabuf;
mod last_plane;
mod migration;
mod regions;
mod regs;
mod vram;

use kernel::{
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
};
use kernel_ext::{mdev, sysfs::ShowBuffer, workqueue::OwnedQueue};

module! {
    type: MbochsModule,
    name: "mbochs",
    authors: ["mdev-rs developers"],
    description: "Mediated virtual PCI display host device driver",
    license: "GPL v2",
    imports_ns: ["DMA_BUF"],
    params: {
        count: u32 {
            default: 256,
            description: "megabytes available to mbochs devices",
        },
        mem: u32 {
            default: 0,
            description: "megabytes available to mbochs devices (alias of count; wins if nonzero)",
        },
    },
}

// Readable in sysfs: `count` as in the C sample (0444), and its alias.
crate::module_param_readable!(count: u32);
crate::module_param_readable!(mem: u32);

/// Name of the driver, its parent device and class.
const MBOCHS_NAME: &CStr = c"mbochs";

/// What an mbochs type is: its video memory and the largest mode its EDID
/// allows.
pub(crate) struct TypeInfo {
    /// Video memory (BAR0) in MiB.
    pub(crate) mbytes: u32,
    /// Largest horizontal resolution; 0 for no limit.
    pub(crate) max_x: u32,
    /// Largest vertical resolution; 0 for no limit.
    pub(crate) max_y: u32,
    /// Video memory in bytes.
    memsize: u32,
}

impl TypeInfo {
    /// A type of `mbytes` MiB of video memory whose EDID allows modes up to
    /// `max_x` x `max_y`. Evaluated when the module is compiled (the types
    /// are constants): an overflow is a build error, and the running module
    /// carries no arithmetic for it.
    // `#[inline]`: only for constants, so no copy of it is compiled into the module.
    #[inline]
    const fn new(mbytes: u32, max_x: u32, max_y: u32) -> Self {
        Self {
            mbytes,
            max_x,
            max_y,
            memsize: mbytes * 1024 * 1024,
        }
    }

    /// Video memory in bytes.
    pub(crate) const fn memsize(&self) -> u32 {
        self.memsize
    }
}

/// The video memory pool of the module (`count`/`mem` megabytes), shared by
/// its devices.
pub(crate) struct Pool {
    /// Megabytes not reserved by a device.
    avail_mbytes: Atomic<u32>,
    /// Where a migration destination's replaced VRAM is freed, after the
    /// switch-over rather than in it; destroyed (after freeing what is
    /// queued) with the pool, once the last device is gone.
    reclaim: OwnedQueue,
}

impl Pool {
    /// Megabytes left.
    fn available(&self) -> u32 {
        self.avail_mbytes.load(Relaxed)
    }
}

/// Video memory reserved from the pool for one device, returned on drop.
pub(crate) struct PoolReservation {
    pool: Arc<Pool>,
    mbytes: u32,
}

impl PoolReservation {
    /// Reserves `mbytes`; `ENOSPC` if the pool has less left.
    pub(crate) fn new(pool: &Arc<Pool>, mbytes: u32) -> Result<Self> {
        let mut avail = pool.avail_mbytes.load(Relaxed);
        loop {
            let left = avail.checked_sub(mbytes).ok_or(ENOSPC)?;
            match pool.avail_mbytes.cmpxchg(avail, left, Relaxed) {
                Ok(_) => {
                    return Ok(Self {
                        pool: pool.clone(),
                        mbytes,
                    })
                }
                Err(now) => avail = now,
            }
        }
    }
}

impl PoolReservation {
    /// The pool's queue for freeing memory out of the way.
    pub(crate) fn reclaim_queue(&self) -> &OwnedQueue {
        &self.pool.reclaim
    }
}

impl Drop for PoolReservation {
    #[inline]
    fn drop(&mut self) {
        self.pool.avail_mbytes.fetch_add(self.mbytes, Relaxed);
    }
}

struct Mbochs;

#[vtable]
impl mdev::Driver for Mbochs {
    type TypeData = TypeInfo;
    // Shared with the devices' reservations, which may outlive the registration's borrow.
    type Data = Arc<Pool>;
    type Device = device::MbochsVfio;

    const NAME: &'static CStr = MBOCHS_NAME;
    const TYPES: &'static [mdev::Type<TypeInfo>] = &[
        mdev::Type {
            sysfs_name: c"small",
            pretty_name: c"mbochs-small",
            data: TypeInfo::new(4, 800, 600),
        },
        mdev::Type {
            sysfs_name: c"medium",
            pretty_name: c"mbochs-medium",
            data: TypeInfo::new(16, 1920, 1440),
        },
        mdev::Type {
            sysfs_name: c"large",
            pretty_name: c"mbochs-large",
            data: TypeInfo::new(64, 0, 0),
        },
    ];
    const ATTRIBUTES: &'static [&'static CStr] = &[c"memory"];

    fn probe(
        pool: &Arc<Pool>,
        mdev: &mdev::Device,
        ty: &'static mdev::Type<TypeInfo>,
    ) -> Result<impl PinInit<Self::Device, Error>> {
        device::MbochsDevice::new(pool, mdev, ty)
    }

    #[inline]
    fn description(
        _pool: &Arc<Pool>,
        ty: &mdev::Type<TypeInfo>,
        buf: &mut ShowBuffer<'_>,
    ) -> Result {
        use core::fmt::Write;
        writeln!(buf, "virtual display, {} MB video memory", ty.data.mbytes).map_err(|_| EINVAL)
    }

    #[inline]
    fn available_instances(pool: &Arc<Pool>, ty: &mdev::Type<TypeInfo>) -> u32 {
        pool.available().checked_div(ty.data.mbytes).unwrap_or(0)
    }

    #[inline]
    fn show_attribute(
        dev: &kernel_ext::vfio::Device<Self::Device>,
        _index: usize,
        buf: &mut ShowBuffer<'_>,
    ) -> Result {
        use core::fmt::Write;
        // `memory` is the only attribute.
        writeln!(buf, "{} MB", dev.type_info().mbytes).map_err(|_| EINVAL)
    }
}

#[pin_data]
struct MbochsModule {
    #[pin]
    _registration: mdev::Registration<Mbochs>,
}

impl kernel::InPlaceModule for MbochsModule {
    #[inline]
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let mem = module_parameters::mem.value();
        let mbytes = if mem != 0 {
            mem
        } else {
            module_parameters::count.value()
        };
        let pool = OwnedQueue::new(c"mbochs-reclaim").and_then(|reclaim| {
            Ok(Arc::new(
                Pool {
                    avail_mbytes: Atomic::new(mbytes),
                    reclaim,
                },
                GFP_KERNEL,
            )?)
        });
        // With `available_instances`, the mdev core does not count instances itself.
        try_pin_init!(Self {
            _registration <- mdev::Registration::new(module, 0, pool),
        })
    }
}
