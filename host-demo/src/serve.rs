//! `host-demo serve`: the demo host as a Puter driver endpoint on 127.0.0.1,
//! so the unmodified puter.js client chats through the plugin.
//!
//!   POST /drivers/call                   puter-chat-completion: complete, models, list
//!   GET  /puterai/chat/models/details    {"models": [...]}, what puter.ai.listModels() reads
//!
//! Plain std networking: one thread per connection (at most
//! `MAX_CONNECTIONS`), one request per connection.
//!
//! The endpoint spends the configured Moonshot key, so it answers only
//! requests addressed to a loopback name (no DNS rebinding) and, from
//! browsers, only pages served from loopback origins (or the fixed origin
//! puter.js's Node transport sends): another web site cannot make the
//! visitor's browser chat on the host's bill.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use host_demo::registry::Registry;
use serde_json::json;

mod driver;
mod http;

use http::{Headers, ReadError, Request};

/// Connections served at once; more are answered 503 straight away.
const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request, and to take each write.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unread request body is drained after an early refusal, so
/// closing does not reset the connection before the client reads why.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The Origin puter.js's Node transport (its XMLHttpRequest shim) puts on
/// every request, whatever the page.
const PUTER_JS_NODE_ORIGIN: &str = "https://puter.work";

/// Serves until the process is stopped. Prints the bound URL alone on one
/// line of stdout; everything else goes to stderr.
pub fn run(registry: &Registry, port: u16) -> Result<ExitCode, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "host-demo: serving Puter's driver protocol (POST /drivers/call, GET /puterai/chat/models/details); \
         point puter.js at it with globalThis.PUTER_API_ORIGIN = 'http://{addr}'"
    );
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "http://{addr}").and_then(|()| stdout.flush());

    let open = AtomicUsize::new(0);
    thread::scope(|scope| {
        for incoming in listener.incoming() {
            let Ok(stream) = incoming else {
                // E.g. out of file descriptors: back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            if open.load(Ordering::Acquire) >= MAX_CONNECTIONS {
                refuse_busy(stream);
                continue;
            }
            let slot = Slot::take(&open);
            let spawned = thread::Builder::new()
                .name("host-demo-serve".into())
                .spawn_scoped(scope, move || {
                    let _slot = slot;
                    serve_connection(stream, registry);
                });
            if let Err(e) = spawned {
                eprintln!("host-demo: cannot start a connection thread: {e}");
            }
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// One counted connection; the count drops when the slot does (even if the
/// thread never started).
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    fn take(open: &'a AtomicUsize) -> Slot<'a> {
        open.fetch_add(1, Ordering::AcqRel);
        Slot(open)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let answer = driver::Answer::error(503, "too_many_requests", "too many connections; try again");
    let _ = driver::send(&mut stream, &answer, &Vec::new());
    let _ = stream.shutdown(Shutdown::Write);
}

fn serve_connection(stream: TcpStream, registry: &Registry) {
    if stream.set_read_timeout(Some(READ_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let request = http::read_request(&mut reader, || {
        (&stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
    });
    let request = match request {
        Ok(request) => request,
        Err(ReadError::Gone) => return,
        Err(ReadError::Reject(status, message)) => {
            let answer = driver::Answer::error(status, "bad_request", message);
            let _ = driver::send(&mut writer, &answer, &Vec::new());
            let _ = stream.shutdown(Shutdown::Write);
            drain(reader);
            return;
        }
    };
    match respond(&mut writer, &request, registry) {
        Ok(served) => eprintln!(
            "host-demo: {} {} {}-> {}",
            request.method,
            request.route(),
            if served.note.is_empty() {
                String::new()
            } else {
                format!("{} ", served.note)
            },
            served.status
        ),
        Err(e) => eprintln!(
            "host-demo: {} {}: the client went away ({e})",
            request.method,
            request.route()
        ),
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads and drops what the client still sends, for a bounded time.
fn drain(mut reader: BufReader<&TcpStream>) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || reader.get_ref().set_read_timeout(Some(left)).is_err() {
            return;
        }
        if matches!(reader.read(&mut buffer), Ok(0) | Err(_)) {
            return;
        }
    }
}

fn respond(
    w: &mut impl Write,
    request: &Request,
    registry: &Registry,
) -> std::io::Result<driver::Served> {
    let done = |status, note: &str| driver::Served {
        status,
        note: note.to_string(),
    };
    let refuse = |w: &mut _, status, code, message: &str, headers: &Headers| {
        let answer = driver::Answer::error(status, code, message);
        driver::send(w, &answer, headers).map(|status| done(status, ""))
    };
    if !request.header("host").is_none_or(is_loopback_host) {
        return refuse(
            w,
            403,
            "forbidden",
            "this host answers only requests addressed to 127.0.0.1 or localhost",
            &Vec::new(),
        );
    }
    let origin = request.header("origin");
    if origin.is_some_and(|o| !allowed_origin(o)) {
        return refuse(
            w,
            403,
            "forbidden",
            "pages from this origin may not use this host: serve the page from localhost",
            &Vec::new(),
        );
    }
    let mut headers = cors_headers(origin);
    match (request.method.as_str(), request.route()) {
        ("OPTIONS", _) => {
            headers.push(("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()));
            headers.push((
                "Access-Control-Allow-Headers",
                request
                    .header("access-control-request-headers")
                    .unwrap_or("Content-Type, Authorization")
                    .to_string(),
            ));
            headers.push(("Access-Control-Max-Age", "600".into()));
            http::write_empty(w, 204, &headers)?;
            Ok(done(204, "preflight"))
        }
        ("POST", "/drivers/call") => driver::call(w, &request.body, registry, &headers),
        ("GET", "/puterai/chat/models/details") => {
            let body = json!({"models": driver::models(registry)});
            http::write_json(w, 200, &headers, &body)?;
            Ok(done(200, ""))
        }
        (_, path @ ("/drivers/call" | "/puterai/chat/models/details")) => {
            let allow = if path == "/drivers/call" {
                "POST"
            } else {
                "GET"
            };
            headers.push(("Allow", allow.into()));
            let message = format!("{path} takes {allow}");
            refuse(w, 405, "method_not_allowed", &message, &headers)
        }
        (method, path) => {
            let message = format!("no route for {method} {path}");
            refuse(w, 404, "not_found", &message, &headers)
        }
    }
}

/// `localhost`, `127.0.0.1` or `[::1]`, with an optional numeric port.
fn is_loopback_host(host_port: &str) -> bool {
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return false,
        },
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok
        && matches!(
            host.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "::1"
        )
}

/// Loopback pages (any port, http or https) and puter.js's Node transport.
fn allowed_origin(origin: &str) -> bool {
    origin == PUTER_JS_NODE_ORIGIN
        || origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(is_loopback_host)
}

/// What lets an allowed page read the answer (puter.js sends credentials).
fn cors_headers(origin: Option<&str>) -> Headers {
    match origin {
        Some(origin) => vec![
            ("Access-Control-Allow-Origin", origin.to_string()),
            ("Access-Control-Allow-Credentials", "true".into()),
            ("Vary", "Origin".into()),
        ],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_only() {
        for host in [
            "127.0.0.1:4100",
            "localhost",
            "LOCALHOST:80",
            "[::1]:4100",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:4100",
            "localhost.evil.example",
            "127.0.0.1.nip.io:4100",
            "127.0.0.1:41x",
            "127.0.0.1:",
            "[::1",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn origins_from_loopback_pages_and_puter_js_under_node() {
        for origin in [
            "http://localhost:5173",
            "https://127.0.0.1",
            "http://[::1]:8080",
            "https://puter.work",
        ] {
            assert!(allowed_origin(origin), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "http://localhost.evil.example",
            "null",
            "file://",
            "https://puter.work.evil.example",
        ] {
            assert!(!allowed_origin(origin), "{origin}");
        }
        assert!(cors_headers(None).is_empty());
        assert_eq!(
            cors_headers(Some("http://localhost:5173"))[0],
            (
                "Access-Control-Allow-Origin",
                "http://localhost:5173".into()
            )
        );
    }
}
