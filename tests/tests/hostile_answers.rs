//! Hostile upstream answers, through the C ABI: however much an upstream
//! sends (plain or gzip-encoded), however many tool calls it names and
//! whatever usage it claims, the plugin keeps bounded memory and CPU, ends
//! with a protocol error that keeps the partial result, and never bills a
//! wrong figure.

mod faults_common;

use std::io::Write;
use std::time::Duration;

use faults_common::{text_chunk, timed, PATIENCE};
use flate2::write::GzEncoder;
use flate2::Compression;
use moonshot_abi as abi;
use moonshot_simulator::{Reply, Simulator};
use moonshot_tests::harness::instance;
use serde_json::{json, Value};

fn stream_request() -> Value {
    json!({"model":"kimi-k2.6","messages":[{"role":"user","content":"Hi"}],"stream":true})
}

fn sse(chunks: &[String]) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

fn reply(head: &str, body: Vec<u8>) -> Reply {
    Reply::Raw {
        head: head.into(),
        body: vec![body],
        delay: Duration::ZERO,
        hold_open: Duration::ZERO,
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const SSE: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
const SSE_GZIP: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n";
const JSON_GZIP: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n";

const LIMIT: usize = 64 * 1024;

/// 200 deltas of 1 KiB: more than LIMIT.
fn long_answer() -> Vec<String> {
    let kib = "x".repeat(1024);
    (0..200).map(|_| text_chunk(&kib)).collect()
}

fn assert_cut_at_the_limit(out: &faults_common::Timed, streamed: bool) {
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert_eq!(out.result["code"], "answer_too_large");
    let kept = out.result["partial"]["message"]["content"]
        .as_str()
        .expect("the partial result is kept");
    assert!(
        kept.len() <= LIMIT && kept.len() >= LIMIT - 1024,
        "kept {} bytes",
        kept.len()
    );
    if streamed {
        assert_eq!(out.text(), kept, "the partial is what the parts said");
    }
}

#[test]
fn a_long_stream_ends_at_max_answer_bytes_with_the_partial_kept() {
    let sim = Simulator::start().unwrap();
    sim.push(reply(SSE, sse(&long_answer()).into_bytes()));
    let inst = instance(&sim, json!({"max_answer_bytes": LIMIT}));
    assert_cut_at_the_limit(&timed(&inst, &stream_request()), true);
}

#[test]
fn a_gzip_bomb_stream_is_cut_by_its_decoded_size() {
    let sim = Simulator::start().unwrap();
    let body = gzip(sse(&long_answer()).as_bytes());
    assert!(body.len() < LIMIT / 4, "compressed to {} bytes", body.len());
    sim.push(reply(SSE_GZIP, body));
    let inst = instance(&sim, json!({"max_answer_bytes": LIMIT}));
    assert_cut_at_the_limit(&timed(&inst, &stream_request()), true);
}

#[test]
fn a_gzip_bomb_completion_is_cut_by_its_decoded_size() {
    let sim = Simulator::start().unwrap();
    let completion = json!({"id":"c","object":"chat.completion","model":"kimi-k2.6",
        "choices":[{"index":0,"message":{"role":"assistant","content":"x".repeat(4 * LIMIT)},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":1,"completion_tokens":1}});
    sim.push(reply(JSON_GZIP, gzip(completion.to_string().as_bytes())));
    let inst = instance(&sim, json!({"max_answer_bytes": LIMIT}));
    let request = json!({"model":"kimi-k2.6","messages":[{"role":"user","content":"Hi"}]});
    let out = timed(&inst, &request);
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert_eq!(out.result["code"], "answer_too_large");
}

#[test]
fn thousands_of_tool_call_indices_are_refused_quickly() {
    // One chunk naming 20,000 distinct indices (100,000 took 16.8 s of CPU
    // in a linear lookup).
    let calls: Vec<Value> = (0..20_000)
        .map(|i| json!({"index":i,"id":format!("c{i}"),"type":"function","function":{"name":"f","arguments":"{}"}}))
        .collect();
    let chunk = json!({"choices":[{"index":0,"delta":{"tool_calls":calls}}]});
    let sim = Simulator::start().unwrap();
    sim.push(reply(
        SSE,
        sse(&[text_chunk("Hello"), chunk.to_string()]).into_bytes(),
    ));
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request());
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert_eq!(out.result["code"], "too_many_tool_calls");
    assert_eq!(out.result["partial"]["message"]["content"], "Hello");
    assert!(out.elapsed < PATIENCE);
}

#[test]
fn absurd_usage_is_a_protocol_error_never_a_wrong_bill() {
    // 2^62 completion tokens used to wrap to a bill of 0 microcents.
    let usage = json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":10,"completion_tokens":1u64 << 62}});
    let sim = Simulator::start().unwrap();
    sim.push(reply(
        SSE,
        sse(&[text_chunk("Hello"), usage.to_string()]).into_bytes(),
    ));
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request());
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert_eq!(out.result["code"], "implausible_usage");
    let partial = &out.result["partial"];
    assert_eq!(partial["message"]["content"], "Hello");
    // What was received is billed by estimate, not by the absurd claim.
    assert_eq!(partial["usage"]["estimated"], true, "{partial}");
    let completion = partial["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(completion < 100, "{completion}");
    assert!(partial["usage"]["cost"]["total_ucents"].as_u64().unwrap() > 0);
}
