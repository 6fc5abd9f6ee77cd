//! One static HTML page per experiment (`results/<experiment>/index.html`): the headline
//! and every table (sortable, with intervals and Holm-adjusted p-values), every figure with
//! a caption written from the data, and a detail view per run (its config, facts, metrics,
//! training curve and ROC). No server and no network: the page links only files beside it,
//! its charts are inline SVG, its script sorts tables. Rendered with minijinja from
//! `templates/experiment.html`, which escapes every value it is given.
//!
//! Run folders hold models and are not committed, so what the page shows of a run is copied
//! into it: it stays whole where only the experiment's tables and figures are.

mod captions;
mod chart;

use std::fs;
use std::path::{Path, PathBuf};

use adn_record::files;
use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use crate::figures::slug;
use crate::gather::{Experiment, Run, Status, read_scores};
use crate::published::Published;
use crate::tables::{
    Metric, TextTable, all_tables, display_name, headline_table, latex_escape, machines_note,
};
pub use captions::caption;
use chart::{Axes, Series, line_chart, range_of, thin};

const TEMPLATE: &str = include_str!("../../templates/experiment.html");

/// Okabe–Ito blue and vermillion: apart for every common colour-vision deficiency.
const BLUE: &str = "#0072b2";
const VERMILLION: &str = "#d55e00";

#[derive(Serialize)]
struct Cell {
    text: String,
    bold: bool,
    /// The number a column sorts by (the cell's first number), when it has one.
    sort: Option<f64>,
}

impl Cell {
    fn new(text: &str) -> Cell {
        let (text, bold) = match text.strip_prefix("**").and_then(|t| t.strip_suffix("**")) {
            Some(inner) => (inner.to_string(), true),
            None => (text.to_string(), false),
        };
        let sort = first_number(&text);
        Cell { text, bold, sort }
    }
}

/// The first decimal number in `text` (with `−` read as a minus), e.g. 89.54 of
/// `89.54 ± 0.80` and −1.07 of `−1.07 (0.79; 0.79)`.
fn first_number(text: &str) -> Option<f64> {
    let t = text.replace('−', "-");
    let start = t.find(|c: char| c.is_ascii_digit())?;
    let begin = if t[..start].ends_with(['-', '+']) {
        start - 1
    } else {
        start
    };
    let end = t[start..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e'))
        .map_or(t.len(), |e| start + e);
    t[begin..end].parse().ok()
}

#[derive(Serialize)]
struct PageTable {
    id: String,
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
    notes: Vec<String>,
}

fn page_table(t: &TextTable) -> PageTable {
    PageTable {
        id: format!("table-{}", slug(&t.title)),
        title: t.title.clone(),
        header: t.header.clone(),
        rows: t
            .rows
            .iter()
            .map(|r| r.iter().map(|c| Cell::new(c)).collect())
            .collect(),
        notes: t.notes.clone(),
    }
}

#[derive(Serialize)]
struct PageFigure {
    id: String,
    src: String,
    /// Shown at 1.5 × print size: the PNGs are drawn at 216 dpi for a 96 dpi CSS pixel.
    width: u32,
    svg: Option<String>,
    caption: String,
}

#[derive(Serialize)]
struct PageRun {
    id: String,
    dataset: String,
    category: String,
    variant: String,
    seed: i64,
    status: String,
    error: Option<String>,
    cells: Vec<Cell>,
    detail: Option<RunDetail>,
}

#[derive(Serialize)]
struct RunDetail {
    config: Option<String>,
    facts: Vec<(String, String)>,
    metrics: Vec<(String, String)>,
    thresholds: Vec<(String, String, String)>,
    charts: Vec<String>,
    maps: Option<(String, String)>,
    /// This run's column of the anomaly-map figure and the input column beside it, cut
    /// from the figure's pages.
    crops: Vec<MapCrop>,
}

/// A column cut from a figure's PNG at half its pixel size, as CSS draws it: a box `w` × `h`
/// showing the picture `size` wide, shifted by `x`, `y`.
#[derive(Serialize, Debug, PartialEq)]
struct MapCrop {
    label: String,
    file: String,
    size: f64,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// The crops of `run`'s map column (with the input beside it) from the places a map
/// figure recorded, page by page; none when the run is not one of its columns.
fn map_crops(places: &crate::figures::ColumnPlaces, run: &Run) -> Vec<MapCrop> {
    let key = run
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scale = 0.5;
    let mut crops = Vec::new();
    for p in &places.pages {
        let Some((_, x)) = p.columns.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        let crop = |label: &str, x: i32, w: u32| MapCrop {
            label: label.to_string(),
            file: p.file.clone(),
            size: p.width as f64 * scale,
            x: x as f64 * scale,
            y: p.top as f64 * scale,
            w: w as f64 * scale,
            h: (p.bottom - p.top) as f64 * scale,
        };
        if let Some(input) = p.input_x {
            // The row labels left of the input (what each row shows), then the input.
            crops.push(crop("the rows' defect types", 0, input.max(0) as u32));
            crops.push(crop("the input, masks in red", input, p.cell));
        }
        crops.push(crop("this run's anomaly maps", *x, p.cell));
    }
    crops
}

/// The columns of the runs table after its identifying ones.
const RUN_COLUMNS: [&str; 5] = [
    "AUROC last %",
    "AUROC best %",
    "pixel AUROC %",
    "AUPRO %",
    "wall s",
];

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.2}", 100.0 * v))
}

