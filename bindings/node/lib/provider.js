// MoonshotProvider: Puter's IChatProvider over the library's C table.
//
// Shaped like Puter's own providers (src/backend/drivers/ai-chat/providers):
// `new MoonshotProvider(config, meteringService, options)`, `complete()`
// returning `{message, usage, finish_reason}` or
// `{stream: true, init_chat_stream, finally_fn}` that writes through the
// driver's AIChatStream, and metering through
// `meteringService.utilRecordUsageObject` with the plugin's integer bill.

import { MoonshotError, toMoonshotError } from './errors.js';
import { loadLibrary, reserveThreads, resolveLibraryPath, Status } from './native.js';
import { meteredUsage, webSearchFee } from './usage.js';
import { StreamWriter } from './stream.js';

/** The plugin's default pool size (plugin/src/config.rs). */
const DEFAULT_MAX_CONCURRENCY = 8;

export class MoonshotProvider {
    #library;
    #instance;
    #metering;
    #getActor;
    #prefix;
    #coalesceParts;
    #unreserve;
    /** Completions not yet ended: their cancel() and a promise of their end. */
    #live = new Set();
    #closing = null;

    /**
     * @param {Record<string, unknown>} config Puter's `providers.moonshot` block:
     *   `apiKey` (or `secret_key`, or `key`) plus the plugin's instance fields.
     * @param {{ utilRecordUsageObject: Function } | undefined} meteringService
     * @param {{ library?: string, getActor?: () => unknown, meteringPrefix?: string,
     *   coalesceParts?: boolean }} [options]
     */
    constructor(config, meteringService, options = {}) {
        const block = { ...(config ?? {}) };
        const key = block.apiKey ?? block.secret_key ?? block.key;
        if (typeof key !== 'string' || key === '') {
            throw new MoonshotError(Status.INVALID_ARGUMENT, {
                code: 'invalid_config',
                message: 'providers.moonshot needs apiKey (or secret_key, or key)',
            });
        }
        const threads = block.max_concurrency ?? DEFAULT_MAX_CONCURRENCY;
        this.#library = loadLibrary(resolveLibraryPath(options.library));
        this.#unreserve = Number.isInteger(threads) && threads > 0 ? reserveThreads(threads) : () => {};
        try {
            this.#instance = this.#library.create(JSON.stringify(block));
        } catch (error) {
            this.#unreserve();
            throw toMoonshotError(error);
        }
        this.#metering = meteringService;
        this.#getActor = options.getActor;
        this.#prefix = options.meteringPrefix ?? 'moonshot';
        // Each part is a koffi callback that blocks a plugin thread until
        // the event loop runs it: the plugin merges the text of one socket
        // read into one part (the AIChatStream takes text of any length).
        this.#coalesceParts = options.coalesceParts ?? true;
    }

