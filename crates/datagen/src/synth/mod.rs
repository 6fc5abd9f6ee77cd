//! Generated stand-ins for the paper's three datasets, written in their real layouts.
//!
//! Every image is drawn from a seeded stream of its own (seed, category, split, index), so
//! a set is reproducible bit for bit and can be generated in parallel. Good and defective
//! images come from the same scene distribution; a defect is then painted on, and the
//! image's values are remapped (monotonically, per channel) onto exactly the values the
//! good image had, so each channel's histogram, mean and standard deviation are those of a
//! good image while every edge of the defect stays. Global photometric jitter (contrast,
//! brightness, tint) and sensor noise follow, identically distributed for good and
//! defective images. So whole-image statistics carry (almost) no information about the
//! label: the guard in `tests/standins.rs` keeps every scorer built on the mean, standard
//! deviation or histogram of the whole image below 0.65 AUROC.

pub mod insplad;
pub mod mvtec;
pub mod paint;
pub mod wafer;

use image::{DynamicImage, GrayImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use adn_datasets::DatasetKind;
use paint::{Canvas, Coverage};

/// Which stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StandIn {
    /// Textures and objects with masks, in MVTec AD's layout.
    Mvtec,
    /// Power-line components on cluttered backgrounds, non-square JPEG crops, no masks.
    Insplad,
    /// 1-channel die images with dicing streets, masks included.
    Wafer,
}

impl StandIn {
    pub const ALL: [StandIn; 3] = [StandIn::Mvtec, StandIn::Insplad, StandIn::Wafer];

    /// The `--kind` name.
    pub fn name(self) -> &'static str {
        match self {
            StandIn::Mvtec => "synthetic-mvtec",
            StandIn::Insplad => "synthetic-insplad",
            StandIn::Wafer => "synthetic-wafer",
        }
    }

    pub fn categories(self) -> &'static [Category] {
        match self {
            StandIn::Mvtec => mvtec::CATEGORIES,
            StandIn::Insplad => insplad::CATEGORIES,
            StandIn::Wafer => wafer::CATEGORIES,
        }
    }

    pub fn category(self, name: &str) -> Option<&'static Category> {
        self.categories().iter().find(|c| c.name == name)
    }

    /// The layout the stand-in is written in, for `check` and `load`.
    pub fn dataset_kind(self) -> DatasetKind {
        match self {
            StandIn::Mvtec => DatasetKind::Mvtec,
            StandIn::Insplad => DatasetKind::Insplad,
            StandIn::Wafer => DatasetKind::Folder,
        }
    }

    /// Whether ground-truth masks are written.
    pub fn writes_masks(self) -> bool {
        !matches!(self, StandIn::Insplad)
    }
}

/// Draws one image: `defect` is `None` for a good image, else one of the category's defect
/// names. Returns the image and, for defects, the coverage of the defect.
pub type RenderFn = fn(&Ctx, &mut ChaCha8Rng, Option<&str>) -> Rendered;

/// One generated category.
pub struct Category {
    pub name: &'static str,
    /// 1 (written as 8-bit gray) or 3 (RGB).
    pub channels: usize,
    pub defects: &'static [&'static str],
    /// JPEG instead of PNG.
    pub jpeg: bool,
    pub render: RenderFn,
}

impl std::fmt::Debug for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Category")
            .field("name", &self.name)
            .field("channels", &self.channels)
            .field("defects", &self.defects)
            .finish()
    }
}

/// What a renderer knows besides its random stream.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Nominal side in pixels (non-square crops scale around it).
    pub size: usize,
    /// Constant over a category (a wafer's die design), derived from the seed.
    pub category_seed: u64,
}

/// One generated image and its mask (defects only, where the stand-in has masks).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub image: DynamicImage,
    pub mask: Option<GrayImage>,
}

/// Global photometric variation and sensor noise of a stand-in.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// Contrast factor drawn from `1 ± contrast`.
    pub contrast: f32,
    /// Brightness offset drawn from `± offset`.
    pub offset: f32,
    /// Per-channel colour cast drawn from `± tint` (RGB only).
    pub tint: f32,
    /// Pixel noise amplitude.
    pub noise: f32,
    /// Box-blur passes (camera optics).
    pub blur: usize,
}

/// What a defect must not change: the good image's distribution of values per channel.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Per channel, the good image's values in ascending order.
    sorted: Vec<Vec<f32>>,
}

impl Reference {
    pub fn of(canvas: &Canvas) -> Self {
        let sorted = (0..canvas.c)
            .map(|k| {
                let mut v: Vec<f32> = canvas
                    .px
                    .iter()
                    .skip(k)
                    .step_by(canvas.c)
                    .copied()
                    .collect();
                v.sort_by(f32::total_cmp);
                v
            })
            .collect();
        Reference { sorted }
    }

    /// Histogram specification: gives each channel of `canvas` (same size) exactly the
    /// reference's values, assigned in the order of `canvas`'s own values. The map is
    /// monotonic, so every edge and every defect stays where and what it is, while mean,
    /// standard deviation and histogram of each channel become the good image's.
    pub fn impose(&self, canvas: &mut Canvas) {
        let c = canvas.c;
        let n = canvas.w * canvas.h;
        let mut order: Vec<usize> = (0..n).collect();
        for (k, sorted) in self.sorted.iter().enumerate().take(c) {
            if sorted.len() != n {
                continue;
            }
            order.sort_by(|&a, &b| {
                canvas.px[a * c + k]
                    .total_cmp(&canvas.px[b * c + k])
                    .then(a.cmp(&b))
            });
            for (rank, &i) in order.iter().enumerate() {
                canvas.px[i * c + k] = sorted[rank];
            }
        }
    }
}

