//! Shared helpers of the integration tests: the header generator, locating
//! and loading the built plugin, and small ABI conveniences.

pub mod bench;
pub mod c_host;
pub mod fuzz_checks;
pub mod harness;
pub mod header;
pub mod plugin;
pub mod serve;
