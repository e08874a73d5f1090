//! The C path is memory-clean (issue 5, item 10): tests/c/host.c, the C host
//! of c_host.rs, runs under valgrind's memcheck against the simulator,
//! through every entry of the table, a cancelled stream and a destroy with
//! two streams in flight, and must end with no memory error and no definite,
//! indirect or possible leak. The only suppressions are in
//! tests/c/valgrind.supp, each with its reason. (What stays reachable at exit
//! is the library itself, never dlclose'd as the header asks, and its
//! statics.)
//!
//! valgrind, gcc are required: when missing the test fails (CI installs
//! them, see .ci/run); nothing is skipped.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use moonshot_simulator::Simulator;
use moonshot_tests::c_host::{build_host, c_source, run_with_timeout, script, tool, ScratchDir};
use moonshot_tests::plugin::plugin_path;

/// valgrind runs the plugin some 20-50 times slower than natively.
const VALGRIND_TIMEOUT: Duration = Duration::from_secs(300);

/// valgrind's exit status when it found an error (set with --error-exitcode).
const VALGRIND_FOUND_ERRORS: i32 = 99;

/// The number before " bytes" in valgrind's "<label>: N bytes in M blocks".
fn leaked(summary: &str, label: &str) -> Option<u64> {
    let line = summary.lines().find(|l| l.contains(label))?;
    let after = line.split(label).nth(1)?.trim_start_matches(':').trim();
    after
        .split_whitespace()
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

#[test]
fn the_c_host_is_memory_clean_under_valgrind() {
    let version = tool("valgrind", &["--version".as_ref()]);
    assert!(version.status.success(), "valgrind --version failed");
    let dir = ScratchDir::new("valgrind");
    // Debug info for valgrind's reports.
    let exe = build_host(&dir.0, &["-g", "-O0"]);
    let plugin = plugin_path();
    let suppressions = c_source("valgrind.supp");
    let sim = Simulator::start().unwrap();
    script(&sim);
    let base_url = sim.base_url();

    let started = Instant::now();
    let (status, stdout, stderr) = run_with_timeout(
        OsStr::new("valgrind"),
        &[
            "--tool=memcheck".as_ref(),
            "--leak-check=full".as_ref(),
            "--show-leak-kinds=definite,indirect,possible".as_ref(),
            "--errors-for-leak-kinds=definite,indirect,possible".as_ref(),
            format!("--suppressions={}", suppressions.display()).as_ref(),
            format!("--error-exitcode={VALGRIND_FOUND_ERRORS}").as_ref(),
            "--num-callers=30".as_ref(),
            exe.as_os_str(),
            plugin.as_os_str(),
            base_url.as_ref(),
        ],
        VALGRIND_TIMEOUT,
    );
    let summary_start = stderr.find("HEAP SUMMARY").unwrap_or(0);
    println!(
        "valgrind ran the C host in {:?}:\n{}",
        started.elapsed(),
        &stderr[summary_start..]
    );
    let context = format!("--- stdout ---\n{stdout}\n--- valgrind ---\n{stderr}");
    let status = status.unwrap_or_else(|| {
        panic!("valgrind did not finish within {VALGRIND_TIMEOUT:?}\n{context}")
    });
    assert_ne!(
        status.code(),
        Some(VALGRIND_FOUND_ERRORS),
        "valgrind found memory errors or leaks\n{context}"
    );
    assert!(
        status.success(),
        "the C host failed under valgrind: {status}\n{context}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"ok"), "{context}");
    assert!(lines.contains(&"cancelled 10"), "{context}");
    assert!(lines.contains(&"destroyed-inflight 2"), "{context}");
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors from 0 contexts"),
        "{context}"
    );
    // "All heap blocks were freed" leaves no LEAK SUMMARY at all.
    if stderr.contains("LEAK SUMMARY") {
        assert_eq!(leaked(&stderr, "definitely lost"), Some(0), "{context}");
        assert_eq!(leaked(&stderr, "indirectly lost"), Some(0), "{context}");
        assert_eq!(leaked(&stderr, "possibly lost"), Some(0), "{context}");
    }
}