/// Finishes an image. `base` is the good image a defect was painted on (`None` for good
/// images). Both are blurred alike (camera optics); then the defective image is given the
/// blurred good image's per-channel value distribution ([`Reference::impose`]); then
/// photometric jitter, noise, 8 bits.
pub fn finish(
    mut canvas: Canvas,
    base: Option<Canvas>,
    cov: Option<Coverage>,
    rng: &mut ChaCha8Rng,
    look: &Look,
) -> Rendered {
    if look.blur > 0 {
        canvas.blur(look.blur);
    }
    if let Some(mut base) = base {
        if look.blur > 0 {
            base.blur(look.blur);
        }
        Reference::of(&base).impose(&mut canvas);
    }
    let contrast = 1.0 + rng.random_range(-look.contrast..=look.contrast);
    let offset = rng.random_range(-look.offset..=look.offset);
    let tint = [
        rng.random_range(-look.tint..=look.tint),
        rng.random_range(-look.tint..=look.tint),
        rng.random_range(-look.tint..=look.tint),
    ];
    canvas.photometric(contrast, offset, tint);
    canvas.add_noise(rng, look.noise);
    let mask = cov.map(|c| {
        let strong = c.to_mask(0.5);
        if strong.pixels().any(|p| p.0[0] > 0) {
            strong
        } else {
            c.to_mask(f32::MIN_POSITIVE)
        }
    });
    Rendered {
        image: canvas.to_image(),
        mask,
    }
}

/// Where a generated image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `train` or `test`.
    pub split: &'static str,
    /// `good` or the defect name.
    pub folder: &'static str,
    /// File number inside its folder.
    pub index: usize,
}

impl Job {
    pub fn is_anomalous(&self) -> bool {
        self.folder != adn_datasets::layout::GOOD
    }
}

/// The images of a category: `per_split` in train/good, `per_split` in test/good, and
/// `per_split` defective test images dealt round-robin over the defect types.
pub fn jobs(cat: &Category, per_split: usize) -> Vec<Job> {
    let mut out = Vec::with_capacity(per_split * 3);
    for index in 0..per_split {
        out.push(Job {
            split: "train",
            folder: adn_datasets::layout::GOOD,
            index,
        });
    }
    for index in 0..per_split {
        out.push(Job {
            split: "test",
            folder: adn_datasets::layout::GOOD,
            index,
        });
    }
    let mut counters = vec![0usize; cat.defects.len()];
    for i in 0..per_split {
        let d = i % cat.defects.len();
        out.push(Job {
            split: "test",
            folder: cat.defects[d],
            index: counters[d],
        });
        counters[d] += 1;
    }
    out
}

fn name_hash(s: &str) -> u64 {
    // FNV-1a: stable across platforms and Rust versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The random stream of one image.
fn stream(seed: u64, kind: StandIn, cat: &Category, job: &Job) -> ChaCha8Rng {
    let key = format!(
        "{}/{}/{}/{}/{}",
        kind.name(),
        cat.name,
        job.split,
        job.folder,
        job.index
    );
    ChaCha8Rng::seed_from_u64(seed ^ name_hash(&key))
}

fn context(seed: u64, kind: StandIn, cat: &Category, size: u32) -> Ctx {
    Ctx {
        size: size.max(8) as usize,
        category_seed: seed ^ name_hash(&format!("{}/{}/design", kind.name(), cat.name)),
    }
}

/// Renders one image of a category.
pub fn render(kind: StandIn, cat: &Category, size: u32, seed: u64, job: &Job) -> Rendered {
    let ctx = context(seed, kind, cat, size);
    let mut rng = stream(seed, kind, cat, job);
    let defect = job.is_anomalous().then_some(job.folder);
    let mut out = (cat.render)(&ctx, &mut rng, defect);
    if !kind.writes_masks() {
        out.mask = None;
    }
    out
}

/// Renders a whole category in parallel, in [`jobs`] order.
pub fn render_all(
    kind: StandIn,
    cat: &Category,
    size: u32,
    per_split: usize,
    seed: u64,
) -> Vec<(Job, Rendered)> {
    jobs(cat, per_split)
        .into_par_iter()
        .map(|job| {
            let r = render(kind, cat, size, seed, &job);
            (job, r)
        })
        .collect()
}

/// AUROC of each global-statistics scorer on rendered images (train/good fits, test
/// scores): the guard.
pub fn measure_global(images: &[(Job, Rendered)]) -> Vec<(&'static str, f64)> {
    use crate::stats::{GlobalStats, global_stats_auroc};
    let feats: Vec<GlobalStats> = images
        .par_iter()
        .map(|(_, r)| GlobalStats::of(&r.image))
        .collect();
    let mut train = Vec::new();
    let mut test = Vec::new();
    for ((job, _), g) in images.iter().zip(feats) {
        if job.split == "train" {
            train.push(g);
        } else {
            test.push((g, job.is_anomalous()));
        }
    }
    global_stats_auroc(&train, &test)
}

/// AUROC of the patch-novelty scorer (images at 64×64) on rendered images: a sanity check
/// that the defects are local and findable, and of how hard a category is.
pub fn measure_local(images: &[(Job, Rendered)]) -> Option<f64> {
    use crate::stats::{patch_descriptors, patch_novelty_auroc};
    let feats: Vec<Vec<Vec<f32>>> = images
        .par_iter()
        .map(|(_, r)| patch_descriptors(&r.image, 64, 4))
        .collect();
    let mut train = Vec::new();
    let mut test = Vec::new();
    for ((job, _), f) in images.iter().zip(feats) {
        if job.split == "train" {
            train.push(f);
        } else {
            test.push((f, job.is_anomalous()));
        }
    }
    patch_novelty_auroc(&train, &test, 8)
}
