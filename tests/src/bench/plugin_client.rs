//! The plugin measured as a C host uses it: the release cdylib loaded with
//! `host_demo::plugin::Plugin::load`, then only the raw C table. The
//! callbacks are plain `extern "C"` functions that count parts by type
//! (a prefix check) and note when the first one came, nothing more: what a
//! C host that forwards parts pays at least. The safe wrapper's channel
//! (a `String` copy and a channel send per part) would add host-side cost
//! that is not the plugin's.
//!
//! Every request is checked: status OK, the expected number of text,
//! reasoning and usage parts, and a final result byte-for-byte equal to the
//! one a first, fully parsed request produced.

use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_demo::plugin::{Event, Instance, Plugin};
use moonshot_abi::{
    MoonshotApi, MoonshotCallbacks, MoonshotFlow, MoonshotInstance, MoonshotStatus,
    MOONSHOT_CONTINUE, MOONSHOT_OK, MOONSHOT_PENDING,
};
use serde_json::{json, Value};

use super::canned_stream::{self, CannedStream};
use super::figures::Worker;

/// The instance config every plugin client of the bench uses.
pub fn config_json(base_url: &str, max_concurrency: usize) -> String {
    json!({
        "apiKey": "sk-bench",
        "base_url": base_url,
        "max_concurrency": max_concurrency,
        "max_queue": 1024,
    })
    .to_string()
}

/// A live instance of the loaded plugin.
pub struct Provider {
    api: &'static MoonshotApi,
    raw: *mut MoonshotInstance,
}

// SAFETY: the header allows every call on an instance from any thread.
unsafe impl Send for Provider {}
unsafe impl Sync for Provider {}

impl Provider {
    /// Loads the library and creates an instance against `base_url`.
    pub fn new(library: &Path, base_url: &str, max_concurrency: usize) -> Result<Provider, String> {
        let plugin = Plugin::load(library)?;
        let api = plugin.api();
        let config = CString::new(config_json(base_url, max_concurrency)).expect("no NUL");
        let mut raw = std::ptr::null_mut();
        let mut error = std::ptr::null_mut();
        // SAFETY: valid pointers for the call's duration.
        let status = unsafe { (api.create)(config.as_ptr(), &mut raw, &mut error) };
        if status != MOONSHOT_OK {
            return Err(format!("create failed ({status}): {}", take(api, error)));
        }
        Ok(Provider { api, raw })
    }

    /// Starts one request whose callbacks report into `probe`; on success
    /// the handle is returned and `probe` must live until `wait` says done.
    fn start(
        &self,
        request: &CString,
        probe: &Probe,
    ) -> Result<*mut moonshot_abi::MoonshotRequest, String> {
        let callbacks = MoonshotCallbacks {
            struct_size: std::mem::size_of::<MoonshotCallbacks>(),
            on_chunk: Some(on_chunk),
            on_done: Some(on_done),
        };
        let mut handle = std::ptr::null_mut();
        let mut error = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the probe outlives the
        // request (the caller waits for it before touching the probe again).
        let status = unsafe {
            (self.api.complete)(
                self.raw,
                request.as_ptr(),
                &callbacks,
                probe as *const Probe as *mut c_void,
                &mut handle,
                &mut error,
            )
        };
        if status != MOONSHOT_OK {
            return Err(format!(
                "complete refused ({status}): {}",
                take(self.api, error)
            ));
        }
        Ok(handle)
    }

    /// Waits for a request to end, then releases it; returns its status.
    fn finish(&self, handle: *mut moonshot_abi::MoonshotRequest, timeout: Duration) -> i32 {
        let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        // SAFETY: a live handle from `start`, released exactly once here.
        unsafe {
            let status = (self.api.wait)(handle, ms);
            if status == MOONSHOT_PENDING {
                (self.api.cancel)(handle);
                (self.api.wait)(handle, u32::MAX);
            }
            (self.api.release)(handle);
            status
        }
    }

    /// One request, fully parsed and checked against the answer; returns
    /// the exact result bytes later requests must reproduce.
    pub fn reference_result(&self, answer: &CannedStream) -> Result<Arc<Vec<u8>>, String> {
        let probe = Probe::new(None);
        probe.capture.store(true, Ordering::Relaxed);
        let request = CString::new(canned_stream::puter_request()).expect("no NUL");
        probe.reset();
        let handle = self.start(&request, &probe)?;
        self.finish(handle, Duration::from_secs(60));
        let status = probe.status.load(Ordering::Relaxed);
        let captured = std::mem::take(&mut *probe.captured.lock().unwrap());
        let text = String::from_utf8_lossy(&captured);
        if status != MOONSHOT_OK {
            return Err(format!("reference request failed ({status}): {text}"));
        }
        let result: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let message = &result["message"];
        let checks = [
            (message["content"] == answer.content.as_str(), "content"),
            (
                message["reasoning"] == answer.reasoning.as_str(),
                "reasoning",
            ),
            (result["finish_reason"] == "stop", "finish_reason"),
            (
                probe.counts() == (answer.content_chunks, answer.reasoning_chunks, 1, 0),
                "part counts",
            ),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(format!(
                "reference result has the wrong {what}: parts (text, reasoning, usage, other) {:?}, result {}",
                probe.counts(),
                text.chars().take(300).collect::<String>()
            ));
        }
        Ok(Arc::new(captured))
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        // SAFETY: created by `create`, destroyed once.
        unsafe { (self.api.destroy)(self.raw) }
    }
}

