//! Datasets for image-level anomaly detection, as they lie on disk.
//!
//! This crate knows files and pixels, nothing of networks:
//! - [`layout`] finds the images of an MVTec-style category and pairs masks with images;
//! - [`dataset`] knows the kinds (MVTec AD, InsPLAD-fault, generic folders such as the
//!   Semiconductor Wafer set or ELPV) and validates them ([`check`], [`load`]);
//! - [`decode`] decodes images with errors that name the file;
//! - [`transforms`] applies DifferNet's transforms (byte-exact with torchvision/Pillow);
//! - [`loader`] decodes and transforms ahead of the backbone, in parallel.
//!
//! Output images are plain `f32` CHW buffers; the runner turns them into tensors. Writing
//! datasets (ELPV from PyPI, the generated stand-ins, the smoke set) is `adn-datagen`'s job,
//! so this reader stays small and free of zip and pip.

pub mod dataset;
pub mod decode;
pub mod error;
pub mod layout;
pub mod loader;
pub mod transforms;

pub use dataset::{
    CategoryReport, CheckOptions, CheckReport, DatasetKind, check, check_with, load, load_with,
};
pub use error::DatasetError;
pub use layout::{CategoryData, Sample};
