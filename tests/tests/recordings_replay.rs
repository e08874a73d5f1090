//! Recordings of the real Moonshot service (tests/recordings/kimi-probes,
//! see its SOURCE.md) replayed byte for byte through the plugin: the text,
//! reasoning, usage, cached tokens and bill it reports, the request id
//! Moonshot names, how its errors map, retries and Retry-After, and the
//! fields kimi-k3 was recorded refusing, refused before anything is sent.

use std::time::Duration;

use moonshot_abi as abi;
use moonshot_tests::harness::{plugin, run, TEST_KEY};
use moonshot_tests::replay::{Recording, ReplayServer};
use serde_json::{json, Value};

const SET: &str = "kimi-probes";

/// An instance pointed at `server`; `retries` overrides the retry policy.
fn instance(server: &ReplayServer, retries: Value) -> host_demo::plugin::Instance {
    let config = json!({
        "apiKey": TEST_KEY,
        "base_url": server.base_url(),
        "today": "2026-09-02",
        "retries": retries,
    });
    plugin().create(&config.to_string()).expect("create")
}

fn quick_retries() -> Value {
    json!({"max": 4, "base_delay_ms": 1, "max_delay_ms": 10})
}

/// The recorded request as Puter arguments (the probes sent kimi-k3 these).
fn ask(recording: &Recording, extra: Value) -> Value {
    let mut args = json!({
        "model": recording.request["model"],
        "messages": recording.request["messages"],
        "max_tokens": recording.request["max_tokens"],
    });
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    args
}

fn sent_body(server: &ReplayServer, n: usize) -> Value {
    server.received()[n]
        .1
        .json()
        .expect("the plugin sends JSON")
}

#[test]
fn recordings_are_real_and_intact() {
    for name in [
        "k3-baseline-length",
        "k3-cached-tokens",
        "k3-rate-limited-then-ok",
        "k3-overloaded-then-ok",
        "k3-prediction-accepted",
        "k3-image-input",
        "k3-logprobs-refused",
        "k3-logit-bias-refused",
        "k3-temperature-refused",
        "k3-rate-limit-exhausted",
    ] {
        let rec = Recording::load(SET, name);
        for (n, attempt) in rec.attempts.iter().enumerate() {
            // Content-Length as recorded = the bytes we replay.
            assert_eq!(
                rec.header(n, "content-length")
                    .map(|l| l.parse::<usize>().unwrap()),
                Some(attempt.body.len()),
                "{name} attempt {n}"
            );
            assert!(rec.header(n, "msh-request-id").is_some(), "{name}");
            let body = rec.body(n);
            if attempt.status == 200 {
                // chatcmpl- + 8 hex of the request time + 16 hex.
                let id = body["id"].as_str().unwrap();
                let hex = id.strip_prefix("chatcmpl-").unwrap();
                assert_eq!(hex.len(), 24, "{name}");
                // The id starts with the request's unix time; `created`
                // is the answer's, seconds later.
                let asked = u64::from_str_radix(&hex[..8], 16).unwrap();
                let created = body["created"].as_u64().unwrap();
                assert!(asked <= created && created - asked < 600, "{name}");
                assert!(u64::from_str_radix(&hex[8..], 16).is_ok(), "{name}");
            }
        }
        assert!(rec.probe_id.starts_with("kimi-k3--"), "{name}");
    }
}

#[test]
fn a_reply_cut_by_the_limit_keeps_its_reasoning_usage_bill_and_request_id() {
    let rec = Recording::load(SET, "k3-baseline-length");
    let server = ReplayServer::start(&rec);
    let out = run(&instance(&server, quick_retries()), &ask(&rec, json!({})));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.result["message"]["content"], "");
    assert_eq!(
        out.result["message"]["reasoning"],
        "The user has asked me to reply with exactly one word: hello"
    );
    assert_eq!(out.result["finish_reason"], "length");
    assert_eq!(out.result["model"], "kimi-k3");
    assert_eq!(
        out.result["request_id"], "f1f0641d-a608-11f1-88e1-eaf9ba74c120",
        "Moonshot's Msh-Request-Id is the request id"
    );
    let usage = &out.result["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(93), Some(16))
    );
    assert_eq!(usage["cached_tokens"], 0);
    assert_eq!(usage["estimated"], false);
    // kimi-k3: 300 ucents per input token, 1,500 per output token.
    assert_eq!(usage["cost"]["total_ucents"], 93 * 300 + 16 * 1_500);
    // What went out: the recorded question, as Moonshot's current fields.
    let sent = sent_body(&server, 0);
    assert_eq!(sent["model"], "kimi-k3");
    assert_eq!(sent["max_completion_tokens"], 16);
    assert_eq!(sent["messages"], rec.request["messages"]);
}

#[test]
fn cached_tokens_are_billed_at_the_cache_price() {
    let rec = Recording::load(SET, "k3-cached-tokens");
    let server = ReplayServer::start(&rec);
    let out = run(&instance(&server, quick_retries()), &ask(&rec, json!({})));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.result["message"]["content"], "hello");
    let usage = &out.result["usage"];
    assert_eq!(
        usage["cached_tokens"], 93,
        "counted once, though sent in two shapes"
    );
    assert_eq!(usage["uncached_prompt_tokens"], 0);
    assert_eq!(usage["completion_tokens"], 54);
    assert_eq!(usage["cost"]["total_ucents"], 93 * 30 + 54 * 1_500);
}

