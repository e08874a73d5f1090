// The library's C table, loaded once per process through koffi and wrapped
// so that no caller can misuse it: every returned string is copied and freed
// with the table's `free_string`, nothing that can block on plugin threads
// (`destroy`, `wait`) runs on the event loop, and the library is never
// unloaded (trap 3: Rust thread-local destructors would run on unmapped code).
//
// Koffi runs a callback that a plugin thread makes on the main thread and
// blocks that plugin thread until the JS function returns (trap 1). Each such
// blocked thread holds one of koffi's "async call" slots; past the limit koffi
// fails inside the plugin thread (trap 4). The limit can only be set before
// the first library is loaded, so it is set to its ceiling here and every
// instance reserves its `max_concurrency` out of it (see `reserveThreads`).

import koffi from 'koffi';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ABI_MAJOR = 1;
export const ABI_MINOR = 0;

/** Status codes of the C ABI (include/moonshot_provider.h). */
export const Status = Object.freeze({
    OK: 0,
    PENDING: 1,
    INVALID_ARGUMENT: 2,
    INVALID_REQUEST: 3,
    UNKNOWN_MODEL: 4,
    MODEL_RETIRED: 5,
    UPSTREAM: 6,
    PROTOCOL: 7,
    TRANSPORT: 8,
    TIMEOUT: 9,
    CANCELLED: 10,
    BUSY: 11,
    INTERNAL: 12,
});
export const CONTINUE = 0;
export const STOP = 1;

/** The MoonshotApi fields this package uses, in table order (all pointers
 * after the two 32-bit versions). */
const TABLE = [
    'struct_size', // size_t
    'versions', // uint32_t abi_major, uint32_t abi_minor
    'plugin_name',
    'plugin_version',
    'create',
    'destroy',
    'models',
    'list',
    'default_model',
    'reported_costs',
    'complete',
    'cancel',
    'wait',
    'request_result',
    'release',
    'free_string',
];
const POINTER = 8;
/** sizeof(MoonshotApi) for ABI 1.0: the table must be at least this big. */
export const API_SIZE_1_0 = TABLE.length * POINTER;

/** koffi's ceiling for blocked foreign-thread callbacks (max_async_calls). */
const KOFFI_CALL_CEILING = 4096;
/** Slots kept for koffi's own async calls (destroy runs as one). */
const KOFFI_RESERVE = 32;

/** koffi's limit, as set (or found frozen) before this module's first koffi call. */
let koffiCallLimit = 0;
// Before any other koffi call: the limit freezes once koffi allocates.
configureKoffi();

const OnChunk = koffi.proto(
    'int32_t MoonshotOnChunk(uintptr_t user_data, const char *chunk_json, size_t len)',
);
const OnDone = koffi.proto(
    'void MoonshotOnDone(uintptr_t user_data, int32_t status, const char *result_json, size_t len)',
);
const Callbacks = koffi.struct('MoonshotCallbacks', {
    struct_size: 'size_t',
    on_chunk: koffi.pointer(OnChunk),
    on_done: koffi.pointer(OnDone),
});
const Protos = {
    create: koffi.proto(
        'int32_t MoonshotCreate(const char *config_json, _Out_ void **out_instance, _Out_ void **out_error)',
    ),
    destroy: koffi.proto('void MoonshotDestroy(void *instance)'),
    query: koffi.proto('int32_t MoonshotQuery(void *instance, _Out_ void **out_json)'),
    complete: koffi.proto(
        'int32_t MoonshotComplete(void *instance, const char *request_json, const MoonshotCallbacks *callbacks, uintptr_t user_data, _Out_ void **out_request, _Out_ void **out_error)',
    ),
    cancel: koffi.proto('int32_t MoonshotCancel(void *request)'),
    release: koffi.proto('void MoonshotRelease(void *request)'),
    free_string: koffi.proto('void MoonshotFreeString(void *s)'),
};

/** The repo's release build: bindings/node/lib -> <repo>/target/release. */
export function defaultLibraryPath() {
    const here = dirname(fileURLToPath(import.meta.url));
    return join(here, '..', '..', '..', 'target', 'release', 'libmoonshot_provider.so');
}

/** options.library, else MOONSHOT_PROVIDER_LIB, else the repo's release build. */
export function resolveLibraryPath(library) {
    return library || process.env.MOONSHOT_PROVIDER_LIB || defaultLibraryPath();
}

// ------------------------------------------------------------ process-wide state

/** Loaded libraries by path; never removed, so koffi never unloads one. */
const loaded = new Map();
/** Requests whose on_done has not come yet, by user_data id. */
const inFlight = new Map();
let nextId = 1;
let reservedThreads = 0;
/** A ref'd timer keeps the event loop alive while callbacks are pending
 * (trap 2: koffi's callback broker does not). */
let keepAlive = null;
let pendingWork = 0;

