//! ABI 1.1: the two blocking queries of the live service, `live_models` and
//! `balance`. The logic lives in `crate::live`; this is pointer handling only.

use std::ffi::c_char;

use moonshot_abi::{MoonshotInstance, MoonshotStatus, MOONSHOT_OK};
use serde_json::Value;

use super::handle::to_ref;
use super::{fail, give_string, guarded, store};
use crate::error::ProviderError;
use crate::instance::Instance;

/// Shared body of the two queries.
///
/// SAFETY: `instance` is NULL or from `create` and not being destroyed;
/// `out_json` and `out_error` are NULL or valid for one pointer write.
unsafe fn ask(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
    question: fn(&Instance) -> Result<Value, ProviderError>,
) -> MoonshotStatus {
    guarded(|| {
        // SAFETY: both are NULL or writable (this function's contract).
        unsafe {
            store(out_json, std::ptr::null_mut());
            store(out_error, std::ptr::null_mut());
        }
        if out_json.is_null() {
            // SAFETY: as above.
            return unsafe {
                fail(
                    out_error,
                    ProviderError::invalid_argument("out_json is NULL"),
                )
            };
        }
        // SAFETY: a non-NULL instance comes from `create` and is not being
        // destroyed (contract above).
        let Some(instance) = (unsafe { to_ref(instance) }) else {
            // SAFETY: as above.
            return unsafe {
                fail(
                    out_error,
                    ProviderError::invalid_argument("instance is NULL"),
                )
            };
        };
        match question(instance) {
            Ok(answer) => {
                // SAFETY: out_json is non-NULL and writable.
                unsafe { give_string(out_json, answer.to_string()) };
                MOONSHOT_OK
            }
            // SAFETY: as above.
            Err(err) => unsafe { fail(out_error, instance.redact(err)) },
        }
    })
}

pub(super) unsafe extern "C" fn live_models(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> MoonshotStatus {
    // SAFETY: the header's contract for `live_models` is `ask`'s.
    unsafe { ask(instance, out_json, out_error, Instance::live_models) }
}

pub(super) unsafe extern "C" fn balance(
    instance: *const MoonshotInstance,
    out_json: *mut *mut c_char,
    out_error: *mut *mut c_char,
) -> MoonshotStatus {
    // SAFETY: the header's contract for `balance` is `ask`'s.
    unsafe { ask(instance, out_json, out_error, Instance::balance) }
}
