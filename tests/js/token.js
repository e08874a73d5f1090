// The real puter.js against `host-demo serve --auth-token`: refused before
// puter.setAuthToken, answered after it (puter.js sends its token as
// `auth_token` in every driver call). Run by tests/tests/puter_js.rs, which
// reads the one JSON line this prints.

const origin = process.env.PUTER_E2E_ORIGIN ?? '';
const token = process.env.PUTER_E2E_TOKEN ?? '';
// Never the internet: every request must go to the host under test.
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (!url.startsWith(`${origin}/`)) return Promise.reject(new TypeError(`refused ${url}`));
    return realFetch(input, init);
};
Object.assign(globalThis, { PUTER_API_ORIGIN: origin, puter_socket_enabled: false });
const { puter } = await import('@heyputer/puter.js');

const outcome = {};
try {
    await puter.ai.chat('Hello', { model: 'kimi-k2.6' });
    outcome.without = 'answered';
} catch (error) {
    outcome.without = error;
}
puter.setAuthToken(token);
try {
    const reply = await puter.ai.chat('Hello', { model: 'kimi-k2.6' });
    outcome.with = reply.message.content;
    let text = '';
    for await (const part of await puter.ai.chat('Hello', { model: 'kimi-k2.6', stream: true })) {
        if (part.type === 'text') text += part.text;
    }
    outcome.streamed = text;
} catch (error) {
    outcome.with = { failed: error };
}
process.stdout.write(`${JSON.stringify(outcome)}\n`);
process.exit(0);
