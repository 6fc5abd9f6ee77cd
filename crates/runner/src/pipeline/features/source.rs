//! Turning images into what the flow's inputs are made of: pooled backbone features (look
//! each (image, rotation) up in the feature cache, decode and transform the missing ones in
//! parallel, forward them in batches through the frozen backbone without autograd, store
//! them), or, for jointly trained attention, the frozen prefixes the attention starts from.
//! [`FeatureSource`] is the way in for every command.

use std::time::Instant;

use adn_backbones::FeatureExtractor;
use adn_datasets::transforms::Normalization;
use adn_datasets::{Sample, loader};
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use super::cache::{self, FeatureCache, Lookup};
use crate::config::Config;
use crate::pipeline::settings::Settings;

/// Views (image × rotation) decoded and forwarded together, rounded to whole images. Enough
/// to keep the convolutions efficient; more only adds memory (64 rotations of 4 images at
/// 224 px on Lite0: 9.1 s and a 1.7 GB peak in chunks of 64 views; 9.8 s and 4.7 GB in one).
const CHUNK_VIEWS: usize = 64;
/// Chunks the loader keeps ready ahead of the backbone.
const PREFETCH_CHUNKS: usize = 2;

pub use adn_record::CacheStats;

/// A config's extractor, ready to turn images into pooled features: the device it runs on,
/// its feature cache (when it is frozen and caching is on) and its precision. The one entry
/// point that `adn run`, `eval`, `explain`, `extract`, `bench` and `model summary` share.
pub struct FeatureSource {
    pub extractor: FeatureExtractor,
    /// What it computes with.
    pub settings: Settings,
    cache: Option<FeatureCache>,
}

impl FeatureSource {
    /// The extractor `cfg` describes, with `settings`. `cache_root` turns the feature cache
    /// on, for a frozen extractor only: jointly trained attention changes its features.
    pub fn new(cfg: &Config, settings: &Settings, cache_root: Option<&Path>) -> Result<Self> {
        check_memory(cfg, settings.device)?;
        let extractor = build_extractor(cfg, settings)?;
        Ok(Self::with_extractor(cfg, extractor, settings, cache_root))
    }

    /// The extractor of a trained run in `run_dir`. A joint run's trained attention is loaded
    /// and frozen; its features depend on those weights, which the cache key does not cover,
    /// so they are computed afresh.
    pub fn trained(
        cfg: &Config,
        run_dir: &Path,
        settings: &Settings,
        cache_root: Option<&Path>,
    ) -> Result<Self> {
        let mut extractor = build_extractor(cfg, settings)?;
        if extractor.is_frozen() {
            return Ok(Self::with_extractor(cfg, extractor, settings, cache_root));
        }
        let path = run_dir.join(adn_record::files::ATTENTION);
        extractor
            .attention_vs
            .load(&path)
            .with_context(|| format!("cannot load the trained attention {}", path.display()))?;
        extractor.attention_vs.freeze();
        Ok(Self::with_extractor(cfg, extractor, settings, None))
    }

    fn with_extractor(
        cfg: &Config,
        extractor: FeatureExtractor,
        settings: &Settings,
        cache_root: Option<&Path>,
    ) -> Self {
        let cache = cache_root.filter(|_| extractor.is_frozen()).map(|root| {
            FeatureCache::new(
                root,
                &extractor_key(cfg, &extractor, settings),
                extractor.feature_dim() as usize,
            )
        });
        FeatureSource {
            extractor,
            settings: *settings,
            cache,
        }
    }

    /// Where it runs.
    pub fn device(&self) -> Device {
        self.settings.device
    }

    /// Features `[samples.len() · T, dim]`: row `i·T + t` is image `i` under rotation
    /// `angles[i][t]` (every image has the same number `T` of angles).
    pub fn pooled(
        &self,
        samples: &[Sample],
        angles: &[Vec<f64>],
        progress: &ProgressBar,
        stats: &mut CacheStats,
    ) -> Result<Tensor> {
        pooled_features(self, samples, angles, progress, stats)
    }

    /// Frozen prefixes of `samples` under `angles` (jointly trained attention): everything
    /// before the first attention position, one tensor `[rows, C, H, W]` per scale, row
    /// `i·T + t` being image `i` under rotation `angles[i][t]`. They are computed once and
    /// held in memory (e.g. 24 × 40 × 40 floats per row for EfficientNet-Lite0 at 160 px
    /// after stage 2, about 150 kB); the run logs the total.
    pub fn frozen_prefixes(
        &self,
        samples: &[Sample],
        angles: &[Vec<f64>],
        progress: &ProgressBar,
    ) -> Result<Vec<Tensor>> {
        let prefixes = self.held_in_memory(samples, angles, progress, |pixels| {
            self.extractor.frozen_prefix(pixels)
        })?;
        let bytes: i64 = prefixes.iter().map(|t| t.numel() as i64 * 4).sum();
        tracing::info!(
            rows = prefixes.first().map_or(0, |t| t.size()[0]),
            megabytes = bytes as f64 / 1e6,
            "frozen prefixes held in memory"
        );
        Ok(prefixes)
    }

