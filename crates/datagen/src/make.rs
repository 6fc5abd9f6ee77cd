//! `adn data make`: writes a dataset into a folder, atomically per category.

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use image::ImageFormat;
use image::codecs::jpeg::JpegEncoder;
use rayon::prelude::*;
use serde::Serialize;

use crate::elpv::{self, ElpvOptions};
use crate::smoke;
use crate::staging::{self, Outcome, Staging};
use crate::synth::{self, Job, Rendered, StandIn};
use adn_datasets::DatasetError;
use adn_datasets::DatasetKind;

/// What `make` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MakeKind {
    /// Real ELPV solar-cell images from PyPI, split per cell type (`elpv-mono`, `elpv-poly`).
    Elpv,
    /// Generated stand-in for MVTec AD.
    SyntheticMvtec,
    /// Generated stand-in for InsPLAD-fault.
    SyntheticInsplad,
    /// Generated stand-in for the Semiconductor Wafer set.
    SyntheticWafer,
    /// The tiny squares-vs-circles set of end-to-end tests (`shapes`).
    Smoke,
}

impl MakeKind {
    pub const ALL: [MakeKind; 5] = [
        MakeKind::Elpv,
        MakeKind::SyntheticMvtec,
        MakeKind::SyntheticInsplad,
        MakeKind::SyntheticWafer,
        MakeKind::Smoke,
    ];

    /// The `--kind` name.
    pub fn name(self) -> &'static str {
        match self {
            MakeKind::Elpv => "elpv",
            MakeKind::SyntheticMvtec => "synthetic-mvtec",
            MakeKind::SyntheticInsplad => "synthetic-insplad",
            MakeKind::SyntheticWafer => "synthetic-wafer",
            MakeKind::Smoke => "smoke",
        }
    }

    /// The kind to `check` or `load` the written dataset with.
    pub fn dataset_kind(self) -> DatasetKind {
        match self {
            MakeKind::Elpv | MakeKind::SyntheticWafer => DatasetKind::Folder,
            MakeKind::SyntheticMvtec | MakeKind::Smoke => DatasetKind::Mvtec,
            MakeKind::SyntheticInsplad => DatasetKind::Insplad,
        }
    }

    fn stand_in(self) -> Option<StandIn> {
        match self {
            MakeKind::SyntheticMvtec => Some(StandIn::Mvtec),
            MakeKind::SyntheticInsplad => Some(StandIn::Insplad),
            MakeKind::SyntheticWafer => Some(StandIn::Wafer),
            _ => None,
        }
    }
}

impl fmt::Display for MakeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MakeKind {
    type Err = DatasetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.to_ascii_lowercase().replace('_', "-");
        MakeKind::ALL
            .into_iter()
            .find(|k| k.name() == norm)
            .ok_or_else(|| DatasetError::UnknownKind {
                what: "make kind",
                given: s.to_string(),
                expected: MakeKind::ALL.map(MakeKind::name).join(", "),
            })
    }
}

/// Settings of `make`; `None` means the kind's default.
#[derive(Debug, Clone, Default)]
pub struct MakeOptions {
    /// Image side in pixels (stand-ins: 256; smoke: 128). Not used by ELPV (300×300 as shipped).
    pub size: Option<u32>,
    /// Images per split (stand-ins: 60 train/good, 60 test/good, 60 test anomalous spread
    /// over the defect types). Not used by ELPV (70/30 split of the real cells).
    pub per_split: Option<usize>,
    pub seed: u64,
    /// ELPV: the python whose pip downloads the wheel.
    pub python: Option<PathBuf>,
    /// ELPV: the download cache.
    pub cache_dir: Option<PathBuf>,
    /// ELPV: use this wheel file instead of downloading (its sha256 is still checked).
    pub wheel: Option<PathBuf>,
}

/// Default image side of the stand-ins.
pub const DEFAULT_SIZE: u32 = 256;
/// Default images per split of the stand-ins.
pub const DEFAULT_PER_SPLIT: usize = 60;

/// One category written by `make`.
#[derive(Debug, Clone, Serialize)]
pub struct MadeCategory {
    pub name: String,
    pub path: PathBuf,
    pub outcome: Outcome,
    /// Images per folder (`train/good`, `test/good`, `test/<defect>`).
    pub counts: Vec<(String, usize)>,
    /// Stand-ins: AUROC of the global-statistics scorers on the written images.
    pub global_auroc: Vec<(String, f64)>,
    /// Stand-ins: AUROC of the local patch-novelty scorer (a sanity check that defects exist).
    pub local_auroc: Option<f64>,
}

