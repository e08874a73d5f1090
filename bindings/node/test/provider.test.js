// MoonshotProvider driven the way Puter's chat driver drives it, against
// the offline simulator: results, streams, metering, errors, cuts, close().

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { MoonshotProvider } from '../index.js';
import { computeCost, driverComplete, readLines, RecordingMetering } from './harness/puter-driver.js';
import { LIBRARY, Sim } from './harness/sim.js';

const ACTOR = { user: { username: 'ada' } };

let sim;
before(async () => {
    sim = await Sim.start();
});
after(async () => {
    await sim.stop();
});

function provider(extra = {}, options = {}) {
    const metering = new RecordingMetering();
    const p = new MoonshotProvider(sim.config(extra), metering, {
        library: LIBRARY,
        getActor: () => ACTOR,
        ...options,
    });
    return { p, metering };
}

/** What the driver charges for a usage object, and what the plugin billed. */
function driverCents(usage, model) {
    return computeCost(usage, model).totalMicroCents;
}
const overrideSum = (overrides) => Object.values(overrides).reduce((a, b) => a + b, 0);

const SSE_HEAD =
    'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n';
const sseEvent = (delta) =>
    `data: ${JSON.stringify({
        id: 'chatcmpl-raw',
        object: 'chat.completion.chunk',
        created: 0,
        model: 'kimi-k2.6',
        choices: [{ index: 0, delta, finish_reason: null }],
    })}\n\n`;

describe('catalog', () => {
    test('models, list and the default model come from the plugin', async () => {
        const { p } = provider();
        try {
            assert.equal(p.getDefaultModel(), 'kimi-k2.6');
            assert.ok(p.list().includes('kimi'));
            const models = p.models();
            const k26 = models.find((m) => m.id === 'kimi-k2.6');
            assert.deepEqual(
                [k26.costs.prompt_tokens, k26.costs.cached_tokens, k26.costs.completion_tokens],
                [95, 16, 400],
            );
            assert.equal(k26.costs.web_search_calls, 500_000, 'web search is priced per call like a token');
            models[0].id = 'changed by the driver';
            assert.notEqual(p.models()[0].id, 'changed by the driver', 'fresh objects each call');
            assert.deepEqual(await p.checkModeration('anything'), { flagged: false, categories: [] });
            assert.equal(p.plugin.name, 'moonshot');
        } finally {
            await p.close();
        }
    });

    test('a config without a key is refused', () => {
        assert.throws(() => new MoonshotProvider({ base_url: sim.baseUrl }, undefined, { library: LIBRARY }), {
            status: 400,
            code: 'invalid_config',
        });
    });
});