#[test]
fn a_rate_limit_is_retried_after_the_seconds_retry_after_names() {
    let rec = Recording::load(SET, "k3-rate-limited-then-ok");
    assert_eq!(rec.header(0, "retry-after"), Some("1"));
    let server = ReplayServer::start(&rec);
    let inst = instance(
        &server,
        json!({"max": 2, "base_delay_ms": 1, "max_delay_ms": 5_000}),
    );
    let out = run(&inst, &ask(&rec, json!({})));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    let received = server.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].0 - received[0].0;
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert_eq!(
        out.result["request_id"],
        "67408ba9-a660-11f1-88e1-eaf9ba74c120"
    );
    assert_eq!(out.result["usage"]["cached_tokens"], 93);
    assert_eq!(out.result["finish_reason"], "length");
}

#[test]
fn an_overloaded_engine_is_retried_with_backoff() {
    let rec = Recording::load(SET, "k3-overloaded-then-ok");
    assert_eq!(rec.header(0, "retry-after"), None);
    let server = ReplayServer::start(&rec);
    let out = run(&instance(&server, quick_retries()), &ask(&rec, json!({})));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(server.received().len(), 2);
    assert_eq!(out.result["message"]["content"], "hello");
    assert_eq!(
        out.result["usage"]["cost"]["total_ucents"],
        93 * 30 + 56 * 1_500
    );
}

#[test]
fn when_retries_run_out_the_rate_limit_is_reported_without_the_account() {
    let rec = Recording::load(SET, "k3-rate-limit-exhausted");
    let server = ReplayServer::start(&rec);
    let out = run(&instance(&server, quick_retries()), &ask(&rec, json!({})));
    assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM);
    assert_eq!(server.received().len(), 5, "one try and four retries");
    assert_eq!(out.result["code"], "rate_limit_reached_error");
    assert_eq!(out.result["http_status"], 429);
    assert_eq!(out.result["retryable"], true);
    assert_eq!(
        out.result["request_id"],
        "c8e969b4-a661-11f1-bfec-00163e59531e"
    );
    let message = out.result["message"].as_str().unwrap();
    assert_eq!(
        message,
        "Your account org-[redacted]<ak-[redacted]> request reached organization max RPM: 3, please try again after 1 seconds"
    );
    assert!(!out.result.to_string().contains("org-0000"));
}

#[test]
fn prediction_reaches_kimi_k3_which_accepts_it() {
    let rec = Recording::load(SET, "k3-prediction-accepted");
    let server = ReplayServer::start(&rec);
    let prediction = rec.request["prediction"].clone();
    let out = run(
        &instance(&server, quick_retries()),
        &ask(&rec, json!({"prediction": prediction})),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(
        sent_body(&server, 0)["prediction"],
        json!({"type": "content", "content": "hello"})
    );
    assert_eq!(out.result["message"]["content"], "hello");
}

#[test]
fn an_image_reaches_kimi_k3_as_recorded() {
    let rec = Recording::load(SET, "k3-image-input");
    let server = ReplayServer::start(&rec);
    let out = run(&instance(&server, quick_retries()), &ask(&rec, json!({})));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(sent_body(&server, 0)["messages"], rec.request["messages"]);
    assert_eq!(out.result["usage"]["prompt_tokens"], 102);
}

#[test]
fn fields_kimi_k3_answered_400_to_are_refused_before_sending_with_its_words() {
    for (name, field, value) in [
        ("k3-logprobs-refused", "logprobs", json!(true)),
        ("k3-logit-bias-refused", "logit_bias", json!({"1734": 5})),
    ] {
        let rec = Recording::load(SET, name);
        assert_eq!(rec.request[field], value, "{name}");
        let server = ReplayServer::start(&rec);
        let inst = instance(&server, quick_retries());
        let Err((status, error)) =
            inst.complete(&ask(&rec, json!({ field: value })).to_string(), None)
        else {
            panic!("{name}: accepted")
        };
        assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST, "{name}");
        let error: Value = serde_json::from_str(&error).unwrap();
        let recorded = rec.body(0)["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        let recorded = recorded.trim_start_matches("Invalid request: ");
        assert!(
            error["message"].as_str().unwrap().contains(recorded),
            "{name}: {} should quote {recorded:?}",
            error["message"]
        );
        assert!(server.received().is_empty(), "{name}: nothing was sent");
    }
}

#[test]
fn moonshots_400_maps_to_an_upstream_error_that_is_not_retried() {
    // The temperature kimi-k3 refused is one the plugin omits; replayed
    // against a plain request, the recorded 400 shows the mapping.
    let rec = Recording::load(SET, "k3-temperature-refused");
    let server = ReplayServer::start(&rec);
    let out = run(&instance(&server, quick_retries()), &ask(&rec, json!({})));
    assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM);
    assert_eq!(server.received().len(), 1, "a 400 is not retried");
    assert_eq!(
        out.result,
        json!({"code": "invalid_request_error",
               "message": "invalid temperature: only 1 is allowed for this model",
               "http_status": 400, "retryable": false,
               "request_id": "81c47ca7-a6d6-11f1-b91e-00163e240a03"})
    );
    // Asked for that temperature, the plugin leaves it out and says so.
    let server = ReplayServer::start(&Recording::load(SET, "k3-baseline-length"));
    let out = run(
        &instance(&server, quick_retries()),
        &ask(&rec, json!({"temperature": 0.7})),
    );
    assert!(sent_body(&server, 0).get("temperature").is_none());
    assert_eq!(
        out.result["adjustments"],
        json!(["temperature 0.7 omitted: kimi-k3 only allows 1 here"])
    );
}
