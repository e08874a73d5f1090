//! The fine print of the C contract (issue 12), from a C host:
//! `tests/c/contract.c` checks what a C programmer reads in the header and
//! could not test without our code: a queued request's cancel or release
//! answers at once, NULL out pointers and a zero `struct_size` are refused,
//! callbacks see the handle `complete` stored and may not block on it,
//! `request_result` inside `on_done` has the final JSON, request ids come
//! from Moonshot's own headers, account ids never reach the host; and the
//! library survives dlclose (twice in one process, then exit).
//!
//! gcc is required: when missing the tests fail (CI installs it).

use std::ffi::OsStr;
use std::time::Duration;

use moonshot_simulator::{Reply, ReplySpec, Simulator};
use moonshot_tests::c_host::{
    build_c_program, one_part_then_silence, run_with_timeout, ScratchDir,
};
use moonshot_tests::plugin::plugin_path;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A queued request's `on_done` after cancel/release: "well under 100 ms".
const PROMPT_MS: f64 = 100.0;

const CANCELLED: i32 = 10;
const INVALID_ARGUMENT: i32 = 2;
const UPSTREAM: i32 = 6;
const PENDING: i32 = 1;

/// What Moonshot's rate limiter says, naming the account.
const ACCOUNT_MESSAGE: &str = "Your account org-0123abcd<ak-4567efgh> request reached \
                               organization max RPM: 3, please try again after 1 seconds";

/// A whole SSE answer with Moonshot's id headers (and a generic one, which
/// must lose to them), closed by the server.
fn stream_with_ids(text: &str) -> Reply {
    let chunk = json!({"choices":[{"index":0,"delta":{"content":text}}]});
    let last = json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]});
    Reply::Raw {
        head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
               Msh-Request-Id: msh-req-42\r\nX-Msh-Trace-Id: msh-trace-42\r\n\
               x-request-id: generic-42\r\nConnection: close\r\n\r\n"
            .into(),
        body: vec![format!("data: {chunk}\n\ndata: {last}\n\ndata: [DONE]\n\n").into_bytes()],
        delay: Duration::ZERO,
        hold_open: Duration::ZERO,
    }
}

/// Runs tests/c/contract.c in `mode`; returns its stdout lines' text.
fn run(mode: &str, sim: &Simulator) -> String {
    let dir = ScratchDir::new(&format!("c-{mode}"));
    let exe = build_c_program(&dir.0, "contract", &[]);
    let plugin = plugin_path();
    let base_url = sim.base_url();
    let (status, stdout, stderr) = run_with_timeout(
        exe.as_os_str(),
        &[OsStr::new(mode), plugin.as_os_str(), OsStr::new(&base_url)],
        TIMEOUT,
    );
    let context = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    let status = status.unwrap_or_else(|| panic!("no end within {TIMEOUT:?}\n{context}"));
    assert!(
        status.success(),
        "contract {mode} failed: {status}\n{context}"
    );
    stdout
}

/// The words after `prefix ` on its one line.
fn line<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    let with = format!("{prefix} ");
    let found: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(with.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "one `{prefix}` line expected:\n{stdout}");
    found[0].splitn(3, ' ').collect()
}

fn number<T: std::str::FromStr>(word: &str) -> T {
    word.parse()
        .unwrap_or_else(|_| panic!("not a number: {word:?}"))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn the_c_contract_holds() {
    let sim = Simulator::start().expect("start the simulator");
    // In contract.c's order: the stream that holds the only thread (the two
    // queued ones never reach upstream), the probed stream, a completion
    // with only a trace id, and a 429 that names the account.
    sim.push(one_part_then_silence("held"));
    sim.push(stream_with_ids("probed"));
    sim.push(Reply::Json {
        status: 200,
        headers: vec![("X-Msh-Trace-Id".into(), "msh-trace-7".into())],
        body: json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "kimi-k2.6",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "plain"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }),
    });
    sim.push(Reply::Json {
        status: 429,
        headers: vec![("Msh-Request-Id".into(), "msh-err-9".into())],
        body: json!({"error": {"type": "rate_limit_reached_error", "message": ACCOUNT_MESSAGE}}),
    });
    let out = run("contract", &sim);
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");

    // 1. A queued request's cancel and release answer at once.
    for label in ["queued-cancel", "queued-release"] {
        let words = line(&out, label);
        let ms: f64 = number(words[0]);
        assert_eq!(number::<i32>(words[1]), CANCELLED, "{label}\n{out}");
        assert!(ms < PROMPT_MS, "{label}: on_done after {ms} ms\n{out}");
    }
    // 2. request_result with a NULL out pointer.
    assert_eq!(
        number::<i32>(line(&out, "result-null-out")[0]),
        INVALID_ARGUMENT
    );
    // 3. struct_size 0: refused, no handle, an error that says why.
    let words = line(&out, "struct-size-zero");
    assert_eq!(number::<i32>(words[0]), INVALID_ARGUMENT, "{out}");
    assert_eq!(words[1], "1", "a refused complete left a handle\n{out}");
    assert!(words[2].contains("struct_size"), "{out}");
    // 6. The callback read the handle the host stored.
    assert_eq!(line(&out, "probe-handle-seen")[0], "1", "{out}");
    // 4. wait() on a pool thread: an error at once, not 10 s.
    let words = line(&out, "probe-wait");
    assert_eq!(number::<i32>(words[0]), INVALID_ARGUMENT, "{out}");
    assert!(number::<f64>(words[1]) < 1000.0, "{out}");
    assert_eq!(number::<i32>(line(&out, "probe-pending")[0]), PENDING);
    // 5. request_result inside on_done: the final status and the same JSON.
    let words = line(&out, "probe-result-in-done");
    assert_eq!((words[0], words[1]), ("0", "1"), "{out}");
    // 7. Request ids from Moonshot's headers, streamed or not, errors too.
    let words = line(&out, "probe-done");
    assert_eq!(words[0], "0", "{out}");
    let done = parse(&words[1..].join(" "));
    assert_eq!(done["message"]["content"], "probed", "{done}");
    assert_eq!(done["request_id"], "msh-req-42", "{done}");
    let words = line(&out, "trace-result");
    assert_eq!(words[0], "0", "{out}");
    assert_eq!(parse(&words[1..].join(" "))["request_id"], "msh-trace-7");
    // 8. The account's ids never reach the host.
    let words = line(&out, "upstream-error");
    assert_eq!(number::<i32>(words[0]), UPSTREAM, "{out}");
    let err = parse(&words[1..].join(" "));
    assert_eq!(err["request_id"], "msh-err-9", "{err}");
    assert_eq!(err["code"], "rate_limit_reached_error", "{err}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("org-[redacted]<ak-[redacted]>") && message.contains("after 1 seconds"),
        "{err}"
    );
    for id in ["0123abcd", "4567efgh"] {
        assert!(!out.contains(id), "{id} reached the host:\n{out}");
    }
    // The queued ones never reached upstream.
    assert_eq!(sim.chat_bodies().len(), 4);
}

#[test]
fn the_library_survives_dlclose_twice_and_exit() {
    let sim = Simulator::start().expect("start the simulator");
    for _ in 0..2 {
        sim.push(Reply::stream(&ReplySpec {
            content: "before dlclose".into(),
            ..Default::default()
        }));
    }
    let out = run("unload", &sim);
    assert_eq!(out.lines().last(), Some("unloaded 2"), "{out}");
    assert_eq!(sim.chat_bodies().len(), 2);
}
