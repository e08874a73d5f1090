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
/// has an `out_error` parameter or an `on_done` callback.
pub type MoonshotStatus = i32;

/// Success.
pub const MOONSHOT_OK: MoonshotStatus = 0;
/// `wait` or `request_result`: the request has not finished yet.
pub const MOONSHOT_PENDING: MoonshotStatus = 1;
/// A NULL pointer, text that is not UTF-8, malformed JSON or a wrong type.
pub const MOONSHOT_ERR_INVALID_ARGUMENT: MoonshotStatus = 2;
/// The request breaks one of Moonshot's rules; refused before anything was sent.
pub const MOONSHOT_ERR_INVALID_REQUEST: MoonshotStatus = 3;
/// The model is not in the catalog.
pub const MOONSHOT_ERR_UNKNOWN_MODEL: MoonshotStatus = 4;
/// The model is retired and the instance is configured not to migrate.
pub const MOONSHOT_ERR_MODEL_RETIRED: MoonshotStatus = 5;
/// Moonshot answered with an error (see `http_status` and `code`).
pub const MOONSHOT_ERR_UPSTREAM: MoonshotStatus = 6;
/// Moonshot's answer could not be understood (malformed JSON or stream).
pub const MOONSHOT_ERR_PROTOCOL: MoonshotStatus = 7;
/// The connection failed or was cut.
pub const MOONSHOT_ERR_TRANSPORT: MoonshotStatus = 8;
/// A configured timeout ran out (the details name which one).
pub const MOONSHOT_ERR_TIMEOUT: MoonshotStatus = 9;
/// Cancelled by `cancel`, by a callback returning `MOONSHOT_STOP`, or by
/// `destroy`.
pub const MOONSHOT_ERR_CANCELLED: MoonshotStatus = 10;
/// The instance's pool and queue are full; nothing was started. Try later.
pub const MOONSHOT_ERR_BUSY: MoonshotStatus = 11;
/// A bug inside the plugin (a caught panic). The instance keeps serving.
pub const MOONSHOT_ERR_INTERNAL: MoonshotStatus = 12;

