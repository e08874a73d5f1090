//! `host-demo serve` against hostile callers (issue 11): each test plays one
//! attack against a real serve process over loopback and prints the
//! process's peak resident memory (VmHWM) afterwards.
//!
//! Upstreams are local: the offline simulator, or a hand-made silent
//! server where a test must see the plugin's connection close. Clients are
//! raw `TcpStream`s on purpose: the attacks are bytes no HTTP client sends.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use moonshot_simulator::Simulator;
use moonshot_tests::harness::{TEST_KEY, TODAY};
use moonshot_tests::kit::http;
use moonshot_tests::serve::{status_of, Serve};
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;
/// serve's body limit.
const BODY_LIMIT: usize = 64 * MIB;
/// serve's connection bound.
const MAX_CONNECTIONS: usize = 256;
/// serve's deadline for a whole request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// How soon a vanished client's plugin request must be cancelled.
const CANCEL_LIMIT: Duration = Duration::from_secs(1);

fn config(base_url: &str) -> Value {
    json!({"providers": {"moonshot": {
        "apiKey": TEST_KEY,
        "base_url": base_url,
        "today": TODAY,
        "retries": {"max": 0},
    }}})
}

fn serve_with(sim: &Simulator, args: &[&str]) -> Serve {
    Serve::start(&config(&sim.base_url()), args, &[])
}

fn report(case: &str, serve: &Serve) -> u64 {
    let peak = serve.peak_rss_mib();
    eprintln!("peak RSS of serve after {case}: {peak} MiB");
    peak
}

const LIST: &str = r#"{"interface":"puter-chat-completion","method":"list"}"#;

