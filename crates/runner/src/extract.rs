//! Turning images into pooled backbone features: decode and transform in parallel, then
//! forward whole batches through the frozen backbone without autograd.

use adn_backbones::FeatureExtractor;
use adn_datasets::transforms::{Normalization, resize_square, rotate_nearest, to_chw};
use adn_datasets::{Sample, decode};
use anyhow::Result;
use indicatif::ProgressBar;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// Images decoded and resized per chunk; bounds memory at large sizes.
const CHUNK_IMAGES: usize = 16;

/// Features `[samples.len() · angles_per_image, dim]`: row `i·T + t` is image `i` under
/// rotation `angles[i][t]`.
pub fn pooled_features(
    extractor: &FeatureExtractor,
    samples: &[Sample],
    angles: &[Vec<f64>],
    device: Device,
    progress: &ProgressBar,
) -> Result<Tensor> {
    let size = extractor.config().image_size as u32;
    let (mean, std) = extractor.config().kind.normalization();
    let norm = Normalization { mean, std };
    let mut rows = Vec::new();
    for (chunk, chunk_angles) in samples
        .chunks(CHUNK_IMAGES)
        .zip(angles.chunks(CHUNK_IMAGES))
    {
        let pixels: Vec<Vec<f32>> = chunk
            .par_iter()
            .zip(chunk_angles)
            .map(|(sample, angles)| -> Result<Vec<Vec<f32>>> {
                let img = resize_square(&decode::load_rgb(&sample.path)?, size);
                Ok(angles
                    .iter()
                    .map(|&a| to_chw(&rotate_nearest(&img, a), &norm))
                    .collect())
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let n = pixels.len() as i64;
        let flat: Vec<f32> = pixels.into_iter().flatten().collect();
        let batch = Tensor::from_slice(&flat)
            .reshape([n, 3, size as i64, size as i64])
            .to_device(device);
        let feats = tch::no_grad(|| extractor.pooled_features(&batch, false));
        rows.push(feats.to_kind(Kind::Float));
        progress.inc(chunk.len() as u64);
    }
    Ok(Tensor::cat(&rows, 0))
}
