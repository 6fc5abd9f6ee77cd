//! The experiment runner behind the `adn` binary.
//!
//! It composes the other crates — datasets, backbones, flows, metrics — into one run:
//! a resolved config in, a run record folder out, written through `adn_record`
//! (`config.toml`, `manifest.json`, `metrics.json`, `scores.csv`, `model.safetensors`).
//! Tables and figures are made elsewhere (the report crate, driven by xtask) from those
//! records.
//!
//! One module per subcommand, each with its arguments and its `command`: [`run`] (the
//! stages of one run), [`eval`], [`explain`], [`bench`], [`sweep`], and the small ones in
//! [`commands`]. Shared by them: [`config`], [`extract`] (the one way images become
//! features), [`cache`], [`joint`] (jointly trained attention), [`localize`] (anomaly maps, pixel metrics), [`device`], [`logging`], [`progress`].

pub mod bench;
pub mod cache;
pub mod commands;
pub mod config;
pub mod device;
pub mod errors;
pub mod eval;
pub mod explain;
pub mod extract;
pub mod joint;
pub mod localize;
pub mod logging;
pub mod memory;
pub mod progress;
pub mod run;
pub mod sweep;

pub use config::Config;
pub use device::DeviceChoice;
pub use run::{RunOptions, RunOutcome, run};
