//! A Rust host loading the plugin through abi_stable: the layout check
//! passes for the real ABI types, and the table behind the root module is
//! the very table the C entry returns.

use std::ffi::{c_char, CStr, CString};

use abi_stable::library::RootModule;
use moonshot_abi::{MoonshotModuleRef, MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR, MOONSHOT_OK};

#[test]
fn loads_with_the_layout_check_and_shares_the_c_table() {
    let path = moonshot_tests::plugin::plugin_path();
    let module =
        MoonshotModuleRef::load_from_file(&path).expect("abi_stable accepts the plugin's layout");
    let api = unsafe { &*(module.get_api())(MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR) };

    // The C path: the plain exported entry returns the same static table.
    let library = unsafe { libloading::Library::new(&path) }.expect("dlopen");
    let entry: libloading::Symbol<moonshot_abi::MoonshotGetApi> =
        unsafe { library.get(b"moonshot_get_api\0") }.expect("entry symbol");
    let c_table = unsafe { entry(MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR) };
    assert!(std::ptr::eq(api, c_table), "one table serves both paths");
    assert!(
        unsafe { (module.get_api())(2, 0) }.is_null(),
        "major 2 is refused"
    );

    let config = CString::new(r#"{"apiKey":"sk-rust-host"}"#).unwrap();
    let mut instance = std::ptr::null_mut();
    let status = unsafe { (api.create)(config.as_ptr(), &mut instance, std::ptr::null_mut()) };
    assert_eq!(status, MOONSHOT_OK);
    let mut out: *mut c_char = std::ptr::null_mut();
    assert_eq!(
        unsafe { (api.default_model)(instance, &mut out) },
        MOONSHOT_OK
    );
    assert_eq!(
        unsafe { CStr::from_ptr(out) }.to_str().unwrap(),
        "\"kimi-k2.6\""
    );
    unsafe {
        (api.free_string)(out);
        (api.destroy)(instance);
    }
}
