//! Small helpers that several crates need and none owns.
//!
//! - [`hash`]: SHA-256 of a file;
//! - [`atomic`]: files and folders that appear whole or not at all (temporary sibling, then
//!   rename), so an interrupted write never leaves something that looks complete;
//! - [`lock`]: one owner at a time for an experiment, a run folder or a generated dataset
//!   (advisory file locks, released by the kernel when their process dies);
//! - [`python`]: the one rule that finds the project's Python (the venv with torch and pip);
//! - [`precision`]: the number format a run computes in (`fp32`, `bf16`), one type for
//!   every crate and the record;
//! - [`wheel`]: a pinned PyPI wheel downloaded once into a cache and checked against its
//!   SHA-256.
//!
//! This crate is a leaf: it knows nothing of tensors, datasets or runs, and it is the only
//! place where the project starts `pip`.

pub mod atomic;
pub mod hash;
pub mod lock;
pub mod precision;
pub mod python;
pub mod wheel;

pub use hash::sha256_file;
pub use precision::Precision;
