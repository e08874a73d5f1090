//! The library's exported symbols: the C entry and the abi_stable root
//! module. cbindgen reads this file (with `moonshot-abi`) to write the header.

use moonshot_abi::{MoonshotApi, MoonshotModule, MoonshotModuleRef, MOONSHOT_ABI_MAJOR};

/// The plugin's one entry point. Returns the static function table when the
/// plugin serves `abi_major`, else NULL. `host_abi_minor` is the minor the
/// host was built against (informational: the table's `abi_minor` and
/// `struct_size` say what it provides). Never NULL for `MOONSHOT_ABI_MAJOR`.
/// Starts nothing. Any thread.
#[no_mangle]
pub extern "C" fn moonshot_get_api(abi_major: u32, host_abi_minor: u32) -> *const MoonshotApi {
    let _ = host_abi_minor;
    if abi_major != MOONSHOT_ABI_MAJOR {
        return std::ptr::null();
    }
    super::table()
}

unsafe extern "C" fn get_api_for_rust_hosts(
    abi_major: u32,
    host_abi_minor: u32,
) -> *const MoonshotApi {
    moonshot_get_api(abi_major, host_abi_minor)
}

/// abi_stable's root module: the same table behind abi_stable's load-time
/// layout check, for Rust hosts.
#[abi_stable::export_root_module]
fn root_module() -> MoonshotModuleRef {
    use abi_stable::prefix_type::PrefixTypeTrait;
    MoonshotModule {
        get_api: get_api_for_rust_hosts,
    }
    .leak_into_prefix()
}