fn run_cells(run: &Run) -> Vec<Cell> {
    let m = run.metrics.as_ref();
    let pixel = m.and_then(|m| m.pixel.as_ref());
    [
        pct(m.map(|m| m.auroc_last)),
        pct(m.map(|m| m.auroc_best)),
        pct(pixel.map(|p| p.auroc)),
        pct(pixel.map(|p| p.aupro)),
        run.manifest
            .as_ref()
            .map_or("–".into(), |f| format!("{:.1}", f.wall_s.total)),
    ]
    .iter()
    .map(|t| Cell::new(t))
    .collect()
}

/// A complete run's detail view: what it recorded, drawn small.
fn run_detail(exp: &Experiment, run: &Run, figures: &[PageFigure]) -> Option<RunDetail> {
    let (m, f) = (run.metrics.as_ref()?, run.manifest.as_ref()?);
    let config = fs::read_to_string(run.dir.join(files::CONFIG))
        .ok()
        .filter(|c| !c.trim().is_empty());
    let mut facts = vec![
        (
            "device".to_string(),
            format!(
                "{} ({} thread{})",
                f.device,
                f.threads,
                if f.threads == 1 { "" } else { "s" }
            ),
        ),
        (
            "CPU".into(),
            f.machine
                .as_ref()
                .map_or("not recorded".into(), |m| m.cpu.clone()),
        ),
        (
            "reproducible mode".into(),
            f.machine
                .as_ref()
                .map_or("not recorded".into(), |m| m.reproducible.to_string()),
        ),
        (
            "precision (features / flow)".into(),
            format!("{:?} / {:?}", f.precision, f.flow_precision).to_lowercase(),
        ),
        ("backbone weights".into(), f.backbone_weights.clone()),
        (
            "images (train / test)".into(),
            format!("{} / {}", f.dataset.train_images, f.dataset.test_images),
        ),
        ("feature dimension".into(), f.feature_dim.to_string()),
        (
            "wall time (s): features / train / total".into(),
            format!(
                "{:.1} / {:.1} / {:.1}",
                f.wall_s.features, f.wall_s.train, f.wall_s.total
            ),
        ),
    ];
    if let Some(commit) = &f.git_commit {
        facts.push(("git commit".into(), commit.clone()));
    }
    let mut metrics = vec![
        (
            "AUROC, last meta-epoch (%)".to_string(),
            pct(Some(m.auroc_last)),
        ),
        (
            format!(
                "AUROC at meta-epoch {}: {} (%)",
                m.auroc_best_epoch, m.auroc_best_selection
            ),
            pct(Some(m.auroc_best)),
        ),
        (
            format!(
                "AUROC at the lowest loss, meta-epoch {} (%)",
                m.auroc_min_loss_epoch
            ),
            pct(Some(m.auroc_min_loss)),
        ),
    ];
    if let Some(p) = &m.pixel {
        metrics.extend([
            ("anomaly map".to_string(), p.map.clone()),
            ("pixel AUROC (%)".into(), pct(Some(p.auroc))),
            (
                format!("AUPRO up to FPR {:.0} % (%)", 100.0 * p.aupro_max_fpr),
                pct(Some(p.aupro)),
            ),
            (
                "map peak inside the mask (%)".into(),
                pct(Some(p.peak_in_mask)),
            ),
        ]);
    }
    let thresholds = m
        .thresholds
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                format!("{:.6}", t.value),
                format!(
                    "{} ({} images){}",
                    t.chosen_on,
                    t.images,
                    if t.on_test_set {
                        "; chosen on the test set"
                    } else {
                        ""
                    }
                ),
            )
        })
        .collect();
    let mut charts = Vec::new();
    let epochs = range_of(m.trajectory.iter().map(|p| p.meta_epoch as f64));
    let loss: Vec<(f64, f64)> = m
        .trajectory
        .iter()
        .map(|p| (p.meta_epoch as f64, p.train_loss))
        .collect();
    charts.push(line_chart(
        "training loss per meta-epoch",
        &Axes {
            x_label: "meta-epoch",
            y_label: "training loss",
            x: epochs,
            y: range_of(loss.iter().map(|p| p.1)),
        },
        &[Series {
            name: "loss",
            points: loss,
            colour: BLUE,
        }],
    ));
    charts.push(line_chart(
        "test AUROC per meta-epoch",
        &Axes {
            x_label: "meta-epoch",
            y_label: "test AUROC (%)",
            x: epochs,
            y: (0.0, 100.0),
        },
        &[Series {
            name: "AUROC",
            points: m
                .trajectory
                .iter()
                .map(|p| (p.meta_epoch as f64, 100.0 * p.auroc))
                .collect(),
            colour: BLUE,
        }],
    ));
    if let Some(roc) = read_scores(run)
        .ok()
        .and_then(|s| adn_metrics::roc_curve(&s.labels, &s.scores, true).ok())
    {
        let points: Vec<(f64, f64)> = roc.fpr.iter().copied().zip(roc.tpr).collect();
        charts.push(line_chart(
            "ROC of the image scores",
            &Axes {
                x_label: "false-positive rate",
                y_label: "true-positive rate",
                x: (0.0, 1.0),
                y: (0.0, 1.0),
            },
            &[
                Series {
                    name: &format!("AUROC {:.2} %", 100.0 * m.auroc_last),
                    points: thin(points, 60),
                    colour: BLUE,
                },
                Series {
                    name: "chance",
                    points: vec![(0.0, 0.0), (1.0, 1.0)],
                    colour: VERMILLION,
                },
            ],
        ));
    }
    // The maps are drawn for the first complete seed of each variant: say where this run's
    // are, or that it has none drawn.
    let stem = format!("maps_{}_{}", slug(&run.dataset), slug(&run.category));
    let page_one = format!("{stem}_1");
    let maps = figures
        .iter()
        .find(|fig| fig.id == stem || fig.id == page_one)
        .map(|fig| {
            let first = exp
                .complete(&run.dataset, &run.category, &run.variant)
                .first()
                .is_some_and(|r| r.run_id == run.run_id);
            let note = if first {
                format!(
                    "this run's maps are the column “{}” of the anomaly-map figure",
                    display_name(&run.variant)
                )
            } else {
                format!(
                    "maps are drawn for the first complete seed of each variant; this is seed {}, \
                 see the column “{}” for its variant",
                    run.seed,
                    display_name(&run.variant)
                )
            };
            (format!("#{}", fig.id), note)
        });
    let crops = crate::figures::ColumnPlaces::read(&exp.dir.join("figures").join(&stem))
        .map(|places| map_crops(&places, run))
        .unwrap_or_default();
    Some(RunDetail {
        config,
        facts,
        metrics,
        thresholds,
        charts,
        maps,
        crops,
    })
}

