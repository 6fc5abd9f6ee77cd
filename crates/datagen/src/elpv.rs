//! ELPV: real electroluminescence images of solar cells (Buerhop-Lutz et al. 2018; Deitsch et
//! al. 2019), obtained offline from the PyPI package `elpv-dataset` and written as an
//! MVTec-style anomaly split per cell type.
//!
//! The wheel is fetched once with `python -m pip download` into a cache and checked
//! against a pinned sha256. From `labels.csv` (path, defect probability 0/⅓/⅔/1, type mono
//! or poly), for each type: a seeded 70 % of the p = 0 cells go to `train/good`, the other
//! p = 0 cells to `test/good`, the p = 1 cells to `test/defect`; cells with 0 < p < 1 are
//! left out. The PNGs are copied byte for byte. Each category folder gets `split.json` (the
//! manifest that reproduces the split), `LICENSE.md` (CC BY-NC-SA 4.0, from the wheel) and
//! `CITATION.md`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use adn_util::wheel::{PinnedWheel, WheelError};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::staging::{self, Outcome, Staging};
use adn_datasets::DatasetError;

/// The pinned release.
pub const PACKAGE: &str = "elpv-dataset";
pub const VERSION: &str = "1.0.0.post1";
pub const WHEEL: &str = "elpv_dataset-1.0.0.post1-py3-none-any.whl";
/// sha256 of [`WHEEL`] as served by PyPI.
pub const WHEEL_SHA256: &str = "85e31c1126ee9b48e62d3a0232c58f58b2d189b0814a45c13642fa0415af4a4c";
/// Share of the defect-free cells of each type used for training.
pub const TRAIN_FRACTION: f64 = 0.7;
/// The name of the split manifest in each category folder.
pub const MANIFEST: &str = "split.json";
/// The defect folder name.
pub const DEFECT: &str = "defect";

const LABELS: &str = "elpv_dataset/data/labels.csv";
const DATA_DIR: &str = "elpv_dataset/data/";

/// Where the wheel comes from and how the split is drawn.
#[derive(Debug, Clone)]
pub struct ElpvOptions {
    /// Python with pip; default: the project's (`adn_util::python::project_python`).
    pub python: Option<PathBuf>,
    /// Download cache; default `<workspace>/cache/pypi`.
    pub cache_dir: Option<PathBuf>,
    /// A wheel already on disk (its sha256 is still checked).
    pub wheel: Option<PathBuf>,
    pub seed: u64,
    pub train_fraction: f64,
}

impl Default for ElpvOptions {
    fn default() -> Self {
        ElpvOptions {
            python: None,
            cache_dir: None,
            wheel: None,
            seed: 0,
            train_fraction: TRAIN_FRACTION,
        }
    }
}

/// The pinned wheel.
pub const PINNED: PinnedWheel = PinnedWheel {
    package: PACKAGE,
    version: VERSION,
    file: WHEEL,
    sha256: WHEEL_SHA256,
};

/// `<workspace>/cache/pypi` (or `cache/pypi` under the current folder).
pub fn default_cache_dir() -> PathBuf {
    adn_util::python::workspace_root()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("cache")
        .join("pypi")
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, DatasetError> {
    adn_util::sha256_file(path).map_err(|e| DatasetError::io(path, e))
}

/// The pinned wheel on disk: `opts.wheel`, else the cached copy, else downloaded with pip
/// into the cache. Its sha256 is verified in every case.
pub fn obtain_wheel(opts: &ElpvOptions) -> Result<PathBuf, DatasetError> {
    if let Some(w) = &opts.wheel {
        PINNED.verify(w)?;
        return Ok(w.clone());
    }
    let cache = opts.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let python = opts
        .python
        .clone()
        .unwrap_or_else(adn_util::python::project_python);
    tracing::info!("fetching {} into {}", PINNED.requirement(), cache.display());
    Ok(PINNED.obtain(&cache, &python)?)
}

/// One row of `labels.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Label {
    pub path: String,
    pub probability: f64,
    pub cell_type: String,
}

