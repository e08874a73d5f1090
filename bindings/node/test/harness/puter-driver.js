// What Puter's chat driver does with a provider, written from reading
// HeyPuter/puter src/backend/drivers/ai-chat: ChatCompletionDriver.ts
// (complete's stream branch, #computeCost, #injectUsdCents,
// #meterUnreportedStream) and utils/Streaming.js (AIChatStream and its
// blocks). Only the parts a provider can observe or that check its output;
// credit holds, events and routing are left out.

import { PassThrough } from 'node:stream';

// ------------------------------------------------------------ utils/Streaming.js

class AIChatConstructStream {
    constructor(chatStream, params) {
        this.chatStream = chatStream;
        if (this._start) this._start(params);
    }
    end() {}
}

class AIChatTextStream extends AIChatConstructStream {
    addText(text) {
        this.chatStream.writeChunk({ type: 'text', text });
    }
    addReasoning(reasoning) {
        this.chatStream.writeChunk({ type: 'reasoning', reasoning });
    }
}

class AIChatToolUseStream extends AIChatConstructStream {
    _start(params) {
        this.contentBlock = params;
        this.buffer = '';
    }
    addPartialJSON(partialJson) {
        this.chatStream.countOutput(partialJson);
        this.buffer += partialJson;
    }
    end() {
        if (this.buffer.trim() === '') this.buffer = '{}';
        this.chatStream.writeChunk(
            {
                type: 'tool_use',
                ...this.contentBlock,
                input: JSON.parse(this.buffer),
                ...(!this.contentBlock.text ? { text: '' } : {}),
            },
            { alreadyCounted: true },
        );
    }
}

class AIChatMessageStream extends AIChatConstructStream {
    contentBlock({ type, ...params }) {
        if (type === 'tool_use') return new AIChatToolUseStream(this.chatStream, params);
        if (type === 'text') return new AIChatTextStream(this.chatStream, params);
        throw new Error(`Unknown content block type: ${type}`);
    }
}

const ENVELOPE_KEYS = new Set(['type', 'id', 'usage']);
const payloadChars = (value) => {
    if (typeof value === 'string') return value.length;
    if (Array.isArray(value)) return value.reduce((n, v) => n + payloadChars(v), 0);
    if (value && typeof value === 'object') {
        let n = 0;
        for (const [key, v] of Object.entries(value)) if (!ENVELOPE_KEYS.has(key)) n += payloadChars(v);
        return n;
    }
    return 0;
};

export class AIChatStream {
    outputChars = 0;
    reportedUsage = null;
    constructor({ stream, newer = false }) {
        this.stream = stream;
        if (newer) {
            // Newer Puter: costs and stop reason are reported to the stream,
            // and a write after the client left throws.
            this.usageCosts = null;
            this.stop = null;
            this.setUsageCosts = (costs) => {
                this.usageCosts = costs;
            };
            this.setStop = (reason) => {
                this.stop = reason;
            };
        }
    }
    countOutput(text) {
        if (typeof text === 'string') this.outputChars += text.length;
    }
    reportUsage(usage) {
        if (!usage) return;
        if (Object.values(usage).some((v) => Number.isFinite(v))) this.reportedUsage = usage;
    }
    writeChunk(chunk, { alreadyCounted = false } = {}) {
        if (!alreadyCounted) this.outputChars += payloadChars(chunk);
        if (this.setStop && this.stream.destroyed) throw new Error('the client went away');
        this.stream.write(`${JSON.stringify(chunk)}\n`);
    }
    end(usage) {
        this.reportUsage(usage);
        this.stream.write(`${JSON.stringify({ type: 'usage', usage })}\n`);
        this.stream.end();
    }
    message() {
        return new AIChatMessageStream(this);
    }
    write(...args) {
        return this.stream.write(...args);
    }
}

// ------------------------------------------------------------ utils/pricing.ts, #computeCost

const costKeys = (model) => ({
    inputKey: model.input_cost_key ?? 'input_tokens',
    outputKey: model.output_cost_key ?? 'output_tokens',
});

