//! The plugin over real TLS: the simulator serves HTTPS with a certificate
//! from a CA made up for each test, handed to the plugin through the `tls`
//! config block. Chat, streaming, tools and faults cross TLS here; an
//! untrusted certificate and a wrong host name each fail with a transport
//! error that says why.

mod faults_common;

use faults_common::{next_part, silent_after, start, stream_request, timed, PATIENCE};
use host_demo::plugin::{Event, Instance};
use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator, TestCa, ToolCallSpec, UsageSpec};
use moonshot_tests::harness::{instance, plugin, run, TEST_KEY};
use serde_json::{json, Value};

/// The names the simulator's certificate is usually for: its IP address
/// (an IP subject alternative name) and `localhost`.
const LOOPBACK: &[&str] = &["127.0.0.1", "localhost"];

/// An instance trusting `ca` (as PEM text) on top of the default roots.
fn trusting(sim: &Simulator, ca: &TestCa, extra: Value) -> Instance {
    let mut config = json!({"tls": {"ca_pem": ca.ca_pem()}});
    if let (Some(into), Value::Object(extra)) = (config.as_object_mut(), extra) {
        into.extend(extra);
    }
    instance(sim, config)
}

fn ok(out: &moonshot_tests::harness::Outcome) {
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
}

#[test]
fn streaming_chat_crosses_tls_to_an_ip_address() {
    let ca = TestCa::new(LOOPBACK);
    let sim = Simulator::start_tls(&ca).unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    sim.push(Reply::stream(&ReplySpec {
        reasoning: Some("Greet back.".into()),
        content: "Hello over TLS!".into(),
        usage: Some(UsageSpec {
            prompt_tokens: 12,
            completion_tokens: 5,
            cached_tokens: 0,
        }),
        chunk_chars: 4,
        ..ReplySpec::default()
    }));
    let inst = trusting(&sim, &ca, json!({}));
    let out = run(&inst, &json!({"messages":[{"content":"Hi"}],"stream":true}));
    ok(&out);
    assert_eq!(out.text(), "Hello over TLS!");
    assert_eq!(out.reasoning(), "Greet back.");
    assert_eq!(out.parts_of("usage")[0]["usage"]["prompt_tokens"], 12);
    // The simulator decrypted exactly what the plugin sent, key included.
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
    assert_eq!(sim.chat_bodies()[0]["messages"][0]["content"], "Hi");
}

