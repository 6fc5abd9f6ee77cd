//! The experiment's figures (plotters), each as PNG and SVG: grouped AUROC bars with error
//! bars, ROC curves (overall and per defect type), score histograms (good vs anomalous) and
//! training curves. One colour per variant throughout.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::{Experiment, Run, Scores, read_scores};
use crate::tables::{Metric, baseline_of, cell, display_name};

/// The embedded DejaVu Sans (see `fonts/LICENSE-DejaVu.txt`): PNGs render the same on any
/// machine, with or without system fonts.
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FONT_NAME: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font is a valid TTF"));
    });
}

/// Variant colours: vanilla blue, SE orange, CBAM green, official CBAM red, then others.
const PALETTE: [RGBColor; 7] = [
    RGBColor(76, 114, 176),
    RGBColor(221, 132, 82),
    RGBColor(85, 168, 104),
    RGBColor(196, 78, 82),
    RGBColor(129, 114, 179),
    RGBColor(147, 120, 96),
    RGBColor(218, 139, 195),
];

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

/// Draws a chart's legend: white box, black border, at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT_NAME, size))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// A figure that can draw itself on any plotters backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Draws `fig` to `<stem>.png` and `<stem>.svg`, each under a temporary name first.
fn render(fig: &impl Figure, stem: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    register_font();
    let pid = std::process::id();
    for ext in ["png", "svg"] {
        let path = stem.with_extension(ext);
        let tmp = stem.with_extension(format!("tmp{pid}.{ext}"));
        {
            if ext == "png" {
                let area = BitMapBackend::new(&tmp, fig.size()).into_drawing_area();
                area.fill(&WHITE).map_err(err)?;
                fig.draw(&area)?;
                area.present().map_err(err)?;
            } else {
                let area = SVGBackend::new(&tmp, fig.size()).into_drawing_area();
                area.fill(&WHITE).map_err(err)?;
                fig.draw(&area)?;
                area.present().map_err(err)?;
            }
        }
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(())
}

fn slug(s: &str) -> String {
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

/// Grouped bars: one group per (dataset, category), one bar per variant, mean ± sd over
/// seeds, the value above each bar and the difference from vanilla under it.
struct Bars<'a> {
    exp: &'a Experiment,
    title: String,
    groups: Vec<(String, String)>,
    metric: Metric,
}

impl Figure for Bars<'_> {
    fn size(&self) -> (u32, u32) {
        ((200 * self.groups.len() as u32 + 160).clamp(900, 2600), 560)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let exp = self.exp;
        let variants = exp.variants();
        let nv = variants.len() as f64;
        let mut lo: f64 = 1.0;
        let mut cells = Vec::new();
        for (gi, (d, c)) in self.groups.iter().enumerate() {
            for (vi, v) in variants.iter().enumerate() {
                if let Some(x) = cell(exp, d, c, v, self.metric) {
                    lo = lo.min(x.mean - x.sd);
                    cells.push((gi, vi, v, x));
                }
            }
        }
        let lo = ((lo - 0.04) * 20.0).floor() / 20.0;
        let lo = lo.clamp(0.0, 0.9);
        let labels: Vec<String> = self
            .groups
            .iter()
            .map(|(d, c)| {
                if d == c || exp.categories(d).len() == 1 {
                    d.clone()
                } else {
                    format!("{d}: {c}")
                }
            })
            .collect();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT_NAME, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            // An empty strip on the right holds the legend, clear of the bars.
            .build_cartesian_2d(0.0..self.groups.len() as f64 + 0.55, lo..1.0)
            .map_err(err)?;
        let no_label = |_: &f64| String::new();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(2)
            .x_label_formatter(&no_label)
            .y_desc(format!("image AUROC ({})", self.metric.key()))
            .y_label_style((FONT_NAME, 14))
            .axis_desc_style((FONT_NAME, 15))
            .draw()
            .map_err(err)?;
        // Group names centred under their bars, in pixels (the axis ticks fall elsewhere).
        let label_style = TextStyle::from((FONT_NAME, 15).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        for (i, label) in labels.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, lo));
            area.draw(&Text::new(label.clone(), (px, py + 8), label_style.clone()))
                .map_err(err)?;
        }
        let width = 0.8 / nv;
        for (vi, v) in variants.iter().enumerate() {
            let col = colour(exp, v);
            let mine: Vec<_> = cells.iter().filter(|c| c.1 == vi).collect();
            chart
                .draw_series(mine.iter().map(|(gi, _, _, x)| {
                    let x0 = *gi as f64 + 0.1 + vi as f64 * width;
                    Rectangle::new([(x0, lo), (x0 + width * 0.92, x.mean)], col.filled())
                }))
                .map_err(err)?
                .label(display_name(v))
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], col.filled()));
            for (gi, _, _, x) in &mine {
                let xm = *gi as f64 + 0.1 + (vi as f64 + 0.46) * width;
                if x.n > 1 {
                    let (a, b) = (x.mean - x.sd, (x.mean + x.sd).min(1.0));
                    let w = width * 0.15;
                    chart
                        .draw_series([
                            PathElement::new(vec![(xm, a), (xm, b)], BLACK.stroke_width(2)),
                            PathElement::new(vec![(xm - w, a), (xm + w, a)], BLACK),
                            PathElement::new(vec![(xm - w, b), (xm + w, b)], BLACK),
                        ])
                        .map_err(err)?;
                }
                let top = (x.mean + x.sd).min(1.0);
                let text = format!("{:.1}", 100.0 * x.mean);
                let style = TextStyle::from((FONT_NAME, 13).into_font()).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    ),
                );
                chart
                    .draw_series(std::iter::once(Text::new(text, (xm, top), style)))
                    .map_err(err)?;
                // The difference from vanilla, inside the bar's foot.
                let (d, c) = &self.groups[*gi];
                if let Some(base) = baseline_of(exp, v)
                    && let Some(b) = cell(exp, d, c, &base, self.metric)
                {
                    let diff = 100.0 * (x.mean - b.mean);
                    let style = TextStyle::from((FONT_NAME, 12).into_font())
                        .color(&WHITE)
                        .pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Bottom,
                        ));
                    let y = lo + (1.0 - lo) * 0.02;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("{diff:+.1}"),
                            (xm, y),
                            style,
                        )))
                        .map_err(err)?;
                }
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 14)?;
        Ok(())
    }
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

