//! The real puter.js (npm @heyputer/puter.js 2.6.3, unmodified, under Node)
//! chatting through `host-demo serve`, with the Moonshot simulator behind it.
//!
//! tests/js/e2e.js runs the checks one by one. Before each, it names the
//! check and waits; this test scripts the simulator's replies for that check,
//! says "go", and when the check reports, compares what reached the
//! simulator. A check that leaves scripted replies unused has them drained,
//! so one failure cannot shift the next check's replies. Node and npm are
//! required: without them this test fails, it does not skip.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use moonshot_simulator::{Reply, ReplySpec, Simulator, ToolCallSpec, UsageSpec};
use moonshot_tests::harness::{TEST_KEY, TODAY};
use moonshot_tests::kit::process::Process;
use moonshot_tests::kit::{http, workspace_root, ScratchDir};
use moonshot_tests::plugin::plugin_path;
use moonshot_tests::serve::{host_demo_exe, raw_http, Serve};
use serde_json::{json, Value};

/// The checks e2e.js runs, in its order.
const CHECKS: &[&str] = &[
    "plain-chat",
    "provider-and-model-resolution",
    "errors-before-upstream",
    "upstream-error-is-readable",
    "streamed-chat",
    "tool-call-round-trip",
    "thinking-through-reasoning-options",
    "web-search-among-the-tools",
    "image-message",
    "chinese-text-intact",
    "partial-mode",
    "options-puter-js-drops",
    "driver-call-forwards-every-option",
    "models-listing",
    "stream-is-incremental-and-fails-in-band",
];

/// Bounds: the whole run, starting the host, and one protocol step.
const RUN_LIMIT: Duration = Duration::from_secs(300);
const START_LIMIT: Duration = Duration::from_secs(60);

const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const SEARCH_ARGS: &str = r#"{"search_result":{"search_id":"sr-1"},"usage":{"total_tokens":256}}"#;

