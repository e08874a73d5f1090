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
// Not part of the package (it is private): the bench's shared Node runner.
import { measure, readArgs } from '../../../tests/bench/node-client.mjs';

const args = readArgs();
const { textUnits, body } = args;
const rssEvery = Number(args.raw['rss-every'] ?? 0);

const provider = new MoonshotProvider(JSON.parse(args.raw.config), undefined, {
    library: args.raw.library,
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
await measure({
    kind: 'node-koffi',
    args,
    one,
    note: `${provider.plugin.name} ${provider.plugin.version} through koffi on node ${process.version}`,
    afterMeasured(done) {
        if (rssEvery && done % rssEvery === 0) {
            rssSamples.push(Math.round(process.memoryUsage().rss / 1024));
        }
    },
    async finish() {
        await provider.close();
        return { rss_samples_kb: rssSamples };
    },
});
