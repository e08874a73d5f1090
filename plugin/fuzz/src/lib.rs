//! The fuzz targets' invariants. They live in the test crate, which runs
//! every committed seed through them on `make test`; included here by path
//! so both run exactly the same checks.

#[path = "../../../tests/src/fuzz_checks.rs"]
mod fuzz_checks;

pub use fuzz_checks::*;