fn take(api: &MoonshotApi, ptr: *mut c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string the plugin gave us; freed once.
    unsafe {
        let text = std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned();
        (api.free_string)(ptr);
        text
    }
}

/// What the callbacks of one request record. Atomics only: the callbacks
/// run on a plugin thread while the host thread waits.
pub struct Probe {
    base: Instant,
    text: AtomicUsize,
    reasoning: AtomicUsize,
    usage: AtomicUsize,
    other: AtomicUsize,
    /// Nanoseconds after `base` of the first part (0: none yet).
    first_ns: AtomicU64,
    done_ns: AtomicU64,
    status: AtomicI32,
    /// Whether the final result equalled `expected`.
    matched: AtomicBool,
    expected: Option<Arc<Vec<u8>>>,
    /// Set to keep a copy of the final result in `captured`.
    capture: AtomicBool,
    captured: std::sync::Mutex<Vec<u8>>,
    /// Streams open (first part seen, not done) across probes sharing it.
    open: Option<Arc<OpenStreams>>,
}

/// Streams between their first part and their end, and the most at once.
#[derive(Default)]
pub struct OpenStreams {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Probe {
    pub fn new(expected: Option<Arc<Vec<u8>>>) -> Probe {
        Probe {
            base: Instant::now(),
            text: AtomicUsize::new(0),
            reasoning: AtomicUsize::new(0),
            usage: AtomicUsize::new(0),
            other: AtomicUsize::new(0),
            first_ns: AtomicU64::new(0),
            done_ns: AtomicU64::new(0),
            status: AtomicI32::new(-1),
            matched: AtomicBool::new(false),
            expected,
            capture: AtomicBool::new(false),
            captured: std::sync::Mutex::new(Vec::new()),
            open: None,
        }
    }

    /// Clears the counters and restarts the clock, before each request.
    fn reset(&self) {
        for c in [&self.text, &self.reasoning, &self.usage, &self.other] {
            c.store(0, Ordering::Relaxed);
        }
        self.first_ns.store(0, Ordering::Relaxed);
        self.done_ns.store(0, Ordering::Relaxed);
        self.status.store(-1, Ordering::Relaxed);
        self.matched.store(false, Ordering::Relaxed);
    }

    fn now_ns(&self) -> u64 {
        (self.base.elapsed().as_nanos() as u64).max(1)
    }

    /// (text, reasoning, usage, other) parts seen.
    fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.text.load(Ordering::Relaxed),
            self.reasoning.load(Ordering::Relaxed),
            self.usage.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        )
    }

    /// Checks a finished request; Ok holds its time to first part.
    fn verdict(&self, answer: &CannedStream, started_ns: u64) -> Result<Duration, String> {
        let status = self.status.load(Ordering::Relaxed);
        if status != MOONSHOT_OK {
            let detail = String::from_utf8_lossy(&self.captured.lock().unwrap()).into_owned();
            return Err(format!("status {status} {detail}"));
        }
        let counts = self.counts();
        if counts != (answer.content_chunks, answer.reasoning_chunks, 1, 0) {
            return Err(format!(
                "parts (text, reasoning, usage, other) {counts:?}, expected ({}, {}, 1, 0)",
                answer.content_chunks, answer.reasoning_chunks
            ));
        }
        if !self.matched.load(Ordering::Relaxed) {
            return Err("final result differs from the reference".into());
        }
        let first = self.first_ns.load(Ordering::Relaxed);
        Ok(Duration::from_nanos(first.saturating_sub(started_ns)))
    }
}