/// ROC curves of each variant (first seed): all anomalies, then each defect type alone.
struct Rocs<'a> {
    exp: &'a Experiment,
    title: String,
    curves: &'a [(String, Scores)],
}

impl Rocs<'_> {
    fn panels(&self) -> Vec<String> {
        let mut defects: Vec<String> = Vec::new();
        if let Some((_, s)) = self.curves.first() {
            for (d, &l) in s.defects.iter().zip(&s.labels) {
                if l && !defects.contains(d) {
                    defects.push(d.clone());
                }
            }
        }
        let mut panels = vec!["all defects".to_string()];
        if defects.len() > 1 {
            panels.extend(defects.into_iter().take(5));
        }
        panels
    }
}

impl Figure for Rocs<'_> {
    fn size(&self) -> (u32, u32) {
        ((380 * self.panels().len() as u32 + 20).max(760), 440)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let area = area.titled(&self.title, (FONT_NAME, 20)).map_err(err)?;
        let panels = self.panels();
        let cells = area.split_evenly((1, panels.len()));
        for (panel, sub) in panels.iter().zip(cells.iter()) {
            let mut chart = ChartBuilder::on(sub)
                .caption(panel, (FONT_NAME, 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(0.0..1.0, 0.0..1.0)
                .map_err(err)?;
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_desc("false positive rate")
                .y_desc("true positive rate")
                .label_style((FONT_NAME, 12))
                .axis_desc_style((FONT_NAME, 13))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, 0.0), (1.0, 1.0)],
                    BLACK.mix(0.3),
                )))
                .map_err(err)?;
            for (v, s) in self.curves {
                let keep: Vec<usize> = (0..s.labels.len())
                    .filter(|&i| !s.labels[i] || panel == "all defects" || &s.defects[i] == panel)
                    .collect();
                let labels: Vec<bool> = keep.iter().map(|&i| s.labels[i]).collect();
                let scores: Vec<f64> = keep.iter().map(|&i| s.scores[i]).collect();
                let Ok(curve) = adn_metrics::roc_curve(&labels, &scores, false) else {
                    continue;
                };
                let auc = adn_metrics::auroc(&labels, &scores).unwrap_or(f64::NAN);
                let col = colour(self.exp, v);
                chart
                    .draw_series(LineSeries::new(
                        curve.fpr.iter().copied().zip(curve.tpr.iter().copied()),
                        col.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(format!("{} ({:.3})", display_name(v), auc))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                    });
            }
            legend(&mut chart, SeriesLabelPosition::LowerRight, 12)?;
        }
        Ok(())
    }
}

