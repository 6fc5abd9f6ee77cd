//! The experiment's figures (plotters), each as PNG and SVG: grouped AUROC bars with error
//! bars, ROC curves (overall and per defect type), score histograms (good vs anomalous) and
//! training curves. One colour per variant throughout.

mod attention;
mod bars;
mod delta;
mod diagnostics;
mod glyphs;
mod gradcam;
mod grid;
mod heatmap;
mod hist;
pub mod layout;
mod maps;
mod print;
mod roc;
mod training;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::{Experiment, Run, Scores, read_scores};
use crate::tables::{Metric, metrics_of};

pub use attention::{check_attention_pictures, write_attention_pictures};
use bars::Bars;
use delta::Deltas;
use diagnostics::DiagnosticsFigure;
pub use gradcam::{ExplainGroup, check_gradcam_grid, explain_groups, write_gradcam_grid};
pub use grid::{ColumnPlaces, PagePlaces, stale_pages};
use hist::Histograms;
pub use maps::{
    check_category_maps, check_map_grid, run_folder_name, write_category_maps, write_map_grid,
};
use roc::Rocs;
use training::Training;
/// The embedded DejaVu Sans (see `fonts/LICENSE-DejaVu.txt`): PNGs render the same on any
/// machine, with or without system fonts.
static FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const FONT_NAME: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font is a valid TTF"));
    });
}

/// Variant colours, Okabe and Ito's (distinct under the common colour-vision deficiencies):
/// DifferNet blue, SE orange, CBAM lab bluish green, CBAM official vermillion, then reddish
/// purple, sky blue and black for other variants.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// For a variant that names a regime (`se / joint`): its attention and the regime's index
/// in the experiment's order of regimes.
fn regime_of<'a>(exp: &Experiment, variant: &'a str) -> Option<(&'a str, usize)> {
    let (attention, rest) = variant.split_once(" / ")?;
    let regime = rest.split(" (").next().unwrap_or(rest);
    let mut regimes: Vec<&str> = Vec::new();
    for r in &exp.runs {
        if let Some((_, rest)) = r.variant.split_once(" / ") {
            let name = rest.split(" (").next().unwrap_or(rest);
            if !regimes.contains(&name) {
                regimes.push(name);
            }
        }
    }
    Some((
        attention,
        regimes.iter().position(|r| *r == regime).unwrap_or(0),
    ))
}

fn darker(c: RGBColor, f: f64) -> RGBColor {
    let m = |v: u8| (v as f64 * f) as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

/// A variant's line colour where regimes share an attention's hue: the first regime in the
/// attention's colour, the next darker, the next darker still (never paler: pale tints
/// vanish in grey print; the lines also differ in dash and marker).
fn variant_colour(exp: &Experiment, variant: &str) -> RGBColor {
    let Some((attention, k)) = regime_of(exp, variant) else {
        return colour(exp, variant);
    };
    let base = colour(exp, attention);
    match k % 3 {
        0 => base,
        1 => darker(base, 0.7),
        _ => darker(base, 0.45),
    }
}

/// How a variant's bar is filled: regimes of one attention share its hue and differ in
/// more than shade (solid, hollow with a thick outline, solid darker), so that they stay
/// apart in grey print.
fn variant_fill(exp: &Experiment, variant: &str) -> print::Fill {
    let Some((attention, k)) = regime_of(exp, variant) else {
        return print::Fill::Solid(colour(exp, variant));
    };
    let base = colour(exp, attention);
    match k % 3 {
        0 => print::Fill::Solid(base),
        1 => print::Fill::Hollow(base),
        _ => print::Fill::Solid(darker(base, 0.55)),
    }
}

/// Legend entries of variants drawn as lines: the `k`-th in the `k`-th look of its colour.
fn line_items<'a>(
    exp: &Experiment,
    variants: impl Iterator<Item = &'a String>,
) -> Vec<(String, print::Swatch)> {
    variants
        .enumerate()
        .map(|(k, v)| {
            (
                crate::tables::display_name(v),
                print::Swatch::Line(print::look(variant_colour(exp, v), k)),
            )
        })
        .collect()
}

