//! What the C host tests share: building tests/c/host.c, running a child
//! process with a deadline, and the simulator replies in the order host.c
//! makes its requests (c_host.rs runs it natively, c_valgrind.rs under
//! valgrind; both must script the same conversation).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use moonshot_simulator::{Reply, ReplySpec, Simulator, ToolCallSpec, UsageSpec};

use crate::kit::workspace_root;

/// What each of the two in-flight streams sends before it goes silent.
pub const INFLIGHT_TEXTS: [&str; 2] = ["held A", "held B"];

/// The slow stream the host cancels: 10 text parts, one every 200 ms.
pub const SLOW_CONTENT: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";
pub const SLOW_CHUNK_CHARS: usize = 4;

pub use crate::kit::ScratchDir;

/// Runs a tool to its end; a missing tool fails the test with a clear
/// message (these tests are never skipped: CI installs the tools).
pub fn tool(name: &str, args: &[&OsStr]) -> std::process::Output {
    match Command::new(name).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{name}` is not installed or not on PATH: the C host tests need gcc, g++ and valgrind \
             (e.g. `apt-get install gcc g++ valgrind`, as .ci/run does); they are not skipped"
        ),
        Err(e) => panic!("cannot run `{name}`: {e}"),
    }
}

/// Runs a compiler and fails the test with its output when it fails.
pub fn compile(compiler: &str, args: &[&OsStr]) {
    let output = tool(compiler, args);
    assert!(
        output.status.success(),
        "`{compiler} {}` failed ({}):\n{}{}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn include_dir() -> PathBuf {
    workspace_root().join("include")
}

pub fn c_source(name: &str) -> PathBuf {
    workspace_root().join("tests/c").join(name)
}

/// `gcc -std=c11 -Wall -Wextra -Wpedantic -Werror <extra> -I include
/// tests/c/host.c -ldl -lpthread`
pub fn build_host(dir: &Path, extra: &[&str]) -> PathBuf {
    build_c_program(dir, "host", extra)
}

/// As `build_host`, for tests/c/<name>.c; the program is `dir/<name>`.
/// `MOONSHOT_C_FLAGS` (space-separated) adds flags, e.g. a sanitizer.
pub fn build_c_program(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let exe = dir.join(name);
    let (include, source) = (include_dir(), c_source(&format!("{name}.c")));
    let env_flags = std::env::var("MOONSHOT_C_FLAGS").unwrap_or_default();
    let extra: Vec<&str> = extra
        .iter()
        .copied()
        .chain(env_flags.split_whitespace())
        .collect();
    let mut args: Vec<&OsStr> = ["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
        .map(OsStr::new)
        .to_vec();
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new("-I"),
        include.as_os_str(),
        source.as_os_str(),
        OsStr::new("-ldl"),
        OsStr::new("-lpthread"),
        OsStr::new("-o"),
        exe.as_os_str(),
    ]);
    compile("gcc", &args);
    exe
}

/// Runs `program args` to its end or kills it after `timeout`; returns the
/// exit status (None when killed), stdout and stderr, read on their own
/// threads so a full pipe cannot stall the child.
pub fn run_with_timeout(
    program: &OsStr,
    args: &[&OsStr],
    timeout: Duration,
) -> (Option<ExitStatus>, String, String) {
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tool(&program.to_string_lossy(), &[]);
            unreachable!("tool() panics for a missing program")
        }
        Err(e) => panic!("cannot start {}: {e}", program.to_string_lossy()),
    };
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            // std offers no wait with a timeout on a child process.
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    (
        status,
        stdout.join().expect("stdout reader"),
        stderr.join().expect("stderr reader"),
    )
}

/// A stream that sends one text part and then stays silent (until the
/// simulator shuts down).
pub fn one_part_then_silence(text: &str) -> Reply {
    let chunk = serde_json::json!({"choices":[{"index":0,"delta":{"content":text}}]});
    Reply::Raw {
        head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            .into(),
        body: vec![format!("data: {chunk}\n\n").into_bytes()],
        delay: Duration::ZERO,
        hold_open: Duration::from_secs(60),
    }
}

/// The replies, in the order host.c makes its requests (its unknown-model
/// request is refused before anything is sent).
pub fn script(sim: &Simulator) {
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
        content: String::new(),
        reasoning: Some("Look it up.".into()),
        tool_calls: vec![ToolCallSpec {
            id: "functions.get_weather:0".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        }],
        finish_reason: "tool_calls".into(),
        chunk_chars: 3,
        ..Default::default()
    }));
    sim.push(Reply::stream(&ReplySpec {
        content: SLOW_CONTENT.into(),
        chunk_chars: SLOW_CHUNK_CHARS,
        delay: Duration::from_millis(200),
        ..Default::default()
    }));
    // The two streams still running when the host destroys the instance.
    for text in INFLIGHT_TEXTS {
        sim.push(one_part_then_silence(text));
    }
}
