//! A real C consumer of the plugin: `tests/c/host.c` is compiled with gcc
//! against `include/moonshot_provider.h`, loads the built cdylib with dlopen
//! and talks to the simulator; `tests/c/header_check.cpp` proves the header
//! is valid C++ with working `extern "C"` guards.
//!
//! gcc and g++ are required: when either is missing the tests fail (CI
//! installs them); nothing is skipped.

use std::ffi::OsStr;
use std::time::Duration;

use moonshot_simulator::Simulator;
use moonshot_tests::c_host::{
    build_host, c_source, compile, include_dir, run_with_timeout, script, ScratchDir,
    SLOW_CHUNK_CHARS, SLOW_CONTENT,
};
use moonshot_tests::plugin::plugin_path;
use serde_json::Value;

const HOST_TIMEOUT: Duration = Duration::from_secs(60);

fn parse(json: &str, what: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {json}"))
}

/// The rest of the one line starting with `prefix `; fails unless exactly one does.
fn one_line<'a>(lines: &[&'a str], prefix: &str) -> &'a str {
    let with = format!("{prefix} ");
    let found: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(with.as_str()))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one `{prefix} ...` line, got {found:?}"
    );
    found[0]
}

/// Splits `"<status> <json>"`.
fn status_and_json(rest: &str, what: &str) -> (i32, Value) {
    let (status, json) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("{what}: no JSON after the status in {rest:?}"));
    let status = status
        .parse()
        .unwrap_or_else(|_| panic!("{what}: bad status {status:?}"));
    (status, parse(json, what))
}

/// Every `prefix <json>` line, parsed, in order.
fn parts(lines: &[&str], prefix: &str) -> Vec<Value> {
    let with = format!("{prefix} ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(with.as_str()))
        .map(|json| parse(json, prefix))
        .collect()
}

/// The usage the streaming answer must report: 12 prompt tokens of which 4
/// cached, 6 output; kimi-k2.6 at 95 / 16 / 400 microcents a token.
fn assert_stream_usage(usage: &Value, what: &str) {
    assert_eq!(usage["prompt_tokens"], 12, "{what}: {usage}");
    assert_eq!(usage["cached_tokens"], 4, "{what}: {usage}");
    assert_eq!(usage["completion_tokens"], 6, "{what}: {usage}");
    assert_eq!(usage["estimated"], false, "{what}: {usage}");
    assert_eq!(usage["cost"]["model"], "kimi-k2.6", "{what}: {usage}");
    assert_eq!(
        usage["cost"]["total_ucents"],
        8 * 95 + 4 * 16 + 6 * 400,
        "{what}: {usage}"
    );
    assert_eq!(usage["cost"]["total_ucents"], 3224, "{what}: {usage}");
}

#[test]
fn header_compiles_as_cpp_with_c_linkage() {
    let dir = ScratchDir::new("header-check");
    let object = dir.0.join("header_check.o");
    let include = include_dir();
    let source = c_source("header_check.cpp");
    compile(
        "g++",
        &[
            "-std=c++17".as_ref(),
            "-Wall".as_ref(),
            "-Wextra".as_ref(),
            "-Wpedantic".as_ref(),
            "-Werror".as_ref(),
            "-I".as_ref(),
            include.as_os_str(),
            "-c".as_ref(),
            source.as_os_str(),
            "-o".as_ref(),
            object.as_os_str(),
        ],
    );
    // The object references the entry: by its C name thanks to the extern
    // "C" guards, never by a C++-mangled one.
    let bytes = std::fs::read(&object).expect("read header_check.o");
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"\0moonshot_get_api\0"),
        "header_check.o does not reference the C symbol moonshot_get_api"
    );
    assert!(
        !has(b"_Z16moonshot_get_api"),
        "header_check.o references a C++-mangled moonshot_get_api: the extern \"C\" guards are broken"
    );
}

