// Processes that leave every way with a request in flight, ten times each,
// in parallel (trap 2: Node does not wait for foreign callbacks and a plugin
// thread calling into a dying runtime aborted it; trap 3: unloading the
// library, when koffi's handle is collected or at exit, ran Rust
// thread-local destructors on unmapped code: the `gc` way).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Sim } from './harness/sim.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'exit-child.js');
const RUNS = 10;
const PARALLEL = Math.max(8, availableParallelism() * 4);
const CHILD_LIMIT_MS = 30_000;

/** mode -> what its exit must look like. */
const MODES = {
    natural: { code: 0, says: ['started', 'done'] },
    awaited: { code: 0, says: ['started', 'done'] },
    exit: { code: 0, says: ['started'] },
    'exit-code': { code: 3, says: ['started'] },
    'exit-in-callback': { code: 0, says: ['started'] },
    close: { code: 0, says: ['started', 'done', 'closed'] },
    throw: { code: 1, says: ['started'], stderr: /deliberately uncaught/ },
    gc: { code: 0, says: ['started', 'done'] },
};

let sim;
before(async () => {
    sim = await Sim.start();
});
after(async () => {
    await sim.stop();
});

function run(mode) {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, ['--expose-gc', CHILD, mode], {
            env: { ...process.env, MOONSHOT_TEST_BASE_URL: sim.baseUrl },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_LIMIT_MS);
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({ mode, code, signal, stdout, stderr });
        });
    });
}

/** Runs every job with at most `limit` at once. */
async function pool(jobs, limit) {
    const results = [];
    let next = 0;
    await Promise.all(
        Array.from({ length: limit }, async () => {
            while (next < jobs.length) {
                const job = jobs[next++];
                results.push(await job());
            }
        }),
    );
    return results;
}

test(`every way out with a request in flight, ${RUNS} times each, ends with the expected status`, { timeout: 180_000 }, async () => {
    const jobs = [];
    for (let i = 0; i < RUNS; i += 1) for (const mode of Object.keys(MODES)) jobs.push(() => run(mode));
    // One slow stream per child (about 0.4 s): each is in flight when its process goes.
    for (let i = 0; i < jobs.length; i += 1) {
        await sim.push({ stream: { content: 'Once upon a time, far away. '.repeat(2), chunk_chars: 2, delay_ms: 15 } });
    }
    const results = await pool(jobs, PARALLEL);
    const failures = [];
    for (const r of results) {
        const want = MODES[r.mode];
        const said = r.stdout.split('\n').filter(Boolean);
        const problems = [];
        if (r.signal) problems.push(`killed by ${r.signal}`);
        if (r.code !== want.code) problems.push(`exit status ${r.code}, not ${want.code}`);
        for (const word of want.says) if (!said.includes(word)) problems.push(`never said ${word}`);
        if (want.stderr && !want.stderr.test(r.stderr)) problems.push('stderr lacks the expected error');
        if (!want.stderr && r.stderr.trim() !== '') problems.push('wrote to stderr');
        if (problems.length) failures.push(`${r.mode}: ${problems.join('; ')}\n  stdout: ${said.join(' ')}\n  stderr: ${r.stderr.trim().slice(0, 600)}`);
    }
    assert.equal(results.length, RUNS * Object.keys(MODES).length);
    assert.deepEqual(failures, []);
});