unsafe extern "C" fn on_chunk(
    user_data: *mut c_void,
    json: *const c_char,
    len: usize,
) -> MoonshotFlow {
    // SAFETY: user_data is the Probe passed to `complete`, alive until the
    // request ends; json is `len` bytes.
    let probe = unsafe { &*(user_data as *const Probe) };
    let part = unsafe { std::slice::from_raw_parts(json as *const u8, len) };
    if probe.first_ns.load(Ordering::Relaxed) == 0 {
        probe.first_ns.store(probe.now_ns(), Ordering::Relaxed);
        if let Some(open) = &probe.open {
            let now = open.now.fetch_add(1, Ordering::Relaxed) + 1;
            open.peak.fetch_max(now, Ordering::Relaxed);
        }
    }
    let counter = if part.starts_with(b"{\"type\":\"text\"") {
        &probe.text
    } else if part.starts_with(b"{\"type\":\"reasoning\"") {
        &probe.reasoning
    } else if part.starts_with(b"{\"type\":\"usage\"") {
        &probe.usage
    } else {
        &probe.other
    };
    counter.fetch_add(1, Ordering::Relaxed);
    MOONSHOT_CONTINUE
}

unsafe extern "C" fn on_done(
    user_data: *mut c_void,
    status: MoonshotStatus,
    json: *const c_char,
    len: usize,
) {
    // SAFETY: as in on_chunk.
    let probe = unsafe { &*(user_data as *const Probe) };
    let result = unsafe { std::slice::from_raw_parts(json as *const u8, len) };
    probe.done_ns.store(probe.now_ns(), Ordering::Relaxed);
    if let (Some(open), true) = (&probe.open, probe.first_ns.load(Ordering::Relaxed) != 0) {
        open.now.fetch_sub(1, Ordering::Relaxed);
    }
    let matched = probe.expected.as_deref().is_some_and(|e| e == result);
    probe.matched.store(matched, Ordering::Relaxed);
    if probe.capture.load(Ordering::Relaxed) || status != MOONSHOT_OK {
        *probe.captured.lock().unwrap() = result.to_vec();
    }
    probe.status.store(status, Ordering::Relaxed);
}

/// One host thread's request slot for the throughput runs.
pub struct PluginWorker {
    provider: Arc<Provider>,
    request: CString,
    probe: Box<Probe>,
    answer: Arc<CannedStream>,
}

impl PluginWorker {
    pub fn new(provider: Arc<Provider>, answer: Arc<CannedStream>, expected: Arc<Vec<u8>>) -> Self {
        PluginWorker {
            provider,
            request: CString::new(canned_stream::puter_request()).expect("no NUL"),
            probe: Box::new(Probe::new(Some(expected))),
            answer,
        }
    }
}

impl Worker for PluginWorker {
    fn request(&mut self) -> Result<Duration, String> {
        self.probe.reset();
        let started = self.probe.now_ns();
        let handle = self.provider.start(&self.request, &self.probe)?;
        self.provider.finish(handle, Duration::from_secs(120));
        self.probe.verdict(&self.answer, started)
    }
}

/// The same requests through the safe Rust wrapper of host-demo (a `String`
/// copy and a channel send per part, consumed on the host thread): what a
/// Rust host using `host_demo::plugin` pays on top of the raw C path.
pub struct ChannelWorker {
    instance: Arc<Instance>,
    request: String,
    expected: Arc<Vec<u8>>,
    answer: Arc<CannedStream>,
}

impl ChannelWorker {
    pub fn new(instance: Arc<Instance>, answer: Arc<CannedStream>, expected: Arc<Vec<u8>>) -> Self {
        ChannelWorker {
            instance,
            request: canned_stream::puter_request(),
            expected,
            answer,
        }
    }
}

impl Worker for ChannelWorker {
    fn request(&mut self) -> Result<Duration, String> {
        let start = Instant::now();
        let (request, events) = self
            .instance
            .complete(&self.request, None)
            .map_err(|(status, e)| format!("complete refused ({status}): {e}"))?;
        let mut first = None;
        let mut counts = (0, 0, 0, 0);
        for event in events {
            match event {
                Event::Part(part) => {
                    first.get_or_insert_with(|| start.elapsed());
                    if part.starts_with("{\"type\":\"text\"") {
                        counts.0 += 1;
                    } else if part.starts_with("{\"type\":\"reasoning\"") {
                        counts.1 += 1;
                    } else if part.starts_with("{\"type\":\"usage\"") {
                        counts.2 += 1;
                    } else {
                        counts.3 += 1;
                    }
                }
                Event::Done(status, result) => {
                    drop(request);
                    if status != MOONSHOT_OK {
                        return Err(format!("status {status} {result}"));
                    }
                    let a = &self.answer;
                    if counts != (a.content_chunks, a.reasoning_chunks, 1, 0) {
                        return Err(format!("parts (text, reasoning, usage, other) {counts:?}"));
                    }
                    if result.as_bytes() != self.expected.as_slice() {
                        return Err("final result differs from the reference".into());
                    }
                    return Ok(first.unwrap_or_default());
                }
            }
        }
        Err("the channel closed before on_done".into())
    }
}

