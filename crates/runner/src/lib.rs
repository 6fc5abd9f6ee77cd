//! The experiment runner behind the `adn` binary.
//!
//! It composes the other crates — datasets, backbones, flows, metrics — into one run:
//! a resolved config in, a run record folder out (`config.toml`, `manifest.json`,
//! `metrics.json`, `scores.csv`, `model.safetensors`). Tables and figures are made
//! elsewhere (xtask) from those records.

pub mod bench;
pub mod cache;
pub mod config;
pub mod eval;
pub mod explain;
pub mod extract;
pub mod joint;
pub mod logging;
pub mod record;
pub mod run;
pub mod summary;
pub mod sweep;

pub use config::Config;
pub use run::{DeviceChoice, RunOptions, RunOutcome, run};
