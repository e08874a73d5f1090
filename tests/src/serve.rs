//! `host-demo serve` as a child process for the tests that talk HTTP to it:
//! building the binary, starting it on an OS-picked port, raw requests, and
//! its peak memory (VmHWM) for the hostile-caller tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::kit::workspace_root;
use crate::plugin::plugin_path;

/// How long serve may take to print its URL.
pub const START_LIMIT: Duration = Duration::from_secs(60);

/// Builds the host-demo binary (cargo builds no binary of a dependency for
/// a test crate) and returns its path. It gets a target directory of its
/// own: `cargo test` and `cargo build` unify features differently, and in
/// the shared one each would rebuild the plugin library the other left,
/// under the feet of the other test binaries that load it.
pub fn host_demo_exe() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("puter-js");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--offline",
            "-q",
            "-p",
            "host-demo",
            "--bin",
            "host-demo",
        ])
        .arg("--target-dir")
        .arg(&target)
        .arg("--message-format=json")
        .current_dir(workspace_root());
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let out = build.output().expect("run cargo build -p host-demo");
    assert!(
        out.status.success(),
        "cargo build -p host-demo failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "host-demo")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the host-demo executable")
}

/// A running `host-demo serve`; killed when dropped.
pub struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts serve with this Puter config and extra arguments (and
    /// environment), and waits for its URL.
    pub fn start(config: &Value, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let path = std::env::temp_dir().join(format!(
            "moonshot-serve-{}-{}.json",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&path, config.to_string()).expect("write the config");
        let mut command = Command::new(host_demo_exe());
        command
            .args(["serve", "--port", "0", "--config"])
            .arg(&path)
            .arg("--library")
            .arg(plugin_path())
            .args(args)
            .env_remove("MOONSHOT_API_KEY")
            .env_remove("MOONSHOT_BASE_URL")
            .env_remove("MOONSHOT_SERVE_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start host-demo serve");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = rx.recv_timeout(START_LIMIT);
        let _ = std::fs::remove_file(&path);
        let mut serve = Serve {
            child,
            addr: String::new(),
            log,
        };
        match url {
            Ok(url) => serve.addr = url.trim().trim_start_matches("http://").to_string(),
            Err(_) => panic!(
                "host-demo serve printed no URL; its stderr:\n{}",
                serve.log()
            ),
        }
        serve
    }

    /// What serve wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The process's peak resident memory so far, in MiB (Linux VmHWM).
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib / 1024
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A raw connection with read and write timeouts, for the hostile
    /// clients (slow, partial, oversized or pipelined requests) no HTTP
    /// client would be.
    pub fn connect(&self, limit: Duration) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect to serve");
        stream.set_read_timeout(Some(limit)).unwrap();
        stream.set_write_timeout(Some(limit)).unwrap();
        stream
    }

    /// One request (sent with `Connection: close`) over a fresh connection;
    /// the status and the whole answer.
    pub fn raw(&self, request: &str) -> Result<(u16, String), String> {
        raw_http(&self.addr, request)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One request over a fresh connection, with `Connection: close` added
/// after the request line (serve keeps connections alive otherwise); the
/// status and the whole answer. Raw on purpose: the hostile tests send
/// requests no HTTP client would (bad framing, odd headers) and read the
/// answer's exact bytes (kit::http serves well-formed exchanges).
pub fn raw_http(addr: &str, request: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let limit = Some(Duration::from_secs(10));
    stream
        .set_read_timeout(limit)
        .and_then(|()| stream.set_write_timeout(limit))
        .map_err(|e| e.to_string())?;
    let request = match request.split_once("\r\n") {
        Some((line, rest)) => format!("{line}\r\nConnection: close\r\n{rest}"),
        None => request.to_string(),
    };
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    Ok((status_of(&text)?, text))
}

/// The status code of an answer's status line.
pub fn status_of(text: &str) -> Result<u16, String> {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))
}