/** ChatCompletionDriver#computeCost, line for line: microcents or null. */
export function computeCost(usage, model) {
    const { inputKey, outputKey } = costKeys(model);
    const costs = model.costs;
    if (!costs) return null;
    const outputRateRaw = costs[outputKey];
    const outputRate = typeof outputRateRaw === 'number' && Number.isFinite(outputRateRaw) ? outputRateRaw : undefined;
    const isOutputKey = (key) =>
        key === outputKey || key === 'output_tokens' || key === 'completion_tokens' || key === 'thinking_tokens';
    let inputMicroCents = 0;
    let outputMicroCents = 0;
    let sawAnyRate = false;
    for (const [key, rawAmount] of Object.entries(usage)) {
        if (typeof rawAmount !== 'number' || !Number.isFinite(rawAmount)) continue;
        if (key === 'usd_cents' || key === 'tokens') continue;
        let rate = costs[key];
        if (typeof rate !== 'number' || !Number.isFinite(rate)) {
            if (isOutputKey(key) && outputRate !== undefined) {
                rate = outputRate;
            } else if (!isOutputKey(key)) {
                const inputRateRaw = costs[inputKey];
                if (typeof inputRateRaw === 'number' && Number.isFinite(inputRateRaw)) rate = inputRateRaw;
                else continue;
            } else {
                continue;
            }
        }
        sawAnyRate = true;
        if (isOutputKey(key)) outputMicroCents += rawAmount * rate;
        else inputMicroCents += rawAmount * rate;
    }
    if (!sawAnyRate) return null;
    inputMicroCents = Math.max(0, Math.round(inputMicroCents));
    outputMicroCents = Math.max(0, Math.round(outputMicroCents));
    return { inputMicroCents, outputMicroCents, totalMicroCents: inputMicroCents + outputMicroCents };
}

/** #injectUsdCents. */
function injectUsdCents(usage, model) {
    if (typeof usage.usd_cents === 'number' && Number.isFinite(usage.usd_cents)) return;
    const cost = computeCost(usage, model);
    usage.usd_cents = cost ? cost.totalMicroCents / 1_000_000 : null;
}

// ------------------------------------------------------------ the driver

/** A MeteringService that records its calls. */
export class RecordingMetering {
    calls = [];
    utilRecordUsageObject(usage, actor, prefix, overrides) {
        this.calls.push({ usage: { ...usage }, actor, prefix, overrides: overrides && { ...overrides } });
    }
}

/** The driver reads a provider's models once (#buildModelMap at start). */
const modelMaps = new WeakMap();

/** The model the driver would resolve for `args.model` among the provider's. */
export function resolveModel(provider, modelId) {
    let models = modelMaps.get(provider);
    if (!models) modelMaps.set(provider, (models = provider.models()));
    const wanted = (modelId ?? provider.getDefaultModel()).toLowerCase();
    return models.find((m) => [m.id, ...(m.aliases ?? []), m.puterId].some((k) => k?.toLowerCase() === wanted));
}

/**
 * ChatCompletionDriver#complete for one provider: resolves the model, calls
 * provider.complete, and for a stream pumps init_chat_stream into an
 * AIChatStream over a PassThrough, ending with the error line on a throw and
 * charging an estimate when usage was never reported. Returns
 * `{ kind: 'message', result, model }` or `{ kind: 'stream', stream,
 * chatStream, model, pumped }` where `pumped` settles when the driver's
 * finally block has run. Throws what complete() throws.
 */
export async function driverComplete(provider, args, { newer = false, estimates = [] } = {}) {
    // A model the driver cannot resolve goes to the provider as asked, so
    // the provider's own refusal is what the caller sees.
    const found = resolveModel(provider, args.model);
    const model = found ? structuredClone(found) : undefined;
    const res = await provider.complete(model ? { ...args, model: model.id } : args);
    if (res.init_chat_stream) {
        const passthrough = new PassThrough();
        const chatStream = new AIChatStream({ stream: passthrough, newer });
        const originalEnd = chatStream.end.bind(chatStream);
        chatStream.endedWith = undefined;
        chatStream.end = (usage) => {
            const enriched = usage ? { ...usage } : usage;
            if (enriched && model) injectUsdCents(enriched, model);
            chatStream.endedWith = enriched;
            return originalEnd(enriched);
        };
        const pumped = (async () => {
            try {
                await res.init_chat_stream({ chatStream });
            } catch (e) {
                passthrough.write(`${JSON.stringify({ type: 'error', message: e.message })}\n`);
                passthrough.end();
            } finally {
                if (!chatStream.reportedUsage) {
                    estimates.push({ outputChars: chatStream.outputChars });
                }
                if (res.finally_fn) await res.finally_fn();
            }
        })();
        return { kind: 'stream', stream: passthrough, chatStream, model, pumped };
    }
    if (res.usage && model) injectUsdCents(res.usage, model);
    return { kind: 'message', result: { ...res, via_ai_chat_service: true }, model };
}

/** Reads an NDJSON stream to its end: the parsed lines. */
export async function readLines(stream) {
    let text = '';
    for await (const chunk of stream) text += chunk;
    return text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l));
}
