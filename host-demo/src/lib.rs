//! The demo host's reusable parts: loading the plugin through its C ABI
//! (also used by the integration tests) and Puter-style registration.

// Unsafe code lives in the plugin loader only, each operation argued there.
#![deny(unsafe_code)]

pub mod doctor;
#[allow(unsafe_code)]
pub mod plugin;
pub mod registry;