#[test]
fn c_host_drives_the_whole_table() {
    let dir = ScratchDir::new("c-host");
    let exe = build_host(&dir.0, &[]);
    let plugin = plugin_path();

    let sim = Simulator::start().expect("start the simulator");
    script(&sim);

    let base_url = sim.base_url();
    let (status, stdout, stderr) = run_with_timeout(
        exe.as_os_str(),
        &[plugin.as_os_str(), OsStr::new(&base_url)],
        HOST_TIMEOUT,
    );
    let context = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    let status = status
        .unwrap_or_else(|| panic!("the C host did not finish within {HOST_TIMEOUT:?}\n{context}"));
    assert!(status.success(), "the C host failed: {status}\n{context}");
    let lines: Vec<&str> = stdout.lines().collect();
    let check = |ok: bool, what: &str| assert!(ok, "{what}\n{context}");

    // Line kinds, in the order the host prints them.
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    let mut order = kinds.clone();
    order.dedup();
    check(
        order
            == [
                "abi",
                "create-null",
                "default",
                "models",
                "list",
                "costs",
                "live-drift",
                "balance",
                "chunk",
                "done",
                "result",
                "tool-chunk",
                "tool-done",
                "unknown-model",
                "cancel-chunk",
                "cancel-done",
                "cancelled",
                "inflight-chunk",
                "inflight-done",
                "destroyed-inflight",
                "ok",
            ],
        &format!("unexpected line order {order:?}"),
    );
    check(lines.last() == Some(&"ok"), "the last line is not `ok`");

    // The table.
    let abi = one_line(&lines, "abi");
    check(
        abi == format!("1.1 moonshot {}", env!("CARGO_PKG_VERSION")),
        &format!("abi line {abi:?}"),
    );

    // create(NULL) fails with INVALID_ARGUMENT and error details.
    let (st, err) = status_and_json(one_line(&lines, "create-null"), "create-null");
    check(
        st == 2,
        "create(NULL) status is not MOONSHOT_ERR_INVALID_ARGUMENT",
    );
    check(
        err["code"] == "invalid_argument",
        &format!("create(NULL) error {err}"),
    );
    check(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("config_json")),
        &format!("create(NULL) error does not name config_json: {err}"),
    );

    // The queries.
    check(
        one_line(&lines, "default") == "\"kimi-k2.6\"",
        "default model",
    );
    let models: usize = one_line(&lines, "models").parse().expect("models count");
    check(models >= 1, "models() lists no model");
    check(
        lines.contains(&"list contains kimi-k2.6: yes"),
        "list() lacks kimi-k2.6",
    );
    let costs: usize = one_line(&lines, "costs").parse().expect("costs count");
    check(
        costs >= 3 * models,
        &format!("reported_costs has {costs} rows for {models} models"),
    );

    // ABI 1.1: the live list agrees with the catalog; the balance in microcents.
    check(
        one_line(&lines, "live-drift") == "false",
        "live_models reports drift",
    );
    check(
        one_line(&lines, "balance") == "4958894000",
        "balance is not the simulator's 49.58894 USD in microcents",
    );

    // The stream: reasoning parts, then text parts, then one usage part.
    let chunks = parts(&lines, "chunk");
    let mut phase = 0;
    let (mut reasoning, mut text) = (String::new(), String::new());
    for (i, part) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        match part["type"].as_str() {
            Some("reasoning") if phase == 0 && !last => {
                reasoning.push_str(part["reasoning"].as_str().expect("reasoning text"))
            }
            Some("text") if phase <= 1 && !last => {
                phase = 1;
                text.push_str(part["text"].as_str().expect("text"));
            }
            Some("usage") if last => assert_stream_usage(&part["usage"], "usage part"),
            _ => panic!("stream part {i} out of place: {part}\n{context}"),
        }
    }
    check(
        reasoning == "thinking...",
        &format!("streamed reasoning {reasoning:?}"),
    );
    check(
        text == "Hello from the simulator",
        &format!("streamed text {text:?}"),
    );

    let (st, done) = status_and_json(one_line(&lines, "done"), "done");
    check(st == 0, "the stream's on_done status is not MOONSHOT_OK");
    check(
        done["message"]["content"] == "Hello from the simulator",
        &format!("done message {done}"),
    );
    check(
        done["message"]["reasoning"] == "thinking...",
        &format!("done reasoning {done}"),
    );
    check(
        done["message"]["role"] == "assistant",
        &format!("done role {done}"),
    );
    check(
        done["finish_reason"] == "stop",
        &format!("done finish_reason {done}"),
    );
    assert_stream_usage(&done["usage"], "on_done usage");

    // The callback-less completion, fetched with request_result.
    let (st, result) = status_and_json(one_line(&lines, "result"), "result");
    check(st == 0, "the plain completion's status is not MOONSHOT_OK");
    check(
        result["message"]["content"] == "Plain answer",
        &format!("plain result {result}"),
    );
    check(
        result["finish_reason"] == "stop",
        &format!("plain finish_reason {result}"),
    );

    // The streamed tool call: reasoning, then one whole tool_use part, then usage.
    let tool_parts = parts(&lines, "tool-chunk");
    let tool_kinds: Vec<&str> = tool_parts
        .iter()
        .map(|p| p["type"].as_str().unwrap_or("?"))
        .collect();
    let (reasoning_parts, rest) =
        tool_kinds.split_at(tool_kinds.iter().take_while(|k| **k == "reasoning").count());
    check(
        !reasoning_parts.is_empty() && rest == ["tool_use", "usage"],
        &format!("tool stream part kinds {tool_kinds:?}"),
    );
    check(
        tool_parts[reasoning_parts.len()]
            == serde_json::json!({"type":"tool_use","id":"functions.get_weather:0","name":"get_weather","input":{"city":"Paris"}}),
        &format!("tool_use part {}", tool_parts[reasoning_parts.len()]),
    );
    let (st, tool_done) = status_and_json(one_line(&lines, "tool-done"), "tool-done");
    check(
        st == 0 && tool_done["finish_reason"] == "tool_calls",
        &format!("tool-done {tool_done}"),
    );
    check(
        tool_done["message"]["tool_calls"][0]["function"]["arguments"] == r#"{"city":"Paris"}"#,
        &format!("tool-done tool_calls {tool_done}"),
    );
    check(
        sim.chat_bodies()[2]["tools"][0]["function"]["name"] == "get_weather",
        "the tool request declared get_weather upstream",
    );

    // The unknown model, refused synchronously.
    let (st, err) = status_and_json(one_line(&lines, "unknown-model"), "unknown-model");
    check(
        st == 4,
        "unknown model status is not MOONSHOT_ERR_UNKNOWN_MODEL",
    );
    check(
        err["code"] == "unknown_model",
        &format!("unknown-model error {err}"),
    );
    check(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("kimi-does-not-exist")),
        &format!("unknown-model error does not name the model: {err}"),
    );

    // The cancelled stream: it ended with CANCELLED, mid-stream.
    let cancel_parts = parts(&lines, "cancel-chunk");
    let total_text_parts = SLOW_CONTENT.len().div_ceil(SLOW_CHUNK_CHARS);
    check(
        !cancel_parts.is_empty() && cancel_parts.len() < total_text_parts,
        &format!(
            "the cancelled stream delivered {} parts (expected 1..{total_text_parts})",
            cancel_parts.len()
        ),
    );
    let mut received = String::new();
    for part in &cancel_parts {
        check(
            part["type"] == "text",
            &format!("cancelled stream part {part}"),
        );
        received.push_str(part["text"].as_str().unwrap_or_default());
    }
    check(
        SLOW_CONTENT.starts_with(&received),
        &format!("cancelled stream text {received:?}"),
    );
    let (st, cancel_done) = status_and_json(one_line(&lines, "cancel-done"), "cancel-done");
    check(
        st == 10,
        "the cancelled stream's on_done status is not MOONSHOT_ERR_CANCELLED",
    );
    check(
        cancel_done["code"] == "cancelled",
        &format!("cancel error {cancel_done}"),
    );
    check(
        cancel_done["partial"]["message"]["content"] == received.as_str(),
        &format!("cancel partial does not hold the {received:?} received: {cancel_done}"),
    );
    check(
        one_line(&lines, "cancelled") == "10",
        "wait() after cancel did not return 10",
    );

    // Destroy with two streams in flight: each was cancelled inside destroy,
    // keeping the one part it had delivered.
    let mut inflight: Vec<String> = parts(&lines, "inflight-chunk")
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_string())
        .collect();
    inflight.sort();
    check(
        inflight == moonshot_tests::c_host::INFLIGHT_TEXTS,
        &format!("in-flight parts {inflight:?}"),
    );
    let mut kept = Vec::new();
    for rest in lines
        .iter()
        .filter_map(|l| l.strip_prefix("inflight-done "))
    {
        let (st, done) = status_and_json(rest, "inflight-done");
        check(st == 10, "an in-flight stream did not end cancelled");
        kept.push(
            done["partial"]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    kept.sort();
    check(
        kept == moonshot_tests::c_host::INFLIGHT_TEXTS,
        &format!("in-flight partials {kept:?}"),
    );
    check(
        one_line(&lines, "destroyed-inflight") == "2",
        "destroy did not end both in-flight streams",
    );

    // What reached the simulator: the six completions, in order.
    let bodies = sim.chat_bodies();
    check(
        bodies.len() == 6,
        &format!(
            "the simulator got {} chat requests: {bodies:?}",
            bodies.len()
        ),
    );
    let first = &bodies[0];
    check(first["stream"] == true, &format!("first body {first}"));
    check(
        first["model"] == "kimi-k2.6",
        &format!("first body {first}"),
    );
    check(
        first["messages"].as_array().is_some_and(|messages| {
            messages
                .iter()
                .any(|m| m["role"] == "user" && m["content"] == "Hello from C")
        }),
        &format!("first body lacks the user message: {first}"),
    );
    check(
        bodies[1]["stream"] != true,
        &format!("the plain completion was sent as a stream: {}", bodies[1]),
    );
    check(
        bodies[3]["stream"] == true,
        &format!("the cancelled completion was not a stream: {}", bodies[3]),
    );
}