/// Parses ELPV's `labels.csv`: whitespace-separated `path probability type` per line.
pub fn parse_labels(text: &str, origin: &Path) -> Result<Vec<Label>, DatasetError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad =
            |why: &str| DatasetError::invalid(origin, format!("line {}: {why}: `{line}`", i + 1));
        if fields.len() != 3 {
            return Err(bad("expected 3 fields (path, probability, type)"));
        }
        let probability: f64 = fields[1]
            .parse()
            .map_err(|_| bad("the probability is not a number"))?;
        if !(0.0..=1.0).contains(&probability) {
            return Err(bad("the probability is outside [0, 1]"));
        }
        if fields[2] != "mono" && fields[2] != "poly" {
            return Err(bad("the type is neither mono nor poly"));
        }
        if fields[0].contains("..") || fields[0].starts_with('/') {
            return Err(bad("the path leaves the data folder"));
        }
        out.push(Label {
            path: fields[0].to_string(),
            probability,
            cell_type: fields[2].to_string(),
        });
    }
    if out.is_empty() {
        return Err(DatasetError::invalid(origin, "no labels"));
    }
    Ok(out)
}

/// One file of the split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitEntry {
    /// Path inside the package's data folder (`images/cellNNNN.png`).
    pub source: String,
    pub probability: f64,
    /// Where it is written, relative to the category folder.
    pub dest: String,
}

/// The manifest of one category.
#[derive(Debug, Clone, Serialize)]
pub struct SplitManifest {
    pub dataset: &'static str,
    pub version: &'static str,
    pub wheel: String,
    pub wheel_sha256: String,
    pub category: String,
    pub cell_type: String,
    pub seed: u64,
    pub train_fraction: f64,
    pub rule: String,
    pub counts: Vec<(String, usize)>,
    pub excluded_uncertain: usize,
    pub licence: &'static str,
    pub files: Vec<SplitEntry>,
}

/// The split of one cell type, deterministic in `seed`.
pub fn split(
    labels: &[Label],
    cell_type: &str,
    seed: u64,
    train_fraction: f64,
) -> (Vec<SplitEntry>, usize) {
    let mut good: Vec<&Label> = labels
        .iter()
        .filter(|l| l.cell_type == cell_type && l.probability == 0.0)
        .collect();
    let mut bad: Vec<&Label> = labels
        .iter()
        .filter(|l| l.cell_type == cell_type && l.probability == 1.0)
        .collect();
    let excluded = labels
        .iter()
        .filter(|l| l.cell_type == cell_type && l.probability > 0.0 && l.probability < 1.0)
        .count();
    good.sort_by(|a, b| a.path.cmp(&b.path));
    bad.sort_by(|a, b| a.path.cmp(&b.path));
    let salt = if cell_type == "mono" {
        0x6d6f6e6f
    } else {
        0x706f6c79
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ salt);
    good.shuffle(&mut rng);
    let n_train = ((good.len() as f64) * train_fraction).round() as usize;
    let file = |l: &Label| {
        Path::new(&l.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| l.path.clone())
    };
    let mut entries = Vec::new();
    for (i, l) in good.iter().enumerate() {
        let folder = if i < n_train {
            "train/good"
        } else {
            "test/good"
        };
        entries.push(SplitEntry {
            source: l.path.clone(),
            probability: l.probability,
            dest: format!("{folder}/{}", file(l)),
        });
    }
    for l in bad {
        entries.push(SplitEntry {
            source: l.path.clone(),
            probability: l.probability,
            dest: format!("test/{DEFECT}/{}", file(l)),
        });
    }
    entries.sort_by(|a, b| a.dest.cmp(&b.dest));
    (entries, excluded)
}

/// What was made of one cell type.
#[derive(Debug, Clone, Serialize)]
pub struct ElpvCategory {
    pub name: String,
    pub path: PathBuf,
    pub outcome: Outcome,
    pub counts: Vec<(String, usize)>,
    pub excluded_uncertain: usize,
}

/// The licence and citation notice written beside the data.
pub const CITATION: &str = "\
# ELPV dataset: licence and citation

