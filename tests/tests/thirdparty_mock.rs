//! Not only our own simulator (issue 5, item 8): the streaming, tool-call
//! and fault cases, through the C ABI, against two OpenAI-compatible mock
//! servers that third parties publish on public registries:
//!
//! - `llmock` from PyPI (`tests/thirdparty/requirements.txt`, in the
//!   project-local venv `tests/thirdparty/.venv`), scripted through its
//!   `POST /_llmock/scenario` queue: replies, tool calls, 4xx/5xx, and
//!   stream faults placed after a given chunk (malformed JSON, disconnect,
//!   truncation, stall);
//! - `@copilotkit/aimock` from npm (`tests/thirdparty/aimock/`, from its
//!   committed lock), scripted through `POST /__aimock/fixtures` (content,
//!   tool calls, chunk timing, disconnects, chaos) and one-shot
//!   `POST /__aimock/error`.
//!
//! Both are installed by `bash tests/thirdparty/install.sh`, which `.ci/run`
//! calls. Each test starts its own mock on 127.0.0.1 (the OS picks the port;
//! the mock names it in its log), waits for its health endpoint, points a
//! plugin instance at `<mock>/v1`, and kills and reaps the mock when it ends,
//! panicking or not. A mock that is not installed fails the test.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use host_demo::plugin::Instance;
use moonshot_abi as abi;
use moonshot_tests::harness::{instance_at, run, Outcome};
use moonshot_tests::kit::http;
use serde_json::{json, Value};

/// How long a mock may take to start and report healthy.
const STARTUP: Duration = Duration::from_secs(30);

/// What the scripted text replies say.
const TEXT: &str = "Kimi here, answering through a mock that someone else wrote.";

// ---- the mock processes ------------------------------------------------

fn thirdparty_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("thirdparty")
}

fn not_installed(what: &str, missing: &Path) -> ! {
    panic!(
        "the third-party mock {what} is not installed ({} is missing). \
         Install it with `bash tests/thirdparty/install.sh` (run by .ci/run); \
         it needs python3 and the PyPI / npm registries once.",
        missing.display()
    )
}

/// A mock server child process, killed and reaped on drop (even when the
/// test panics).
struct Mock {
    name: &'static str,
    child: Child,
    port: u16,
    /// Everything the mock printed, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Mock {
    /// Spawns `command` and waits until it prints `marker` followed by its
    /// port, then until `health` answers 200.
    fn spawn(name: &'static str, mut command: Command, marker: &str, health: &str) -> Mock {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let log = Arc::clone(&log);
            let port_tx = port_tx.clone();
            let marker = marker.to_string();
            // Drains the pipe until the child exits, so it never blocks.
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(port) = port_after(&line, &marker) {
                        let _ = port_tx.send(port);
                    }
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let mut mock = Mock {
            name,
            child,
            port: 0,
            log,
        };
        let deadline = Instant::now() + STARTUP;
        mock.port = loop {
            match port_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(port) => break port,
                Err(_) => mock.check_alive_before(deadline, "to name its port"),
            }
        };
        loop {
            if let Ok((200, _)) = http(mock.port, "GET", health, None) {
                break;
            }
            mock.check_alive_before(deadline, "to answer its health check");
            thread::sleep(Duration::from_millis(20));
        }
        mock
    }

    fn check_alive_before(&mut self, deadline: Instant, waiting: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}) before {waiting}", self.name);
        }
        if Instant::now() > deadline {
            panic!("{} took over {STARTUP:?} {waiting}", self.name);
        }
    }

    fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// The OpenAI-compatible base URL the plugin is pointed at.
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// A control-API call that must succeed; returns the JSON answer.
    fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, text) = http(self.port, method, path, body)
            .unwrap_or_else(|e| panic!("{} {method} {path}: {e}", self.name));
        assert!(
            (200..300).contains(&status),
            "{} {method} {path}: {status} {text}",
            self.name
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} answered {text}: {e}"))
    }

    /// A plugin instance talking to this mock, with fast retries; `extra`
    /// overrides fields.
    fn instance(&self, extra: Value) -> Instance {
        instance_at(&self.base_url(), extra)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log_text());
        }
    }
}

