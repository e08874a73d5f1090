//! The bench command: parses its arguments, plays whichever role it was
//! started in (orchestrator, upstream server, or one client), and prints
//! the report.
//!
//! ```text
//! bench [--n N] [--warmup W] [--concurrency 1,8,64] [--kinds wire,decode,plugin,async-openai,async-openai-byot,openai-node,node-koffi]
//!       [--chunks 500] [--streams 1000] [--slow-burst 20] [--slow-interval-ms 200]
//!       [--plugin PATH] [--json FILE] [--profile]
//! bench --serve ...          (child: the upstream)
//! bench --client KIND ...    (child: one client kind at one concurrency)
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::canned_stream::{self, CannedStream};
use super::figures::{self, Figures, Worker};
use super::floors::{DecodeFloor, WireFloor};
use super::node_koffi;
use super::plugin_client::{self, ChannelWorker, PluginWorker, Provider, ScaleFigures};
use super::procstat;
use super::profile::{self, Target};
use super::server::{self, Pacing};

const USAGE: &str = "\
usage: bench [options]
  --n N                  measured completions per client and concurrency (default 2000)
  --warmup W             unmeasured completions first (default max(20, 2 x concurrency))
  --concurrency LIST     default 1,8,64
  --kinds LIST           default wire,decode,plugin,async-openai,async-openai-byot,openai-node,node-koffi;
                         also plugin-channel (the same plugin through host_demo's safe wrapper and
                         its channel). async-openai uses the crate's own types, as most hosts would
                         (they drop reasoning_content); async-openai-byot its bring-your-own-types
                         API with a small struct that keeps it
  --chunks K             chunk JSONs per streamed answer (default 500)
  --streams S            scale run: streams held open at once (default 1000; 0 skips it;
                         10000 is the issue-14 target)
  --slow-burst B         scale run: SSE events per write (default 20)
  --slow-interval-ms I   scale run: pause between writes (default 200, so ~5 s a stream;
                         600 above 1000 streams, so that all are open at once)
  --plugin PATH          the cdylib (default: the release build beside this binary)
  --json FILE            also write every figure as JSON
  --profile              also run the plugin client under valgrind's callgrind";

