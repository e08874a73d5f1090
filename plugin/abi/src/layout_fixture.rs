//! Test fixture, not part of the ABI: the table as it would be if `wait`
//! took a 64-bit timeout, everything else a faithful copy. It lives in this
//! crate because abi_stable compares type names and their package, so only
//! a `moonshot-abi` type can show that the *layout* check refuses a host.
#![allow(missing_docs)]

use std::ffi::{c_char, c_void};

use abi_stable::{
    declare_root_module_statics, library::RootModule, package_version_strings,
    sabi_types::VersionStrings, StableAbi,
};

use crate::{MoonshotCallbacks, MoonshotInstance, MoonshotRequest, MoonshotStatus};

#[repr(C)]
#[derive(StableAbi)]
pub struct MoonshotApi {
    pub struct_size: usize,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub plugin_name: *const c_char,
    pub plugin_version: *const c_char,
    pub create: unsafe extern "C" fn(
        *const c_char,
        *mut *mut MoonshotInstance,
        *mut *mut c_char,
    ) -> MoonshotStatus,
    pub destroy: unsafe extern "C" fn(*mut MoonshotInstance),
    pub models: unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    pub list: unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    pub default_model:
        unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    pub reported_costs:
        unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    pub complete: unsafe extern "C" fn(
        *mut MoonshotInstance,
        *const c_char,
        *const MoonshotCallbacks,
        *mut c_void,
        *mut *mut MoonshotRequest,
        *mut *mut c_char,
    ) -> MoonshotStatus,
    pub cancel: unsafe extern "C" fn(*const MoonshotRequest) -> MoonshotStatus,
    /// The one difference: u64 where the plugin has u32.
    pub wait: unsafe extern "C" fn(*const MoonshotRequest, u64) -> MoonshotStatus,
    pub request_result:
        unsafe extern "C" fn(*const MoonshotRequest, *mut *mut c_char) -> MoonshotStatus,
    pub release: unsafe extern "C" fn(*mut MoonshotRequest),
    pub free_string: unsafe extern "C" fn(*mut c_char),
    pub live_models: unsafe extern "C" fn(
        *const MoonshotInstance,
        *mut *mut c_char,
        *mut *mut c_char,
    ) -> MoonshotStatus,
    pub balance: unsafe extern "C" fn(
        *const MoonshotInstance,
        *mut *mut c_char,
        *mut *mut c_char,
    ) -> MoonshotStatus,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = MoonshotModuleRef)))]
#[sabi(missing_field(panic))]
pub struct MoonshotModule {
    #[sabi(last_prefix_field)]
    pub get_api: unsafe extern "C" fn(u32, u32) -> *const MoonshotApi,
}

impl RootModule for MoonshotModuleRef {
    declare_root_module_statics! {MoonshotModuleRef}
    const BASE_NAME: &'static str = "moonshot_provider";
    const NAME: &'static str = "moonshot_provider";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
