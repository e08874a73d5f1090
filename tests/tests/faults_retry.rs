//! Retries through the C ABI (issue 5, item 1): what is retried, how often,
//! how long the plugin waits, and that nothing is retried once a part has
//! reached the host. Every count is of the requests the simulator received.

mod faults_common;

use std::time::{Duration, Instant};

use faults_common::{events, raw, stream_request, timed, SSE_HEAD};
use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator};
use moonshot_tests::harness::{instance, instance_at};
use serde_json::json;

fn chat_requests(sim: &Simulator) -> usize {
    sim.chat_bodies().len()
}

#[test]
fn rate_limits_and_overload_are_retried_until_success() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::error(
        429,
        "rate_limit_reached_error",
        "Your account org-1 request reached max RPM: 3, please try again after 1 seconds",
    ));
    sim.push(Reply::error(
        429,
        "engine_overloaded_error",
        "The engine is currently overloaded, please try again later",
    ));
    sim.push(Reply::stream(&ReplySpec {
        content: "third time lucky".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.text(), "third time lucky");
    assert_eq!(chat_requests(&sim), 3, "two retries, then the answer");
}

#[test]
fn server_errors_are_retried_up_to_the_configured_count() {
    for status in [500, 502, 503, 504] {
        let sim = Simulator::start().unwrap();
        for attempt in 0..4 {
            sim.push(Reply::error(
                status,
                "server_error",
                &format!("attempt {attempt} failed"),
            ));
        }
        let inst = instance(&sim, json!({"retries": {"max": 2, "base_delay_ms": 1}}));
        let out = timed(&inst, &stream_request("x"));
        assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM, "{status}");
        assert_eq!(chat_requests(&sim), 3, "{status}: 1 try + 2 retries");
        // The details of the last attempt, as Moonshot gave them.
        assert_eq!(out.result["code"], "server_error", "{status}");
        assert_eq!(out.result["message"], "attempt 2 failed", "{status}");
        assert_eq!(out.result["http_status"], status, "{status}");
        assert_eq!(out.result["retryable"], true, "{status}");
        assert!(out.result["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sim-req-")));
    }
    // Zero retries configured: one request.
    let sim = Simulator::start().unwrap();
    sim.push(Reply::error(503, "server_error", "down"));
    let inst = instance(&sim, json!({"retries": {"max": 0}}));
    assert_eq!(
        timed(&inst, &stream_request("x")).status,
        abi::MOONSHOT_ERR_UPSTREAM
    );
    assert_eq!(chat_requests(&sim), 1);
}

#[test]
fn client_errors_and_exhausted_quota_are_never_retried() {
    for (status, kind) in [
        (429, "exceeded_current_quota_error"),
        (400, "invalid_request_error"),
        (400, "content_filter"),
        (401, "invalid_authentication_error"),
        (403, "permission_denied_error"),
        (404, "resource_not_found_error"),
    ] {
        let sim = Simulator::start().unwrap();
        sim.push(Reply::error(status, kind, "no"));
        sim.push(Reply::stream(&ReplySpec::default()));
        let inst = instance(&sim, json!({}));
        let out = timed(&inst, &stream_request("x"));
        assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM, "{kind}");
        assert_eq!(out.result["code"], kind);
        assert_eq!(out.result["http_status"], status);
        assert_eq!(out.result["retryable"], false, "{kind}");
        assert_eq!(chat_requests(&sim), 1, "{kind} was retried");
    }
}

#[test]
fn backoff_grows_exponentially_with_jitter() {
    // base 50 ms, full jitter over the upper half: the n-th wait lies in
    // [50·2^(n-1)/2, 50·2^(n-1)] ms, i.e. [25,50], [50,100], [100,200], [200,400].
    // A constant backoff (any fixed wait up to 100 ms) fails the last two bounds.
    let sim = Simulator::start().unwrap();
    for _ in 0..5 {
        sim.push(Reply::error(503, "server_error", "busy"));
    }
    let inst = instance(
        &sim,
        json!({"retries": {"max": 4, "base_delay_ms": 50, "max_delay_ms": 10_000}}),
    );
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM);
    let arrivals: Vec<Instant> = sim
        .requests()
        .iter()
        .filter(|r| r.route().ends_with("/chat/completions"))
        .map(|r| r.received)
        .collect();
    assert_eq!(arrivals.len(), 5);
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    println!("waits between attempts: {gaps:?}");
    let ms = Duration::from_millis;
    assert!(gaps[0] >= ms(25), "{gaps:?}");
    assert!(
        gaps[2] >= ms(100),
        "third wait is at least 2 × base: {gaps:?}"
    );
    assert!(
        gaps[3] >= ms(200),
        "fourth wait is at least 4 × base: {gaps:?}"
    );
    assert!(
        gaps[3] >= gaps[0] * 3,
        "the fourth wait is several times the first: {gaps:?}"
    );
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}

