//! The C path is memory-clean (issue 5, item 10): tests/c/host.c, the C host
//! of c_host.rs, runs under valgrind's memcheck against the simulator,
//! through every entry of the table, a cancelled stream and a destroy with
//! two streams in flight, and must end with no memory error and no definite
//! or indirect leak. (What stays reachable at exit is the library itself,
//! never dlclose'd as the header asks, and its statics.)
//!
//! valgrind, gcc are required: when missing the test fails (CI installs
//! them, see .ci/run); nothing is skipped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moonshot_simulator::{Reply, ReplySpec, Simulator, UsageSpec};
use moonshot_tests::header::workspace_root;
use moonshot_tests::plugin::plugin_path;
use serde_json::json;

/// valgrind runs the plugin some 20-50 times slower than natively.
const VALGRIND_TIMEOUT: Duration = Duration::from_secs(300);

/// valgrind's exit status when it found an error (set with --error-exitcode).
const VALGRIND_FOUND_ERRORS: i32 = 99;

fn tool(name: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    match Command::new(name).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{name}` is not installed or not on PATH: the valgrind test needs gcc and valgrind \
             (e.g. `apt-get install gcc valgrind`, as .ci/run does); it is not skipped"
        ),
        Err(e) => panic!("cannot run `{name}`: {e}"),
    }
}

fn scratch_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("moonshot-valgrind-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `gcc -g -O0 ... tests/c/host.c`: debug info for valgrind's reports.
fn build_host(dir: &Path) -> PathBuf {
    let exe = dir.join("host");
    let include = workspace_root().join("include");
    let source = workspace_root().join("tests/c/host.c");
    let output = tool(
        "gcc",
        &[
            "-std=c11".as_ref(),
            "-g".as_ref(),
            "-O0".as_ref(),
            "-Wall".as_ref(),
            "-Wextra".as_ref(),
            "-Wpedantic".as_ref(),
            "-Werror".as_ref(),
            "-I".as_ref(),
            include.as_os_str(),
            source.as_os_str(),
            "-ldl".as_ref(),
            "-lpthread".as_ref(),
            "-o".as_ref(),
            exe.as_os_str(),
        ],
    );
    assert!(
        output.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// Runs the command to its end, or kills it after `timeout`.
fn run(
    program: &str,
    args: &[&std::ffi::OsStr],
    timeout: Duration,
) -> (ExitStatus, String, String) {
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tool(program, &[]);
            unreachable!()
        }
        Err(e) => panic!("cannot start {program}: {e}"),
    };
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            // Polling a child process: std offers no wait with a timeout.
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(status) => (status, out, err),
        None => panic!("{program} did not finish within {timeout:?}\n{out}\n{err}"),
    }
}

/// The same replies c_host.rs scripts, in the order host.c asks.
fn script(sim: &Simulator) {
    sim.push(Reply::stream(&ReplySpec {
        content: "Hello from the simulator".into(),
        reasoning: Some("thinking...".into()),
        usage: Some(UsageSpec {
            prompt_tokens: 12,
            completion_tokens: 6,
            cached_tokens: 4,
        }),
        ..Default::default()
    }));
    sim.push(Reply::completion(&ReplySpec {
        content: "Plain answer".into(),
        ..Default::default()
    }));
    sim.push(Reply::stream(&ReplySpec {
        content: "abcdefghijklmnopqrstuvwxyz0123456789ABCD".into(),
        chunk_chars: 4,
        delay: Duration::from_millis(200),
        ..Default::default()
    }));
    for text in ["held A", "held B"] {
        let chunk = json!({"choices":[{"index":0,"delta":{"content":text}}]});
        sim.push(Reply::Raw {
            head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                .into(),
            body: vec![format!("data: {chunk}\n\n").into_bytes()],
            delay: Duration::ZERO,
            hold_open: Duration::from_secs(60),
        });
    }
}

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
    let dir = scratch_dir();
    let exe = build_host(&dir);
    let plugin = plugin_path();
    let sim = Simulator::start().unwrap();
    script(&sim);
    let base_url = sim.base_url();

    let started = Instant::now();
    let (status, stdout, stderr) = run(
        "valgrind",
        &[
            "--tool=memcheck".as_ref(),
            "--leak-check=full".as_ref(),
            "--show-leak-kinds=definite,indirect".as_ref(),
            "--errors-for-leak-kinds=definite,indirect".as_ref(),
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
    }
    let _ = std::fs::remove_dir_all(&dir);
}
