//! Scripted replies, request recording and waiting, over a real socket.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{chat, exchange, parse, READ_TIMEOUT};
use moonshot_simulator::{Reply, ReplySpec, Simulator, ToolCallSpec, UsageShape, UsageSpec};
use serde_json::{json, Value};

fn hello(n: u32) -> Value {
    json!({"model": "kimi-k2.6", "messages": [{"role": "user", "content": format!("m{n}")}]})
}

#[test]
fn scripted_replies_are_fifo_then_default() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        content: "first".into(),
        ..ReplySpec::default()
    }));
    sim.push(Reply::error(
        429,
        "rate_limit_reached_error",
        "please try again after 1 seconds",
    ));
    sim.push(Reply::Json {
        status: 200,
        headers: vec![("x-trace-id".into(), "t-1".into())],
        body: json!({"third": true}),
    });
    let first = chat(sim.addr(), &hello(1));
    assert_eq!(first.json()["choices"][0]["message"]["content"], "first");
    assert_eq!(first.json()["usage"]["total_tokens"], 15);
    let second = chat(sim.addr(), &hello(2));
    assert_eq!(second.status, 429);
    let third = chat(sim.addr(), &hello(3));
    assert_eq!(third.json(), json!({"third": true}));
    assert_eq!(third.header("x-trace-id"), Some("t-1"));
    assert!(third.header("x-request-id").is_some());
    let fourth = chat(sim.addr(), &hello(4));
    assert!(fourth.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .ends_with("You said: m4"));
}

#[test]
fn error_envelope_and_status() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::error(
        503,
        "engine_overloaded_error",
        "The engine is currently overloaded",
    ));
    let res = chat(sim.addr(), &hello(1));
    assert_eq!(res.status, 503);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let id = res.header("x-request-id").unwrap();
    assert!(id.starts_with("sim-req-") && id["sim-req-".len()..].parse::<u64>().is_ok());
    assert_eq!(
        res.json(),
        json!({"error": {"type": "engine_overloaded_error",
                         "message": "The engine is currently overloaded"}})
    );
}

