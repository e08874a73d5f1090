//! `host-demo serve`: the demo host as a Puter driver endpoint on 127.0.0.1,
//! so the unmodified puter.js client chats through the plugin.
//!
//!   POST /drivers/call                   puter-chat-completion: complete, models, list
//!   GET  /puterai/chat/models/details    {"models": [...]}, what puter.ai.listModels() reads
//!
//! HTTP/1.1 by hyper on tokio (keep-alive, bounded heads, chunked NDJSON
//! streams). An async server notices a client's socket closing while the
//! plugin is still silent, and that closing cancels the plugin request.
//!
//! The endpoint spends the configured Moonshot key, so it answers only
//! requests addressed to a loopback name (no DNS rebinding) and, from
//! browsers, only pages served from loopback origins or from origins the
//! operator named with `--allow-origin`: another web site cannot make the
//! visitor's browser chat on the host's bill. `--auth-token` (or
//! MOONSHOT_SERVE_TOKEN) further limits driver calls to those carrying the
//! token. Both checks run on the request head, before any body byte is read.

use std::convert::Infallible;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use host_demo::registry::Registry;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HOST, ORIGIN};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::args::Options;

mod access;
mod body;
mod call;
mod driver;
mod http;
mod relay;
mod slots;
mod stalled_write;

use access::Policy;
use body::{BodyError, Budget};
use http::{Body, Headers};
use slots::{Slot, Slots};

/// Connections served at once. A newcomer beyond takes the place of one
/// waiting for a request head; when all are in requests it gets a 503.
const MAX_CONNECTIONS: usize = 256;
/// Time a client has for a whole request head, counted from when the
/// connection (or its previous answer) is ready for one: slow or idle
/// connections give their slot back.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// The largest request head, request line and headers together.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body, whatever its transfer encoding; and the time
/// the client has to send all of it once its head is accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;
const BODY_DEADLINE: Duration = Duration::from_secs(30);
/// Body bytes all connections may hold at once: three bodies of the
/// largest size. More at once get 503 instead of the memory.
const BODY_BUDGET: usize = 3 * MAX_BODY;
/// How long one write to the client may stay blocked (it stopped reading).
const WRITE_STALL: Duration = Duration::from_secs(60);
/// The variable that can carry `--auth-token`, out of sight of `ps`.
const TOKEN_VARIABLE: &str = "MOONSHOT_SERVE_TOKEN";

/// What every connection shares.
struct Shared {
    registry: Registry,
    policy: Policy,
    bodies: Budget,
}

/// Serves until the process is stopped. Prints the bound URL alone on one
/// line of stdout; everything else goes to stderr.
pub fn run(registry: Registry, port: u16, options: &Options) -> Result<ExitCode, String> {
    let token = options.auth_token.clone().or_else(|| {
        std::env::var(TOKEN_VARIABLE)
            .ok()
            .filter(|t| !t.trim().is_empty())
    });
    let policy = Policy::new(&options.allow_origins, token)?;
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("host-demo-serve")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
    let listener = {
        let _inside = runtime.enter();
        TcpListener::from_std(listener).map_err(|e| e.to_string())?
    };
    eprintln!(
        "host-demo: serving Puter's driver protocol (POST /drivers/call, GET /puterai/chat/models/details); \
         point puter.js at it with globalThis.PUTER_API_ORIGIN = 'http://{addr}'{}",
        if policy.token.is_some() {
            " and call puter.setAuthToken(<the serve token>)"
        } else {
            ""
        }
    );
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "http://{addr}").and_then(|()| stdout.flush());

    let shared = Arc::new(Shared {
        registry,
        policy,
        bodies: Budget::new(BODY_BUDGET),
    });
    runtime.block_on(accept(listener, shared));
    Ok(ExitCode::SUCCESS)
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Slots::new(MAX_CONNECTIONS);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (slots, shared) = (slots.clone(), shared.clone());
        tokio::spawn(async move {
            match slots.take().await {
                Some(slot) => serve_connection(stream, shared, slot).await,
                None => refuse_busy(stream),
            }
        });
    }
}

/// A fixed answer for a connection over the bound, written only if the
/// socket takes it at once; the connection then closes.
fn refuse_busy(stream: TcpStream) {
    let answer =
        driver::DriverReply::error(503, "too_many_requests", "too many connections; try again");
    let body = answer.body.to_string();
    let message = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(message.as_bytes());
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, slot: Slot) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stalled_write::WriteDeadline::new(stream, WRITE_STALL));
    let conn = slot.conn.clone();
    let service = service_fn(move |request| {
        let shared = shared.clone();
        // From the head's arrival to the answer's last byte, the
        // connection is in a request and is not evicted.
        let in_request = conn.request();
        async move {
            let response = handle(request, &shared).await;
            Ok::<_, Infallible>(response.map(|body| http::Guarded::boxed(body, in_request)))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_DEADLINE)
        .max_buf_size(MAX_HEAD)
        .title_case_headers(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    // Ends when the client closes, the head deadline passes, a write
    // stalls, or a newcomer needs the place while this one waits for a
    // head; whatever was in flight is dropped, which cancels it.
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            () = slot.conn.evicted.notified() => {
                if !slot.conn.in_request() {
                    break;
                }
            }
        }
    }
}