/// The figures under `figures/` in the order the report draws them (PNG shown, SVG linked),
/// each with its caption; a figure file the report does not draw is an error, so that no
/// figure goes uncaptioned.
fn page_figures(exp: &Experiment) -> Result<Vec<PageFigure>> {
    let dir = exp.dir.join("figures");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut stems: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".png").map(str::to_string)
        })
        .collect();
    // The order of the report: bars, heat maps, then per dataset and category.
    let rank = |s: &str| {
        [
            "auroc_last_bars",
            "auroc_best_bars",
            "pixel_auroc_bars",
            "heatmap_",
            "roc_",
            "scores_",
            "training_",
            "diagnostics_",
            "maps_",
            "gradcam_",
            "attention_channels_",
            "attention_spatial_",
        ]
        .iter()
        .position(|p| s.starts_with(p))
        .unwrap_or(usize::MAX)
    };
    stems.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    stems
        .into_iter()
        .map(|stem| {
            let caption = caption(exp, &stem).ok_or_else(|| {
                anyhow!(
                    "{}: the report draws no figure of this name, so it has no caption \
                     (remove it, or teach page::captions about it)",
                    dir.join(format!("{stem}.png")).display()
                )
            })?;
            let svg = dir
                .join(format!("{stem}.svg"))
                .is_file()
                .then(|| format!("figures/{stem}.svg"));
            let png = dir.join(format!("{stem}.png"));
            let (w, _) = image::image_dimensions(&png)
                .with_context(|| format!("cannot read {}", png.display()))?;
            Ok(PageFigure {
                width: (w as f64 * 1.5 * 96.0 / 216.0).round() as u32,
                src: format!("figures/{stem}.png"),
                svg,
                caption,
                id: stem,
            })
        })
        .collect()
}

