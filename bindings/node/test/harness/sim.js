// The offline Moonshot simulator (tests/src/bin/sim-serve.rs) as a child
// process: scripted replies in, recorded request bodies out.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = join(here, '..', '..', '..', '..');

/** The library the tests load: MOONSHOT_PROVIDER_LIB, else the debug build. */
export const LIBRARY =
    process.env.MOONSHOT_PROVIDER_LIB || join(REPO, 'target', 'debug', 'libmoonshot_provider.so');
const SIM_BIN = process.env.MOONSHOT_SIM_BIN || join(REPO, 'target', 'debug', 'sim-serve');

export const TEST_KEY = 'sk-test-node-0123456789';
export const TODAY = '2026-11-01';

export class Sim {
    #child;
    #lines;
    #queue = Promise.resolve();

    static async start() {
        const sim = new Sim();
        sim.#child = spawn(SIM_BIN, [], { stdio: ['pipe', 'pipe', 'inherit'] });
        sim.#lines = createInterface({ input: sim.#child.stdout })[Symbol.asyncIterator]();
        const first = await sim.#lines.next();
        if (first.done) throw new Error(`${SIM_BIN} printed nothing`);
        const { base_url, addr } = JSON.parse(first.value);
        sim.baseUrl = base_url;
        sim.addr = addr;
        return sim;
    }

    /** One command, one answer line; commands are serialised. */
    #ask(command) {
        const answer = this.#queue.then(async () => {
            this.#child.stdin.write(`${JSON.stringify(command)}\n`);
            const line = await this.#lines.next();
            const value = JSON.parse(line.value);
            if (value.error) throw new Error(`sim: ${value.error}`);
            return value;
        });
        this.#queue = answer.catch(() => {});
        return answer;
    }

    push(reply) {
        return this.#ask({ op: 'push', reply });
    }

    async bodies() {
        return (await this.#ask({ op: 'bodies' })).bodies;
    }

    shutdown() {
        return this.#ask({ op: 'shutdown' });
    }

    stop() {
        this.#child.stdin.end();
        return new Promise((resolve) => {
            if (this.#child.exitCode !== null) resolve();
            else this.#child.once('exit', resolve);
        });
    }

    /** The provider block for this simulator. */
    config(extra = {}) {
        return {
            apiKey: TEST_KEY,
            base_url: this.baseUrl,
            today: TODAY,
            retries: { max: 1, base_delay_ms: 1, max_delay_ms: 20 },
            ...extra,
        };
    }
}
