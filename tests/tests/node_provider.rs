//! bindings/node under Node: its `node:test` suite (MoonshotProvider driven
//! the way Puter's chat driver drives it, against the offline simulator;
//! the traps: blocked callbacks, exits with requests in flight, koffi's
//! limit) and the real puter.js through a Node server hosting it.
//!
//! Cargo builds what the suite loads: the plugin's cdylib (a dependency of
//! this crate) and the `sim-serve` binary (the simulator as a process).
//! Node and npm are required: without them this test fails, it does not
//! skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use moonshot_tests::plugin::plugin_path;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn package_dir() -> PathBuf {
    workspace_root().join("bindings").join("node")
}

/// Node, and the locked npm packages of `dir` (`npm ci` unless installed).
fn ensure_npm_packages(dir: &Path, marker: &str) {
    let version = Command::new("node").arg("--version").output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => panic!("node (20 or newer) is required by bindings/node's tests; install Node.js"),
    }
    if dir
        .join("node_modules")
        .join(marker)
        .join("package.json")
        .exists()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "npm is required to install {}'s packages: {e}",
                dir.display()
            )
        });
    assert!(
        out.status.success(),
        "npm ci in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        ensure_npm_packages(&package_dir(), "koffi");
        ensure_npm_packages(
            &workspace_root().join("tests").join("js"),
            "@heyputer/puter.js",
        );
    });
}

/// `node --test` on the named files of bindings/node/test; panics with
/// node's report unless every test passed.
fn node_test(files: &[&str]) {
    ready();
    // One node --test at a time: the event-loop and timing checks measure
    // this suite, not its other files competing for two cores.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = package_dir();
    let out = Command::new("node")
        .arg("--test")
        .args(files.iter().map(|f| format!("test/{f}")))
        .current_dir(&dir)
        .env("MOONSHOT_PROVIDER_LIB", plugin_path())
        .env("MOONSHOT_SIM_BIN", env!("CARGO_BIN_EXE_sim-serve"))
        .output()
        .expect("run node --test");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("# ") || l.starts_with("not ok"))
        .collect();
    eprintln!("node --test {}:\n{}", files.join(" "), summary.join("\n"));
    assert!(
        out.status.success(),
        "node --test {} failed:\n{report}\n{}",
        files.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn provider_results_streams_metering_and_errors() {
    node_test(&["provider.test.js"]);
}

#[test]
fn client_disconnect_cancels_the_upstream() {
    node_test(&["disconnect.test.js"]);
}

#[test]
fn many_streams_and_close_never_block_the_event_loop() {
    node_test(&["concurrency.test.js"]);
}

#[test]
fn processes_exit_every_way_with_requests_in_flight() {
    node_test(&["exits.test.js"]);
}

#[test]
fn koffi_callback_limit_and_loading() {
    node_test(&["traps.test.js"]);
}

#[test]
fn puter_js_through_a_node_driver_server() {
    node_test(&["puter-js.test.js"]);
}

#[test]
fn typescript_declarations_check() {
    ready();
    let js = workspace_root().join("tests").join("js");
    let out = Command::new("node")
        .arg(js.join("node_modules/typescript/bin/tsc"))
        .args(["--noEmit", "-p", "tsconfig.json"])
        .current_dir(package_dir())
        .output()
        .expect("run tsc under node");
    assert!(
        out.status.success(),
        "tsc found errors in bindings/node's declarations or their checks:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