fn post(addr: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "POST /drivers/call HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;actually=json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads what the server sends within `limit`: (the bytes, whether the
/// connection ended).
fn read_for(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => {
                got.extend_from_slice(&buffer[..n]);
                // A whole answer with a length is enough.
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok());
                    if length.is_some_and(|n| body.len() >= n) {
                        return (text.into_owned(), false);
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// Writes `total` zero bytes in 1 MiB pieces until the server stops taking
/// them; returns how many it took.
fn push_zeros(stream: &mut TcpStream, total: usize) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let piece = vec![0u8; MIB];
    let mut sent = 0;
    while sent < total {
        match stream.write(&piece[..MIB.min(total - sent)]) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

#[test]
fn a_chunked_body_with_a_huge_chunk_size_is_refused_at_the_limit() {
    let sim = Simulator::start().unwrap();
    let serve = serve_with(&sim, &[]);
    let mut stream = serve.connect(Duration::from_secs(10));
    // One byte, then a chunk of 2^64 - 1 bytes: the old reader's
    // `length so far + chunk size` wrapped to 0 and let it all in.
    let head = format!(
        "POST /drivers/call HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{{\r\nffffffffffffffff\r\n",
        serve.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The answer is read as it comes, while the body is still being sent.
    let mut reader = stream.try_clone().unwrap();
    let answer = thread::spawn(move || read_for(&mut reader, Duration::from_secs(20)).0);
    // One and a half times the limit, inside the one huge chunk.
    let offered = BODY_LIMIT + BODY_LIMIT / 2;
    let sent = push_zeros(&mut stream, offered);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let answer = answer.join().unwrap();
    let peak = report("a 96 MiB chunk declared as 16 EiB", &serve);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "no 413 for a chunked body over the limit; serve took {sent} bytes and answered {answer:?}"
    );
    assert!(
        sent < offered,
        "serve took all {sent} bytes of a body over its limit"
    );
    assert!(peak < 400, "peak RSS {peak} MiB");
}

#[test]
fn slow_heads_are_cut_off_and_cannot_lock_others_out() {
    let sim = Simulator::start().unwrap();
    let serve = serve_with(&sim, &[]);
    // The slowloris of the issue, beyond serve's connection bound:
    // connections that send a head a byte at a time and never finish it.
    let mut slow: Vec<Option<TcpStream>> = (0..MAX_CONNECTIONS + 44)
        .map(|_| {
            let mut s = serve.connect(Duration::from_secs(5));
            s.write_all(b"POST /drivers/call HTTP/1.1\r\nX-Slow: ")
                .unwrap();
            s.set_nonblocking(true).unwrap();
            Some(s)
        })
        .collect();
    // Meanwhile an honest client is served.
    let asked = Instant::now();
    let (status, answer) = serve
        .raw(&format!(
            "GET /puterai/chat/models/details HTTP/1.1\r\nHost: {}\r\n\r\n",
            serve.addr
        ))
        .unwrap();
    let waited = asked.elapsed();

    // Each slow connection is closed once its head is overdue, however
    // regularly it sends.
    let started = Instant::now();
    let give_up = HEAD_DEADLINE + Duration::from_secs(5);
    while slow.iter().any(Option::is_some) && started.elapsed() < give_up {
        for entry in slow.iter_mut() {
            let Some(stream) = entry else { continue };
            let mut buffer = [0u8; 1024];
            let ended = match stream.read(&mut buffer) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            };
            let write_failed =
                matches!(stream.write(b"x"), Err(e) if e.kind() != ErrorKind::WouldBlock);
            if ended || write_failed {
                *entry = None;
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    report("300 slow heads", &serve);
    assert_eq!(
        status,
        200,
        "an honest client while {} heads trickle in:\n{answer}",
        slow.len()
    );
    assert!(
        waited < Duration::from_secs(3),
        "the honest client waited {waited:?}"
    );
    let open = slow.iter().filter(|s| s.is_some()).count();
    assert_eq!(
        open,
        0,
        "{open} slow heads still open after {:?}",
        started.elapsed()
    );
}

#[test]
fn host_and_origin_are_refused_before_any_body_byte_is_read() {
    let sim = Simulator::start().unwrap();
    let serve = serve_with(&sim, &[]);
    let length = 63 * MIB;
    let heads = [
        format!(
            "POST /drivers/call HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nContent-Length: {length}\r\n\r\n",
            serve.addr
        ),
        format!("POST /drivers/call HTTP/1.1\r\nHost: evil.example\r\nContent-Length: {length}\r\n\r\n"),
    ];
    let mut early = Vec::new();
    let mut streams = Vec::new();
    for head in heads.iter().cycle().take(8) {
        let mut stream = serve.connect(Duration::from_secs(5));
        stream.write_all(head.as_bytes()).unwrap();
        // Only the head is out: the refusal must come now.
        let (answer, _) = read_for(&mut stream, Duration::from_secs(3));
        early.push(status_of(&answer).ok());
        streams.push(stream);
    }
    // Then the bodies, as the attacker would send them anyway.
    let pushers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| thread::spawn(move || push_zeros(&mut stream, length)))
        .collect();
    let taken: usize = pushers.into_iter().map(|p| p.join().unwrap()).sum();
    let peak = report("8 refused requests of 63 MiB each", &serve);
    assert!(
        early.iter().all(|s| *s == Some(403)),
        "statuses while only the heads were sent: {early:?}"
    );
    assert!(
        peak < 128,
        "peak RSS {peak} MiB after {taken} body bytes were offered"
    );
}

#[test]
fn large_uploads_at_once_share_a_bounded_budget() {
    let sim = Simulator::start().unwrap();
    let serve = serve_with(&sim, &[]);
    // Five allowed callers each send 60 MiB (under the 64 MiB limit) and
    // hold back the last byte until all five are that far.
    let length = 60 * MIB;
    let callers = 5;
    let all_sent = std::sync::Arc::new(std::sync::Barrier::new(callers));
    let uploads: Vec<_> = (0..callers)
        .map(|_| {
            let mut stream = serve.connect(Duration::from_secs(10));
            let head = format!(
                "POST /drivers/call HTTP/1.1\r\nHost: {}\r\nContent-Length: {length}\r\n\r\n",
                serve.addr
            );
            let all_sent = all_sent.clone();
            thread::spawn(move || {
                stream.write_all(head.as_bytes()).unwrap();
                let mut reader = stream.try_clone().unwrap();
                let answer =
                    thread::spawn(move || read_for(&mut reader, Duration::from_secs(30)).0);
                push_zeros(&mut stream, length - 1);
                all_sent.wait();
                let _ = stream.write_all(b"0");
                answer.join().unwrap()
            })
        })
        .collect();
    let statuses: Vec<Option<u16>> = uploads
        .into_iter()
        .map(|u| status_of(&u.join().unwrap()).ok())
        .collect();
    let peak = report("5 uploads of 60 MiB at once", &serve);
    assert!(
        statuses.contains(&Some(503)),
        "every upload was taken at once: {statuses:?}"
    );
    // Zeros are no JSON: the uploads that fit are read, then refused.
    assert!(statuses.contains(&Some(400)), "{statuses:?}");
    assert!(peak < 260, "peak RSS {peak} MiB; statuses {statuses:?}");
}

#[test]
fn a_driver_call_of_tiny_json_values_is_not_parsed_into_a_tree() {
    // 60 MiB of `0,`: as a serde_json tree about 30 M values of 32+ bytes
    // each, some 2 GB. serve reads only the call's own fields and the top
    // level of `args`; the plugin refuses the request by its value count.
    let sim = Simulator::start().unwrap();
    let serve = serve_with(&sim, &[]);
    let zeros = 30 * MIB;
    let mut body = String::with_capacity(2 * zeros + 200);
    body.push_str(r#"{"interface":"puter-chat-completion","method":"complete","args":{"messages":[{"content":"Hi"}],"junk":["#);
    for i in 0..zeros {
        body.push_str(if i == 0 { "0" } else { ",0" });
    }
    body.push_str("]}}");
    let mut stream = serve.connect(Duration::from_secs(10));
    stream
        .write_all(post(&serve.addr, "", &body).as_bytes())
        .unwrap();
    drop(body);
    let (answer, _) = read_for(&mut stream, Duration::from_secs(60));
    let peak = report("a 60 MiB driver call of [0,0,...]", &serve);
    assert_eq!(status_of(&answer), Ok(400), "{answer}");
    assert!(answer.contains("invalid_argument"), "{answer}");
    assert!(sim.chat_bodies().is_empty(), "nothing reached Moonshot");
    // The raw body (60 MiB) and the plugin's copy of the arguments; a tree
    // would be some 2 GB.
    assert!(peak < 400, "peak RSS {peak} MiB");
}

/// A hand-made upstream that reads one request, answers nothing, and
/// reports when the plugin's connection closes.
fn silent_upstream() -> (String, mpsc::Receiver<&'static str>, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut reader = BufReader::new(stream);
            http::read_request(&mut reader).unwrap();
            tx.send("request").unwrap();
            // Silent until the plugin closes its end (EOF or reset).
            let _ = reader.read_to_end(&mut Vec::new());
            tx.send("closed").unwrap();
        }
    });
    (base, rx, server)
}

#[test]
fn a_client_that_goes_away_cancels_its_request_while_upstream_is_silent() {
    let (base, upstream, server) = silent_upstream();
    let serve = Serve::start(&config(&base), &[], &[]);
    let mut outcomes = Vec::new();
    for stream in [true, false] {
        let call = json!({"interface": "puter-chat-completion", "method": "complete",
            "args": {"messages": [{"role": "user", "content": "hi"}], "stream": stream}});
        let mut client = serve.connect(Duration::from_secs(5));
        client
            .write_all(post(&serve.addr, "", &call.to_string()).as_bytes())
            .unwrap();
        assert_eq!(
            upstream.recv_timeout(Duration::from_secs(20)),
            Ok("request"),
            "the call never reached the upstream; serve's log:\n{}",
            serve.log()
        );
        let gone = Instant::now();
        drop(client);
        let closed = upstream.recv_timeout(Duration::from_secs(5));
        let took = gone.elapsed();
        eprintln!("stream={stream}: client gone -> upstream connection closed: {took:?}");
        let still_open = closed.is_err();
        outcomes.push((stream, closed, took));
        if still_open {
            break;
        }
    }
    report("2 abandoned requests", &serve);
    for (stream, closed, took) in outcomes {
        assert_eq!(
            closed,
            Ok("closed"),
            "stream={stream}: the upstream connection outlived the client by {took:?}; serve's log:\n{}",
            serve.log()
        );
        assert!(took < CANCEL_LIMIT, "stream={stream}: {took:?}");
    }
    server.join().unwrap();
}

#[test]
fn a_preflight_never_reflects_raw_header_text() {
    let sim = Simulator::start().unwrap();
    let serve = serve_with(&sim, &[]);
    let preflight = format!(
        "OPTIONS /drivers/call HTTP/1.1\r\nHost: {}\r\nOrigin: http://localhost:5173\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x\rSet-Cookie: session=stolen\r\n\r\n",
        serve.addr
    );
    let (status, answer) = serve.raw(&preflight).unwrap();
    report("a preflight with a bare CR", &serve);
    assert!(
        !answer.to_ascii_lowercase().contains("set-cookie"),
        "status {status}, answer:\n{answer:?}"
    );
    // A clean list is still echoed.
    let (status, answer) = serve
        .raw(&format!(
            "OPTIONS /drivers/call HTTP/1.1\r\nHost: {}\r\nOrigin: http://localhost:5173\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\r\n",
            serve.addr
        ))
        .unwrap();
    assert_eq!(status, 204);
    assert!(
        answer.contains("Access-Control-Allow-Headers: authorization, content-type\r\n"),
        "{answer}"
    );
}

#[test]
fn origins_are_loopback_pages_plus_those_given_none_built_in() {
    let sim = Simulator::start().unwrap();
    let plain = serve_with(&sim, &[]);
    let from = |serve: &Serve, origin: &str| {
        serve
            .raw(&post(&serve.addr, &format!("Origin: {origin}\r\n"), LIST))
            .unwrap()
    };
    let (status, answer) = from(&plain, "https://puter.work");
    assert_eq!(
        status, 403,
        "https://puter.work is not trusted by default:\n{answer}"
    );
    let (status, _) = from(&plain, "http://localhost:5173");
    assert_eq!(status, 200);

    let flagged = serve_with(
        &sim,
        &[
            "--allow-origin",
            "https://app.example",
            "--allow-origin",
            "https://puter.work",
        ],
    );
    for origin in [
        "https://app.example",
        "https://puter.work",
        "http://127.0.0.1:8080",
    ] {
        let (status, answer) = from(&flagged, origin);
        assert_eq!(status, 200, "{origin}:\n{answer}");
        assert!(
            answer.contains(&format!("Access-Control-Allow-Origin: {origin}\r\n")),
            "{answer}"
        );
    }
    let (status, _) = from(&flagged, "https://evil.example");
    assert_eq!(status, 403);
}

#[test]
fn with_a_token_only_driver_calls_carrying_it_are_answered() {
    let sim = Simulator::start().unwrap();
    for serve in [
        serve_with(&sim, &["--auth-token", "s3cret-token"]),
        Serve::start(
            &config(&sim.base_url()),
            &[],
            &[("MOONSHOT_SERVE_TOKEN", "s3cret-token")],
        ),
    ] {
        let addr = serve.addr.clone();
        let with_body_token =
            r#"{"interface":"puter-chat-completion","method":"list","auth_token":"s3cret-token"}"#;
        let wrong_body_token =
            r#"{"interface":"puter-chat-completion","method":"list","auth_token":"guess"}"#;
        for (what, request, want) in [
            ("no token", post(&addr, "", LIST), 403),
            ("a wrong token", post(&addr, "", wrong_body_token), 403),
            (
                "a wrong bearer",
                post(&addr, "Authorization: Bearer guess\r\n", LIST),
                403,
            ),
            (
                "the token in the body (puter.setAuthToken)",
                post(&addr, "", with_body_token),
                200,
            ),
            (
                "the token as a bearer",
                post(&addr, "Authorization: Bearer s3cret-token\r\n", LIST),
                200,
            ),
        ] {
            let (status, answer) = serve.raw(&request).unwrap();
            assert_eq!(status, want, "{what}:\n{answer}");
            if want == 403 {
                assert!(answer.contains(r#""code":"forbidden""#), "{answer}");
            }
        }
        // A wrong bearer is refused on the head, before a body byte.
        let mut stream = serve.connect(Duration::from_secs(5));
        stream
            .write_all(
                format!("POST /drivers/call HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer guess\r\nContent-Length: {}\r\n\r\n", 63 * MIB)
                    .as_bytes(),
            )
            .unwrap();
        let (answer, _) = read_for(&mut stream, Duration::from_secs(3));
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer:?}");
    }
}
