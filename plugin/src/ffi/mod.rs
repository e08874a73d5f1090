//! The C shim: the only module that touches raw pointers. Every function
//! catches panics inside its own body (a panic reaching `extern "C"` would
//! abort the host) and checks every pointer before use. Handles are cast in
//! `handle` only; error kinds become ABI statuses here only (`status_of`).

pub mod entry;
mod handle;
mod live;

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::{offset_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use moonshot_abi::{
    MoonshotApi, MoonshotCallbacks, MoonshotFlow, MoonshotInstance, MoonshotRequest,
    MoonshotStatus, MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR, MOONSHOT_ERR_BUSY,
    MOONSHOT_ERR_CANCELLED, MOONSHOT_ERR_INTERNAL, MOONSHOT_ERR_INVALID_ARGUMENT,
    MOONSHOT_ERR_INVALID_REQUEST, MOONSHOT_ERR_MODEL_RETIRED, MOONSHOT_ERR_PROTOCOL,
    MOONSHOT_ERR_TIMEOUT, MOONSHOT_ERR_TRANSPORT, MOONSHOT_ERR_UNKNOWN_MODEL,
    MOONSHOT_ERR_UPSTREAM, MOONSHOT_OK, MOONSHOT_PENDING, MOONSHOT_STOP,
};
use serde_json::Value;

use crate::error::{ErrorKind, ProviderError};
use crate::instance::{Callbacks, Ending, Instance, RequestState};
use crate::pool;
use crate::stream::Flow;

/// The table lives in a static; raw pointers are not `Sync`, but these point
/// at static, immutable strings.
struct StaticApi(MoonshotApi);
// SAFETY: every pointer in the table is to 'static, immutable data.
unsafe impl Sync for StaticApi {}

static API: StaticApi = StaticApi(MoonshotApi {
    struct_size: size_of::<MoonshotApi>(),
    abi_major: MOONSHOT_ABI_MAJOR,
    abi_minor: MOONSHOT_ABI_MINOR,
    plugin_name: c"moonshot".as_ptr(),
    plugin_version: concat!(env!("CARGO_PKG_VERSION"), "\0")
        .as_ptr()
        .cast::<c_char>(),
    create,
    destroy,
    models,
    list,
    default_model,
    reported_costs,
    complete,
    cancel,
    wait,
    request_result,
    release,
    free_string,
    live_models: live::live_models,
    balance: live::balance,
});

pub(crate) fn table() -> *const MoonshotApi {
    &API.0
}

/// The ABI status of an error kind, 1:1.
fn status_of(kind: ErrorKind) -> MoonshotStatus {
    match kind {
        ErrorKind::InvalidArgument => MOONSHOT_ERR_INVALID_ARGUMENT,
        ErrorKind::InvalidRequest => MOONSHOT_ERR_INVALID_REQUEST,
        ErrorKind::UnknownModel => MOONSHOT_ERR_UNKNOWN_MODEL,
        ErrorKind::ModelRetired => MOONSHOT_ERR_MODEL_RETIRED,
        ErrorKind::Upstream => MOONSHOT_ERR_UPSTREAM,
        ErrorKind::Protocol => MOONSHOT_ERR_PROTOCOL,
        ErrorKind::Transport => MOONSHOT_ERR_TRANSPORT,
        ErrorKind::Timeout => MOONSHOT_ERR_TIMEOUT,
        ErrorKind::Cancelled => MOONSHOT_ERR_CANCELLED,
        ErrorKind::Busy => MOONSHOT_ERR_BUSY,
        ErrorKind::Internal => MOONSHOT_ERR_INTERNAL,
    }
}

fn ending_status(ending: Ending) -> MoonshotStatus {
    ending.map_or_else(status_of, |()| MOONSHOT_OK)
}

/// Runs `body`, turning a panic into `MOONSHOT_ERR_INTERNAL`.
fn guarded(body: impl FnOnce() -> MoonshotStatus) -> MoonshotStatus {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(MOONSHOT_ERR_INTERNAL)
}

/// Borrows a NUL-terminated UTF-8 argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for 'a.
unsafe fn borrow_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, ProviderError> {
    if ptr.is_null() {
        return Err(ProviderError::invalid_argument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and NUL-terminated and live for 'a by the contract.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|e| {
        ProviderError::invalid_argument(format!(
            "{what} is not UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Stores `value` through an out pointer, if there is one.
///
/// # Safety
/// `out` is NULL or valid for one write of a `T`.
unsafe fn store<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the contract; `T` is a pointer
        // (Copy, nothing to drop in the old value).
        unsafe { out.write(value) };
    }
}

/// Hands a string to the caller (freed by `free_string`). JSON text never
/// holds a NUL byte (serde_json escapes it), so this cannot fail for it.
///
/// # Safety
/// As `store`.
unsafe fn give_string(out: *mut *mut c_char, text: String) {
    if out.is_null() {
        return;
    }
    let owned =
        CString::new(text).unwrap_or_else(|_| CString::from(c"\"internal error: NUL in output\""));
    // SAFETY: `out` is NULL-checked above and writable by the contract.
    unsafe { store(out, owned.into_raw()) };
}

/// Reports `err` through `out_error` and returns its status.
///
/// # Safety
/// As `store`.
unsafe fn fail(out_error: *mut *mut c_char, err: ProviderError) -> MoonshotStatus {
    let status = status_of(err.kind);
    // SAFETY: `out_error` is NULL or writable, by this function's contract.
    unsafe { give_string(out_error, err.to_json().to_string()) };
    status
}

unsafe extern "C" fn create(
    config_json: *const c_char,
    out_instance: *mut *mut MoonshotInstance,
    out_error: *mut *mut c_char,
) -> MoonshotStatus {
    guarded(|| {
        // SAFETY: the header asks for NULL or a pointer valid for one write
        // (so for every out pointer below).
        unsafe { store(out_error, std::ptr::null_mut()) };
        if out_instance.is_null() {
            let err = ProviderError::invalid_argument("out_instance is NULL");
            // SAFETY: as above.
            return unsafe { fail(out_error, err) };
        }
        // SAFETY: as above.
        unsafe { store(out_instance, std::ptr::null_mut()) };
        // SAFETY: the header asks for NULL or a NUL-terminated string that
        // lives for the call.
        let config = unsafe { borrow_str(config_json, "config_json") };
        match config.and_then(Instance::new) {
            Ok(instance) => {
                // SAFETY: as above.
                unsafe { store(out_instance, handle::to_box_ptr(instance)) };
                MOONSHOT_OK
            }
            // SAFETY: as above.
            Err(err) => unsafe { fail(out_error, err) },
        }
    })
}

unsafe extern "C" fn destroy(instance: *mut MoonshotInstance) {
    guarded(|| {
        // Dropping the instance cancels its requests and joins its pool.
        // SAFETY: the header asks for NULL or a handle from `create`,
        // destroyed once.
        unsafe { handle::free_box(instance) };
        MOONSHOT_OK
    });
}

/// Shared body of the four JSON queries.
///
/// # Safety
/// `instance` is NULL or a live handle from `create`; `out_json` is NULL or
/// valid for one write.
unsafe fn query(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
    answer: fn(&Instance) -> Value,
) -> MoonshotStatus {
    guarded(|| {
        // SAFETY: `instance` is NULL or live, by this function's contract.
        let instance = unsafe { handle::to_ref(instance) };
        match instance {
            Some(instance) if !out_json.is_null() => {
                // SAFETY: `out_json` is writable, by this function's contract.
                unsafe { give_string(out_json, answer(instance).to_string()) };
                MOONSHOT_OK
            }
            _ => {
                // SAFETY: as above.
                unsafe { store(out_json, std::ptr::null_mut()) };
                MOONSHOT_ERR_INVALID_ARGUMENT
            }
        }
    })
}

unsafe extern "C" fn models(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    // SAFETY: the header's contract for the queries is `query`'s.
    unsafe { query(instance, out_json, Instance::models) }
}

unsafe extern "C" fn list(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    // SAFETY: as in `models`.
    unsafe { query(instance, out_json, Instance::list) }
}

unsafe extern "C" fn default_model(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    // SAFETY: as in `models`.
    unsafe { query(instance, out_json, Instance::default_model) }
}

unsafe extern "C" fn reported_costs(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    // SAFETY: as in `models`.
    unsafe { query(instance, out_json, Instance::reported_costs) }
}

type OnChunk = unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> MoonshotFlow;
type OnDone = unsafe extern "C" fn(*mut c_void, MoonshotStatus, *const c_char, usize);

/// The host's callbacks, called from a pool thread.
struct HostCallbacks {
    on_chunk: Option<OnChunk>,
    on_done: Option<OnDone>,
    user_data: *mut c_void,
    /// Reused NUL-terminated copy of each part, so a part costs no allocation.
    buffer: Vec<u8>,
}

// SAFETY: the host promises (header: `complete`) that user_data may be used
// from the pool thread until on_done returns; the function pointers are plain code.
unsafe impl Send for HostCallbacks {}

impl HostCallbacks {
    /// Copies what the host's `struct_size` covers; the rest stays NULL. A
    /// `struct_size` of 0 is a host that forgot to set it: refused.
    ///
    /// # Safety
    /// `callbacks` is NULL or points to a readable `struct_size` followed by
    /// at least `struct_size` bytes in all.
    unsafe fn read(
        callbacks: *const MoonshotCallbacks,
        user_data: *mut c_void,
    ) -> Result<HostCallbacks, ProviderError> {
        let mut host = HostCallbacks {
            on_chunk: None,
            on_done: None,
            user_data,
            buffer: Vec::new(),
        };
        if callbacks.is_null() {
            return Ok(host);
        }
        // SAFETY: non-NULL; its first field is readable by the contract.
        let size = unsafe { std::ptr::addr_of!((*callbacks).struct_size).read() };
        if size == 0 {
            return Err(ProviderError::invalid_argument(
                "callbacks->struct_size is 0: set it to sizeof(MoonshotCallbacks)",
            ));
        }
        let covers = |offset: usize| size >= offset + size_of::<usize>();
        if covers(offset_of!(MoonshotCallbacks, on_chunk)) {
            // SAFETY: `struct_size` covers the field, so the host wrote it.
            host.on_chunk = unsafe { std::ptr::addr_of!((*callbacks).on_chunk).read() };
        }
        if covers(offset_of!(MoonshotCallbacks, on_done)) {
            // SAFETY: as above.
            host.on_done = unsafe { std::ptr::addr_of!((*callbacks).on_done).read() };
        }
        Ok(host)
    }

    fn terminated(&mut self, json: &str) -> *const c_char {
        self.buffer.clear();
        self.buffer.extend_from_slice(json.as_bytes());
        self.buffer.push(0);
        self.buffer.as_ptr().cast::<c_char>()
    }
}

impl Callbacks for HostCallbacks {
    fn on_part(&mut self, json: &str) -> Flow {
        let Some(on_chunk) = self.on_chunk else {
            return Flow::Continue;
        };
        let ptr = self.terminated(json);
        // SAFETY: the host gave this pointer and user_data for these calls;
        // ptr is NUL-terminated and lives until the call returns.
        let flow = unsafe { on_chunk(self.user_data, ptr, json.len()) };
        if flow == MOONSHOT_STOP {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn on_done(&mut self, ending: Ending, json: &CStr) {
        let Some(on_done) = self.on_done else { return };
        // The parts' buffer is not needed any more: give it back first.
        self.buffer = Vec::new();
        // SAFETY: as in on_part; `json` is NUL-terminated and outlives the call.
        unsafe {
            on_done(
                self.user_data,
                ending_status(ending),
                json.as_ptr(),
                json.to_bytes().len(),
            )
        }
    }
}

unsafe extern "C" fn complete(
    instance: *mut MoonshotInstance,
    request_json: *const c_char,
    callbacks: *const MoonshotCallbacks,
    user_data: *mut c_void,
    out_request: *mut *mut MoonshotRequest,
    out_error: *mut *mut c_char,
) -> MoonshotStatus {
    guarded(|| {
        // SAFETY: the header asks for NULL or a pointer valid for one write
        // (so for every out pointer below).
        unsafe { store(out_error, std::ptr::null_mut()) };
        if out_request.is_null() {
            let err = ProviderError::invalid_argument("out_request is NULL");
            // SAFETY: as above.
            return unsafe { fail(out_error, err) };
        }
        // SAFETY: as above.
        unsafe { store(out_request, std::ptr::null_mut()) };
        // SAFETY: the header asks for NULL or a live handle from `create`.
        let Some(instance) = (unsafe { handle::to_ref(instance) }) else {
            let err = ProviderError::invalid_argument("instance is NULL");
            // SAFETY: as above.
            return unsafe { fail(out_error, err) };
        };
        // SAFETY: the header asks for NULL or a string that lives for the call.
        let request = match unsafe { borrow_str(request_json, "request_json") } {
            Ok(text) => text,
            // SAFETY: as above.
            Err(err) => return unsafe { fail(out_error, err) },
        };
        // SAFETY: the header asks for NULL or a struct of `struct_size` bytes.
        let host = match unsafe { HostCallbacks::read(callbacks, user_data) } {
            Ok(host) => Box::new(host),
            // SAFETY: as above.
            Err(err) => return unsafe { fail(out_error, err) },
        };
        // The handle is stored before the job is queued, so a callback (on
        // a pool thread) that reads it sees it.
        let state = Arc::new(RequestState::default());
        let handle = handle::to_arc_ptr::<MoonshotRequest>(state.clone());
        // SAFETY: as above.
        unsafe { store(out_request, handle) };
        match instance.complete(request, host, state) {
            Ok(()) => MOONSHOT_OK,
            Err(err) => {
                // SAFETY: as above.
                unsafe { store(out_request, std::ptr::null_mut()) };
                // SAFETY: `handle` came from `to_arc_ptr` just above and was
                // never given out (the host sees NULL again).
                drop(unsafe { handle::take_arc(handle) });
                // SAFETY: as above.
                unsafe { fail(out_error, instance.redact(err)) }
            }
        }
    })
}

unsafe extern "C" fn cancel(request: *const MoonshotRequest) -> MoonshotStatus {
    // SAFETY: the header asks for NULL or a live handle from `complete`.
    guarded(|| match unsafe { handle::to_ref(request) } {
        Some(state) => {
            state.cancel();
            MOONSHOT_OK
        }
        None => MOONSHOT_ERR_INVALID_ARGUMENT,
    })
}

unsafe extern "C" fn wait(request: *const MoonshotRequest, timeout_ms: u32) -> MoonshotStatus {
    // SAFETY: the header asks for NULL or a live handle from `complete`.
    guarded(|| match unsafe { handle::to_ref(request) } {
        // On a pool thread, blocking could wait for this very thread: the
        // end is reported if it came, else the call is refused at once.
        Some(state) if pool::on_pool_thread() => match state.wait(Duration::ZERO) {
            Some((ending, _)) => ending_status(ending),
            None => MOONSHOT_ERR_INVALID_ARGUMENT,
        },
        Some(state) => match state.wait(Duration::from_millis(timeout_ms.into())) {
            Some((ending, _)) => ending_status(ending),
            None => MOONSHOT_PENDING,
        },
        None => MOONSHOT_ERR_INVALID_ARGUMENT,
    })
}

unsafe extern "C" fn request_result(
    request: *const MoonshotRequest,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    guarded(|| {
        if out_json.is_null() {
            return MOONSHOT_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: `out_json` is non-NULL and, by the header, writable.
        unsafe { store(out_json, std::ptr::null_mut()) };
        // SAFETY: the header asks for NULL or a live handle from `complete`.
        let Some(state) = (unsafe { handle::to_ref(request) }) else {
            return MOONSHOT_ERR_INVALID_ARGUMENT;
        };
        match state.outcome() {
            Some((ending, json)) => {
                // SAFETY: as above.
                unsafe { store(out_json, CString::clone(&json).into_raw()) };
                ending_status(ending)
            }
            None => MOONSHOT_PENDING,
        }
    })
}

unsafe extern "C" fn release(request: *mut MoonshotRequest) {
    guarded(|| {
        // SAFETY: the header asks for NULL or a handle from `complete`,
        // released once and not used afterwards.
        if let Some(state) = unsafe { handle::take_arc(request) } {
            if state.outcome().is_none() {
                state.cancel();
            }
        }
        MOONSHOT_OK
    });
}

unsafe extern "C" fn free_string(s: *mut c_char) {
    guarded(|| {
        if !s.is_null() {
            // SAFETY: the header asks for a string this plugin returned
            // (from `CString::into_raw`), freed once.
            drop(unsafe { CString::from_raw(s) });
        }
        MOONSHOT_OK
    });
}
