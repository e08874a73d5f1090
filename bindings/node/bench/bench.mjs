// The `node-koffi` kind of `make bench`: a Node host consuming streams
// through this package (MoonshotProvider -> koffi -> the plugin), the way
// Puter's driver does: complete({stream: true}) then init_chat_stream into
// a chatStream whose blocks count what they get. Same arguments and output
// line as tests/bench/openai-node/bench.mjs, plus:
//   --config JSON   the instance config (tests/src/bench/plugin_client.rs)
//   --library PATH  libmoonshot_provider.so
//   --rss-every K   also sample RSS after every K measured completions
//                   (`rss_samples_kb`, for the flat-RSS check)
// MOONSHOT_BENCH_COALESCE=0 in the environment turns the provider's
// coalesceParts off (one part per delta), to measure what it saves.
import { MoonshotProvider } from '../index.js';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
    args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const n = Number(args.n);
const warmup = Number(args.warmup ?? 0);
const concurrency = Number(args.concurrency);
const chunks = Number(args.chunks);
const textUnits = Number(args['text-units']);
const body = JSON.parse(args.body);
const rssEvery = Number(args['rss-every'] ?? 0);

const baseRssKb = Math.round(process.memoryUsage().rss / 1024);
const provider = new MoonshotProvider(JSON.parse(args.config), undefined, {
    library: args.library,
    coalesceParts: process.env.MOONSHOT_BENCH_COALESCE !== '0',
});

/** A chatStream that only counts: what the consumer received. */
function countingStream(onFirst) {
    const seen = { parts: 0, units: 0, usage: null };
    const block = {
        addText(text) {
            if (seen.parts++ === 0) onFirst();
            seen.units += text.length;
        },
        addReasoning(reasoning) {
            if (seen.parts++ === 0) onFirst();
            seen.units += reasoning.length;
        },
        end() {},
    };
    const chatStream = {
        message: () => ({ contentBlock: () => block, end() {} }),
        end(usage) {
            seen.usage = usage;
        },
        reportUsage() {},
    };
    return { chatStream, seen };
}

// One streaming completion; resolves to the time to first part in ms.
async function one() {
    const start = performance.now();
    let first = null;
    const { chatStream, seen } = countingStream(() => {
        first = performance.now() - start;
    });
    const res = await provider.complete(body);
    await res.init_chat_stream({ chatStream });
    await res.finally_fn();
    if (seen.units !== textUnits || !seen.usage) {
        throw new Error(`incomplete: ${seen.units} of ${textUnits} text units, usage ${JSON.stringify(seen.usage)}`);
    }
    return first;
}

const rssSamples = [];
async function phase(total, samples, failures, sampleRss) {
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
            if (sampleRss && rssEvery && done % rssEvery === 0) {
                rssSamples.push(Math.round(process.memoryUsage().rss / 1024));
            }
        }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
}

const warmFailures = { count: 0, sample: null };
await phase(warmup, [], warmFailures, false);

const samples = [];
const failures = { count: 0, sample: null };
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await phase(n, samples, failures, true);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await provider.close();

samples.sort((a, b) => a - b);
const pct = (p) =>
    samples.length ? samples[Math.min(samples.length, Math.max(1, Math.ceil((p / 100) * samples.length))) - 1] : 0;
const out = {
    kind: 'node-koffi',
    concurrency,
    requests: samples.length,
    chunks: samples.length * chunks,
    wall_s: wallMs / 1000,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    sys_s: cpu.system / 1e6,
    ttfp_p50_us: pct(50) * 1000,
    ttfp_p99_us: pct(99) * 1000,
    ttfp_max_us: (samples[samples.length - 1] ?? 0) * 1000,
    peak_rss_kb: process.resourceUsage().maxRSS,
    base_rss_kb: baseRssKb,
    failures: failures.count,
    failure_sample: failures.sample ?? warmFailures.sample,
    note:
        `${provider.plugin.name} ${provider.plugin.version} through koffi on node ${process.version}` +
        (warmFailures.count ? `; ${warmFailures.count} failures during warm-up` : ''),
    rss_samples_kb: rssSamples,
};
console.log(JSON.stringify(out));
