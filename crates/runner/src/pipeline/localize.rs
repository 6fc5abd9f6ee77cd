//! DifferNet's anomaly map and the pixel metrics it is judged by.
//!
//! The map of an image is the gradient of its anomaly score (the flow's mean z² over its
//! test rotations) with respect to the input pixels: each rotated view is a differentiable
//! gather of the unrotated pixels, so every view's gradient lands back on the pixel it came
//! from (the "rotate back" of DifferNet's localisation script). Its absolute value is summed
//! over the colour channels, averaged over the views and smoothed with a Gaussian, at the
//! model's input size. With ground-truth masks, `evaluate` turns the maps into pixel AUROC,
//! AUPRO and the fraction of defects whose map peaks inside the mask.

use std::collections::HashMap;
use std::time::Instant;

use adn_backbones::FeatureExtractor;
use adn_datasets::{CategoryData, Sample};
use adn_flows::DifferNetFlow;

use crate::pipeline::train::FlowModel;
use adn_flows::flow::anomaly_scores;
use adn_metrics::pixel::{PixelImage, aupro, pixel_auroc};
use adn_record::PixelMetrics;
use anyhow::{Context, Result, bail};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::config::{Config, Localize};

/// The FPR up to which the PRO curve is integrated (MVTec AD's 30 %).
pub const AUPRO_MAX_FPR: f64 = 0.3;

/// Rotated views per backward pass: bounds the memory of the saved activations.
const MAP_ROWS: usize = 16;

/// The Gaussian's σ in pixels at input size `size`: the reference script's 3 px at its
/// 448 px input, in proportion.
pub fn sigma_px(size: i64) -> f64 {
    3.0 * size as f64 / 448.0
}

/// The rotations a map averages over: `test.map_rotations` of the image's test rotations,
/// evenly spaced among them, or all of them.
pub fn map_angles(cfg: &Config, test_angles: &[f64]) -> Vec<f64> {
    let n = test_angles.len();
    let m = cfg.test.map_rotations;
    if m == 0 || m >= n {
        return test_angles.to_vec();
    }
    (0..m).map(|k| test_angles[k * n / m]).collect()
}

/// Normalised `[N, 3, size, size]` pixels of `images` (already at the input size) for the
/// backbone of `cfg`.
pub fn pixels(images: &[RgbImage], cfg: &Config, device: Device) -> Tensor {
    let size = cfg.model.image_size;
    let (mean, std) = cfg.model.backbone.normalization();
    let norm = adn_datasets::transforms::Normalization { mean, std };
    let values: Vec<f32> = images
        .iter()
        .flat_map(|img| adn_datasets::transforms::to_chw(img, &norm))
        .collect();
    Tensor::from_slice(&values)
        .reshape([images.len() as i64, 3, size, size])
        .to_device(device)
}

/// DifferNet's anomaly maps `[N, S, S]` of normalised images `xs` `[N, 3, S, S]`, image `i`
/// viewed under the rotations `angles[i]` (the same number for every image), smoothed with
/// a Gaussian of `sigma` pixels (none for 0). Non-negative; not normalised, so maps of
/// different images and models share one scale.
pub fn differnet_maps(
    extractor: &FeatureExtractor,
    flow: &DifferNetFlow,
    xs: &Tensor,
    angles: &[Vec<f64>],
    sigma: f64,
) -> Result<Tensor> {
    let (n, s) = (xs.size()[0], xs.size()[2]);
    let views = angles.first().map_or(0, Vec::len);
    if n as usize != angles.len() || views == 0 || angles.iter().any(|a| a.len() != views) {
        bail!("every image needs the same number (at least 1) of map rotations");
    }
    let plane = s * s;
    let device = xs.device();
    let fill = rotation_fill(extractor.config().kind.normalization(), device);
    let mut sources: HashMap<u64, Tensor> = HashMap::new();
    let mut source_of = |degrees: f64| -> Result<Tensor> {
        if let Some(t) = sources.get(&degrees.to_bits()) {
            return Ok(t.shallow_clone());
        }
        let t = rotation_index(s, degrees)?.to_device(device);
        sources.insert(degrees.to_bits(), t.shallow_clone());
        Ok(t)
    };
    let per_chunk = (MAP_ROWS / views).max(1) as i64;
    let mut maps = Vec::new();
    let mut start = 0;
    while start < n {
        let len = per_chunk.min(n - start);
        let rows = len * views as i64;
        // One leaf per view, so each view's gradient stays apart until its absolute value.
        let leaf = xs
            .narrow(0, start, len)
            .detach()
            .to_kind(Kind::Float)
            .reshape([len, 1, 3, plane])
            .expand([len, views as i64, 3, plane], false)
            .reshape([rows, 3, plane])
            .set_requires_grad(true);
        let mut index = Vec::with_capacity(rows as usize);
        for a in &angles[start as usize..(start + len) as usize] {
            for &d in a {
                index.push(source_of(d)?);
            }
        }
        let index = Tensor::stack(&index, 0)
            .reshape([rows, 1, plane])
            .expand([rows, 3, plane], false);
        let total = tch::with_grad(|| {
            let rotated = gather_views(&leaf, &index, &fill, s);
            let features = extractor.pooled_features(&rotated, false);
            let (z, _) = flow.forward(&features);
            anomaly_scores(&z, views as i64).sum(Kind::Float)
        });
        let grad = Tensor::run_backward(&[total], &[&leaf], false, false)
            .pop()
            .context("no gradient reached the input pixels")?;
        // The image's score is the mean of its views' scores, so summing the views' 1/V
        // shares is the mean over views of |∂ view score / ∂ pixel|.
        let map = grad
            .abs()
            .sum_dim_intlist([1].as_slice(), false, Kind::Float)
            .reshape([len, views as i64, s, s])
            .sum_dim_intlist([1].as_slice(), false, Kind::Float);
        maps.push(map.detach());
        start += len;
    }
    Ok(gaussian_blur(&Tensor::cat(&maps, 0), sigma))
}

