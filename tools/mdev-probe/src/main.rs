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
Without --stream nothing changes the device: only queries (GET and PROBE
ioctls); --stream moves a RUNNING device through STOP and STOP_COPY to read
its migration stream, then back to RUNNING.
Under --json an error is a JSON object on stdout too: error, kind,
exit_status, errno, errno_name (the message also goes to stderr).

EXIT STATUS:
  0   done (compat: the destination accepts the source's stream)
  1   other error (an unexpected ioctl failure, I/O error)
  2   usage error (no arguments, an unknown option or command)
  3   no such mdev (unknown UUID, no such path)
  4   the path is not an mdev
  5   the device is in use (EBUSY: opened by QEMU or another program)
  6   permission denied
  7   no such parent, or the parent has no such type
  8   creating the transient mdev failed (e.g. no instance available)
  10  compat: the destination would refuse the stream
  11  compat: no verdict possible (see the reasons)
  12  compat: a report file cannot be read, is not an mdev-probe report,
      or is of another schema major
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
    /// Print the report (or the error) as JSON (schema mdev-probe/1.1).
    #[arg(long, global = true)]
    json: bool,
    /// Also read the migration stream: a RUNNING device goes STOP ->
    /// STOP_COPY, is read to its end, and goes back to RUNNING (without
    /// it nothing changes the device's state).
    #[arg(long, global = true)]
    stream: bool,
    /// How to open the device.
    #[arg(long, global = true, value_enum, default_value_t = vfio::Interface::Auto)]
    interface: vfio::Interface,
    /// With --stream: read at most this many bytes of the stop-copy stream.
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

impl Opts {
    /// The stream limit if the stream is to be read.
    fn stream_limit(&self) -> Option<u64> {
        self.stream.then_some(self.stream_limit)
    }
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
    let r = report::probe(&m, &dev, "device", false, o.stream_limit())?;
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
        let r = report::probe(&m, &dev, "type", true, o.stream_limit())?;
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

/// A report file: its schema checked first (another major is refused
/// with a message saying so), then its fields.
fn read_report(path: &str) -> Result<report::Report, Fail> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Fail::with_errno(Kind::BadReport, format!("{path}: {e}"), &e))?;
    parse_report(path, &text)
}

fn parse_report(path: &str, text: &str) -> Result<report::Report, Fail> {
    let not_report = |e: String| {
        Fail::new(
            Kind::BadReport,
            format!("{path}: not an mdev-probe report: {e}"),
        )
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| not_report(e.to_string()))?;
    let schema = v
        .get("schema")
        .and_then(|s| s.as_str())
        .ok_or_else(|| not_report("no \"schema\" string".into()))?;
    report::schema_readable(schema)
        .map_err(|why| Fail::new(Kind::BadReport, format!("{path}: {why}")))?;
    serde_json::from_value(v).map_err(|e| not_report(e.to_string()))
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
            Kind::Usage,
            "nothing to do: give an mdev (UUID or path), or `type PARENT TYPE`, or `compat SRC DST` (see --help)".into(),
        )),
    }
}

/// Prints a failure: the message on stderr, and under `--json` the error
/// object on stdout.
fn report_failure(f: &Fail, json: bool) {
    eprintln!("mdev-probe: {f}");
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&f.to_json()).expect("serialisable")
        );
    }
}

fn main() {
    // `--json` counts before the command line is understood: a usage
    // error is JSON too.
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) || !json {
                // clap's own exit: 0 for --help/--version, 2 for a usage error.
                e.exit();
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let f = Fail::new(
                Kind::Usage,
                first.strip_prefix("error: ").unwrap_or(first).to_string(),
            );
            let _ = e.print();
            println!(
                "{}",
                serde_json::to_string_pretty(&f.to_json()).expect("serialisable")
            );
            std::process::exit(f.kind.exit_code());
        }
    };
    let json = cli.opts.json;
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
            report_failure(&f, json);
            f.kind.exit_code()
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    const V10: &str = include_str!("../tests/data/report-1.0-mdpy-xga.json");

    fn with_schema(s: &str) -> String {
        V10.replace(
            "\"schema\": \"mdev-probe/1\"",
            &format!("\"schema\": \"{s}\""),
        )
    }

    #[test]
    fn reports_of_this_major_are_read() {
        let r = parse_report("v10", V10).expect("a 1.0 report is read");
        assert_eq!(r.migration.state_after, None, "1.0 has no state_after");
        assert!(r.migration.stream.and_then(|s| s.header).is_some());
        for s in ["mdev-probe/1.0", "mdev-probe/1.1", "mdev-probe/1.7"] {
            parse_report(s, &with_schema(s)).unwrap_or_else(|f| panic!("{s}: {f}"));
        }
    }

    #[test]
    fn other_majors_and_non_reports_are_refused() {
        for s in ["mdev-probe/2.0", "mdev-probe/0.9", "mdev-probe/2"] {
            let f = parse_report("x.json", &with_schema(s)).expect_err(s);
            assert_eq!(f.kind, Kind::BadReport);
            assert!(
                f.msg.contains("reads mdev-probe/1.x reports only"),
                "{}",
                f.msg
            );
        }
        for s in [
            "mdev-probe/x",
            "other/1",
            "mdev-probe/1.",
            "mdev-probe/1.1.1",
        ] {
            let f = parse_report("x.json", &with_schema(s)).expect_err(s);
            assert!(
                f.msg.contains("is not an mdev-probe schema"),
                "{s}: {}",
                f.msg
            );
        }
        let f = parse_report("x.json", "not json").expect_err("garbage");
        assert!(f.msg.contains("not an mdev-probe report"));
        let f = parse_report("x.json", "{\"schema\": \"mdev-probe/1.1\"}").expect_err("fields");
        assert!(f.msg.contains("not an mdev-probe report"), "{}", f.msg);
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(Kind::Usage.exit_code(), 2);
        let cli = Cli::try_parse_from(["mdev-probe"]).expect("parses");
        let f = run(cli).expect_err("nothing to do");
        assert_eq!((f.kind, f.kind.exit_code()), (Kind::Usage, 2));
        let e = Cli::try_parse_from(["mdev-probe", "--bogus"])
            .err()
            .expect("refused");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn stream_is_opt_in() {
        let cli = Cli::try_parse_from(["mdev-probe", "u"]).expect("parses");
        assert_eq!(cli.opts.stream_limit(), None);
        let cli = Cli::try_parse_from(["mdev-probe", "--stream", "u"]).expect("parses");
        assert_eq!(cli.opts.stream_limit(), Some(1 << 30));
    }

    #[test]
    fn json_errors() {
        let e = std::io::Error::from_raw_os_error(libc::EBUSY);
        let f = Fail::io(Kind::Other, "opening".into(), &e);
        let j = f.to_json();
        assert_eq!(j["kind"], "busy");
        assert_eq!(j["exit_status"], 5);
        assert_eq!(j["errno"], libc::EBUSY);
        assert_eq!(j["errno_name"], "EBUSY");
        assert!(j["error"].as_str().unwrap().starts_with("opening: "));
        let j = Fail::new(Kind::NoDevice, "no mdev".into()).to_json();
        assert_eq!(
            (j["errno"].is_null(), j["exit_status"].as_i64()),
            (true, Some(3))
        );
    }
}