describe('complete', () => {
    test('non-stream: the result, the usage Puter prices and one metering call', async () => {
        const { p, metering } = provider();
        try {
            await sim.push({ completion: { content: 'Hello from Kimi.', usage: { prompt_tokens: 12, completion_tokens: 5, cached_tokens: 0 } } });
            const { kind, result, model } = await driverComplete(p, { messages: [{ role: 'user', content: 'Hi' }], model: 'kimi' });
            assert.equal(kind, 'message');
            assert.equal(result.message.content, 'Hello from Kimi.');
            assert.equal(result.finish_reason, 'stop');
            const billed = 12 * 95 + 5 * 400;
            assert.deepEqual(result.usage, {
                prompt_tokens: 12,
                cached_tokens: 0,
                completion_tokens: 5,
                usd_cents: billed / 1_000_000,
            });
            assert.equal(driverCents(result.usage, model), billed);
            assert.equal(metering.calls.length, 1);
            const [call] = metering.calls;
            assert.equal(call.prefix, 'moonshot:kimi-k2.6');
            assert.equal(call.actor, ACTOR);
            assert.deepEqual(call.usage, { prompt_tokens: 12, cached_tokens: 0, completion_tokens: 5 });
            assert.deepEqual(call.overrides, { prompt_tokens: 12 * 95, cached_tokens: 0, completion_tokens: 5 * 400 });
        } finally {
            await p.close();
        }
    });

    test('stream: reasoning, text, tool_use and the usage line, as AIChatStream writes them', async () => {
        const { p, metering } = provider();
        const estimates = [];
        try {
            await sim.push({
                stream: {
                    reasoning: 'The user wants weather.',
                    content: 'Let me check.',
                    tool_calls: [{ id: 'functions.get_weather:0', name: 'get_weather', arguments: '{"city":"Paris"}' }],
                    finish_reason: 'tool_calls',
                    usage: { prompt_tokens: 20, completion_tokens: 9, cached_tokens: 4 },
                },
            });
            const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
            const res = await driverComplete(p, { messages: 'Weather in Paris?', stream: true, tools }, { estimates });
            assert.equal(res.kind, 'stream');
            const lines = await readLines(res.stream);
            await res.pumped;
            const kinds = lines.map((l) => l.type).filter((k, i, all) => i === 0 || all[i - 1] !== k);
            assert.deepEqual(kinds, ['reasoning', 'text', 'tool_use', 'usage']);
            assert.equal(lines.filter((l) => l.type === 'reasoning').map((l) => l.reasoning).join(''), 'The user wants weather.');
            assert.equal(lines.filter((l) => l.type === 'text').map((l) => l.text).join(''), 'Let me check.');
            assert.deepEqual(lines.find((l) => l.type === 'tool_use'), {
                type: 'tool_use',
                id: 'functions.get_weather:0',
                name: 'get_weather',
                input: { city: 'Paris' },
                text: '',
            });
            const billed = 16 * 95 + 4 * 16 + 9 * 400;
            const usage = lines.at(-1).usage;
            assert.deepEqual(usage, { prompt_tokens: 16, cached_tokens: 4, completion_tokens: 9, usd_cents: billed / 1_000_000 });
            assert.equal(driverCents(usage, res.model), billed, "the driver's cost is the plugin's");
            assert.equal(metering.calls.length, 1);
            assert.equal(overrideSum(metering.calls[0].overrides), billed);
            assert.ok(res.chatStream.reportedUsage, 'usage reported: the driver charges no estimate');
            assert.deepEqual(estimates, []);
        } finally {
            await p.close();
        }
    });

    test('web search: the calls are metered and priced so the driver agrees', async () => {
        const { p, metering } = provider();
        try {
            await sim.push({
                stream: {
                    content: '',
                    tool_calls: [{ id: 'search:0', name: '$web_search', arguments: '{"search_result":{"search_id":"sr-1"},"usage":{"total_tokens":256}}' }],
                    finish_reason: 'tool_calls',
                    usage: { prompt_tokens: 40, completion_tokens: 10, cached_tokens: 0 },
                },
            });
            await sim.push({ stream: { content: 'A marathon crosses Paris.', usage: { prompt_tokens: 300, completion_tokens: 9, cached_tokens: 0 } } });
            const tools = [{ type: 'builtin_function', function: { name: '$web_search' } }];
            const res = await driverComplete(p, { messages: 'News?', stream: true, tools });
            const lines = await readLines(res.stream);
            await res.pumped;
            const usage = lines.at(-1).usage;
            assert.equal(usage.web_search_calls, 1);
            const billed = 340 * 95 + 19 * 400 + 500_000;
            assert.equal(driverCents(usage, res.model), billed);
            assert.equal(metering.calls.length, 1);
            assert.equal(metering.calls[0].overrides.web_search_calls, 500_000);
            assert.equal(overrideSum(metering.calls[0].overrides), billed);
        } finally {
            await p.close();
        }
    });

    test("meteringPrefix keeps Puter's built-in 'moonshotai' keys", async () => {
        const { p, metering } = provider({}, { meteringPrefix: 'moonshotai' });
        try {
            await driverComplete(p, { messages: 'Hi' });
            assert.equal(metering.calls[0].prefix, 'moonshotai:kimi-k2.6');
        } finally {
            await p.close();
        }
    });

    test('newer Puter: usage costs and the stop reason reach the stream', async () => {
        const { p, metering } = provider();
        try {
            await sim.push({ stream: { content: 'Hi there.', usage: { prompt_tokens: 10, completion_tokens: 3, cached_tokens: 0 } } });
            const res = await driverComplete(p, { messages: 'Hi', stream: true }, { newer: true });
            await readLines(res.stream);
            await res.pumped;
            assert.deepEqual(res.chatStream.usageCosts, metering.calls[0].overrides);
            assert.equal(res.chatStream.stop, 'stop');
        } finally {
            await p.close();
        }
    });
});

describe('coalesced parts', () => {
    const words = ['One', ' write', ' of', ' many', ' "small"', ' deltas', '.'];
    const oneWrite = () => ({
        raw: {
            head: SSE_HEAD,
            body: [
                words.map((content) => sseEvent({ content })).join('') +
                    `data: ${JSON.stringify({
                        id: 'chatcmpl-raw',
                        object: 'chat.completion.chunk',
                        model: 'kimi-k2.6',
                        choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
                        usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
                    })}\n\ndata: [DONE]\n\n`,
            ],
            hold_open_ms: 0,
        },
    });
    const textLines = async (p) => {
        await sim.push(oneWrite());
        const res = await driverComplete(p, { messages: 'Hi', stream: true });
        const lines = await readLines(res.stream);
        await res.pumped;
        assert.equal(lines.at(-1).type, 'usage', JSON.stringify(lines));
        return lines.filter((l) => l.type === 'text').map((l) => l.text);
    };

    test('streamed requests ask for coalesce_parts: the text of one read is one part', async () => {
        const { p } = provider();
        try {
            const texts = await textLines(p);
            assert.equal(texts.join(''), words.join(''));
            assert.ok(texts.length < words.length / 2, JSON.stringify(texts));
        } finally {
            await p.close();
        }
    });

    test('coalesceParts: false keeps one part per delta', async () => {
        const { p } = provider({}, { coalesceParts: false });
        try {
            assert.deepEqual(await textLines(p), words);
        } finally {
            await p.close();
        }
    });
});

