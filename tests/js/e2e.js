// @ts-check
// The real puter.js (npm @heyputer/puter.js, unmodified) against
// `host-demo serve`. Driven by tests/tests/puter_js.rs, which scripts the
// Moonshot simulator behind the host and checks what reached it.
//
// Protocol with the runner: lines on stdout that start with "@@e2e " are
// JSON events. First {"event":"plan"} names every check. Before each check
// the script says {"event":"begin"} with the check's simulator replies and
// upstream expectations, and waits for a line "go" on stdin (the runner
// scripts the simulator first); {"event":"signal"} asks the runner to act
// mid-check ("shut-down-upstream") and also waits for "go";
// {"event":"result"} reports the check.
//
// Type-checked with tsc against include/moonshot.d.ts (see tsconfig.json).

/** @import { AssistantMessage, DriverFailure, MoonshotMessage, MoonshotPuterChat, MoonshotPuterDrivers, MoonshotStreamPart, MoonshotTool, ModelDetails, PuterJsChatOptions } from '../../include/moonshot.js' */

import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';

const origin = process.env.PUTER_E2E_ORIGIN ?? '';
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(origin)) {
    console.error(`PUTER_E2E_ORIGIN must be the host's http://127.0.0.1:PORT, not '${origin}'`);
    process.exit(2);
}
const CHECK_TIMEOUT_MS = 30_000;

// Never the internet: every request must go to the host under test.
/** @type {string[]} */
const strayRequests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = /** @type {typeof fetch} */ (
    (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (!url.startsWith(`${origin}/`)) {
            strayRequests.push(url);
            return Promise.reject(new TypeError(`e2e: refused a request to ${url}`));
        }
        return realFetch(input, init);
    }
);

// Set before puter.js loads: its API origin, and no socket to Puter.
Object.assign(globalThis, { PUTER_API_ORIGIN: origin, puter_socket_enabled: false });
const { puter } = await import('@heyputer/puter.js');

// puter.js types its methods for every Puter provider; these are the same
// functions seen through the Moonshot declarations.
const chat = /** @type {MoonshotPuterChat} */ (/** @type {unknown} */ (puter.ai.chat));
const drivers = /** @type {MoonshotPuterDrivers} */ (/** @type {unknown} */ (puter.drivers));

// ------------------------------------------------------------ the runner

const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** @param {Record<string, unknown>} event */
function say(event) {
    process.stdout.write(`@@e2e ${JSON.stringify(event)}\n`);
}

async function awaitGo() {
    const line = await stdin.next();
    if (line.done || line.value.trim() !== 'go') {
        throw new Error(`the runner said ${line.done ? 'nothing' : JSON.stringify(line.value)}, not go`);
    }
}

/** Asks the runner to act mid-check, and waits until it has.
 * @param {string} check @param {string} what */
async function signal(check, what) {
    say({ event: 'signal', check, what });
    await awaitGo();
}

/** @template T @param {Promise<T>} promise @param {string} what @returns {Promise<T>} */
function within(promise, what) {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    });
    return /** @type {Promise<T>} */ (Promise.race([promise, timeout])).finally(() => clearTimeout(timer));
}

/** @param {unknown} error */
function describe(error) {
    if (error instanceof Error) return error.stack ?? error.message;
    try {
        return JSON.stringify(error);
    } catch {
        return String(error);
    }
}

// ------------------------------------------------------------ helpers

/** @param {AsyncIterable<MoonshotStreamPart>} stream */
async function collect(stream) {
    /** @type {MoonshotStreamPart[]} */
    const parts = [];
    for await (const part of stream) parts.push(part);
    return parts;
}

/** @param {MoonshotStreamPart[]} parts */
const textOf = (parts) => parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('');
/** @param {MoonshotStreamPart[]} parts */
const reasoningOf = (parts) => parts.flatMap((p) => (p.type === 'reasoning' ? [p.reasoning] : [])).join('');
/** @param {MoonshotStreamPart[]} parts */
const kinds = (parts) => parts.map((p) => p.type);
/** Runs of equal kinds, e.g. ['reasoning', 'text', 'usage'].
 * @param {MoonshotStreamPart[]} parts */
const phases = (parts) => kinds(parts).filter((k, i, all) => i === 0 || all[i - 1] !== k);

