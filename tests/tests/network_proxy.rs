//! The plugin through an HTTP CONNECT proxy the test starts: with the
//! `proxy` config field (credentials in the URL) and with the conventional
//! environment variables (set in a child process only, so no other test
//! sees them). Against an HTTPS upstream the proxy sees the CONNECT line and
//! then only ciphertext: no key, no prompt, no answer.

mod faults_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use faults_common::PATIENCE;
use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator, TestCa};
use moonshot_tests::harness::{instance, run, Outcome, TEST_KEY};
use parking_lot::Mutex;
use serde_json::{json, Value};

const PROMPT: &str = "a prompt the proxy must not read";
const ANSWER: &str = "an answer the proxy must not read";
const USER: &str = "alice";
const PASSWORD: &str = "pr0xy-pa55word";

/// What the proxy saw of one tunnel.
#[derive(Debug, Default, Clone)]
struct Tunnel {
    /// The CONNECT request's head, as sent.
    head: String,
    /// Every byte it relayed, both ways.
    relayed: Vec<u8>,
}

/// A CONNECT proxy on 127.0.0.1, optionally demanding Basic credentials.
struct ConnectProxy {
    addr: SocketAddr,
    tunnels: mpsc::Receiver<Tunnel>,
}

impl ConnectProxy {
    fn start(credentials: Option<(&str, &str)>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let expected = credentials.map(|(user, password)| {
            use base64::Engine;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("proxy-authorization: basic {}", token.to_ascii_lowercase())
        });
        let (tx, tunnels) = mpsc::channel();
        // Detached: it ends with the test process; each tunnel is bounded
        // by read timeouts.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let tx = tx.clone();
                let expected = expected.clone();
                thread::spawn(move || {
                    if let Some(tunnel) = serve(stream, expected.as_deref()) {
                        let _ = tx.send(tunnel);
                    }
                });
            }
        });
        ConnectProxy { addr, tunnels }
    }

    fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    fn next_tunnel(&self) -> Tunnel {
        self.tunnels
            .recv_timeout(PATIENCE)
            .expect("the proxy saw a connection")
    }
}

/// Reads a CONNECT head, checks credentials, connects and relays.
fn serve(client: TcpStream, expected_auth: Option<&str>) -> Option<Tunnel> {
    client.set_read_timeout(Some(PATIENCE)).ok()?;
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" || head.len() > 16 * 1024 {
            break;
        }
    }
    let mut writer = client.try_clone().ok()?;
    let authorised = expected_auth.is_none_or(|expected| {
        head.to_ascii_lowercase()
            .lines()
            .any(|line| line.trim() == expected)
    });
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string);
    let Some(target) = target.filter(|_| authorised) else {
        let _ = writer
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
        return Some(Tunnel {
            head,
            relayed: Vec::new(),
        });
    };
    let upstream = TcpStream::connect(&target).ok()?;
    upstream.set_read_timeout(Some(PATIENCE)).ok()?;
    writer
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .ok()?;
    let relayed = Arc::new(Mutex::new(Vec::new()));
    // Whatever the client sent after its head is already in `reader`.
    let up = {
        let (mut from, mut to, seen) = (reader, upstream.try_clone().ok()?, relayed.clone());
        thread::spawn(move || relay(&mut from, &mut to, &seen))
    };
    let (mut from, mut to) = (upstream, writer);
    relay(&mut from, &mut to, &relayed);
    let _ = up.join();
    let relayed = std::mem::take(&mut *relayed.lock());
    Some(Tunnel { head, relayed })
}

