// How long the event loop was held, measured two ways while `fn` runs:
//
// - `rawMs`: monitorEventLoopDelay's worst delay, which also counts the
//   time the main thread was runnable but not given a core (a 2-core
//   machine running the rest of a test suite, or seven builds);
// - `heldMs`: the worst delay of a 5 ms timer minus the time the main
//   thread spent waiting on the run queue meanwhile (Linux schedstat):
//   what this process held the loop for, running JS or native code, or
//   blocked on a lock (a synchronous destroy waiting on plugin threads
//   would be here in full). Time the hypervisor takes the VM's core away
//   (steal) is invisible to the guest and still lands here, which is why
//   concurrency.test.js bounds the best of a few rounds.
//
// The tests bound `heldMs`, and print both.

import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const TICK_MS = 5;
const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;

/** Nanoseconds the main thread has waited on a run queue so far. */
function runQueueWaitNs() {
    return Number(readFileSync(SCHEDSTAT, 'utf8').split(' ')[1]);
}

export async function loopDelay(fn) {
    const histogram = monitorEventLoopDelay({ resolution: TICK_MS });
    histogram.enable();
    let last = performance.now();
    let lastWait = runQueueWaitNs();
    let heldMs = 0;
    const timer = setInterval(() => {
        const now = performance.now();
        const wait = runQueueWaitNs();
        const held = now - last - TICK_MS - (wait - lastWait) / 1e6;
        if (held > heldMs) heldMs = held;
        last = now;
        lastWait = wait;
    }, TICK_MS);
    try {
        await fn();
    } finally {
        clearInterval(timer);
        histogram.disable();
    }
    return { rawMs: histogram.max / 1e6, heldMs };
}
