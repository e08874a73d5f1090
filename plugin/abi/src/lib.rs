//! The C ABI of the Moonshot (Kimi) chat provider, version 1.
//!
//! Everything a host sees is declared here: status codes, the callback
//! table a host hands to `complete`, and the function table the plugin's one
//! exported entry (`moonshot_get_api`) returns. `include/moonshot_provider.h`
//! is generated from this file by a pinned cbindgen; the `///` comments below
//! are the header's documentation, so they state ownership, lifetime and
//! thread for every item.
//!
//! Compatibility rules: the tables only ever grow at their end. A field is
//! present when the table's `struct_size` covers it; a new field bumps
//! `MOONSHOT_ABI_MINOR`; any other change bumps `MOONSHOT_ABI_MAJOR`.
#![forbid(unsafe_code)]

use std::ffi::{c_char, c_void};

#[doc(hidden)]
pub mod layout_fixture;

use abi_stable::{
    declare_root_module_statics, library::RootModule, package_version_strings,
    sabi_types::VersionStrings, StableAbi,
};

/// The ABI major version this header describes. `moonshot_get_api` returns
/// NULL for any other major.
pub const MOONSHOT_ABI_MAJOR: u32 = 1;

/// The ABI minor version this header describes. A plugin with a higher minor
/// serves every older host of the same major.
pub const MOONSHOT_ABI_MINOR: u32 = 1;

/// Result of every call. 0 is success, 1 is "not finished yet", every other
/// value is an error whose details come as JSON
/// `{"code","message","http_status","retryable","request_id"}` where the call
/// has an `out_error` parameter or an `on_done` callback
/// (include/schemas/error.schema.json). Every field is always present:
///
/// - `code` (string): a stable snake_case word to branch on. The plugin's own
///   codes are listed beside each `MOONSHOT_ERR_*` status (near the end of
///   this header; the first one listed is that status's default) and in
///   include/schemas/error.schema.json (`$defs/localCode`). With `MOONSHOT_ERR_UPSTREAM` it may also be Moonshot's
///   own `error.type` exactly as Moonshot sent it (`invalid_request_error`,
///   `content_filter`, `invalid_authentication_error`,
///   `incorrect_api_key_error`, `permission_denied_error`,
///   `resource_not_found_error`, `rate_limit_reached_error`,
///   `engine_overloaded_error`, `exceeded_current_quota_error`,
///   `server_error`, `unexpected_output`, or any other it sends), or
///   `http_<status>` (e.g. `http_502`) when its answer had no `error.type`.
///   Codes may be added in a minor version: treat an unknown code by its
///   status.
/// - `message` (string): one sentence for a human; log it, do not parse it.
/// - `http_status` (integer or null): the HTTP status of Moonshot's error
///   answer; null for errors the plugin raised itself, for an error event
///   inside a 200 stream, and when no answer came.
/// - `retryable` (boolean): true when the same request sent again later may
///   succeed: Moonshot's 429 (except `exceeded_current_quota_error`) and 5xx
///   answers, and transport failures before any byte of the request was
///   written (a failed DNS lookup, a refused or unreachable connection, a
///   connect timeout, a cut TLS handshake); the plugin has already retried
///   those itself (config `retries`) before reporting one. A failure once
///   the request was being written is not retryable: the request may have
///   reached Moonshot, which would bill a second attempt. Also true for `MOONSHOT_ERR_BUSY` (once another
///   request has ended). false for everything else.
/// - `request_id` (string or null): Moonshot's id for the failed exchange, from
///   its `Msh-Request-Id` header, else `X-Msh-Trace-Id`, else `x-request-id`;
///   quote it to Moonshot's support. null when nothing was sent (every
///   refusal by `create` or `complete`, a request cancelled in the queue),
///   when no answer came, or when the answer carried no id.
/// - `partial` (object, `on_done` / `request_result` only, and only when part
///   of the answer had been received): the result as far as it got, shaped
///   as the result (see `on_done`) with `finish_reason` null unless Moonshot
///   sent one and `usage.estimated` true unless Moonshot sent usage.
///
/// No text in it holds the API key or Moonshot's account identifiers
/// (`org-...`, `ak-...`): they are replaced by `[redacted]`.
pub type MoonshotStatus = i32;