#[test]
fn retry_after_is_honoured_and_capped() {
    waits_the_cap(
        Reply::Json {
            status: 429,
            headers: vec![("Retry-After".into(), "60".into())],
            body: json!({"error":{"type":"rate_limit_reached_error","message":"slow down"}}),
        },
        "Retry-After 60",
    );
}

#[test]
fn the_wait_in_moonshots_message_is_honoured_and_capped() {
    waits_the_cap(
        Reply::error(
            429,
            "rate_limit_reached_error",
            "Your account org-1 request reached max RPM: 3, please try again after 60 seconds",
        ),
        "\"after 60 seconds\"",
    );
}

/// `first` asks for a 60 s wait; with a 300 ms cap the retry comes after
/// the cap: not 60 s, and not the ~1 ms backoff the config would give.
fn waits_the_cap(first: Reply, what: &str) {
    let sim = Simulator::start().unwrap();
    sim.push(first);
    sim.push(Reply::stream(&ReplySpec::default()));
    let inst = instance(
        &sim,
        json!({"retries": {"max": 2, "base_delay_ms": 1, "max_delay_ms": 300}}),
    );
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(chat_requests(&sim), 2);
    println!("{what}, cap 300 ms: answered after {:?}", out.elapsed);
    assert!(
        out.elapsed >= Duration::from_millis(300),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}

/// A connection closed after the request went out may close after Moonshot
/// read it: a second attempt could be a second billed completion, so the
/// error goes to the host, marked not retryable, and names why.
#[test]
fn a_connection_closed_after_the_request_is_not_retried() {
    let sim = Simulator::start().unwrap();
    sim.push(raw("", "", Duration::ZERO));
    sim.push(Reply::stream(&ReplySpec {
        content: "a second completion".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert_eq!(out.result["retryable"], false, "{}", out.result);
    assert!(
        out.result["message"]
            .as_str()
            .is_some_and(|m| m.contains("may have reached the upstream")),
        "{}",
        out.result
    );
    assert_eq!(chat_requests(&sim), 1, "the request was sent once");
}

/// A connection cut during the TLS handshake, before any byte of the HTTP
/// request was written, cannot have reached Moonshot: it is retried, and
/// the error after the last attempt says it may be sent again.
#[test]
fn a_connection_cut_before_the_request_is_written_is_retried() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        // Each connection is closed at once: the client's TLS handshake
        // meets the end of the stream.
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let out = timed(
        &instance_at(&format!("https://127.0.0.1:{port}/v1"), json!({})),
        &stream_request("x"),
    );
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert_eq!(out.result["retryable"], true, "{}", out.result);
    assert!(
        !out.result["message"]
            .as_str()
            .unwrap_or_default()
            .contains("may have reached"),
        "{}",
        out.result
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "the first attempt and two retries"
    );
}

#[test]
fn connection_refused_is_a_retryable_transport_error() {
    let port = faults_common::refused_port();
    let out = timed(
        &instance_at(&format!("http://127.0.0.1:{port}/v1"), json!({})),
        &stream_request("x"),
    );
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert_eq!(out.result["code"], "transport_error");
    assert_eq!(out.result["retryable"], true);
    assert!(out.result["http_status"].is_null());
    assert!(
        out.result["message"]
            .as_str()
            .is_some_and(|m| m.to_lowercase().contains("connect")),
        "{}",
        out.result
    );
}

#[test]
fn nothing_is_retried_once_a_part_reached_the_host() {
    // 503 (retried), then a stream cut after two parts: not retried, the
    // parts are kept in the error's partial result.
    let sim = Simulator::start().unwrap();
    sim.push(Reply::error(503, "server_error", "busy"));
    sim.push(raw(SSE_HEAD, &events(&["Hel", "lo"]), Duration::ZERO));
    sim.push(Reply::stream(&ReplySpec::default()));
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert_eq!(out.result["code"], "stream_cut");
    assert_eq!(out.text(), "Hello");
    assert_eq!(out.result["partial"]["message"]["content"], "Hello");
    assert_eq!(out.result["request_id"], "raw-req-1");
    assert_eq!(chat_requests(&sim), 2, "the cut stream was retried");
}
