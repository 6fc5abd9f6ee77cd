//! Reports of an experiment, from its folder alone (`results/<experiment>/`): `runs.parquet`
//! gathering every run record, the tables (polars; Parquet, CSV, Markdown, LaTeX) and the
//! figures (plotters; PNG and SVG) and a static HTML page that shows them all (minijinja).
//!
//! No tensor library here: everything is read back from what `adn run` and `adn sweep`
//! wrote (`plan.json`, and per run `manifest.json`, `metrics.json`, `scores.csv`), so
//! tables can be regenerated anywhere, for finished and half-finished sweeps alike.

pub mod figures;
pub mod gather;
pub mod page;
pub mod published;
pub mod tables;

pub use gather::{Experiment, Status, gather};
pub use published::Published;
pub use tables::{Metric, write_tables};
