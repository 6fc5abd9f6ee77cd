//! The `adn` subcommands that only call into another crate or print a summary; each module
//! holds its arguments and its `command`. The subcommands with more behind them (`run`,
//! `eval`, `explain`, `bench`, `sweep`) keep theirs in their own modules.

pub mod data;
pub mod extract;
pub mod metrics;
pub mod model;
pub mod weights;
