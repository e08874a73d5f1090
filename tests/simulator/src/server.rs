//! The accept loop, one thread per connection, and request routing.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{self, ReadError};
use crate::kimi;
use crate::respond;
use crate::rules;
use crate::script::Reply;
use crate::state::Shared;
use crate::tls::Conn;
use crate::RecordedRequest;

/// Read and write timeout of accepted sockets.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; more are answered 503 right away.
const MAX_CONNECTIONS: usize = 256;
/// How long an unread request body is drained after an early error reply.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Accepts until shutdown, handing each connection to its own thread.
pub(crate) fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    for incoming in listener.incoming() {
        if shared.is_stopping() {
            break;
        }
        let stream = match incoming {
            Ok(stream) => stream,
            Err(_) => {
                // E.g. out of file descriptors: back off briefly instead of spinning.
                if !shared.pause(Duration::from_millis(10)) {
                    break;
                }
                continue;
            }
        };
        if shared.open_connections() >= MAX_CONNECTIONS {
            // Over TLS a plain-text 503 would be garbage: just close.
            if tls.is_none() {
                refuse(stream, &shared);
            }
            continue;
        }
        let Ok(closer) = stream.try_clone() else {
            continue;
        };
        let id = shared.register(closer);
        let worker = Arc::clone(&shared);
        let tls = tls.clone();
        let spawned = thread::Builder::new()
            .name(format!("moonshot-sim-conn-{id}"))
            .spawn(move || {
                serve(stream, &worker, tls.as_ref());
                worker.unregister(id);
            });
        match spawned {
            Ok(handle) => shared.add_thread(handle),
            Err(_) => shared.unregister(id),
        }
    }
}

/// Answers 503 on an over-limit connection without reading it.
fn refuse(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let reply = Reply::error(
        503,
        "engine_overloaded_error",
        "simulator: too many connections",
    );
    let _ = respond::send(&mut stream, reply, shared);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Serves the one request of a connection (over TLS when `tls` is given),
/// then closes it.
fn serve(stream: TcpStream, shared: &Shared, tls: Option<&Arc<rustls::ServerConfig>>) {
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    // The socket itself stays here for timeouts and shutdown.
    let Ok(io) = stream.try_clone() else { return };
    let conn = match tls {
        None => Conn::Plain(io),
        Some(config) => match Conn::tls(io, config) {
            Ok(conn) => conn,
            Err(_) => return,
        },
    };
    let conn = &conn;
    let mut reader = BufReader::new(conn);
    let mut writer = conn;
    let read = http::read_request(&mut reader, || {
        let mut w = conn;
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        w.flush()
    });
    match read {
        Ok(request) => {
            let reply = route(&request, shared);
            shared.record(request);
            let _ = respond::send(&mut writer, reply, shared);
        }
        Err(ReadError::Gone) => {}
        Err(ReadError::Reject(status, message)) => {
            let reply = Reply::error(status, "invalid_request_error", &message);
            let _ = respond::send(&mut writer, reply, shared);
            conn.finish();
            let _ = stream.shutdown(Shutdown::Write);
            drain(reader, &stream, shared);
            return;
        }
    }
    conn.finish();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads and drops what the client still sends (bounded in time), so closing the socket with
/// unread data does not reset the connection before the client reads the error reply.
fn drain(mut reader: BufReader<&Conn>, socket: &TcpStream, shared: &Shared) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut buf = [0u8; 16 * 1024];
    while !shared.is_stopping() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A chat request's reply: the next scripted one, else the default behaviour.
fn chat(request: &RecordedRequest, shared: &Shared) -> Reply {
    match shared.pop() {
        Some(reply) => {
            if let Some(body) = request.json() {
                shared.kimi.note_cache_key(&body);
            }
            reply
        }
        None => shared.kimi.chat(&request.body),
    }
}

/// Picks the reply for a request: a scripted one for chat completions when queued, else the
/// default behaviour.
fn route(request: &RecordedRequest, shared: &Shared) -> Reply {
    let path = request.route();
    if let Some(key) = shared.required_key.lock().as_deref() {
        let bearer = format!("Bearer {key}");
        if request.header("authorization") != Some(bearer.as_str()) {
            return Reply::error(
                401,
                "invalid_authentication_error",
                "Invalid Authentication",
            );
        }
    }
    match (request.method.as_str(), path) {
        ("POST", "/v1/chat/completions") => match request.json().map(|body| rules::check(&body)) {
            // A body breaking Moonshot's rules gets its 400 and leaves the script alone.
            Some(Err(refusal)) => refusal,
            _ => chat(request, shared),
        },
        ("GET", "/v1/models") => kimi::models(),
        ("GET", "/v1/users/me/balance") => kimi::balance(),
        ("POST", "/v1/tokenizers/estimate-token-count") => shared.kimi.estimate(&request.body),
        (method, _) => Reply::error(
            404,
            "resource_not_found_error",
            &format!("simulator: no route for {method} {path}"),
        ),
    }
}
