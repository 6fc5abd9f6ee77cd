//! The `adn` subcommands, one module each with its clap arguments and its `command`. They
//! parse, call the [`crate::pipeline`], and print; none imports another.

pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod explain;
pub mod export;
pub mod extract;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod run;
pub mod sweep;
pub mod weights;