/// Copies until EOF or error, keeping a copy, then half-closes `to`.
fn relay(from: &mut impl Read, to: &mut TcpStream, seen: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.lock().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The proxy's view holds nothing it must not see.
fn assert_opaque(tunnel: &Tunnel) {
    for secret in [TEST_KEY, "Bearer", PROMPT, ANSWER, "chat/completions"] {
        assert!(
            !contains(&tunnel.relayed, secret),
            "the proxy read {secret:?} in the tunnel"
        );
        assert!(
            !tunnel.head.contains(secret),
            "{secret:?} in {}",
            tunnel.head
        );
    }
    assert!(!tunnel.relayed.is_empty(), "the request went through it");
}

fn ok(out: &Outcome) {
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
}

fn scripted_answer(sim: &Simulator) {
    sim.push(Reply::stream(&ReplySpec {
        content: ANSWER.into(),
        ..ReplySpec::default()
    }));
}

fn ask() -> Value {
    json!({"messages":[{"content": PROMPT}],"stream":true})
}

#[test]
fn an_https_completion_through_the_configured_proxy_shows_it_only_the_tunnel() {
    let ca = TestCa::new(&["127.0.0.1"]);
    let sim = Simulator::start_tls(&ca).unwrap();
    let proxy = ConnectProxy::start(Some((USER, PASSWORD)));
    scripted_answer(&sim);
    let inst = instance(
        &sim,
        json!({"proxy": proxy.url(Some((USER, PASSWORD))), "tls": {"ca_pem": ca.ca_pem()}}),
    );
    let out = run(&inst, &ask());
    ok(&out);
    assert_eq!(out.text(), ANSWER);

    let tunnel = proxy.next_tunnel();
    assert!(
        tunnel.head.starts_with(&format!(
            "CONNECT 127.0.0.1:{} HTTP/1.1\r\n",
            sim.addr().port()
        )),
        "{}",
        tunnel.head
    );
    assert_opaque(&tunnel);
    // The upstream, past the tunnel, got the request whole.
    assert_eq!(
        sim.requests()[0].header("authorization"),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
    assert_eq!(sim.chat_bodies()[0]["messages"][0]["content"], PROMPT);
}

#[test]
fn a_refused_proxy_login_is_a_clear_error_that_prints_no_credentials() {
    let ca = TestCa::new(&["127.0.0.1"]);
    let sim = Simulator::start_tls(&ca).unwrap();
    let proxy = ConnectProxy::start(Some((USER, PASSWORD)));
    let wrong = "wr0ng-pa55word";
    let inst = instance(
        &sim,
        json!({"proxy": proxy.url(Some((USER, wrong))), "tls": {"ca_pem": ca.ca_pem()}}),
    );
    let out = run(&inst, &ask());
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert_eq!(out.result["code"], "proxy_refused");
    let message = out.result["message"].as_str().unwrap();
    assert!(message.contains("407"), "{message}");
    for secret in [wrong, USER, TEST_KEY] {
        assert!(!out.result.to_string().contains(secret), "{}", out.result);
    }
    assert!(sim.requests().is_empty());
}

// ---- the environment, in a child process --------------------------------

/// Set in the child: the JSON config of the instance it runs.
const CHILD_CONFIG: &str = "MOONSHOT_NETWORK_PROXY_CHILD_CONFIG";

/// Runs only as the child of the env tests below: one completion with the
/// config it was given, through whatever proxy the environment names.
#[test]
fn env_proxy_child() {
    let Ok(config) = std::env::var(CHILD_CONFIG) else {
        return; // Run directly: nothing to do.
    };
    let inst = moonshot_tests::harness::plugin()
        .create(&config)
        .expect("create");
    let out = run(&inst, &ask());
    ok(&out);
    assert_eq!(out.text(), ANSWER);
}

/// Runs `env_proxy_child` with exactly these proxy variables.
fn child(config: &Value, vars: &[(&str, String)]) {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args([
        "--exact",
        "env_proxy_child",
        "--nocapture",
        "--test-threads=1",
    ]);
    for name in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(name);
    }
    command.env(CHILD_CONFIG, config.to_string());
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn child_config(sim: &Simulator, ca: &TestCa, extra: Value) -> Value {
    let mut config = json!({"apiKey": TEST_KEY, "base_url": sim.base_url(),
        "tls": {"ca_pem": ca.ca_pem()}, "retries": {"max": 0}});
    if let (Some(into), Value::Object(extra)) = (config.as_object_mut(), extra) {
        into.extend(extra);
    }
    config
}

#[test]
fn https_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it() {
    let ca = TestCa::new(&["127.0.0.1"]);
    let sim = Simulator::start_tls(&ca).unwrap();
    let proxy = ConnectProxy::start(Some((USER, PASSWORD)));
    let with_credentials = proxy.url(Some((USER, PASSWORD)));

    scripted_answer(&sim);
    child(
        &child_config(&sim, &ca, json!({})),
        &[("HTTPS_PROXY", with_credentials.clone())],
    );
    assert_opaque(&proxy.next_tunnel());

    // ALL_PROXY too (ureq reads it first).
    scripted_answer(&sim);
    child(
        &child_config(&sim, &ca, json!({})),
        &[("ALL_PROXY", with_credentials.clone())],
    );
    assert_opaque(&proxy.next_tunnel());

    // NO_PROXY names the upstream: straight there. And "proxy":"" turns the
    // environment's proxy off.
    scripted_answer(&sim);
    child(
        &child_config(&sim, &ca, json!({})),
        &[
            ("HTTPS_PROXY", with_credentials.clone()),
            ("NO_PROXY", "127.0.0.1".to_string()),
        ],
    );
    scripted_answer(&sim);
    child(
        &child_config(&sim, &ca, json!({"proxy": ""})),
        &[("HTTPS_PROXY", with_credentials)],
    );
    assert!(
        proxy
            .tunnels
            .recv_timeout(Duration::from_millis(200))
            .is_err(),
        "nothing went through the proxy"
    );
    assert_eq!(sim.requests().len(), 4);
}
