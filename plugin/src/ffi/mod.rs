//! The C shim: the only module that touches raw pointers. Every function
//! catches panics inside its own body (a panic reaching `extern "C"` would
//! abort the host) and checks every pointer before use.

pub mod entry;
mod live;

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::{offset_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use moonshot_abi::{
    MoonshotApi, MoonshotCallbacks, MoonshotFlow, MoonshotInstance, MoonshotRequest,
    MoonshotStatus, MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR, MOONSHOT_ERR_INTERNAL,
    MOONSHOT_ERR_INVALID_ARGUMENT, MOONSHOT_OK, MOONSHOT_PENDING, MOONSHOT_STOP,
};
use serde_json::Value;

use crate::error::ProviderError;
use crate::instance::{Callbacks, Instance, RequestState};
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
    plugin_version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char,
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

/// Runs `body`, turning a panic into `MOONSHOT_ERR_INTERNAL`.
fn guarded(body: impl FnOnce() -> MoonshotStatus) -> MoonshotStatus {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(MOONSHOT_ERR_INTERNAL)
}

/// Borrows a NUL-terminated UTF-8 argument.
///
/// SAFETY: `ptr` is NULL or points to a NUL-terminated string valid for 'a.
unsafe fn borrow_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, ProviderError> {
    if ptr.is_null() {
        return Err(ProviderError::invalid_argument(format!("{what} is NULL")));
    }
    CStr::from_ptr(ptr).to_str().map_err(|e| {
        ProviderError::invalid_argument(format!(
            "{what} is not UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Hands a string to the caller (freed by `free_string`). JSON text never
/// holds a NUL byte (serde_json escapes it), so this cannot fail for it.
///
/// SAFETY: `out` is NULL or valid for one pointer write.
unsafe fn give_string(out: *mut *mut c_char, text: String) {
    if out.is_null() {
        return;
    }
    let owned =
        CString::new(text).unwrap_or_else(|_| CString::from(c"\"internal error: NUL in output\""));
    *out = owned.into_raw();
}

/// Stores NULL in an out pointer, if there is one.
///
/// SAFETY: `out` is NULL or valid for one pointer write.
unsafe fn clear<T>(out: *mut *mut T) {
    if !out.is_null() {
        *out = std::ptr::null_mut();
    }
}

/// Reports `err` through `out_error` and returns its status.
///
/// SAFETY: as `give_string`.
unsafe fn fail(out_error: *mut *mut c_char, err: ProviderError) -> MoonshotStatus {
    give_string(out_error, err.to_json().to_string());
    err.status()
}

unsafe extern "C" fn create(
    config_json: *const c_char,
    out_instance: *mut *mut MoonshotInstance,
    out_error: *mut *mut c_char,
) -> MoonshotStatus {
    guarded(|| {
        clear(out_error);
        if out_instance.is_null() {
            return fail(
                out_error,
                ProviderError::invalid_argument("out_instance is NULL"),
            );
        }
        *out_instance = std::ptr::null_mut();
        let result = borrow_str(config_json, "config_json").and_then(Instance::new);
        match result {
            Ok(instance) => {
                *out_instance = Box::into_raw(Box::new(instance)) as *mut MoonshotInstance;
                MOONSHOT_OK
            }
            Err(err) => fail(out_error, err),
        }
    })
}

unsafe extern "C" fn destroy(instance: *mut MoonshotInstance) {
    guarded(|| {
        if !instance.is_null() {
            // Dropping the instance cancels its requests and joins its pool.
            drop(Box::from_raw(instance as *mut Instance));
        }
        MOONSHOT_OK
    });
}

/// Shared body of the four JSON queries.
///
/// SAFETY: `instance` is NULL or from `create`; `out_json` NULL or writable.
unsafe fn query(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
    answer: fn(&Instance) -> Value,
) -> MoonshotStatus {
    guarded(|| {
        if out_json.is_null() || instance.is_null() {
            clear(out_json);
            return MOONSHOT_ERR_INVALID_ARGUMENT;
        }
        let instance = &*(instance as *const Instance);
        give_string(out_json, answer(instance).to_string());
        MOONSHOT_OK
    })
}

unsafe extern "C" fn models(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    query(instance, out_json, Instance::models)
}

unsafe extern "C" fn list(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    query(instance, out_json, Instance::list)
}

unsafe extern "C" fn default_model(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    query(instance, out_json, Instance::default_model)
}

unsafe extern "C" fn reported_costs(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
) -> MoonshotStatus {
    query(instance, out_json, Instance::reported_costs)
}

/// The host's callbacks, called from a pool thread.
struct HostCallbacks {
    on_chunk: Option<unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> MoonshotFlow>,
    on_done: Option<unsafe extern "C" fn(*mut c_void, MoonshotStatus, *const c_char, usize)>,
    user_data: *mut c_void,
    /// Reused NUL-terminated copy of each part, so a part costs no allocation.
    buffer: Vec<u8>,
}

// SAFETY: the host promises (header: `complete`) that user_data may be used
// from the pool thread until on_done returns; the function pointers are plain code.
unsafe impl Send for HostCallbacks {}

impl HostCallbacks {
    /// Copies what the host's `struct_size` covers; the rest stays NULL.
    ///
    /// SAFETY: `callbacks` is NULL or points to at least `struct_size` bytes.
    unsafe fn read(callbacks: *const MoonshotCallbacks, user_data: *mut c_void) -> HostCallbacks {
        let mut host = HostCallbacks {
            on_chunk: None,
            on_done: None,
            user_data,
            buffer: Vec::new(),
        };
        if callbacks.is_null() {
            return host;
        }
        let size = std::ptr::addr_of!((*callbacks).struct_size).read();
        let covers = |offset: usize, field: usize| size >= offset + field;
        if covers(offset_of!(MoonshotCallbacks, on_chunk), size_of::<usize>()) {
            host.on_chunk = std::ptr::addr_of!((*callbacks).on_chunk).read();
        }
        if covers(offset_of!(MoonshotCallbacks, on_done), size_of::<usize>()) {
            host.on_done = std::ptr::addr_of!((*callbacks).on_done).read();
        }
        host
    }

    fn terminated(&mut self, json: &str) -> *const c_char {
        self.buffer.clear();
        self.buffer.extend_from_slice(json.as_bytes());
        self.buffer.push(0);
        self.buffer.as_ptr() as *const c_char
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

    fn on_done(&mut self, status: i32, json: &str) {
        let Some(on_done) = self.on_done else { return };
        let ptr = self.terminated(json);
        // SAFETY: as in on_part.
        unsafe { on_done(self.user_data, status, ptr, json.len()) }
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
        clear(out_error);
        if out_request.is_null() {
            return fail(
                out_error,
                ProviderError::invalid_argument("out_request is NULL"),
            );
        }
        *out_request = std::ptr::null_mut();
        if instance.is_null() {
            return fail(
                out_error,
                ProviderError::invalid_argument("instance is NULL"),
            );
        }
        let instance = &*(instance as *const Instance);
        let request = match borrow_str(request_json, "request_json") {
            Ok(text) => text,
            Err(err) => return fail(out_error, err),
        };
        let host = Box::new(HostCallbacks::read(callbacks, user_data));
        match instance.complete(request, host) {
            Ok(state) => {
                *out_request = Box::into_raw(Box::new(state)) as *mut MoonshotRequest;
                MOONSHOT_OK
            }
            Err(err) => fail(out_error, instance.redact(err)),
        }
    })
}

/// SAFETY: `request` is NULL or a live handle from `complete`.
unsafe fn request_state<'a>(request: *const MoonshotRequest) -> Option<&'a Arc<RequestState>> {
    (request as *const Arc<RequestState>).as_ref()
}

unsafe extern "C" fn cancel(request: *const MoonshotRequest) -> MoonshotStatus {
    guarded(|| match request_state(request) {
        Some(state) => {
            state.cancel();
            MOONSHOT_OK
        }
        None => MOONSHOT_ERR_INVALID_ARGUMENT,
    })
}

unsafe extern "C" fn wait(request: *const MoonshotRequest, timeout_ms: u32) -> MoonshotStatus {
    guarded(|| match request_state(request) {
        Some(state) => match state.wait(Duration::from_millis(timeout_ms.into())) {
            Some((status, _)) => status,
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
        clear(out_json);
        let Some(state) = request_state(request) else {
            return MOONSHOT_ERR_INVALID_ARGUMENT;
        };
        match state.outcome() {
            Some((status, json)) => {
                give_string(out_json, json.to_string());
                status
            }
            None => MOONSHOT_PENDING,
        }
    })
}

unsafe extern "C" fn release(request: *mut MoonshotRequest) {
    guarded(|| {
        if !request.is_null() {
            let state = Box::from_raw(request as *mut Arc<RequestState>);
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
            drop(CString::from_raw(s));
        }
        MOONSHOT_OK
    });
}
