// SPDX-License-Identifier: GPL-2.0

//! mdev-probe: tells management what a VFIO mdev is before QEMU starts:
//! device API, regions, display kind (none / region / dma-buf), EDID and its
//! limits, the current plane, migration and its stream's compatibility data,
//! reset, and the QEMU options and libvirt XML the device needs.
//! See Documentation/mdev-rs/management.rst.

mod error;
mod report;
mod stream;
mod sysfs;
mod uapi;
mod vfio;

use clap::{Parser, Subcommand};
use error::{Fail, Kind, EXIT_INCOMPATIBLE, EXIT_UNDECIDED};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The signal that asked us to stop (0: none).
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

fn interrupted() -> Result<(), Fail> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => Ok(()),
        s => Err(Fail::new(
            Kind::Interrupted(s as i32),
            format!("interrupted by signal {s}"),
        )),
    }
}

const AFTER_HELP: &str = "\
EXIT STATUS:
  0   done (compat: the destination accepts the source's stream)
  1   other error
  2   usage error
  3   no such mdev (unknown UUID, no such path)
  4   the path is not an mdev
  5   the device is in use (EBUSY: opened by QEMU or another program)
  6   permission denied
  7   no such parent, or the parent has no such type
  8   creating the transient mdev failed (e.g. no instance available)
  10  compat: the destination would refuse the stream
  11  compat: no verdict possible (see the reasons)
  12  compat: a report file cannot be read or is not an mdev-probe report
  128+N  stopped by signal N (a transient mdev is removed first)";

#[derive(Parser)]
#[command(name = "mdev-probe", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// The mdev: a UUID or its sysfs path (same as `mdev-probe device`).
    mdev: Option<String>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(clap::Args, Clone)]
struct Opts {
    /// Print the report as JSON (schema mdev-probe/1).
    #[arg(long, global = true)]
    json: bool,
    /// How to open the device.
    #[arg(long, global = true, value_enum, default_value_t = vfio::Interface::Auto)]
    interface: vfio::Interface,
    /// Read at most this many bytes of the stop-copy stream.
    #[arg(long, global = true, default_value_t = 1 << 30)]
    stream_limit: u64,
    /// (tests) keep the device open this many seconds after the probe.
    #[arg(long, global = true, hide = true, default_value_t = 0)]
    hold: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Probe an existing mdev (UUID or sysfs path).
    Device { mdev: String },
    /// Probe a type: create a transient mdev of PARENT/TYPE, probe it,
    /// remove it (always: also on error and on SIGINT/SIGTERM).
    Type { parent: String, type_id: String },
    /// Whether DST would accept SRC's migration stream, from two reports
    /// (`--json` output, possibly of two hosts).
    Compat { src: String, dst: String },
    /// (tests) Save the stream of the mdev SRC and load it into the mdev
    /// DST, which it changes: the kernel's own verdict.
    #[command(hide = true)]
    KernelCheck { src: String, dst: String },
}

fn hold(secs: u64) -> Result<(), Fail> {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        interrupted()?;
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn print_report(r: &report::Report, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(r).expect("serialisable"));
    } else {
        print!("{}", report::table(r));
    }
}

fn probe_device(arg: &str, o: &Opts) -> Result<i32, Fail> {
    let m = sysfs::resolve(arg)?;
    let dev = vfio::Device::open(&m, o.interface)?;
    interrupted()?;
    let r = report::probe(&m, &dev, "device", false, o.stream_limit)?;
    hold(o.hold)?;
    drop(dev);
    print_report(&r, o.json);
    Ok(0)
}

fn probe_type(parent: &str, type_id: &str, o: &Opts) -> Result<i32, Fail> {
    let tdir = sysfs::type_dir(parent, type_id)?;
    interrupted()?;
    // Declared before the device: dropped (removed) after it is closed.
    let mut guard = sysfs::Transient::create(&tdir)?;
    interrupted()?;
    let r = {
        let m = sysfs::resolve(&guard.uuid)?;
        let dev = vfio::Device::open(&m, o.interface)?;
        interrupted()?;
        let r = report::probe(&m, &dev, "type", true, o.stream_limit)?;
        hold(o.hold)?;
        r
    };
    guard.remove().map_err(|e| {
        Fail::io(
            Kind::Other,
            format!("removing the transient mdev {}", guard.uuid),
            &e,
        )
    })?;
    interrupted()?;
    print_report(&r, o.json);
    Ok(0)
}

