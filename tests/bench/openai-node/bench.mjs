// The openai npm package as Puter's providers use it, measured against the
// bench upstream: `concurrency` async workers each run streaming completions
// with `chat.completions.create({stream: true})` and iterate every chunk.
// Prints one JSON line with the same fields as the Rust clients
// (tests/src/bench/figures.rs). Run by `make bench`; arguments:
//   --port P --n N --warmup W --concurrency C --chunks K --text-units U --body JSON
import OpenAI from 'openai';
import { VERSION } from 'openai/version';

import { measure, readArgs } from '../node-client.mjs';

const args = readArgs();
const { chunks, textUnits, body } = args;
const client = new OpenAI({ baseURL: `http://127.0.0.1:${Number(args.raw.port)}/v1`, apiKey: 'sk-bench' });

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

await measure({
  kind: 'openai-node',
  args,
  one,
  note: `openai ${VERSION} on node ${process.version}`,
});
