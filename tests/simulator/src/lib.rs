//! A Moonshot-shaped (OpenAI-compatible) chat-completions upstream on 127.0.0.1, for
//! integration tests and the demo host's offline mode.
//!
//! Plain std networking: one accept thread, one thread per connection, one request per
//! connection (`Connection: close`). Scripted [`Reply`]s answer chat completions in FIFO
//! order; with none queued a deterministic, Kimi-like default answers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod http;
mod kimi;
mod respond;
mod rules;
mod script;
mod server;
mod state;
mod tls;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use script::{Reply, ReplySpec, ToolCallSpec, UsageShape, UsageSpec};
pub use tls::TestCa;

use state::Shared;

/// A running simulator; shut down by [`Simulator::shutdown`] or on drop.
pub struct Simulator {
    addr: SocketAddr,
    /// "https" when serving TLS.
    scheme: &'static str,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start() -> std::io::Result<Simulator> {
        Simulator::start_with(None)
    }

    /// Binds 127.0.0.1:0 and serves HTTPS with `ca`'s server certificate.
    pub fn start_tls(ca: &TestCa) -> std::io::Result<Simulator> {
        Simulator::start_with(Some(ca.server.clone()))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accept = thread::Builder::new()
            .name("moonshot-sim-accept".to_string())
            .spawn(move || server::accept_loop(listener, worker, tls))?;
        Ok(Simulator {
            addr,
            scheme,
            shared,
            accept: Some(accept),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// "http://127.0.0.1:PORT/v1" (https when serving TLS) — what a client uses as base_url.
    pub fn base_url(&self) -> String {
        format!("{}://{}/v1", self.scheme, self.addr)
    }

    /// The base URL naming the simulator by `host` instead of its IP
    /// address, e.g. "localhost" (which must resolve to 127.0.0.1).
    pub fn base_url_for(&self, host: &str) -> String {
        format!("{}://{host}:{}/v1", self.scheme, self.addr.port())
    }

    /// Queue a scripted reply for the next POST /v1/chat/completions (FIFO). When the queue is empty the default Kimi behaviour answers.
    pub fn push(&self, reply: Reply) {
        self.shared.push(reply);
    }

    /// From now on every route answers 401 `invalid_authentication_error`
    /// unless the request carries `Authorization: Bearer <key>`; `None`
    /// accepts any key again (the default).
    pub fn require_key(&self, key: Option<&str>) {
        *self.shared.required_key.lock() = key.map(str::to_string);
    }

    /// Every request received so far, in arrival order (all paths).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Only the chat-completions requests' bodies parsed as JSON (Value::Null when unparsable).
    pub fn chat_bodies(&self) -> Vec<serde_json::Value> {
        self.shared
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.route() == "/v1/chat/completions")
            .map(|r| r.json().unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// Blocks until at least n requests arrived or the timeout passed; returns whether they did.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_for(n, timeout)
    }

    /// Stops accepting, closes connections it can, joins its threads. Also done by Drop.
    pub fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.begin_stop();
        // Wake the blocking accept() with one connection of our own.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
            let _ = accept.join();
        }
        self.shared.close_all();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Request method, e.g. "POST".
    pub method: String,
    /// Request target as sent, query included.
    pub path: String,
    /// Headers in arrival order; names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies decoded).
    pub body: Vec<u8>,
    /// When the request's head had been read: gaps between requests show a
    /// client's retry waits.
    pub received: Instant,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    /// The path without its query string.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}