#[test]
fn tool_calls_cross_tls_to_a_host_name_with_the_ca_from_a_file() {
    let ca = TestCa::new(LOOPBACK);
    let sim = Simulator::start_tls(&ca).unwrap();
    sim.push(Reply::completion(&ReplySpec {
        content: String::new(),
        tool_calls: vec![ToolCallSpec {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Oslo\"}".into(),
        }],
        finish_reason: "tool_calls".into(),
        ..ReplySpec::default()
    }));
    let file = TempFile::new("ca.pem", ca.ca_pem());
    let inst = instance(
        &sim,
        json!({"base_url": sim.base_url_for("localhost"), "tls": {"ca_file": file.path()}}),
    );
    let tool = json!({"type":"function","function":{"name":"get_weather","parameters":
        {"type":"object","properties":{"city":{"type":"string"}}}}});
    let out = run(&inst, &json!({"tools":[tool],"messages":"Oslo?"}));
    ok(&out);
    assert_eq!(
        out.result["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Oslo\"}"
    );
    assert_eq!(
        sim.requests()[0]
            .header("host")
            .map(|h| h.split(':').next()),
        Some(Some("localhost"))
    );
}

#[test]
fn the_system_store_plus_a_ca_works_and_roots_are_checked() {
    let ca = TestCa::new(LOOPBACK);
    let sim = Simulator::start_tls(&ca).unwrap();
    let inst = instance(
        &sim,
        json!({"tls": {"roots": "both", "ca_pem": ca.ca_pem()}}),
    );
    ok(&run(&inst, &json!({"messages":"Hi"})));
    let refused = plugin()
        .create(&json!({"apiKey": TEST_KEY, "tls": {"roots": "mine"}}).to_string())
        .err()
        .expect("an unknown root source is refused");
    assert!(refused.contains("tls.roots"), "{refused}");
}

#[test]
fn a_retried_503_and_an_idle_stream_behave_as_over_plain_http() {
    let ca = TestCa::new(LOOPBACK);
    let sim = Simulator::start_tls(&ca).unwrap();
    sim.push(Reply::error(503, "engine_overloaded_error", "busy"));
    sim.push(Reply::stream(&ReplySpec {
        content: "second try".into(),
        ..ReplySpec::default()
    }));
    let inst = trusting(&sim, &ca, json!({"timeouts": {"idle_ms": 300}}));
    let out = run(&inst, &json!({"messages":"Hi","stream":true}));
    ok(&out);
    assert_eq!(out.text(), "second try");
    assert_eq!(
        sim.requests().len(),
        2,
        "one retry, over a new TLS connection"
    );

    // A stream that goes silent is ended by the idle clock, TLS or not.
    sim.push(silent_after(&["Hel", "lo"]));
    let out = timed(&inst, &stream_request("Hi"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TIMEOUT, "{}", out.result);
    assert_eq!(out.result["code"], "idle_timeout");
    assert_eq!(out.text(), "Hello");
    assert!(out.elapsed < PATIENCE, "{:?}", out.elapsed);
}

#[test]
fn cancelling_wakes_a_read_blocked_inside_tls() {
    let ca = TestCa::new(LOOPBACK);
    let sim = Simulator::start_tls(&ca).unwrap();
    sim.push(silent_after(&["first"]));
    let inst = trusting(&sim, &ca, json!({}));
    let (request, events) = start(&inst, &stream_request("Hi"));
    assert_eq!(next_part(&events)["text"], "first");
    request.cancel();
    match events.recv_timeout(PATIENCE) {
        Ok(Event::Done(status, _)) => assert_eq!(status, abi::MOONSHOT_ERR_CANCELLED),
        other => panic!("expected the end, got {other:?}"),
    }
}

/// The error a request to `sim` ends with when the instance has `config`.
fn failure(sim: &Simulator, config: Value) -> Value {
    let inst = instance(sim, config);
    let out = run(&inst, &json!({"messages":"Hi"}));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert!(sim.requests().is_empty(), "nothing was sent in clear");
    out.result.clone()
}

#[test]
fn an_untrusted_certificate_is_a_transport_error_saying_so() {
    let ca = TestCa::new(LOOPBACK);
    let sim = Simulator::start_tls(&ca).unwrap();
    // The bundled web roots do not know the test CA; nor does the system.
    for config in [json!({}), json!({"tls": {"roots": "system"}})] {
        let error = failure(&sim, config);
        assert_eq!(error["code"], "tls_untrusted_certificate", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("not trusted"), "{message}");
        assert!(!message.contains(TEST_KEY));
        assert_eq!(error["retryable"], false);
    }
    // Another CA's certificate is no better.
    let other = TestCa::new(LOOPBACK);
    let error = failure(&sim, json!({"tls": {"ca_pem": other.ca_pem()}}));
    assert_eq!(error["code"], "tls_untrusted_certificate", "{error}");
}

#[test]
fn a_certificate_for_another_name_is_a_transport_error_naming_the_host() {
    let ca = TestCa::new(&["api.example.test"]);
    let sim = Simulator::start_tls(&ca).unwrap();
    for url in [sim.base_url(), sim.base_url_for("localhost")] {
        let error = failure(
            &sim,
            json!({"base_url": url, "tls": {"ca_pem": ca.ca_pem()}}),
        );
        assert_eq!(error["code"], "tls_wrong_host", "{error}");
        let message = error["message"].as_str().unwrap();
        let host = if url.contains("localhost") {
            "localhost"
        } else {
            "127.0.0.1"
        };
        assert!(message.contains(host), "{message}");
        assert!(message.contains("api.example.test"), "{message}");
    }
}

/// A file in the temp directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "moonshot-network-tls-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write a temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A 256 KiB worker stack carries the deepest request the tests make, even
/// in a debug build: a TLS handshake, a streamed tool call with reasoning,
/// a schema nested to serde_json's depth limit. (128 KiB does not; the
/// default is 512 KiB, the rest being room for the host's callbacks.)
#[test]
fn a_quarter_mib_worker_stack_carries_tls_tools_and_deep_json() {
    let ca = TestCa::new(LOOPBACK);
    let sim = Simulator::start_tls(&ca).unwrap();
    let inst = trusting(&sim, &ca, json!({"worker_stack_kib": 256}));
    let mut deep = json!("leaf");
    for _ in 0..120 {
        deep = json!({"nested": deep});
    }
    let tool = json!({"type":"function","function":{"name":"get_weather","parameters":
        {"type":"object","properties":{"city":{"type":"string"},"extra":deep}}}});
    let out = run(
        &inst,
        &json!({"stream":true,"tools":[tool],"messages":[{"content":"Paris"}]}),
    );
    ok(&out);
    assert_eq!(out.parts_of("tool_use").len(), 1, "{:?}", out.parts);
    let out = run(&inst, &json!({"messages":[{"content":"Hi"}],"stream":true}));
    ok(&out);
}
