//! The experiment runner behind the `adn` binary.
//!
//! It composes the other crates — datasets, backbones, flows, metrics — into one run:
//! a resolved config in, a run record folder out, written through `adn_record`
//! (`config.toml`, `manifest.json`, `metrics.json`, `scores.csv`, `model.safetensors`).
//! Tables and figures are made elsewhere (the report crate, driven by xtask) from those
//! records.
//!
//! Two layers:
//! - [`pipeline`]: the stages of a run (data, features, train, score, localize, recording)
//!   and a trained model's loading and explanation; no command-line arguments;
//! - [`commands`]: one module per subcommand, each parsing its arguments, calling the
//!   pipeline and printing.
//!
//! Beside them: [`config`] (what the user asked: TOML + `--set`), [`device`], and the
//! process's [`errors`], [`logging`], [`memory`] and [`progress`].

pub mod commands;
pub mod config;
pub mod device;
pub mod errors;
pub mod logging;
pub mod memory;
pub mod pipeline;
pub mod progress;

pub use config::Config;
pub use device::DeviceChoice;
pub use pipeline::{RunOptions, RunOutcome, run};
