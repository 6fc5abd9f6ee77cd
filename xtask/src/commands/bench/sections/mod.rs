//! The measurements of `cargo xtask bench`, one function per section; each adds its rows to
//! the sheet and its raw numbers beside them.

use serde_json::Value;

mod families;
mod line;
mod profiles;
mod runs;
mod speed;

pub use families::families;
pub use line::line;
pub use profiles::{profile, profile_alexnet};
pub use runs::{accuracy, full_runs};
pub use speed::{ExtractionCase, Peak, extraction, flow, scoring};

/// What the sections produce: the table's rows and the raw JSON of every measurement.
#[derive(Default)]
pub struct Sheet {
    pub rows: Vec<Vec<String>>,
    pub raw: serde_json::Map<String, Value>,
    /// Further Markdown sections, after the measurements.
    pub sections: Vec<String>,
}

/// The median; NaN for no values (a peer that did not run).
fn median(mut r: Vec<f64>) -> f64 {
    r.sort_by(f64::total_cmp);
    r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
}