/// The port in `...<marker>127.0.0.1:PORT...`, when the line has the marker.
fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix("http://127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&port| port != 0)
}

/// A request to a mock's control API on `port`.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    http::request(method, &format!("http://127.0.0.1:{port}{path}"), body)
}

// ---- requests and checks shared by both mocks ----------------------------

fn weather_tool() -> Value {
    json!({"type":"function","function":{"name":"get_weather","description":"Weather for a city",
        "parameters":{"type":"object","properties":{"city":{"type":"string"},"units":{"type":"string"}},
        "required":["city"]}}})
}

fn stream_request(text: &str) -> Value {
    json!({"messages":[{"role":"user","content":text}],"stream":true})
}

/// A streamed text answer: pieces joined equal `text`, the result says the
/// same, and a usage part comes last with the bill the result carries.
fn assert_streamed_text(out: &Outcome, text: &str) {
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.text(), text);
    assert!(
        out.parts_of("text").len() > 1,
        "the answer came in pieces: {:?}",
        out.parts
    );
    assert_eq!(out.kinds().last(), Some(&"usage"), "{:?}", out.kinds());
    assert_eq!(
        out.kinds().iter().filter(|k| **k == "usage").count(),
        1,
        "{:?}",
        out.kinds()
    );
    assert_eq!(out.result["message"]["role"], "assistant");
    assert_eq!(out.result["message"]["content"], text);
    assert_eq!(out.result["finish_reason"], "stop");
    assert_eq!(out.result["model"], "kimi-k2.6");
    let usage = &out.parts.last().unwrap()["usage"];
    assert_eq!(
        out.result["usage"], *usage,
        "the result carries the same bill"
    );
}

/// One streamed tool call, assembled into one `tool_use` part with parsed
/// input, then usage.
fn assert_streamed_tool_call(out: &Outcome, id_prefix: &str) {
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    let calls = out.parts_of("tool_use");
    assert_eq!(calls.len(), 1, "{:?}", out.parts);
    let call = calls[0];
    let id = call["id"].as_str().expect("a tool call id");
    assert!(id.starts_with(id_prefix), "{call}");
    assert_eq!(
        *call,
        json!({"type":"tool_use","id":id,"name":"get_weather","input":{"city":"Paris","units":"metric"}})
    );
    assert!(out.text().is_empty(), "{:?}", out.parts);
    assert_eq!(out.kinds().last(), Some(&"usage"), "{:?}", out.kinds());
    assert_eq!(out.result["finish_reason"], "tool_calls");
    // The result's message holds the same call, its fragments joined.
    let calls = out.result["message"]["tool_calls"]
        .as_array()
        .expect("tool_calls in the result");
    assert_eq!(calls.len(), 1, "{}", out.result);
    assert_eq!(calls[0]["id"], id);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        calls[0]["function"]["arguments"]
            .as_str()
            .expect("arguments are a string"),
    )
    .expect("arguments are JSON");
    assert_eq!(arguments, call["input"]);
}

/// A failed request that kept what had already streamed: `delivered` text
/// parts reached the host, and the error's `partial` result holds them.
fn assert_failed_with_partial(out: &Outcome, status: i32, code: &str, delivered: &str) {
    assert_eq!(out.status, status, "{}", out.result);
    assert_eq!(out.result["code"], code, "{}", out.result);
    assert!(!delivered.is_empty());
    assert_eq!(out.text(), delivered, "the parts that reached the host");
    assert_eq!(
        out.result["partial"]["message"]["content"], delivered,
        "the partial result keeps them: {}",
        out.result
    );
}

// ---- llmock (PyPI) -----------------------------------------------------

mod llmock {
    use super::*;