    /// The shapes `(C, H, W)` of one view's feature maps at every scale and feature layer,
    /// in [`FeatureSource::maps`]' order, from one blank image.
    pub fn map_dims(&self) -> Vec<(i64, i64, i64)> {
        let size = self.extractor.config().image_size;
        let probe = Tensor::zeros([1, 3, size, size], (Kind::Float, self.device()));
        tch::no_grad(|| self.extractor.feature_maps_per_scale(&probe, false))
            .iter()
            .map(|m| {
                let d = m.size();
                (d[1], d[2], d[3])
            })
            .collect()
    }

    /// The feature maps of `samples` under `angles` at the extractor's feature layers and
    /// scales (a flow on maps), one float32 tensor `[rows, C, H, W]` per scale and layer, row
    /// `i·T + t` being image `i` under rotation `angles[i][t]`, held in memory. Refused
    /// before any work when they cannot fit.
    pub fn maps(
        &self,
        samples: &[Sample],
        angles: &[Vec<f64>],
        progress: &ProgressBar,
    ) -> Result<Vec<Tensor>> {
        let rows: usize = angles.iter().map(Vec::len).sum();
        let per_row: i64 = self.map_dims().iter().map(|(c, h, w)| c * h * w).sum();
        let need = rows as f64 * per_row as f64 * 4.0;
        if let Some(available) = crate::memory::available_bytes()
            && need > 0.5 * available as f64
        {
            bail!(
                "the feature maps of {rows} views need {} of memory, more than half of the {} \
                 available; use fewer views (train.rotation_pool, test.test_transforms), a \
                 smaller model.image_size or shallower model.feature_layers",
                crate::memory::human(need),
                crate::memory::human(available as f64)
            );
        }
        let maps = self.held_in_memory(samples, angles, progress, |pixels| {
            tch::no_grad(|| self.extractor.feature_maps_per_scale(pixels, false))
                .into_iter()
                .map(|m| m.to_kind(Kind::Float).contiguous())
                .collect()
        })?;
        tracing::info!(rows, megabytes = need / 1e6, "feature maps held in memory");
        Ok(maps)
    }

    /// `per_batch` over the normalised views of `samples` under `angles`, batch after batch,
    /// each of its outputs concatenated over the batches: one tensor per output, row
    /// `i·T + t` being image `i` under rotation `angles[i][t]`.
    fn held_in_memory(
        &self,
        samples: &[Sample],
        angles: &[Vec<f64>],
        progress: &ProgressBar,
        per_batch: impl Fn(&Tensor) -> Vec<Tensor>,
    ) -> Result<Vec<Tensor>> {
        let size = self.extractor.config().image_size;
        let (mean, std) = self.extractor.config().kind.normalization();
        let paths = samples.iter().map(|s| s.path.clone()).collect();
        let norm = Normalization { mean, std };
        let mut outputs: Vec<Vec<Tensor>> = Vec::new();
        for batch in loader::batches(paths, angles.to_vec(), size as u32, norm, 16, 2) {
            let batch = batch?;
            let n = (batch.images * batch.views) as i64;
            let pixels = Tensor::from_slice(&batch.data)
                .reshape([n, 3, size, size])
                .to_device(self.device());
            let out = per_batch(&pixels);
            outputs.resize_with(out.len(), Vec::new);
            for (k, t) in out.into_iter().enumerate() {
                outputs[k].push(t);
            }
            progress.inc(batch.images as u64);
        }
        Ok(outputs.iter().map(|v| Tensor::cat(v, 0)).collect())
    }
}

