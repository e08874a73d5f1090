//! The demo host's reusable parts: loading the plugin through its C ABI
//! (also used by the integration tests) and Puter-style registration.

pub mod doctor;
pub mod plugin;
pub mod registry;
