//! Datasets for image-level anomaly detection, as they lie on disk.
//!
//! This crate knows files and pixels, nothing of networks:
//! - [`layout`] finds the images of an MVTec-style category and pairs masks with images;
//! - [`dataset`] knows the kinds (MVTec AD, InsPLAD-fault, generic folders such as the
//!   Semiconductor Wafer set or ELPV) and validates them ([`check`], [`load`]);
//! - [`decode`] decodes images with errors that name the file;
//! - [`transforms`] applies DifferNet's transforms (byte-exact with torchvision/Pillow);
//! - [`loader`] decodes and transforms ahead of the backbone, in parallel;
//! - [`make()`] writes datasets: real ELPV cells from PyPI ([`elpv`]), the generated stand-ins
//!   ([`synth`]) and the smoke set ([`smoke`]);
//! - [`stats`] holds the global-statistics guard of the stand-ins.
//!
//! Output images are plain `f32` CHW buffers; the runner turns them into tensors.

pub mod dataset;
pub mod decode;
pub mod elpv;
pub mod error;
pub mod layout;
pub mod loader;
pub mod make;
pub mod smoke;
pub mod staging;
pub mod stats;
pub mod synth;
pub mod transforms;

pub use dataset::{
    CategoryReport, CheckOptions, CheckReport, DatasetKind, check, check_with, load, load_with,
};
pub use error::DatasetError;
pub use layout::{CategoryData, Sample};
pub use make::{MadeCategory, MakeKind, MakeOptions, MakeReport, make};
