//! Child processes whose output a test reads line by line.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A child process whose stdout lines arrive on a channel and whose stderr
/// is kept for the failure report; killed when dropped.
pub struct Process {
    child: Child,
    name: &'static str,
}

/// What a process printed on stderr (and what `finish` still read).
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<String>>);

impl Log {
    pub fn push(&self, line: &str) {
        let mut text = self.0.lock().unwrap();
        text.push_str(line);
        text.push('\n');
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

impl Process {
    pub fn spawn(mut command: Command, name: &'static str) -> (Process, Receiver<String>, Log) {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Log::default();
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.push(&line);
            }
        });
        (Process { child, name }, rx, log)
    }

    pub fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("piped stdin")
    }

    /// Lets the process end on its own (its stdout closes when it exits),
    /// keeping what it still prints; kills it if it does not within a bound.
    pub fn finish(&mut self, out: &Receiver<String>, log: &Log) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match out.recv_timeout(left) {
                Ok(line) => log.push(&line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    log.push(&format!("[{} did not exit; killed]", self.name));
                    break;
                }
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
