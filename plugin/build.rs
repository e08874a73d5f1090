//! Link options of the cdylib.

fn main() {
    // Never unmapped: a host that dlclose()s the library (koffi at exit, hot
    // reloaders) would otherwise leave Rust thread-local destructors and pool
    // threads pointing into unmapped code. `-z nodelete` makes dlclose a no-op
    // for this object, so unloading cannot crash the host.
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