/// What a stream callback returns.
pub type MoonshotFlow = i32;
/// Go on streaming.
pub const MOONSHOT_CONTINUE: MoonshotFlow = 0;
/// Cancel the request; `on_done` follows with `MOONSHOT_ERR_CANCELLED`.
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
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct MoonshotCallbacks {
    /// `sizeof(MoonshotCallbacks)` as the host knows it; fields beyond it are
    /// treated as NULL. 0 (never set) makes `complete` fail with
    /// `MOONSHOT_ERR_INVALID_ARGUMENT`.
    pub struct_size: usize,
    /// Called once for each stream part, in order, with one UTF-8 JSON object in
    /// Puter's NDJSON vocabulary: `{"type":"text","text"}`,
    /// `{"type":"reasoning","reasoning"}`, `{"type":"tool_use","id","name","input"}`,
    /// `{"type":"usage","usage"}`.
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
    /// Called exactly once when a request ends, after its last `on_chunk`.
    ///
    /// On `MOONSHOT_OK`, `result_json` is Puter's IChatMessageResult
    /// `{"message","finish_reason","usage",...}`. On any error it is the error
    /// details `{"code","message","http_status","retryable","request_id"}` plus
    /// `"partial"`, the result as far as it got, when anything was received.
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

/// The plugin's function table, returned by `moonshot_get_api`. Static: valid
/// until the library is unloaded (hosts should never unload it). It only grows
/// at its end: read a field only when `struct_size` covers it.
///
/// Strings the plugin returns through an `out_*` `char **` are NUL-terminated
/// UTF-8, owned by the caller, and must be freed with `free_string` (never
/// with `free`). On failure the plugin stores NULL there.
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

    /// Makes an instance from Puter's provider block as UTF-8 JSON, e.g.
    /// `{"apiKey":"sk-..."}` (or `secret_key` / `key`), plus optional
    /// `base_url`, `timeouts` (`connect_ms`, `first_byte_ms`, `idle_ms`,
    /// `total_ms`), `retries` (`max`, `base_delay_ms`, `max_delay_ms`),
    /// `max_concurrency`, `max_queue`, `max_request_bytes`, `web_search`
    /// (`fee_ucents`, `max_rounds`), `retired_models` ("migrate" | "error")
    /// and `today` ("YYYY-MM-DD", for tests). Unknown fields are ignored.
    /// Starts no thread.
    ///
    /// `config_json` is borrowed for the call. On success stores the instance
    /// in `*out_instance` (free it with `destroy`). On error stores the error
    /// JSON in `*out_error` when `out_error` is not NULL (free it with
    /// `free_string`). Any thread.
    pub create: unsafe extern "C" fn(
        config_json: *const c_char,
        out_instance: *mut *mut MoonshotInstance,
        out_error: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Cancels every request of the instance, waits until each has delivered
    /// `on_done`, joins every thread the instance started, and frees it.
    /// Request handles stay valid until `release`. NULL is ignored. Any thread;
    /// called from inside a callback it cannot join the thread it runs on,
    /// which then ends by itself once that callback returns.
    pub destroy: unsafe extern "C" fn(instance: *mut MoonshotInstance),

    /// Puter's `models()`: a JSON array of IChatModel objects for the models
    /// served today. Stores a string in `*out_json` (free with
    /// `free_string`). Any thread, concurrently with anything but `destroy`.
    pub models: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Puter's `list()`: a JSON array of the ids and aliases served today.
    /// Ownership and thread as `models`.
    pub list: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Puter's `getDefaultModel()`: a JSON string, e.g. `"kimi-k2.6"`.
    /// Ownership and thread as `models`.
    pub default_model: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Puter's `getReportedCosts()`: a JSON array of
    /// `{"usageType","ucentsPerUnit","unit","source"}` rows. Ownership and
    /// thread as `models`.
    pub reported_costs: unsafe extern "C" fn(
        instance: *const MoonshotInstance,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Starts a chat completion and returns at once. `request_json` is Puter's
    /// ICompleteArguments (`{"messages","model","stream","tools",...}`),
    /// borrowed for the call; `callbacks` is copied (may be NULL);
    /// `user_data` is passed back to the callbacks untouched and must stay
    /// valid until `on_done` has returned (or, without `on_done`, until
    /// `wait` reports the end).
    ///
    /// On `MOONSHOT_OK` stores the request handle in `*out_request` (free it
    /// with `release`) before any callback of the request can run, so a
    /// callback may read it there; `on_done` then follows exactly once, even
    /// on error.
    /// On any other status nothing was started, no callback will run, and the
    /// error JSON is stored in `*out_error` when `out_error` is not NULL.
    /// Any thread, including from inside a callback.
    pub complete: unsafe extern "C" fn(
        instance: *mut MoonshotInstance,
        request_json: *const c_char,
        callbacks: *const MoonshotCallbacks,
        user_data: *mut c_void,
        out_request: *mut *mut MoonshotRequest,
        out_error: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Asks the request to stop; it ends promptly with
    /// `MOONSHOT_ERR_CANCELLED` unless it already finished, a request still
    /// queued for a pool thread included (its `on_done` comes at once, from
    /// a thread of the plugin). Idempotent.
    /// Any thread, including from inside a callback.
    pub cancel: unsafe extern "C" fn(request: *const MoonshotRequest) -> MoonshotStatus,

    /// Blocks up to `timeout_ms` milliseconds for the request to end (after
    /// its `on_done` returned). Returns `MOONSHOT_PENDING` if it has not, else
    /// the request's final status. Any thread; on a pool thread (inside a
    /// callback) it never blocks: it returns the final status if `on_done`
    /// has returned, else `MOONSHOT_ERR_INVALID_ARGUMENT` at once.
    pub wait:
        unsafe extern "C" fn(request: *const MoonshotRequest, timeout_ms: u32) -> MoonshotStatus,

    /// Copies the request's final JSON (what `on_done` received) into
    /// `*out_json` (free with `free_string`) and returns the final status, or
    /// returns `MOONSHOT_PENDING` and stores NULL while it runs. The final
    /// JSON is there from the moment `on_done` is called (inside it too).
    /// A NULL `out_json` returns `MOONSHOT_ERR_INVALID_ARGUMENT`. Any thread.
    pub request_result: unsafe extern "C" fn(
        request: *const MoonshotRequest,
        out_json: *mut *mut c_char,
    ) -> MoonshotStatus,

    /// Frees a request handle. A request still running is cancelled first; its
    /// `on_done` still comes. NULL is ignored. Any thread, once per handle.
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