These images and labels come from the PyPI package `elpv-dataset` 1.0.0.post1 (the ELPV
dataset by Sergiu Deitsch, Claudia Buerhop-Lutz et al.). The data are licensed under the
Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International licence
(CC BY-NC-SA 4.0, full text in LICENSE.md): non-commercial use only, with attribution, and
derivatives shared under the same licence.

The split into train/good, test/good and test/defect is this project's (see split.json);
the images are unchanged.

If you use these data, cite:

- Buerhop-Lutz, C.; Deitsch, S.; Maier, A.; Gallwitz, F.; Berger, S.; Doll, B.; Hauch, J.;
  Camus, C.; Brabec, C. J. A Benchmark for Visual Identification of Defective Solar Cells
  in Electroluminescence Imagery. European PV Solar Energy Conference and Exhibition
  (EU PVSEC), 2018. DOI: 10.4229/35thEUPVSEC20182018-5CV.3.15
- Deitsch, S.; Christlein, V.; Berger, S.; Buerhop-Lutz, C.; Maier, A.; Gallwitz, F.;
  Riess, C. Automatic classification of defective photovoltaic module cells in
  electroluminescence images. Solar Energy 185 (2019), 455-468.
  DOI: 10.1016/j.solener.2019.02.067

```bibtex
@InProceedings{Buerhop2018,
  author    = {Buerhop-Lutz, Claudia and Deitsch, Sergiu and Maier, Andreas and Gallwitz, Florian and Berger, Stephan and Doll, Bernd and Hauch, Jens and Camus, Christian and Brabec, Christoph J.},
  title     = {A Benchmark for Visual Identification of Defective Solar Cells in Electroluminescence Imagery},
  booktitle = {European PV Solar Energy Conference and Exhibition (EU PVSEC)},
  year      = {2018},
  doi       = {10.4229/35thEUPVSEC20182018-5CV.3.15},
}

@Article{Deitsch2019,
  author  = {Deitsch, Sergiu and Christlein, Vincent and Berger, Stephan and Buerhop-Lutz, Claudia and Maier, Andreas and Gallwitz, Florian and Riess, Christian},
  title   = {Automatic classification of defective photovoltaic module cells in electroluminescence images},
  journal = {Solar Energy},
  year    = {2019},
  volume  = {185},
  pages   = {455--468},
  doi     = {10.1016/j.solener.2019.02.067},
}
```
";

fn read_entry(
    zip: &mut zip::ZipArchive<fs::File>,
    wheel: &Path,
    name: &str,
) -> Result<Vec<u8>, DatasetError> {
    let mut f = zip.by_name(name).map_err(|e| {
        DatasetError::invalid(wheel, format!("cannot read {name} from the wheel: {e}"))
    })?;
    // The size is what the archive claims; do not trust it for the allocation.
    let mut buf = Vec::with_capacity((f.size() as usize).min(1 << 24));
    f.read_to_end(&mut buf)
        .map_err(|e| DatasetError::invalid(wheel, format!("cannot read {name}: {e}")))?;
    Ok(buf)
}

fn licence_text(
    zip: &mut zip::ZipArchive<fs::File>,
    wheel: &Path,
) -> Result<Vec<u8>, DatasetError> {
    let name = zip
        .file_names()
        .find(|n| n.contains(".dist-info/") && n.to_ascii_uppercase().ends_with("LICENSE.MD"))
        .map(str::to_string);
    match name {
        Some(n) => read_entry(zip, wheel, &n),
        None => Ok(
            b"Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International \
            (CC BY-NC-SA 4.0): https://creativecommons.org/licenses/by-nc-sa/4.0/legalcode\n"
                .to_vec(),
        ),
    }
}

