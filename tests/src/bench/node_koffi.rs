//! The `node-koffi` client kind: a Node host consuming streams through
//! bindings/node (MoonshotProvider -> koffi -> the release plugin), run by
//! bindings/node/bench/bench.mjs beside openai-node in the same run. Its
//! targets (issue 10): at most half of openai-node's CPU per chunk, and RSS
//! flat over 10,000 completions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::figures::Figures;
use super::plugin_client;

/// Completions of the flat-RSS run, and how often it samples RSS.
pub const RSS_COMPLETIONS: usize = 10_000;
const RSS_EVERY: usize = 500;
const RSS_CONCURRENCY: usize = 8;
/// The baseline sample: V8's heap and koffi's pools have grown to their
/// working size by then (the first samples climb for that reason alone).
const RSS_BASELINE_AFTER: usize = 2_000;
/// RSS may grow this much from the baseline to the last sample (8,000
/// completions later: under 1 KiB per completion) and still count as flat.
const RSS_GROWTH_LIMIT_KB: u64 = 8 * 1024;

/// Where the package lives; installs its locked packages when missing.
pub fn prepare() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .join("bindings/node");
    super::run::prepare_npm_package(&dir, "koffi")?;
    Ok(dir)
}

/// One run's settings.
pub struct Run {
    pub dir: PathBuf,
    pub library: PathBuf,
    pub port: u16,
    pub concurrency: usize,
    pub n: usize,
    pub warmup: usize,
    pub chunks: usize,
    pub text_units: usize,
    pub body: String,
}

#[derive(Deserialize)]
struct Output {
    #[serde(flatten)]
    figures: Figures,
    #[serde(default)]
    rss_samples_kb: Vec<u64>,
}

fn run_with(run: &Run, rss_every: usize) -> Result<Output, String> {
    let base_url = format!("http://127.0.0.1:{}/v1", run.port);
    let output = Command::new("node")
        .arg(run.dir.join("bench/bench.mjs"))
        .args(["--concurrency", &run.concurrency.to_string()])
        .args(["--n", &run.n.to_string()])
        .args(["--warmup", &run.warmup.to_string()])
        .args(["--chunks", &run.chunks.to_string()])
        .args(["--text-units", &run.text_units.to_string()])
        .args(["--body", &run.body])
        .args([
            "--config",
            &plugin_client::config_json(&base_url, run.concurrency),
        ])
        .arg("--library")
        .arg(&run.library)
        .args(["--rss-every", &rss_every.to_string()])
        .current_dir(&run.dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("");
    if !output.status.success() {
        return Err(format!("exited with {}: {last}", output.status));
    }
    serde_json::from_str(last).map_err(|e| format!("unreadable figures ({e}): {last:?}"))
}

/// The throughput figures at one concurrency, like every other kind.
pub fn run(run: &Run) -> Result<Figures, String> {
    run_with(run, 0).map(|o| o.figures)
}

/// The flat-RSS run: RSS_COMPLETIONS completions at concurrency 8.
pub struct RssRun {
    pub completions: u64,
    pub failures: u64,
    pub samples_kb: Vec<u64>,
}

impl RssRun {
    /// Growth from the baseline sample to the last, in KiB.
    pub fn growth_kb(&self) -> Option<i64> {
        let first = *self.samples_kb.get(RSS_BASELINE_AFTER / RSS_EVERY - 1)? as i64;
        let last = *self.samples_kb.last()? as i64;
        Some(last - first)
    }

    pub fn flat(&self) -> bool {
        self.failures == 0
            && self
                .growth_kb()
                .is_some_and(|g| g <= RSS_GROWTH_LIMIT_KB as i64)
    }
}

pub fn rss_run(base: &Run) -> Result<RssRun, String> {
    let run = Run {
        dir: base.dir.clone(),
        library: base.library.clone(),
        concurrency: RSS_CONCURRENCY,
        n: RSS_COMPLETIONS,
        body: base.body.clone(),
        ..*base
    };
    let out = run_with(&run, RSS_EVERY)?;
    Ok(RssRun {
        completions: out.figures.requests,
        failures: out.figures.failures,
        samples_kb: out.rss_samples_kb,
    })
}

pub fn print_rss(result: &Result<RssRun, String>) {
    println!(
        "node-koffi RSS over {RSS_COMPLETIONS} completions (concurrency {RSS_CONCURRENCY}, sampled every {RSS_EVERY})"
    );
    match result {
        Ok(r) => {
            let mb = |kb: &u64| format!("{:.1}", *kb as f64 / 1024.0);
            println!(
                "  {} completions, {} failures; RSS MB: {}",
                r.completions,
                r.failures,
                r.samples_kb.iter().map(mb).collect::<Vec<_>>().join(" ")
            );
        }
        Err(e) => println!("  no figures: {e}"),
    }
    println!();
}

/// The PASS/FAIL lines of issue 10's targets.
pub fn print_targets(
    per_concurrency: &[(usize, Option<&Figures>, Option<&Figures>)],
    rss: Option<&Result<RssRun, String>>,
) {
    let mark = |ok: Option<bool>| match ok {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "n/a ",
    };
    for (c, koffi, node) in per_concurrency {
        let r = koffi
            .zip(*node)
            .map(|(k, n)| k.cpu_us_per_chunk() / n.cpu_us_per_chunk());
        println!(
            "  {} c={c}: node-koffi CPU/chunk <= 1/2 of openai-node: ratio {}",
            mark(r.map(|r| r <= 0.5)),
            r.map_or("-".into(), |r| format!("{r:.3}"))
        );
    }
    let rss = rss.and_then(|r| r.as_ref().ok());
    println!(
        "  {} node-koffi: RSS flat over {RSS_COMPLETIONS} completions (growth after the first {RSS_BASELINE_AFTER} <= {} MB): {}",
        mark(rss.map(RssRun::flat)),
        RSS_GROWTH_LIMIT_KB / 1024,
        rss.and_then(RssRun::growth_kb)
            .map_or("-".into(), |g| format!("{:+.1} MB", g as f64 / 1024.0))
    );
}
