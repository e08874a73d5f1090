//! Moonshot AI (Kimi) chat provider, shipped as a cdylib with a versioned C
//! ABI (see `include/moonshot_provider.h`, generated from `moonshot-abi`).
//!
//! Everything but `ffi` is plain, safe Rust and testable without the ABI:
//! the catalog, request conversion, SSE decoding, stream translation,
//! metering, the HTTP client and the thread pool.
#![deny(unsafe_code)]

mod cancel;
pub mod catalog;
mod client;
pub mod config;
pub mod date;
pub mod error;
#[allow(unsafe_code)]
mod ffi;
pub mod instance;
mod job;
mod media;
pub mod messages;
pub mod metering;
mod pool;
pub mod proxy;
pub mod request;
#[doc(hidden)] // public for the fuzz targets only
pub mod sse;
pub mod stream;
pub mod thinking;
pub mod tls;
pub mod tools;

pub use ffi::entry::moonshot_get_api;
