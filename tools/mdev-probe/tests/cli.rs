// SPDX-License-Identifier: GPL-2.0

//! The binary's exit statuses and `--json` errors (Documentation/mdev-rs/
//! management.rst, "Exit status"), and the mdevctl callout's dependency
//! checks: everything that needs no VFIO device (the test VM's probe phase
//! does the rest).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mdev-probe");
const CALLOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/mdevctl/mdev-rs-callout");
const V10: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/report-1.0-mdpy-xga.json"
);

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("mdev-probe runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `--json` error object on stdout.
fn json_error(o: &Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", o));
    assert!(v["error"].is_string(), "no error field: {v}");
    assert_eq!(v["exit_status"].as_i64(), Some(code(o) as i64), "{v}");
    v
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&d).expect("tmp dir");
    d.join(name)
}

/// A copy of the 1.0 report with another schema.
fn report_with_schema(schema: &str) -> String {
    let text = std::fs::read_to_string(V10).expect("fixture");
    let p = tmp(&format!("report-{}.json", schema.replace('/', "_")));
    std::fs::write(
        &p,
        text.replace("\"mdev-probe/1\"", &format!("\"{schema}\"")),
    )
    .expect("write");
    p.display().to_string()
}

#[test]
fn usage_errors_exit_2() {
    let o = run(&[]);
    assert_eq!(code(&o), 2, "no arguments: {}", stderr(&o));
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    let o = run(&["--bogus"]);
    assert_eq!(code(&o), 2, "unknown option: {}", stderr(&o));
    let o = run(&["compat", V10]);
    assert_eq!(code(&o), 2, "compat with one report: {}", stderr(&o));
    let o = run(&["a", "b"]);
    assert_eq!(code(&o), 2, "two devices: {}", stderr(&o));
    assert_eq!(code(&run(&["--help"])), 0);
    assert_eq!(code(&run(&["--version"])), 0);
}

#[test]
fn usage_errors_as_json() {
    for args in [
        &["--json"][..],
        &["--json", "--bogus"],
        &["--bogus", "--json"],
    ] {
        let o = run(args);
        assert_eq!(code(&o), 2, "{args:?}");
        let v = json_error(&o);
        assert_eq!(v["kind"], "usage", "{args:?}: {v}");
        assert!(v["errno"].is_null());
    }
    let v = json_error(&run(&["--json", "--bogus"]));
    assert!(v["error"].as_str().unwrap().contains("--bogus"), "{v}");
}

#[test]
fn no_such_mdev() {
    // Neither exists on a host without this UUID (the VM tests the rest).
    let o = run(&["--json", "00000000-0000-4000-8000-00000000dead"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(json_error(&o)["kind"], "no-device");
    let o = run(&["not-a-uuid"]);
    assert_eq!(code(&o), 3);
    assert!(o.stdout.is_empty(), "no JSON without --json");
    assert!(stderr(&o).contains("neither a UUID nor a sysfs path"));
}

#[test]
fn compat_reads_older_minors_and_refuses_other_majors() {
    let o = run(&["compat", V10, V10]);
    assert_eq!(
        code(&o),
        0,
        "1.0 reports: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("compatible:"));
    let v11 = report_with_schema("mdev-probe/1.1");
    assert_eq!(code(&run(&["compat", V10, &v11])), 0, "1.0 -> 1.1");
    let v2 = report_with_schema("mdev-probe/2.0");
    let o = run(&["--json", "compat", V10, &v2]);
    assert_eq!(code(&o), 12, "{}", stderr(&o));
    let v = json_error(&o);
    assert_eq!(v["kind"], "bad-report");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("schema mdev-probe/2.0") && msg.contains("reads mdev-probe/1.x reports only"),
        "{msg}"
    );
}

#[test]
fn compat_file_errors() {
    let o = run(&["--json", "compat", "/nonexistent/a.json", V10]);
    assert_eq!(code(&o), 12, "{}", stderr(&o));
    let v = json_error(&o);
    assert_eq!(
        (v["errno"].as_i64(), v["errno_name"].as_str()),
        (Some(2), Some("ENOENT"))
    );
    let g = tmp("garbage.json");
    std::fs::write(&g, "not json").unwrap();
    let o = run(&["compat", g.to_str().unwrap(), V10]);
    assert_eq!(code(&o), 12);
    assert!(stderr(&o).contains("not an mdev-probe report"));
}

/// Runs the callout with PATH = a directory holding only links to TOOLS.
fn callout(tools: &[&str], args: &[&str], stdin: &str, probe: Option<&str>) -> Output {
    let bin = tmp(&format!("bin-{}", tools.join("-")));
    std::fs::create_dir_all(&bin).unwrap();
    for t in tools {
        let found = ["/usr/bin", "/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(t))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{t} not installed (bootstrap-deps.sh installs it)"));
        let l = bin.join(t);
        let _ = std::fs::remove_file(&l);
        std::os::unix::fs::symlink(found, l).unwrap();
    }
    let mut c = Command::new("/bin/sh");
    c.arg(CALLOUT)
        .args(args)
        .env_clear()
        .env("PATH", &bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = probe {
        c.env("MDEV_PROBE", p);
    }
    let mut child = c.spawn().expect("sh runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

const U: &str = "00000000-0000-4000-8000-00000000dead";

/// The callout's `get attributes` of mdev `U` of `mtype` on `parent`.
fn get_attributes_of(tools: &[&str], probe: Option<&str>, mtype: &str, parent: &str) -> Output {
    let a = [
        "-t",
        mtype,
        "-e",
        "get",
        "-a",
        "attributes",
        "-s",
        "none",
        "-u",
        U,
        "-p",
        parent,
    ];
    callout(tools, &a, "", probe)
}

fn get_attributes(tools: &[&str], probe: Option<&str>) -> Output {
    get_attributes_of(tools, probe, "mdpy-xga", "mdpy")
}

#[test]
fn callout_without_jq() {
    let o = get_attributes(&[], Some(BIN));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON answer");
    let e = v[0]["mdev-probe.error"]
        .as_str()
        .expect("an error attribute");
    assert!(e.contains("needs jq"), "{e}");
    assert!(stderr(&o).contains("jq not found"), "{}", stderr(&o));
    // Not our device: no dependency needed.
    assert_eq!(code(&get_attributes_of(&[], Some(BIN), "x", "mtty")), 2);
    // define still refuses mdev-probe attributes, found by grep.
    let a = [
        "-t", "mdpy-xga", "-e", "pre", "-a", "define", "-s", "none", "-u", U, "-p", "mdpy",
    ];
    let conf =
        r#"{"mdev_type":"mdpy-xga","start":"manual","attrs":[{"mdev-probe.display":"region"}]}"#;
    let o = callout(&["cat", "grep"], &a, conf, Some(BIN));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not defining"));
    let conf = r#"{"mdev_type":"mdpy-xga","start":"manual","attrs":[]}"#;
    assert_eq!(code(&callout(&["cat", "grep"], &a, conf, Some(BIN))), 0);
}

#[test]
fn callout_errors_become_attributes() {
    let o = get_attributes(&["jq"], Some("/nonexistent/mdev-probe"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let e = v[0]["mdev-probe.error"].as_str().expect("error attribute");
    assert!(
        e.contains("mdev-probe not found (/nonexistent/mdev-probe)"),
        "{e}"
    );
    // mdev-probe's own --json error, for a device that does not exist.
    let o = get_attributes(&["jq"], Some(BIN));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let e = v[0]["mdev-probe.error"].as_str().expect("error attribute");
    assert!(e.starts_with(&format!("no mdev {U}")), "{e}");
}
