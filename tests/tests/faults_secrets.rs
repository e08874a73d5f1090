//! The key stays secret (issue 5, item 7): every error text the plugin can
//! produce is swept for the API key, including errors built from what a
//! hostile upstream echoes back (its error type and message, its request id
//! header, an HTML page cut to a snippet right inside the key).

mod faults_common;

use std::time::Duration;

use faults_common::{events, mute, raw, silent_after, stream_request, timed, SSE_HEAD};
use moonshot_abi as abi;
use moonshot_simulator::{Reply, Simulator};
use moonshot_tests::harness::{instance, plugin, TEST_KEY};
use serde_json::{json, Value};

/// The distinctive middle of the key: a cut-off prefix of it is caught too.
const KEY_MIDDLE: &str = "9f8e7d6c5b4a";

struct Sweep {
    texts: Vec<(String, String)>,
}

impl Sweep {
    fn add(&mut self, case: &str, text: impl Into<String>) {
        self.texts.push((case.to_string(), text.into()));
    }

    fn check(&self) {
        assert!(TEST_KEY.contains(KEY_MIDDLE));
        for (case, text) in &self.texts {
            assert!(
                !text.contains(TEST_KEY) && !text.contains(KEY_MIDDLE),
                "{case}: the key leaked into {text}"
            );
        }
        println!("swept {} error texts for the key", self.texts.len());
    }
}

/// One request against a simulator answering `reply`; returns on_done's JSON.
fn provoke(sweep: &mut Sweep, case: &str, reply: Reply, extra: Value, request: Value) -> Value {
    let sim = Simulator::start().unwrap();
    sim.push(reply);
    let inst = instance(&sim, extra);
    let out = timed(&inst, &request);
    assert_ne!(out.status, abi::MOONSHOT_OK, "{case}: {}", out.result);
    sweep.add(case, out.result.to_string());
    for part in &out.parts {
        sweep.add(case, part.to_string());
    }
    out.result
}

fn echoing_error(status: u16, kind: &str) -> Reply {
    Reply::Json {
        status,
        headers: vec![
            ("x-request-id".into(), format!("req-{TEST_KEY}")),
            ("Retry-After".into(), "0".into()),
        ],
        body: json!({"error": {
            "type": format!("{kind}:{TEST_KEY}"),
            "message": format!("Incorrect API key provided: {TEST_KEY}. You can find your key at ..."),
        }}),
    }
}