/// Command-line flags as `--name value` pairs (a flag alone maps to "").
struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1).peekable();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().unwrap_or_default(),
                _ => String::new(),
            };
            map.insert(name.to_string(), value);
        }
        Ok(Args(map))
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.str(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name} wants a number, got {v:?}")),
        }
    }

    fn list(&self, name: &str, default: &str) -> Vec<String> {
        self.str(name)
            .unwrap_or(default)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The bench binary's `main`.
pub fn main() {
    let result = Args::parse().and_then(|args| {
        if args.has("help") {
            println!("{USAGE}");
            return Ok(());
        }
        if args.has("serve") {
            let pacing = Pacing {
                burst: args.num("slow-burst", 20)?,
                interval: Duration::from_millis(args.num("slow-interval-ms", 200)?),
            };
            server::serve(args.num("chunks", 500)?, pacing);
        }
        match args.str("client") {
            Some(kind) => client(kind, &args),
            None => orchestrate(&args),
        }
    });
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// Child role: one client kind, one concurrency; prints one JSON line.
fn client(kind: &str, args: &Args) -> Result<(), String> {
    let port: u16 = args.num("port", 0)?;
    let chunks: usize = args.num("chunks", 500)?;
    let answer = Arc::new(CannedStream::new(chunks));
    let base_rss_kb = procstat::rss_kb();
    let library = || {
        args.str("plugin")
            .map(PathBuf::from)
            .ok_or("--plugin is required")
    };
    if kind == "scale" {
        let streams: usize = args.num("streams", 1000)?;
        let fast = format!("http://127.0.0.1:{port}/v1");
        let slow = format!("http://127.0.0.1:{port}/slow/v1");
        let figures = plugin_client::scale(&library()?, &fast, &slow, &answer, streams)?;
        println!(
            "{}",
            serde_json::to_string(&figures).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let concurrency: usize = args.num("concurrency", 1)?;
    let n: usize = args.num("n", 2000)?;
    let warmup: usize = args.num("warmup", 20)?;
    let mut provider = None;
    let workers: Vec<Box<dyn Worker>> = match kind {
        "wire" => (0..concurrency)
            .map(|_| Box::new(WireFloor::new(port, &answer)) as Box<dyn Worker>)
            .collect(),
        "decode" => (0..concurrency)
            .map(|_| Box::new(DecodeFloor::new(port, &answer)) as Box<dyn Worker>)
            .collect(),
        "plugin" => {
            let base_url = format!("http://127.0.0.1:{port}/v1");
            let p = Arc::new(Provider::new(&library()?, &base_url, concurrency.max(64))?);
            let expected = p.reference_result(&answer)?;
            provider = Some(p.clone());
            (0..concurrency)
                .map(|_| {
                    Box::new(PluginWorker::new(
                        p.clone(),
                        answer.clone(),
                        expected.clone(),
                    )) as Box<dyn Worker>
                })
                .collect()
        }
        "plugin-channel" => {
            let base_url = format!("http://127.0.0.1:{port}/v1");
            let library = library()?;
            let expected = Provider::new(&library, &base_url, 1)?.reference_result(&answer)?;
            let config = plugin_client::config_json(&base_url, concurrency.max(64));
            let instance = Arc::new(host_demo::plugin::Plugin::load(&library)?.create(&config)?);
            (0..concurrency)
                .map(|_| {
                    Box::new(ChannelWorker::new(
                        instance.clone(),
                        answer.clone(),
                        expected.clone(),
                    )) as Box<dyn Worker>
                })
                .collect()
        }
        other => return Err(format!("unknown client kind {other:?}")),
    };
    let figures = figures::drive(kind, workers, warmup, n, chunks, base_rss_kb);
    drop(provider);
    println!(
        "{}",
        serde_json::to_string(&figures).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The upstream child; closing its stdin (or dropping this) stops it.
struct Upstream {
    child: Child,
    port: u16,
}

impl Upstream {
    fn start(
        exe: &Path,
        chunks: usize,
        burst: usize,
        interval_ms: u64,
    ) -> Result<Upstream, String> {
        let mut child = Command::new(exe)
            .args(["--serve", "--chunks", &chunks.to_string()])
            .args(["--slow-burst", &burst.to_string()])
            .args(["--slow-interval-ms", &interval_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the upstream: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no upstream stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .parse()
            .map_err(|_| format!("the upstream printed {line:?}, not a port"))?;
        Ok(Upstream { child, port })
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One row of the table: a client's figures or why it has none.
struct Row {
    kind: String,
    concurrency: usize,
    figures: Result<Figures, String>,
    /// New upstream connections the client opened (warm-up included).
    connections: Option<u64>,
}

struct Plan {
    exe: PathBuf,
    library: PathBuf,
    chunks: usize,
    n: usize,
    warmup: Option<usize>,
}

impl Plan {
    fn warmup(&self, concurrency: usize) -> usize {
        self.warmup.unwrap_or((2 * concurrency).max(20))
    }
}

fn orchestrate(args: &Args) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let library = match args.str("plugin") {
        // Absolute: the node clients run in their own package directories.
        Some(p) => std::fs::canonicalize(p).map_err(|e| format!("--plugin {p}: {e}"))?,
        None => default_library(&exe)?,
    };
    let plan = Plan {
        exe: exe.clone(),
        library,
        chunks: args.num("chunks", 500)?,
        n: args.num("n", 2000)?,
        warmup: args
            .str("warmup")
            .map(str::parse)
            .transpose()
            .map_err(|_| "--warmup wants a number")?,
    };
    let concurrencies: Vec<usize> = args
        .list("concurrency", "1,8,64")
        .iter()
        .map(|c| c.parse().map_err(|_| format!("bad concurrency {c:?}")))
        .collect::<Result<_, _>>()?;
    let kinds = args.list(
        "kinds",
        "wire,decode,plugin,async-openai,async-openai-byot,openai-node,node-koffi",
    );
    let streams: usize = args.num("streams", 1000)?;
    let burst: usize = args.num("slow-burst", 20)?;
    // Starting 10,000 threads and connections on 2 cores takes longer than
    // a 5 s stream: slower pacing keeps every stream open at once.
    let interval_ms: u64 = args.num("slow-interval-ms", if streams > 1000 { 600 } else { 200 })?;
    let answer = CannedStream::new(plan.chunks);

    print_machine(&plan);
    // Thousands of streams hold a socket each (and the upstream one more).
    raise_open_files_limit();
    let node = if kinds.iter().any(|k| k == "openai-node") {
        prepare_node()
    } else {
        Err("not asked for".into())
    };
    if let Err(why) = &node {
        eprintln!("bench: openai-node skipped: {why}");
    }
    let koffi = if kinds.iter().any(|k| k == "node-koffi") {
        node_koffi::prepare()
    } else {
        Err("not asked for".into())
    };
    if let Err(why) = &koffi {
        eprintln!("bench: node-koffi skipped: {why}");
    }
    let koffi_run = |dir: &Path, port: u16, concurrency: usize| node_koffi::Run {
        dir: dir.to_path_buf(),
        library: plan.library.clone(),
        port,
        concurrency,
        n: plan.n,
        warmup: plan.warmup(concurrency),
        chunks: plan.chunks,
        text_units: answer.content.encode_utf16().count() + answer.reasoning.encode_utf16().count(),
        body: canned_stream::puter_request(),
    };

    let upstream = Upstream::start(&exe, plan.chunks, burst, interval_ms)?;
    println!(
        "upstream: 127.0.0.1:{} (own process), {} chunk JSONs per answer ({} reasoning, {} content, 1 finishing with usage) + [DONE], {} response bytes",
        upstream.port,
        answer.chunk_count(),
        answer.reasoning_chunks,
        answer.content_chunks,
        answer.response.len()
    );
    println!();

    let started = Instant::now();
    let mut rows = Vec::new();
    for &concurrency in &concurrencies {
        for kind in &kinds {
            eprint!("bench: {kind} at concurrency {concurrency} ... ");
            let before = server::stats(upstream.port);
            let figures = match kind.as_str() {
                "openai-node" => match &node {
                    Ok(dir) => run_node(dir, &plan, &answer, upstream.port, concurrency),
                    Err(why) => Err(format!("skipped: {why}")),
                },
                "node-koffi" => match &koffi {
                    Ok(dir) => node_koffi::run(&koffi_run(dir, upstream.port, concurrency)),
                    Err(why) => Err(format!("skipped: {why}")),
                },
                "async-openai" | "async-openai-byot" => {
                    run_async_openai(kind, &plan, &answer, upstream.port, concurrency)
                }
                _ => run_child(&plan, kind, upstream.port, concurrency),
            };
            let after = server::stats(upstream.port);
            let connections = before.zip(after).map(|(b, a)| a.0 - b.0 - 1);
            match &figures {
                Ok(f) => eprintln!("{:.1} s", f.wall_s),
                Err(e) => eprintln!("failed: {e}"),
            }
            rows.push(Row {
                kind: kind.clone(),
                concurrency,
                figures,
                connections,
            });
        }
    }
    print_table(&rows, &plan, &concurrencies);

    let scale = if streams > 0 {
        eprintln!("bench: scale run, {streams} streams held open ...");
        let result = run_scale(&plan, upstream.port, streams);
        print_scale(&result, streams, burst, interval_ms, plan.chunks);
        Some(result)
    } else {
        None
    };
    let koffi_rss = koffi.as_ref().ok().map(|dir| {
        eprintln!(
            "bench: node-koffi RSS run, {} completions ...",
            node_koffi::RSS_COMPLETIONS
        );
        let result = node_koffi::rss_run(&koffi_run(dir, upstream.port, 1));
        node_koffi::print_rss(&result);
        result
    });
    print_targets(&rows, scale.as_ref());
    if kinds.iter().any(|k| k == "node-koffi") {
        let per_concurrency: Vec<_> = concurrencies
            .iter()
            .map(|&c| {
                (
                    c,
                    find(&rows, "node-koffi", c),
                    find(&rows, "openai-node", c),
                )
            })
            .collect();
        println!("Targets (issue 10)");
        node_koffi::print_targets(&per_concurrency, koffi_rss.as_ref());
        println!();
    }
    println!("load average at the end: {}", load_average());
    eprintln!("bench: done in {:.0} s", started.elapsed().as_secs_f64());

    if args.has("profile") {
        let target = Target {
            exe: &plan.exe,
            library: &plan.library,
            port: upstream.port,
            chunks: plan.chunks,
        };
        profile::perf(&target);
        profile::callgrind(&target);
    }
    if let Some(path) = args.str("json") {
        write_json(path, &rows, scale.as_ref())?;
    }
    Ok(())
}

/// The release cdylib beside this binary (`target/release`).
fn default_library(exe: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("MOONSHOT_PLUGIN_PATH") {
        return Ok(PathBuf::from(path));
    }
    host_demo::plugin::default_library_path().ok_or_else(|| {
        format!(
            "no {} beside {}: build it with `cargo build --release -p moonshot-provider` (make bench does)",
            host_demo::plugin::library_file_name(),
            exe.display()
        )
    })
}

fn print_machine(plan: &Plan) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim())
        })
        .unwrap_or("unknown");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("moonshot-provider bench");
    println!("machine: {cores} CPUs ({model}), Linux {}", kernel.trim());
    println!(
        "load:    {} (1, 5, 15 min; other work on the machine skews wall-clock figures most)",
        load_average()
    );
    println!("plugin:  {}", plan.library.display());
    if plan.library.to_string_lossy().contains("/debug/") {
        println!("warning: that is a debug build; figures will not be representative");
    }
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the node client lives; installs its packages when missing.
fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/openai-node")
}

fn prepare_node() -> Result<PathBuf, String> {
    let dir = node_dir();
    prepare_npm_package(&dir, "openai")?;
    Ok(dir)
}

/// Checks that node runs and installs `dir`'s locked npm packages (npm ci)
/// unless `marker` (one of them) is already there.
pub(super) fn prepare_npm_package(dir: &Path, marker: &str) -> Result<(), String> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("node not found ({e})"))?;
    if !version.status.success() {
        return Err("node --version failed".into());
    }
    if !dir.join("node_modules").join(marker).exists() {
        eprintln!("bench: installing {marker} (npm ci) in {}", dir.display());
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("npm not found ({e})"))?;
        if !status.success() {
            return Err(format!("npm ci failed in {}", dir.display()));
        }
    }
    Ok(())
}

fn run_child(plan: &Plan, kind: &str, port: u16, concurrency: usize) -> Result<Figures, String> {
    let output = Command::new(&plan.exe)
        .args(["--client", kind, "--port", &port.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--n", &plan.n.to_string()])
        .args(["--warmup", &plan.warmup(concurrency).to_string()])
        .args(["--chunks", &plan.chunks.to_string()])
        .arg("--plugin")
        .arg(&plan.library)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    parse_output(&output)
}

fn run_node(
    dir: &Path,
    plan: &Plan,
    answer: &CannedStream,
    port: u16,
    concurrency: usize,
) -> Result<Figures, String> {
    let mut node = Command::new("node");
    node.arg(dir.join("bench.mjs")).current_dir(dir);
    run_client(node, plan, answer, port, concurrency)
}

/// The async-openai client, built by `make bench` outside the workspace.
fn async_openai_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/async-openai/target/release/bench-async-openai")
}

fn run_async_openai(
    kind: &str,
    plan: &Plan,
    answer: &CannedStream,
    port: u16,
    concurrency: usize,
) -> Result<Figures, String> {
    let exe = async_openai_binary();
    if !exe.exists() {
        return Err(format!(
            "skipped: {} is not built (make bench builds it)",
            exe.display()
        ));
    }
    let mut client = Command::new(exe);
    client.args([
        "--api",
        if kind == "async-openai" {
            "typed"
        } else {
            "byot"
        },
    ]);
    run_client(client, plan, answer, port, concurrency)
}

/// Runs a third-party client process (openai-node, async-openai) with the
/// arguments they share: the upstream, the load, and what to verify.
fn run_client(
    mut client: Command,
    plan: &Plan,
    answer: &CannedStream,
    port: u16,
    concurrency: usize,
) -> Result<Figures, String> {
    let units = answer.content.encode_utf16().count() + answer.reasoning.encode_utf16().count();
    let output = client
        .args(["--port", &port.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--n", &plan.n.to_string()])
        .args(["--warmup", &plan.warmup(concurrency).to_string()])
        .args(["--chunks", &plan.chunks.to_string()])
        .args(["--text-units", &units.to_string()])
        .args([
            "--content-units",
            &answer.content.encode_utf16().count().to_string(),
        ])
        .args(["--body", &canned_stream::moonshot_request()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    parse_output(&output)
}

/// Lifts the soft limit on open files to the hard one (children inherit it).
fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit read and write the struct they are given.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn parse_output<T: serde::de::DeserializeOwned>(
    output: &std::process::Output,
) -> Result<T, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("");
    if !output.status.success() {
        return Err(format!("exited with {}: {}", output.status, last));
    }
    serde_json::from_str(last).map_err(|e| format!("unreadable figures ({e}): {last:?}"))
}

fn run_scale(plan: &Plan, port: u16, streams: usize) -> Result<ScaleFigures, String> {
    let output = Command::new(&plan.exe)
        .args(["--client", "scale", "--port", &port.to_string()])
        .args(["--streams", &streams.to_string()])
        .args(["--chunks", &plan.chunks.to_string()])
        .arg("--plugin")
        .arg(&plan.library)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    parse_output(&output)
}

/// The kernel's share of the CPU time, when there is enough of it for the
/// tick-sampled user/system split to mean something.
fn sys_share(f: &Figures) -> String {
    if f.cpu_s < 0.1 {
        "-".into()
    } else {
        format!("{:.0}", 100.0 * f.sys_s / f.cpu_s)
    }
}

fn label(kind: &str) -> &str {
    match kind {
        "wire" => "wire floor",
        "decode" => "decode floor",
        "plugin" => "plugin (C ABI)",
        "plugin-channel" => "plugin/channel",
        "async-openai" => "async-openai",
        "async-openai-byot" => "async-openai-byot",
        other => other,
    }
}

fn find<'a>(rows: &'a [Row], kind: &str, concurrency: usize) -> Option<&'a Figures> {
    rows.iter()
        .find(|r| r.kind == kind && r.concurrency == concurrency)
        .and_then(|r| r.figures.as_ref().ok())
}

fn print_table(rows: &[Row], plan: &Plan, concurrencies: &[usize]) {
    println!(
        "Throughput: {} measured streaming completions per client and concurrency, after a warm-up of max(20, 2 x concurrency) (or --warmup).",
        plan.n
    );
    println!("CPU = user+sys of the client's own process over the measured phase, per chunk JSON.");
    println!("TTFP = request start to the first part in the consumer's hands; +wire = minus the wire floor's at the same concurrency.");
    println!();
    for &c in concurrencies {
        println!("concurrency {c}");
        println!(
            "  {:<15} {:>8} {:>10} {:>9} {:>5} {:>17} {:>17} {:>8} {:>6} {:>6}",
            "client",
            "req/s",
            "chunks/s",
            "CPU us/ch",
            "sys%",
            "TTFP p50/p99 us",
            "+wire p50/p99 us",
            "peak RSS",
            "conns",
            "failed"
        );
        let wire = find(rows, "wire", c);
        for row in rows.iter().filter(|r| r.concurrency == c) {
            let conns = row.connections.map_or("?".into(), |n| n.to_string());
            match &row.figures {
                Ok(f) => {
                    let over = wire.map_or("-".to_string(), |w| {
                        format!(
                            "{:+.0}/{:+.0}",
                            f.ttfp_p50_us - w.ttfp_p50_us,
                            f.ttfp_p99_us - w.ttfp_p99_us
                        )
                    });
                    println!(
                        "  {:<15} {:>8.1} {:>10.0} {:>9.3} {:>5} {:>17} {:>17} {:>6.1}MB {:>6} {:>6}",
                        label(&row.kind),
                        f.requests_per_s(),
                        f.chunks_per_s(),
                        f.cpu_us_per_chunk(),
                        sys_share(f),
                        format!("{:.0}/{:.0}", f.ttfp_p50_us, f.ttfp_p99_us),
                        over,
                        f.peak_rss_kb as f64 / 1024.0,
                        conns,
                        f.failures
                    );
                    for extra in [&f.failure_sample, &f.note].into_iter().flatten() {
                        println!("  {:<15} note: {extra}", "");
                    }
                }
                Err(e) => println!("  {:<15} no figures: {e}", label(&row.kind)),
            }
        }
        println!();
    }
    println!("Ratios, plugin / baseline from this run (CPU below 1: plugin cheaper; req/s above 1: plugin faster)");
    print!("  {:<32}", "");
    for c in concurrencies {
        print!(" {:>8}", format!("c={c}"));
    }
    println!();
    type Metric = fn(&Figures) -> f64;
    let metrics: [(&str, &str, Metric); 6] = [
        ("CPU per chunk", "openai-node", Figures::cpu_us_per_chunk),
        ("CPU per chunk", "async-openai", Figures::cpu_us_per_chunk),
        (
            "CPU per chunk",
            "async-openai-byot",
            Figures::cpu_us_per_chunk,
        ),
        ("CPU per chunk", "decode", Figures::cpu_us_per_chunk),
        ("req/s", "openai-node", Figures::requests_per_s),
        ("req/s", "decode", Figures::requests_per_s),
    ];
    for (what, base, metric) in metrics {
        print!("  {:<32}", format!("{what:<13} plugin / {}", label(base)));
        for &c in concurrencies {
            let ratio = find(rows, "plugin", c)
                .zip(find(rows, base, c))
                .map(|(p, b)| metric(p) / metric(b));
            print!(" {:>8}", ratio.map_or("-".into(), |r| format!("{r:.2}")));
        }
        println!();
    }
    println!();
}

fn print_scale(
    result: &Result<ScaleFigures, String>,
    streams: usize,
    burst: usize,
    interval_ms: u64,
    chunks: usize,
) {
    let writes = chunks.div_ceil(burst.max(1)) + 1;
    println!(
        "Scale run: {streams} streaming completions through the plugin at once (max_concurrency {streams}), upstream writing {burst} SSE events every {interval_ms} ms (~{:.1} s a stream)",
        (writes as u64 * interval_ms) as f64 / 1000.0
    );
    match result {
        Ok(s) => {
            println!(
                "  started {} / {}, completed intact {} (all parts, byte-identical final result), failed {}",
                s.started, s.streams, s.intact, s.failed
            );
            for (message, count) in &s.failures {
                println!("    {count} x {message}");
            }
            println!(
                "  streams open at once (first part seen, not yet done): peak {}",
                s.peak_open
            );
            println!(
                "  peak RSS {:.1} MB (before the first request {:.1} MB), peak threads {} (before {}; includes 1 sampler)",
                s.peak_rss_kb as f64 / 1024.0,
                s.base_rss_kb as f64 / 1024.0,
                s.peak_threads,
                s.base_threads
            );
            println!(
                "  TTFP p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; stream length p50 {:.2} s, max {:.2} s; wall {:.1} s; CPU {:.2} us per chunk (paced reads)",
                s.ttfp_p50_ms,
                s.ttfp_p99_ms,
                s.ttfp_max_ms,
                s.stream_p50_s,
                s.stream_max_s,
                s.wall_s,
                s.cpu_us_per_chunk
            );
        }
        Err(e) => println!("  no figures: {e}"),
    }
    println!();
}

fn print_targets(rows: &[Row], scale: Option<&Result<ScaleFigures, String>>) {
    println!("Targets (issues 7 and 14)");
    let mark = |ok: Option<bool>| match ok {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "n/a ",
    };
    let concurrencies: Vec<usize> = {
        let mut c: Vec<usize> = rows.iter().map(|r| r.concurrency).collect();
        c.dedup();
        c
    };
    for c in &concurrencies {
        let plugin = find(rows, "plugin", *c);
        let decode = find(rows, "decode", *c);
        let node = find(rows, "openai-node", *c);
        let r = plugin
            .zip(decode)
            .map(|(p, d)| p.cpu_us_per_chunk() / d.cpu_us_per_chunk());
        println!(
            "  {} c={c}: plugin CPU/chunk <= decode floor: ratio {}",
            mark(r.map(|r| r <= 1.0)),
            r.map_or("-".into(), |r| format!("{r:.2}"))
        );
        let r = plugin
            .zip(node)
            .map(|(p, n)| p.cpu_us_per_chunk() / n.cpu_us_per_chunk());
        println!(
            "  {} c={c}: plugin CPU/chunk <= 1/10 of openai-node: ratio {}",
            mark(r.map(|r| r <= 0.1)),
            r.map_or("-".into(), |r| format!("{r:.3}"))
        );
    }
    print_issue14_targets(rows, &concurrencies);
    let over = find(rows, "plugin", 8)
        .zip(find(rows, "wire", 8))
        .map(|(p, w)| (p.ttfp_p99_us - w.ttfp_p99_us) / 1000.0);
    println!(
        "  {} c=8: TTFP overhead over the wire floor at p99 < 1 ms: {}",
        mark(over.map(|o| o < 1.0)),
        over.map_or("-".into(), |o| format!("{o:.3} ms"))
    );
    let scale = scale.and_then(|s| s.as_ref().ok());
    println!(
        "  {} scale: every stream intact, none lost: {}",
        mark(scale.map(|s| s.intact == s.streams)),
        scale.map_or("-".into(), |s| format!("{} of {}", s.intact, s.streams))
    );
    // 200 MB was the target for 1,000 streams, 600 MB for 10,000 (issue 14).
    let rss_limit_mb = if scale.is_some_and(|s| s.streams > 1000) {
        600
    } else {
        200
    };
    println!(
        "  {} scale: peak RSS <= {rss_limit_mb} MB: {}",
        mark(scale.map(|s| s.peak_rss_kb <= rss_limit_mb * 1024)),
        scale.map_or("-".into(), |s| format!(
            "{:.1} MB for {} streams",
            s.peak_rss_kb as f64 / 1024.0,
            s.streams
        ))
    );
    println!(
        "  {} scale: every stream open at once (so peak RSS covers them all): {}",
        mark(scale.map(|s| s.peak_open == s.streams)),
        scale.map_or("-".into(), |s| format!("{} of {}", s.peak_open, s.streams))
    );
    println!(
        "  {} scale: TTFP p99 measured: {}",
        mark(scale.map(|s| s.intact > 0)),
        scale.map_or("-".into(), |s| format!(
            "{:.1} ms (p50 {:.1} ms, max {:.1} ms)",
            s.ttfp_p99_ms, s.ttfp_p50_ms, s.ttfp_max_ms
        ))
    );
    println!();
}

/// Issue 14's CPU targets: the plugin against the strongest Rust peer and
/// against a tighter decode floor.
fn print_issue14_targets(rows: &[Row], concurrencies: &[usize]) {
    let mark = |ok: Option<bool>| match ok {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "n/a ",
    };
    for c in concurrencies {
        let plugin = find(rows, "plugin", *c);
        let ratio = |base: &str| {
            plugin
                .zip(find(rows, base, *c))
                .map(|(p, b)| p.cpu_us_per_chunk() / b.cpu_us_per_chunk())
        };
        let r = ratio("async-openai");
        println!(
            "  {} c={c}: plugin CPU/chunk <= 1/4 of async-openai: ratio {}",
            mark(r.map(|r| r <= 0.25)),
            r.map_or("-".into(), |r| format!("{r:.3}"))
        );
        let r = ratio("decode");
        println!(
            "  {} c={c}: plugin CPU/chunk <= 0.75 of the decode floor: ratio {}",
            mark(r.map(|r| r <= 0.75)),
            r.map_or("-".into(), |r| format!("{r:.2}"))
        );
    }
}

fn write_json(
    path: &str,
    rows: &[Row],
    scale: Option<&Result<ScaleFigures, String>>,
) -> Result<(), String> {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| match &r.figures {
            Ok(f) => json!({"figures": f, "connections": r.connections}),
            Err(e) => json!({"kind": r.kind, "concurrency": r.concurrency, "error": e}),
        })
        .collect();
    let scale = scale.map(|s| match s {
        Ok(s) => json!(s),
        Err(e) => json!({"error": e}),
    });
    let text = serde_json::to_string_pretty(&json!({"throughput": rows, "scale": scale}))
        .map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))
}
