//! A Rust host built against a different table layout is refused by
//! abi_stable when it loads the library, with an error naming the field that
//! differs. abi_stable checks the layout before it calls the plugin's
//! root-module function, so no plugin code runs for such a host.
//!
//! The host's view of the ABI is `moonshot_abi::layout_fixture`: the real
//! table except that `wait` takes a u64.

use abi_stable::library::{LibraryError, RootModule};
use moonshot_abi::layout_fixture::MoonshotModuleRef;

#[test]
fn a_host_with_another_layout_is_refused_before_any_call() {
    let path = moonshot_tests::plugin::plugin_path();
    match MoonshotModuleRef::load_from_file(&path) {
        Ok(_) => panic!("a mismatched layout was accepted"),
        Err(LibraryError::AbiInstability(details)) => {
            let text = details.to_string();
            assert!(
                text.contains("wait"),
                "the error names the field that differs:\n{text}"
            );
        }
        Err(other) => panic!("refused, but not for the layout: {other}"),
    }
}