#[test]
fn no_error_text_holds_the_key() {
    let mut sweep = Sweep { texts: Vec::new() };
    let no_retry = json!({"retries": {"max": 0}});

    // Every upstream status, the key echoed in type, message and request id.
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "invalid_authentication_error"),
        (403, "permission_denied_error"),
        (404, "resource_not_found_error"),
        (429, "exceeded_current_quota_error"),
        (429, "rate_limit_reached_error"),
        (500, "server_error"),
        (503, "engine_overloaded_error"),
    ] {
        let case = format!("HTTP {status} {kind}");
        let result = provoke(
            &mut sweep,
            &case,
            echoing_error(status, kind),
            no_retry.clone(),
            stream_request("x"),
        );
        assert_eq!(result["http_status"], status, "{case}");
        assert!(
            result["message"].as_str().unwrap().contains("[redacted]"),
            "{case}: {result}"
        );
    }

    // An HTML page whose 200-character snippet would end inside the key.
    let page = format!("<html>{}{TEST_KEY}</html>", "p".repeat(174));
    provoke(
        &mut sweep,
        "HTML page",
        raw(
            &format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nx-trace-id: {TEST_KEY}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                page.len()
            ),
            &page,
            Duration::ZERO,
        ),
        no_retry.clone(),
        stream_request("x"),
    );

    // Timeouts, a cut stream, a malformed chunk holding the key.
    let fast = |clock: &str, ms: u64| json!({"timeouts": {clock: ms}, "retries": {"max": 0}});
    provoke(
        &mut sweep,
        "first byte",
        mute(),
        fast("first_byte_ms", 100),
        stream_request("x"),
    );
    provoke(
        &mut sweep,
        "idle",
        silent_after(&["part"]),
        fast("idle_ms", 100),
        stream_request("x"),
    );
    provoke(
        &mut sweep,
        "total",
        silent_after(&["part"]),
        fast("total_ms", 150),
        stream_request("x"),
    );
    provoke(
        &mut sweep,
        "cut",
        raw(SSE_HEAD, &events(&["cut "]), Duration::ZERO),
        json!({}),
        stream_request("x"),
    );
    provoke(
        &mut sweep,
        "malformed chunk",
        raw(
            &SSE_HEAD.replace("raw-req-1", TEST_KEY),
            &format!("data: {{\"{TEST_KEY}\": oops\n\n"),
            Duration::ZERO,
        ),
        json!({}),
        stream_request("x"),
    );
    if cfg!(debug_assertions) {
        let mut request = stream_request("x");
        request["__panic_for_test"] = json!(true);
        provoke(&mut sweep, "internal", mute(), json!({}), request);
    }

    // Refused connections, the key even in the base URL's path.
    let port = faults_common::refused_port();
    let inst = plugin()
        .create(
            &json!({"apiKey": TEST_KEY, "retries": {"max": 0},
                    "base_url": format!("http://127.0.0.1:{port}/{TEST_KEY}/v1")})
            .to_string(),
        )
        .unwrap();
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT);
    sweep.add("refused", out.result.to_string());

    // complete() refusals that would echo the host's own text.
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({"max_concurrency": 1, "max_queue": 0}));
    for request in [
        json!({"messages": "x", "model": TEST_KEY}),
        json!({"messages": "x", "model": format!("moonshot/{TEST_KEY}")}),
        json!({"messages": [{"role": TEST_KEY, "content": "x"}]}),
        json!({"messages": "x", "tools": [{"type": "function", "function": {"name": format!("{TEST_KEY}!")}}]}),
        json!({"messages": "x", "max_tokens": TEST_KEY}),
    ] {
        let Err((status, error)) = inst.complete(&request.to_string(), None) else {
            panic!("{request} was accepted");
        };
        assert_ne!(status, abi::MOONSHOT_OK);
        sweep.add("complete refusal", error);
    }
    // Busy, then cancelled.
    sim.push(silent_after(&["hold"]));
    let (running, rx) = faults_common::start(&inst, &stream_request("x"));
    faults_common::next_part(&rx);
    let Err((status, error)) = inst.complete(&stream_request("y").to_string(), None) else {
        panic!("not busy");
    };
    assert_eq!(status, abi::MOONSHOT_ERR_BUSY);
    sweep.add("busy", error);
    running.cancel();
    let out = faults_common::finish(std::time::Instant::now(), &rx);
    sweep.add("cancelled", out.result.to_string());

    // create() refusals with the key in every wrong place.
    for config in [
        json!({"apiKey": TEST_KEY, "max_queue": TEST_KEY}),
        json!({"apiKey": TEST_KEY, "base_url": format!("ftp://{TEST_KEY}")}),
        json!({"apiKey": TEST_KEY, "today": TEST_KEY}),
        json!({"apiKey": TEST_KEY, "retired_models": TEST_KEY}),
        json!({"apiKey": TEST_KEY, "timeouts": {"idle_ms": TEST_KEY}}),
        json!({"apiKey": [TEST_KEY]}),
        json!({"secret_key": {"nested": TEST_KEY}}),
        json!({TEST_KEY: TEST_KEY}),
    ] {
        let error = plugin()
            .create(&config.to_string())
            .err()
            .unwrap_or_else(|| panic!("{config} was accepted"));
        sweep.add("create refusal", error);
    }
    let truncated = format!("{{\"apiKey\":\"{TEST_KEY}\"");
    sweep.add("create refusal", plugin().create(&truncated).err().unwrap());

    sweep.check();
}
