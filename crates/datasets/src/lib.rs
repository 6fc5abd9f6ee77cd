//! Datasets for image-level anomaly detection, as they lie on disk.
//!
//! This crate knows files and pixels, nothing of networks: it finds the images of an
//! MVTec-style category ([`layout`]), decodes them with errors that name the file
//! ([`decode`]), applies DifferNet's transforms ([`transforms`]) and generates seeded
//! stand-in datasets in the real layouts ([`smoke`]). Output images are plain `f32` CHW
//! buffers; the runner turns them into tensors.

pub mod decode;
pub mod error;
pub mod layout;
pub mod smoke;
pub mod transforms;

pub use error::DatasetError;
pub use layout::{CategoryData, Sample};
