// SPDX-License-Identifier: GPL-2.0

//! Framebuffer driver for mdpy, the mediated virtual PCI display (Rust).
//!
//! A drop-in for `samples/vfio-mdev/mdpy-fb.c`, the guest side of mdpy:
//! binds to 1b36:000f with subsystem 1af4:1100, reads the mode from the
//! device's vendor capability, checks it (XRGB8888, 100..=10000 pixels each
//! way, and, unlike the C sample, that the frame fits in BAR0), maps BAR0
//! write-combined and registers a 32 bpp truecolor fbdev.
//!
//! Unlike the C sample the module unloads, BAR0 is unmapped exactly once,
//! and unbinding the device while `/dev/fbN` is open is safe: unbinding
//! revokes the framebuffer (its user mappings are zapped, further access
//! gets `ENODEV` or `SIGBUS`), and the rest goes when the last user closes it.

#[path = "../rust/lib.rs"]
pub mod kernel_ext;

/// The device's definition, shared with the host driver mdpy.
#[path = "../mdpy/defs.rs"]
pub mod defs;

mod mode;

use defs::{
    MDPY_FORMAT_OFFSET, MDPY_HEIGHT_OFFSET, MDPY_PCI_DEVICE_ID, MDPY_PCI_SUBDEVICE_ID,
    MDPY_PCI_SUBVENDOR_ID, MDPY_PCI_VENDOR_ID, MDPY_WIDTH_OFFSET,
};
use kernel::{
    device::Core,
    driver,
    io::Io,
    pci,
    prelude::*, //
};
use kernel_ext::{
    fbdev,
    iomem_wc::IoMemWc,
    pci_resources::{is_memory_bar, EnabledMem, RegionRequest},
};

/// Driver (and resource) name, as the C sample's.
const DRIVER_NAME: &CStr = c"mdpy-fb";
/// The framebuffer BAR.
const FB_BAR: u32 = 0;

/// Colour handling of the framebuffer: the 16-entry truecolor pseudo palette.
struct Palette;

#[vtable]
impl fbdev::Driver for Palette {
    fn setcolreg(&self, layout: &fbdev::PixelLayout, _regno: u32, c: fbdev::Color) -> Result<u32> {
        // Scale 16-bit channels to the channel widths, as the C sample does.
        let channel = |v: u32, b: fbdev::Bitfield| -> Result<u32> {
            let shift = 16u32.checked_sub(b.length).ok_or(EINVAL)?;
            (v >> shift).checked_shl(b.offset).ok_or(EINVAL)
        };
        let mut value = channel(c.red, layout.red)?
            | channel(c.green, layout.green)?
            | channel(c.blue, layout.blue)?;
        if layout.transp.length > 0 {
            let mask = 1u32
                .checked_shl(layout.transp.length)
                .map_or(u32::MAX, |m| m - 1);
            value |= mask.checked_shl(layout.transp.offset).ok_or(EINVAL)?;
        }
        Ok(value)
    }
}

/// One bound mdpy device. Fields drop in order: the framebuffer is revoked
/// and unregistered, BAR0 unmapped and its region released (all in `fb`)
/// before the device is disabled. (`fb` is device-managed: it would be
/// revoked at unbind even if it were leaked.)
struct MdpyFb<'bound> {
    fb: fbdev::Registration<Palette>,
    _enabled: EnabledMem<'bound>,
}

kernel::pci_device_table!(
    PCI_TABLE,
    <MdpyFbDriver as pci::Driver>::IdInfo,
    [(
        pci::DeviceId::from_id(MDPY_PCI_VENDOR_ID, MDPY_PCI_DEVICE_ID as u32),
        ()
    )]
);

struct MdpyFbDriver;

impl pci::Driver for MdpyFbDriver {
    type IdInfo = ();
    type Data<'bound> = MdpyFb<'bound>;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        // The id table cannot match subsystem ids: check them here.
        if pdev.subsystem_vendor_id() != MDPY_PCI_SUBVENDOR_ID
            || pdev.subsystem_device_id() != MDPY_PCI_SUBDEVICE_ID
        {
            return Err(ENODEV);
        }
        if !is_memory_bar(pdev, FB_BAR) {
            dev_err!(pdev, "BAR0 is not a memory BAR\n");
            return Err(ENODEV);
        }
        let enabled = EnabledMem::new(pdev)?;
        let region = RegionRequest::new(pdev, FB_BAR, DRIVER_NAME)?;

        let config = pdev.config_space();
        let format = config.try_read32(usize::from(MDPY_FORMAT_OFFSET))?;
        let width = config.try_read32(usize::from(MDPY_WIDTH_OFFSET))?;
        let height = config.try_read32(usize::from(MDPY_HEIGHT_OFFSET))?;
        let bar_len = pdev.resource_len(FB_BAR)?;
        let mode = mode::validate(format, width, height, bar_len).map_err(|e| {
            dev_err!(pdev, "{}\n", e);
            EINVAL
        })?;
        dev_info!(
            pdev,
            "mdpy found: {}x{} framebuffer\n",
            mode.width,
            mode.height
        );

        let memory =
            IoMemWc::new(region).inspect_err(|_| dev_err!(pdev, "ioremap of BAR0 failed\n"))?;
        let fb_mode = fbdev::Xrgb8888Mode {
            width: mode.width,
            height: mode.height,
            line_length: mode.stride(),
        };
        let module = &<MdpyFbModule as kernel::ModuleMetadata>::THIS_MODULE;
        let fb = fbdev::Registration::new(module, DRIVER_NAME, fb_mode, memory, Palette)
            .inspect_err(|e| dev_err!(pdev, "mdpy-fb device register failed: {:?}\n", e))?;
        dev_info!(pdev, "fb{} registered\n", fb.node());

        Ok(MdpyFb {
            fb,
            _enabled: enabled,
        })
    }
}

impl Drop for MdpyFb<'_> {
    fn drop(&mut self) {
        pr_debug!("fb{} unregistered\n", self.fb.node());
    }
}

/// The module: one PCI driver, named like the C sample's.
#[pin_data]
struct MdpyFbModule {
    #[pin]
    _driver: driver::Registration<pci::Adapter<MdpyFbDriver>>,
}

impl kernel::InPlaceModule for MdpyFbModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _driver <- driver::Registration::new(DRIVER_NAME, module),
        })
    }
}

module! {
    type: MdpyFbModule,
    name: "mdpy_fb",
    authors: ["mdev-rs developers"],
    description: "Framebuffer driver for mdpy (mediated virtual pci display device)",
    license: "GPL v2",
}
