//! Jointly trained attention (`model.attention_training = "joint"`): the frozen prefix,
//! everything before the first attention position, is computed once per (image, rotation)
//! and kept in memory; every training step runs the attention blocks and the rest of the
//! backbone with autograd, so the attention learns from the flow's likelihood.
//!
//! Memory is the price: one prefix activation per row (e.g. 24 × 40 × 40 floats for
//! EfficientNet-Lite0 at 160 px after stage 2, about 150 kB). The run logs the total.

use adn_backbones::FeatureExtractor;
use adn_datasets::transforms::Normalization;
use adn_datasets::{Sample, loader};
use anyhow::Result;
use indicatif::ProgressBar;
use tch::{Device, Kind, Tensor};

/// Rows forwarded together when features are recomputed for evaluation.
const EVAL_CHUNK: i64 = 64;

/// Frozen prefixes of `samples` under `angles`, one tensor `[rows, C, H, W]` per scale;
/// row `i·T + t` is image `i` under rotation `angles[i][t]`.
pub fn frozen_prefixes(
    extractor: &FeatureExtractor,
    device: Device,
    samples: &[Sample],
    angles: &[Vec<f64>],
    progress: &ProgressBar,
) -> Result<Vec<Tensor>> {
    let size = extractor.config().image_size as u32;
    let (mean, std) = extractor.config().kind.normalization();
    let paths = samples.iter().map(|s| s.path.clone()).collect();
    let views = angles.to_vec();
    let norm = Normalization { mean, std };
    let mut per_scale: Vec<Vec<Tensor>> =
        (0..extractor.config().scales).map(|_| Vec::new()).collect();
    for batch in loader::batches(paths, views, size, norm, 16, 2) {
        let batch = batch?;
        let n = (batch.images * batch.views) as i64;
        let pixels = Tensor::from_slice(&batch.data)
            .reshape([n, 3, size as i64, size as i64])
            .to_device(device);
        for (s, p) in extractor.frozen_prefix(&pixels).into_iter().enumerate() {
            per_scale[s].push(p);
        }
        progress.inc(batch.images as u64);
    }
    let prefixes: Vec<Tensor> = per_scale.iter().map(|v| Tensor::cat(v, 0)).collect();
    let bytes: i64 = prefixes.iter().map(|t| t.numel() as i64 * 4).sum();
    tracing::info!(
        rows = prefixes.first().map_or(0, |t| t.size()[0]),
        megabytes = bytes as f64 / 1e6,
        "frozen prefixes held in memory"
    );
    Ok(prefixes)
}

/// Pooled features of the given rows, with autograd into the attention.
pub fn features(extractor: &FeatureExtractor, prefixes: &[Tensor], rows: &Tensor) -> Tensor {
    let picked: Vec<Tensor> = prefixes.iter().map(|p| p.index_select(0, rows)).collect();
    extractor.pooled_from_prefix(&picked, true)
}

/// Pooled features of every row, without autograd (evaluation).
pub fn all_features(extractor: &FeatureExtractor, prefixes: &[Tensor]) -> Tensor {
    in_chunks(prefixes, |picked| {
        extractor.pooled_from_prefix(picked, false)
    })
}

/// Pooled features of every row with the attention skipped: the pretrained backbone's own
/// features of the same views, which the volume charge compares the attention's with.
pub fn features_without_attention(extractor: &FeatureExtractor, prefixes: &[Tensor]) -> Tensor {
    in_chunks(prefixes, |picked| {
        extractor.pooled_from_prefix_without_attention(picked)
    })
}

/// `f` over every row, [`EVAL_CHUNK`] rows at a time, without autograd.
fn in_chunks(prefixes: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) -> Tensor {
    let rows = prefixes[0].size()[0];
    tch::no_grad(|| {
        let mut out = Vec::new();
        let mut start = 0;
        while start < rows {
            let len = EVAL_CHUNK.min(rows - start);
            let picked: Vec<Tensor> = prefixes.iter().map(|p| p.narrow(0, start, len)).collect();
            out.push(f(&picked).to_kind(Kind::Float));
            start += len;
        }
        Tensor::cat(&out, 0)
    })
}
