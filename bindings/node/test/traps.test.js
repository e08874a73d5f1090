// The traps the prototype fell into that the other files do not cover:
// koffi's limit on blocked foreign-thread callbacks (trap 4), and loading.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { MoonshotProvider, resolveLibraryPath } from '../index.js';
import { LIBRARY, Sim } from './harness/sim.js';

const here = dirname(fileURLToPath(import.meta.url));

let sim;
before(async () => {
    sim = await Sim.start();
});
after(async () => {
    await sim.stop();
});

test('300 plugin threads blocked in callbacks at once (koffi allows 256 by default) complete', { timeout: 120_000 }, async () => {
    const child = spawn(process.execPath, [join(here, 'fixtures', 'many-threads.js')], {
        env: { ...process.env, MOONSHOT_TEST_BASE_URL: sim.baseUrl },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])));
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, err);
    // Every stream delivered the same (default) answer.
    const [, streams, parts] = out.match(/(\d+) streams, (\d+) text parts/);
    assert.equal(Number(streams), 300);
    assert.equal(Number(parts) % 300, 0);
    assert.ok(Number(parts) > 0);
});

test('a config koffi cannot serve is refused, not crashed on', async () => {
    const made = [];
    try {
        // 4096 blocked callbacks at most, some kept for koffi's own calls.
        for (let i = 0; i < 3; i += 1) {
            made.push(new MoonshotProvider(sim.config({ max_concurrency: 1024 }), undefined, { library: LIBRARY }));
        }
        assert.throws(() => new MoonshotProvider(sim.config({ max_concurrency: 1024 }), undefined, { library: LIBRARY }), {
            code: 'invalid_config',
            message: /max_concurrency 1024 does not fit koffi's limit of 4096/,
        });
    } finally {
        await Promise.all(made.map((p) => p.close()));
    }
    // Closing gives the room back.
    const again = new MoonshotProvider(sim.config({ max_concurrency: 1024 }), undefined, { library: LIBRARY });
    await again.close();
});

test("the plugin's own refusal of a config comes through as a 400", () => {
    assert.throws(() => new MoonshotProvider(sim.config({ max_concurrency: 0 }), undefined, { library: LIBRARY }), {
        status: 400,
        message: /max_concurrency/,
    });
});

test('the library path: options.library, else MOONSHOT_PROVIDER_LIB, else the release build', () => {
    const saved = process.env.MOONSHOT_PROVIDER_LIB;
    try {
        assert.equal(resolveLibraryPath('/x/lib.so'), '/x/lib.so');
        process.env.MOONSHOT_PROVIDER_LIB = '/y/lib.so';
        assert.equal(resolveLibraryPath(undefined), '/y/lib.so');
        delete process.env.MOONSHOT_PROVIDER_LIB;
        assert.match(resolveLibraryPath(undefined), /target\/release\/libmoonshot_provider\.so$/);
    } finally {
        if (saved === undefined) delete process.env.MOONSHOT_PROVIDER_LIB;
        else process.env.MOONSHOT_PROVIDER_LIB = saved;
    }
    assert.throws(() => new MoonshotProvider(sim.config(), undefined, { library: '/nonexistent/libmoonshot_provider.so' }), /not found/);
});