    /// `llmock serve` on an OS-picked port.
    fn start() -> Mock {
        let exe = thirdparty_dir().join(".venv/bin/llmock");
        if !exe.exists() {
            not_installed("llmock (PyPI)", &exe);
        }
        let mut command = Command::new(&exe);
        command.args(["serve", "--host", "127.0.0.1", "--port", "0"]);
        // Uvicorn names the port it got at level info. Text answers unless
        // a tool call is scripted.
        command.args(["--log-level", "info", "--tool-mode", "off"]);
        let mock = Mock::spawn("llmock", command, "Uvicorn running on ", "/health");
        let health = mock.control("GET", "/health", None);
        assert_eq!(health["version"], "0.2.2", "the pinned llmock answers");
        mock
    }

    /// Queues scripted behaviours for the next requests.
    fn script(mock: &Mock, behaviors: Value) {
        mock.control(
            "POST",
            "/_llmock/scenario",
            Some(&json!({ "behaviors": behaviors })),
        );
    }

    /// What the mock journaled for each chat request: (status, fault).
    fn attempts(mock: &Mock) -> Vec<(u64, Value)> {
        mock.control("GET", "/_llmock/requests", None)["requests"]
            .as_array()
            .expect("a request list")
            .iter()
            .filter(|r| r["path"] == "/v1/chat/completions")
            .map(|r| (r["status"].as_u64().unwrap_or(0), r["fault"].clone()))
            .collect()
    }

    /// The word-sized pieces llmock streams `TEXT` in.
    fn pieces(n: usize) -> String {
        TEXT.split_inclusive(' ').take(n).collect()
    }

    #[test]
    fn streaming_chat() {
        let mock = start();
        script(&mock, json!([{"type":"reply","text":TEXT}]));
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("Hi"));
        assert_streamed_text(&out, TEXT);
        // llmock reports usage the OpenAI way, which the plugin reads.
        let usage = &out.result["usage"];
        assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
        assert_ne!(usage["estimated"], true, "{usage}");

