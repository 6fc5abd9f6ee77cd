//! Writing datasets for anomaly detection in their real layouts, so that every experiment
//! can run here without downloading MVTec AD, InsPLAD-fault or the wafer set:
//!
//! - [`make()`] writes a dataset by kind, atomically ([`staging`]): never a half-written
//!   folder that looks complete, never over what is already there;
//! - [`elpv`]: real electroluminescence images of solar cells from the pinned PyPI wheel
//!   `elpv-dataset`, split MVTec-style per cell type;
//! - [`synth`]: the generated stand-ins in the layouts of MVTec AD, InsPLAD-fault and the
//!   wafer set, with defects that whole-image statistics cannot find ([`stats`] is the guard
//!   that checks it);
//! - [`smoke`]: a tiny MVTec-style set for tests and the first run.
//!
//! Reading datasets is `adn-datasets`' job; this crate writes what that one reads.

pub mod elpv;
pub mod make;
pub mod smoke;
pub mod staging;
pub mod stats;
pub mod synth;

pub use make::{MadeCategory, MakeKind, MakeOptions, MakeReport, make};