#[test]
fn the_e2e_script_type_checks_against_moonshot_d_ts() {
    let js = js_dir();
    ensure_js_deps(&js);
    let out = Command::new("node")
        .arg(js.join("node_modules/typescript/bin/tsc"))
        .args(["--noEmit", "-p", "tsconfig.json"])
        .current_dir(&js)
        .output()
        .expect("run tsc under node");
    assert!(
        out.status.success(),
        "tsc found errors in tests/js/e2e.js or include/moonshot.d.ts:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn puter_js_chats_through_host_demo_serve() {
    let js = js_dir();
    ensure_js_deps(&js);
    let started = Instant::now();
    let exe = host_demo_exe();
    eprintln!(
        "host-demo built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut sim = Simulator::start().expect("start the simulator");
    let scratch = ScratchDir::new("puter-js");
    let config = scratch.0.join("puter.json");
    let provider = json!({
        "apiKey": TEST_KEY,
        "base_url": sim.base_url(),
        "today": TODAY,
        "retries": {"max": 1, "base_delay_ms": 1, "max_delay_ms": 20},
    });
    std::fs::write(
        &config,
        json!({"providers": {"moonshot": provider}}).to_string(),
    )
    .expect("write the config");

    // The host, on a port the OS picks; its first stdout line is its URL.
    let mut serve = Command::new(&exe);
    serve
        .args(["serve", "--port", "0", "--config"])
        .arg(&config)
        .arg("--library")
        .arg(plugin_path())
        // puter.js's Node transport (its XMLHttpRequest shim) puts this
        // Origin on every request, whatever the page; serve trusts no
        // origin but loopback pages unless told.
        .args(["--allow-origin", "https://puter.work"])
        .env_remove("MOONSHOT_API_KEY")
        .env_remove("MOONSHOT_BASE_URL");
    let (serve, serve_out, serve_log) = Process::spawn(serve, "host-demo serve");
    let origin = serve_out
        .recv_timeout(START_LIMIT)
        .unwrap_or_else(|_| {
            panic!(
                "host-demo serve printed no URL; its stderr:\n{}",
                serve_log.text()
            )
        })
        .trim()
        .to_string();
    assert!(
        origin.starts_with("http://127.0.0.1:"),
        "host-demo serve must print its URL first, not {origin:?}"
    );

    let mut node = Command::new("node");
    node.arg("e2e.js")
        .current_dir(&js)
        .env("PUTER_E2E_ORIGIN", &origin);
    let (mut node, node_out, node_log) = Process::spawn(node, "node e2e.js");
    let mut stdin = node.stdin();

    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut current: Option<(String, usize, usize, Instant)> = None;
    let mut sim_running = true;
    let mut stray: Vec<Value> = Vec::new();
    let mut finished = false;
    let deadline = Instant::now() + RUN_LIMIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = node_out.recv_timeout(left) else {
            break;
        };
        let Some(event) = line.strip_prefix("@@e2e ") else {
            node_log.push(&line);
            continue;
        };
        let event: Value = serde_json::from_str(event).expect("protocol lines are JSON");
        let check = event["check"].as_str().unwrap_or_default().to_string();
        match event["event"].as_str() {
            Some("begin") => {
                let replies = script(&check);
                let pushed = replies.len();
                for reply in replies {
                    sim.push(reply);
                }
                current = Some((check, sim.chat_bodies().len(), pushed, Instant::now()));
                go(&mut stdin);
            }
            Some("signal") => {
                if (check.as_str(), event["what"].as_str())
                    == (
                        "stream-is-incremental-and-fails-in-band",
                        Some("parts-while-upstream-open"),
                    )
                {
                    // The client holds parts while Moonshot is still sending;
                    // now cut Moonshot off mid-stream.
                    sim.shutdown();
                    sim_running = false;
                }
                go(&mut stdin);
            }
            Some("result") => {
                let (name, mark, pushed, began) = current.take().expect("a result follows a begin");
                assert_eq!(name, check, "results come in order");
                let bodies: Vec<Value> = sim.chat_bodies().split_off(mark);
                if sim_running {
                    for _ in bodies.len()..pushed {
                        drain_one_reply(sim.addr());
                    }
                }
                let client = if event["ok"] == true {
                    Ok(event["detail"].clone())
                } else {
                    Err(event["error"].as_str().unwrap_or("?").to_string())
                };
                outcomes.push(Outcome {
                    took: began.elapsed(),
                    upstream: verify(&check, &bodies),
                    name: check,
                    client,
                    bodies,
                });
            }
            Some("done") => {
                stray = event["stray_requests"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                finished = true;
                break;
            }
            _ => panic!("unknown protocol line: {line}"),
        }
    }
    node.finish(&node_out, &node_log);
    let edges = host_edges(origin.trim_start_matches("http://"));

    let mut report = String::new();
    let mut failures = 0;
    if edges.is_empty() {
        report.push_str("ok   host-http-edges\n");
    } else {
        failures += 1;
        report.push_str("FAIL host-http-edges\n");
        for problem in &edges {
            report.push_str(&format!("       {problem}\n"));
        }
    }
    for name in CHECKS {
        let Some(outcome) = outcomes.iter().find(|o| o.name == *name) else {
            failures += 1;
            report.push_str(&format!("FAIL {name}: never reported\n"));
            continue;
        };
        let mut problems: Vec<String> = outcome.upstream.clone();
        if let Err(error) = &outcome.client {
            problems.insert(0, format!("client side: {error}"));
        }
        let took = outcome.took.as_secs_f64();
        if problems.is_empty() {
            report.push_str(&format!("ok   {name} ({took:.2} s)\n"));
        } else {
            failures += 1;
            report.push_str(&format!("FAIL {name} ({took:.2} s)\n"));
            for problem in problems {
                report.push_str(&format!("       {}\n", problem.replace('\n', "\n       ")));
            }
            report.push_str(&format!(
                "       upstream bodies: {}\n",
                Value::from(outcome.bodies.clone())
            ));
        }
    }
    for outcome in &outcomes {
        if !CHECKS.contains(&outcome.name.as_str()) {
            failures += 1;
            report.push_str(&format!("FAIL {}: not a known check\n", outcome.name));
        }
    }
    if !finished {
        failures += 1;
        report.push_str("FAIL the script did not finish within the time limit or died\n");
    }
    if !stray.is_empty() {
        failures += 1;
        report.push_str(&format!(
            "FAIL requests left for somewhere other than the host: {stray:?}\n"
        ));
    }
    eprintln!(
        "puter.js end to end ({:.1} s):\n{report}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures == 0,
        "{failures} puter.js check(s) failed:\n{report}\nnode's other output:\n{}\nhost-demo serve's stderr:\n{}",
        node_log.text(),
        serve_log.text()
    );
    drop(serve);
}

/// `serve --auth-token`: puter.js is refused (403, not the 401 that would
/// start its sign-in) until `puter.setAuthToken`, then chats, streamed or
/// not, with the token it sends in every driver call.
#[test]
fn puter_js_set_auth_token_carries_the_serve_token() {
    let js = js_dir();
    ensure_js_deps(&js);
    let sim = Simulator::start().expect("start the simulator");
    let config = json!({"providers": {"moonshot": {"apiKey": TEST_KEY, "base_url": sim.base_url(), "today": TODAY}}});
    let token = "serve-token-7c1e";
    let serve = Serve::start(
        &config,
        &[
            "--allow-origin",
            "https://puter.work",
            "--auth-token",
            token,
        ],
        &[],
    );
    let out = Command::new("node")
        .arg("token.js")
        .current_dir(&js)
        .env("PUTER_E2E_ORIGIN", format!("http://{}", serve.addr))
        .env("PUTER_E2E_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("run node token.js");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let outcome: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "token.js printed no outcome:\n{stdout}\n{}\nserve's log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                serve.log()
            )
        });
    assert_eq!(
        outcome["without"]["error"]["code"], "forbidden",
        "{outcome}"
    );
    assert_eq!(outcome["without"]["error"]["status"], 403, "{outcome}");
    let said = outcome["with"].as_str().unwrap_or_default();
    assert!(!said.is_empty(), "{outcome}\n{}", serve.log());
    assert_eq!(outcome["streamed"].as_str(), Some(said), "{outcome}");
}