/// How [`differnet_maps`] made its maps, in words, over `rotations` views and with
/// `sigma`.
pub fn differnet_map_description(rotations: usize, sigma: f64) -> String {
    format!(
        "DifferNet's input gradient: |∂ score / ∂ pixel| summed over channels, averaged over \
         {rotations} test rotations (each rotated back), Gaussian σ = {sigma:.2} px"
    )
}

/// The nearest-neighbour rotation by `degrees` of an `s × s` image as a gather index
/// `[s²]`: view pixel `i` takes source pixel `index[i]`, or `s²`, one past the last, where
/// it has none (the black fill, appended to the source). The same sampling as the loader's
/// rotation, so a rotated view is a differentiable, traceable gather of the unrotated one.
pub fn rotation_index(s: i64, degrees: f64) -> Result<Tensor> {
    let map = adn_datasets::transforms::rotation_sources(s as u32, s as u32, degrees)
        .with_context(|| format!("{s} × {s} px is too large to rotate by a gather"))?;
    let plane = s * s;
    let index: Vec<i64> = map.iter().map(|o| o.map_or(plane, i64::from)).collect();
    Ok(Tensor::from_slice(&index))
}

/// The normalised black a rotation fills with, `[1, 3, 1]`, for the normalisation
/// `(mean, std)`: where a rotated view has no source pixel.
pub fn rotation_fill((mean, std): ([f32; 3], [f32; 3]), device: Device) -> Tensor {
    let fill: Vec<f32> = (0..3).map(|c| -mean[c] / std[c]).collect();
    Tensor::from_slice(&fill)
        .to_device(device)
        .reshape([1, 3, 1])
}

/// Rotated views `[R, 3, s, s]` of unrotated, normalised pixels `rows` `[R, 3, s²]`:
/// view pixel `i` of row `r` is `rows[r, :, index[r, :, i]]`, or [`rotation_fill`] where
/// the index is `s²` ([`rotation_index`]). A gather, so differentiable (the maps) and
/// traceable (`adn export`).
pub fn gather_views(rows: &Tensor, index: &Tensor, fill: &Tensor, s: i64) -> Tensor {
    let n = rows.size()[0];
    Tensor::cat(&[rows, &fill.expand([n, 3, 1], false)], 2)
        .gather(2, index, false)
        .reshape([n, 3, s, s])
}

/// Smooths maps `[N, H, W]` with a separable Gaussian of `sigma` pixels, truncated at 4 σ
/// (as scipy's `gaussian_filter`) and mirrored at the border without repeating the edge
/// (scipy's mode `mirror`).
pub fn gaussian_blur(maps: &Tensor, sigma: f64) -> Tensor {
    let (h, w) = (maps.size()[1], maps.size()[2]);
    let radius = ((4.0 * sigma + 0.5) as i64).min(h - 1).min(w - 1);
    if sigma <= 0.0 || radius < 1 {
        return maps.shallow_clone();
    }
    let taps: Vec<f32> = (-radius..=radius)
        .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp() as f32)
        .collect();
    let total: f32 = taps.iter().sum();
    let taps: Vec<f32> = taps.iter().map(|t| t / total).collect();
    let k = Tensor::from_slice(&taps).to_device(maps.device());
    let len = 2 * radius + 1;
    let x = maps.to_kind(Kind::Float).unsqueeze(1);
    let x = x.reflection_pad2d([radius, radius, 0, 0]).conv2d(
        &k.reshape([1, 1, 1, len]),
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [1, 1],
        1,
    );
    let x = x.reflection_pad2d([0, 0, radius, radius]).conv2d(
        &k.reshape([1, 1, len, 1]),
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [1, 1],
        1,
    );
    x.squeeze_dim(1)
}

/// The ground-truth mask of `sample` at `size` × `size` (nearest neighbour, > 127 is
/// defect); all false for an image without a mask (a good one).
pub fn load_mask(sample: &Sample, size: u32) -> Result<Vec<bool>> {
    let Some(path) = &sample.mask else {
        return Ok(vec![false; (size * size) as usize]);
    };
    let gray = adn_datasets::decode::load_gray(path)?;
    let gray = image::imageops::resize(&gray, size, size, image::imageops::FilterType::Nearest);
    Ok(gray.pixels().map(|p| p[0] > 127).collect())
}

