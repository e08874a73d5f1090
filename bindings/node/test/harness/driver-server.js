// A small Node server hosting MoonshotProvider behind Puter's driver
// protocol, the `/drivers/call` contract `host-demo serve` speaks:
// `POST /drivers/call` (interface `puter-chat-completion`, methods
// `complete`, `models`, `list`) and `GET /puterai/chat/models/details`.
// Completions go through the same steps as Puter's chat driver
// (puter-driver.js): non-stream results in `{success, result}`, streams as
// NDJSON lines piped from the driver's PassThrough.
//
// Run directly, it serves on 127.0.0.1 (PORT, default 0: the OS picks) with
// the provider block in MOONSHOT_PROVIDER_CONFIG (JSON), prints its URL as
// its first stdout line, and stops when stdin closes.

import { createServer } from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

import { MoonshotProvider } from '../../index.js';
import { driverComplete, RecordingMetering } from './puter-driver.js';

const INTERFACE = 'puter-chat-completion';

function send(res, status, body) {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
}

/** A refusal as Puter's envelope; never 401/403, which puter.js takes for
 * its own session (an upstream refusing our key is our failure: 502). */
function refuse(res, error) {
    let status = Number.isInteger(error.status) ? error.status : 500;
    if (status === 401 || status === 403) status = 502;
    send(res, status, {
        success: false,
        error: { code: error.code ?? 'error', message: error.message, status, type: error.type },
    });
}

async function readJson(req) {
    let text = '';
    for await (const chunk of req) text += chunk;
    return JSON.parse(text);
}

async function call(provider, req, res) {
    let body;
    try {
        body = await readJson(req);
    } catch {
        return refuse(res, { status: 400, code: 'bad_request', message: 'the body is not a JSON driver call' });
    }
    if (body.interface !== INTERFACE) {
        return refuse(res, { status: 404, code: 'no_implementation_available', message: `only ${INTERFACE}` });
    }
    const args = { ...(body.args ?? {}) };
    delete args.provider; // one provider here
    switch (body.method) {
        case 'models':
            return send(res, 200, { success: true, service: { name: 'ai-chat' }, result: provider.models() });
        case 'list':
            return send(res, 200, { success: true, service: { name: 'ai-chat' }, result: provider.list() });
        case 'complete':
            break;
        default:
            return refuse(res, { status: 400, code: 'bad_request', message: `no method ${body.method}` });
    }
    let answer;
    try {
        answer = await driverComplete(provider, args);
    } catch (error) {
        return refuse(res, error);
    }
    if (answer.kind === 'message') {
        return send(res, 200, { success: true, service: { name: 'ai-chat' }, result: answer.result });
    }
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache' });
    // The client leaving closes the response: the route destroys the pipe,
    // which cancels the plugin request.
    res.once('close', () => answer.stream.destroy());
    answer.stream.pipe(res);
}

/** Serves `provider` on 127.0.0.1:`port`; resolves the listening server. */
export async function serve(provider, port = 0) {
    const server = createServer((req, res) => {
        const route = (req.url ?? '').split('?')[0];
        if (req.method === 'POST' && route === '/drivers/call') {
            call(provider, req, res).catch((error) => refuse(res, error));
        } else if (req.method === 'GET' && route === '/puterai/chat/models/details') {
            send(res, 200, { models: provider.models() });
        } else {
            refuse(res, { status: 404, code: 'not_found', message: `no route for ${req.method} ${route}` });
        }
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
    const metering = new RecordingMetering();
    const provider = new MoonshotProvider(JSON.parse(process.env.MOONSHOT_PROVIDER_CONFIG ?? '{}'), metering, {
        getActor: () => ({ user: { username: 'driver-server' } }),
    });
    const server = await serve(provider, Number(process.env.PORT ?? 0));
    process.stdout.write(`http://127.0.0.1:${server.address().port}\n`);
    process.stdin.resume();
    process.stdin.once('end', async () => {
        server.close();
        server.closeAllConnections();
        // What was metered, for the test to compare with what it was told.
        process.stdout.write(`${JSON.stringify({ metering: metering.calls })}\n`);
        await provider.close();
    });
}
