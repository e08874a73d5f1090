//! The default Kimi behaviour and the other endpoints, over a real socket.

mod common;

use common::{build, chat, exchange, parse, request};
use moonshot_simulator::Simulator;
use serde_json::{json, Value};

const GREETING: &str = "Hello! I'm Kimi, running in the offline simulator. You said: ";

#[test]
fn default_non_stream_reply_shape() {
    let sim = Simulator::start().unwrap();
    assert_eq!(
        sim.base_url(),
        format!("http://127.0.0.1:{}/v1", sim.addr().port())
    );
    let res = chat(
        sim.addr(),
        &json!({"model": "kimi-k2.6", "thinking": {"type": "disabled"}, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}
        ]}),
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.header("connection"), Some("close"));
    assert!(res.header("x-request-id").unwrap().starts_with("sim-req-"));
    assert_eq!(
        res.header("content-length").unwrap(),
        res.body.len().to_string()
    );
    let body = res.json();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-sim-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["model"], "kimi-k2.6");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    let content = format!("{GREETING}Hi there");
    assert_eq!(choice["message"]["content"], content.as_str());
    assert!(choice["message"].get("reasoning_content").is_none());
    assert!(choice["message"].get("tool_calls").is_none());
    // (9 + 8 chars) / 4 rounded up = 5, plus 8 per message.
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 21);
    assert_eq!(
        usage["completion_tokens"],
        (content.chars().count() as u64).div_ceil(4)
    );
    assert_eq!(
        usage["total_tokens"],
        21 + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(usage["cached_tokens"], 0);
}

#[test]
fn default_stream_ends_with_done_and_rejoins() {
    let sim = Simulator::start().unwrap();
    let res = chat(
        sim.addr(),
        &json!({"model": "kimi-k3", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "stream me ✨"}]}),
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert!(res.header("x-request-id").is_some());
    let data = res.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let (mut reasoning, mut content) = (String::new(), String::new());
    for e in &events {
        if let Some(r) = e["choices"][0]["delta"]["reasoning_content"].as_str() {
            assert!(content.is_empty(), "reasoning comes before content");
            reasoning.push_str(r);
        }
        if let Some(c) = e["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
    }
    assert_eq!(content, format!("{GREETING}stream me ✨"));
    assert_eq!(
        reasoning,
        "The user said \"stream me ✨\". I should answer briefly."
    );
    // include_usage: usage in the finishing choice and in a top-level chunk.
    let finish = &events[events.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let top = &events[events.len() - 1];
    assert_eq!(top["choices"], json!([]));
    assert_eq!(finish["choices"][0]["usage"], top["usage"]);
    assert_eq!(top["model"], "kimi-k3");
}

#[test]
fn default_stream_without_include_usage_has_choice_usage_only() {
    let sim = Simulator::start().unwrap();
    let res = chat(
        sim.addr(),
        &json!({"model": "kimi-k2.6", "thinking": {"type": "disabled"}, "stream": true,
                "messages": [{"role": "user", "content": "x"}]}),
    );
    let data = res.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let last: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["usage"]["prompt_tokens"], 9);
    assert!(data.iter().all(|d| !d.contains("reasoning_content")));
}

#[test]
fn prompt_cache_key_reports_cached_tokens() {
    let sim = Simulator::start().unwrap();
    let first = json!({"model": "kimi-k2.6", "prompt_cache_key": "task-1",
                       "messages": [{"role": "user", "content": "a long enough prompt"}]});
    let a = chat(sim.addr(), &first).json();
    assert_eq!(a["usage"]["cached_tokens"], 0);
    let b = chat(sim.addr(), &first).json();
    assert_eq!(b["usage"]["cached_tokens"], a["usage"]["prompt_tokens"]);
}

#[test]
fn rejects_invalid_json_and_unknown_model() {
    let sim = Simulator::start().unwrap();
    let res = request(sim.addr(), "POST", "/v1/chat/completions", b"not json");
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"]["type"], "invalid_request_error");
    let res = chat(
        sim.addr(),
        &json!({"model": "moonshot-v1-8k", "messages": []}),
    );
    assert_eq!(res.status, 404);
    assert_eq!(
        res.json(),
        json!({"error": {"type": "resource_not_found_error",
                         "message": "Not found the model moonshot-v1-8k or Permission denied"}})
    );
    assert!(res.header("x-request-id").unwrap().starts_with("sim-req-"));
    assert_eq!(sim.chat_bodies()[0], Value::Null);
}

#[test]
fn models_estimate_and_unknown_paths() {
    let sim = Simulator::start().unwrap();
    let models = request(sim.addr(), "GET", "/v1/models", b"").json();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "kimi-k3",
            "kimi-k2.7-code",
            "kimi-k2.7-code-highspeed",
            "kimi-k2.6"
        ]
    );
    assert_eq!(models["data"][1]["context_length"], 262_144);
    assert_eq!(models["data"][1]["supports_image_in"], false);
    assert_eq!(models["data"][1]["supports_reasoning"], true);
    assert_eq!(models["data"][0]["owned_by"], "moonshot");

    let body = json!({"model": "kimi-k2.6", "messages": [{"role": "user", "content": "12345"}]});
    let est = request(
        sim.addr(),
        "POST",
        "/v1/tokenizers/estimate-token-count",
        body.to_string().as_bytes(),
    );
    assert_eq!(
        est.json(),
        json!({"code": 0, "data": {"total_tokens": 10}, "scode": "0x0", "status": true})
    );

    let res = request(sim.addr(), "GET", "/v1/users/me/nothing", b"");
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"]["type"], "resource_not_found_error");
    let res = request(sim.addr(), "GET", "/v1/chat/completions", b"");
    assert_eq!(res.status, 404);
    assert_eq!(sim.requests().len(), 4);
    assert!(
        sim.chat_bodies().is_empty(),
        "a GET is not a chat completion"
    );
}

#[test]
fn balance_and_the_key_check() {
    let sim = Simulator::start().unwrap();
    let res = request(sim.addr(), "GET", "/v1/users/me/balance", b"");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.json(),
        json!({"code": 0, "data": {"available_balance": 49.58894,
               "voucher_balance": 46.58893, "cash_balance": 3.00001},
               "scode": "0x0", "status": true})
    );
    sim.require_key(Some("sk-right"));
    let res = request(sim.addr(), "GET", "/v1/models", b"");
    assert_eq!(res.status, 401);
    assert_eq!(res.json()["error"]["type"], "invalid_authentication_error");
    let raw = build(
        "GET",
        "/v1/models",
        &[("Authorization", "Bearer sk-right")],
        b"",
    );
    assert_eq!(parse(&exchange(sim.addr(), &raw)).status, 200);
    sim.require_key(None);
    assert_eq!(request(sim.addr(), "GET", "/v1/models", b"").status, 200);
}

#[test]
fn oversized_requests_get_413_and_431() {
    let sim = Simulator::start().unwrap();
    let head = b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n";
    let res = parse(&exchange(sim.addr(), head));
    assert_eq!(res.status, 413);
    assert_eq!(res.json()["error"]["type"], "invalid_request_error");
    let filler = "a".repeat(70 * 1024);
    let raw = build("GET", "/v1/models", &[("X-Filler", &filler)], b"");
    let res = parse(&exchange(sim.addr(), &raw));
    assert_eq!(res.status, 431);
    assert!(
        sim.requests().is_empty(),
        "rejected requests are not recorded"
    );
}
