// SPDX-License-Identifier: GPL-2.0

//! The mdev's sysfs side: finding a device from a UUID or a path, its type's
//! attributes, and transient mdevs that are always removed.

use crate::error::{Fail, Kind};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const MDEV_DEVICES: &str = "/sys/bus/mdev/devices";
pub const MDEV_BUS: &str = "/sys/class/mdev_bus";

/// Whether `s` is a UUID in the 8-4-4-4-12 form the kernel accepts.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A fresh random UUID, from the kernel.
pub fn new_uuid() -> io::Result<String> {
    Ok(fs::read_to_string("/proc/sys/kernel/random/uuid")?
        .trim()
        .to_string())
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// An existing mdev.
#[derive(Clone, Debug)]
pub struct Mdev {
    pub uuid: String,
    /// Its directory under /sys/devices (canonical).
    pub path: PathBuf,
    pub parent: String,
    /// Its type's directory.
    pub type_dir: PathBuf,
    /// The mdev driver bound to it (`mdpy`, `mbochs`), if any.
    pub driver: Option<String>,
}

/// Resolves a UUID or a sysfs path to an mdev.
pub fn resolve(arg: &str) -> Result<Mdev, Fail> {
    let path = if arg.contains('/') {
        PathBuf::from(arg)
    } else if is_uuid(arg) {
        Path::new(MDEV_DEVICES).join(arg.to_ascii_lowercase())
    } else {
        return Err(Fail::new(
            Kind::NoDevice,
            format!("'{arg}' is neither a UUID nor a sysfs path of an mdev"),
        ));
    };
    if !path.exists() {
        return Err(Fail::new(
            Kind::NoDevice,
            if arg.contains('/') {
                format!("{}: no such file or directory", path.display())
            } else {
                format!("no mdev {arg} (nothing at {})", path.display())
            },
        ));
    }
    let canon = fs::canonicalize(&path)
        .map_err(|e| Fail::io(Kind::NoDevice, format!("{}", path.display()), &e))?;
    let subsystem = fs::read_link(canon.join("subsystem")).ok();
    let on_mdev_bus = subsystem
        .as_ref()
        .and_then(|s| s.file_name().map(|n| n == "mdev"))
        .unwrap_or(false);
    let type_link = canon.join("mdev_type");
    if !on_mdev_bus || !type_link.exists() {
        return Err(Fail::new(
            Kind::NotMdev,
            format!(
                "{} is not an mdev (no mdev_type link or not on the mdev bus)",
                path.display()
            ),
        ));
    }
    let uuid = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let type_dir = fs::canonicalize(&type_link)
        .map_err(|e| Fail::io(Kind::NotMdev, format!("{}", type_link.display()), &e))?;
    // The parent is the device the mdev hangs under.
    let parent = canon
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let driver = fs::read_link(canon.join("driver"))
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    Ok(Mdev {
        uuid,
        path: canon,
        parent,
        type_dir,
        driver,
    })
}

/// An mdev type's attributes (`mdev_supported_types/TYPE/`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TypeInfo {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub device_api: Option<String>,
    pub available_instances: Option<u64>,
}

pub fn type_info(dir: &Path) -> TypeInfo {
    TypeInfo {
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        name: read_trim(&dir.join("name")),
        description: read_trim(&dir.join("description")),
        device_api: read_trim(&dir.join("device_api")),
        available_instances: read_trim(&dir.join("available_instances"))
            .and_then(|s| s.parse().ok()),
    }
}

/// The type directory of PARENT/TYPE, or why there is none.
pub fn type_dir(parent: &str, type_id: &str) -> Result<PathBuf, Fail> {
    let pdir = Path::new(MDEV_BUS).join(parent);
    if parent.contains('/') || !pdir.exists() {
        return Err(Fail::new(
            Kind::NoType,
            format!("no mdev parent '{parent}' (nothing at {})", pdir.display()),
        ));
    }
    let tdir = pdir.join("mdev_supported_types").join(type_id);
    if type_id.contains('/') || !tdir.join("create").exists() {
        let have: Vec<String> = fs::read_dir(pdir.join("mdev_supported_types"))
            .map(|d| {
                let mut v: Vec<String> = d
                    .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        return Err(Fail::new(
            Kind::NoType,
            format!(
                "parent '{parent}' has no mdev type '{type_id}' (its types: {})",
                if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                }
            ),
        ));
    }
    Ok(tdir)
}

/// A transient mdev: created by [`Transient::create`], removed when
/// dropped, whatever happened in between.
pub struct Transient {
    pub uuid: String,
    removed: bool,
}

impl Transient {
    pub fn create(tdir: &Path) -> Result<Self, Fail> {
        let uuid =
            new_uuid().map_err(|e| Fail::io(Kind::Other, "reading a random UUID".into(), &e))?;
        if let Err(e) = fs::write(tdir.join("create"), &uuid) {
            let kind = match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => Kind::Permission,
                _ => Kind::CreateFailed,
            };
            let hint = match e.raw_os_error() {
                Some(libc::EUSERS) | Some(libc::ENOSPC) => {
                    " (no instance of this type is available: see available_instances)"
                }
                _ => "",
            };
            return Err(Fail::io(
                kind,
                format!(
                    "creating an mdev with {}{hint}",
                    tdir.join("create").display()
                ),
                &e,
            ));
        }
        Ok(Transient {
            uuid,
            removed: false,
        })
    }

    /// Removes it now; an error says why it could not be.
    pub fn remove(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        let p = Path::new(MDEV_DEVICES).join(&self.uuid);
        if !p.exists() {
            self.removed = true;
            return Ok(());
        }
        fs::write(p.join("remove"), "1")?;
        self.removed = true;
        Ok(())
    }
}

impl Drop for Transient {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!(
                "mdev-probe: could not remove the transient mdev {}: {e}",
                self.uuid
            );
        }
    }
}