/// What `make` did; its Display is what `adn data make` prints.
#[derive(Debug, Clone, Serialize)]
pub struct MakeReport {
    pub kind: MakeKind,
    pub out: PathBuf,
    pub categories: Vec<MadeCategory>,
    pub notes: Vec<String>,
}

impl fmt::Display for MakeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} in {}", self.kind, self.out.display())?;
        for c in &self.categories {
            writeln!(f, "{} ({}): {}", c.name, c.path.display(), c.outcome)?;
            for (folder, n) in &c.counts {
                writeln!(f, "  {folder:<34} {n:>6}")?;
            }
            if !c.global_auroc.is_empty() {
                let worst = c.global_auroc.iter().map(|(_, a)| *a).fold(0.0, f64::max);
                let parts: Vec<String> = c
                    .global_auroc
                    .iter()
                    .map(|(n, a)| format!("{n} {a:.3}"))
                    .collect();
                writeln!(
                    f,
                    "  global-statistics AUROC (guard < 0.65): max {worst:.3} [{}]",
                    parts.join(", ")
                )?;
            }
            if let Some(a) = c.local_auroc {
                writeln!(
                    f,
                    "  local patch-novelty AUROC (a sanity check, not a model): {a:.3}"
                )?;
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        writeln!(
            f,
            "check with: adn data check --kind {} --root {}",
            self.kind.dataset_kind(),
            self.out.display()
        )
    }
}

/// Writes the dataset `kind` into `out`. Every category is written in a hidden temporary
/// folder and renamed into place when complete; an existing category with the same
/// manifest is left as it is, one with another manifest is an error (nothing is
/// overwritten).
/// The whole of `make` holds the lock of `out`: a second `make` into the same place waits
/// for the first, then finds its categories there.
pub fn make(kind: MakeKind, out: &Path, opts: &MakeOptions) -> Result<MakeReport, DatasetError> {
    let _owner = adn_util::lock::lock_waiting(out, &format!("dataset folder {}", out.display()))
        .map_err(|e| DatasetError::write(out, e))?;
    let mut notes = Vec::new();
    let categories = match kind {
        MakeKind::Elpv => {
            if opts.size.is_some() || opts.per_split.is_some() {
                notes.push(
                    "--size and --per-split do not apply to ELPV (real 300x300 cells, 70/30 \
                     split of the defect-free ones); ignored"
                        .into(),
                );
            }
            let eo = ElpvOptions {
                python: opts.python.clone(),
                cache_dir: opts.cache_dir.clone(),
                wheel: opts.wheel.clone(),
                seed: opts.seed,
                train_fraction: elpv::TRAIN_FRACTION,
            };
            let (wheel, made) = elpv::make(out, &eo)?;
            notes.push(format!(
                "source: {} (sha256 {} verified); licence CC BY-NC-SA 4.0, see CITATION.md and \
                 LICENSE.md in each category",
                wheel.display(),
                elpv::WHEEL_SHA256
            ));
            made.into_iter()
                .map(|c| MadeCategory {
                    name: c.name,
                    path: c.path,
                    outcome: c.outcome,
                    counts: c.counts,
                    global_auroc: Vec::new(),
                    local_auroc: None,
                })
                .collect()
        }
        MakeKind::Smoke => {
            let spec = smoke::SmokeSpec {
                size: opts.size.unwrap_or(smoke::SmokeSpec::default().size),
                seed: opts.seed,
                ..smoke::SmokeSpec::default()
            };
            let spec = match opts.per_split {
                Some(n) => smoke::SmokeSpec {
                    train_good: n,
                    test_good: n,
                    test_anomalous: n,
                    ..spec
                },
                None => spec,
            };
            let dest = out.join(smoke::CATEGORY);
            let outcome = smoke::generate(out, &spec)?;
            vec![MadeCategory {
                name: smoke::CATEGORY.into(),
                path: dest,
                outcome,
                counts: vec![
                    ("train/good".into(), spec.train_good),
                    ("test/good".into(), spec.test_good),
                    (format!("test/{}", smoke::DEFECT), spec.test_anomalous),
                ],
                global_auroc: Vec::new(),
                local_auroc: None,
            }]
        }
        _ => {
            let stand_in = kind.stand_in().expect("a stand-in kind");
            make_stand_in(stand_in, out, opts)?
        }
    };
    Ok(MakeReport {
        kind,
        out: out.to_path_buf(),
        categories,
        notes,
    })
}

