//! The benchmark behind `make bench` (not part of the test suite).
//!
//! One invocation starts a fast local upstream in a child process
//! ([`server`]), then runs each client kind in a child process of its own
//! against it, so every CPU and memory figure belongs to that client alone:
//! the wire and decode floors ([`floors`]), the plugin through its C ABI
//! ([`plugin_client`]), the openai npm package (tests/bench/openai-node) and
//! bindings/node through koffi ([`node_koffi`]).
//! [`run`] drives it all and prints the table; [`plugin_client::scale`]
//! holds 1,000 streams open against the paced upstream; [`profile`] runs
//! perf and callgrind on the plugin client (`--profile`).

pub mod canned_stream;
pub mod figures;
pub mod floors;
pub mod node_koffi;
pub mod plugin_client;
pub mod procstat;
pub mod profile;
pub mod run;
pub mod server;
