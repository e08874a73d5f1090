//! async-openai (tokio + reqwest) against the bench upstream: `concurrency`
//! tasks on tokio's multi-threaded runtime each run streaming completions
//! and read every chunk. Prints one JSON line with the fields of the other
//! clients (tests/src/bench/figures.rs). Run by `make bench`; arguments:
//!   --port P --n N --warmup W --concurrency C --chunks K --text-units U
//!   --content-units V --body JSON [--api typed|byot]
//!
//! `--api typed` (the default, kind `async-openai`) is what most Rust hosts
//! write: `chat().create_stream` with the crate's request and chunk types.
//! Those types have no `reasoning_content`, so Kimi's reasoning is dropped
//! (only the content is checked). `--api byot` (kind `async-openai-byot`)
//! reads the chunks through the crate's "bring your own types" API into a
//! small struct with `reasoning_content`: the leanest a host could write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionStreamResponse};
use async_openai::Client;
use futures::StreamExt;
use serde_json::{json, Value};

#[derive(serde::Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(serde::Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(serde::Deserialize, Default)]
struct Delta {
    content: Option<String>,
    reasoning_content: Option<String>,
}

struct Plan {
    client: Client<OpenAIConfig>,
    body: Value,
    typed_body: CreateChatCompletionRequest,
    typed: bool,
    chunks: usize,
    text_units: usize,
    content_units: usize,
}

async fn one(plan: &Plan) -> Result<Duration, String> {
    if plan.typed {
        one_typed(plan).await
    } else {
        one_byot(plan).await
    }
}

/// One streaming completion through the crate's own types; its time to
/// first chunk.
async fn one_typed(plan: &Plan) -> Result<Duration, String> {
    let start = Instant::now();
    let stream = plan
        .client
        .chat()
        .create_stream(plan.typed_body.clone())
        .await
        .map_err(|e| e.to_string())?;
    let units = |chunk: &CreateChatCompletionStreamResponse| {
        let content = chunk.choices.first().and_then(|c| c.delta.content.as_ref());
        content.map_or(0, |text| text.encode_utf16().count())
    };
    read_to_end(
        start,
        stream,
        units,
        plan.chunks,
        plan.content_units,
        "content",
    )
    .await
}

/// One streaming completion through "bring your own types"; its time to
/// first chunk.
async fn one_byot(plan: &Plan) -> Result<Duration, String> {
    let start = Instant::now();
    let stream = plan
        .client
        .chat()
        .create_stream_byot::<_, Chunk>(plan.body.clone())
        .await
        .map_err(|e| e.to_string())?;
    let units = |chunk: &Chunk| {
        let Some(choice) = chunk.choices.first() else {
            return 0;
        };
        let delta = &choice.delta;
        [&delta.content, &delta.reasoning_content]
            .into_iter()
            .flatten()
            .map(|text| text.encode_utf16().count())
            .sum()
    };
    read_to_end(start, stream, units, plan.chunks, plan.text_units, "text").await
}

/// Reads every chunk of a started stream, checking how many came and the
/// text units `units` counts in them; returns the time to the first chunk.
async fn read_to_end<T, E: std::fmt::Display>(
    start: Instant,
    mut stream: impl futures::Stream<Item = Result<T, E>> + Unpin,
    units: impl Fn(&T) -> usize,
    chunks: usize,
    expected_units: usize,
    what: &str,
) -> Result<Duration, String> {
    let mut first = None;
    let (mut count, mut seen) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        first.get_or_insert_with(|| start.elapsed());
        count += 1;
        seen += units(&chunk);
    }
    if count != chunks || seen != expected_units {
        return Err(format!(
            "incomplete: {count} of {chunks} chunks, {seen} of {expected_units} {what} units"
        ));
    }
    Ok(first.unwrap_or_default())
}

#[derive(Default)]
struct Outcome {
    samples: Vec<Duration>,
    failures: u64,
    sample: Option<String>,
}

async fn phase(plan: &Arc<Plan>, total: usize, concurrency: usize) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (plan, next, outcome) = (plan.clone(), next.clone(), outcome.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let result = one(&plan).await;
                    let mut o = outcome.lock().unwrap();
                    match result {
                        Ok(t) => o.samples.push(t),
                        Err(e) => {
                            o.failures += 1;
                            o.sample.get_or_insert(e);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let mut outcome = outcome.lock().unwrap();
    std::mem::take(&mut *outcome)
}

/// User and system CPU of this process so far, in seconds.
fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// A `VmRSS`/`VmHWM` line of /proc/self/status, in KiB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    let mut args = HashMap::new();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        if let [name, value] = pair {
            args.insert(name.trim_start_matches("--").to_string(), value.clone());
        }
    }
    let num = |name: &str| -> usize {
        args.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("--{name} wants a number"))
    };
    let (port, n, concurrency) = (num("port"), num("n"), num("concurrency"));
    let warmup = args.get("warmup").and_then(|v| v.parse().ok()).unwrap_or(0);
    let body: Value = serde_json::from_str(args.get("body").expect("--body")).expect("JSON body");
    let typed_body: CreateChatCompletionRequest =
        serde_json::from_value(body.clone()).expect("an OpenAI chat request");
    let typed = args.get("api").is_none_or(|api| api == "typed");
    let base_rss_kb = status_kb("VmRSS:");
    let config = OpenAIConfig::new()
        .with_api_base(format!("http://127.0.0.1:{port}/v1"))
        .with_api_key("sk-bench");
    let plan = Arc::new(Plan {
        client: Client::with_config(config),
        body,
        typed_body,
        typed,
        chunks: num("chunks"),
        text_units: num("text-units"),
        content_units: num("content-units"),
    });

    let warm = phase(&plan, warmup, concurrency).await;
    let (user0, sys0) = cpu_times();
    let t0 = Instant::now();
    let mut measured = phase(&plan, n, concurrency).await;
    let wall = t0.elapsed();
    let (user1, sys1) = cpu_times();
    measured.samples.sort();
    let s = &measured.samples;
    let mut note = format!(
        "async-openai 0.43.0, {} (reqwest, tokio multi-thread, {} workers)",
        if typed {
            "its own types (reasoning dropped)"
        } else {
            "bring-your-own-types with reasoning_content"
        },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if warm.failures > 0 {
        note.push_str(&format!("; {} failures during warm-up", warm.failures));
    }
    let out = json!({
        "kind": if typed { "async-openai" } else { "async-openai-byot" },
        "concurrency": concurrency,
        "requests": s.len(),
        "chunks": s.len() * plan.chunks,
        "wall_s": wall.as_secs_f64(),
        "cpu_s": (user1 - user0) + (sys1 - sys0),
        "sys_s": sys1 - sys0,
        "ttfp_p50_us": percentile(s, 50.0),
        "ttfp_p99_us": percentile(s, 99.0),
        "ttfp_max_us": s.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        "peak_rss_kb": status_kb("VmHWM:"),
        "base_rss_kb": base_rss_kb,
        "failures": measured.failures,
        "failure_sample": measured.sample.or(warm.sample),
        "note": note,
    });
    println!("{out}");
}