/** The refusal a rejected chat carries.
 * @param {Promise<unknown>} promise @returns {Promise<DriverFailure>} */
async function refusal(promise) {
    try {
        await promise;
    } catch (error) {
        const failure = /** @type {DriverFailure} */ (error);
        assert.equal(failure?.success, false, `not a driver refusal: ${describe(error)}`);
        return failure;
    }
    assert.fail('the call succeeded but should have been refused');
}

/** @type {MoonshotTool} */
const WEATHER_TOOL = {
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'Current weather in a city',
        parameters: {
            type: 'object',
            properties: { city: { type: 'string', description: 'City name' } },
            required: ['city'],
        },
    },
};
/** @type {MoonshotTool} */
const WEB_SEARCH_TOOL = { type: 'builtin_function', function: { name: '$web_search' } };
const SEARCH_ARGS = '{"search_result":{"search_id":"sr-1"},"usage":{"total_tokens":256}}';
/** A user message as Moonshot receives it. @param {string} text */
const user = (text) => ({ role: 'user', content: text });
const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

// ------------------------------------------------------------ the checks

// Each check declares, beside what puter.js does (`run`), the simulator's
// replies for its upstream requests, in order (none: the simulator's default
// answer), and what must have reached the simulator (`upstream`). The runner
// scripts the replies and verifies `upstream` against the bodies it recorded.

/** What a scripted completion or stream says; unset fields take the
 * simulator's defaults (model kimi-k2.6, finish stop, usage 10/5/0, 4 chars a chunk).
 * @typedef {{ content: string, reasoning?: string, model?: string, finish_reason?: string,
 *   usage?: [number, number, number], chunk_chars?: number,
 *   tool_calls?: Array<{ id: string, name: string, arguments: string }> }} ReplySpec */
/** One scripted reply: a chat completion, a stream, Moonshot's error envelope,
 * or raw SSE events after a verbatim head, then silence (no [DONE]).
 * @typedef {{ completion: ReplySpec } | { stream: ReplySpec }
 *   | { error: { status: number, type: string, message: string } }
 *   | { raw: { head: string, events: unknown[], hold_open_ms: number } }} Reply */
/** One thing that must hold of the upstream bodies (a JSON array, in order):
 * the value `at` a path ('1/messages/-2/role'; a negative index counts from
 * the end; no path: the array of bodies) equals, does not equal, is absent,
 * contains, parses (a JSON string) to, or has the length given. `what` is
 * the failure message.
 * @typedef {{ what: string, at?: string, equals?: unknown, not_equals?: unknown, absent?: boolean,
 *   contains?: unknown, parsed_equals?: unknown, length?: number }} Expect */
const RESOLVED =
    'models kimi-k2.6 (provider default), kimi-k2.6 (alias), kimi-k3 (model over an unknown provider), kimi-k2.7-code (puterId)';

