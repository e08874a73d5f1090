// A client that leaves mid-stream cancels the plugin request, and the
// plugin closes its upstream connection within a second. The upstream here
// is a bare socket server so the test sees the connection close itself.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';

import { MoonshotProvider } from '../index.js';
import { driverComplete, RecordingMetering } from './harness/puter-driver.js';
import { LIBRARY, TEST_KEY, TODAY } from './harness/sim.js';

const event = (delta) =>
    `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'kimi-k2.6', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;

/** An upstream that answers each chat request with a stream that never
 * ends: a first part, then (when `trickle`) another every 20 ms. Resolves
 * `closed` with the time the client closed each connection. */
async function upstream({ trickle }) {
    const connections = [];
    const server = createServer((socket) => {
        const conn = { closedAt: null };
        conn.closed = new Promise((resolve) => socket.once('close', () => resolve((conn.closedAt = performance.now()))));
        connections.push(conn);
        let timer = null;
        socket.once('data', () => {
            socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n');
            socket.write(event({ role: 'assistant', content: '' }) + event({ content: 'Hello' }));
            if (trickle) timer = setInterval(() => socket.write(event({ content: ' again' })), 20);
        });
        socket.on('error', () => {});
        socket.once('close', () => clearInterval(timer));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { server, connections, baseUrl: `http://127.0.0.1:${server.address().port}/v1` };
}

function provider(baseUrl) {
    return new MoonshotProvider({ apiKey: TEST_KEY, base_url: baseUrl, today: TODAY, retries: { max: 0 } }, new RecordingMetering(), {
        library: LIBRARY,
    });
}

test('the response stream closing cancels the request and the upstream connection closes within a second', { timeout: 10_000 }, async () => {
    const up = await upstream({ trickle: false });
    const p = provider(up.baseUrl);
    try {
        const res = await driverComplete(p, { messages: 'Hi', stream: true });
        const first = await new Promise((resolve) => res.stream.once('data', resolve));
        assert.match(String(first), /Hello/);
        const left = performance.now();
        res.stream.destroy(); // the client went away; the route destroys the pipe
        const closedAt = await up.connections[0].closed;
        assert.ok(closedAt - left < 1000, `the upstream connection closed ${closedAt - left} ms after the client left`);
        await res.pumped;
    } finally {
        await p.close();
        up.server.close();
    }
});

test('a write that throws (newer Puter, client gone) cancels the request at once', { timeout: 10_000 }, async () => {
    const up = await upstream({ trickle: true });
    const p = provider(up.baseUrl);
    try {
        const res = await driverComplete(p, { messages: 'Hi', stream: true }, { newer: true });
        await new Promise((resolve) => res.stream.once('data', resolve));
        const left = performance.now();
        res.chatStream.writeChunk = () => {
            throw new Error('the client went away');
        };
        const closedAt = await up.connections[0].closed;
        assert.ok(closedAt - left < 1000, `the upstream connection closed ${closedAt - left} ms after the write threw`);
        await res.pumped;
    } finally {
        await p.close();
        up.server.close();
    }
});