struct Outcome {
    name: String,
    took: Duration,
    client: Result<Value, String>,
    upstream: Vec<String>,
    bodies: Vec<Value>,
}

/// The simulator's replies for a check, in the order its requests come.
fn script(check: &str) -> Vec<Reply> {
    let usage = |prompt, completion, cached| {
        Some(UsageSpec {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
        })
    };
    let say = |content: &str| ReplySpec {
        content: content.into(),
        ..ReplySpec::default()
    };
    match check {
        "plain-chat" => vec![Reply::completion(&ReplySpec {
            usage: usage(12, 5, 0),
            ..say("Hello from Kimi.")
        })],
        "upstream-error-is-readable" => vec![Reply::error(
            400,
            "content_filter",
            "The request was rejected because it was considered high risk",
        )],
        "streamed-chat" => vec![Reply::stream(&ReplySpec {
            chunk_chars: 6,
            usage: usage(20, 9, 4),
            ..say("Once upon a time, a small kite flew.")
        })],
        "tool-call-round-trip" => vec![
            Reply::stream(&ReplySpec {
                reasoning: Some("The user wants the weather in Paris.".into()),
                tool_calls: vec![ToolCallSpec {
                    id: "functions.get_weather:0".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                }],
                finish_reason: "tool_calls".into(),
                usage: usage(30, 12, 0),
                chunk_chars: 8,
                ..say("")
            }),
            Reply::completion(&say("It is 18°C and sunny in Paris.")),
        ],
        "thinking-through-reasoning-options" => vec![
            Reply::stream(&ReplySpec {
                reasoning: Some("Sunlight scatters off air molecules; blue scatters most.".into()),
                chunk_chars: 12,
                ..say("Because of Rayleigh scattering.")
            }),
            Reply::completion(&ReplySpec {
                model: "kimi-k3".into(),
                reasoning: Some("Water absorbs red light.".into()),
                ..say("It reflects the sky and absorbs red.")
            }),
            Reply::completion(&say("4")),
        ],
        "web-search-among-the-tools" => vec![
            Reply::stream(&ReplySpec {
                tool_calls: vec![ToolCallSpec {
                    id: "search:0".into(),
                    name: "$web_search".into(),
                    arguments: SEARCH_ARGS.into(),
                }],
                finish_reason: "tool_calls".into(),
                usage: usage(40, 10, 0),
                chunk_chars: 16,
                ..say("")
            }),
            Reply::stream(&ReplySpec {
                usage: usage(300, 9, 0),
                chunk_chars: 10,
                ..say("A marathon crosses Paris today.")
            }),
        ],
        "image-message" => vec![Reply::completion(&ReplySpec {
            model: "kimi-k3".into(),
            ..say("A single red pixel.")
        })],
        "chinese-text-intact" => vec![
            Reply::stream(&ReplySpec {
                chunk_chars: 1,
                ..say("你好！我是 Kimi，由月之暗面训练的助手。🌙")
            }),
            Reply::completion(&say("好的：我是 Kimi。")),
        ],
        "partial-mode" => vec![Reply::stream(&say(" rises over quiet hills"))],
        "options-puter-js-drops" => vec![Reply::completion(&say("Hello from Kimi."))],
        "driver-call-forwards-every-option" => vec![Reply::completion(&say(
            r#"{"colours":["red","green","blue"]}"#,
        ))],
        "stream-is-incremental-and-fails-in-band" => {
            // Two content events, then silence with the connection open
            // until the test shuts the simulator down.
            let event = |delta: Value| {
                let chunk = json!({"id": "chatcmpl-raw", "object": "chat.completion.chunk",
                    "created": 0, "model": "kimi-k2.6",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
                format!("data: {chunk}\n\n").into_bytes()
            };
            vec![Reply::Raw {
                head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nx-request-id: sim-raw-1\r\nConnection: close\r\n\r\n".into(),
                body: vec![
                    event(json!({"role": "assistant", "content": ""})),
                    event(json!({"content": "First words, "})),
                    event(json!({"content": "then more"})),
                ],
                delay: Duration::ZERO,
                hold_open: Duration::from_secs(120),
            }]
        }
        // The default Kimi answers, or no upstream request at all.
        _ => Vec::new(),
    }
}

/// What must have reached the simulator during a check; each string is one
/// way it did not.
fn verify(check: &str, bodies: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            problems.push(format!("upstream: {what}"));
        }
    };
    let count = |n: usize| bodies.len() == n;
    let user = |text: &str| json!({"role": "user", "content": text});
    let web_search = json!({"type": "builtin_function", "function": {"name": "$web_search"}});
    let has_tool = |body: &Value, tool: &Value| {
        body["tools"]
            .as_array()
            .is_some_and(|tools| tools.contains(tool))
    };
    match check {
        "plain-chat" => {
            expect(count(1), "one request");
            if let [b] = bodies {
                expect(b["model"] == "kimi-k2.6", "model kimi-k2.6");
                expect(
                    b["messages"] == json!([user("Hello, Kimi!")]),
                    "the string prompt as one user message",
                );
                expect(b.get("stream").is_none(), "no stream");
            }
        }
        "provider-and-model-resolution" => {
            let models: Vec<&Value> = bodies.iter().map(|b| &b["model"]).collect();
            expect(
                models == [&json!("kimi-k2.6"), &json!("kimi-k2.6"), &json!("kimi-k3"), &json!("kimi-k2.7-code")],
                "models kimi-k2.6 (provider default), kimi-k2.6 (alias), kimi-k3 (model over an unknown provider), kimi-k2.7-code (puterId)",
            );
        }
        "errors-before-upstream" | "models-listing" => expect(count(0), "nothing sent upstream"),
        "upstream-error-is-readable" => {
            expect(count(1), "one request (content_filter is not retried)");
        }
        "streamed-chat" => {
            expect(count(1), "one request");
            if let [b] = bodies {
                expect(b["stream"] == true, "stream: true");
                expect(
                    b["stream_options"]["include_usage"] == true,
                    "stream_options.include_usage",
                );
                expect(
                    b["messages"] == json!([user("Tell me a story")]),
                    "the prompt",
                );
            }
        }
        "tool-call-round-trip" => {
            expect(count(2), "two requests (the call, then the follow-up)");
            if let [first, second] = bodies {
                let tool = &first["tools"][0];
                expect(
                    first["tools"].as_array().map(Vec::len) == Some(1)
                        && tool["type"] == "function"
                        && tool["function"]["name"] == "get_weather"
                        && tool["function"]["parameters"]
                            == json!({"type": "object",
                                "properties": {"city": {"type": "string", "description": "City name"}},
                                "required": ["city"]}),
                    "the get_weather tool as puter.js sent it",
                );
                expect(first["stream"] == true, "the first turn streams");
                let messages = second["messages"].as_array().cloned().unwrap_or_default();
                expect(messages.len() == 3, "three messages in the follow-up");
                if let [question, assistant, result] = messages.as_slice() {
                    expect(
                        *question == user("What is the weather in Paris?"),
                        "the question",
                    );
                    let call = &assistant["tool_calls"][0];
                    let arguments: Option<Value> = call["function"]["arguments"]
                        .as_str()
                        .and_then(|a| serde_json::from_str(a).ok());
                    expect(
                        assistant["role"] == "assistant"
                            && call["id"] == "functions.get_weather:0"
                            && call["type"] == "function"
                            && call["function"]["name"] == "get_weather"
                            && arguments == Some(json!({"city": "Paris"})),
                        "the assistant's tool call, from Puter's tool_use block",
                    );
                    expect(
                        assistant["reasoning_content"] == "The user wants the weather in Paris.",
                        "the turn's reasoning sent back with its tool call",
                    );
                    expect(
                        assistant.get("content").is_none_or(|c| c != ""),
                        "no empty content beside tool_calls",
                    );
                    expect(
                        *result
                            == json!({"role": "tool", "tool_call_id": "functions.get_weather:0",
                                "content": "18°C and sunny"}),
                        "the tool result, from Puter's tool_result block",
                    );
                }
                expect(
                    second["tools"][0]["function"]["name"] == "get_weather",
                    "the tools again",
                );
            }
        }
        "thinking-through-reasoning-options" => {
            expect(count(3), "three requests");
            if let [k26, k3, off] = bodies {
                expect(
                    k26["model"] == "kimi-k2.6"
                        && k26["thinking"]["type"] == "enabled"
                        && k26.get("reasoning_effort").is_none(),
                    "kimi-k2.6 with reasoning_effort 'high': thinking {type: enabled}, no reasoning_effort",
                );
                expect(
                    k3["model"] == "kimi-k3"
                        && k3["reasoning_effort"] == "low"
                        && k3.get("thinking").is_none(),
                    "kimi-k3 with reasoning {effort: 'low'}: reasoning_effort 'low', no thinking",
                );
                expect(
                    off["thinking"]["type"] == "disabled" && off.get("reasoning_effort").is_none(),
                    "kimi-k2.6 with reasoning_effort 'none': thinking {type: disabled}",
                );
            }
        }
        "web-search-among-the-tools" => {
            expect(
                count(2),
                "two requests: the search call, then the answer after it",
            );
            if let [first, second] = bodies {
                expect(
                    has_tool(first, &web_search),
                    "$web_search declared as a builtin_function",
                );
                expect(has_tool(second, &web_search), "declared again");
                let messages = second["messages"].as_array().cloned().unwrap_or_default();
                let tail = &messages[messages.len().saturating_sub(2)..];
                let echoed = tail.len() == 2 && {
                    let call = &tail[0]["tool_calls"][0];
                    tail[0]["role"] == "assistant"
                        && call["id"] == "search:0"
                        && call["function"]["name"] == "$web_search"
                        && call["function"]["arguments"] == SEARCH_ARGS
                        && tail[1]
                            == json!({"role": "tool", "tool_call_id": "search:0",
                                "name": "$web_search", "content": SEARCH_ARGS})
                };
                expect(
                    echoed,
                    "the search call echoed back with its arguments as the tool message",
                );
            }
        }
        "image-message" => {
            expect(count(1), "one request");
            if let [b] = bodies {
                expect(b["model"] == "kimi-k3", "model kimi-k3");
                expect(
                    b["messages"]
                        == json!([{"role": "user", "content": [
                            {"type": "text", "text": "What is in this picture?"},
                            {"type": "image_url", "image_url": {"url": PNG}}]}]),
                    "the prompt and the image as Moonshot parts",
                );
            }
        }
        "chinese-text-intact" => {
            expect(count(2), "two requests");
            if let [first, second] = bodies {
                expect(
                    first["messages"] == json!([user("用一句话介绍你自己。")]),
                    "the Chinese prompt intact",
                );
                expect(
                    second["messages"] == json!([user("再说一遍。")]),
                    "the second prompt intact",
                );
            }
        }
        "partial-mode" => {
            expect(count(1), "one request");
            if let [b] = bodies {
                expect(
                    b["messages"][1]
                        == json!({"role": "assistant", "content": "Autumn moon", "partial": true}),
                    "the prefix as Moonshot's partial assistant message",
                );
            }
        }
        "options-puter-js-drops" => {
            expect(count(1), "one request");
            if let [b] = bodies {
                for field in [
                    "response_format",
                    "tool_choice",
                    "top_p",
                    "prompt_cache_key",
                    "tools",
                ] {
                    expect(
                        b.get(field).is_none(),
                        &format!("no {field}: puter.ai.chat 2.6.3 does not send it"),
                    );
                }
            }
        }
        "driver-call-forwards-every-option" => {
            expect(count(1), "one request");
            if let [b] = bodies {
                expect(
                    b["thinking"] == json!({"type": "enabled", "keep": "all"}),
                    "thinking {type: enabled, keep: all}",
                );
                expect(
                    b["response_format"] == json!({"type": "json_object"}),
                    "response_format json_object",
                );
                expect(
                    b["prompt_cache_key"] == "session-42",
                    "prompt_cache_key session-42",
                );
                expect(
                    has_tool(b, &web_search),
                    "web_search: true declares $web_search",
                );
            }
        }
        "stream-is-incremental-and-fails-in-band" => {
            expect(count(1), "one request (parts were delivered: no retry)");
        }
        _ => {}
    }
    problems
}