describe('errors', () => {
    test('a metering service that throws neither loses the answer nor stalls other requests', async () => {
        const p = new MoonshotProvider(sim.config(), { utilRecordUsageObject() { throw new Error('metering down'); } }, { library: LIBRARY });
        const warnings = [];
        const onWarning = (w) => warnings.push(w.message);
        process.on('warning', onWarning);
        try {
            const res = await driverComplete(p, { messages: 'Hi', stream: true });
            const lines = await readLines(res.stream);
            await res.pumped;
            assert.equal(lines.at(-1).type, 'usage');
            const { result } = await driverComplete(p, { messages: 'Hi' });
            assert.equal(result.message.role, 'assistant');
            await new Promise((resolve) => setImmediate(resolve));
            assert.ok(warnings.some((m) => /metering failed: metering down/.test(m)));
        } finally {
            process.off('warning', onWarning);
            await p.close();
        }
    });

    test("the caller's faults are invalid_request_error with status 400", async () => {
        const { p, metering } = provider();
        try {
            await assert.rejects(p.complete({ messages: 'Hi', model: 'gpt-9' }), {
                status: 400,
                type: 'invalid_request_error',
                code: 'unknown_model',
            });
            const badTool = [{ type: 'function', function: { name: '9bad name', parameters: { type: 'object' } } }];
            await assert.rejects(p.complete({ messages: 'Hi', stream: true, tools: badTool }), {
                status: 400,
                type: 'invalid_request_error',
            });
            await sim.push({ error: { status: 400, type: 'content_filter', message: 'considered high risk' } });
            await assert.rejects(p.complete({ messages: 'Hi', stream: true }), {
                status: 400,
                type: 'invalid_request_error',
                message: /high risk/,
            });
            assert.equal(metering.calls.length, 0);
        } finally {
            await p.close();
        }
    });

    for (const [status, type, times] of [
        [401, 'invalid_authentication_error', 1],
        [429, 'rate_limit_reached_error', 2],
        [500, 'server_error', 2],
        [503, 'engine_overloaded_error', 2],
    ]) {
        for (const stream of [false, true]) {
            test(`an upstream ${status} before the first part is thrown from complete() (stream: ${stream})`, async () => {
                const { p } = provider();
                try {
                    for (let i = 0; i < times; i += 1) await sim.push({ error: { status, type, message: `upstream says ${status}` } });
                    await assert.rejects(p.complete({ messages: 'Hi', stream }), (error) => {
                        assert.equal(error.status, status);
                        assert.match(error.message, new RegExp(`upstream says ${status}`));
                        return true;
                    });
                } finally {
                    await p.close();
                }
            });
        }
    }

    test('a stream cut mid-way ends with the error line after what was delivered, partial usage metered', async () => {
        const { p, metering } = provider();
        const estimates = [];
        try {
            await sim.push({
                raw: { head: SSE_HEAD, body: [sseEvent({ role: 'assistant', content: '' }), sseEvent({ content: 'First words, ' }), sseEvent({ content: 'then' })], hold_open_ms: 0 },
            });
            const res = await driverComplete(p, { messages: 'Hi', stream: true }, { estimates });
            const lines = await readLines(res.stream);
            await res.pumped;
            assert.equal(lines.filter((l) => l.type === 'text').map((l) => l.text).join(''), 'First words, then');
            assert.equal(lines.at(-1).type, 'error', JSON.stringify(lines));
            assert.ok(!lines.some((l) => l.type === 'usage'));
            assert.equal(metering.calls.length, 1, 'the partial usage is metered once');
            assert.ok(metering.calls[0].usage.completion_tokens > 0);
            assert.deepEqual(estimates, [], 'reported, so the driver adds no estimate');
        } finally {
            await p.close();
        }
    });

    test('close() cuts a stream in flight: error line, partial usage, and it does not hang', async () => {
        const { p, metering } = provider();
        await sim.push({
            raw: { head: SSE_HEAD, body: [sseEvent({ role: 'assistant', content: '' }), sseEvent({ content: 'Once upon' })], hold_open_ms: 60_000 },
        });
        const res = await driverComplete(p, { messages: 'Hi', stream: true });
        const first = await new Promise((resolve) => res.stream.once('data', resolve));
        assert.match(String(first), /Once upon/);
        const rest = readLines(res.stream);
        const closed = p.close();
        const lines = await rest;
        await closed;
        await res.pumped;
        assert.equal(lines.at(-1).type, 'error');
        assert.match(lines.at(-1).message, /cancel/);
        assert.equal(metering.calls.length, 1);
        await assert.rejects(p.complete({ messages: 'Hi' }), /closed/);
    });
});