        let requests = mock.control("GET", "/_llmock/requests", None);
        let body = &requests["requests"][0]["body"];
        assert_eq!(body["model"], "kimi-k2.6");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert_eq!(body["messages"], json!([{"role":"user","content":"Hi"}]));
    }

    #[test]
    fn streamed_tool_call() {
        let mock = start();
        script(
            &mock,
            json!([{"type":"reply","tool_calls":[
                {"name":"get_weather","arguments":{"city":"Paris","units":"metric"}}]}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(
            &inst,
            &json!({"stream":true,"tools":[weather_tool()],"messages":"Weather in Paris?"}),
        );
        // llmock streams the arguments in 12-character fragments.
        assert_streamed_tool_call(&out, "call_");
        let requests = mock.control("GET", "/_llmock/requests", None);
        assert_eq!(
            requests["requests"][0]["body"]["tools"],
            json!([weather_tool()])
        );
    }

    #[test]
    fn server_error_then_success_is_retried() {
        let mock = start();
        script(
            &mock,
            json!([{"type":"fail","status":500,"retry_after":0.01},{"type":"reply","text":TEXT}]),
        );
        let inst = mock.instance(json!({"retries": {"max": 2, "base_delay_ms": 1}}));
        let out = run(&inst, &stream_request("x"));
        assert_streamed_text(&out, TEXT);
        let statuses: Vec<u64> = attempts(&mock).into_iter().map(|(s, _)| s).collect();
        assert_eq!(statuses, vec![500, 200]);
    }

    #[test]
    fn rate_limits_are_retried_then_reported() {
        let mock = start();
        // One 429, then the answer.
        script(
            &mock,
            json!([{"type":"fail","status":429,"retry_after":0.01},{"type":"reply","text":TEXT}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("x"));
        assert_streamed_text(&out, TEXT);
        assert_eq!(attempts(&mock).len(), 2);

        // 429 on every try: 1 + 2 retries, then the last one's details.
        script(
            &mock,
            json!([{"type":"fail","status":429,"retry_after":0.01,"times":3,
                    "message":"Too many requests, slow down."}]),
        );
        let out = run(&inst, &stream_request("x"));
        assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM, "{}", out.result);
        assert_eq!(out.result["http_status"], 429);
        assert_eq!(out.result["retryable"], true);
        assert_eq!(
            out.result["code"], "rate_limit_error",
            "OpenAI's error type"
        );
        assert_eq!(out.result["message"], "Too many requests, slow down.");
        assert_eq!(attempts(&mock).len(), 5);
    }

    #[test]
    fn client_errors_are_not_retried() {
        let mock = start();
        script(
            &mock,
            json!([{"type":"fail","status":401},{"type":"reply","text":TEXT}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("x"));
        assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM, "{}", out.result);
        assert_eq!(out.result["http_status"], 401);
        assert_eq!(out.result["retryable"], false);
        assert_eq!(attempts(&mock).len(), 1, "401 was retried");
    }

    #[test]
    fn malformed_json_mid_stream_is_a_protocol_error() {
        let mock = start();
        // Chunk 0 opens the message, chunks 1 and 2 carry two words, chunk 3
        // is cut in half.
        script(
            &mock,
            json!([{"type":"reply","text":TEXT},
                   {"type":"stream_fault","kind":"malformed","after_chunks":3}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("x"));
        assert_failed_with_partial(
            &out,
            abi::MOONSHOT_ERR_PROTOCOL,
            "protocol_error",
            &pieces(2),
        );
        assert_eq!(
            attempts(&mock),
            vec![(200, json!("stream:malformed@3"))],
            "not retried once parts reached the host"
        );
    }

    #[test]
    fn disconnect_mid_stream_is_a_cut_stream() {
        // Mid-body, over chunked transfer encoding (how these mocks and
        // Moonshot stream): the cut surfaces as a read error rather than an
        // end of body. It is the same cut stream as one that ends without
        // [DONE] and must be reported as such.
        let mock = start();
        script(
            &mock,
            json!([{"type":"reply","text":TEXT},
                   {"type":"stream_fault","kind":"disconnect","after_chunks":3}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("x"));
        assert_failed_with_partial(&out, abi::MOONSHOT_ERR_TRANSPORT, "stream_cut", &pieces(2));
        assert_eq!(attempts(&mock), vec![(200, json!("stream:disconnect@3"))]);
    }

    #[test]
    fn truncated_stream_without_done_is_a_cut_stream() {
        // The stream ends cleanly, but early: no finish reason, no [DONE].
        let mock = start();
        script(
            &mock,
            json!([{"type":"reply","text":TEXT},
                   {"type":"stream_fault","kind":"truncate","after_chunks":4}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("x"));
        assert_failed_with_partial(&out, abi::MOONSHOT_ERR_TRANSPORT, "stream_cut", &pieces(3));
        assert_eq!(attempts(&mock), vec![(200, json!("stream:truncate@4"))]);
    }

    #[test]
    fn stall_mid_stream_hits_the_idle_timeout() {
        let mock = start();
        script(
            &mock,
            json!([{"type":"reply","text":TEXT},
                   {"type":"stream_fault","kind":"stall","after_chunks":3,"stall_seconds":20}]),
        );
        let inst = mock.instance(json!({"timeouts": {"idle_ms": 300}}));
        let started = Instant::now();
        let out = run(&inst, &stream_request("x"));
        let elapsed = started.elapsed();
        assert_failed_with_partial(&out, abi::MOONSHOT_ERR_TIMEOUT, "idle_timeout", &pieces(2));
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(attempts(&mock).len(), 1);
    }
}

// ---- aimock (npm) ------------------------------------------------------

mod aimock {
    use super::*;

    /// aimock's `llmock` CLI on an OS-picked port, with no fixtures yet.
    fn start() -> Mock {
        let dir = thirdparty_dir().join("aimock");
        let package = dir.join("node_modules/@copilotkit/aimock");
        let cli = package.join("dist/cli.js");
        if !cli.exists() {
            not_installed("@copilotkit/aimock (npm)", &cli);
        }
        let installed: Value =
            serde_json::from_str(&std::fs::read_to_string(package.join("package.json")).unwrap())
                .unwrap();
        assert_eq!(
            installed["version"], "1.43.0",
            "the pinned aimock is installed"
        );
        let mut command = Command::new("node");
        command
            .arg(&cli)
            .args(["--host", "127.0.0.1", "--port", "0"]);
        command.arg("--fixtures").arg(dir.join("fixtures"));
        command.args(["--log-level", "info"]);
        Mock::spawn("aimock", command, "listening on ", "/__aimock/health")
    }

    /// Adds fixtures (first match wins; matched on the last user message).
    fn fixtures(mock: &Mock, fixtures: Value) {
        let added = mock.control(
            "POST",
            "/__aimock/fixtures",
            Some(&json!({ "fixtures": fixtures })),
        );
        assert_eq!(added["added"], fixtures.as_array().unwrap().len());
    }

    /// Makes the next request fail with `status` and `body`.
    fn next_error(mock: &Mock, status: u16, body: Value) {
        mock.control(
            "POST",
            "/__aimock/error",
            Some(&json!({"status": status, "body": body})),
        );
    }

    /// The status of each chat request the mock answered, in order.
    fn attempts(mock: &Mock) -> Vec<u64> {
        mock.control("GET", "/__aimock/journal", None)
            .as_array()
            .expect("a journal")
            .iter()
            .filter(|e| e["path"] == "/v1/chat/completions")
            .map(|e| e["response"]["status"].as_u64().unwrap_or(0))
            .collect()
    }

    /// `TEXT` streamed 8 characters a chunk, chunk 0 being the role.
    fn text_fixture(user: &str) -> Value {
        json!({"match":{"userMessage":user},"response":{"content":TEXT},"chunkSize":8})
    }

    /// The first `n` 8-character chunks of `TEXT`.
    fn chunks(n: usize) -> String {
        TEXT.chars().take(8 * n).collect()
    }

    /// Chunk timing: chunk 0 (the role) and three text chunks at once, then
    /// a 20 s pause before the rest.
    fn pause_after_three_text_chunks() -> Value {
        json!({"ttftMs":0,"interChunkDelaysMs":[0,0,0,20000],"totalDurationMs":20000})
    }

    #[test]
    fn streaming_chat() {
        let mock = start();
        fixtures(&mock, json!([text_fixture("Hi")]));
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("Hi"));
        assert_streamed_text(&out, TEXT);
        assert_eq!(out.parts_of("text").len(), TEXT.len().div_ceil(8));
        let usage = &out.result["usage"];
        assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
        assert_ne!(usage["estimated"], true, "{usage}");

        let journal = mock.control("GET", "/__aimock/journal", None);
        let entry = &journal[0];
        // The plugin authenticated; aimock's journal redacts the key itself.
        assert_eq!(entry["headers"]["authorization"], "[REDACTED]");
        assert_eq!(entry["body"]["model"], "kimi-k2.6");
        assert_eq!(
            entry["body"]["stream_options"],
            json!({"include_usage": true})
        );
    }

    #[test]
    fn streamed_tool_call() {
        let mock = start();
        fixtures(
            &mock,
            json!([{"match":{"userMessage":"Weather in Paris?","toolName":"get_weather"},
                    "response":{"toolCalls":[{"name":"get_weather","arguments":{"city":"Paris","units":"metric"}}]},
                    "chunkSize":7}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(
            &inst,
            &json!({"stream":true,"tools":[weather_tool()],"messages":"Weather in Paris?"}),
        );
        assert_streamed_tool_call(&out, "call_");
    }

    #[test]
    fn server_error_then_success_is_retried() {
        let mock = start();
        fixtures(&mock, json!([text_fixture("x")]));
        next_error(&mock, 500, json!({"message":"boom","type":"server_error"}));
        let inst = mock.instance(json!({"retries": {"max": 2, "base_delay_ms": 1}}));
        let out = run(&inst, &stream_request("x"));
        assert_streamed_text(&out, TEXT);
        assert_eq!(attempts(&mock), vec![500, 200]);
    }

    #[test]
    fn rate_limits_are_retried_but_exhausted_quota_is_not() {
        let mock = start();
        fixtures(&mock, json!([text_fixture("x")]));
        let inst = mock.instance(json!({}));
        // Moonshot's own 429 types, in aimock's OpenAI-shaped envelope.
        next_error(
            &mock,
            429,
            json!({"type":"rate_limit_reached_error","message":"request reached max RPM: 3"}),
        );
        let out = run(&inst, &stream_request("x"));
        assert_streamed_text(&out, TEXT);
        assert_eq!(attempts(&mock), vec![429, 200]);

        next_error(
            &mock,
            429,
            json!({"type":"exceeded_current_quota_error","message":"Your account is suspended"}),
        );
        let out = run(&inst, &stream_request("x"));
        assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM, "{}", out.result);
        assert_eq!(out.result["code"], "exceeded_current_quota_error");
        assert_eq!(out.result["message"], "Your account is suspended");
        assert_eq!(out.result["http_status"], 429);
        assert_eq!(out.result["retryable"], false);
        assert!(
            out.result["request_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("req-")),
            "aimock's X-Request-Id: {}",
            out.result
        );
        assert_eq!(attempts(&mock), vec![429, 200, 429], "quota was retried");
    }

    #[test]
    fn disconnect_mid_stream_is_a_cut_stream() {
        // The connection is destroyed at 200 ms, during the pause, mid-body
        // of a chunked response: the same cut stream as in llmock's case.
        let mock = start();
        fixtures(
            &mock,
            json!([{"match":{"userMessage":"x"},"response":{"content":TEXT},"chunkSize":8,
                    "recordedTimings":pause_after_three_text_chunks(),"disconnectAfterMs":200}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("x"));
        assert_failed_with_partial(&out, abi::MOONSHOT_ERR_TRANSPORT, "stream_cut", &chunks(3));
        assert_eq!(
            attempts(&mock).len(),
            1,
            "not retried once parts reached the host"
        );
    }

    #[test]
    fn stall_mid_stream_hits_the_idle_timeout() {
        let mock = start();
        fixtures(
            &mock,
            json!([{"match":{"userMessage":"x"},"response":{"content":TEXT},"chunkSize":8,
                    "recordedTimings":pause_after_three_text_chunks()}]),
        );
        let inst = mock.instance(json!({"timeouts": {"idle_ms": 300}}));
        let started = Instant::now();
        let out = run(&inst, &stream_request("x"));
        let elapsed = started.elapsed();
        assert_failed_with_partial(&out, abi::MOONSHOT_ERR_TIMEOUT, "idle_timeout", &chunks(3));
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }

    #[test]
    fn malformed_json_answer_is_a_protocol_error() {
        // aimock's chaos "malformed" answers the streaming request with
        // `200 application/json` and `{malformed json: <<<chaos>>>`: not an
        // event stream, not JSON. An answer that cannot be understood is a
        // protocol error; nothing was cut.
        let mock = start();
        fixtures(
            &mock,
            json!([{"match":{"userMessage":"x"},"response":{"content":TEXT},"chaos":{"malformedRate":1}}]),
        );
        let inst = mock.instance(json!({}));
        let out = run(&inst, &stream_request("x"));
        assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
        assert!(out.parts.is_empty(), "{:?}", out.parts);
        assert_eq!(attempts(&mock), vec![200]);
    }
}