/// Refuses, before any work, an extraction whose batches cannot fit in memory (a typo like
/// `model.image_size = 20000`): libtorch would abort the process on the failed allocation.
/// The estimate is a lower bound (input pixels in the loader's queue and the backbone's
/// largest activations), so only settings that certainly cannot run are refused.
pub fn check_memory(cfg: &Config, device: Device) -> Result<()> {
    let Some(available) = crate::memory::available_bytes() else {
        return Ok(());
    };
    let m = &cfg.model;
    let views = [
        cfg.test.test_transforms,
        cfg.train.train_transforms,
        cfg.train.rotation_pool,
    ]
    .into_iter()
    .max()
    .unwrap_or(1);
    let rows = ((CHUNK_VIEWS / views).max(1) * views) as f64;
    let pixels = (m.image_size as f64).powi(2);
    // Floats per view and input pixel: the decoded and normalised input (3 channels) in
    // each queued chunk, and on the CPU the largest activations of the widest scale.
    let queued = 3.0 * (PREFETCH_CHUNKS + 2) as f64;
    let activations = if device.is_cuda() {
        0.0
    } else {
        activation_floats(m.backbone)
    };
    let need = rows * pixels * 4.0 * (queued + activations);
    if need > available as f64 {
        bail!(
            "model.image_size = {}: feature extraction needs at least {} of memory ({} views \
             of {}x{} px per batch), more than the {} available; use a smaller \
             model.image_size",
            m.image_size,
            crate::memory::human(need),
            rows,
            m.image_size,
            m.image_size,
            crate::memory::human(available as f64)
        );
    }
    Ok(())
}

/// The backbone's largest activations on the CPU, in floats per view and input pixel.
pub fn activation_floats(backbone: adn_backbones::BackboneKind) -> f64 {
    match backbone {
        adn_backbones::BackboneKind::Alexnet => 12.0,
        adn_backbones::BackboneKind::EfficientnetLite0 => 40.0,
    }
}

/// Refuses, before any work, a batch of `images` images that cannot fit in memory at
/// `per_image` bytes each beside `fixed` bytes (an export's traced batch, a prediction's
/// chunk), naming `option` and the largest batch that fits: libtorch would abort or panic
/// on the failed allocation. `what` says what the batch holds, for the message.
pub fn check_batch_memory(
    images: usize,
    per_image: f64,
    fixed: f64,
    option: &str,
    what: &str,
) -> Result<()> {
    let Some(available) = crate::memory::available_bytes() else {
        return Ok(());
    };
    let need = fixed + images as f64 * per_image;
    if need > available as f64 {
        let fits = ((available as f64 - fixed).max(0.0) / per_image).floor() as u64;
        bail!(
            "{option} {images}: {what} need at least {} of memory, more than the {} available; \
             the largest batch that fits is about {fits}",
            crate::memory::human(need),
            crate::memory::human(available as f64),
        );
    }
    Ok(())
}

/// The extractor of `cfg` with `settings`' device, activation layout and precision.
pub fn build_extractor(cfg: &Config, settings: &Settings) -> Result<FeatureExtractor> {
    let extractor = FeatureExtractor::new(
        &cfg.model.backbone_config(),
        cfg.model.weights.as_deref(),
        cfg.model.attention_training,
        cfg.train.seed as i64,
        settings.device,
    )?;
    Ok(extractor
        .with_memory_format(settings.memory_format)
        .with_precision(settings.backbone_precision)?)
}

/// Everything about the frozen extractor that changes its output, for the feature cache.
/// The seed matters only where something is randomly initialised.
fn extractor_key(cfg: &Config, extractor: &FeatureExtractor, settings: &Settings) -> String {
    let b = extractor.config();
    let weights = match extractor.weights_report() {
        Some(w) => w.sha256.clone(),
        None => format!("random-seed-{}", cfg.train.seed),
    };
    let attention = match b.attention {
        adn_backbones::AttentionKind::None => "none".to_string(),
        // An identity start is named; a random one keeps the key it always had.
        kind => format!(
            "{kind:?}@{:?}/r{}/seed-{}{}",
            b.positions,
            b.se_reduction,
            cfg.train.seed,
            if b.attention_init.is_random() {
                ""
            } else {
                "/identity"
            }
        ),
    };
    let device = match (settings.device.is_cuda(), settings.cuda_autocast) {
        (false, _) => "cpu",
        (true, false) => "cuda",
        (true, true) => "cuda-autocast",
    };
    format!(
        "{}|weights={weights}|attention={attention}|layers={:?}|scales={}|size={}|norm={:?}|{device}",
        b.kind.name(),
        b.feature_layers,
        b.scales,
        b.image_size,
        b.kind.normalization()
    ) + match extractor.precision() {
        // fp32 adds nothing, so the entries cached before the setting stay valid.
        adn_backbones::Precision::Fp32 => "",
        adn_backbones::Precision::Bf16 => "|bf16",
    } + if settings.reproducible {
        // The pinned kernels' features are other bits than this CPU's fast ones.
        "|reproducible"
    } else {
        ""
    }
}

