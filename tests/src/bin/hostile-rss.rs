//! `hostile-rss CASE`: runs one hostile case of issue 11 through the C ABI
//! in this process and prints its peak RSS (VmHWM) and CPU time, so each
//! case is measured in a fresh process. Not a test: the figures go in the
//! README / closing note. Point MOONSHOT_PLUGIN_PATH at another build of
//! the plugin to compare.
//!
//! Cases: request-array, request-array-x3, answer-stream, answer-gzip,
//! media-20, media-10, tool-indices.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use host_demo::plugin::{Event, Instance, Plugin};
use serde_json::json;

const MIB: usize = 1024 * 1024;

fn main() {
    let case = std::env::args().nth(1).unwrap_or_default();
    let plugin = Plugin::load(&moonshot_tests::plugin::plugin_path()).expect("load the plugin");
    let started = Instant::now();
    let outcome = match case.as_str() {
        "request-array" => request_array(&plugin, 1),
        "request-array-x3" => request_array(&plugin, 3),
        "answer-stream" => answer(&plugin, false),
        "answer-gzip" => answer(&plugin, true),
        "media-20" => media(&plugin, 20),
        "media-10" => media(&plugin, 10),
        "tool-indices" => tool_indices(&plugin),
        _ => {
            eprintln!("usage: hostile-rss CASE (see the source)");
            std::process::exit(2);
        }
    };
    let (rss_before, cpu_before) = BEFORE.get().copied().unwrap_or_default();
    println!(
        "{case}: peak RSS {} MiB (host side before complete: {} MiB), CPU during the request {:.2} s, wall {:.2} s: {outcome}",
        vm_hwm_kib() / 1024,
        rss_before / 1024,
        cpu_seconds() - cpu_before,
        started.elapsed().as_secs_f64()
    );
}

/// RSS (KiB) and CPU seconds just before the first `complete`.
static BEFORE: std::sync::OnceLock<(u64, f64)> = std::sync::OnceLock::new();

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid start.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn create(plugin: &Plugin, base_url: &str, extra: serde_json::Value) -> Instance {
    let mut config = json!({"apiKey":"sk-rss","base_url":base_url,"today":"2026-11-25",
                            "retries":{"max":0}});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    plugin.create(&config.to_string()).expect("create")
}

/// Runs a request to its end; returns "status code".
fn run(instance: &Instance, request: &str) -> String {
    BEFORE.get_or_init(|| (vm_rss_kib(), cpu_seconds()));
    match instance.complete(request, None) {
        Err((status, error)) => format!("refused {status} {}", short(&error)),
        Ok((_handle, events)) => loop {
            match events.recv_timeout(Duration::from_secs(600)) {
                Ok(Event::Part(_)) => {}
                Ok(Event::Done(status, result)) => {
                    let v: serde_json::Value = serde_json::from_str(&result).unwrap_or_default();
                    let code = v["code"].as_str().unwrap_or("ok").to_string();
                    let kept = v["partial"]["message"]["content"]
                        .as_str()
                        .or(v["message"]["content"].as_str())
                        .map_or(0, str::len);
                    break format!("status {status} {code}, content kept {kept} bytes");
                }
                Err(_) => break "no end within 600 s".into(),
            }
        },
    }
}

fn short(text: &str) -> String {
    text.chars().take(160).collect()
}

/// An upstream that answers every connection with `respond`, on its own thread.
fn upstream(respond: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let closer = stream.try_clone();
                respond(stream);
                // Close gently: unread request bytes would make close()
                // reset the connection and cut what was written.
                if let Ok(mut s) = closer {
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    let mut sink = [0u8; 64 * 1024];
                    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                }
            });
        }
    });
    addr
}

fn read_head(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut buf = [0u8; 64 * 1024];
    let _ = stream.read(&mut buf);
}