/// What the host answers outside puter.js's happy paths, over raw HTTP:
/// every answer is JSON with a Content-Type (puter.js hangs without one).
fn host_edges(addr: &str) -> Vec<String> {
    let post = |extra: &str, body: &str| {
        format!(
            "POST /drivers/call HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let list = r#"{"interface":"puter-chat-completion","method":"list"}"#;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "an unknown route",
            format!("GET /nope HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
            404,
            r#""code":"not_found""#,
        ),
        (
            "the wrong method",
            format!("GET /drivers/call HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
            405,
            "Allow: POST",
        ),
        (
            "a body that is not JSON",
            post("", "{nope"),
            400,
            r#""code":"bad_request""#,
        ),
        (
            "another web site's page",
            post("Origin: https://evil.example\r\n", list),
            403,
            r#""code":"forbidden""#,
        ),
        (
            "a request for another host name (DNS rebinding)",
            "GET /puterai/chat/models/details HTTP/1.1\r\nHost: evil.example\r\n\r\n".into(),
            403,
            r#""code":"forbidden""#,
        ),
        (
            "a loopback page",
            post("Origin: http://localhost:5173\r\n", list),
            200,
            "Access-Control-Allow-Origin: http://localhost:5173",
        ),
        (
            "a body over the limit",
            format!(
                "POST /drivers/call HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
                64 * 1024 * 1024 + 1
            ),
            413,
            r#""success":false"#,
        ),
    ];
    let mut problems = Vec::new();
    for (what, request, status, needle) in cases {
        match raw_http(addr, &request) {
            Ok((got, text)) => {
                if got != status || !text.contains(needle) {
                    problems.push(format!("{what}: want {status} with {needle}, got:\n{text}"));
                } else if !text.contains("Content-Type: application/json") {
                    problems.push(format!("{what}: no JSON Content-Type:\n{text}"));
                }
            }
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    }
    let preflight = format!(
        "OPTIONS /drivers/call HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://localhost:5173\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\n\r\n"
    );
    match raw_http(addr, &preflight) {
        Ok((204, text))
            if text.contains("Access-Control-Allow-Headers: authorization")
                && text.contains("Access-Control-Allow-Credentials: true")
                && text.contains("Content-Type:") => {}
        other => problems.push(format!("a CORS preflight from a loopback page: {other:?}")),
    }
    problems
}

/// Uses up one scripted reply the check did not, with a request of our own.
fn drain_one_reply(addr: SocketAddr) {
    let _ = http::request(
        "POST",
        &format!("http://{addr}/v1/chat/completions"),
        Some(&json!({})),
    );
}

fn go(stdin: &mut ChildStdin) {
    stdin
        .write_all(b"go\n")
        .and_then(|()| stdin.flush())
        .expect("tell the script to go on");
}

fn js_dir() -> PathBuf {
    workspace_root().join("tests").join("js")
}

/// tests/js/node_modules from package-lock.json (`npm ci`) unless present.
/// CI installs them first (.ci/run); this covers a plain `cargo test`.
fn ensure_js_deps(js: &Path) {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let version = Command::new("node").arg("--version").output();
        match version {
            Ok(out) if out.status.success() => {}
            _ => panic!(
                "node (20 or newer) is required for the puter.js end-to-end test; install Node.js"
            ),
        }
        let installed = ["@heyputer/puter.js", "typescript", "@types/node"]
            .iter()
            .all(|p| {
                js.join("node_modules")
                    .join(p)
                    .join("package.json")
                    .exists()
            });
        if installed {
            return;
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js)
            .output()
            .unwrap_or_else(|e| panic!("npm is required to install tests/js's packages: {e}"));
        assert!(
            out.status.success(),
            "npm ci in tests/js failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}
