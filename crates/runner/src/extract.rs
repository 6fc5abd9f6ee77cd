//! Turning images into pooled backbone features: look each (image, rotation) up in the
//! feature cache, decode and transform the missing ones in parallel, forward them in
//! batches through the frozen backbone without autograd, and store them.

use std::time::Instant;

use adn_backbones::FeatureExtractor;
use adn_datasets::transforms::Normalization;
use adn_datasets::{Sample, loader};
use anyhow::Result;
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::cache::{self, FeatureCache};

/// Views (image × rotation) decoded and forwarded together, rounded to whole images. Enough
/// to keep the convolutions efficient; more only adds memory (64 rotations of 4 images at
/// 224 px on Lite0: 9.1 s and a 1.7 GB peak in chunks of 64 views; 9.8 s and 4.7 GB in one).
const CHUNK_VIEWS: usize = 64;
/// Chunks the loader keeps ready ahead of the backbone.
const PREFETCH_CHUNKS: usize = 2;

/// What the cache did during one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CacheStats {
    pub enabled: bool,
    pub hits: usize,
    pub misses: usize,
    /// Wall time spent computing the misses.
    pub compute_seconds: f64,
    /// Hits times the measured cost of one computed entry.
    pub estimated_seconds_saved: f64,
}

/// A frozen extractor with where and how it runs.
pub struct Extraction<'a> {
    pub extractor: &'a FeatureExtractor,
    pub device: Device,
    pub cache: Option<&'a FeatureCache>,
    /// CUDA autocast for the backbone (ignored on the CPU).
    pub mixed_precision: bool,
    pub progress: &'a ProgressBar,
}

/// Features `[samples.len() · T, dim]`: row `i·T + t` is image `i` under rotation
/// `angles[i][t]` (every image has the same number `T` of angles).
pub fn pooled_features(
    how: &Extraction<'_>,
    samples: &[Sample],
    angles: &[Vec<f64>],
    stats: &mut CacheStats,
) -> Result<Tensor> {
    let Extraction {
        extractor,
        device,
        cache,
        mixed_precision,
        progress,
    } = *how;
    let dim = extractor.feature_dim() as usize;
    let per_image = angles.first().map_or(0, |a| a.len());
    let hashes: Vec<String> = match cache {
        Some(_) => samples
            .par_iter()
            .map(|s| cache::file_hash(&s.path))
            .collect::<Result<_>>()?,
        None => vec![String::new(); samples.len()],
    };
    let mut rows: Vec<Option<Vec<f32>>> = vec![None; samples.len() * per_image];
    if let Some(cache) = cache {
        stats.enabled = true;
        rows.par_iter_mut().enumerate().for_each(|(r, row)| {
            *row = cache.get(&hashes[r / per_image], angles[r / per_image][r % per_image]);
        });
    }
    let missing_images: Vec<usize> = (0..samples.len())
        .filter(|&i| {
            rows[i * per_image..(i + 1) * per_image]
                .iter()
                .any(Option::is_none)
        })
        .collect();
    progress.inc((samples.len() - missing_images.len()) as u64);

    let size = extractor.config().image_size as u32;
    let (mean, std) = extractor.config().kind.normalization();
    let norm = Normalization { mean, std };
    let start = Instant::now();
    let mut computed = 0usize;
    // The loader decodes and transforms the next chunks on its own thread while the backbone
    // runs on this one. Images with any missing rotation are recomputed whole; only the
    // missing rows are stored, so cached values never change.
    let paths = missing_images
        .iter()
        .map(|&i| samples[i].path.clone())
        .collect();
    let views = missing_images.iter().map(|&i| angles[i].clone()).collect();
    let chunk_images = (CHUNK_VIEWS / per_image.max(1)).max(1);
    for batch in loader::batches(paths, views, size, norm, chunk_images, PREFETCH_CHUNKS) {
        let batch = batch?;
        let n = (batch.images * batch.views) as i64;
        let pixels = Tensor::from_slice(&batch.data)
            .reshape([n, 3, size as i64, size as i64])
            .to_device(device);
        let forward = || tch::no_grad(|| extractor.pooled_features(&pixels, false));
        let feats = if mixed_precision && device.is_cuda() {
            tch::autocast(true, forward)
        } else {
            forward()
        };
        let values = Vec::<f32>::try_from(
            feats
                .to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .contiguous()
                .reshape([-1]),
        )?;
        for (k, feature) in values.chunks_exact(dim).enumerate() {
            let i = missing_images[batch.first + k / per_image];
            let r = i * per_image + k % per_image;
            if rows[r].is_none() {
                if let Some(cache) = cache {
                    cache.put(&hashes[i], angles[i][k % per_image], feature)?;
                }
                rows[r] = Some(feature.to_vec());
                computed += 1;
            }
        }
        progress.inc(batch.images as u64);
    }
    let seconds = start.elapsed().as_secs_f64();
    stats.misses += computed;
    stats.hits += rows.len() - computed;
    stats.compute_seconds += seconds;
    if let Some(cache) = cache {
        let per_entry = if computed > 0 {
            let s = seconds / computed as f64;
            cache.record_seconds_per_entry(s);
            Some(s)
        } else {
            cache.seconds_per_entry()
        };
        stats.estimated_seconds_saved += per_entry.unwrap_or(0.0) * (rows.len() - computed) as f64;
    }
    let flat: Vec<f32> = rows
        .into_iter()
        .flat_map(|r| r.expect("every row is filled"))
        .collect();
    Ok(Tensor::from_slice(&flat).reshape([(samples.len() * per_image) as i64, dim as i64]))
}