/// A 62 MiB `[0,0,...]` inside an otherwise ordinary request.
fn request_array(plugin: &Plugin, parallel: usize) -> String {
    let addr = upstream(|mut s| {
        read_head(&mut s);
    });
    let instance = create(plugin, &format!("http://{addr}/v1"), json!({}));
    let zeros = format!("[{}0]", "0,".repeat(31 * MIB));
    let request = format!(
        r#"{{"model":"kimi-k2.6","messages":[{{"role":"user","content":"Hi"}}],"metadata":{zeros}}}"#
    );
    drop(zeros);
    let outcomes: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..parallel)
            .map(|_| scope.spawn(|| run(&instance, &request)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    outcomes.join(" | ")
}

const ANSWER_BYTES: usize = 256 * MIB;

/// `data: {"choices":[{"index":0,"delta":{"content":"xxx..."}}]}` events
/// adding up to ANSWER_BYTES of content, then [DONE].
fn write_answer(out: &mut dyn Write) -> std::io::Result<()> {
    let text = "x".repeat(4096);
    let event = format!(
        "data: {}\n\n",
        json!({"choices":[{"index":0,"delta":{"content":text}}]})
    );
    for _ in 0..ANSWER_BYTES / 4096 {
        out.write_all(event.as_bytes())?;
    }
    out.write_all(b"data: [DONE]\n\n")
}

/// The gzip-encoded answer, compressed before the request starts.
static GZIPPED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

fn answer(plugin: &Plugin, gzip: bool) -> String {
    let addr = if gzip {
        GZIPPED.get_or_init(|| {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
            let _ = write_answer(&mut encoder);
            encoder.finish().unwrap_or_default()
        });
        upstream(|mut s| {
            read_head(&mut s);
            let body = GZIPPED.get().map(Vec::as_slice).unwrap_or_default();
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n";
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        })
    } else {
        upstream(|mut s| {
            read_head(&mut s);
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            let _ = s.write_all(head.as_bytes());
            let _ = write_answer(&mut std::io::BufWriter::new(s));
        })
    };
    let instance = create(plugin, &format!("http://{addr}/v1"), json!({}));
    let request =
        json!({"model":"kimi-k2.6","messages":[{"role":"user","content":"Hi"}],"stream":true});
    run(&instance, &request.to_string())
}

/// `n` image URLs, each a 32 MiB - 1 image served on the fly.
fn media(plugin: &Plugin, n: usize) -> String {
    let images = upstream(|mut s| {
        read_head(&mut s);
        let size = 32 * MIB - 1;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
        let _ = s.write_all(head.as_bytes());
        let block = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len());
            if s.write_all(&block[..n]).is_err() {
                return;
            }
            left -= n;
        }
    });
    // Moonshot: an upstream that reads the request and answers 400.
    let moonshot = upstream(|mut s| {
        let mut buf = vec![0u8; MIB];
        s.set_read_timeout(Some(Duration::from_secs(2))).ok();
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        let _ = s.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let instance = create(
        plugin,
        &format!("http://{moonshot}/v1"),
        json!({"media":{"allow_private_networks":true}}),
    );
    let url = format!("http://{images}/cat.png");
    let mut content = vec![json!({"type":"text","text":"Describe"})];
    content.extend((0..n).map(|_| json!({"type":"image_url","image_url":{"url":url}})));
    let request = json!({"model":"kimi-k3","messages":[{"role":"user","content":content}]});
    run(&instance, &request.to_string())
}

/// One stream naming 100,000 distinct tool-call indices, 1,000 per chunk.
fn tool_indices(plugin: &Plugin) -> String {
    let addr = upstream(|mut s| {
        read_head(&mut s);
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
        let mut out = std::io::BufWriter::new(s);
        let _ = out.write_all(head.as_bytes());
        for batch in 0..100 {
            let calls: Vec<_> = (0..1000)
                .map(|i| json!({"index":batch * 1000 + i,"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}))
                .collect();
            let chunk = json!({"choices":[{"index":0,"delta":{"tool_calls":calls}}]});
            if out
                .write_all(format!("data: {chunk}\n\n").as_bytes())
                .is_err()
            {
                return;
            }
        }
        let _ = out.write_all(b"data: [DONE]\n\n");
    });
    let instance = create(plugin, &format!("http://{addr}/v1"), json!({}));
    let request =
        json!({"model":"kimi-k2.6","messages":[{"role":"user","content":"Hi"}],"stream":true});
    run(&instance, &request.to_string())
}
