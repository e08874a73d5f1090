//! ABI 1.1 grew the function table at its end: a host built for 1.0, which
//! knows only the 1.0 table (copied below, field for field) and reads
//! nothing past its own size, keeps working against this plugin.

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::{offset_of, size_of};
use std::time::{Duration, Instant};

use moonshot_abi::{
    MoonshotApi, MoonshotCallbacks, MoonshotGetApi, MoonshotInstance, MoonshotRequest,
    MoonshotStatus, MOONSHOT_ABI_MAJOR, MOONSHOT_ENTRY_SYMBOL, MOONSHOT_OK, MOONSHOT_PENDING,
};
use moonshot_simulator::Simulator;
use serde_json::{json, Value};

/// The table exactly as ABI 1.0 declared it.
#[repr(C)]
struct MoonshotApiV1_0 {
    struct_size: usize,
    abi_major: u32,
    abi_minor: u32,
    plugin_name: *const c_char,
    plugin_version: *const c_char,
    create: unsafe extern "C" fn(
        *const c_char,
        *mut *mut MoonshotInstance,
        *mut *mut c_char,
    ) -> MoonshotStatus,
    destroy: unsafe extern "C" fn(*mut MoonshotInstance),
    models: unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    list: unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    default_model:
        unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    reported_costs:
        unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    complete: unsafe extern "C" fn(
        *mut MoonshotInstance,
        *const c_char,
        *const MoonshotCallbacks,
        *mut c_void,
        *mut *mut MoonshotRequest,
        *mut *mut c_char,
    ) -> MoonshotStatus,
    cancel: unsafe extern "C" fn(*const MoonshotRequest) -> MoonshotStatus,
    wait: unsafe extern "C" fn(*const MoonshotRequest, u32) -> MoonshotStatus,
    request_result:
        unsafe extern "C" fn(*const MoonshotRequest, *mut *mut c_char) -> MoonshotStatus,
    release: unsafe extern "C" fn(*mut MoonshotRequest),
    free_string: unsafe extern "C" fn(*mut c_char),
}

fn take(api: &MoonshotApiV1_0, s: *mut c_char) -> String {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string();
    unsafe { (api.free_string)(s) };
    text
}

#[test]
fn the_table_grew_only_at_its_end() {
    assert_eq!(
        offset_of!(MoonshotApi, live_models),
        size_of::<MoonshotApiV1_0>(),
        "the 1.1 functions start where the 1.0 table ended"
    );
    assert_eq!(
        offset_of!(MoonshotApi, free_string),
        offset_of!(MoonshotApiV1_0, free_string)
    );
    assert_eq!(
        offset_of!(MoonshotApi, wait),
        offset_of!(MoonshotApiV1_0, wait)
    );
}

#[test]
fn a_host_built_for_1_0_runs_a_request_with_the_1_0_table() {
    let path = moonshot_tests::plugin::plugin_path();
    let library = unsafe { libloading::Library::new(&path) }.expect("dlopen");
    let entry: libloading::Symbol<MoonshotGetApi> =
        unsafe { library.get(MOONSHOT_ENTRY_SYMBOL) }.expect("entry");
    // The 1.0 host asks for minor 0 and reads the table through its own type.
    let raw = unsafe { entry(MOONSHOT_ABI_MAJOR, 0) };
    assert!(!raw.is_null());
    let api = unsafe { &*(raw as *const MoonshotApiV1_0) };
    assert_eq!((api.abi_major, api.abi_minor), (1, 1));
    assert!(
        api.struct_size > size_of::<MoonshotApiV1_0>(),
        "the plugin's table is larger than the 1.0 host's: it must only read its prefix"
    );

    let sim = Simulator::start().unwrap();
    let config = CString::new(
        json!({"apiKey": "sk-old-host", "base_url": sim.base_url(), "today": "2026-11-25"})
            .to_string(),
    )
    .unwrap();
    let mut instance = std::ptr::null_mut();
    let status = unsafe { (api.create)(config.as_ptr(), &mut instance, std::ptr::null_mut()) };
    assert_eq!(status, MOONSHOT_OK);

    let mut out = std::ptr::null_mut();
    assert_eq!(unsafe { (api.models)(instance, &mut out) }, MOONSHOT_OK);
    let models: Value = serde_json::from_str(&take(api, out)).unwrap();
    assert!(models
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "kimi-k2.6"));

    let request = CString::new(json!({"messages": "hello"}).to_string()).unwrap();
    let mut handle = std::ptr::null_mut();
    let status = unsafe {
        (api.complete)(
            instance,
            request.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            &mut handle,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, MOONSHOT_OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    let final_status = loop {
        match unsafe { (api.wait)(handle, 1_000) } {
            MOONSHOT_PENDING if Instant::now() < deadline => continue,
            other => break other,
        }
    };
    assert_eq!(final_status, MOONSHOT_OK);
    let mut result = std::ptr::null_mut();
    assert_eq!(
        unsafe { (api.request_result)(handle, &mut result) },
        MOONSHOT_OK
    );
    let result: Value = serde_json::from_str(&take(api, result)).unwrap();
    assert_eq!(result["message"]["role"], "assistant");
    unsafe {
        (api.release)(handle);
        (api.destroy)(instance);
    }
    std::mem::forget(library);
}