/// Success.
pub const MOONSHOT_OK: MoonshotStatus = 0;
/// `wait` or `request_result`: the request has not finished yet.
pub const MOONSHOT_PENDING: MoonshotStatus = 1;
/// A NULL pointer, text that is not UTF-8, malformed JSON or a wrong type, a
/// config value out of bounds, a request larger than `max_request_bytes`,
/// `MoonshotCallbacks.struct_size` 0, or `wait` called from inside a
/// callback. Code: `invalid_argument`.
pub const MOONSHOT_ERR_INVALID_ARGUMENT: MoonshotStatus = 2;
/// The request breaks one of Moonshot's rules; refused before anything was
/// sent. Codes: `invalid_request`; `media_fetch_failed` (an http(s) image or
/// video the plugin had to fetch and inline could not be had, or its address
/// is not public: one text for every cause; comes through `on_done`, still
/// before anything was sent to Moonshot); `too_many_media_urls` (more http(s)
/// media items than config `media.max_items`).
pub const MOONSHOT_ERR_INVALID_REQUEST: MoonshotStatus = 3;
/// The model is not in the catalog. Code: `unknown_model`.
pub const MOONSHOT_ERR_UNKNOWN_MODEL: MoonshotStatus = 4;
/// The model is retired and the instance is configured not to migrate
/// (`retired_models: "error"`). Code: `model_retired`.
pub const MOONSHOT_ERR_MODEL_RETIRED: MoonshotStatus = 5;
/// Moonshot answered with an error (see `http_status` and `code`). Codes:
/// Moonshot's `error.type` or `http_<status>` (see `MoonshotStatus`);
/// `upstream_error`; `stream_error` (an error event inside a stream that
/// named no type); `web_search_rounds_exceeded` (the `$web_search` loop did
/// not end within config `web_search.max_rounds`).
pub const MOONSHOT_ERR_UPSTREAM: MoonshotStatus = 6;
/// Moonshot's answer could not be understood (malformed JSON or stream).
/// Codes: `protocol_error`; `response_too_large` (an answer larger than the
/// plugin accepts); `answer_too_large` (a streamed answer's text, reasoning
/// and tool arguments passed config `max_answer_bytes`; `partial` keeps what
/// came); `too_many_tool_calls` (more tool calls in one answer than the
/// plugin assembles); `implausible_usage` (token counts beyond any context
/// window, or a bill that would overflow: never billed as sent).
pub const MOONSHOT_ERR_PROTOCOL: MoonshotStatus = 7;
/// The connection failed or was cut. Codes: `transport_error`; `stream_cut`
/// (the stream ended before Moonshot's `[DONE]`: the answer is incomplete);
/// `tls_untrusted_certificate`, `tls_wrong_host`, `tls_invalid_certificate`,
/// `tls_handshake_failed` (the TLS reason named; never retried);
/// `proxy_refused` (the proxy would not open the tunnel; its status named,
/// never its credentials).
pub const MOONSHOT_ERR_TRANSPORT: MoonshotStatus = 8;
/// A configured timeout ran out. Codes: `timeout`; `connect_timeout`,
/// `first_byte_timeout`, `idle_timeout`, `total_timeout`, one per config
/// `timeouts` field.
pub const MOONSHOT_ERR_TIMEOUT: MoonshotStatus = 9;
/// Cancelled by `cancel`, by `release` of a running request, by a callback
/// returning `MOONSHOT_STOP`, or by `destroy` (also what `complete` returns
/// while its instance is being destroyed). Code: `cancelled`.
pub const MOONSHOT_ERR_CANCELLED: MoonshotStatus = 10;
/// The instance's pool and queue are full (`max_concurrency` requests
/// running and `max_queue` waiting); nothing was started. Try again once a
/// request has ended (`retryable` is true). Code: `busy`.
pub const MOONSHOT_ERR_BUSY: MoonshotStatus = 11;
/// A bug inside the plugin (a caught panic). The instance keeps serving.
/// Code: `internal_error`.
pub const MOONSHOT_ERR_INTERNAL: MoonshotStatus = 12;

