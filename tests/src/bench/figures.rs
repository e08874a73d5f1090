//! What one client run measured, and the loop every Rust client runs:
//! `concurrency` threads taking requests from a shared counter, a warm-up
//! phase, then the measured phase between two CPU and clock readings.
//!
//! Each client kind runs in its own process, so the process-wide CPU time
//! (getrusage RUSAGE_SELF) and peak RSS (VmHWM) belong to that client alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::procstat;

/// One client kind at one concurrency. The node client prints the same
/// fields.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Figures {
    pub kind: String,
    pub concurrency: usize,
    /// Measured requests (warm-up excluded) and the chunk JSONs they carried.
    pub requests: u64,
    pub chunks: u64,
    pub wall_s: f64,
    /// User plus system CPU of the client process during the measured phase.
    pub cpu_s: f64,
    /// The system (kernel) part of `cpu_s`.
    #[serde(default)]
    pub sys_s: f64,
    /// Time to first part, from starting the request to the first part in
    /// the consumer's hands, in microseconds.
    pub ttfp_p50_us: f64,
    pub ttfp_p99_us: f64,
    pub ttfp_max_us: f64,
    /// VmHWM of the client process at the end, and VmRSS before any request.
    pub peak_rss_kb: u64,
    pub base_rss_kb: u64,
    pub failures: u64,
    #[serde(default)]
    pub failure_sample: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

impl Figures {
    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.wall_s
    }

    pub fn chunks_per_s(&self) -> f64 {
        self.chunks as f64 / self.wall_s
    }

    pub fn cpu_us_per_chunk(&self) -> f64 {
        self.cpu_s * 1e6 / self.chunks as f64
    }
}

/// A client connection (or plugin request slot) driven by one thread.
pub trait Worker: Send {
    /// Runs one whole streaming completion and checks it; returns the time
    /// to its first part.
    fn request(&mut self) -> Result<Duration, String>;
}

/// The `p`th percentile (0..=100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `warmup` then `n` requests over `workers` (one thread each) and
/// returns the measured phase's figures.
pub fn drive(
    kind: &str,
    workers: Vec<Box<dyn Worker>>,
    warmup: usize,
    n: usize,
    chunks_per_request: usize,
    base_rss_kb: u64,
) -> Figures {
    let concurrency = workers.len();
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let counters = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let limits = [warmup, n];
    let samples = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let failures = Arc::new(Mutex::new((0u64, None::<String>)));

    let threads: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let (barrier, counters, samples, failures) = (
                barrier.clone(),
                counters.clone(),
                samples.clone(),
                failures.clone(),
            );
            std::thread::spawn(move || {
                for phase in 0..2 {
                    let mut mine = Vec::new();
                    barrier.wait();
                    while counters[phase].fetch_add(1, Ordering::Relaxed) < limits[phase] {
                        match worker.request() {
                            Ok(ttfp) => mine.push(ttfp),
                            Err(e) => {
                                let mut f = failures.lock().unwrap();
                                f.0 += 1;
                                f.1.get_or_insert(e);
                            }
                        }
                    }
                    if phase == 1 {
                        samples.lock().unwrap().extend(mine);
                    }
                    barrier.wait();
                }
                drop(worker);
            })
        })
        .collect();

    barrier.wait(); // warm-up starts
    barrier.wait(); // warm-up done
    let warm_failures = failures.lock().unwrap().0;
    let cpu0 = procstat::cpu_times();
    let t0 = Instant::now();
    barrier.wait(); // measured phase starts
    barrier.wait(); // measured phase done
    let wall = t0.elapsed();
    let cpu1 = procstat::cpu_times();
    let (user, sys) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    for t in threads {
        let _ = t.join();
    }

    let mut samples = std::mem::take(&mut *samples.lock().unwrap());
    samples.sort();
    let (failed, sample) = std::mem::take(&mut *failures.lock().unwrap());
    let ok = samples.len() as u64;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Figures {
        kind: kind.to_string(),
        concurrency,
        requests: ok,
        chunks: ok * chunks_per_request as u64,
        wall_s: wall.as_secs_f64(),
        cpu_s: (user + sys).as_secs_f64(),
        sys_s: sys.as_secs_f64(),
        ttfp_p50_us: us(percentile(&samples, 50.0)),
        ttfp_p99_us: us(percentile(&samples, 99.0)),
        ttfp_max_us: us(samples.last().copied().unwrap_or_default()),
        peak_rss_kb: procstat::peak_rss_kb(),
        base_rss_kb,
        failures: failed - warm_failures,
        failure_sample: sample,
        note: (warm_failures > 0).then(|| format!("{warm_failures} failures during warm-up")),
    }
}