#[derive(Serialize)]
struct Page {
    experiment: String,
    summary: String,
    machines: String,
    headline: PageTable,
    tables: Vec<PageTable>,
    downloads: Vec<(String, String)>,
    figures: Vec<PageFigure>,
    run_header: Vec<String>,
    runs: Vec<PageRun>,
}

/// Renders the page of `exp` (its figures must be drawn already) without writing it.
pub fn render_page(exp: &Experiment, published: &Published) -> Result<String> {
    render(exp, published, page_figures(exp)?)
}

/// The page of `exp` with `figures` (from [`page_figures`]).
fn render(exp: &Experiment, published: &Published, figures: Vec<PageFigure>) -> Result<String> {
    let runs = exp
        .runs
        .iter()
        .map(|r| PageRun {
            id: r.run_id.clone(),
            dataset: r.dataset.clone(),
            category: r.category.clone(),
            variant: display_name(&r.variant),
            seed: r.seed,
            status: r.status.name().into(),
            error: r.error.clone(),
            cells: run_cells(r),
            detail: (r.status == Status::Complete)
                .then(|| run_detail(exp, r, &figures))
                .flatten(),
        })
        .collect();
    let downloads = [
        ("runs.csv", "every run, one row each (CSV)"),
        ("runs.parquet", "the same, Parquet"),
        ("tables/tables.md", "the tables, Markdown"),
        ("tables/tables.tex", "the tables, LaTeX"),
        ("tables/summary.csv", "the long-form summary (CSV)"),
        ("README.md", "what the experiment asked and found"),
    ]
    .into_iter()
    .filter(|(f, _)| exp.dir.join(f).is_file())
    .map(|(f, what)| (f.to_string(), what.to_string()))
    .collect();
    let page = Page {
        experiment: exp.plan.experiment.clone(),
        summary: format!(
            "{} runs: {} complete, {} failed, {} pending, {} skipped.",
            exp.runs.len(),
            exp.count(Status::Complete),
            exp.count(Status::Failed),
            exp.count(Status::Pending),
            exp.count(Status::Skipped)
        ),
        machines: machines_note(exp).trim().to_string(),
        headline: page_table(&headline_table(exp, Metric::Last)),
        tables: all_tables(exp, published).iter().map(page_table).collect(),
        downloads,
        figures,
        run_header: ["run", "dataset", "category", "variant", "seed", "status"]
            .into_iter()
            .chain(RUN_COLUMNS)
            .map(str::to_string)
            .collect(),
        runs,
    };
    let mut env = minijinja::Environment::new();
    env.add_template("experiment.html", TEMPLATE)
        .map_err(|e| anyhow!("the page template: {e}"))?;
    env.get_template("experiment.html")
        .and_then(|t| t.render(&page))
        .map_err(|e| anyhow!("cannot render the page of {}: {e}", exp.dir.display()))
}

