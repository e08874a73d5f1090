//! Shared helpers of the integration tests: the header generator, locating
//! and loading the built plugin, small ABI conveniences, and the JSON
//! Schemas every emitted JSON is validated against.

pub mod bench;
pub mod c_host;
pub mod fuzz_checks;
pub mod harness;
pub mod header;
pub mod kit;
pub mod plugin;
pub mod replay;
pub mod schemas;
pub mod serve;
