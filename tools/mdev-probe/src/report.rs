// SPDX-License-Identifier: GPL-2.0

//! The report: what a device is, as JSON (schema `mdev-probe/1`, see
//! Documentation/mdev-rs/management.rst) and as a table.

use crate::stream::Header;
use crate::sysfs::{Mdev, TypeInfo};
use crate::uapi::{self, vb};
use crate::vfio::Device;
use serde::{Deserialize, Serialize};

/// The report's schema, `mdev-probe/MAJOR.MINOR`. A new minor only adds
/// fields (a reader of an older minor ignores them; this tool reads a
/// report of an older minor, whose missing fields are null); anything else
/// (a field removed, renamed or given another meaning) is a new major,
/// which `compat` refuses. History: `mdev-probe/1` (read as 1.0), 1.1
/// (`migration.state_after`; the stream is read only with `--stream`).
pub const SCHEMA: &str = "mdev-probe/1.1";
pub const SCHEMA_MAJOR: u32 = 1;

/// The (major, minor) of a `schema` string: `mdev-probe/1` is 1.0.
pub fn schema_version(schema: &str) -> Option<(u32, u32)> {
    let v = schema.strip_prefix("mdev-probe/")?;
    let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
    let num = |s: &str| {
        if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    Some((num(major)?, num(minor)?))
}

/// Whether this tool reads a report of `schema`: `Err` says why not.
pub fn schema_readable(schema: &str) -> Result<(u32, u32), String> {
    match schema_version(schema) {
        None => Err(format!(
            "schema '{schema}' is not an mdev-probe schema (mdev-probe/MAJOR.MINOR)"
        )),
        Some((SCHEMA_MAJOR, minor)) => Ok((SCHEMA_MAJOR, minor)),
        Some((major, minor)) => Err(format!(
            "schema mdev-probe/{major}.{minor}: this tool ({}) reads mdev-probe/{SCHEMA_MAJOR}.x reports only (another major changes what fields mean): use an mdev-probe that reads {major}.x, or probe again with this one",
            env!("CARGO_PKG_VERSION")
        )),
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Report {
    pub schema: String,
    pub tool_version: String,
    /// "device": an existing mdev; "type": a transient one made to probe a type.
    pub source: String,
    /// The probed mdev (for "type": the transient one, now removed).
    pub uuid: String,
    pub sysfs_path: String,
    pub parent: String,
    pub driver: Option<String>,
    #[serde(rename = "type")]
    pub type_info: TypeInfo,
    pub vfio: VfioInfo,
    pub regions: Vec<Region>,
    pub display: Display,
    pub edid: Option<Edid>,
    pub plane: Planes,
    pub migration: Migration,
    pub reset: Reset,
    pub qemu: Qemu,
    pub libvirt: Libvirt,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct VfioInfo {
    pub opened_through: String,
    pub flags: u32,
    pub flags_decoded: Vec<String>,
    /// From VFIO_DEVICE_GET_INFO's flags: "vfio-pci", ...
    pub device_api: String,
    /// Whether it matches the type's sysfs `device_api`.
    pub device_api_matches_sysfs: bool,
    pub num_regions: u32,
    pub num_irqs: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Cap {
    pub id: u16,
    pub version: u16,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub region_type: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub region_subtype: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Region {
    pub index: u32,
    pub name: String,
    pub size: u64,
    pub offset: u64,
    pub flags: u32,
    pub flags_decoded: Vec<String>,
    pub caps: Vec<Cap>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Display {
    /// "none", "region" or "dmabuf".
    pub kind: String,
    /// Result of QUERY_GFX_PLANE(PROBE|REGION): "ok" or the errno.
    pub probe_region: String,
    /// Result of QUERY_GFX_PLANE(PROBE|DMABUF).
    pub probe_dmabuf: String,
    /// A dma-buf display needs an OpenGL display in QEMU.
    pub needs_gl: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Edid {
    pub region_index: u32,
    pub edid_offset: u32,
    pub edid_max_size: u32,
    pub edid_size: u32,
    /// 0: no limit.
    pub max_xres: u32,
    pub max_yres: u32,
    pub link_state: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Plane {
    /// "ok" or the errno of the query.
    pub query: String,
    /// Whether a mode is set (width and height not 0).
    pub enabled: bool,
    pub drm_format: String,
    pub drm_format_mod: u64,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub size: u32,
    pub x_pos: u32,
    pub y_pos: u32,
    /// region_index (region display) or dmabuf_id (dma-buf display).
    pub id: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Planes {
    pub primary: Option<Plane>,
    pub cursor: Option<Plane>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Migration {
    pub supported: bool,
    /// VFIO_DEVICE_FEATURE(PROBE|GET, MIGRATION): "ok" or the errno.
    pub probe: String,
    pub flags: u64,
    pub flags_decoded: Vec<String>,
    /// The state when the probe began (`MIG_DEVICE_STATE`).
    pub state: Option<String>,
    /// The state when the probe ended, the device still open (1.1; null
    /// in 1.0 reports). Without `--stream` nothing changes it.
    #[serde(default)]
    pub state_after: Option<String>,
    pub stop_copy_size: StopCopySize,
    /// VFIO_DEVICE_FEATURE(PROBE|SET, DMA_LOGGING_START): "ok" or the
    /// errno. With it QEMU's enable-migration=auto accepts the device
    /// without IOMMU dirty tracking.
    pub dma_logging: Option<String>,
    pub stream: Option<Stream>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StopCopySize {
    /// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE in `state`: bytes, or null and
    /// `error`.
    pub bytes: Option<u64>,
    pub state: Option<String>,
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Stream {
    /// How it was obtained ("stop-copy of this device"), or "not read"
    /// (`error` says why: no `--stream`, or the device is not running).
    pub obtained: String,
    pub error: Option<String>,
    /// Length of the whole stop-copy stream read.
    pub length: Option<u64>,
    pub header: Option<Header>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Reset {
    /// VFIO_DEVICE_FLAGS_RESET in GET_INFO.
    pub flag: bool,
    /// VFIO_DEVICE_RESET: "ok", the errno, or "not tried" (an existing
    /// device is not reset).
    pub ioctl: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Qemu {
    pub device: String,
    /// A display backend the device needs, if any.
    pub display: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Libvirt {
    pub hostdev: String,
    pub graphics: Option<String>,
    pub notes: Vec<String>,
}

fn decode(flags: u64, names: &[(u64, &str)]) -> Vec<String> {
    let mut v: Vec<String> = names
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let known: u64 = names.iter().map(|(b, _)| b).sum();
    if flags & !known != 0 {
        v.push(format!("{:#x}", flags & !known));
    }
    v
}

fn errstr(r: &std::io::Result<impl Sized>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => uapi::errno_name(e),
    }
}

fn fourcc(f: u32) -> String {
    if f == 0 {
        return "0".into();
    }
    let b = f.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        String::from_utf8_lossy(&b).trim_end().to_string()
    } else {
        format!("{f:#x}")
    }
}

fn region_name(i: u32) -> String {
    match i {
        0..=5 => format!("BAR{i}"),
        6 => "ROM".into(),
        7 => "config".into(),
        8 => "VGA".into(),
        _ => format!("device-specific {i}"),
    }
}

fn caps_of(info: &vb::vfio_region_info, buf: &[u8]) -> Vec<Cap> {
    let mut caps = Vec::new();
    if info.flags & vb::VFIO_REGION_INFO_FLAG_CAPS == 0 {
        return caps;
    }
    let mut off = info.cap_offset as usize;
    let mut guard = 0;
    while off != 0 && off + 8 <= buf.len() && guard < 32 {
        let id = uapi::u16_at(buf, off).unwrap_or(0);
        let version = uapi::u16_at(buf, off + 2).unwrap_or(0);
        let next = uapi::u32_at(buf, off + 4).unwrap_or(0) as usize;
        let mut cap = Cap {
            id,
            version,
            name: match id as u32 {
                vb::VFIO_REGION_INFO_CAP_SPARSE_MMAP => "sparse-mmap".into(),
                vb::VFIO_REGION_INFO_CAP_TYPE => "type".into(),
                vb::VFIO_REGION_INFO_CAP_MSIX_MAPPABLE => "msix-mappable".into(),
                _ => format!("cap {id}"),
            },
            region_type: None,
            region_subtype: None,
        };
        if id as u32 == vb::VFIO_REGION_INFO_CAP_TYPE {
            cap.region_type = uapi::u32_at(buf, off + 8);
            cap.region_subtype = uapi::u32_at(buf, off + 12);
            if cap.region_type == Some(vb::VFIO_REGION_TYPE_GFX)
                && cap.region_subtype == Some(vb::VFIO_REGION_SUBTYPE_GFX_EDID)
            {
                cap.name = "type gfx/edid".into();
            }
        }
        caps.push(cap);
        off = next;
        guard += 1;
    }
    caps
}

fn plane(dev: &Device, kind_flag: u32, ty: u32) -> Plane {
    let r = dev.query_plane(kind_flag, ty);
    let q = errstr(&r);
    let p = r.unwrap_or_else(|_| uapi::plane_info(0, ty));
    Plane {
        query: q,
        enabled: p.width != 0 && p.height != 0,
        drm_format: fourcc(p.drm_format),
        drm_format_mod: p.drm_format_mod,
        width: p.width,
        height: p.height,
        stride: p.stride,
        size: p.size,
        x_pos: p.x_pos,
        y_pos: p.y_pos,
        id: uapi::plane_id(&p),
    }
}

/// Probes an open device. `transient`: the device is ours to change (a
/// type probe): a reset is tried too.
pub fn probe(
    m: &Mdev,
    dev: &Device,
    source: &str,
    transient: bool,
    stream: Option<u64>,
) -> Result<Report, crate::error::Fail> {
    let ti = crate::sysfs::type_info(&m.type_dir);
    let info = dev.info().map_err(|e| {
        crate::error::Fail::io(crate::error::Kind::Other, "VFIO_DEVICE_GET_INFO".into(), &e)
    })?;
    let api = if info.flags & vb::VFIO_DEVICE_FLAGS_PCI != 0 {
        "vfio-pci"
    } else if info.flags & vb::VFIO_DEVICE_FLAGS_PLATFORM != 0 {
        "vfio-platform"
    } else if info.flags & vb::VFIO_DEVICE_FLAGS_AMBA != 0 {
        "vfio-amba"
    } else if info.flags & vb::VFIO_DEVICE_FLAGS_CCW != 0 {
        "vfio-ccw"
    } else if info.flags & vb::VFIO_DEVICE_FLAGS_AP != 0 {
        "vfio-ap"
    } else {
        "unknown"
    };
    let dev_flags = decode(
        info.flags as u64,
        &[
            (vb::VFIO_DEVICE_FLAGS_RESET as u64, "reset"),
            (vb::VFIO_DEVICE_FLAGS_PCI as u64, "pci"),
            (vb::VFIO_DEVICE_FLAGS_PLATFORM as u64, "platform"),
            (vb::VFIO_DEVICE_FLAGS_AMBA as u64, "amba"),
            (vb::VFIO_DEVICE_FLAGS_CCW as u64, "ccw"),
            (vb::VFIO_DEVICE_FLAGS_AP as u64, "ap"),
            (vb::VFIO_DEVICE_FLAGS_FSL_MC as u64, "fsl-mc"),
            (vb::VFIO_DEVICE_FLAGS_CAPS as u64, "caps"),
            (vb::VFIO_DEVICE_FLAGS_CDX as u64, "cdx"),
        ],
    );

    // Display: which of the two probes the device accepts.
    let pr = dev.query_plane(
        vb::VFIO_GFX_PLANE_TYPE_PROBE | vb::VFIO_GFX_PLANE_TYPE_REGION,
        0,
    );
    let pd = dev.query_plane(
        vb::VFIO_GFX_PLANE_TYPE_PROBE | vb::VFIO_GFX_PLANE_TYPE_DMABUF,
        0,
    );
    let kind = if pd.is_ok() {
        "dmabuf"
    } else if pr.is_ok() {
        "region"
    } else {
        "none"
    };
    let display = Display {
        kind: kind.into(),
        probe_region: errstr(&pr),
        probe_dmabuf: errstr(&pd),
        needs_gl: kind == "dmabuf",
    };

    // Regions (the display region of a region display may lie past
    // num_regions: list it too).
    let mut regions = Vec::new();
    let mut edid = None;
    let mut idx: Vec<u32> = (0..info.num_regions).collect();
    let primary = match kind {
        "region" => Some(plane(
            dev,
            vb::VFIO_GFX_PLANE_TYPE_REGION,
            uapi::DRM_PLANE_TYPE_PRIMARY,
        )),
        "dmabuf" => Some(plane(
            dev,
            vb::VFIO_GFX_PLANE_TYPE_DMABUF,
            uapi::DRM_PLANE_TYPE_PRIMARY,
        )),
        _ => None,
    };
    let cursor = match kind {
        "dmabuf" => Some(plane(
            dev,
            vb::VFIO_GFX_PLANE_TYPE_DMABUF,
            uapi::DRM_PLANE_TYPE_CURSOR,
        )),
        _ => None,
    };
    if let Some(p) = &primary {
        if kind == "region" && p.query == "ok" && p.id >= info.num_regions {
            idx.push(p.id);
        }
    }
    for i in idx {
        let Ok((ri, buf)) = dev.region_info(i) else {
            continue;
        };
        let caps = caps_of(&ri, &buf);
        if caps.iter().any(|c| {
            c.region_type == Some(vb::VFIO_REGION_TYPE_GFX)
                && c.region_subtype == Some(vb::VFIO_REGION_SUBTYPE_GFX_EDID)
        }) {
            let rd = |field: u64| dev.read_u32(ri.offset + field).unwrap_or(0);
            edid = Some(Edid {
                region_index: i,
                edid_offset: rd(0),
                edid_max_size: rd(4),
                edid_size: rd(8),
                max_xres: rd(12),
                max_yres: rd(16),
                link_state: rd(20),
            });
        }
        regions.push(Region {
            index: i,
            name: region_name(i),
            size: ri.size,
            offset: ri.offset,
            flags: ri.flags,
            flags_decoded: decode(
                ri.flags as u64,
                &[
                    (vb::VFIO_REGION_INFO_FLAG_READ as u64, "read"),
                    (vb::VFIO_REGION_INFO_FLAG_WRITE as u64, "write"),
                    (vb::VFIO_REGION_INFO_FLAG_MMAP as u64, "mmap"),
                    (vb::VFIO_REGION_INFO_FLAG_CAPS as u64, "caps"),
                ],
            ),
            caps,
        });
    }

    let migration = probe_migration(dev, stream);

    let reset = Reset {
        flag: info.flags & vb::VFIO_DEVICE_FLAGS_RESET != 0,
        ioctl: if transient {
            errstr(&dev.reset())
        } else {
            "not tried".into()
        },
    };

    let (qemu, libvirt) = integration(&m.uuid, source, &display, edid.as_ref(), &migration);
    Ok(Report {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        source: source.into(),
        uuid: m.uuid.clone(),
        sysfs_path: m.path.display().to_string(),
        parent: m.parent.clone(),
        driver: m.driver.clone(),
        vfio: VfioInfo {
            opened_through: dev.how.clone(),
            flags: info.flags,
            flags_decoded: dev_flags,
            device_api: api.into(),
            device_api_matches_sysfs: ti.device_api.as_deref() == Some(api),
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
        },
        type_info: ti,
        regions,
        display,
        edid,
        plane: Planes { primary, cursor },
        migration,
        reset,
        qemu,
        libvirt,
    })
}

/// `stream`: read the stop-copy stream, at most that many bytes (the
/// device goes `RUNNING -> STOP -> STOP_COPY` and back); `None`: change
/// nothing (only `GET`s and `PROBE`s).
fn probe_migration(dev: &Device, stream: Option<u64>) -> Migration {
    let mut m = probe_migration_state(dev, stream);
    if m.supported {
        m.state_after = dev.mig_state().ok().map(uapi::state_name);
    }
    m
}

fn probe_migration_state(dev: &Device, stream: Option<u64>) -> Migration {
    let probe = dev.feature(
        vb::VFIO_DEVICE_FEATURE_PROBE
            | vb::VFIO_DEVICE_FEATURE_GET
            | vb::VFIO_DEVICE_FEATURE_MIGRATION,
        &[0u8; 8],
    );
    let mut m = Migration {
        supported: probe.is_ok(),
        probe: errstr(&probe),
        flags: 0,
        flags_decoded: vec![],
        state: None,
        state_after: None,
        stop_copy_size: StopCopySize {
            bytes: None,
            state: None,
            error: Some("no migration".into()),
        },
        dma_logging: None,
        stream: None,
    };
    if probe.is_err() {
        return m;
    }
    match dev.feature(
        vb::VFIO_DEVICE_FEATURE_GET | vb::VFIO_DEVICE_FEATURE_MIGRATION,
        &[0u8; 8],
    ) {
        Ok(b) => {
            m.flags = uapi::u64_at(&b, 0).unwrap_or(0);
            m.flags_decoded = decode(
                m.flags,
                &[
                    (vb::VFIO_MIGRATION_STOP_COPY as u64, "stop-copy"),
                    (vb::VFIO_MIGRATION_P2P as u64, "p2p"),
                    (vb::VFIO_MIGRATION_PRE_COPY as u64, "pre-copy"),
                ],
            );
        }
        Err(e) => m.probe = format!("probe ok, GET failed: {}", uapi::errno_name(&e)),
    }
    m.dma_logging = Some(errstr(&dev.feature(
        vb::VFIO_DEVICE_FEATURE_PROBE
            | vb::VFIO_DEVICE_FEATURE_SET
            | vb::VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        &[0u8; 24],
    )));
    let state = dev.mig_state().ok();
    m.state = state.map(uapi::state_name);
    let size = dev.feature(
        vb::VFIO_DEVICE_FEATURE_GET | vb::VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
        &[0u8; 8],
    );
    m.stop_copy_size = match size {
        Ok(b) => StopCopySize {
            bytes: uapi::u64_at(&b, 0),
            state: m.state.clone(),
            error: None,
        },
        Err(e) => StopCopySize {
            bytes: None,
            state: m.state.clone(),
            error: Some(format!(
                "{} in state {}",
                uapi::errno_name(&e),
                m.state.clone().unwrap_or_default()
            )),
        },
    };
    if m.flags & vb::VFIO_MIGRATION_STOP_COPY as u64 == 0 {
        return m;
    }
    let Some(stream_limit) = stream else {
        m.stream = Some(Stream {
            obtained: "not read".into(),
            error: Some(
                "not asked for: --stream reads it (RUNNING -> STOP -> STOP_COPY -> RUNNING)".into(),
            ),
            length: None,
            header: None,
        });
        return m;
    };
    if state != Some(uapi::STATE_RUNNING) {
        m.stream = Some(Stream {
            obtained: "not read".into(),
            error: Some(format!(
                "device in state {}, not running",
                m.state.clone().unwrap_or_default()
            )),
            length: None,
            header: None,
        });
        return m;
    }
    m.stream = Some(match dev.save_stream(256, stream_limit) {
        Ok((head, len)) => {
            let h = crate::stream::parse_header(&head);
            Stream {
                obtained: "stop-copy of this device (RUNNING -> STOP -> STOP_COPY, read to EOF, back to RUNNING)".into(),
                error: h.as_ref().err().cloned(),
                length: Some(len),
                header: h.ok(),
            }
        }
        Err(e) => Stream {
            obtained: "stop-copy failed".into(),
            error: Some(e.to_string()),
            length: None,
            header: None,
        },
    });
    m
}

/// QEMU's dma-buf display that this project proved on a machine without a
/// GPU (QEMU 10.0.2, Mesa 25.0.7, vgem's render node; Documentation/mdev-rs/
/// mbochs.rst): QEMU passes the dma-buf to a D-Bus display client.
pub const DMABUF_DISPLAY: &str = "-display dbus,p2p=on,gl=on";

/// The migration note: what QEMU does with the device, from what the
/// report says (`dma_logging` decides the claim about enable-migration=auto).
fn migration_note(mig: &Migration) -> String {
    if !mig.supported {
        return format!(
            "migration: none (VFIO_DEVICE_FEATURE_MIGRATION: {}): QEMU adds a migration blocker",
            mig.probe
        );
    }
    match mig.dma_logging.as_deref() {
        Some("ok") => format!(
            "migration: {} (QEMU >= 8.1); the device does DMA logging (DMA_LOGGING_START probe: ok), so enable-migration=auto accepts it without IOMMU dirty tracking",
            mig.flags_decoded.join(",")
        ),
        other => format!(
            "migration: {} (QEMU >= 8.1); DMA logging: {}: enable-migration=auto accepts the device only if its IOMMU (container or iommufd) does dirty tracking, enable-migration=on accepts it anyway",
            mig.flags_decoded.join(","),
            other.unwrap_or("not probed")
        ),
    }
}

fn integration(
    uuid: &str,
    source: &str,
    d: &Display,
    edid: Option<&Edid>,
    mig: &Migration,
) -> (Qemu, Libvirt) {
    let uuid = if source == "type" { "$UUID" } else { uuid };
    let on = d.kind != "none";
    let mut qdev = format!("-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/{uuid}");
    if on {
        qdev.push_str(",display=on");
    }
    let mut qnotes = Vec::new();
    let mut lnotes = Vec::new();
    let qdisplay = match d.kind.as_str() {
        "dmabuf" => {
            qnotes.push("dma-buf display: QEMU needs an OpenGL display; without one it refuses to start (\"vfio-display-dmabuf: opengl not available\")".into());
            qnotes.push(format!("{DMABUF_DISPLAY} (shown) with a D-Bus display client attached through QMP (add_client protocol=@dbus-display, e.g. tools/testing/vm/dbus_display_listener.py) works without a GPU; it needs a DRM render node (,rendernode=/dev/dri/renderDN), vgem's (modprobe vgem) on a host without a GPU"));
            qnotes.push("on a desktop with a GPU: -display gtk,gl=on (or -display dbus,gl=on and a client on the session bus)".into());
            qnotes.push("-display egl-headless needs a GPU's render node: with a software one (vgem, Mesa's llvmpipe) QEMU crashes at the guest's first frame".into());
            Some(DMABUF_DISPLAY.to_string())
        }
        "region" => {
            qnotes.push("region display: any QEMU display works (vnc, gtk, none + screendump); no OpenGL needed".into());
            None
        }
        _ => {
            qnotes.push("no display: leave display=off (the default)".into());
            None
        }
    };
    if let Some(e) = edid {
        let lim = if e.max_xres == 0 || e.max_yres == 0 {
            "no maximum".to_string()
        } else {
            format!("at most {}x{}", e.max_xres, e.max_yres)
        };
        qnotes.push(format!(
            "EDID: QEMU's xres=,yres= options of vfio-pci set the guest's preferred mode ({lim})"
        ));
        lnotes.push(format!("EDID: the mode QEMU advertises is {lim}"));
    }
    qnotes.push(migration_note(mig));
    let hostdev = format!(
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci' display='{}'>\n  <source>\n    <address uuid='{uuid}'/>\n  </source>\n</hostdev>",
        if on { "on" } else { "off" }
    );
    let graphics = match d.kind.as_str() {
        "dmabuf" => {
            lnotes.push("dma-buf display: needs a GL display: dbus with <gl enable='yes'/> (shown: QEMU's -display dbus,gl=on on a bus libvirt starts; a render node must exist, vgem's on a host without a GPU), or on a host with a GPU spice or egl-headless with <gl enable='yes'/>".into());
            Some("<graphics type='dbus'>\n  <gl enable='yes'/>\n</graphics>".to_string())
        }
        "region" => {
            lnotes.push("region display: any <graphics> (vnc or spice, no gl)".into());
            Some("<graphics type='vnc' autoport='yes'/>".to_string())
        }
        _ => None,
    };
    (
        Qemu {
            device: qdev,
            display: qdisplay,
            notes: qnotes,
        },
        Libvirt {
            hostdev,
            graphics,
            notes: lnotes,
        },
    )
}

/// The readable form.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(
        s,
        "mdev {} ({})",
        r.uuid,
        if r.source == "type" {
            "transient, removed"
        } else {
            "existing"
        }
    );
    let _ = writeln!(s, "  {:<16} {}", "sysfs", r.sysfs_path);
    let _ = writeln!(s, "  {:<16} {}", "parent", r.parent);
    let _ = writeln!(s, "  {:<16} {}", "driver", opt(&r.driver));
    let _ = writeln!(
        s,
        "  {:<16} {} ({}; {})",
        "type",
        r.type_info.id,
        opt(&r.type_info.name),
        opt(&r.type_info.description)
    );
    let _ = writeln!(
        s,
        "  {:<16} sysfs {}, GET_INFO {} (flags {}: {})",
        "device API",
        opt(&r.type_info.device_api),
        r.vfio.device_api,
        r.vfio.flags,
        r.vfio.flags_decoded.join(",")
    );
    let _ = writeln!(s, "  {:<16} {}", "opened through", r.vfio.opened_through);
    let _ = writeln!(
        s,
        "  regions ({}, irqs {}):",
        r.vfio.num_regions, r.vfio.num_irqs
    );
    let _ = writeln!(
        s,
        "    {:>5}  {:<20} {:>12} {:>12}  {:<22} caps",
        "index", "name", "size", "offset", "flags"
    );
    for g in &r.regions {
        let caps: Vec<String> = g.caps.iter().map(|c| c.name.clone()).collect();
        let _ = writeln!(
            s,
            "    {:>5}  {:<20} {:>12} {:>#12x}  {:<22} {}",
            g.index,
            g.name,
            g.size,
            g.offset,
            g.flags_decoded.join(","),
            if caps.is_empty() {
                "-".into()
            } else {
                caps.join(",")
            }
        );
    }
    let _ = writeln!(
        s,
        "  {:<16} {} (probe region: {}, probe dmabuf: {}){}",
        "display",
        r.display.kind,
        r.display.probe_region,
        r.display.probe_dmabuf,
        if r.display.needs_gl {
            "; needs an OpenGL display"
        } else {
            ""
        }
    );
    match &r.edid {
        Some(e) => {
            let _ = writeln!(
                s,
                "  {:<16} region {}, max {}x{} (0: no limit), blob {} of {} bytes, link {}",
                "EDID",
                e.region_index,
                e.max_xres,
                e.max_yres,
                e.edid_size,
                e.edid_max_size,
                e.link_state
            );
        }
        None => {
            let _ = writeln!(s, "  {:<16} none", "EDID");
        }
    }
    for (name, p) in [
        ("primary plane", &r.plane.primary),
        ("cursor plane", &r.plane.cursor),
    ] {
        if let Some(p) = p {
            if p.enabled {
                let _ = writeln!(
                    s,
                    "  {:<16} {}x{} {} stride {} size {} id {}",
                    name, p.width, p.height, p.drm_format, p.stride, p.size, p.id
                );
            } else {
                let _ = writeln!(s, "  {:<16} no mode set (query: {})", name, p.query);
            }
        }
    }
    let m = &r.migration;
    if m.supported {
        let _ = writeln!(
            s,
            "  {:<16} {} (flags {:#x}), state {} (after the probe: {}), DMA logging {}",
            "migration",
            m.flags_decoded.join(","),
            m.flags,
            opt(&m.state),
            opt(&m.state_after),
            opt(&m.dma_logging)
        );
        match m.stop_copy_size.bytes {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "  {:<16} {} bytes (MIG_DATA_SIZE in {})",
                    "stop-copy size",
                    b,
                    opt(&m.stop_copy_size.state)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "  {:<16} unknown: {}",
                    "stop-copy size",
                    opt(&m.stop_copy_size.error)
                );
            }
        }
        if let Some(st) = &m.stream {
            match &st.header {
                Some(h) => {
                    let _ = writeln!(
                        s,
                        "  {:<16} {} {}.{}, {}/{}, memory {} bytes, page {}, {} bytes in all",
                        "stream",
                        h.magic,
                        h.major,
                        h.minor,
                        opt(&h.driver),
                        opt(&h.type_name),
                        h.mem_size.map(|v| v.to_string()).unwrap_or("-".into()),
                        h.page_size.map(|v| v.to_string()).unwrap_or("-".into()),
                        st.length.map(|v| v.to_string()).unwrap_or("-".into())
                    );
                }
                None => {
                    let _ = writeln!(s, "  {:<16} {}: {}", "stream", st.obtained, opt(&st.error));
                }
            }
        }
    } else {
        let _ = writeln!(s, "  {:<16} none (probe: {})", "migration", m.probe);
    }
    let _ = writeln!(
        s,
        "  {:<16} flag {}, ioctl {}",
        "reset", r.reset.flag, r.reset.ioctl
    );
    let _ = writeln!(s, "QEMU:\n  {}", r.qemu.device);
    if let Some(d) = &r.qemu.display {
        let _ = writeln!(s, "  {d}");
    }
    for n in &r.qemu.notes {
        let _ = writeln!(s, "  # {n}");
    }
    let _ = writeln!(s, "libvirt:");
    for l in r.libvirt.hostdev.lines() {
        let _ = writeln!(s, "  {l}");
    }
    if let Some(g) = &r.libvirt.graphics {
        for l in g.lines() {
            let _ = writeln!(s, "  {l}");
        }
    }
    for n in &r.libvirt.notes {
        let _ = writeln!(s, "  <!-- {n} -->");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_versions() {
        assert_eq!(schema_version(SCHEMA), Some((SCHEMA_MAJOR, 1)));
        assert_eq!(schema_version("mdev-probe/1"), Some((1, 0)));
        assert_eq!(schema_version("mdev-probe/1.12"), Some((1, 12)));
        assert_eq!(schema_version("mdev-probe/1.x"), None);
        assert_eq!(schema_version("mdev-probe/"), None);
        assert!(schema_readable("mdev-probe/1.0").is_ok());
        assert!(schema_readable("mdev-probe/2.0").is_err());
    }

    fn display(kind: &str) -> Display {
        Display {
            kind: kind.into(),
            probe_region: "x".into(),
            probe_dmabuf: "x".into(),
            needs_gl: kind == "dmabuf",
        }
    }

    fn mig(supported: bool, dma_logging: Option<&str>) -> Migration {
        Migration {
            supported,
            probe: if supported { "ok" } else { "ENOTTY" }.into(),
            flags: 7,
            flags_decoded: vec!["stop-copy".into(), "p2p".into(), "pre-copy".into()],
            state: Some("running".into()),
            state_after: Some("running".into()),
            stop_copy_size: StopCopySize {
                bytes: None,
                state: None,
                error: None,
            },
            dma_logging: dma_logging.map(Into::into),
            stream: None,
        }
    }

    #[test]
    fn dmabuf_advice_is_the_display_that_works() {
        let (q, l) = integration(
            "u",
            "device",
            &display("dmabuf"),
            None,
            &mig(true, Some("ok")),
        );
        assert_eq!(q.display.as_deref(), Some("-display dbus,p2p=on,gl=on"));
        let notes = q.notes.join("\n");
        assert!(notes.contains("dbus_display_listener.py"), "{notes}");
        assert!(notes.contains("-display gtk,gl=on"), "{notes}");
        assert!(
            notes.contains("egl-headless needs a GPU's render node"),
            "egl-headless's need said plainly: {notes}"
        );
        // egl-headless is never the advice, only said what it needs.
        for n in &q.notes {
            assert!(!n.contains("-display egl-headless,"), "{n}");
        }
        let g = l.graphics.expect("graphics");
        assert!(g.starts_with("<graphics type='dbus'>") && g.contains("<gl enable='yes'/>"));
        let (q, l) = integration("u", "device", &display("region"), None, &mig(true, None));
        assert_eq!(q.display, None);
        assert!(!l.graphics.expect("graphics").contains("<gl"));
        assert!(q.notes[0].contains("any QEMU display works"));
    }

    #[test]
    fn notes_follow_the_report() {
        let note = |m: &Migration| {
            let (q, _) = integration("u", "device", &display("region"), None, m);
            q.notes.last().cloned().expect("a migration note")
        };
        let ok = note(&mig(true, Some("ok")));
        assert!(ok.contains("enable-migration=auto accepts it"), "{ok}");
        assert!(ok.contains("DMA_LOGGING_START probe: ok"), "{ok}");
        for d in [Some("ENOTTY"), None] {
            let n = note(&mig(true, d));
            assert!(
                !n.contains("auto accepts it without"),
                "claimed without DMA logging: {n}"
            );
            assert!(n.contains(d.unwrap_or("not probed")), "{n}");
            assert!(n.contains("only if its IOMMU"), "{n}");
        }
        let n = note(&mig(false, None));
        assert!(
            n.contains("none (VFIO_DEVICE_FEATURE_MIGRATION: ENOTTY)"),
            "{n}"
        );
        assert!(!n.contains("enable-migration"), "{n}");
        // EDID notes only with an EDID region, with its limits.
        let e = Edid {
            region_index: 9,
            edid_offset: 0x800,
            edid_max_size: 0x400,
            edid_size: 0,
            max_xres: 800,
            max_yres: 600,
            link_state: 1,
        };
        let (q, l) = integration(
            "u",
            "device",
            &display("dmabuf"),
            Some(&e),
            &mig(true, None),
        );
        assert!(q
            .notes
            .iter()
            .any(|n| n.contains("EDID") && n.contains("at most 800x600")));
        assert!(l.notes.iter().any(|n| n.contains("at most 800x600")));
        let (q, _) = integration("u", "device", &display("dmabuf"), None, &mig(true, None));
        assert!(!q.notes.iter().any(|n| n.contains("EDID")));
    }
}