fn colour(exp: &Experiment, variant: &str) -> RGBColor {
    let fixed = match variant.split(' ').next().unwrap_or("") {
        "none" => Some(0),
        "se" => Some(1),
        "cbam" => Some(2),
        "cbam-official" => Some(3),
        _ => None,
    };
    if let (Some(i), false) = (fixed, variant.contains(' ')) {
        return PALETTE[i];
    }
    // Each flow's vanilla in the vanilla hue, darker flow by flow: attention keeps its own
    // hues whatever flow it is in front of.
    if fixed == Some(0) {
        let flows = exp.flows();
        let run = exp.runs.iter().find(|r| r.variant == variant);
        if let Some(k) = run
            .and_then(|r| r.axes.get(crate::gather::FLOW_KEY))
            .and_then(|f| flows.iter().position(|g| g == f))
        {
            return darker(PALETTE[0], [1.0, 0.75, 0.55, 0.4][k % 4]);
        }
    }
    let i = exp
        .variants()
        .iter()
        .position(|v| v == variant)
        .unwrap_or(0);
    PALETTE[(4 + i) % PALETTE.len()]
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// A figure that can draw itself on any plotters backend, at `u` pixels per point of its
/// print size (see `print`; figures drawn at a fixed pixel size ignore it).
trait Figure {
    fn size(&self, u: f64) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()>;
}

/// Where the figures go: drawn to files, or only laid out and checked against the print
/// rules ([`layout`]).
enum Sink {
    Files(Vec<PathBuf>),
    /// Each figure's stem and extension (`png`, `svg`) with its layout.
    Check(Vec<(String, layout::Layout)>),
}

/// Draws `fig` to `<stem>.png` and `<stem>.svg`, each under a temporary name first.
fn render(fig: &impl Figure, stem: &Path, sink: &mut Sink) -> Result<()> {
    render_as(fig, stem, &["png", "svg"], sink)
}

/// Draws `fig` to `<stem>.<ext>` for each of `exts` (`png`, `svg`), each under a temporary
/// name first; or, checking, records its layout at that extension's pixels per point.
fn render_as(fig: &impl Figure, stem: &Path, exts: &[&str], sink: &mut Sink) -> Result<()> {
    register_font();
    let pid = std::process::id();
    for &ext in exts {
        let u = if ext == "png" {
            print::PNG_UNIT
        } else {
            print::SVG_UNIT
        };
        let written = match sink {
            Sink::Check(layouts) => {
                let size = fig.size(u);
                let (recorder, texts) = layout::Recorder::new(size, u);
                fig.draw(&recorder.into_drawing_area(), u)?;
                let name = stem.file_name().unwrap_or_default().to_string_lossy();
                layouts.push((
                    format!("{name}.{ext}"),
                    layout::Layout::of(size.0, size.1, u, texts.take()),
                ));
                continue;
            }
            Sink::Files(written) => written,
        };
        let path = stem.with_extension(ext);
        let tmp = stem.with_extension(format!("tmp{pid}.{ext}"));
        {
            if ext == "png" {
                let area =
                    glyphs::Glyphs(BitMapBackend::new(&tmp, fig.size(u))).into_drawing_area();
                area.fill(&WHITE).map_err(err)?;
                fig.draw(&area, u)?;
                area.present().map_err(err)?;
            } else {
                let area = SVGBackend::new(&tmp, fig.size(u)).into_drawing_area();
                area.fill(&WHITE).map_err(err)?;
                fig.draw(&area, u)?;
                area.present().map_err(err)?;
            }
        }
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(())
}

/// A file-name part of `s`: lowercase ASCII letters and digits, runs of anything else as one `-`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The first complete seed of each variant on one category.
fn first_runs<'a>(exp: &'a Experiment, dataset: &str, category: &str) -> Vec<(String, &'a Run)> {
    exp.variants()
        .into_iter()
        .filter_map(|v| {
            let r = exp.complete(dataset, category, &v).into_iter().next()?;
            Some((v, r))
        })
        .collect()
}

/// Writes every figure of the experiment under `figures/`; returns the files.
pub fn write_figures(exp: &Experiment) -> Result<Vec<PathBuf>> {
    let dir = exp.dir.join("figures");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut sink = Sink::Files(Vec::new());
    draw_figures(exp, &dir, &mut sink)?;
    match sink {
        Sink::Files(written) => Ok(written),
        Sink::Check(_) => unreachable!("drawn to files"),
    }
}

/// Lays out every figure [`write_figures`] draws, as PNG and as SVG, without writing a
/// file, and returns each one's name with its breaches of the print rules (empty when it
/// keeps them).
pub fn check_figures(exp: &Experiment) -> Result<Vec<(String, Vec<String>)>> {
    let mut sink = Sink::Check(Vec::new());
    draw_figures(exp, &exp.dir.join("figures"), &mut sink)?;
    match sink {
        Sink::Check(layouts) => Ok(layouts
            .into_iter()
            .map(|(name, l)| (name, l.violations()))
            .collect()),
        Sink::Files(_) => unreachable!("laid out only"),
    }
}

fn draw_figures(exp: &Experiment, dir: &Path, written: &mut Sink) -> Result<()> {
    let groups: Vec<(String, String)> = exp
        .datasets()
        .into_iter()
        .flat_map(|d| {
            exp.categories(&d)
                .into_iter()
                .map(move |c| (d.clone(), c))
                .collect::<Vec<_>>()
        })
        .collect();
    for metric in [Metric::Last, Metric::Best, Metric::PixelAuroc] {
        // Pixel metrics only where the test sets have masks.
        let groups: Vec<(String, String)> = groups
            .iter()
            .filter(|(d, _)| metrics_of(exp, d).contains(&metric))
            .cloned()
            .collect();
        if groups.is_empty() {
            continue;
        }
        render(
            &Bars {
                exp,
                groups,
                metric,
            },
            &dir.join(format!("{}_bars", metric.key())),
            written,
        )?;
    }
    // The effects themselves, where there is a baseline to compare with.
    for metric in [Metric::Last, Metric::PixelAuroc] {
        let deltas = Deltas { exp, metric };
        if deltas.has_data() {
            render(
                &deltas,
                &dir.join(format!("{}_delta", metric.key())),
                written,
            )?;
        }
    }
    // Datasets with many categories: the category × variant heat map.
    for d in exp.datasets() {
        if exp.categories(&d).len() > 1 {
            render(
                &heatmap::Heatmap {
                    exp,
                    dataset: d.clone(),
                    metric: Metric::Last,
                },
                &dir.join(format!("heatmap_{}", slug(&d))),
                written,
            )?;
        }
    }
    for (d, c) in &groups {
        let stem = format!("{}_{}", slug(d), slug(c));
        // Every complete seed of every variant, for the ROC bands and pooled histograms.
        let seeds: Vec<(String, Vec<Scores>)> = exp
            .variants()
            .into_iter()
            .filter_map(|v| {
                let s: Vec<Scores> = exp
                    .complete(d, c, &v)
                    .into_iter()
                    .filter_map(|r| read_scores(r).ok())
                    .collect();
                (!s.is_empty()).then_some((v, s))
            })
            .collect();
        if seeds.is_empty() {
            continue;
        }
        render(
            &Rocs { exp, seeds: &seeds },
            &dir.join(format!("roc_{stem}")),
            written,
        )?;
        render(
            &Histograms { seeds: &seeds },
            &dir.join(format!("scores_{stem}")),
            written,
        )?;
        render(
            &Training {
                exp,
                dataset: d.clone(),
                category: c.clone(),
            },
            &dir.join(format!("training_{stem}")),
            written,
        )?;
        let diagnostics = DiagnosticsFigure {
            exp,
            dataset: d.clone(),
            category: c.clone(),
        };
        if diagnostics.has_data() {
            render(
                &diagnostics,
                &dir.join(format!("diagnostics_{stem}")),
                written,
            )?;
        }
    }
    Ok(())
}