/// What a stream callback returns. Any value other than `MOONSHOT_STOP`
/// counts as `MOONSHOT_CONTINUE`.
pub type MoonshotFlow = i32;
/// Go on streaming.
pub const MOONSHOT_CONTINUE: MoonshotFlow = 0;
/// Cancel the request: no further `on_chunk` comes, and `on_done` follows
/// with `MOONSHOT_ERR_CANCELLED` (and `partial`, the answer so far, once
/// anything had come from Moonshot).
/// Once a request has been cancelled (by any means), it delivers no more
/// parts: only a part already being delivered at that moment completes.
pub const MOONSHOT_STOP: MoonshotFlow = 1;

/// A provider instance: one configuration (API key, base URL, limits) and the
/// thread pool its requests run on. Opaque; made by `create`, freed by
/// `destroy`.
#[repr(C)]
#[derive(StableAbi)]
pub struct MoonshotInstance {
    _private: [u8; 0],
}

/// One `complete` call in flight or finished. Opaque; made by `complete`,
/// freed by `release`.
#[repr(C)]
#[derive(StableAbi)]
pub struct MoonshotRequest {
    _private: [u8; 0],
}

/// The callbacks of one `complete` call. The plugin copies this struct during
/// `complete`; the struct itself need not outlive that call.
///
/// Both callbacks run on a thread of the instance's pool, never inside the
/// `complete` call that started the request, one call at a time per
/// request, and only after `complete` has stored the request's handle in
/// `*out_request`. From inside a callback a host may call every function of
/// the table: `create`, `destroy`, `models`, `list`, `default_model`,
/// `reported_costs`, `complete`, `cancel`, `request_result`, `release` (of
/// any request, the one being reported included) and `free_string`; none of
/// them waits for the request being reported (`destroy` still waits for the
/// instance's other requests, see there). The one exception is `wait`:
/// called on a pool thread it could wait for work that thread itself must
/// do, so it returns `MOONSHOT_ERR_INVALID_ARGUMENT` at once. A callback
/// should return quickly: while it runs, its thread serves no other request.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct MoonshotCallbacks {
    /// `sizeof(MoonshotCallbacks)` as the host knows it; fields beyond it are
    /// treated as NULL. 0 (a struct never filled in) is refused by `complete`
    /// with `MOONSHOT_ERR_INVALID_ARGUMENT`.
    pub struct_size: usize,
    /// Called once for each stream part, in order, with one UTF-8 JSON object in
    /// Puter's NDJSON vocabulary (include/schemas/stream-part.schema.json):
    ///
    /// - `{"type":"reasoning","reasoning":string}`: a piece of the model's
    ///   thinking (thinking models send it before the text).
    /// - `{"type":"text","text":string}`: a piece of the answer. In partial
    ///   mode the first text part is the prefix.
    /// - `{"type":"tool_use","id":string,"name":string,"input":any}`: one whole
    ///   tool call, after the text; `input` is the arguments parsed (usually an
    ///   object; `{}` when there were none; `{"_raw":string}` when they were
    ///   not valid JSON). `$web_search` calls are run by the plugin, not shown.
    /// - `{"type":"usage","usage":object}`: the last part of a stream that
    ///   completed; the same `usage` object (with the bill) as the result's.
    ///
    /// Text and reasoning parts are never empty; joined in order they equal
    /// the result's `message.content` and `message.reasoning`. Only requests
    /// with `"stream": true` have parts; others go straight to `on_done`.
    /// By default each text or reasoning delta Moonshot streams is one part;
    /// with `"coalesce_parts": true` in the request, consecutive text (or
    /// reasoning) deltas that arrived in the same socket read come as one
    /// part, delivered before the plugin waits for more (fewer calls for a
    /// host whose call is costly, e.g. a relay to another thread); the joined
    /// text, the other parts and the result are the same.
    /// Other `type` values may be added in a minor version: ignore them.
    ///
    /// Thread: a thread of the instance's pool; never two calls for the same
    /// request at once. `chunk_json` is NUL-terminated, `len` bytes long without
    /// the NUL, and borrowed only for the duration of the call: copy what you
    /// keep. Return `MOONSHOT_CONTINUE`, or `MOONSHOT_STOP` to cancel.
    ///
    /// May be NULL: the parts are then only gathered into the final result.
    pub on_chunk: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            chunk_json: *const c_char,
            len: usize,
        ) -> MoonshotFlow,
    >,
    /// Called exactly once when a request ends, after its last `on_chunk`,
    /// also when it ends by `cancel`, `release` or `destroy` (a request still
    /// queued gets it promptly, without waiting for a thread to free up).
    ///
    /// On `MOONSHOT_OK`, `result_json` is Puter's IChatMessageResult plus what
    /// explains it (include/schemas/result.schema.json):
    ///
    /// - `message` (object): `role` "assistant"; `content` (string, "" when
    ///   none; in partial mode it starts with the prefix, once); `reasoning`
    ///   and `reasoning_content` (the same string, when the model thought);
    ///   `tool_calls` (when any: `[{"id","type":"function","function":
    ///   {"name","arguments":string}}]`, the arguments as Moonshot sent them).
    /// - `finish_reason` (string): Moonshot's, e.g. "stop", "length",
    ///   "tool_calls", "content_filter"; "stop" when it named none.
    /// - `usage` (object), integers unless said otherwise, summed over every
    ///   round of a web-search loop: `prompt_tokens` (input, cached included),
    ///   `completion_tokens` (output, reasoning included), `cached_tokens`,
    ///   `uncached_prompt_tokens` (prompt - cached), `total_tokens` (prompt +
    ///   completion), `web_search_calls`, `estimated` (boolean: true when
    ///   Moonshot sent no usage and the plugin counted), and `cost`, the bill
    ///   in integer microcents (1 US cent = 1,000,000 microcents):
    ///   - `cost.model` (string): the catalog id whose prices were applied;
    ///   - `cost.lines` (array), always `moonshot:<model>:input-tokens`
    ///     (uncached input), `moonshot:<model>:cached-tokens`,
    ///     `moonshot:<model>:output-tokens`, then `moonshot:web-search:calls`
    ///     when there were searches; each `{"usageType": string, "units",
    ///     "ucentsPerUnit", "ucents": units * ucentsPerUnit}`, matching the
    ///     rows of `reported_costs`;
    ///   - `cost.total_ucents`: the sum of the lines' `ucents`, what to bill;
    ///   - `cost.usd_cents` (number, a float): total_ucents / 1,000,000, for
    ///     display only.
    /// - `model` (string): the model that served and was billed (the one
    ///   asked for, its successor after a migration, or moonshot-v1-auto's
    ///   tier).
    /// - `request_id` (string or null): Moonshot's id for the exchange, as in
    ///   the error details.
    /// - only when they apply: `choices` (n > 1: every choice, `[{"index",
    ///   "message","finish_reason"}]`), `migrated_from` (string, the retired id
    ///   asked for) with `migration_reason` (string), `adjustments` (array of
    ///   strings: what the plugin changed to fit the model's rules).
    ///
    /// On any other status it is the error details (see `MoonshotStatus`),
    /// with `partial` when part of the answer had been received.
    ///
    /// Thread: a thread of the instance's pool. `result_json` is NUL-terminated,
    /// `len` bytes long without the NUL, and borrowed only for the call.
    /// `user_data` is not used by the plugin after this call returns.
    ///
    /// May be NULL: use `wait` and `request_result` instead.
    pub on_done: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            status: MoonshotStatus,
            result_json: *const c_char,
            len: usize,
        ),
    >,
}