#[test]
fn scripted_stream_with_tool_calls_and_top_level_usage() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::stream(&ReplySpec {
        model: "kimi-k2.7-code".into(),
        reasoning: Some("need a tool".into()),
        content: String::new(),
        tool_calls: vec![ToolCallSpec {
            id: "functions.add:0".into(),
            name: "add".into(),
            arguments: r#"{"a":1}"#.into(),
        }],
        finish_reason: "tool_calls".into(),
        usage: Some(UsageSpec {
            prompt_tokens: 40,
            completion_tokens: 7,
            cached_tokens: 30,
        }),
        usage_shape: UsageShape::PromptDetails,
        chunk_chars: 3,
        delay: Duration::from_millis(1),
    }));
    let res = chat(sim.addr(), &hello(1));
    let data = res.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let mut args = String::new();
    for e in &events {
        for call in e["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], 0);
            if let Some(id) = call.get("id") {
                assert_eq!(id, "functions.add:0");
                assert_eq!(call["function"]["name"], "add");
            }
            args.push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(args, r#"{"a":1}"#);
    let usage = &events.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 30);
    assert_eq!(
        events[events.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn sse_without_done_still_ends_the_chunked_body() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::Sse {
        events: vec!["{\"a\":1}".into(), "{\"b\":2}".into()],
        delay: Duration::ZERO,
        done: false,
    });
    let res = chat(sim.addr(), &hello(1));
    assert_eq!(res.sse_data(), ["{\"a\":1}", "{\"b\":2}"]);
    // Each event is its own HTTP chunk.
    assert!(res.raw_body.starts_with(b"f\r\ndata: {\"a\":1}\n\n\r\n"));
}

#[test]
fn raw_pieces_arrive_as_written() {
    let sim = Simulator::start().unwrap();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    sim.push(Reply::Raw {
        head: head.into(),
        body: vec![
            b"data: {\"par".to_vec(),
            b"tial\":".to_vec(),
            b"1}\n\n".to_vec(),
        ],
        delay: Duration::from_millis(30),
        hold_open: Duration::ZERO,
    });
    let started = Instant::now();
    let raw = exchange(
        sim.addr(),
        &common::build("POST", "/v1/chat/completions", &[], b"{}"),
    );
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "delay before each piece"
    );
    let mut expected = head.as_bytes().to_vec();
    expected.extend_from_slice(b"data: {\"partial\":1}\n\n");
    assert_eq!(raw, expected);
    assert_eq!(parse(&raw).status, 200);
}

#[test]
fn records_requests_and_chat_bodies() {
    let sim = Simulator::start().unwrap();
    // A chunked request body, written by hand.
    let body = hello(7).to_string();
    let (a, b) = body.split_at(10);
    let raw = format!(
        "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer sk-test\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let res = parse(&exchange(sim.addr(), raw.as_bytes()));
    assert_eq!(res.status, 200);
    common::request(sim.addr(), "GET", "/v1/models", b"");
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/chat/completions?x=1");
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(requests[0].header("Authorization"), Some("Bearer sk-test"));
    assert!(requests[0]
        .headers
        .iter()
        .all(|(n, _)| *n == n.to_ascii_lowercase()));
    assert_eq!(requests[0].json(), Some(hello(7)));
    assert_eq!(requests[1].path, "/v1/models");
    assert!(requests[1].body.is_empty());
    assert_eq!(sim.chat_bodies(), vec![hello(7)]);
}

#[test]
fn wait_for_requests_blocks_until_arrival_or_timeout() {
    let sim = Simulator::start().unwrap();
    let started = Instant::now();
    assert!(!sim.wait_for_requests(1, Duration::from_millis(50)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(sim.wait_for_requests(0, Duration::ZERO));

    // The reply stalls, so the request is observable while its response is still pending.
    sim.push(Reply::Sse {
        events: vec!["{}".into()],
        delay: Duration::from_millis(200),
        done: true,
    });
    let addr = sim.addr();
    let client = thread::spawn(move || chat(addr, &hello(1)));
    assert!(sim.wait_for_requests(1, READ_TIMEOUT));
    assert_eq!(sim.chat_bodies(), vec![hello(1)]);
    let res = client.join().unwrap();
    assert_eq!(res.sse_data(), ["{}", "[DONE]"]);
}

#[test]
fn shutdown_interrupts_stalls_and_joins_promptly() {
    let mut sim = Simulator::start().unwrap();
    let addr = sim.addr();
    sim.push(Reply::Sse {
        events: vec!["{}".into()],
        delay: Duration::from_secs(120),
        done: true,
    });
    sim.push(Reply::Raw {
        head: "HTTP/1.1 200 OK\r\n\r\n".into(),
        body: vec![b"x".to_vec()],
        delay: Duration::ZERO,
        hold_open: Duration::from_secs(120),
    });
    // An idle connection that never sends a request.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    // Each client says when the first bytes of its answer arrived: a request
    // is recorded before its answer is written, so waiting for the record
    // alone could shut down before the headers went out.
    let (answered, first_bytes) = std::sync::mpsc::channel();
    let stalled: Vec<_> = (0..2)
        .map(|n| {
            let answered = answered.clone();
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                s.write_all(&common::build(
                    "POST",
                    "/v1/chat/completions",
                    &[],
                    hello(n).to_string().as_bytes(),
                ))
                .unwrap();
                let mut out = Vec::new();
                let mut chunk = [0u8; 4096];
                while !out.starts_with(b"HTTP/1.1 ") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => out.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = answered.send(());
                let _ = s.read_to_end(&mut out);
                out
            })
        })
        .collect();
    assert!(sim.wait_for_requests(2, READ_TIMEOUT));
    for _ in 0..2 {
        first_bytes
            .recv_timeout(READ_TIMEOUT)
            .expect("each stalled client got the start of its answer");
    }

    let started = Instant::now();
    sim.shutdown();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");

    let mut buf = [0u8; 16];
    let closed_at = Instant::now();
    assert!(matches!(idle.read(&mut buf), Ok(0) | Err(_)));
    assert!(
        closed_at.elapsed() < Duration::from_secs(3),
        "idle socket was closed"
    );
    for t in stalled {
        let out = t.join().unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "headers were sent before the stall"
        );
        assert!(
            !out.ends_with(b"0\r\n\r\n"),
            "the stalled stream never completed"
        );
    }
    sim.shutdown(); // idempotent
    drop(sim);
}

#[test]
fn drop_shuts_down() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::Sse {
        events: vec!["{}".into()],
        delay: Duration::from_secs(120),
        done: true,
    });
    let addr = sim.addr();
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.write_all(&common::build("POST", "/v1/chat/completions", &[], b"{}"))
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    });
    assert!(sim.wait_for_requests(1, READ_TIMEOUT));
    let started = Instant::now();
    drop(sim);
    assert!(started.elapsed() < Duration::from_secs(3));
    client.join().unwrap();
}