fn read_report(path: &str) -> Result<report::Report, Fail> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Fail::new(Kind::BadReport, format!("{path}: {e}")))?;
    let r: report::Report = serde_json::from_str(&text).map_err(|e| {
        Fail::new(
            Kind::BadReport,
            format!("{path}: not an mdev-probe report: {e}"),
        )
    })?;
    if r.schema != report::SCHEMA {
        return Err(Fail::new(
            Kind::BadReport,
            format!(
                "{path}: schema {}, this tool reads {}",
                r.schema,
                report::SCHEMA
            ),
        ));
    }
    Ok(r)
}

fn compat(src: &str, dst: &str, o: &Opts) -> Result<i32, Fail> {
    let (s, d) = (read_report(src)?, read_report(dst)?);
    let v = stream::compat(&s, &d);
    if o.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("serialisable")
        );
    } else {
        println!(
            "{}: {} -> {}{}",
            v.verdict,
            v.source,
            v.destination,
            v.errno
                .as_ref()
                .map(|e| format!(" (the destination refuses it with {e})"))
                .unwrap_or_default()
        );
        for r in &v.reasons {
            println!("  {r}");
        }
    }
    Ok(match v.verdict.as_str() {
        "compatible" => 0,
        "incompatible" => EXIT_INCOMPATIBLE,
        _ => EXIT_UNDECIDED,
    })
}

fn kernel_check(src: &str, dst: &str, o: &Opts) -> Result<i32, Fail> {
    let (ms, md) = (sysfs::resolve(src)?, sysfs::resolve(dst)?);
    let ds = vfio::Device::open(&ms, o.interface)?;
    let dd = vfio::Device::open(&md, o.interface)?;
    let data = ds
        .save_all(o.stream_limit)
        .map_err(|e| Fail::io(Kind::Other, format!("saving {}", ms.uuid), &e))?;
    let res = dd.load_stream(&data);
    let out = serde_json::json!({
        "source": ms.uuid,
        "destination": md.uuid,
        "stream_bytes": data.len(),
        "accepted": res.is_ok(),
        "errno": res.as_ref().err().map(uapi::errno_name),
    });
    println!(
        "{}",
        if o.json {
            serde_json::to_string_pretty(&out).expect("json")
        } else {
            out.to_string()
        }
    );
    Ok(if res.is_ok() { 0 } else { EXIT_INCOMPATIBLE })
}

fn run(cli: Cli) -> Result<i32, Fail> {
    let o = cli.opts;
    match (cli.cmd, cli.mdev) {
        (Some(Cmd::Device { mdev }), _) | (None, Some(mdev)) => probe_device(&mdev, &o),
        (Some(Cmd::Type { parent, type_id }), _) => probe_type(&parent, &type_id, &o),
        (Some(Cmd::Compat { src, dst }), _) => compat(&src, &dst, &o),
        (Some(Cmd::KernelCheck { src, dst }), _) => kernel_check(&src, &dst, &o),
        (None, None) => Err(Fail::new(
            Kind::Other,
            "nothing to do: give an mdev (UUID or path), or `type PARENT TYPE`, or `compat SRC DST` (see --help)".into(),
        )),
    }
}

fn main() {
    let cli = Cli::parse();
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register_usize(sig, &SIGNAL, sig as usize) {
            eprintln!("mdev-probe: cannot handle signal {sig}: {e}");
            std::process::exit(1);
        }
    }
    // Everything `run` created (open devices, transient mdevs) is dropped
    // when it returns, before the process exits.
    let code = match run(cli) {
        Ok(c) => c,
        Err(f) => {
            eprintln!("mdev-probe: {f}");
            f.kind.exit_code()
        }
    };
    std::process::exit(code);
}
