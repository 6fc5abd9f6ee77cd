//! CNN backbones with optional attention, and DifferNet's multi-scale pooled features.
//!
//! Builders follow tch-rs's `vision` style and torchvision's variable names, so a converted
//! torchvision state dict loads unchanged. The pretrained backbone lives in its own
//! `VarStore` and is always frozen; attention modules live in a second store so that the
//! runner decides whether they train ([`AttentionTraining`]).

pub mod alexnet;
pub mod attention;
pub mod backbone;
pub mod config;
pub mod cost;
pub mod efficientnet;
pub mod features;
pub mod gradcam;
pub mod init;
pub mod weights;

pub use backbone::{Backbone, Tap};
pub use config::{AttentionInit, AttentionKind, AttentionTraining, BackboneConfig, BackboneKind};
pub use features::{FeatureBlock, FeatureExtractor, GateStats, MemoryFormat, Precision};

/// Errors of building a backbone or loading its weights.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// A layer name that `key` (the setting that holds it) gives and the backbone lacks.
    #[error("{key}: {position:?} is not a layer of {backbone}; known: {known}")]
    UnknownPosition {
        key: &'static str,
        position: String,
        backbone: &'static str,
        known: String,
    },
    #[error("cannot load backbone weights from {path}: {reason}")]
    Weights { path: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
