//! The real puter.js (npm @heyputer/puter.js 2.6.3, unmodified, under Node)
//! chatting through `host-demo serve`, with the Moonshot simulator behind it.
//!
//! tests/js/e2e.js holds the checks, one table entry each: what puter.js
//! does and asserts, the simulator's replies, and what must reach the
//! simulator. Before each check it sends the replies and expectations and
//! waits; this test scripts the simulator, says "go", and when the check
//! reports, verifies the expectations against the bodies the simulator
//! recorded. A check that leaves scripted replies unused has them drained,
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

/// Bounds: the whole run, starting the host, and one protocol step.
const RUN_LIMIT: Duration = Duration::from_secs(300);
const START_LIMIT: Duration = Duration::from_secs(60);

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
    let mut planned: Vec<String> = Vec::new();
    let mut current: Option<Current> = None;
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
            Some("plan") => {
                planned = event["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
            }
            Some("begin") => {
                let replies: Vec<Reply> = event["replies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| reply_from(r).unwrap_or_else(|e| panic!("{check}: {e}")))
                    .collect();
                let pushed = replies.len();
                for reply in replies {
                    sim.push(reply);
                }
                let expected = event["upstream"].as_array().cloned().unwrap_or_default();
                current = Some(Current {
                    name: check,
                    mark: sim.chat_bodies().len(),
                    pushed,
                    expected,
                    began: Instant::now(),
                });
                go(&mut stdin);
            }
            Some("signal") => {
                match event["what"].as_str() {
                    // The client holds parts while Moonshot is still sending;
                    // now cut Moonshot off mid-stream.
                    Some("shut-down-upstream") => {
                        sim.shutdown();
                        sim_running = false;
                    }
                    other => panic!("{check} signalled {other:?}, which this runner does not know"),
                }
                go(&mut stdin);
            }
            Some("result") => {
                let began = current.take().expect("a result follows a begin");
                assert_eq!(began.name, check, "results come in order");
                let bodies: Vec<Value> = sim.chat_bodies().split_off(began.mark);
                if sim_running {
                    for _ in bodies.len()..began.pushed {
                        drain_one_reply(sim.addr());
                    }
                }
                let client = if event["ok"] == true {
                    Ok(event["detail"].clone())
                } else {
                    Err(event["error"].as_str().unwrap_or("?").to_string())
                };
                outcomes.push(Outcome {
                    took: began.began.elapsed(),
                    upstream: verify(&began.expected, &bodies),
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

    let run = Run {
        edges,
        planned,
        outcomes,
        finished,
        stray,
    };
    let (failures, report) = run.report();
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

/// What one run of e2e.js came to, beside the host's HTTP edges.
struct Run {
    edges: Vec<String>,
    planned: Vec<String>,
    outcomes: Vec<Outcome>,
    finished: bool,
    stray: Vec<Value>,
}

impl Run {
    /// How many things failed, and a line (or more) for each check.
    fn report(&self) -> (usize, String) {
        let mut report = String::new();
        let mut failures = 0;
        if self.edges.is_empty() {
            report.push_str("ok   host-http-edges\n");
        } else {
            failures += 1;
            report.push_str("FAIL host-http-edges\n");
            for problem in &self.edges {
                report.push_str(&format!("       {problem}\n"));
            }
        }
        if self.planned.is_empty() {
            failures += 1;
            report.push_str("FAIL the script named no checks\n");
        }
        for name in &self.planned {
            let Some(outcome) = self.outcomes.iter().find(|o| o.name == *name) else {
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
        for outcome in &self.outcomes {
            if !self.planned.contains(&outcome.name) {
                failures += 1;
                report.push_str(&format!("FAIL {}: not a known check\n", outcome.name));
            }
        }
        if !self.finished {
            failures += 1;
            report.push_str("FAIL the script did not finish within the time limit or died\n");
        }
        if !self.stray.is_empty() {
            failures += 1;
            report.push_str(&format!(
                "FAIL requests left for somewhere other than the host: {:?}\n",
                self.stray
            ));
        }
        (failures, report)
    }
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

/// The check under way: its name, where its bodies start among the
/// simulator's, how many replies it scripted, what it expects upstream.
struct Current {
    name: String,
    mark: usize,
    pushed: usize,
    expected: Vec<Value>,
    began: Instant,
}

/// A simulator reply from e2e.js's declaration (its `Reply` typedef).
fn reply_from(declared: &Value) -> Result<Reply, String> {
    let spec = |s: &Value| -> Result<ReplySpec, String> {
        let mut spec = ReplySpec {
            content: s["content"]
                .as_str()
                .ok_or_else(|| format!("a reply without content: {s}"))?
                .to_string(),
            ..ReplySpec::default()
        };
        if let Some(model) = s["model"].as_str() {
            spec.model = model.to_string();
        }
        spec.reasoning = s["reasoning"].as_str().map(str::to_string);
        if let Some(reason) = s["finish_reason"].as_str() {
            spec.finish_reason = reason.to_string();
        }
        if let Some(n) = s["chunk_chars"].as_u64() {
            spec.chunk_chars = n as usize;
        }
        if let Some([prompt, completion, cached]) = s["usage"].as_array().map(Vec::as_slice) {
            let count = |v: &Value| v.as_u64().ok_or_else(|| format!("a usage count: {v}"));
            spec.usage = Some(UsageSpec {
                prompt_tokens: count(prompt)?,
                completion_tokens: count(completion)?,
                cached_tokens: count(cached)?,
            });
        }
        for call in s["tool_calls"].as_array().into_iter().flatten() {
            let field = |name: &str| {
                call[name]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("a tool call without {name}: {call}"))
            };
            spec.tool_calls.push(ToolCallSpec {
                id: field("id")?,
                name: field("name")?,
                arguments: field("arguments")?,
            });
        }
        Ok(spec)
    };
    if let Some(s) = declared.get("completion") {
        Ok(Reply::completion(&spec(s)?))
    } else if let Some(s) = declared.get("stream") {
        Ok(Reply::stream(&spec(s)?))
    } else if let Some(e) = declared.get("error") {
        let status = e["status"].as_u64().and_then(|n| u16::try_from(n).ok());
        match (status, e["type"].as_str(), e["message"].as_str()) {
            (Some(status), Some(kind), Some(message)) => Ok(Reply::error(status, kind, message)),
            _ => Err(format!(
                "an error reply needs status, type and message: {e}"
            )),
        }
    } else if let Some(raw) = declared.get("raw") {
        Ok(Reply::Raw {
            head: raw["head"]
                .as_str()
                .ok_or_else(|| format!("a raw reply without head: {raw}"))?
                .to_string(),
            body: raw["events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|event| format!("data: {event}\n\n").into_bytes())
                .collect(),
            delay: Duration::ZERO,
            hold_open: Duration::from_millis(raw["hold_open_ms"].as_u64().unwrap_or(0)),
        })
    } else {
        Err(format!("not a reply e2e.js can declare: {declared}"))
    }
}

/// The value at `path` ('1/messages/-2/role') in `root`: object keys, and
/// array indices counted from the end when negative. None when absent.
fn at<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('/')
        .filter(|step| !step.is_empty())
        .try_fold(root, |value, step| match value {
            Value::Array(items) => {
                let index: i64 = step.parse().ok()?;
                let index = if index < 0 {
                    items.len().checked_sub(index.unsigned_abs() as usize)?
                } else {
                    index as usize
                };
                items.get(index)
            }
            Value::Object(map) => map.get(step),
            _ => None,
        })
}

/// Checks a check's upstream expectations (e2e.js's `Expect` typedef)
/// against the bodies that reached the simulator; each string is one that
/// did not hold.
fn verify(expected: &[Value], bodies: &[Value]) -> Vec<String> {
    let root = Value::Array(bodies.to_vec());
    let mut problems = Vec::new();
    for expect in expected {
        let what = expect["what"]
            .as_str()
            .unwrap_or("(an expectation without `what`)");
        let found = at(&root, expect["at"].as_str().unwrap_or(""));
        let holds = if let Some(value) = expect.get("equals") {
            found == Some(value)
        } else if let Some(value) = expect.get("not_equals") {
            found != Some(value)
        } else if expect.get("absent") == Some(&Value::Bool(true)) {
            found.is_none()
        } else if let Some(value) = expect.get("contains") {
            found
                .and_then(Value::as_array)
                .is_some_and(|items| items.contains(value))
        } else if let Some(value) = expect.get("parsed_equals") {
            found
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .as_ref()
                == Some(value)
        } else if let Some(length) = expect.get("length").and_then(Value::as_u64) {
            found.and_then(Value::as_array).map(Vec::len) == Some(length as usize)
        } else {
            problems.push(format!(
                "upstream: {what}: not an expectation this runner knows: {expect}"
            ));
            continue;
        };
        if !holds {
            problems.push(format!("upstream: {what}"));
        }
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