/// Histograms of log10 scores, good vs anomalous, one panel per variant (first seed).
struct Histograms<'a> {
    title: String,
    curves: &'a [(String, Scores)],
}

impl Figure for Histograms<'_> {
    fn size(&self) -> (u32, u32) {
        ((360 * self.curves.len().max(1) as u32 + 20).max(760), 400)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let area = area.titled(&self.title, (FONT_NAME, 20)).map_err(err)?;
        let logs: Vec<Vec<f64>> = self
            .curves
            .iter()
            .map(|(_, s)| s.scores.iter().map(|x| x.max(1e-12).log10()).collect())
            .collect();
        let cells = area.split_evenly((1, self.curves.len().max(1)));
        let good_col = RGBColor(76, 114, 176);
        let bad_col = RGBColor(196, 78, 82);
        for (((v, s), log), sub) in self.curves.iter().zip(&logs).zip(cells.iter()) {
            let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
            for x in log {
                a = a.min(*x);
                b = b.max(*x);
            }
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            if b - a < 1e-9 {
                b = a + 1.0;
            }
            let bins = 24;
            let w = (b - a) / bins as f64;
            let hist = |want: bool| {
                let mut h = vec![0usize; bins];
                for (x, &l) in log.iter().zip(&s.labels) {
                    if l == want {
                        h[(((x - a) / w) as usize).min(bins - 1)] += 1;
                    }
                }
                let n = h.iter().sum::<usize>().max(1) as f64;
                h.into_iter().map(|c| c as f64 / n).collect::<Vec<f64>>()
            };
            let (hg, ha) = (hist(false), hist(true));
            let top = hg.iter().chain(&ha).fold(0.0f64, |m, &x| m.max(x)) * 1.1;
            let mut chart = ChartBuilder::on(sub)
                .caption(display_name(v), (FONT_NAME, 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(a..b, 0.0..top.max(1e-3))
                .map_err(err)?;
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_desc("log10 anomaly score")
                .y_desc("fraction of images")
                .label_style((FONT_NAME, 12))
                .axis_desc_style((FONT_NAME, 13))
                .draw()
                .map_err(err)?;
            for (h, col, name) in [(&hg, good_col, "good"), (&ha, bad_col, "anomalous")] {
                chart
                    .draw_series(h.iter().enumerate().map(|(i, &f)| {
                        let x0 = a + i as f64 * w;
                        Rectangle::new([(x0, 0.0), (x0 + w, f)], col.mix(0.5).filled())
                    }))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.mix(0.5).filled())
                    });
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
        }
        Ok(())
    }
}

/// (meta-epoch counted from 1, mean training loss, mean test AUROC).
type EpochPoint = (f64, f64, f64);

/// Training loss and test AUROC per meta-epoch, mean over seeds, one line per variant.
struct Training<'a> {
    exp: &'a Experiment,
    title: String,
    dataset: String,
    category: String,
}

