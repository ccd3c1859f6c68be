//! `upkeep plugin inspect` and `upkeep plugin run`: what a plugin author sees without a cluster.
//! Needs the plugins built by scripts/build-plugins.sh.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

fn plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("UPKEEP_PLUGIN_DIR").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
                .join("plugins")
        },
        PathBuf::from,
    );
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh first",
        path.display()
    );
    path
}

fn upkeep(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .output()
        .expect("run upkeep");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_prints_metadata_exports_and_wants() {
    let p = plugin("port-listener");
    let (ok, out, err) = upkeep(&["plugin", "inspect", &p.to_string_lossy()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("name:") && out.contains("port-listener"),
        "{out}"
    );
    assert!(out.contains("listening-sockets"), "{out}");
    assert!(out.contains("check"), "{out}");
    assert!(out.contains("upkeep:plugin@0.1.0"), "{out}");
}

#[test]
fn run_calls_the_check_once_and_reports_result_and_duration() {
    let p = plugin("port-listener");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let port_cfg = format!("port={port}");
    let args = [
        "plugin",
        "run",
        &p.to_string_lossy(),
        "-c",
        &port_cfg,
        "-a",
        "listening-sockets",
        "-a",
        "log",
    ];
    let (ok, out, err) = upkeep(&args);
    assert!(ok, "healthy run should exit 0: {out}{err}");
    assert!(out.starts_with("healthy"), "{out}");
    assert!(out.contains("duration:"), "{out}");

    drop(listener);
    let (ok, out, _) = upkeep(&args);
    assert!(!ok, "nothing listens now: {out}");
    assert!(out.starts_with("unhealthy"), "{out}");
}

#[test]
fn run_refuses_a_plugin_whose_capability_is_not_granted() {
    let p = plugin("port-listener");
    let (ok, out, err) = upkeep(&["plugin", "run", &p.to_string_lossy(), "-c", "port=80"]);
    assert!(!ok, "{out}");
    assert!(err.contains("listening-sockets"), "{err}");
}