/// Features `[samples.len() · T, dim]`: row `i·T + t` is image `i` under rotation
/// `angles[i][t]` (every image has the same number `T` of angles).
fn pooled_features(
    source: &FeatureSource,
    samples: &[Sample],
    angles: &[Vec<f64>],
    progress: &ProgressBar,
    stats: &mut CacheStats,
) -> Result<Tensor> {
    let extractor = &source.extractor;
    let device = source.settings.device;
    let cache = source.cache.as_ref();
    let cuda_autocast = source.settings.cuda_autocast;
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
        let lookups: Vec<Lookup> = (0..rows.len())
            .into_par_iter()
            .map(|r| cache.get(&hashes[r / per_image], angles[r / per_image][r % per_image]))
            .collect();
        // Rows repeating an (image, angle) share an entry: count each entry once.
        let mut rejected = std::collections::BTreeSet::new();
        for (row, lookup) in rows.iter_mut().zip(lookups) {
            match lookup {
                Lookup::Hit(v) => *row = Some(v),
                Lookup::Miss => {}
                Lookup::Rejected(why) => {
                    rejected.insert(why);
                }
            }
        }
        if let Some(why) = rejected.first() {
            let n = rejected.len();
            tracing::warn!(
                "feature cache: {n} entr{} could not be used (damaged, written for another \
                 key or unreadable) and will be recomputed and rewritten (first: {why})",
                if n == 1 { "y" } else { "ies" }
            );
            stats.rejected += n;
        }
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
    let mut storing = cache;
    // The loader decodes and transforms the next chunks on its own thread while the backbone
    // runs on this one. Images with any missing rotation are recomputed whole; only the
    // missing rows are stored, so cached values never change.
    let paths = missing_images
        .iter()
        .map(|&i| samples[i].path.clone())
        .collect();
    let views = missing_images.iter().map(|&i| angles[i].clone()).collect();
    let chunk_images = (CHUNK_VIEWS / per_image.max(1)).max(1);
    let chunk_rows = chunk_images * per_image;
    let pixels_per_row = 3 * (size as usize) * (size as usize);
    for batch in loader::batches(paths, views, size, norm, chunk_images, PREFETCH_CHUNKS) {
        let batch = batch?;
        let n = batch.images * batch.views;
        // Every chunk is forwarded at the same batch size, the short last one padded with
        // copies of its first view: some kernels (matrix-vector products for under 4 rows,
        // in SE/CBAM's linear layers) round differently at other sizes, and a feature must
        // not depend on which images happened to be missing from the cache with it.
        let mut data = batch.data;
        if n < chunk_rows {
            let first = data[..pixels_per_row].to_vec();
            for _ in n..chunk_rows {
                data.extend_from_slice(&first);
            }
        }
        let pixels = Tensor::from_slice(&data)
            .reshape([chunk_rows as i64, 3, size as i64, size as i64])
            .to_device(device);
        let forward = || tch::no_grad(|| extractor.pooled_features(&pixels, false));
        let feats = if cuda_autocast {
            tch::autocast(true, forward)
        } else {
            forward()
        };
        let values = Vec::<f32>::try_from(
            feats
                .narrow(0, 0, n as i64)
                .to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .contiguous()
                .reshape([-1]),
        )?;
        for (k, feature) in values.chunks_exact(dim).enumerate() {
            let i = missing_images[batch.first + k / per_image];
            let r = i * per_image + k % per_image;
            if rows[r].is_none() {
                if let Some(cache) = storing
                    && let Err(e) = cache.put(&hashes[i], angles[i][k % per_image], feature)
                {
                    tracing::warn!(
                        "feature cache: {e:#}; going on without storing features \
                         (they will be recomputed next time)"
                    );
                    storing = None;
                }
                if cache.is_some() && storing.is_none() {
                    stats.unstored += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_names_bf16_and_fp32_keys_are_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "experiment = \"t\"\n[data]\nkind = \"smoke\"\nroot = \"d\"\ncategory = \"s\"\n\
             [model]\nimage_size = 128\nscales = 1\n",
        )
        .unwrap();
        let key = |precision: &str| {
            let cfg = Config::load(&path, &[format!("model.precision=\"{precision}\"")]).unwrap();
            let settings = Settings::on_device(&cfg, Device::Cpu).unwrap();
            let fx = build_extractor(&cfg, &settings).unwrap();
            extractor_key(&cfg, &fx, &settings)
        };
        let (fp32, bf16) = (key("fp32"), key("bf16"));
        assert_ne!(fp32, bf16);
        assert!(
            bf16.ends_with("|bf16") && !fp32.contains("bf16"),
            "{fp32} / {bf16}"
        );
        assert!(fp32.ends_with("|cpu"), "{fp32}");
    }
}
