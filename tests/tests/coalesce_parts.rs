//! `"coalesce_parts": true` through the C ABI: the text (and reasoning)
//! deltas that arrive in one socket read reach `on_chunk` as one part, the
//! result is the same as without the field, and a STOP on a merged part
//! keeps exactly what was delivered.

mod faults_common;

use std::time::Duration;

use faults_common::{events, raw, silent_after, stream_request, SSE_HEAD};
use moonshot_abi as abi;
use moonshot_simulator::{Reply, Simulator};
use moonshot_tests::harness::{instance, run, run_with};
use serde_json::{json, Value};

const WORDS: [&str; 12] = [
    "The",
    " quick",
    " brown",
    " fox",
    " \"jumps\"",
    " over",
    " the",
    " lazy",
    " dog",
    ".",
    "\n",
    "Done",
];

fn reasoning_event(text: &str) -> String {
    let chunk = json!({"id":"chatcmpl-f","object":"chat.completion.chunk","model":"kimi-k2.6",
        "choices":[{"index":0,"delta":{"reasoning_content":text},"finish_reason":null}]});
    format!("data: {chunk}\n\n")
}

/// Reasoning, then text, then the finish and usage, all in one write.
fn whole_stream_in_one_write() -> Reply {
    let finish = json!({"id":"chatcmpl-f","object":"chat.completion.chunk","model":"kimi-k2.6",
        "choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}});
    let body = format!(
        "{}{}{}data: {finish}\n\ndata: [DONE]\n\n",
        reasoning_event("Let me"),
        reasoning_event(" think."),
        events(&WORDS),
    );
    raw(SSE_HEAD, &body, Duration::ZERO)
}

fn coalescing(request: Value) -> Value {
    let mut request = request;
    request["coalesce_parts"] = json!(true);
    request
}

#[test]
fn deltas_of_one_read_arrive_as_one_part_and_the_result_is_unchanged() {
    let sim = Simulator::start().unwrap();
    sim.push(whole_stream_in_one_write());
    sim.push(whole_stream_in_one_write());
    let inst = instance(&sim, json!({}));
    let plain = run(&inst, &stream_request("x"));
    let merged = run(&inst, &coalescing(stream_request("x")));
    assert_eq!(plain.status, abi::MOONSHOT_OK, "{}", plain.result);
    assert_eq!(merged.status, abi::MOONSHOT_OK, "{}", merged.result);

    assert_eq!(plain.parts_of("text").len(), WORDS.len());
    assert_eq!(plain.parts_of("reasoning").len(), 2);
    let texts = merged.parts_of("text").len();
    println!(
        "{} text deltas in one write -> {texts} part(s)",
        WORDS.len()
    );
    assert!(texts < WORDS.len() / 2, "{:?}", merged.parts);
    assert!(merged.parts_of("reasoning").len() < 2, "{:?}", merged.parts);
    assert_eq!(merged.text(), WORDS.concat());
    assert_eq!(merged.reasoning(), "Let me think.");
    // Reasoning, then text, then usage: the order of kinds is kept.
    let mut kinds = merged.kinds();
    kinds.dedup();
    assert_eq!(kinds, ["reasoning", "text", "usage"]);
    assert_eq!(
        merged.parts.last(),
        plain.parts.last(),
        "the same usage part"
    );
    assert_eq!(
        merged.result.to_string(),
        plain.result.to_string(),
        "the result is byte-identical"
    );
}

#[test]
fn a_stop_on_a_merged_part_delivers_nothing_more_and_keeps_what_was_delivered() {
    let sim = Simulator::start().unwrap();
    sim.push(silent_after(&["a", "b", "c", "d"]));
    let inst = instance(&sim, json!({}));
    let out = run_with(
        &inst,
        &coalescing(stream_request("x")),
        Some(1),
        Duration::from_secs(10),
    );
    assert_eq!(out.status, abi::MOONSHOT_ERR_CANCELLED, "{}", out.result);
    assert_eq!(out.parts.len(), 1, "nothing after STOP: {:?}", out.parts);
    let delivered = out.text();
    assert!(delivered.len() > 1, "merged: {:?}", out.parts);
    assert_eq!(
        out.result["partial"]["message"]["content"], delivered,
        "the partial is what was delivered"
    );
}

#[test]
fn coalesce_parts_must_be_a_boolean() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let mut request = stream_request("x");
    request["coalesce_parts"] = json!("yes");
    let Err((status, error)) = inst.complete(&request.to_string(), None) else {
        panic!("a non-boolean coalesce_parts was accepted")
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_ARGUMENT, "{error}");
    assert!(error.contains("'coalesce_parts'"), "{error}");
    assert!(sim.chat_bodies().is_empty(), "nothing was sent");
}