async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let method = request.method().clone();
    let route = request.uri().path().to_string();
    let (response, note) = respond(request, shared).await;
    eprintln!(
        "host-demo: {method} {route} {}-> {}",
        if note.is_empty() {
            String::new()
        } else {
            format!("{note} ")
        },
        response.status().as_u16()
    );
    response
}

/// A refusal in Puter's error shape. `close` ends the connection after it:
/// for refusals sent before the body was read.
fn refuse(
    status: u16,
    code: &str,
    message: &str,
    headers: &Headers,
    close: bool,
) -> Response<Body> {
    let mut headers = headers.clone();
    if close {
        headers.push(("Connection", "close".into()));
    }
    driver::send(&driver::DriverReply::error(status, code, message), &headers)
}

async fn respond(request: Request<Incoming>, shared: &Shared) -> (Response<Body>, String) {
    let done = |response| (response, String::new());
    // A header that is not visible ASCII reads as "", which no check accepts.
    let header = |name| {
        request
            .headers()
            .get(name)
            .map(|v: &hyper::header::HeaderValue| v.to_str().unwrap_or(""))
    };
    let none = Headers::new();
    if !header(HOST).is_none_or(access::is_loopback_host) {
        let message = "this host answers only requests addressed to 127.0.0.1 or localhost";
        return done(refuse(403, "forbidden", message, &none, true));
    }
    let origin = header(ORIGIN);
    if origin.is_some_and(|o| !shared.policy.allows_origin(o)) {
        let message = "pages from this origin may not use this host: serve the page from localhost, or start serve with --allow-origin";
        return done(refuse(403, "forbidden", message, &none, true));
    }
    let mut headers = access::cors_headers(origin);
    let method = request.method().as_str().to_string();
    let route = request.uri().path().to_string();
    match (method.as_str(), route.as_str()) {
        ("OPTIONS", _) => {
            let requested = header(hyper::header::ACCESS_CONTROL_REQUEST_HEADERS);
            headers.push(("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()));
            headers.push((
                "Access-Control-Allow-Headers",
                access::allow_headers(requested),
            ));
            headers.push(("Access-Control-Max-Age", "600".into()));
            (http::empty(204, &headers), "preflight".into())
        }
        ("POST", "/drivers/call") => {
            let bearer = header(AUTHORIZATION)
                .and_then(access::bearer)
                .map(str::to_string);
            if bearer.is_some() && !shared.policy.accepts_token(bearer.as_deref()) {
                return (token_refused(&headers, true), "wrong token".into());
            }
            let body = request.into_body();
            let body = match body::read_body(body, MAX_BODY, BODY_DEADLINE, &shared.bodies).await {
                Ok(body) => body,
                Err(e) => return done(body_refused(e, &headers)),
            };
            if bearer.is_none()
                && !shared
                    .policy
                    .accepts_token(body_token(&body.bytes).as_deref())
            {
                return (token_refused(&headers, false), "no token".into());
            }
            driver::call(body, &shared.registry, &headers).await
        }
        ("GET", "/puterai/chat/models/details") => {
            let body = json!({"models": driver::models(&shared.registry)});
            done(http::json(200, &headers, &body))
        }
        (_, path @ ("/drivers/call" | "/puterai/chat/models/details")) => {
            let allow = if path == "/drivers/call" {
                "POST"
            } else {
                "GET"
            };
            headers.push(("Allow", allow.into()));
            let message = format!("{path} takes {allow}");
            done(refuse(405, "method_not_allowed", &message, &headers, true))
        }
        (method, path) => {
            let message = format!("no route for {method} {path}");
            done(refuse(404, "not_found", &message, &headers, true))
        }
    }
}

/// Not 401: puter.js takes a 401 for its own session and starts a sign-in.
fn token_refused(headers: &Headers, close: bool) -> Response<Body> {
    let message = "this host answers only driver calls carrying its serve token: call puter.setAuthToken(<token>) first";
    refuse(403, "forbidden", message, headers, close)
}

fn body_refused(error: BodyError, headers: &Headers) -> Response<Body> {
    let (status, message) = match error {
        BodyError::TooLarge => (
            413,
            format!("the request body is over {} MiB", MAX_BODY >> 20),
        ),
        BodyError::TooSlow => (
            408,
            format!("the request body took over {} s", BODY_DEADLINE.as_secs()),
        ),
        BodyError::Broken => (400, "the request body is malformed or was cut off".into()),
        BodyError::Busy => {
            let message = "too many large requests at once; try again";
            return refuse(503, "too_many_requests", message, headers, true);
        }
    };
    refuse(status, "bad_request", &message, headers, true)
}

/// The `auth_token` puter.js puts in every driver call's body, skipping
/// the rest without building it.
fn body_token(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenOnly {
        auth_token: Option<String>,
    }
    serde_json::from_slice::<TokenOnly>(body).ok()?.auth_token
}

/// Runs `f` to its end on a runtime like serve's, for the serve modules'
/// unit tests.
#[cfg(test)]
fn on_test_runtime<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_body_puter_js_sends() {
        let call = br#"{"interface":"puter-chat-completion","method":"list","args":{"messages":[[1,2],{"a":null}]},"auth_token":"t1"}"#;
        assert_eq!(body_token(call).as_deref(), Some("t1"));
        assert_eq!(body_token(br#"{"auth_token":null}"#), None);
        assert_eq!(body_token(br#"{"interface":"x"}"#), None);
        assert_eq!(body_token(b"{nope"), None);
    }
}
