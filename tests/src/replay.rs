//! Replays recordings of the real Moonshot service (tests/recordings/) from a
//! server on 127.0.0.1: each incoming request gets the next recorded
//! attempt, status line, headers in their recorded order and body bytes
//! exactly as recorded, then the connection closes (the recordings say
//! `Connection: close`).

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use moonshot_simulator::http::read_request;
use moonshot_simulator::RecordedRequest;
use parking_lot::Mutex;
use serde_json::Value;

/// One recorded response.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// One recording: what was asked and every attempt's answer, in order.
#[derive(Clone, Debug)]
pub struct Recording {
    pub probe_id: String,
    pub request: Value,
    pub attempts: Vec<Attempt>,
}

impl Recording {
    /// Loads `tests/recordings/<set>/<name>.json`.
    pub fn load(set: &str, name: &str) -> Recording {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("recordings")
            .join(set)
            .join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: Value = serde_json::from_str(&text).expect("a recording is JSON");
        let attempts = v["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .map(|a| Attempt {
                status: a["status"].as_u64().expect("status") as u16,
                headers: a["headers"]
                    .as_array()
                    .expect("headers")
                    .iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap().to_string(),
                            h[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
                body: a["body"].as_str().expect("body").to_string(),
            })
            .collect();
        Recording {
            probe_id: v["probe_id"].as_str().unwrap_or_default().to_string(),
            request: v["request"].clone(),
            attempts,
        }
    }

    /// The recorded value of a response header of attempt `n`.
    pub fn header(&self, n: usize, name: &str) -> Option<&str> {
        self.attempts[n]
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Attempt `n`'s body parsed.
    pub fn body(&self, n: usize) -> Value {
        serde_json::from_str(&self.attempts[n].body).expect("recorded bodies are JSON")
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    queue: Mutex<Vec<Attempt>>,
    received: Mutex<Vec<(Instant, RecordedRequest)>>,
}

/// The replay server; stops when dropped.
pub struct ReplayServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

fn answer(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let Ok(request) = read_request(&mut reader, || Ok(())) else {
        return;
    };
    shared.received.lock().push((Instant::now(), request));
    let next = {
        let mut queue = shared.queue.lock();
        (!queue.is_empty()).then(|| queue.remove(0))
    };
    let Some(attempt) = next else {
        let _ = stream.write_all(
            b"HTTP/1.1 599 Recording Exhausted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", attempt.status, reason(attempt.status));
    for (name, value) in &attempt.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(attempt.body.as_bytes());
    let _ = stream.flush();
}

impl ReplayServer {
    /// Serves `recording`'s attempts, one per request, in order.
    pub fn start(recording: &Recording) -> ReplayServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        *shared.queue.lock() = recording.attempts.clone();
        let worker = shared.clone();
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if worker.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    answer(stream, &worker);
                }
            }
        });
        ReplayServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// What a plugin instance uses as `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests received so far, with when each arrived.
    pub fn received(&self) -> Vec<(Instant, RecordedRequest)> {
        self.shared.received.lock().clone()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        // Unblock accept() with one last connection, then join.
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}
