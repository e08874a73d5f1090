//! The committed header must be exactly what the pinned cbindgen generates
//! from the ABI sources today. Fix a failure with `make header`.

use moonshot_tests::header::{generate_header, header_path};

#[test]
fn committed_header_matches_a_fresh_generation() {
    let committed =
        std::fs::read_to_string(header_path()).expect("include/moonshot_provider.h exists");
    let fresh = generate_header();
    if committed != fresh {
        let first_difference = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()) + 1);
        panic!(
            "include/moonshot_provider.h is stale (first difference at line {first_difference}); run `make header`"
        );
    }
}

#[test]
fn header_has_cpp_guards_and_the_entry() {
    let header = generate_header();
    assert!(header.contains("#ifdef __cplusplus\nextern \"C\" {"));
    assert!(header.contains(
        "const struct MoonshotApi *moonshot_get_api(uint32_t abi_major, uint32_t host_abi_minor);"
    ));
    assert!(header.contains("typedef const struct MoonshotApi *(*MoonshotGetApi)(uint32_t abi_major, uint32_t host_abi_minor);"));
}