    /** The loaded plugin: name, version and ABI of its table. */
    get plugin() {
        const { name, version, abi } = this.#library;
        return { name, version, abi: { ...abi }, path: this.#library.path };
    }

    #query(name) {
        if (this.#closing) throw new Error('MoonshotProvider is closed');
        try {
            return this.#library.query(name, this.#instance);
        } catch (error) {
            throw toMoonshotError(error);
        }
    }

    /** Puter's IChatModel list for the models served today. Fresh objects
     * each call: the driver rewrites the ones it is given. Each model's
     * `costs` also prices `web_search_calls`, so the driver's cost of a
     * result with searches equals the plugin's. */
    models() {
        const models = this.#query('models');
        const fee = webSearchFee(this.#query('reported_costs'));
        if (fee !== undefined) {
            for (const model of models) model.costs = { ...model.costs, web_search_calls: fee };
        }
        return models;
    }

    /** Ids and aliases served today. */
    list() {
        return this.#query('list');
    }

    /** Synchronous, as the driver calls it. */
    getDefaultModel() {
        return this.#query('default_model');
    }

    /** Puter's getReportedCosts() rows. */
    getReportedCosts() {
        return this.#query('reported_costs');
    }

    /** Moonshot has no moderation endpoint: nothing is flagged. */
    async checkModeration(_text) {
        return { flagged: false, categories: [] };
    }

    /**
     * Puter's complete(): a refusal or an upstream failure before the first
     * stream part is thrown from here (with `status`), so the driver can try
     * a fallback provider.
     */
    async complete(args) {
        if (this.#closing) throw new Error('MoonshotProvider is closed');
        const actor = this.#getActor ? this.#getActor() : undefined;
        const request = new Completion(this, actor, args?.stream === true);
        const sent = request.stream && this.#coalesceParts && args.coalesce_parts == null
            ? { ...args, coalesce_parts: true }
            : (args ?? {});
        this.#live.add(request);
        request.ended.finally(() => this.#live.delete(request));
        try {
            request.start(this.#library, this.#instance, JSON.stringify(sent));
        } catch (error) {
            this.#live.delete(request);
            throw toMoonshotError(error);
        }
        return request.stream ? request.streamResult() : request.messageResult();
    }

    /** Meters a plugin usage object once; returns Puter's usage (or undefined). */
    meter(pluginUsage, actor) {
        const metered = meteredUsage(pluginUsage);
        if (!metered) return undefined;
        try {
            this.#metering?.utilRecordUsageObject(
                metered.usage,
                actor,
                `${this.#prefix}:${metered.model}`,
                metered.overrides,
            );
        } catch (error) {
            // The completion happened either way; the stream still ends with its usage.
            process.emitWarning(`moonshot: metering failed: ${error?.message ?? error}`);
        }
        return metered;
    }

    /**
     * Cancels every request in flight, waits for each to end (their
     * streams end with Puter's error line), then destroys the instance on
     * a koffi worker thread. Idempotent.
     */
    close() {
        if (!this.#closing) {
            this.#closing = (async () => {
                const live = [...this.#live];
                for (const request of live) request.cancel();
                await Promise.allSettled(live.map((r) => r.ended));
                await this.#library.destroy(this.#instance);
                this.#unreserve();
            })();
        }
        return this.#closing;
    }
}

/** One complete() call, from start to on_done. */
class Completion {
    #provider;
    #handle = null;
    #cancelled = false;
    #writer = null;
    /** Parts that came before init_chat_stream. */
    #early = [];
    #sawPart = false;
    #firstPart;
    #resolveFirst;
    #resolveEnd;
    /** The metered usage, once metered: never twice. */
    metered = null;
    outcome = null;

    constructor(provider, actor, stream) {
        this.#provider = provider;
        this.actor = actor;
        this.stream = stream;
        this.#firstPart = new Promise((resolve) => {
            this.#resolveFirst = resolve;
        });
        this.ended = new Promise((resolve) => {
            this.#resolveEnd = resolve;
        });
    }

    start(library, instance, requestJson) {
        this.#handle = library.start(
            instance,
            requestJson,
            {
                onChunk: (json) => this.#onChunk(json),
                onDone: (status, json) => this.#onDone(status, json),
            },
            { parts: this.stream },
        );
        if (this.#cancelled) this.#handle.cancel();
    }

    cancel() {
        this.#cancelled = true;
        this.#handle?.cancel();
    }

    /** Returns false to make the plugin stop. */
    #onChunk(json) {
        if (this.#cancelled) return false;
        const part = JSON.parse(json);
        if (part.type === 'usage') this.#meterOnce(part.usage);
        if (!this.stream) return true;
        if (!this.#sawPart) {
            this.#sawPart = true;
            this.#resolveFirst();
        }
        if (this.#writer) {
            if (!this.#writer.part(part)) this.cancel();
        } else {
            this.#early.push(part);
        }
        return !this.#cancelled;
    }

    #onDone(status, json) {
        let body = {};
        try {
            body = JSON.parse(json);
        } catch {
            body = { message: json };
        }
        const partial = status === Status.OK ? body : body.partial;
        this.#meterOnce(partial?.usage);
        this.outcome = { status, body };
        this.#handle.release();
        this.#resolveFirst();
        this.#resolveEnd(this.outcome);
        this.#writer?.finish(this.outcome, this.metered);
    }

    #meterOnce(pluginUsage) {
        if (this.metered || !pluginUsage) return;
        this.metered = this.#provider.meter(pluginUsage, this.actor) ?? null;
        if (this.metered) this.#writer?.usageMetered(this.metered);
    }

    async messageResult() {
        const { status, body } = await this.ended;
        if (status !== Status.OK) throw new MoonshotError(status, body);
        const result = { ...body };
        result.usage = this.metered ? { ...this.metered.usage } : {};
        return result;
    }

    async streamResult() {
        await this.#firstPart;
        if (!this.#sawPart && this.outcome && this.outcome.status !== Status.OK) {
            throw new MoonshotError(this.outcome.status, this.outcome.body);
        }
        return {
            stream: true,
            init_chat_stream: ({ chatStream }) => this.#pump(chatStream),
            finally_fn: async () => {
                this.cancel();
                await this.ended;
            },
        };
    }

    /** Writes the stream into Puter's AIChatStream; resolves when it ended
     * well, rejects (the driver then writes its error line) when not. */
    #pump(chatStream) {
        const writer = new StreamWriter(chatStream, () => this.cancel());
        this.#writer = writer;
        if (this.metered) writer.usageMetered(this.metered);
        for (const part of this.#early.splice(0)) {
            if (!writer.part(part)) {
                this.cancel();
                break;
            }
        }
        if (this.outcome) writer.finish(this.outcome, this.metered);
        return writer.done;
    }
}
