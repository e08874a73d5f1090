//! Helpers shared by the `faults_*` test binaries: hostile upstream replies
//! built from raw bytes, a stopwatch for one request, and a keep-alive
//! upstream (the simulator closes every connection, so it cannot show what
//! happens on a pooled, reused one). Every part, result and error these
//! helpers collect is checked against include/schemas/.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use host_demo::plugin::{Event, Instance, Request};
use moonshot_simulator::Reply;
use moonshot_tests::schemas;
use serde_json::{json, Value};

/// Long enough that only a bug lets a test wait it out.
pub const STALL: Duration = Duration::from_secs(30);

/// How long a test waits for anything the plugin promised to do promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The head of a close-delimited SSE response.
pub const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nx-request-id: raw-req-1\r\nConnection: close\r\n\r\n";

/// One Moonshot stream chunk carrying `text` as content.
pub fn text_chunk(text: &str) -> String {
    json!({"id":"chatcmpl-f","object":"chat.completion.chunk","model":"kimi-k2.6",
           "choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
    .to_string()
}

/// `data: <chunk>\n\n` for each text.
pub fn events(texts: &[&str]) -> String {
    texts
        .iter()
        .map(|t| format!("data: {}\n\n", text_chunk(t)))
        .collect()
}

/// A raw reply: `head`, then `body` in one write, then silence for `hold`.
pub fn raw(head: &str, body: &str, hold: Duration) -> Reply {
    Reply::Raw {
        head: head.into(),
        body: vec![body.as_bytes().to_vec()],
        delay: Duration::ZERO,
        hold_open: hold,
    }
}

/// A stream that sends `texts` and then goes silent for `STALL`.
pub fn silent_after(texts: &[&str]) -> Reply {
    raw(SSE_HEAD, &events(texts), STALL)
}

/// An upstream that reads the request and never answers at all.
pub fn mute() -> Reply {
    Reply::Raw {
        head: String::new(),
        body: Vec::new(),
        delay: Duration::ZERO,
        hold_open: STALL,
    }
}

/// A streaming request.
pub fn stream_request(text: &str) -> Value {
    json!({"messages":[{"role":"user","content":text}],"stream":true})
}

/// What one request reported, with timings.
#[derive(Debug)]
pub struct Timed {
    pub parts: Vec<Value>,
    pub status: i32,
    pub result: Value,
    /// From `complete` to `on_done`.
    pub elapsed: Duration,
}

impl Timed {
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect()
    }
}

/// Collects a started request's events until `on_done` (bounded by PATIENCE).
pub fn finish(started: Instant, events: &mpsc::Receiver<Event>) -> Timed {
    let mut parts = Vec::new();
    loop {
        match events.recv_timeout(PATIENCE) {
            Ok(Event::Part(p)) => parts.push(part(&p)),
            Ok(Event::Done(status, result)) => {
                let elapsed = started.elapsed();
                let result = serde_json::from_str(&result).expect("the result is JSON");
                schemas::assert_final(status, &result);
                return Timed {
                    parts,
                    status,
                    result,
                    elapsed,
                };
            }
            Err(_) => panic!("no on_done within {PATIENCE:?}; parts so far: {parts:?}"),
        }
    }
}

/// Runs `request` to its end, timing it.
pub fn timed(instance: &Instance, request: &Value) -> Timed {
    let started = Instant::now();
    let (_handle, rx) = instance
        .complete(&request.to_string(), None)
        .unwrap_or_else(|(status, err)| panic!("complete refused ({status}): {err}"));
    finish(started, &rx)
}

/// Starts `request`; panics if it is refused.
pub fn start(instance: &Instance, request: &Value) -> (Request, mpsc::Receiver<Event>) {
    instance
        .complete(&request.to_string(), None)
        .unwrap_or_else(|(status, err)| panic!("complete refused ({status}): {err}"))
}

/// Waits for the next part of a running request.
pub fn next_part(events: &mpsc::Receiver<Event>) -> Value {
    match events.recv_timeout(PATIENCE) {
        Ok(Event::Part(p)) => part(&p),
        other => panic!("expected a part, got {other:?}"),
    }
}

/// A part as `on_chunk` delivered it, parsed and checked against
/// include/schemas/stream-part.schema.json.
pub fn part(text: &str) -> Value {
    let part = serde_json::from_str(text).expect("parts are JSON");
    schemas::assert_part(&part);
    part
}

/// The port of a listener that was just closed: connecting to it is refused.
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An HTTP/1.1 upstream on 127.0.0.1 that keeps connections alive and
/// answers each request with the next scripted response, so the plugin's
/// agent pools and reuses one connection across requests.
pub struct KeepAlive {
    pub addr: SocketAddr,
    /// One message per accepted connection.
    pub connections: mpsc::Receiver<()>,
    /// One message per request read, with its body.
    pub requests: mpsc::Receiver<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

/// A scripted keep-alive response: bytes to write, then (optionally) a
/// channel to wait on before writing `rest`.
pub struct Scripted {
    pub first: Vec<u8>,
    pub gate: Option<mpsc::Receiver<()>>,
    pub rest: Vec<u8>,
}

impl Scripted {
    pub fn whole(bytes: Vec<u8>) -> Scripted {
        Scripted {
            first: bytes,
            gate: None,
            rest: Vec::new(),
        }
    }
}

/// A keep-alive JSON response.
pub fn keep_alive_json(body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The head of a keep-alive chunked SSE response.
pub const CHUNKED_SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

/// One HTTP chunk.
pub fn http_chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

impl KeepAlive {
    /// Serves `script` in order over however many connections the client opens.
    pub fn start(script: Vec<Scripted>) -> KeepAlive {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (conn_tx, connections) = mpsc::channel();
        let (req_tx, requests) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut script = script.into_iter();
            // One connection at a time is enough for these tests: the client
            // reuses it, and a second connection is reported and served too.
            while let Some(first) = script.next() {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let _ = conn_tx.send(());
                let _ = stream.set_read_timeout(Some(STALL));
                let mut pending = Some(first);
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                while let Some(reply) = pending.take().or_else(|| script.next()) {
                    let Some(body) = read_request(&mut reader) else {
                        // The client closed: the reply goes to the next connection.
                        pending = Some(reply);
                        break;
                    };
                    let _ = req_tx.send(body);
                    if writer.write_all(&reply.first).is_err() {
                        break;
                    }
                    if let Some(gate) = reply.gate {
                        let _ = gate.recv_timeout(STALL);
                    }
                    if writer.write_all(&reply.rest).is_err() {
                        break;
                    }
                }
                if let Some(reply) = pending {
                    script = std::iter::once(reply)
                        .chain(script)
                        .collect::<Vec<_>>()
                        .into_iter();
                }
            }
        });
        KeepAlive {
            addr,
            connections,
            requests,
            thread: Some(thread),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        // The thread ends once its script is used up or its peer closes.
        if let Some(thread) = self.thread.take() {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Reads one request with a Content-Length body; None when the peer closed.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// Entries of /proc/self/task: the threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// Threads of this process whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// A loopback listener whose accept queue is full, so a new connection's SYN
/// is dropped and `connect` hangs until its timeout: Linux drops SYNs to a
/// listener whose accept queue is full (the listener never accepts). The
/// queue is filled until a probe connection times out, whatever the backlog.
pub struct Saturated {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _held: Vec<TcpStream>,
}

pub fn saturated_listener() -> Saturated {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut held = Vec::new();
    for _ in 0..10_000 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => held.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Saturated {
                    addr,
                    _listener: listener,
                    _held: held,
                }
            }
            Err(e) => panic!("filling the accept queue failed after {}: {e}", held.len()),
        }
    }
    panic!("the accept queue never filled: this kernel does not drop SYNs to a full queue");
}

/// Whether a socket of this host is in SYN_SENT towards 127.0.0.1:`port`
/// (read from /proc/net/tcp), polled until `timeout`: the one sign that a
/// connect is under way, since the peer never accepts.
pub fn wait_for_syn_sent(port: u16, timeout: Duration) -> bool {
    let remote = format!("0100007F:{port:04X}");
    let deadline = Instant::now() + timeout;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let found = table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"02")
        });
        if found {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        // Polling a kernel table: there is nothing to wait on.
        thread::sleep(Duration::from_millis(1));
    }
}