/// Writes `<out>/elpv-mono` and `<out>/elpv-poly` from a wheel. `expected_sha256` pins the
/// wheel (`Some(WHEEL_SHA256)` for the real package; tests pass their own or `None`).
pub fn write_from_wheel(
    wheel: &Path,
    out: &Path,
    seed: u64,
    train_fraction: f64,
    expected_sha256: Option<&str>,
) -> Result<Vec<ElpvCategory>, DatasetError> {
    if !(0.0..1.0).contains(&train_fraction) || train_fraction == 0.0 {
        return Err(DatasetError::invalid(
            wheel,
            format!("train fraction {train_fraction} is not in (0, 1)"),
        ));
    }
    let sha = sha256_file(wheel)?;
    if let Some(expected) = expected_sha256
        && sha != expected
    {
        return Err(WheelError::Checksum {
            path: wheel.to_path_buf(),
            expected: expected.to_string(),
            actual: sha,
        }
        .into());
    }
    let file = fs::File::open(wheel).map_err(|e| DatasetError::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| DatasetError::invalid(wheel, format!("not a readable wheel (zip): {e}")))?;
    let labels_bytes = read_entry(&mut zip, wheel, LABELS)?;
    let labels_origin = wheel.join(LABELS);
    let text = String::from_utf8(labels_bytes)
        .map_err(|_| DatasetError::invalid(&labels_origin, "not UTF-8 text"))?;
    let labels = parse_labels(&text, &labels_origin)?;
    let licence = licence_text(&mut zip, wheel)?;
    let wheel_name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    staging::ensure_dir(out)?;
    let mut made = Vec::new();
    for cell_type in ["mono", "poly"] {
        let name = format!("elpv-{cell_type}");
        let (files, excluded) = split(&labels, cell_type, seed, train_fraction);
        let mut counts: Vec<(String, usize)> = Vec::new();
        for folder in ["train/good", "test/good", &format!("test/{DEFECT}")] {
            let n = files
                .iter()
                .filter(|f| f.dest.starts_with(&format!("{folder}/")))
                .count();
            counts.push((folder.to_string(), n));
        }
        let manifest = SplitManifest {
            dataset: PACKAGE,
            version: VERSION,
            wheel: wheel_name.clone(),
            wheel_sha256: sha.clone(),
            category: name.clone(),
            cell_type: cell_type.to_string(),
            seed,
            train_fraction,
            rule: format!(
                "cells of type {cell_type}: probability 0 shuffled with ChaCha8(seed) and split \
                 round({train_fraction}·n) train / rest test good; probability 1 test/{DEFECT}; \
                 0 < p < 1 excluded"
            ),
            counts: counts.clone(),
            excluded_uncertain: excluded,
            licence: "CC BY-NC-SA 4.0",
            files,
        };
        let manifest_text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| DatasetError::write(out.join(&name).join(MANIFEST), e))?
            + "\n";
        let dest = out.join(&name);
        let outcome = if staging::already_present(&dest, MANIFEST, &manifest_text)? {
            Outcome::Unchanged
        } else {
            let stage = Staging::begin(out, &name)?;
            for f in &manifest.files {
                let bytes = read_entry(&mut zip, wheel, &format!("{DATA_DIR}{}", f.source))?;
                stage.write(&f.dest, &bytes)?;
            }
            stage.write("LICENSE.md", &licence)?;
            stage.write("CITATION.md", CITATION.as_bytes())?;
            stage.commit(MANIFEST, &manifest_text)?
        };
        made.push(ElpvCategory {
            name,
            path: dest,
            outcome,
            counts,
            excluded_uncertain: excluded,
        });
    }
    staging::write_file(&out.join("LICENSE-ELPV.md"), &licence)?;
    staging::write_file(&out.join("CITATION-ELPV.md"), CITATION.as_bytes())?;
    Ok(made)
}

/// Obtains the pinned wheel (see [`obtain_wheel`]) and writes the split into `out`.
pub fn make(out: &Path, opts: &ElpvOptions) -> Result<(PathBuf, Vec<ElpvCategory>), DatasetError> {
    let wheel = obtain_wheel(opts)?;
    let made = write_from_wheel(
        &wheel,
        out,
        opts.seed,
        opts.train_fraction,
        Some(WHEEL_SHA256),
    )?;
    Ok((wheel, made))
}

#[cfg(test)]
mod tests;