/// Whether the map's maximum (the first, in row-major order) lies inside the mask.
pub fn peak_in_mask(map: &[f32], mask: &[bool]) -> bool {
    let peak = map
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0;
    mask.get(peak).copied().unwrap_or(false)
}

/// Whether the run computes maps: `test.localize`, and for `auto` whether every anomalous
/// test image has a mask. `on` without masks is an error naming what is missing.
pub fn wanted(cfg: &Config, images: &CategoryData) -> Result<bool> {
    let missing = images
        .test
        .iter()
        .filter(|s| s.is_anomalous() && s.mask.is_none())
        .count();
    Ok(match cfg.test.localize {
        Localize::Off => false,
        Localize::Auto => missing == 0,
        Localize::On if missing > 0 => bail!(
            "test.localize = \"on\" needs a ground-truth mask for every anomalous test image, \
             but {missing} of them in {} (category {}) have none; set test.localize = \"auto\" \
             or \"off\"",
            images.root.display(),
            images.category
        ),
        Localize::On => true,
    })
}

/// Images decoded and maps computed per step, so that memory stays bounded.
const EVAL_IMAGES: usize = 32;

/// The pixel metrics of the trained model on every test image, with the rotations
/// `test_angles` (the run's); `None` when `test.localize` says no.
pub fn evaluate(
    cfg: &Config,
    images: &CategoryData,
    test_angles: &[Vec<f64>],
    extractor: &FeatureExtractor,
    flow: &FlowModel,
    device: Device,
) -> Result<Option<PixelMetrics>> {
    if !wanted(cfg, images)? {
        return Ok(None);
    }
    let t = Instant::now();
    let size = cfg.model.image_size;
    let sigma = sigma_px(size);
    let plane = (size * size) as usize;
    let mut maps: Vec<f64> = Vec::with_capacity(images.test.len() * plane);
    let mut masks: Vec<bool> = Vec::with_capacity(images.test.len() * plane);
    let (mut anomalous, mut peaks) = (0usize, 0usize);
    let mut rotations = 0;
    for (chunk, angles) in images
        .test
        .chunks(EVAL_IMAGES)
        .zip(test_angles.chunks(EVAL_IMAGES))
    {
        let resized = chunk
            .iter()
            .map(|s| {
                let img = adn_datasets::decode::load_rgb(&s.path)?;
                Ok(adn_datasets::transforms::resize_square(&img, size as u32))
            })
            .collect::<Result<Vec<_>>>()?;
        let input = pixels(&resized, cfg, device);
        let m = match flow {
            FlowModel::Differnet(flow) => {
                let angles: Vec<Vec<f64>> = angles.iter().map(|a| map_angles(cfg, a)).collect();
                rotations = angles.first().map_or(0, Vec::len);
                differnet_maps(extractor, flow, &input, &angles, sigma)?
            }
            // The family's own map, of the unrotated image.
            FlowModel::Maps(flow) => {
                rotations = 1;
                flow.image_maps(extractor, &input, size)
            }
        };
        let m = Vec::<f32>::try_from(m.to_device(Device::Cpu).reshape([-1]))?;
        for (i, s) in chunk.iter().enumerate() {
            let map = &m[i * plane..(i + 1) * plane];
            if map.iter().any(|v| !v.is_finite()) {
                bail!(
                    "the anomaly map of {} holds a non-finite value",
                    s.path.display()
                );
            }
            let mask = load_mask(s, size as u32)
                .with_context(|| format!("cannot read the mask of {}", s.path.display()))?;
            if s.is_anomalous() {
                anomalous += 1;
                peaks += peak_in_mask(map, &mask) as usize;
            }
            maps.extend(map.iter().map(|&v| v as f64));
            masks.extend(mask);
        }
    }
    let side = size as usize;
    let pixel_images: Vec<PixelImage> = (0..images.test.len())
        .map(|i| PixelImage {
            width: side,
            height: side,
            map: &maps[i * plane..(i + 1) * plane],
            mask: &masks[i * plane..(i + 1) * plane],
        })
        .collect();
    let auroc = pixel_auroc(&pixel_images).context("pixel AUROC")?;
    let aupro = aupro(&pixel_images, AUPRO_MAX_FPR).context("AUPRO")?;
    let (map, sigma) = match flow {
        FlowModel::Differnet(_) => (differnet_map_description(rotations, sigma), sigma),
        FlowModel::Maps(flow) => (flow.describe().to_string(), 0.0),
    };
    Ok(Some(PixelMetrics {
        map,
        auroc,
        aupro,
        aupro_max_fpr: AUPRO_MAX_FPR,
        peak_in_mask: if anomalous > 0 {
            peaks as f64 / anomalous as f64
        } else {
            0.0
        },
        images: images.test.len(),
        anomalous,
        size: side,
        rotations,
        sigma_px: sigma,
        wall_s: t.elapsed().as_secs_f64(),
    }))
}

#[cfg(test)]
mod tests;
