// The openai npm package as Puter's providers use it, measured against the
// bench upstream: `concurrency` async workers each run streaming completions
// with `chat.completions.create({stream: true})` and iterate every chunk.
// Prints one JSON line with the same fields as the Rust clients
// (tests/src/bench/figures.rs). Run by `make bench`; arguments:
//   --port P --n N --warmup W --concurrency C --chunks K --text-units U --body JSON
import OpenAI from 'openai';
import { VERSION } from 'openai/version';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const port = Number(args.port);
const n = Number(args.n);
const warmup = Number(args.warmup ?? 0);
const concurrency = Number(args.concurrency);
const chunks = Number(args.chunks);
const textUnits = Number(args['text-units']);
const body = JSON.parse(args.body);

const baseRssKb = Math.round(process.memoryUsage().rss / 1024);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-bench' });

// One streaming completion; resolves to the time to first chunk in ms.
async function one() {
  const start = performance.now();
  const stream = await client.chat.completions.create(body);
  let first = null;
  let count = 0;
  let units = 0;
  for await (const chunk of stream) {
    if (first === null) first = performance.now() - start;
    count += 1;
    const delta = chunk.choices[0]?.delta;
    if (delta) units += (delta.content?.length ?? 0) + (delta.reasoning_content?.length ?? 0);
  }
  if (count !== chunks || units !== textUnits) {
    throw new Error(`incomplete: ${count} of ${chunks} chunks, ${units} of ${textUnits} text units`);
  }
  return first;
}

async function phase(total, samples, failures) {
  let next = 0;
  const worker = async () => {
    while (next++ < total) {
      try {
        samples.push(await one());
      } catch (e) {
        failures.count += 1;
        failures.sample ??= String(e?.message ?? e);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const warmFailures = { count: 0, sample: null };
await phase(warmup, [], warmFailures);

const samples = [];
const failures = { count: 0, sample: null };
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await phase(n, samples, failures);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);

samples.sort((a, b) => a - b);
const pct = (p) =>
  samples.length ? samples[Math.min(samples.length, Math.max(1, Math.ceil((p / 100) * samples.length))) - 1] : 0;
const out = {
  kind: 'openai-node',
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
  note: `openai ${VERSION} on node ${process.version}` +
    (warmFailures.count ? `; ${warmFailures.count} failures during warm-up` : ''),
};
console.log(JSON.stringify(out));
