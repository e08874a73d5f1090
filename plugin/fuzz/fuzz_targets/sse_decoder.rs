//! See `moonshot_provider_fuzz::check_sse` (tests/src/fuzz_checks.rs) for the input's
//! layout and the invariants checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| moonshot_provider_fuzz::check_sse(data));