/// The manifest of a generated category: everything that determines its content.
#[derive(Serialize)]
struct StandInManifest<'a> {
    generator: String,
    generator_version: u32,
    kind: &'static str,
    category: &'a str,
    size: u32,
    per_split: usize,
    seed: u64,
    defects: &'a [&'a str],
    counts: &'a [(String, usize)],
}

/// Bump when generated content changes, so that old folders are not taken as current.
const GENERATOR_VERSION: u32 = 1;

fn encode(r: &Rendered, jpeg: bool, path: &str) -> Result<Vec<u8>, DatasetError> {
    let mut buf = Cursor::new(Vec::new());
    let res = if jpeg {
        let rgb = r.image.to_rgb8();
        JpegEncoder::new_with_quality(&mut buf, 92).encode_image(&rgb)
    } else {
        r.image.write_to(&mut buf, ImageFormat::Png)
    };
    res.map_err(|e| DatasetError::write(path, e))?;
    Ok(buf.into_inner())
}

fn encode_mask(m: &image::GrayImage, path: &str) -> Result<Vec<u8>, DatasetError> {
    let mut buf = Cursor::new(Vec::new());
    m.write_to(&mut buf, ImageFormat::Png)
        .map_err(|e| DatasetError::write(path, e))?;
    Ok(buf.into_inner())
}

fn rel_path(job: &Job, ext: &str) -> String {
    format!("{}/{}/{:03}.{ext}", job.split, job.folder, job.index)
}

fn make_stand_in(
    kind: StandIn,
    out: &Path,
    opts: &MakeOptions,
) -> Result<Vec<MadeCategory>, DatasetError> {
    let size = opts.size.unwrap_or(DEFAULT_SIZE);
    let per_split = opts.per_split.unwrap_or(DEFAULT_PER_SPLIT);
    if !(32..=4096).contains(&size) {
        return Err(DatasetError::invalid(
            out,
            format!("--size {size} is outside 32..=4096 pixels"),
        ));
    }
    if per_split == 0 {
        return Err(DatasetError::invalid(out, "--per-split must be at least 1"));
    }
    staging::ensure_dir(out)?;
    let mut made = Vec::new();
    for cat in kind.categories() {
        let jobs = synth::jobs(cat, per_split);
        let mut counts: Vec<(String, usize)> = Vec::new();
        for j in &jobs {
            let key = format!("{}/{}", j.split, j.folder);
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        let manifest = StandInManifest {
            generator: format!("adn-datasets {}", kind.name()),
            generator_version: GENERATOR_VERSION,
            kind: kind.name(),
            category: cat.name,
            size,
            per_split,
            seed: opts.seed,
            defects: cat.defects,
            counts: &counts,
        };
        let manifest_text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| DatasetError::write(out.join(cat.name), e))?
            + "\n";
        let dest = out.join(cat.name);
        if staging::already_present(&dest, "manifest.json", &manifest_text)? {
            made.push(MadeCategory {
                name: cat.name.into(),
                path: dest,
                outcome: Outcome::Unchanged,
                counts,
                global_auroc: Vec::new(),
                local_auroc: None,
            });
            continue;
        }
        let stage = Staging::begin(out, cat.name)?;
        let rendered = synth::render_all(kind, cat, size, per_split, opts.seed);
        let ext = if cat.jpeg { "jpg" } else { "png" };
        rendered
            .par_iter()
            .map(|(job, r)| -> Result<(), DatasetError> {
                let rel = rel_path(job, ext);
                stage.write(&rel, &encode(r, cat.jpeg, &rel)?)?;
                if let Some(mask) = &r.mask {
                    let mrel = format!("ground_truth/{}/{:03}_mask.png", job.folder, job.index);
                    stage.write(&mrel, &encode_mask(mask, &mrel)?)?;
                }
                Ok(())
            })
            .collect::<Result<(), DatasetError>>()?;
        let global = synth::measure_global(&rendered);
        let local = synth::measure_local(&rendered);
        let outcome = stage.commit("manifest.json", &manifest_text)?;
        made.push(MadeCategory {
            name: cat.name.into(),
            path: dest,
            outcome,
            counts,
            global_auroc: global
                .into_iter()
                .map(|(n, a)| (n.to_string(), a))
                .collect(),
            local_auroc: local,
        });
    }
    Ok(made)
}