/// The plugin's function table, returned by `moonshot_get_api`. Static: the
/// library is linked with `-z nodelete`, so `dlclose` never unmaps it and
/// the table stays valid for the life of the process (a host that calls
/// `dlclose`, at exit or to reload, cannot crash in the plugin's leftover
/// thread-local destructors). `destroy` every instance before unloading. It
/// only grows at its end: read a field only when `struct_size` covers it.
///
/// Strings the plugin returns through an `out_*` `char **` are NUL-terminated
/// UTF-8 JSON, owned by the caller, and must be freed with `free_string`
/// (never with `free`). Out-parameters, in every function: a non-NULL one is
/// always written, NULL first, so on return it holds either what the
/// function describes or NULL, never what it held before. An `out_error`
/// may be NULL (the details are then dropped); it is set only when the
/// status is an error, and stays NULL on `MOONSHOT_OK`. Any other NULL
/// out-parameter makes the call return `MOONSHOT_ERR_INVALID_ARGUMENT`
/// (with the error JSON in `out_error` where there is one) and do nothing
/// else.
///
/// The JSON documents have schemas (JSON Schema draft 2020-12) in
/// include/schemas/: config, request, stream-part, result, usage, error,
/// models, list, default-model and reported-costs; include/moonshot.d.ts
/// declares the same shapes for TypeScript.
#[repr(C)]
#[derive(StableAbi)]
pub struct MoonshotApi {
    /// `sizeof(MoonshotApi)` as this plugin knows it.
    pub struct_size: usize,
    /// Always `MOONSHOT_ABI_MAJOR` (1) for this table.
    pub abi_major: u32,
    /// The minor version the plugin implements; may exceed the host's.
    pub abi_minor: u32,
    /// NUL-terminated, static: the plugin's name, "moonshot".
    pub plugin_name: *const c_char,
    /// NUL-terminated, static: the plugin's semantic version.
    pub plugin_version: *const c_char,