/// Writes `index.html` in the experiment folder and, beside the figures, `figures.tex`
/// (each figure in a LaTeX `figure` with the same caption), atomically: a page cut short
/// never replaces a whole one. Returns the page's path.
pub fn write_page(exp: &Experiment, published: &Published) -> Result<PathBuf> {
    let figures = page_figures(exp)?;
    let tex = (!figures.is_empty()).then(|| latex_figures(&figures));
    let html = render(exp, published, figures)?;
    if let Some(tex) = tex {
        let path = exp.dir.join("figures").join("figures.tex");
        adn_util::atomic::write_file(&path, tex.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let path = exp.dir.join(files::PAGE);
    adn_util::atomic::write_file(&path, html.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Every figure as a LaTeX float with its caption and a label from its file name; a
/// two-column figure (7 in, drawn wider than 3.3 in would allow) is a `figure*`.
fn latex_figures(figures: &[PageFigure]) -> String {
    let esc = latex_escape;
    let mut s = String::from(
        "% Written by the report with the experiment's page: \\input{figures/figures.tex}\n\n",
    );
    for f in figures {
        // The page shows a figure at 1.5 × print size: 3.3 in is 475 CSS px.
        let env = if f.width > 500 { "figure*" } else { "figure" };
        s.push_str(&format!(
            "\\begin{{{env}}}[t]\n\\centering\n\\includegraphics[width=\\linewidth]{{{}}}\n\\caption{{{}}}\n\\label{{fig:{}}}\n\\end{{{env}}}\n\n",
            f.src,
            esc(&f.caption),
            f.id.replace('_', "-")
        ));
    }
    s
}

/// The files a page refers to (`src` and `href` values that are not anchors or `data:`),
/// relative to the page's folder; for checking that every one resolves.
pub fn local_links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let Some(end) = rest.find('"') else { break };
            let link = &rest[..end];
            if !(link.starts_with('#') || link.starts_with("data:") || link.is_empty()) {
                out.push(unescape(link));
            }
            rest = &rest[end..];
        }
    }
    out
}

/// An attribute value as the browser reads it (the template escapes `/` too).
fn unescape(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Whether `page_dir` holds every local link of `html`; the missing ones otherwise.
pub fn missing_links(page_dir: &Path, html: &str) -> Vec<String> {
    local_links(html)
        .into_iter()
        .filter(|l| !page_dir.join(l.split('#').next().unwrap_or(l)).is_file())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_sort_by_their_first_number_and_lose_their_bold_marks() {
        let c = Cell::new("**89.54 ± 0.80**");
        assert!(c.bold && c.text == "89.54 ± 0.80" && c.sort == Some(89.54));
        assert_eq!(Cell::new("−1.07 (0.7948; 0.7948)").sort, Some(-1.07));
        assert_eq!(Cell::new("+1.69 (0.14)").sort, Some(1.69));
        assert_eq!(Cell::new("[−3.2, 1.0]").sort, Some(-3.2));
        assert_eq!(Cell::new("–").sort, None);
        assert_eq!(Cell::new("mean").sort, None);
        assert_eq!(Cell::new("± 2").sort, Some(2.0));
    }

    #[test]
    fn local_links_skip_anchors_and_data() {
        let html = r##"<img src="figures&#x2f;a.png"><a href="#x">x</a><a href="runs.csv">r</a><img src="data:x">"##;
        assert_eq!(local_links(html), vec!["figures/a.png", "runs.csv"]);
    }
    #[test]
    fn a_run_s_map_column_is_cut_from_every_page_that_shows_it() {
        use crate::figures::{ColumnPlaces, PagePlaces};
        let page = |file: &str, columns: Vec<(String, i32)>| PagePlaces {
            file: file.into(),
            width: 1000,
            height: 800,
            top: 100,
            bottom: 700,
            cell: 240,
            input_x: Some(50),
            columns,
        };
        let places = ColumnPlaces {
            pages: vec![
                page("maps_1.png", vec![("a".into(), 300), ("b".into(), 550)]),
                page("maps_2.png", vec![("c".into(), 300)]),
            ],
        };
        let run = |dir: &str| Run {
            run_id: "r".into(),
            dir: std::path::PathBuf::from(dir),
            dataset: "d".into(),
            category: "c".into(),
            variant: "se".into(),
            attention: "se".into(),
            context: String::new(),
            seed: 0,
            axes: Default::default(),
            status: crate::gather::Status::Complete,
            error: None,
            metrics: None,
            manifest: None,
        };
        let crops = map_crops(&places, &run("results/x/runs/b"));
        // The row labels, the input and the run's column, at half size.
        assert_eq!(crops.len(), 3);
        assert_eq!((crops[0].x, crops[0].w), (0.0, 25.0));
        assert_eq!((crops[1].x, crops[2].x), (25.0, 275.0));
        assert_eq!((crops[2].w, crops[2].h, crops[2].y), (120.0, 300.0, 50.0));
        assert_eq!(
            (crops[2].file.as_str(), crops[2].size),
            ("maps_1.png", 500.0)
        );
        assert!(map_crops(&places, &run("results/x/runs/z")).is_empty());
    }
}