impl Training<'_> {
    /// Variant → per meta-epoch (loss, auroc), averaged over the complete seeds.
    fn curves(&self) -> Vec<(String, Vec<EpochPoint>)> {
        self.exp
            .variants()
            .into_iter()
            .filter_map(|v| {
                let runs = self.exp.complete(&self.dataset, &self.category, &v);
                let trajs: Vec<_> = runs
                    .iter()
                    .filter_map(|r| r.metrics.as_ref().map(|m| &m.trajectory))
                    .collect();
                let len = trajs.iter().map(|t| t.len()).min()?;
                let pts = (0..len)
                    .map(|i| {
                        let n = trajs.len() as f64;
                        let loss = trajs.iter().map(|t| t[i].train_loss).sum::<f64>() / n;
                        let auc = trajs.iter().map(|t| t[i].auroc).sum::<f64>() / n;
                        ((i + 1) as f64, loss, auc)
                    })
                    .collect();
                Some((v, pts))
            })
            .collect()
    }
}

impl Figure for Training<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 420)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let area = area.titled(&self.title, (FONT_NAME, 20)).map_err(err)?;
        let curves = self.curves();
        let epochs = curves
            .iter()
            .map(|(_, p)| p.len())
            .max()
            .unwrap_or(1)
            .max(2) as f64;
        let cells = area.split_evenly((1, 2));
        for (panel, sub) in cells.iter().enumerate() {
            let pick = |p: &(f64, f64, f64)| if panel == 0 { p.1 } else { p.2 };
            let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
            for (_, pts) in &curves {
                for p in pts {
                    a = a.min(pick(p));
                    b = b.max(pick(p));
                }
            }
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            let pad = ((b - a) * 0.08).max(1e-3);
            let (a, b) = if panel == 1 {
                ((a - pad).max(0.0), (b + pad).min(1.0))
            } else {
                (a - pad, b + pad)
            };
            let mut chart = ChartBuilder::on(sub)
                .caption(
                    if panel == 0 {
                        "training loss (NLL per dimension)"
                    } else {
                        "test image AUROC"
                    },
                    (FONT_NAME, 16),
                )
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(1.0..epochs, a..b)
                .map_err(err)?;
            let whole = |x: &f64| format!("{x:.0}");
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_labels(epochs as usize)
                .x_label_formatter(&whole)
                .x_desc("meta-epoch")
                .label_style((FONT_NAME, 12))
                .axis_desc_style((FONT_NAME, 13))
                .draw()
                .map_err(err)?;
            for (v, pts) in &curves {
                let col = colour(self.exp, v);
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().map(|p| (p.0, pick(p))),
                        col.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(display_name(v))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                    });
            }
            legend(
                &mut chart,
                if panel == 0 {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                },
                12,
            )?;
        }
        Ok(())
    }
}

/// Writes every figure of the experiment under `figures/`; returns the files.
pub fn write_figures(exp: &Experiment) -> Result<Vec<PathBuf>> {
    let dir = exp.dir.join("figures");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
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
    for metric in [Metric::Last, Metric::Best] {
        let suffix = match metric {
            Metric::Last => "last epoch, no model selection",
            Metric::Best => "best epoch, selected on the test set",
        };
        render(
            &Bars {
                exp,
                title: format!(
                    "{}: image AUROC per variant (mean ± sd over seeds; {suffix})",
                    exp.plan.experiment
                ),
                groups: groups.clone(),
                metric,
            },
            &dir.join(format!("{}_bars", metric.key())),
            &mut written,
        )?;
    }
    for (d, c) in &groups {
        let stem = format!("{}_{}", slug(d), slug(c));
        let curves: Vec<(String, Scores)> = first_runs(exp, d, c)
            .into_iter()
            .filter_map(|(v, r)| Some((v, read_scores(r).ok()?)))
            .collect();
        if curves.is_empty() {
            continue;
        }
        let seed = exp
            .complete(d, c, &curves[0].0)
            .first()
            .map_or(0, |r| r.seed);
        render(
            &Rocs {
                exp,
                title: format!(
                    "{d} / {c}: ROC after the last epoch (seed {seed}; AUROC in legend)"
                ),
                curves: &curves,
            },
            &dir.join(format!("roc_{stem}")),
            &mut written,
        )?;
        render(
            &Histograms {
                title: format!("{d} / {c}: test scores, good vs anomalous (seed {seed})"),
                curves: &curves,
            },
            &dir.join(format!("scores_{stem}")),
            &mut written,
        )?;
        render(
            &Training {
                exp,
                title: format!("{d} / {c}: training (mean over seeds)"),
                dataset: d.clone(),
                category: c.clone(),
            },
            &dir.join(format!("training_{stem}")),
            &mut written,
        )?;
    }
    Ok(written)
}