    /// Makes an instance from Puter's provider block as a UTF-8 JSON object
    /// (include/schemas/config.schema.json). Only the key is required; every
    /// other field is optional, null in a number or string field means its
    /// default, unknown fields are ignored, and a wrong type (a null object
    /// included) or a value out of bounds is refused with
    /// `MOONSHOT_ERR_INVALID_ARGUMENT` naming the field (never its value):
    ///
    /// - `apiKey` (or `secret_key`, or `key`; the first non-blank one):
    ///   Moonshot's API key, a string of at most 1024 bytes. Never appears in
    ///   any output.
    /// - `base_url` (or `baseURL` / `baseUrl`): Moonshot's API root, http:// or
    ///   https://, at most 1024 bytes; default "https://api.moonshot.ai/v1".
    /// - `timeouts`, in milliseconds (0 counts as 1), each ending a request with
    ///   `MOONSHOT_ERR_TIMEOUT` and the code named:
    ///   `connect_ms` (resolve and connect, per attempt; default 10000;
    ///   `connect_timeout`), `first_byte_ms` (from sending to Moonshot's
    ///   response headers, per attempt; default 120000; `first_byte_timeout`),
    ///   `idle_ms` (longest silence while receiving; default 90000;
    ///   `idle_timeout`), `total_ms` (the whole request from when it starts
    ///   running, retries and web-search rounds included, queueing not;
    ///   default 900000; `total_timeout`).
    /// - `retries`: `max` (retries after the first attempt; default 2, values
    ///   above 10 count as 10), `base_delay_ms` (first backoff, doubled each
    ///   retry, with jitter; default 500), `max_delay_ms` (cap on one wait,
    ///   including one Moonshot asks for; default 30000). Only retryable
    ///   failures are retried, never after a part was delivered.
    /// - `max_concurrency`: requests running at once, i.e. pool threads
    ///   (started on demand, joined by `destroy`); 1 to 16384, default 8.
    /// - `max_queue`: requests waiting for a thread while `max_concurrency`
    ///   run; 0 or more, default 256. Beyond it `complete` returns
    ///   `MOONSHOT_ERR_BUSY`.
    /// - `max_request_bytes`: largest `request_json` `complete` accepts, in
    ///   bytes; default 115343360 (110 MiB).
    /// - `max_request_values`: most JSON values in one request, counted
    ///   before parsing (`MOONSHOT_ERR_INVALID_ARGUMENT` beyond); default
    ///   1000000.
    /// - `max_inflight_request_bytes`: request bytes (plus 64 per value) the
    ///   instance holds at once, queued and running together; a request that
    ///   does not fit now is `MOONSHOT_ERR_BUSY`, one that never could
    ///   `MOONSHOT_ERR_INVALID_ARGUMENT`; default 268435456 (256 MiB).
    /// - `max_answer_bytes`: most bytes of text, reasoning and tool
    ///   arguments one answer may accumulate (after gzip decoding), else
    ///   `MOONSHOT_ERR_PROTOCOL` `answer_too_large` with `partial`; default
    ///   16777216 (16 MiB).
    /// - `media`: the http(s) image and video URLs the plugin fetches and
    ///   inlines: `allow_private_networks` (default false: public addresses
    ///   only, checked on the address connected to at every redirect),
    ///   `allow_addresses` (non-public IPs allowed one by one; default []),
    ///   `debug_errors` (the reason in the message; default false),
    ///   `max_items` (default 10), `max_total_bytes` (per request; default
    ///   50331648, 48 MiB), `deadline_ms` (all fetches of a request; default
    ///   60000). Every failed fetch is `media_fetch_failed` with one text.
    /// - `tls`: `roots` ("webpki", the bundled roots, default; "system";
    ///   "both"), `ca_pem` (PEM text) and `ca_file` (a path) add CAs; read by
    ///   `create`.
    /// - `proxy`: an HTTP CONNECT proxy URL, credentials allowed and never
    ///   printed; without it `ALL_PROXY` / `HTTPS_PROXY` / `HTTP_PROXY` /
    ///   `NO_PROXY` apply, and "" turns proxies off.
    /// - `worker_stack_kib`: each pool thread's stack in KiB (callbacks run
    ///   there); default 512, at least 128.
    /// - `retired_models`: "migrate" (default: a retired model is served by
    ///   its successor and the result says so) or "error"
    ///   (`MOONSHOT_ERR_MODEL_RETIRED`).
    /// - `web_search`: `fee_ucents` (microcents per `$web_search` call;
    ///   default 500000, i.e. $0.005), `max_rounds` (search round trips in one
    ///   completion; default 5, 0 counts as 1).
    /// - `today`: "YYYY-MM-DD", the day the catalog is read on (default: the
    ///   system clock's UTC day); for tests.
    ///
    /// Starts no thread. `config_json` is borrowed for the call. On
    /// `MOONSHOT_OK` stores the instance in `*out_instance` (free it with
    /// `destroy`). On error stores NULL there and the error JSON in
    /// `*out_error` (free it with `free_string`). Any thread.
    pub create: unsafe extern "C" fn(
        config_json: *const c_char,
        out_instance: *mut *mut MoonshotInstance,
        out_error: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Cancels every request of the instance (running and queued), waits
    /// until each has delivered `on_done` (`MOONSHOT_ERR_CANCELLED` for those
    /// that had not ended), joins every thread the instance started, and
    /// frees it. Request handles stay valid until `release`. NULL is ignored.
    /// Call it once per instance, after every other call on the instance
    /// has returned. Any thread; called from inside a callback it cannot
    /// join the thread it runs on, which then ends by itself once that
    /// callback returns.
    pub destroy: unsafe extern "C" fn(instance: *mut MoonshotInstance),

    /// Puter's `models()`: a JSON array of IChatModel objects for the models
    /// served on the instance's day (include/schemas/models.schema.json):
    /// `puterId`, `id`, `name`, `aliases`, `provider` ("moonshot"),
    /// `modalities` {`input`, `output`}, `costs_currency` ("usd-cents"),
    /// `input_cost_key`, `output_cost_key`, `costs` (cents per `tokens`
    /// = 1000000 tokens: `prompt_tokens`, `completion_tokens`, and
    /// `cached_tokens` where the model has a cache price), `context`,
    /// `max_tokens`, `tool_call`, `json_mode`, `partial_mode`, `reasoning`,
    /// `knowledge`, `released`, `retired_on`, `successor`.
    ///
    /// On `MOONSHOT_OK` stores the string in `*out_json` (free with
    /// `free_string`). A NULL `instance` or `out_json` returns
    /// `MOONSHOT_ERR_INVALID_ARGUMENT` (and stores NULL in a non-NULL
    /// `out_json`). Any thread, concurrently with anything but `destroy`.
    pub models: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Puter's `list()`: a JSON array of strings, every name of the models
    /// served on the instance's day (each id, its aliases, `moonshot/<id>`).
    /// Out-parameter, errors and thread as `models`.
    pub list: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Puter's `getDefaultModel()`: a JSON string, e.g. `"kimi-k2.6"`, the
    /// model a request without `model` gets. Out-parameter, errors and
    /// thread as `models`.
    pub default_model: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Puter's `getReportedCosts()`: a JSON array of
    /// `{"usageType": string, "ucentsPerUnit": integer microcents, "unit":
    /// "token" | "call", "source": "driver:aiChat/moonshot"}` rows: the input,
    /// cached and output tokens of each model served on the instance's day,
    /// then `moonshot:web-search:calls`. Out-parameter, errors and thread as
    /// `models`.
    pub reported_costs: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Starts a chat completion and returns at once. `request_json` is Puter's
    /// ICompleteArguments (`{"messages","model","stream","tools",...}`;
    /// include/schemas/request.schema.json), borrowed for the call. `stream`
    /// defaults to false: without `"stream": true` no part is delivered and
    /// the whole answer comes with `on_done`. `"coalesce_parts": true`
    /// merges the text (or reasoning) deltas of one socket read into one
    /// part (see `on_chunk`); absent, null or false: one part per delta;
    /// older plugins ignore it, as any unknown field. `callbacks` is copied
    /// (may be NULL: then use `wait` and `request_result`); `user_data` is
    /// passed back to the callbacks untouched and must stay valid until
    /// `on_done` has returned (or, without `on_done`, until `wait` reports
    /// the end).
    ///
    /// The request is checked before anything is sent: malformed input gives
    /// `MOONSHOT_ERR_INVALID_ARGUMENT`, a broken Moonshot rule
    /// `MOONSHOT_ERR_INVALID_REQUEST`, an unknown or refused model
    /// `MOONSHOT_ERR_UNKNOWN_MODEL` / `MOONSHOT_ERR_MODEL_RETIRED`, a full
    /// queue `MOONSHOT_ERR_BUSY`.
    ///
    /// On `MOONSHOT_OK` the request handle is stored in `*out_request` before
    /// any callback of the request can run (a callback may read it from
    /// where the host stored it); free it with `release`. `on_done` then
    /// follows exactly once, even on error. On any other status
    /// `*out_request` is NULL, nothing was started, no callback will run,
    /// and the error JSON is stored in `*out_error`. Any thread, including
    /// from inside a callback.
    pub complete: unsafe extern "C" fn(
        instance: *mut MoonshotInstance,
        request_json: *const c_char,
        callbacks: *const MoonshotCallbacks,
        user_data: *mut c_void,
        out_request: *mut *mut MoonshotRequest,
        out_error: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Asks the request to stop and returns at once; it ends promptly with
    /// `MOONSHOT_ERR_CANCELLED` (a queued request without waiting for a
    /// thread), its `on_done` carrying `partial` when part of the answer had
    /// arrived. Returns `MOONSHOT_OK`, also when the request has already
    /// ended (it then changes nothing: its final status stays), and
    /// `MOONSHOT_ERR_INVALID_ARGUMENT` for NULL. Idempotent. Any thread,
    /// including from inside a callback.
    pub cancel: unsafe extern "C" fn(request: *const MoonshotRequest) -> MoonshotStatus,

    /// Blocks up to `timeout_ms` milliseconds (0: just looks) for the request
    /// to end, i.e. for its `on_done` to have returned. Returns
    /// `MOONSHOT_PENDING` if it has not, else the request's final status (the
    /// one `on_done` received), as often as asked. NULL returns
    /// `MOONSHOT_ERR_INVALID_ARGUMENT`. Any thread; on a pool thread (inside
    /// a callback) it never blocks: it returns the final status if that
    /// request's `on_done` has returned, else `MOONSHOT_ERR_INVALID_ARGUMENT`
    /// at once.
    pub wait:
        unsafe extern "C" fn(request: *const MoonshotRequest, timeout_ms: u32) -> MoonshotStatus,

    /// Copies the request's final JSON (what `on_done` received: the result
    /// on `MOONSHOT_OK`, else the error details) into `*out_json` (free with
    /// `free_string`) and returns the final status; while the request runs,
    /// returns `MOONSHOT_PENDING` and stores NULL. Called from inside the
    /// request's own `on_done`, it already returns the final status and
    /// JSON. A NULL `request` or `out_json` returns
    /// `MOONSHOT_ERR_INVALID_ARGUMENT` (and stores NULL in a non-NULL
    /// `out_json`). Any thread, including from inside a callback.
    pub request_result: unsafe extern "C" fn(
        request: *const MoonshotRequest,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Frees a request handle. A request still running or queued is cancelled
    /// first; its `on_done` still comes (promptly, with
    /// `MOONSHOT_ERR_CANCELLED`), so `user_data` must stay valid until then.
    /// The handle must not be used after this call. NULL is ignored. Any
    /// thread, including from inside a callback (the request's own included),
    /// once per handle.
    pub release: unsafe extern "C" fn(request: *mut MoonshotRequest),

    /// Frees a string the plugin returned. NULL is ignored. Any thread.
    pub free_string: unsafe extern "C" fn(s: *mut c_char),

    /// (ABI 1.1; present when `struct_size` covers it.) The live model list:
    /// asks Moonshot's `GET /models` with the instance's key and compares it
    /// with the catalog on the instance's today. On `MOONSHOT_OK` stores
    /// `{"models":[{"id","verdict","upstream","catalog"}],"drift":bool}` in
    /// `*out_json`, where `verdict` is `"served_and_known"`,
    /// `"served_but_unknown"` (not in the catalog), `"served_but_not_expected"`
    /// (the catalog holds it retired or not yet released) or
    /// `"known_but_absent"` (served per the catalog, not listed upstream);
    /// `upstream` is Moonshot's item as given, `catalog` the catalog's view.
    ///
    /// Blocking: one HTTP request on the calling thread, no retry, bounded by
    /// the instance's `timeouts.total`. Any thread but a pool thread (not from
    /// inside a callback), concurrently with anything but `destroy`. On error
    /// (`MOONSHOT_ERR_UPSTREAM` for a refused key, `MOONSHOT_ERR_TRANSPORT`,
    /// `MOONSHOT_ERR_TIMEOUT`, `MOONSHOT_ERR_PROTOCOL`, ...) stores NULL in
    /// `*out_json` and the error JSON in `*out_error` when `out_error` is not
    /// NULL. Free both strings with `free_string`.
    pub live_models: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
        out_error: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// (ABI 1.1; present when `struct_size` covers it.) The account balance:
    /// asks Moonshot's `GET /users/me/balance` with the instance's key. On
    /// `MOONSHOT_OK` stores `{"currency","available_balance",
    /// "available_balance_ucents","voucher_balance","voucher_balance_ucents",
    /// "cash_balance","cash_balance_ucents"}` in `*out_json`: Moonshot's
    /// figures as it sent them (in units of `currency`, "USD" on
    /// api.moonshot.ai, "CNY" on api.moonshot.cn) and each as an integer of
    /// microcents (1 unit = 100,000,000; may be negative). Blocking, thread,
    /// errors and ownership as `live_models`.
    pub balance: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
        out_error: *mut *mut c_char,
    ) -> MoonshotStatus,
}

/// The plugin's entry, as a type: what `dlsym("moonshot_get_api")` yields.
pub type MoonshotGetApi =
    unsafe extern "C" fn(abi_major: u32, host_abi_minor: u32) -> *const MoonshotApi;

/// The name of the exported entry symbol, NUL-terminated for `dlsym`.
pub const MOONSHOT_ENTRY_SYMBOL: &[u8] = b"moonshot_get_api\0";

/// The same table, exported a second time as an abi_stable root module, so a
/// Rust host can have abi_stable check the whole layout (this struct, the
/// table and the callbacks) when it loads the library, before any call.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = MoonshotModuleRef)))]
#[sabi(missing_field(panic))]
pub struct MoonshotModule {
    /// Same function as the C entry `moonshot_get_api`.
    #[sabi(last_prefix_field)]
    pub get_api: unsafe extern "C" fn(abi_major: u32, host_abi_minor: u32) -> *const MoonshotApi,
}

impl RootModule for MoonshotModuleRef {
    declare_root_module_statics! {MoonshotModuleRef}
    const BASE_NAME: &'static str = "moonshot_provider";
    const NAME: &'static str = "moonshot_provider";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