/** @type {Array<{ name: string, replies: Reply[], upstream: Expect[], run: () => Promise<unknown> }>} */
const checks = [
    {
        name: 'plain-chat',
        replies: [{ completion: { content: 'Hello from Kimi.', usage: [12, 5, 0] } }],
        upstream: [
            { what: 'one request', length: 1 },
            { what: 'model kimi-k2.6', at: '0/model', equals: 'kimi-k2.6' },
            { what: 'the string prompt as one user message', at: '0/messages', equals: [user('Hello, Kimi!')] },
            { what: 'no stream', at: '0/stream', absent: true },
        ],
        async run() {
            const result = await chat('Hello, Kimi!', { model: 'kimi-k2.6' });
            assert.equal(result.message.content, 'Hello from Kimi.');
            assert.equal(String(result), 'Hello from Kimi.', "puter.js's toString gives the text");
            assert.equal(result.message.role, 'assistant');
            assert.equal(result.finish_reason, 'stop');
            assert.equal(result.via_ai_chat_service, true);
            assert.equal(result.model, 'kimi-k2.6');
            assert.deepEqual(
                [result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.cached_tokens],
                [12, 5, 0],
            );
            // 12 input tokens at 95 ucents + 5 output tokens at 400 ucents.
            assert.equal(result.usage.cost.total_ucents, 12 * 95 + 5 * 400);
            return { usage: result.usage };
        },
    },
    {
        name: 'provider-and-model-resolution',
        // The default Kimi answers.
        replies: [],
        upstream: [
            { what: RESOLVED, length: 4 },
            ...['kimi-k2.6', 'kimi-k2.6', 'kimi-k3', 'kimi-k2.7-code'].map((model, i) => ({ what: RESOLVED, at: `${i}/model`, equals: model })),
        ],
        async run() {
            /** @type {Array<[PuterJsChatOptions & { stream?: false }, string]>} */
            const cases = [
                [{ provider: 'Kimi' }, 'kimi-k2.6'], // a provider without a model: its default
                [{ provider: 'moonshot-ai', model: 'KIMI' }, 'kimi-k2.6'], // an alias, any case
                [{ provider: 'openai', model: 'kimi-k3' }, 'kimi-k3'], // the model decides, as in Puter
                [{ model: 'moonshot:moonshot/kimi-k2.7-code' }, 'kimi-k2.7-code'], // a puterId
            ];
            const served = [];
            for (const [options, model] of cases) {
                const result = await chat('Which model are you?', options);
                assert.equal(result.model, model, JSON.stringify(options));
                served.push(result.model);
            }
            return { served };
        },
    },
    {
        name: 'errors-before-upstream',
        replies: [],
        upstream: [{ what: 'nothing sent upstream', length: 0 }],
        async run() {
            const unknown = await refusal(chat('Hi', { model: 'gpt-9' }));
            assert.equal(unknown.error.status, 400);
            assert.equal(unknown.error.code, 'unknown_model');
            assert.match(unknown.error.message, /gpt-9/);
            const noModel = await refusal(chat('Hi', { provider: 'openai' }));
            assert.equal(noModel.error.status, 400);
            assert.match(noModel.error.message, /openai/);
            // Tools declared in a system message are kimi-k3's alone.
            const systemTools = /** @type {MoonshotMessage[]} */ (
                /** @type {unknown} */ ([
                    { role: 'system', tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }] },
                    { role: 'user', content: 'Hi' },
                ])
            );
            const tools = await refusal(chat(systemTools, { model: 'kimi-k2.6' }));
            assert.equal(tools.error.status, 400);
            assert.match(tools.error.message, /tools in a system message/);
            return { unknown, noModel, tools };
        },
    },
    {
        name: 'upstream-error-is-readable',
        replies: [{ error: { status: 400, type: 'content_filter', message: 'The request was rejected because it was considered high risk' } }],
        upstream: [{ what: 'one request (content_filter is not retried)', length: 1 }],
        async run() {
            const failure = await refusal(chat('Something risky', { model: 'kimi-k2.6', stream: true }));
            assert.deepEqual(
                { status: failure.error.status, code: failure.error.code, message: failure.error.message },
                {
                    status: 400,
                    code: 'content_filter',
                    message: 'The request was rejected because it was considered high risk',
                },
            );
            assert.equal(failure.error.http_status, 400);
            return failure;
        },
    },
    {
        name: 'streamed-chat',
        replies: [{ stream: { content: 'Once upon a time, a small kite flew.', chunk_chars: 6, usage: [20, 9, 4] } }],
        upstream: [
            { what: 'one request', length: 1 },
            { what: 'stream: true', at: '0/stream', equals: true },
            { what: 'stream_options.include_usage', at: '0/stream_options/include_usage', equals: true },
            { what: 'the prompt', at: '0/messages', equals: [user('Tell me a story')] },
        ],
        async run() {
            const stream = await chat('Tell me a story', { model: 'kimi-k2.6', stream: true });
            const parts = await collect(stream);
            assert.equal(textOf(parts), 'Once upon a time, a small kite flew.');
            assert.deepEqual(phases(parts), ['text', 'usage']);
            const texts = parts.flatMap((p) => (p.type === 'text' ? [p.text] : []));
            assert.deepEqual(texts, ['Once u', 'pon a ', 'time, ', 'a smal', 'l kite', ' flew.']);
            assert.equal(String(parts[0]), 'Once u', "puter.js's toString on a text part");
            const last = parts[parts.length - 1];
            assert.ok(last.type === 'usage');
            assert.deepEqual([last.usage.prompt_tokens, last.usage.cached_tokens, last.usage.completion_tokens], [20, 4, 9]);
            return { kinds: kinds(parts) };
        },
    },
    {
        name: 'tool-call-round-trip',
        replies: [
            {
                stream: {
                    content: '',
                    reasoning: 'The user wants the weather in Paris.',
                    tool_calls: [{ id: 'functions.get_weather:0', name: 'get_weather', arguments: '{"city":"Paris"}' }],
                    finish_reason: 'tool_calls',
                    usage: [30, 12, 0],
                    chunk_chars: 8,
                },
            },
            { completion: { content: 'It is 18°C and sunny in Paris.' } },
        ],
        upstream: [
            { what: 'two requests (the call, then the follow-up)', length: 2 },
            ...[
                { at: '0/tools', length: 1 },
                { at: '0/tools/0/type', equals: 'function' },
                { at: '0/tools/0/function/name', equals: 'get_weather' },
                {
                    at: '0/tools/0/function/parameters',
                    equals: { type: 'object', properties: { city: { type: 'string', description: 'City name' } }, required: ['city'] },
                },
            ].map((e) => ({ what: 'the get_weather tool as puter.js sent it', ...e })),
            { what: 'the first turn streams', at: '0/stream', equals: true },
            { what: 'three messages in the follow-up', at: '1/messages', length: 3 },
            { what: 'the question', at: '1/messages/0', equals: user('What is the weather in Paris?') },
            ...[
                { at: '1/messages/1/role', equals: 'assistant' },
                { at: '1/messages/1/tool_calls/0/id', equals: 'functions.get_weather:0' },
                { at: '1/messages/1/tool_calls/0/type', equals: 'function' },
                { at: '1/messages/1/tool_calls/0/function/name', equals: 'get_weather' },
                { at: '1/messages/1/tool_calls/0/function/arguments', parsed_equals: { city: 'Paris' } },
            ].map((e) => ({ what: "the assistant's tool call, from Puter's tool_use block", ...e })),
            {
                what: "the turn's reasoning sent back with its tool call",
                at: '1/messages/1/reasoning_content',
                equals: 'The user wants the weather in Paris.',
            },
            { what: 'no empty content beside tool_calls', at: '1/messages/1/content', not_equals: '' },
            {
                what: "the tool result, from Puter's tool_result block",
                at: '1/messages/2',
                equals: { role: 'tool', tool_call_id: 'functions.get_weather:0', content: '18°C and sunny' },
            },
            { what: 'the tools again', at: '1/tools/0/function/name', equals: 'get_weather' },
        ],
        async run() {
            const question = 'What is the weather in Paris?';
            const stream = await chat(question, { model: 'kimi-k2.6', stream: true, tools: [WEATHER_TOOL] });
            const parts = await collect(stream);
            assert.deepEqual(phases(parts), ['reasoning', 'tool_use', 'usage']);
            const call = parts.find((p) => p.type === 'tool_use');
            assert.ok(call?.type === 'tool_use');
            assert.deepEqual(call, {
                type: 'tool_use',
                id: 'functions.get_weather:0',
                name: 'get_weather',
                input: { city: 'Paris' },
            });
            // The follow-up turn in Puter's block forms, echoing the reasoning.
            /** @type {AssistantMessage} */
            const assistant = {
                role: 'assistant',
                content: [{ type: 'tool_use', id: call.id, name: call.name, input: call.input }],
                reasoning_content: reasoningOf(parts),
            };
            /** @type {MoonshotMessage[]} */
            const messages = [
                { role: 'user', content: question },
                assistant,
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '18°C and sunny' }] },
            ];
            const answer = await chat(messages, { model: 'kimi-k2.6', tools: [WEATHER_TOOL] });
            assert.equal(answer.message.content, 'It is 18°C and sunny in Paris.');
            assert.equal(answer.finish_reason, 'stop');
            return { parts: kinds(parts) };
        },
    },
    {
        name: 'thinking-through-reasoning-options',
        replies: [
            {
                stream: {
                    content: 'Because of Rayleigh scattering.',
                    reasoning: 'Sunlight scatters off air molecules; blue scatters most.',
                    chunk_chars: 12,
                },
            },
            { completion: { model: 'kimi-k3', content: 'It reflects the sky and absorbs red.', reasoning: 'Water absorbs red light.' } },
            { completion: { content: '4' } },
        ],
        upstream: [
            { what: 'three requests', length: 3 },
            ...[
                { at: '0/model', equals: 'kimi-k2.6' },
                { at: '0/thinking/type', equals: 'enabled' },
                { at: '0/reasoning_effort', absent: true },
            ].map((e) => ({ what: "kimi-k2.6 with reasoning_effort 'high': thinking {type: enabled}, no reasoning_effort", ...e })),
            ...[
                { at: '1/model', equals: 'kimi-k3' },
                { at: '1/reasoning_effort', equals: 'low' },
                { at: '1/thinking', absent: true },
            ].map((e) => ({ what: "kimi-k3 with reasoning {effort: 'low'}: reasoning_effort 'low', no thinking", ...e })),
            ...[
                { at: '2/thinking/type', equals: 'disabled' },
                { at: '2/reasoning_effort', absent: true },
            ].map((e) => ({ what: "kimi-k2.6 with reasoning_effort 'none': thinking {type: disabled}", ...e })),
        ],
        async run() {
            // kimi-k2.6 thinks through `thinking`; puter.js's reasoning_effort reaches it.
            const stream = await chat('Why is the sky blue?', {
                model: 'kimi-k2.6',
                reasoning_effort: 'high',
                stream: true,
            });
            const parts = await collect(stream);
            assert.equal(reasoningOf(parts), 'Sunlight scatters off air molecules; blue scatters most.');
            assert.equal(textOf(parts), 'Because of Rayleigh scattering.');
            assert.deepEqual(phases(parts), ['reasoning', 'text', 'usage']);
            // kimi-k3 takes reasoning_effort itself; the nested form works too.
            const k3 = await chat('Why is the sea blue?', { model: 'kimi-k3', reasoning: { effort: 'low' } });
            assert.equal(k3.message.reasoning, 'Water absorbs red light.');
            assert.equal(k3.message.content, 'It reflects the sky and absorbs red.');
            // And thinking can be turned off on kimi-k2.6.
            const off = await chat('Quick: 2+2?', { model: 'kimi-k2.6', reasoning_effort: 'none' });
            assert.equal(off.message.content, '4');
            return { kinds: kinds(parts) };
        },
    },
    {
        name: 'web-search-among-the-tools',
        replies: [
            {
                stream: {
                    content: '',
                    tool_calls: [{ id: 'search:0', name: '$web_search', arguments: SEARCH_ARGS }],
                    finish_reason: 'tool_calls',
                    usage: [40, 10, 0],
                    chunk_chars: 16,
                },
            },
            { stream: { content: 'A marathon crosses Paris today.', usage: [300, 9, 0], chunk_chars: 10 } },
        ],
        upstream: [
            { what: 'two requests: the search call, then the answer after it', length: 2 },
            { what: '$web_search declared as a builtin_function', at: '0/tools', contains: WEB_SEARCH_TOOL },
            { what: 'declared again', at: '1/tools', contains: WEB_SEARCH_TOOL },
            ...[
                { at: '1/messages/-2/role', equals: 'assistant' },
                { at: '1/messages/-2/tool_calls/0/id', equals: 'search:0' },
                { at: '1/messages/-2/tool_calls/0/function/name', equals: '$web_search' },
                { at: '1/messages/-2/tool_calls/0/function/arguments', equals: SEARCH_ARGS },
                {
                    at: '1/messages/-1',
                    equals: { role: 'tool', tool_call_id: 'search:0', name: '$web_search', content: SEARCH_ARGS },
                },
            ].map((e) => ({ what: 'the search call echoed back with its arguments as the tool message', ...e })),
        ],
        async run() {
            const stream = await chat('What is on in Paris today?', {
                model: 'kimi-k2.6',
                stream: true,
                tools: [WEB_SEARCH_TOOL],
            });
            const parts = await collect(stream);
            assert.ok(
                !parts.some((p) => p.type === 'tool_use'),
                `the search round trip stays inside the plugin: ${JSON.stringify(parts)}`,
            );
            assert.equal(textOf(parts), 'A marathon crosses Paris today.');
            const last = parts[parts.length - 1];
            assert.ok(last.type === 'usage', JSON.stringify(last));
            assert.equal(last.usage.web_search_calls, 1);
            return { kinds: kinds(parts) };
        },
    },
    {
        name: 'image-message',
        replies: [{ completion: { model: 'kimi-k3', content: 'A single red pixel.' } }],
        upstream: [
            { what: 'one request', length: 1 },
            { what: 'model kimi-k3', at: '0/model', equals: 'kimi-k3' },
            {
                what: 'the prompt and the image as Moonshot parts',
                at: '0/messages',
                equals: [{
                    role: 'user',
                    content: [
                        { type: 'text', text: 'What is in this picture?' },
                        { type: 'image_url', image_url: { url: PNG } },
                    ],
                }],
            },
        ],
        async run() {
            const result = await chat('What is in this picture?', PNG, { model: 'kimi-k3' });
            assert.equal(result.message.content, 'A single red pixel.');
            return { model: result.model };
        },
    },
    {
        name: 'chinese-text-intact',
        replies: [
            { stream: { content: '你好！我是 Kimi，由月之暗面训练的助手。🌙', chunk_chars: 1 } },
            { completion: { content: '好的：我是 Kimi。' } },
        ],
        upstream: [
            { what: 'two requests', length: 2 },
            { what: 'the Chinese prompt intact', at: '0/messages', equals: [user('用一句话介绍你自己。')] },
            { what: 'the second prompt intact', at: '1/messages', equals: [user('再说一遍。')] },
        ],
        async run() {
            const stream = await chat('用一句话介绍你自己。', { model: 'kimi-k2.6', stream: true });
            const parts = await collect(stream);
            const texts = parts.flatMap((p) => (p.type === 'text' ? [p.text] : []));
            assert.equal(texts.join(''), '你好！我是 Kimi，由月之暗面训练的助手。🌙');
            // One character per part, as the simulator sent them: none split or merged.
            assert.ok(texts.every((t) => [...t].length === 1), JSON.stringify(texts));
            const whole = await chat('再说一遍。', { model: 'kimi-k2.6' });
            assert.equal(whole.message.content, '好的：我是 Kimi。');
            return { parts: texts.length };
        },
    },
    {
        name: 'partial-mode',
        replies: [{ stream: { content: ' rises over quiet hills' } }],
        upstream: [
            { what: 'one request', length: 1 },
            {
                what: "the prefix as Moonshot's partial assistant message",
                at: '0/messages/1',
                equals: { role: 'assistant', content: 'Autumn moon', partial: true },
            },
        ],
        async run() {
            /** @type {MoonshotMessage[]} */
            const messages = [
                { role: 'user', content: 'Write a haiku about the moon.' },
                { role: 'assistant', content: 'Autumn moon', partial: true },
            ];
            const parts = await collect(await chat(messages, { model: 'kimi-k2.6', stream: true }));
            assert.equal(textOf(parts), 'Autumn moon rises over quiet hills');
            return { kinds: kinds(parts) };
        },
    },
    {
        name: 'options-puter-js-drops',
        replies: [{ completion: { content: 'Hello from Kimi.' } }],
        upstream: [
            { what: 'one request', length: 1 },
            ...['response_format', 'tool_choice', 'top_p', 'prompt_cache_key', 'tools'].map((field) => ({
                what: `no ${field}: puter.ai.chat 2.6.3 does not send it`,
                at: `0/${field}`,
                absent: true,
            })),
        ],
        async run() {
            // puter.ai.chat copies only some options onto the call: these never
            // reach the host (the runner checks the upstream body).
            const dropped = /** @type {PuterJsChatOptions & { stream?: false }} */ (
                /** @type {unknown} */ ({
                    model: 'kimi-k2.6',
                    response_format: { type: 'json_object' },
                    tool_choice: 'auto',
                    top_p: 0.5,
                    thinking: false,
                    web_search: true,
                    prompt_cache_key: 'lost',
                })
            );
            const result = await chat('Hi', dropped);
            assert.equal(result.message.content, 'Hello from Kimi.');
            return {};
        },
    },
    {
        name: 'driver-call-forwards-every-option',
        replies: [{ completion: { content: '{"colours":["red","green","blue"]}' } }],
        upstream: [
            { what: 'one request', length: 1 },
            { what: 'thinking {type: enabled, keep: all}', at: '0/thinking', equals: { type: 'enabled', keep: 'all' } },
            { what: 'response_format json_object', at: '0/response_format', equals: { type: 'json_object' } },
            { what: 'prompt_cache_key session-42', at: '0/prompt_cache_key', equals: 'session-42' },
            { what: 'web_search: true declares $web_search', at: '0/tools', contains: WEB_SEARCH_TOOL },
        ],
        async run() {
            const envelope = await drivers.call('puter-chat-completion', 'ai-chat', 'complete', {
                messages: [{ role: 'user', content: 'List three colours as JSON.' }],
                model: 'kimi-k2.6',
                thinking: { type: 'enabled', keep: 'all' },
                response_format: { type: 'json_object' },
                prompt_cache_key: 'session-42',
                web_search: true,
            });
            assert.ok(envelope.success, JSON.stringify(envelope));
            assert.deepEqual(envelope.service, { name: 'ai-chat' });
            assert.equal(envelope.result.message.content, '{"colours":["red","green","blue"]}');
            assert.equal(envelope.result.via_ai_chat_service, true);
            return {};
        },
    },
    {
        name: 'models-listing',
        replies: [],
        upstream: [{ what: 'nothing sent upstream', length: 0 }],
        async run() {
            const models = /** @type {ModelDetails['models']} */ (/** @type {unknown} */ (await puter.ai.listModels()));
            const ids = models.map((m) => m.id).sort();
            assert.ok(ids.includes('kimi-k2.6'), JSON.stringify(ids));
            assert.ok(models.every((m) => m.provider === 'moonshot' && m.puterId.startsWith('moonshot:')));
            assert.equal((await puter.ai.listModels('moonshot')).length, models.length);
            assert.equal((await puter.ai.listModels('openai')).length, 0);
            assert.deepEqual(await puter.ai.listModelProviders(), ['moonshot']);
            const viaDriver = await drivers.call('puter-chat-completion', 'ai-chat', 'models', {});
            assert.ok(viaDriver.success, JSON.stringify(viaDriver));
            assert.deepEqual(viaDriver.result.map((m) => m.id).sort(), ids);
            const list = await drivers.call('puter-chat-completion', 'ai-chat', 'list', {});
            assert.ok(list.success, JSON.stringify(list));
            assert.ok(list.result.includes('moonshot:moonshot/kimi-k2.6'), JSON.stringify(list.result));
            return { ids };
        },
    },
    {
        // Last: the runner shuts the simulator down to cut the stream.
        name: 'stream-is-incremental-and-fails-in-band',
        // Two content events, then silence with the connection open until
        // the runner shuts the simulator down.
        replies: [
            {
                raw: {
                    head: 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nx-request-id: sim-raw-1\r\nConnection: close\r\n\r\n',
                    events: [{ role: 'assistant', content: '' }, { content: 'First words, ' }, { content: 'then more' }].map((delta) => ({
                        id: 'chatcmpl-raw',
                        object: 'chat.completion.chunk',
                        created: 0,
                        model: 'kimi-k2.6',
                        choices: [{ index: 0, delta, finish_reason: null }],
                    })),
                    hold_open_ms: 120_000,
                },
            },
        ],
        upstream: [{ what: 'one request (parts were delivered: no retry)', length: 1 }],
        async run() {
            const stream = await chat('Stream slowly', { model: 'kimi-k2.6', stream: true });
            /** @type {MoonshotStreamPart[]} */
            const parts = [];
            let signalled = false;
            for await (const part of stream) {
                parts.push(part);
                if (!signalled && textOf(parts) === 'First words, then more') {
                    // Moonshot is still sending: these parts came before its end.
                    signalled = true;
                    await signal('stream-is-incremental-and-fails-in-band', 'shut-down-upstream');
                }
            }
            assert.ok(signalled, `the first parts never arrived: ${JSON.stringify(parts)}`);
            const last = parts[parts.length - 1];
            assert.ok(last.type === 'error', `the stream must end with an error line: ${JSON.stringify(last)}`);
            assert.ok(last.message.length > 0);
            assert.equal(textOf(parts), 'First words, then more');
            return { error: last };
        },
    },
];

// ------------------------------------------------------------ main

let failed = 0;
say({ event: 'plan', checks: checks.map((c) => c.name) });
for (const check of checks) {
    say({ event: 'begin', check: check.name, replies: check.replies, upstream: check.upstream });
    await awaitGo();
    try {
        const detail = await within(check.run(), check.name);
        say({ event: 'result', check: check.name, ok: true, detail });
    } catch (error) {
        failed += 1;
        say({ event: 'result', check: check.name, ok: false, error: describe(error) });
    }
}
say({ event: 'done', failed, stray_requests: strayRequests });
// puter.js keeps timers alive; the verdict is out.
process.exit(0);