/// `explain.json` as `adn explain` writes it.
#[derive(serde::Deserialize)]
struct Explanation {
    layer: String,
    images: Vec<(String, String)>,
    runs: Vec<ExplainedRun>,
    inputs: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ExplainedRun {
    attention: String,
    overlays: Vec<String>,
}

fn rgb(path: &Path) -> Result<(u32, u32, Vec<u8>)> {
    let img = image::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .to_rgb8();
    Ok((img.width(), img.height(), img.into_raw()))
}

/// The paper's qualitative figure from an `adn explain` folder: test images (rows) ×
/// {input, each run's Grad-CAM overlay} (columns), as `<stem>.png` (bitmaps do not go into
/// the SVG backend without its image feature, so PNG only).
pub fn write_gradcam_grid(explain_dir: &Path, title: &str, stem: &Path) -> Result<PathBuf> {
    register_font();
    let text = fs::read_to_string(explain_dir.join("explain.json"))
        .with_context(|| format!("cannot read {}/explain.json", explain_dir.display()))?;
    let e: Explanation = serde_json::from_str(&text)
        .with_context(|| format!("{}/explain.json is not valid", explain_dir.display()))?;
    let (cell, _, _) = rgb(&explain_dir.join(&e.inputs[0]))?;
    let (left, top, gap) = (110u32, 70u32, 6u32);
    let cols = 1 + e.runs.len() as u32;
    let rows = e.images.len() as u32;
    let size = (left + cols * (cell + gap), top + rows * (cell + gap));
    let path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
    {
        let area = BitMapBackend::new(&tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let style = |px| TextStyle::from((FONT_NAME, px).into_font());
        area.draw(&Text::new(
            format!("{title}: Grad-CAM of the anomaly score at {}", e.layer),
            (10, 8),
            style(18),
        ))
        .map_err(err)?;
        let mut headers = vec!["input".to_string()];
        headers.extend(e.runs.iter().map(|r| display_name(&r.attention)));
        for (c, h) in headers.iter().enumerate() {
            let x = (left + c as u32 * (cell + gap)) as i32;
            area.draw(&Text::new(h.clone(), (x, top as i32 - 24), style(15)))
                .map_err(err)?;
        }
        for (r, (_, defect)) in e.images.iter().enumerate() {
            let y = (top + r as u32 * (cell + gap)) as i32;
            area.draw(&Text::new(
                defect.clone(),
                (8, y + cell as i32 / 2 - 8),
                style(14),
            ))
            .map_err(err)?;
            let mut files = vec![e.inputs[r].clone()];
            files.extend(e.runs.iter().map(|run| run.overlays[r].clone()));
            for (c, f) in files.iter().enumerate() {
                let (w, h, buf) = rgb(&explain_dir.join(f))?;
                let x = (left + c as u32 * (cell + gap)) as i32;
                let bitmap = BitMapElement::with_owned_buffer((x, y), (w, h), buf)
                    .context("image buffer of the wrong size")?;
                area.draw(&bitmap).map_err(err)?;
            }
        }
        area.present().map_err(err)?;
    }
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Per dataset × category, the run folders of the first complete seed of every variant,
/// when each still holds its model: the input of `adn explain`. The file stem of the
/// figure comes with them.
pub fn gradcam_inputs(exp: &Experiment) -> Vec<(String, String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    for d in exp.datasets() {
        for c in exp.categories(&d) {
            let runs: Vec<PathBuf> = first_runs(exp, &d, &c)
                .into_iter()
                .map(|(_, r)| r.dir.clone())
                .collect();
            if !runs.is_empty() && runs.iter().all(|r| r.join("model.safetensors").is_file()) {
                let stem = format!("gradcam_{}_{}", slug(&d), slug(&c));
                out.push((format!("{d} / {c}"), stem, runs));
            }
        }
    }
    out
}
