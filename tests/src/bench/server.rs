//! The bench upstream: a minimal, fast HTTP/1.1 server on 127.0.0.1 that
//! answers every `POST .../chat/completions` with the precomputed stream.
//!
//! It runs in its own process (`bench --serve`), so the clients' CPU and
//! memory figures never include it. One thread per connection, with
//! keep-alive: a client that reuses its connection costs the server one
//! `write` of the whole precomputed response per request (fast mode). Paths
//! under `/slow/` stream the same bytes in bursts spaced out in time (the
//! scale run). `GET /__stats` reports connections and requests served.
//! The server exits when its standard input closes (its parent is gone).
//!
//! A connection holds exactly one file descriptor: the scale run keeps
//! 10,000 of them open at once, and the server inherits the bench's
//! RLIMIT_NOFILE (20,000 under the documented `ulimit -n 20000`). A second
//! descriptor per connection (a `try_clone` for the reader) ran it out of
//! descriptors a few connections short of 10,000. Failures to accept or to
//! set up a connection are reported on standard error, never dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::canned_stream::CannedStream;

/// How the server paces the `/slow/` streams.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// SSE events written together.
    pub burst: usize,
    /// Pause after each burst.
    pub interval: Duration,
}

struct Shared {
    answer: CannedStream,
    pacing: Pacing,
    connections: AtomicU64,
    requests: AtomicU64,
}

/// Serves until standard input closes. Prints the port on its own line on
/// standard output once listening.
pub fn serve(chunks: usize, pacing: Pacing) -> ! {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    // std listens with a modest backlog; a burst of 1,000 connects wants more.
    // SAFETY: a valid listening socket; listen() again only resizes its queue.
    unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    let port = listener.local_addr().expect("local addr").port();
    println!("{port}");
    std::io::stdout().flush().ok();

    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });

    let shared = Arc::new(Shared {
        answer: CannedStream::new(chunks),
        pacing,
        connections: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    });
    // Several acceptors: one that also starts a thread per connection falls
    // behind a burst of 10,000 connects, the accept queue (somaxconn, 4096
    // here) overflows, and the kernel drops the handshakes' last ACKs.
    for _ in 1..ACCEPTORS {
        let (listener, shared) = (
            listener.try_clone().expect("clone the listener"),
            shared.clone(),
        );
        std::thread::spawn(move || accept(&listener, &shared));
    }
    accept(&listener, &shared)
}

/// Threads accepting connections on the one listener.
const ACCEPTORS: usize = 4;

fn accept(listener: &TcpListener, shared: &Arc<Shared>) -> ! {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // The connection stays in the accept queue; EMFILE and the
                // like would otherwise turn this loop into a busy spin.
                eprintln!("bench upstream: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                if let Err(e) = stream.set_nodelay(true) {
                    eprintln!("bench upstream: cannot set up a connection: {e}");
                    return;
                }
                // Errors mid-exchange are the client's to report (it went
                // away, or it saw the cut).
                let _ = connection(&stream, &shared);
            });
        if let Err(e) = spawned {
            eprintln!("bench upstream: cannot start a connection thread: {e}");
        }
    }
    unreachable!("incoming() never ends")
}

/// Serves one connection's requests. Reader and writer share the one
/// socket (`Read` and `Write` are implemented for `&TcpStream`): no second
/// descriptor per connection.
fn connection(stream: &TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(8 * 1024, stream);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut content_length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        let mut body = vec![0u8; content_length];
        reader.read_exact(&mut body)?;

        if path == "/__stats" {
            let text = format!(
                "{{\"connections\":{},\"requests\":{}}}",
                shared.connections.load(Ordering::Relaxed),
                shared.requests.load(Ordering::Relaxed)
            );
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )?;
        } else if path.ends_with("/chat/completions") {
            shared.requests.fetch_add(1, Ordering::Relaxed);
            if path.starts_with("/slow/") {
                paced(writer, &shared.answer, shared.pacing)?;
            } else {
                writer.write_all(&shared.answer.response)?;
            }
        } else {
            let text = "{\"error\":{\"type\":\"not_found\",\"message\":\"no such path\"}}";
            write!(
                writer,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )?;
        }
        if close {
            return Ok(());
        }
    }
}

/// The same response as the fast mode, written a burst at a time.
fn paced(mut writer: &TcpStream, answer: &CannedStream, pacing: Pacing) -> std::io::Result<()> {
    let mut out = answer.head.clone();
    for burst in answer.frames.chunks(pacing.burst.max(1)) {
        for frame in burst {
            out.extend_from_slice(frame);
        }
        writer.write_all(&out)?;
        out.clear();
        std::thread::sleep(pacing.interval);
    }
    writer.write_all(answer.trailer)
}

/// Asks a running bench upstream for its counters.
pub fn stats(port: u16) -> Option<(u64, u64)> {
    let url = format!("http://127.0.0.1:{port}/__stats");
    let (_, body) = crate::kit::http::request("GET", &url, None).ok()?;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some((value["connections"].as_u64()?, value["requests"].as_u64()?))
}
