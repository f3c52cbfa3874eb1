// SPDX-License-Identifier: GPL-2.0

//! The header of the drivers' migration stream (`MDEVRSMG`, see
//! Documentation/mdev-rs/migration.rst and rust/migration/stream.rs) and
//! the destination's rules for accepting it.
//!
//! The header is what the kernel wrote (the tool reads it from the device's
//! own stop-copy stream), and the rules are the header checks of
//! `Stream::parse` in rust/migration/stream.rs, in its order, each with the
//! errno that the destination's `RESUMING -> STOP` returns. Everything else
//! a destination checks (section contents: mode, configuration space,
//! EDID, pages within memory) follows from driver, type and memory size
//! being equal; the test suite checks each verdict against the kernel's
//! (see `kernel-check` in main.rs and tools/testing/vm/guest-probe.sh).

use crate::report::Report;
use serde::{Deserialize, Serialize};

pub const MAGIC: &str = "MDEVRSMG";
pub const HEADER_LEN: usize = 80;

/// The source majors a destination of major `dst` reads (its own, and for
/// 2.x the 1.x streams it still reads; see `OLDEST_MAJOR` in
/// rust/migration/stream.rs): 1.x reads 1.x, 2.x reads 1.x and 2.x. Of a
/// major this tool does not know, only its own.
pub fn reads_major(dst: u16, src: u16) -> bool {
    match dst {
        2 => src == 1 || src == 2,
        _ => src == dst,
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Header {
    /// The first 8 bytes (printable) or their hex.
    pub magic: String,
    pub major: u16,
    pub minor: u16,
    pub header_len: u32,
    /// The rest is known only for an `MDEVRSMG` stream.
    pub driver: Option<String>,
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    pub mem_size: Option<u64>,
    pub page_size: Option<u32>,
    pub flags: Option<u32>,
}

fn name(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The header of a stream's first bytes.
pub fn parse_header(b: &[u8]) -> Result<Header, String> {
    if b.len() < 16 {
        return Err(format!("stream of {} bytes: no header", b.len()));
    }
    let m = &b[..8];
    let magic = if m.iter().all(|c| c.is_ascii_graphic()) {
        String::from_utf8_lossy(m).into_owned()
    } else {
        m.iter().map(|c| format!("{c:02x}")).collect()
    };
    let mut h = Header {
        magic,
        major: le16(b, 8),
        minor: le16(b, 10),
        header_len: le32(b, 12),
        driver: None,
        type_name: None,
        mem_size: None,
        page_size: None,
        flags: None,
    };
    if h.magic != MAGIC {
        return Ok(h);
    }
    if b.len() < HEADER_LEN {
        return Err(format!(
            "MDEVRSMG stream of {} bytes: header truncated",
            b.len()
        ));
    }
    h.driver = Some(name(&b[16..32]));
    h.type_name = Some(name(&b[32..64]));
    h.mem_size = Some(le64(b, 64));
    h.page_size = Some(le32(b, 72));
    h.flags = Some(le32(b, 76));
    Ok(h)
}

#[derive(Serialize, Debug)]
pub struct Verdict {
    /// "compatible", "incompatible" or "undecided".
    pub verdict: String,
    /// The errno the destination's RESUMING -> STOP would return (the
    /// first rule broken), for "incompatible".
    pub errno: Option<String>,
    /// Every rule broken (or why no verdict), in the kernel's order.
    pub reasons: Vec<String>,
    pub source: String,
    pub destination: String,
}

fn who(r: &Report) -> String {
    format!(
        "{}/{} ({}, {})",
        r.driver.clone().unwrap_or_else(|| r.parent.clone()),
        r.type_info.id,
        r.uuid,
        r.source
    )
}

/// Whether `dst` accepts the stream of `src`.
pub fn compat(src: &Report, dst: &Report) -> Verdict {
    let mut v = Verdict {
        verdict: "undecided".into(),
        errno: None,
        reasons: vec![],
        source: who(src),
        destination: who(dst),
    };
    if !src.migration.supported {
        v.verdict = "incompatible".into();
        v.reasons.push(format!(
            "the source has no migration (probe: {})",
            src.migration.probe
        ));
        return v;
    }
    if !dst.migration.supported {
        v.verdict = "incompatible".into();
        v.reasons.push(format!(
            "the destination has no migration (probe: {})",
            dst.migration.probe
        ));
        return v;
    }
    let hdr = |r: &Report| r.migration.stream.as_ref().and_then(|s| s.header.clone());
    let (Some(s), Some(d)) = (hdr(src), hdr(dst)) else {
        v.reasons
            .push("a report has no stream header (probed without --stream, or the stop-copy stream could not be read: see its migration.stream.error)".into());
        return v;
    };
    if s.magic != MAGIC || d.magic != MAGIC {
        v.reasons.push(format!(
            "stream format {} -> {}: only {MAGIC} streams are known to this tool",
            s.magic, d.magic
        ));
        return v;
    }
    // The destination's rules, in the order Stream::parse applies them.
    let mut errno = None;
    let mut broken = |e: &str, why: String| {
        errno.get_or_insert_with(|| e.to_string());
        v.reasons.push(why);
    };
    if !reads_major(d.major, s.major) {
        let reads = if d.major == 2 {
            "1.x and 2.x"
        } else {
            "its own major"
        };
        broken(
            "EPROTONOSUPPORT",
            format!(
                "format {}.{}, the destination ({}.{}) reads {reads}",
                s.major, s.minor, d.major, d.minor
            ),
        );
    }
    if s.driver != d.driver || s.type_name != d.type_name {
        broken(
            "EXDEV",
            format!(
                "saved from {}/{}, the destination is {}/{}",
                s.driver.clone().unwrap_or_default(),
                s.type_name.clone().unwrap_or_default(),
                d.driver.clone().unwrap_or_default(),
                d.type_name.clone().unwrap_or_default()
            ),
        );
    }
    if s.mem_size != d.mem_size || s.page_size != d.page_size {
        broken(
            "ERANGE",
            format!(
                "memory {} bytes in {}-byte pages, the destination has {} in {}",
                s.mem_size.unwrap_or(0),
                s.page_size.unwrap_or(0),
                d.mem_size.unwrap_or(0),
                d.page_size.unwrap_or(0)
            ),
        );
    }
    if let Some(e) = errno {
        v.verdict = "incompatible".into();
        v.errno = Some(e);
    } else {
        v.verdict = "compatible".into();
        if s.major < d.major {
            v.reasons.push(format!(
                "format {}.{} from an older major: the destination ({}.{}) still reads it",
                s.major, s.minor, d.major, d.minor
            ));
        } else if s.minor > d.minor {
            v.reasons.push(format!(
                "format {}.{} from a newer minor: the destination ({}.{}) skips its optional sections",
                s.major, s.minor, d.major, d.minor
            ));
        }
        v.reasons.push(format!(
            "format {}.{} read by {}.{}, driver {}, type {}, memory {} bytes",
            s.major,
            s.minor,
            d.major,
            d.minor,
            s.driver.unwrap_or_default(),
            s.type_name.unwrap_or_default(),
            s.mem_size.unwrap_or(0)
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 80-byte 1.0 header as rust/migration/stream.rs writes it.
    fn header(major: u16, minor: u16, driver: &str, ty: &str, mem: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC.as_bytes());
        b.extend_from_slice(&major.to_le_bytes());
        b.extend_from_slice(&minor.to_le_bytes());
        b.extend_from_slice(&80u32.to_le_bytes());
        let mut d = [0u8; 16];
        d[..driver.len()].copy_from_slice(driver.as_bytes());
        b.extend_from_slice(&d);
        let mut t = [0u8; 32];
        t[..ty.len()].copy_from_slice(ty.as_bytes());
        b.extend_from_slice(&t);
        b.extend_from_slice(&mem.to_le_bytes());
        b.extend_from_slice(&4096u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    fn report(h: Option<Header>, supported: bool) -> Report {
        let v = serde_json::json!({
            "schema": "mdev-probe/1", "tool_version": "0", "source": "type", "uuid": "u",
            "sysfs_path": "/x", "parent": "p", "driver": "d",
            "type": {"id": "t", "name": null, "description": null, "device_api": "vfio-pci",
                     "available_instances": 1},
            "vfio": {"opened_through": "x", "flags": 2, "flags_decoded": ["pci"],
                     "device_api": "vfio-pci", "device_api_matches_sysfs": true,
                     "num_regions": 9, "num_irqs": 5},
            "regions": [],
            "display": {"kind": "none", "probe_region": "EINVAL", "probe_dmabuf": "EINVAL",
                        "needs_gl": false},
            "edid": null, "plane": {"primary": null, "cursor": null},
            "migration": {"supported": supported, "probe": if supported { "ok" } else { "ENOTTY" },
                          "flags": 7, "flags_decoded": [], "state": "running",
                          "stop_copy_size": {"bytes": null, "state": null, "error": null},
                          "dma_logging": "ok",
                          "stream": {"obtained": "x", "error": null, "length": 100, "header": h}},
            "reset": {"flag": true, "ioctl": "ok"},
            "qemu": {"device": "", "display": null, "notes": []},
            "libvirt": {"hostdev": "", "graphics": null, "notes": []}
        });
        serde_json::from_value(v).expect("a report")
    }

    fn verdict(s: &[u8], d: &[u8]) -> Verdict {
        let r = |b: &[u8]| report(Some(parse_header(b).expect("header")), true);
        compat(&r(s), &r(d))
    }

    #[test]
    fn header_fields() {
        let h = parse_header(&header(1, 0, "mdpy", "mdpy-xga", 4 << 20)).unwrap();
        assert_eq!(h.magic, "MDEVRSMG");
        assert_eq!((h.major, h.minor, h.header_len), (1, 0, 80));
        assert_eq!(h.driver.as_deref(), Some("mdpy"));
        assert_eq!(h.type_name.as_deref(), Some("mdpy-xga"));
        assert_eq!(
            (h.mem_size, h.page_size, h.flags),
            (Some(4 << 20), Some(4096), Some(0))
        );
        assert!(parse_header(&header(1, 0, "mdpy", "mdpy-xga", 1)[..40]).is_err());
    }

    #[test]
    fn rules_in_the_kernels_order() {
        let xga = header(1, 0, "mdpy", "mdpy-xga", 4 << 20);
        let v = verdict(&xga, &xga);
        assert_eq!((v.verdict.as_str(), v.errno), ("compatible", None));
        let v = verdict(&xga, &header(1, 0, "mdpy", "mdpy-hd", 16 << 20));
        assert_eq!(v.errno.as_deref(), Some("EXDEV"));
        assert_eq!(v.reasons.len(), 2, "EXDEV and ERANGE both named");
        let v = verdict(&xga, &header(1, 0, "mbochs", "mdpy-xga", 4 << 20));
        assert_eq!(v.errno.as_deref(), Some("EXDEV"));
        let v = verdict(&xga, &header(1, 0, "mdpy", "mdpy-xga", 8 << 20));
        assert_eq!(v.errno.as_deref(), Some("ERANGE"));
        // 1.x reads only 1.x: a 2.0 source (runs of pages) is refused.
        let v = verdict(&header(2, 0, "mdpy", "mdpy-xga", 4 << 20), &xga);
        assert_eq!(v.errno.as_deref(), Some("EPROTONOSUPPORT"));
        // 2.x reads 2.x and 1.x.
        let xga2 = header(2, 0, "mdpy", "mdpy-xga", 4 << 20);
        let v = verdict(&xga2, &xga2);
        assert_eq!((v.verdict.as_str(), v.errno), ("compatible", None));
        let v = verdict(&xga, &xga2);
        assert_eq!((v.verdict.as_str(), v.errno), ("compatible", None));
        assert!(v.reasons[0].contains("older major"), "{:?}", v.reasons);
        let v = verdict(&header(2, 1, "mdpy", "mdpy-xga", 4 << 20), &xga2);
        assert_eq!(v.verdict, "compatible");
        // Other majors stay refused, in both directions.
        let v = verdict(&header(3, 0, "mdpy", "mdpy-xga", 4 << 20), &xga2);
        assert_eq!(v.errno.as_deref(), Some("EPROTONOSUPPORT"));
        let v = verdict(&header(0, 0, "mdpy", "mdpy-xga", 4 << 20), &xga2);
        assert_eq!(v.errno.as_deref(), Some("EPROTONOSUPPORT"));
        // The version rule comes first, as in the kernel.
        let v = verdict(&header(3, 0, "mdpy", "mdpy-hd", 4 << 20), &xga2);
        assert_eq!(v.errno.as_deref(), Some("EPROTONOSUPPORT"));
        // A newer minor is read by an older destination.
        let v = verdict(&header(1, 3, "mdpy", "mdpy-xga", 4 << 20), &xga);
        assert_eq!(v.verdict, "compatible");
    }

    #[test]
    fn no_migration_or_no_header() {
        let h = parse_header(&header(1, 0, "mdpy", "mdpy-xga", 4 << 20)).ok();
        let v = compat(&report(None, false), &report(h.clone(), true));
        assert_eq!(v.verdict, "incompatible");
        assert!(v.reasons[0].contains("source has no migration"));
        let v = compat(&report(None, true), &report(h, true));
        assert_eq!(v.verdict, "undecided");
    }
}