/// What the scale run saw.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone)]
pub struct ScaleFigures {
    pub streams: usize,
    pub started: usize,
    pub intact: usize,
    pub failed: usize,
    /// Distinct failure messages with how many requests had each.
    pub failures: Vec<(String, usize)>,
    pub peak_open: usize,
    pub base_rss_kb: u64,
    pub peak_rss_kb: u64,
    pub base_threads: u64,
    pub peak_threads: u64,
    pub wall_s: f64,
    pub cpu_us_per_chunk: f64,
    pub ttfp_p50_ms: f64,
    pub ttfp_p99_ms: f64,
    pub ttfp_max_ms: f64,
    pub stream_p50_s: f64,
    pub stream_max_s: f64,
}

/// Holds `streams` completions open at once against the paced upstream.
/// Streams started together in the scale run. A host does not open 10,000
/// connections in one instant; a single burst overflows the upstream's
/// accept queue (somaxconn) and the kernel drops handshakes.
const WAVE: usize = 1000;

/// Waits (bounded) until every stream of a wave has its first part or has
/// ended, so the next wave's connects meet an upstream that took this one.
fn wait_for_first_parts(wave: &[Box<Probe>]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && wave.iter().any(|p| {
            p.first_ns.load(Ordering::Relaxed) == 0 && p.done_ns.load(Ordering::Relaxed) == 0
        })
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn scale(
    library: &Path,
    fast_base_url: &str,
    slow_base_url: &str,
    answer: &CannedStream,
    streams: usize,
) -> Result<ScaleFigures, String> {
    let base_rss_kb = super::procstat::rss_kb();
    let base_threads = super::procstat::threads();
    // The reference comes from a separate instance on the fast path, so the
    // one under test starts with no thread.
    let expected = Provider::new(library, fast_base_url, 1)?.reference_result(answer)?;
    let provider = Provider::new(library, slow_base_url, streams)?;

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut rss, mut threads) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                rss = rss.max(super::procstat::rss_kb());
                threads = threads.max(super::procstat::threads());
                std::thread::sleep(Duration::from_millis(10));
            }
            (rss, threads)
        })
    };

    let open = Arc::new(OpenStreams::default());
    let request = CString::new(canned_stream::puter_request()).expect("no NUL");
    let probes: Vec<Box<Probe>> = (0..streams)
        .map(|_| {
            let mut p = Probe::new(Some(expected.clone()));
            p.open = Some(open.clone());
            Box::new(p)
        })
        .collect();
    let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
    let cpu0 = super::procstat::cpu_time();
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(streams);
    for wave in probes.chunks(WAVE) {
        for probe in wave {
            probe.reset();
            let started = probe.now_ns();
            match provider.start(&request, probe) {
                Ok(h) => handles.push((h, probe, started)),
                Err(e) => *failures.entry(e).or_default() += 1,
            }
        }
        wait_for_first_parts(wave);
    }
    let started = handles.len();
    let mut ttfp = Vec::new();
    let mut lengths = Vec::new();
    let mut intact = 0;
    for (handle, probe, started_ns) in handles {
        provider.finish(handle, Duration::from_secs(300));
        match probe.verdict(answer, started_ns) {
            Ok(t) => {
                intact += 1;
                ttfp.push(t);
                lengths.push(Duration::from_nanos(
                    probe.done_ns.load(Ordering::Relaxed) - started_ns,
                ));
            }
            Err(e) => {
                let e: String = e.chars().take(200).collect();
                *failures.entry(e).or_default() += 1;
            }
        }
    }
    let wall = t0.elapsed();
    let cpu = super::procstat::cpu_time() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let (sampled_rss, peak_threads) = sampler.join().unwrap_or_default();
    drop(provider);

    ttfp.sort();
    lengths.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let chunks = (intact * answer.chunk_count()).max(1);
    Ok(ScaleFigures {
        streams,
        started,
        intact,
        failed: streams - intact,
        failures: failures.into_iter().collect(),
        peak_open: open.peak.load(Ordering::Relaxed),
        base_rss_kb,
        peak_rss_kb: super::procstat::peak_rss_kb().max(sampled_rss),
        base_threads,
        peak_threads,
        wall_s: wall.as_secs_f64(),
        cpu_us_per_chunk: cpu.as_secs_f64() * 1e6 / chunks as f64,
        ttfp_p50_ms: ms(super::figures::percentile(&ttfp, 50.0)),
        ttfp_p99_ms: ms(super::figures::percentile(&ttfp, 99.0)),
        ttfp_max_ms: ms(ttfp.last().copied().unwrap_or_default()),
        stream_p50_s: super::figures::percentile(&lengths, 50.0).as_secs_f64(),
        stream_max_s: lengths.last().copied().unwrap_or_default().as_secs_f64(),
    })
}
