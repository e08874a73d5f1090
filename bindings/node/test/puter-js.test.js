// The real puter.js (tests/js's pinned @heyputer/puter.js, unmodified)
// end to end: puter.js -> a Node server speaking Puter's driver protocol
// (harness/driver-server.js) -> MoonshotProvider -> koffi -> the plugin ->
// the simulator.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { LIBRARY, REPO, Sim } from './harness/sim.js';

const here = dirname(fileURLToPath(import.meta.url));
const PUTER_JS = join(REPO, 'tests', 'js', 'node_modules', '@heyputer', 'puter.js', 'src', 'index.js');

let sim;
let server;
let serverLines;
let puter;
let origin;

before(async () => {
    sim = await Sim.start();
    server = spawn(process.execPath, [join(here, 'harness', 'driver-server.js')], {
        env: {
            ...process.env,
            MOONSHOT_PROVIDER_LIB: LIBRARY,
            MOONSHOT_PROVIDER_CONFIG: JSON.stringify(sim.config()),
        },
        stdio: ['pipe', 'pipe', 'inherit'],
    });
    serverLines = createInterface({ input: server.stdout })[Symbol.asyncIterator]();
    origin = (await serverLines.next()).value;
    assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    // Every request puter.js makes must go to our server, never the internet.
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (!url.startsWith(`${origin}/`)) return Promise.reject(new TypeError(`test: refused a request to ${url}`));
        return realFetch(input, init);
    };
    Object.assign(globalThis, { PUTER_API_ORIGIN: origin, puter_socket_enabled: false });
    ({ puter } = await import(pathToFileURL(PUTER_JS).href));
});

after(async () => {
    server.stdin.end();
    const report = JSON.parse((await serverLines.next()).value);
    await new Promise((resolve) => server.once('close', resolve));
    await sim.stop();
    // Metered once per completion that reached Moonshot and answered (the
    // cut stream with its partial usage); never for refusals.
    const prefixes = report.metering.map((c) => c.prefix);
    assert.deepEqual(prefixes, Array(4).fill('moonshot:kimi-k2.6'));
});

test('a chat, the result and usage as Puter gives them', async () => {
    await sim.push({ completion: { content: 'Hello from Kimi.', usage: { prompt_tokens: 12, completion_tokens: 5, cached_tokens: 0 } } });
    const reply = await puter.ai.chat('Hello, Kimi!', { model: 'kimi-k2.6' });
    assert.equal(reply.message.content, 'Hello from Kimi.');
    assert.equal(String(reply), 'Hello from Kimi.');
    assert.equal(reply.finish_reason, 'stop');
    assert.equal(reply.via_ai_chat_service, true);
    assert.deepEqual(reply.usage, {
        prompt_tokens: 12,
        cached_tokens: 0,
        completion_tokens: 5,
        usd_cents: (12 * 95 + 5 * 400) / 1_000_000,
    });
});

test('a stream arrives part by part, reasoning then text, with its usage line', async () => {
    await sim.push({
        // Paced like a model: deltas that arrive together are one part.
        stream: { reasoning: 'Short and kind.', content: 'Once upon a time, a small kite flew.', chunk_chars: 6, delay_ms: 20, usage: { prompt_tokens: 20, completion_tokens: 9, cached_tokens: 4 } },
    });
    const parts = [];
    for await (const part of await puter.ai.chat('Tell me a story', { model: 'kimi', stream: true })) parts.push(part);
    const kinds = parts.map((p) => p.type).filter((k, i, all) => i === 0 || all[i - 1] !== k);
    assert.deepEqual(kinds, ['reasoning', 'text', 'usage']);
    const billed = 16 * 95 + 4 * 16 + 9 * 400;
    assert.deepEqual(parts.at(-1).usage, { prompt_tokens: 16, cached_tokens: 4, completion_tokens: 9, usd_cents: billed / 1_000_000 });
    assert.equal(parts.filter((p) => p.type === 'text').map((p) => p.text).join(''), 'Once upon a time, a small kite flew.');
    assert.ok(parts.filter((p) => p.type === 'text').length > 1, 'streamed in parts');
});

test('tool calls come back as Puter tool_use parts', async () => {
    await sim.push({
        stream: { tool_calls: [{ id: 'functions.get_weather:0', name: 'get_weather', arguments: '{"city":"Paris"}' }], content: '', finish_reason: 'tool_calls' },
    });
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const parts = [];
    for await (const part of await puter.ai.chat('Weather in Paris?', { model: 'kimi-k2.6', stream: true, tools })) parts.push(part);
    const call = parts.find((p) => p.type === 'tool_use');
    assert.deepEqual([call.id, call.name, call.input], ['functions.get_weather:0', 'get_weather', { city: 'Paris' }]);
});

test("the caller's faults and upstream refusals reject puter.ai.chat with a status", async () => {
    await assert.rejects(puter.ai.chat('Hi', { model: 'gpt-9' }), (e) => {
        assert.equal(e.success, false);
        assert.equal(e.error.status, 400);
        assert.equal(e.error.code, 'unknown_model');
        return true;
    });
    await sim.push({ error: { status: 500, type: 'server_error', message: 'upstream broke' } });
    await sim.push({ error: { status: 500, type: 'server_error', message: 'upstream broke' } });
    await assert.rejects(puter.ai.chat('Hi', { model: 'kimi-k2.6', stream: true }), (e) => {
        assert.equal(e.error.status, 500);
        assert.match(e.error.message, /upstream broke/);
        return true;
    });
});

test('a stream cut mid-way ends in-band with the error line after what was delivered', async () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n';
    const event = (delta) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'kimi-k2.6', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    await sim.push({ raw: { head, body: [event({ role: 'assistant', content: '' }), event({ content: 'First words' })], hold_open_ms: 0 } });
    const parts = [];
    for await (const part of await puter.ai.chat('Hi', { model: 'kimi-k2.6', stream: true })) parts.push(part);
    assert.equal(parts.filter((p) => p.type === 'text').map((p) => p.text).join(''), 'First words');
    assert.equal(parts.at(-1).type, 'error');
});

test('models and list through puter.drivers.call', async () => {
    const models = await puter.drivers.call('puter-chat-completion', 'ai-chat', 'models', {});
    const ids = (models.result ?? models).map((m) => m.id);
    assert.ok(ids.includes('kimi-k2.6'));
    const list = await puter.drivers.call('puter-chat-completion', 'ai-chat', 'list', {});
    assert.ok((list.result ?? list).includes('kimi'));
});
