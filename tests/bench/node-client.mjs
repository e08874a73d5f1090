// What the two Node clients of `make bench` share (tests/bench/openai-node
// and bindings/node/bench): their common arguments, the warm-up and
// measured phases at a concurrency, and the one JSON line of figures the
// bench reads (tests/src/bench/figures.rs). Each client brings only how one
// streaming completion runs and is checked.

/**
 * The shared arguments (`--port P --n N --warmup W --concurrency C
 * --chunks K --text-units U --body JSON`, plus each client's own, in `raw`),
 * and the RSS before the client builds anything.
 */
export function readArgs() {
    const raw = {};
    for (let i = 2; i < process.argv.length; i += 2) {
        raw[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
    }
    return {
        raw,
        n: Number(raw.n),
        warmup: Number(raw.warmup ?? 0),
        concurrency: Number(raw.concurrency),
        chunks: Number(raw.chunks),
        textUnits: Number(raw['text-units']),
        body: JSON.parse(raw.body),
        baseRssKb: Math.round(process.memoryUsage().rss / 1024),
    };
}

/** Runs `total` completions on `concurrency` workers; `afterEach(done)` follows each. */
async function phase(total, concurrency, one, samples, failures, afterEach) {
    let next = 0;
    let done = 0;
    const worker = async () => {
        while (next++ < total) {
            try {
                samples.push(await one());
            } catch (e) {
                failures.count += 1;
                failures.sample ??= String(e?.message ?? e);
            }
            done += 1;
            afterEach(done);
        }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * The warm-up, then the measured phase, then the figures line on standard
 * output. `one()` runs a completion and resolves to its time to first part
 * in ms (it throws when the answer is incomplete). `afterMeasured(done)`
 * follows each measured completion; `finish()` runs once the measured phase
 * is over, outside the CPU figure, and may return extra fields.
 */
export async function measure({ kind, args, one, note, afterMeasured = () => {}, finish = async () => ({}) }) {
    const warmFailures = { count: 0, sample: null };
    await phase(args.warmup, args.concurrency, one, [], warmFailures, () => {});

    const samples = [];
    const failures = { count: 0, sample: null };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await phase(args.n, args.concurrency, one, samples, failures, afterMeasured);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const extra = await finish();

    samples.sort((a, b) => a - b);
    const pct = (p) =>
        samples.length ? samples[Math.min(samples.length, Math.max(1, Math.ceil((p / 100) * samples.length))) - 1] : 0;
    const out = {
        kind,
        concurrency: args.concurrency,
        requests: samples.length,
        chunks: samples.length * args.chunks,
        wall_s: wallMs / 1000,
        cpu_s: (cpu.user + cpu.system) / 1e6,
        sys_s: cpu.system / 1e6,
        ttfp_p50_us: pct(50) * 1000,
        ttfp_p99_us: pct(99) * 1000,
        ttfp_max_us: (samples[samples.length - 1] ?? 0) * 1000,
        peak_rss_kb: process.resourceUsage().maxRSS,
        base_rss_kb: args.baseRssKb,
        failures: failures.count,
        failure_sample: failures.sample ?? warmFailures.sample,
        note: note + (warmFailures.count ? `; ${warmFailures.count} failures during warm-up` : ''),
        ...extra,
    };
    console.log(JSON.stringify(out));
}
