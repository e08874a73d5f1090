//! Moonshot AI (Kimi) chat provider, shipped as a cdylib with a versioned C
//! ABI (see `include/moonshot_provider.h`, generated from `moonshot-abi`).
//!
//! Everything but `ffi` is plain, safe Rust and testable without the ABI:
//! the catalog, request conversion, SSE decoding, stream translation,
//! metering, the HTTP client and the thread pool.
#![deny(unsafe_code)]
// Inside `ffi`, every unsafe operation sits in its own block with its reason.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod admission;
mod cancel;
mod catalog;
mod client;
mod date;
#[allow(unsafe_code)]
mod ffi;
mod fields;
mod instance;
mod job;
mod live;
mod media;
mod messages;
mod metering;
mod pool;
mod proxy;
mod public_net;
mod redact;
mod stack;
mod thinking;
mod tls;
mod tools;

// Public for the fuzz targets (plugin/fuzz, through tests/src/fuzz_checks.rs)
// and the fuzz seed tests only: not an API. Hosts use the C ABI.
#[doc(hidden)]
pub mod config;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod request;
#[doc(hidden)]
pub mod sse;
#[doc(hidden)]
pub mod stream;

pub use ffi::entry::moonshot_get_api;
