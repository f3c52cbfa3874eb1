// SPDX-License-Identifier: GPL-2.0

//! Failures, each with its own exit status (see `EXIT STATUS` in `--help`
//! and Documentation/mdev-rs/management.rst).

use std::fmt;
use std::io;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad command line: no arguments, an unknown option, a missing one.
    Usage,
    /// Anything else (an unexpected ioctl failure, I/O error).
    Other,
    /// No such mdev: unknown UUID, a path that does not exist.
    NoDevice,
    /// The path exists but is not an mdev.
    NotMdev,
    /// The device is open elsewhere (QEMU, another probe): EBUSY.
    Busy,
    /// No permission to open the device (or create/remove an mdev).
    Permission,
    /// No such parent, or the parent has no such type.
    NoType,
    /// Creating the transient mdev failed (e.g. no instance available).
    CreateFailed,
    /// `compat`: a report file that cannot be read or is not a report.
    BadReport,
    /// Stopped by SIGINT/SIGTERM (the transient mdev was removed).
    Interrupted(i32),
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Usage => 2,
            Kind::Other => 1,
            Kind::NoDevice => 3,
            Kind::NotMdev => 4,
            Kind::Busy => 5,
            Kind::Permission => 6,
            Kind::NoType => 7,
            Kind::CreateFailed => 8,
            Kind::BadReport => 12,
            Kind::Interrupted(sig) => 128 + sig,
        }
    }

    /// Its name in a `--json` error object.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::Other => "other",
            Kind::NoDevice => "no-device",
            Kind::NotMdev => "not-mdev",
            Kind::Busy => "busy",
            Kind::Permission => "permission",
            Kind::NoType => "no-type",
            Kind::CreateFailed => "create-failed",
            Kind::BadReport => "bad-report",
            Kind::Interrupted(_) => "interrupted",
        }
    }
}

/// Exit status of `compat` when the destination would refuse the stream.
pub const EXIT_INCOMPATIBLE: i32 = 10;
/// Exit status of `compat` when the reports do not allow a verdict (a
/// device without migration, a stream format this tool does not know).
pub const EXIT_UNDECIDED: i32 = 11;

#[derive(Debug)]
pub struct Fail {
    pub kind: Kind,
    pub msg: String,
    /// The OS error behind it, if one is.
    pub errno: Option<i32>,
}

impl Fail {
    pub fn new(kind: Kind, msg: String) -> Self {
        Fail {
            kind,
            msg,
            errno: None,
        }
    }

    /// `kind` as it is, with the errno of `e` (if it has one) kept.
    pub fn with_errno(kind: Kind, msg: String, e: &io::Error) -> Self {
        Fail {
            errno: e.raw_os_error(),
            ..Fail::new(kind, msg)
        }
    }

    /// The error as the JSON object `--json` prints: `error` (the
    /// message), `kind`, `exit_status`, and `errno` / `errno_name` (null
    /// without an OS error).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "schema": crate::report::SCHEMA,
            "error": self.msg,
            "kind": self.kind.name(),
            "exit_status": self.kind.exit_code(),
            "errno": self.errno,
            "errno_name": self.errno.map(crate::uapi::errno_name_of),
        })
    }

    /// `what`: an I/O error; EBUSY and EACCES/EPERM get their own kinds.
    pub fn io(kind: Kind, what: String, e: &io::Error) -> Self {
        let kind = match e.raw_os_error() {
            Some(libc::EBUSY) => Kind::Busy,
            Some(libc::EACCES) | Some(libc::EPERM) => Kind::Permission,
            _ => kind,
        };
        let hint = match kind {
            Kind::Busy => {
                ": the device is in use (opened by QEMU or another program); close it first"
            }
            Kind::Permission => {
                ": permission denied (run as root, or give this user the VFIO device nodes)"
            }
            _ => "",
        };
        Fail::with_errno(kind, format!("{what}: {e}{hint}"), e)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}
