//! The four clocks of a request (issue 5, item 2): connect, first byte, idle
//! between stream reads, and total. Each is set from the config's `timeouts`
//! and ends the request with its own `code`; a stream that goes silent is
//! caught by the idle clock, not the total one.

mod faults_common;

use std::time::Duration;

use faults_common::{mute, saturated_listener, silent_after, stream_request, timed};
use moonshot_abi as abi;
use moonshot_simulator::{Reply, Simulator};
use moonshot_tests::harness::{instance, plugin, TEST_KEY};
use serde_json::json;

fn timeouts(connect: u64, first_byte: u64, idle: u64, total: u64) -> serde_json::Value {
    json!({"timeouts": {"connect_ms": connect, "first_byte_ms": first_byte,
                        "idle_ms": idle, "total_ms": total}})
}

#[test]
fn a_silent_upstream_before_the_headers_is_a_first_byte_timeout() {
    // idle (100 ms) is shorter than first byte (400 ms): waiting for the
    // headers is governed by the first-byte clock alone.
    let sim = Simulator::start().unwrap();
    sim.push(mute());
    let inst = instance(&sim, timeouts(5_000, 400, 100, 10_000));
    let out = timed(&inst, &stream_request("x"));
    println!("first byte timeout after {:?}", out.elapsed);
    assert_eq!(out.status, abi::MOONSHOT_ERR_TIMEOUT, "{}", out.result);
    assert_eq!(out.result["code"], "first_byte_timeout");
    assert!(out.result["message"].as_str().unwrap().contains("400 ms"));
    assert!(
        out.elapsed >= Duration::from_millis(400),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
    assert_eq!(
        sim.chat_bodies().len(),
        1,
        "a first-byte timeout is not retried"
    );
}

#[test]
fn a_stream_that_goes_silent_is_an_idle_timeout_with_the_partial_kept() {
    let sim = Simulator::start().unwrap();
    sim.push(silent_after(&["Hel", "lo"]));
    let inst = instance(&sim, timeouts(5_000, 5_000, 200, 20_000));
    let out = timed(&inst, &stream_request("x"));
    println!("idle timeout after {:?}", out.elapsed);
    assert_eq!(out.status, abi::MOONSHOT_ERR_TIMEOUT, "{}", out.result);
    assert_eq!(out.result["code"], "idle_timeout");
    assert!(out.result["message"].as_str().unwrap().contains("200 ms"));
    assert_eq!(out.text(), "Hello");
    assert_eq!(out.result["partial"]["message"]["content"], "Hello");
    assert_eq!(out.result["request_id"], "raw-req-1");
    assert!(
        out.elapsed >= Duration::from_millis(200),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}

#[test]
fn a_stream_that_trickles_past_the_total_is_a_total_timeout() {
    // An event every 50 ms never trips the 300 ms idle clock; the 600 ms
    // total ends it.
    let sim = Simulator::start().unwrap();
    sim.push(Reply::Sse {
        events: (0..200)
            .map(|i| faults_common::text_chunk(&format!("{i} ")))
            .collect(),
        delay: Duration::from_millis(50),
        done: true,
    });
    let inst = instance(&sim, timeouts(5_000, 5_000, 300, 600));
    let out = timed(&inst, &stream_request("x"));
    println!(
        "total timeout after {:?}, {} parts",
        out.elapsed,
        out.parts.len()
    );
    assert_eq!(out.status, abi::MOONSHOT_ERR_TIMEOUT, "{}", out.result);
    assert_eq!(out.result["code"], "total_timeout");
    assert!(out.result["message"].as_str().unwrap().contains("600 ms"));
    assert!(!out.parts.is_empty());
    assert_eq!(
        out.result["partial"]["message"]["content"].as_str(),
        Some(out.text().as_str())
    );
    assert!(
        out.elapsed >= Duration::from_millis(600),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}

#[test]
fn the_total_clock_also_bounds_a_silent_upstream() {
    // total (300 ms) shorter than idle and first byte: total wins.
    let sim = Simulator::start().unwrap();
    sim.push(mute());
    let inst = instance(&sim, timeouts(5_000, 5_000, 5_000, 300));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TIMEOUT, "{}", out.result);
    assert_eq!(out.result["code"], "total_timeout");
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
}

#[test]
fn an_unanswered_connect_is_a_connect_timeout_and_is_retried() {
    // A loopback listener with a full accept queue drops our SYN.
    let saturated = saturated_listener();
    let inst = plugin()
        .create(
            &json!({"apiKey": TEST_KEY,
                    "base_url": format!("http://{}/v1", saturated.addr),
                    "timeouts": {"connect_ms": 150, "total_ms": 10_000},
                    "retries": {"max": 1, "base_delay_ms": 1, "max_delay_ms": 10}})
            .to_string(),
        )
        .unwrap();
    let out = timed(&inst, &stream_request("x"));
    println!("connect timeout (2 attempts) after {:?}", out.elapsed);
    assert_eq!(out.status, abi::MOONSHOT_ERR_TIMEOUT, "{}", out.result);
    assert_eq!(out.result["code"], "connect_timeout");
    assert!(out.result["message"].as_str().unwrap().contains("150 ms"));
    assert_eq!(out.result["retryable"], true);
    // Two attempts of 150 ms each: the connect timeout was retried once.
    assert!(
        out.elapsed >= Duration::from_millis(300),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}