function holdLoop() {
    pendingWork += 1;
    if (!keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
}

function releaseLoop() {
    pendingWork -= 1;
    if (pendingWork === 0 && keepAlive) {
        clearInterval(keepAlive);
        keepAlive = null;
    }
}

/** Requests and destroys not yet ended; tests and close() read it. */
export function pendingCount() {
    return pendingWork;
}

function configureKoffi() {
    if (koffiCallLimit) return;
    try {
        // Resident pools (koffi's maximum, 32): a callback beyond them maps and
        // unmaps a fresh stack, which at 64 streams doubled the CPU per part.
        koffi.config({ max_async_calls: KOFFI_CALL_CEILING, resident_async_pools: 32 });
    } catch {
        // Another module loaded a library through koffi first: the limit is
        // frozen at whatever it set, and instances must fit in it.
    }
    koffiCallLimit = koffi.config().max_async_calls;
}

/** Reserves koffi slots for an instance's plugin threads; throws when they
 * do not fit (a config koffi cannot serve would crash, not fail). */
export function reserveThreads(count) {
    configureKoffi();
    const room = koffiCallLimit - KOFFI_RESERVE - reservedThreads;
    if (count > room) {
        const error = new Error(
            `max_concurrency ${count} does not fit koffi's limit of ${koffiCallLimit} blocked callbacks ` +
                `(${room} left for this process); lower max_concurrency`,
        );
        error.code = 'invalid_config';
        throw error;
    }
    reservedThreads += count;
    return () => {
        reservedThreads -= count;
    };
}

// ------------------------------------------------------------ the callbacks

// The callbacks only queue what they got and return: koffi runs them on
// the event loop, and a burst of parts from many plugin threads comes as
// one batch of relays with no loop turn between them. The parts are then
// handled by `drain` in slices of at most DRAIN_SLICE_MS, so timers and I/O
// get their turn even under 64 busy streams.
const DRAIN_SLICE_MS = 5;
let events = [];
let drainScheduled = false;

function scheduleDrain() {
    if (!drainScheduled) {
        drainScheduled = true;
        setImmediate(drain);
    }
}

function drain() {
    drainScheduled = false;
    const deadline = performance.now() + DRAIN_SLICE_MS;
    let i = 0;
    for (; i < events.length; i += 1) {
        if (i % 16 === 15 && performance.now() > deadline) break;
        const [handlers, status, json] = events[i];
        try {
            if (status === null) {
                if (handlers.onChunk(json) === false) handlers.stopped = true;
            } else {
                handlers.onDone(status, json);
            }
        } catch (error) {
            // A handler bug must not stall every other request's parts.
            if (status === null) handlers.stopped = true;
            process.emitWarning(`moonshot: a stream handler threw: ${error?.stack ?? error}`);
        } finally {
            if (status !== null) releaseLoop();
        }
    }
    events = i === events.length ? [] : events.slice(i);
    if (events.length) scheduleDrain();
}

// Registered once for the process and never unregistered: a plugin thread
// may call them until the last on_done, and an unregistered trampoline
// would throw from a foreign thread.
const onChunkPtr = koffi.register((id, chunk, _len) => {
    const handlers = inFlight.get(id);
    if (!handlers || handlers.stopped) return STOP;
    events.push([handlers, null, chunk]);
    scheduleDrain();
    return CONTINUE;
}, koffi.pointer(OnChunk));

const onDonePtr = koffi.register((id, status, result, _len) => {
    const handlers = inFlight.get(id);
    if (!handlers) return;
    // The plugin no longer touches the request's user_data after this.
    inFlight.delete(id);
    events.push([handlers, status, result]);
    scheduleDrain();
}, koffi.pointer(OnDone));

const CALLBACKS = {
    struct_size: koffi.sizeof(Callbacks),
    on_chunk: onChunkPtr,
    on_done: onDonePtr,
};
/** Without on_chunk the plugin only gathers the parts into the result:
 * no callback per part for a caller that does not stream. */
const DONE_ONLY = { ...CALLBACKS, on_chunk: null };

// ------------------------------------------------------------ the table

/** The table of one library, functions decoded, strings handled. */
class Library {
    constructor(path) {
        if (!existsSync(path)) {
            throw new Error(
                `libmoonshot_provider not found at ${path}: build it (cargo build --release -p moonshot-provider) ` +
                    'or set MOONSHOT_PROVIDER_LIB / options.library',
            );
        }
        configureKoffi();
        this.path = path;
        this.handle = koffi.load(path);
        const getApi = this.handle.func('void *moonshot_get_api(uint32_t abi_major, uint32_t host_abi_minor)');
        const table = getApi(ABI_MAJOR, ABI_MINOR);
        if (!table) {
            throw new Error(`${path} does not serve C ABI major ${ABI_MAJOR}`);
        }
        const size = Number(koffi.decode(table, 'size_t'));
        const [major, minor] = koffi.decode(table, POINTER, 'uint32_t', 2);
        if (major !== ABI_MAJOR) {
            throw new Error(`${path} returned a table of ABI major ${major}, not ${ABI_MAJOR}`);
        }
        if (size < API_SIZE_1_0) {
            throw new Error(`${path}'s table is ${size} bytes, smaller than ABI 1.0's ${API_SIZE_1_0}`);
        }
        const slots = koffi.decode(table, 'void *', TABLE.length);
        const slot = (name) => slots[TABLE.indexOf(name)];
        this.abi = { major, minor, size };
        this.name = koffi.decode.string(slot('plugin_name'));
        this.version = koffi.decode.string(slot('plugin_version'));
        const fn = (name, proto) => koffi.decode(slot(name), proto);
        this.fns = {
            create: fn('create', Protos.create),
            destroy: fn('destroy', Protos.destroy),
            models: fn('models', Protos.query),
            list: fn('list', Protos.query),
            default_model: fn('default_model', Protos.query),
            reported_costs: fn('reported_costs', Protos.query),
            complete: fn('complete', Protos.complete),
            cancel: fn('cancel', Protos.cancel),
            release: fn('release', Protos.release),
            free_string: fn('free_string', Protos.free_string),
        };
    }

    /** Copies a plugin-owned string and frees it with free_string. */
    take(ptr) {
        if (!ptr) return null;
        try {
            return koffi.decode.string(ptr);
        } finally {
            this.fns.free_string(ptr);
        }
    }

    /** create(): the instance pointer, or throws the plugin's error JSON. */
    create(configJson) {
        const instance = [null];
        const error = [null];
        const status = this.fns.create(configJson, instance, error);
        const details = this.take(error[0]);
        if (status !== Status.OK) throw pluginError(status, details);
        return instance[0];
    }

    /** models/list/default_model/reported_costs: parsed JSON. */
    query(name, instance) {
        const out = [null];
        const status = this.fns[name](instance, out);
        const text = this.take(out[0]);
        if (status !== Status.OK) throw pluginError(status, text);
        return JSON.parse(text);
    }

    /**
     * Starts a completion. `handlers.onChunk(json)` (return false to stop;
     * only with `parts`) and `handlers.onDone(status, json)` run on the
     * event loop, in order, shortly after the plugin delivered them. Returns a
     * handle with cancel() and release(); throws the refusal when nothing
     * was started.
     */
    start(instance, requestJson, handlers, { parts = true } = {}) {
        const id = nextId++;
        const request = [null];
        const error = [null];
        inFlight.set(id, handlers);
        holdLoop();
        let status;
        try {
            status = this.fns.complete(instance, requestJson, parts ? CALLBACKS : DONE_ONLY, id, request, error);
        } catch (e) {
            inFlight.delete(id);
            releaseLoop();
            throw e;
        }
        const details = this.take(error[0]);
        if (status !== Status.OK) {
            inFlight.delete(id);
            releaseLoop();
            throw pluginError(status, details);
        }
        return new RequestHandle(this, request[0], handlers);
    }

    /** destroy() on one of koffi's worker threads: it waits for plugin
     * threads, whose callbacks need the event loop to be free. */
    destroy(instance) {
        holdLoop();
        return new Promise((resolve, reject) => {
            this.fns.destroy.async(instance, (err) => {
                releaseLoop();
                if (err) reject(err);
                else resolve();
            });
        });
    }
}

/** One request handle: cancel any number of times, release exactly once. */
class RequestHandle {
    #library;
    #ptr;
    #handlers;
    constructor(library, ptr, handlers) {
        this.#library = library;
        this.#ptr = ptr;
        this.#handlers = handlers;
    }

    /** Stops the request: the next on_chunk answers STOP, and the plugin
     * is told at once. */
    cancel() {
        this.#handlers.stopped = true;
        if (this.#ptr) this.#library.fns.cancel(this.#ptr);
    }

    release() {
        const ptr = this.#ptr;
        this.#ptr = null;
        if (ptr) this.#library.fns.release(ptr);
    }

    get released() {
        return this.#ptr === null;
    }
}

/** An Error from a status and the plugin's error JSON. */
export function pluginError(status, detailsJson) {
    let details = {};
    try {
        details = detailsJson ? JSON.parse(detailsJson) : {};
    } catch {
        details = { message: detailsJson };
    }
    const error = new Error(details.message || `moonshot: status ${status}`);
    error.moonshotStatus = status;
    error.details = details;
    if (details.code) error.code = details.code;
    return error;
}

/** The library at `path`, loaded once for the process. */
export function loadLibrary(path) {
    let library = loaded.get(path);
    if (!library) {
        library = new Library(path);
        loaded.set(path, library);
    }
    return library;
}
