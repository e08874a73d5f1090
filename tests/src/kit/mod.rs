//! The tests' common kit: where the workspace is, scratch directories,
//! child processes, and an HTTP client for well-behaved servers.
//!
//! Raw `TcpStream`s remain only where a test needs raw bytes or faults
//! (`serve::raw_http`, the bench's wire floor, the hostile and fault
//! tests): each says so where it opens one.

pub mod http;
pub mod process;
pub mod scratch;

use std::path::{Path, PathBuf};

pub use scratch::ScratchDir;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
