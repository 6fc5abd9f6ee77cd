//! Tables and figures from a hand-written experiment folder: two datasets, vanilla and SE,
//! three seeds, one run failed and one still pending.

use std::fs;
use std::path::Path;

mod common;

use adn_report::{Metric, Status, gather, write_tables};
use common::{published, write_experiment, write_run};

#[test]
fn tables_report_means_differences_and_published_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path());
    let exp = gather(tmp.path()).unwrap();
    assert_eq!(exp.count(Status::Complete), 10);
    assert_eq!(exp.count(Status::Failed), 1);
    assert_eq!(exp.count(Status::Pending), 1);
    assert_eq!(exp.variants(), vec!["none", "se"]);

    let c = adn_report::tables::cell(&exp, "InsPLAD-fault", "glass-insulator", "se", Metric::Best)
        .unwrap();
    assert_eq!(c.n, 3);
    assert!((c.mean - 0.98).abs() < 1e-12 && (c.sd - 0.02).abs() < 1e-12);
    assert_eq!(c.format(), "98.00 ± 2.00");

    // SE − vanilla on auroc_best: +25, +24, +23 pp over the seeds.
    let cmp = adn_report::tables::compare(
        &exp,
        "InsPLAD-fault",
        "glass-insulator",
        "se",
        "none",
        Metric::Best,
    )
    .unwrap();
    assert_eq!(cmp.n, 3);
    assert!((cmp.difference - 0.24).abs() < 1e-12);
    assert_eq!(cmp.test, "paired t over seeds");
    assert!(cmp.ci.0 < 0.24 && cmp.ci.1 > 0.24 && cmp.p_value < 0.01);
    // auroc_last differs by exactly +25 pp on every seed: zero spread, so the paired test
    // gives no p-value (never a silent p = 0), and the table says so.
    let same = adn_report::tables::compare(
        &exp,
        "InsPLAD-fault",
        "glass-insulator",
        "se",
        "none",
        Metric::Last,
    )
    .unwrap();
    assert!(same.p_value.is_nan());
    assert_eq!(same.format(), "+25.00 pp on all 3 seeds, p = n/a");

    let written = write_tables(&exp, &published()).unwrap();
    let md = &written.markdown;
    assert!(md.contains("10 runs complete, 1 failed, 1 pending"), "{md}");
    assert!(
        md.contains("| glass-insulator | 75.00 ± 0.00 | **100.00 ± 0.00** | 82.81 |"),
        "{md}"
    );
    assert!(md.contains("paper: DifferNet"), "{md}");
    // The other dataset has no published numbers and a failed run listed with its error.
    assert!(md.contains("training loss became NaN"), "{md}");
    // Only seed 0 of "Own" has both variants: DeLong on its scores for auroc_last.
    let own =
        adn_report::tables::compare(&exp, "Own", "glass-insulator", "se", "none", Metric::Last)
            .unwrap();
    assert_eq!(own.test, "DeLong (one seed)");
    assert!((own.difference - 0.25).abs() < 1e-12);

    for name in [
        "runs.parquet",
        "runs.csv",
        "tables/summary.parquet",
        "tables/tables.tex",
    ] {
        assert!(tmp.path().join(name).is_file(), "{name} missing");
    }
    // Pixel metrics only for the dataset with masks, and no published column beside them.
    assert!(
        md.contains("**Own: pixel AUROC (%)") && md.contains("**Own: AUPRO (%)"),
        "{md}"
    );
    assert!(!md.contains("InsPLAD-fault: pixel AUROC"), "{md}");
    assert!(
        md.contains("| glass-insulator | 65.00 ± 0.00 | **90.00** |"),
        "{md}"
    );
    // The difference, its interval and p in columns of their own.
    assert!(
        md.contains("| category | Δ SE − DifferNet (pp) | 95 % CI | p |"),
        "{md}"
    );
    assert!(md.contains("| +24.00 | [+"), "{md}");
    // Beside every raw p, its Holm-adjusted value over the table's comparisons, and the
    // caption says over how many.
    assert!(
        md.contains("| 95 % CI | p | p (Holm) |") && md.contains("Holm's step-down method"),
        "{md}"
    );
    // Records from before machines were recorded are named as such.
    assert!(md.contains("machine not recorded (10 runs)"), "{md}");
    let summary = fs::read_to_string(tmp.path().join("tables/summary.csv")).unwrap();
    assert!(
        summary.lines().next().unwrap().contains("p_holm"),
        "{summary}"
    );
    // Every complete run's scores are fingerprinted, to tell a reproduced rerun.
    let fingerprints =
        adn_report::tables::scores_fingerprints(&tmp.path().join("runs.parquet")).unwrap();
    assert_eq!(fingerprints.len(), 12);
    assert_eq!(fingerprints.values().filter(|s| s.is_some()).count(), 10);
    assert!(
        md.contains("| +25.00 | same on all 3 seeds | n/a |"),
        "{md}"
    );
    let tex = fs::read_to_string(tmp.path().join("tables/tables.tex")).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("$\\pm$"), "{tex}");
    for part in [
        "\\begin{table}",
        "\\caption{",
        "\\label{tab:",
        "\\textbf{100.00 $\\pm$ 0.00}",
        "$\\Delta$",
        "\\end{table}",
    ] {
        assert!(tex.contains(part), "{part} missing from\n{tex}");
    }
    // Every table has its own label.
    let labels: Vec<&str> = tex.lines().filter(|l| l.starts_with("\\label")).collect();
    let mut unique = labels.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(labels.len(), unique.len(), "{labels:?}");
    let runs_csv = fs::read_to_string(tmp.path().join("runs.csv")).unwrap();
    assert_eq!(runs_csv.lines().count(), 13, "{runs_csv}");
    assert!(
        runs_csv
            .lines()
            .next()
            .unwrap()
            .contains("axis:model.attention")
    );
    let header: Vec<&str> = runs_csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "pixel_auroc").unwrap();
    let pixel: Vec<&str> = runs_csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap())
        .collect();
    assert_eq!(
        pixel.iter().filter(|v| !v.is_empty()).count(),
        4,
        "{pixel:?}"
    );
}

#[test]
fn figures_are_written_as_png_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path());
    let exp = gather(tmp.path()).unwrap();
    let files = adn_report::figures::write_figures(&exp).unwrap();
    // Three bar charts (image AUROC last and best, pixel AUROC where there are masks), the
    // Δ plot of SE against DifferNet (one dataset has two seeds: a pixel Δ needs them), and
    // ROC, scores and training per dataset × category, each twice.
    assert_eq!(files.len(), (3 + 1 + 2 * 3) * 2, "{files:?}");
    for f in &files {
        let bytes = fs::read(f).unwrap();
        match f.extension().unwrap().to_str().unwrap() {
            "png" => assert_eq!(&bytes[..4], b"\x89PNG", "{}", f.display()),
            _ => assert!(
                String::from_utf8_lossy(&bytes).contains("<svg"),
                "{}",
                f.display()
            ),
        }
    }
    let svg = fs::read_to_string(tmp.path().join("figures/auroc_last_bars.svg")).unwrap();
    assert!(
        svg.contains("DifferNet") && svg.contains("SE"),
        "legend missing"
    );
    // The Δ plot names its row and its comparison, and draws a dot and an interval.
    let delta = fs::read_to_string(tmp.path().join("figures/auroc_last_delta.svg")).unwrap();
    assert!(
        delta.contains("SE") && delta.contains("vs DifferNet") && delta.contains("<circle"),
        "{delta}"
    );
}

#[test]
fn a_dataset_with_many_categories_gets_a_heat_map() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let mut planned = Vec::new();
    for (k, category) in ["bottle", "cable", "screw"].iter().enumerate() {
        for attention in ["none", "se"] {
            let run_id = format!("{category}-{attention}");
            planned.push(format!(
                r#"{{"run_id": "{run_id}", "dataset": "MVTec AD", "category": "{category}",
                    "axes": {{"model.attention": "\"{attention}\""}}, "overrides": []}}"#
            ));
            let auroc = if attention == "none" {
                0.75
            } else {
                0.5 + 0.25 * k as f64 / 2.0
            };
            write_run(&runs, &run_id, auroc, auroc, None);
        }
    }
    fs::write(
        tmp.path().join("plan.json"),
        format!(
            r#"{{"experiment": "t", "base": "base.toml", "axis_keys": ["model.attention"],
                "published": {{}}, "runs": [{}]}}"#,
            planned.join(",")
        ),
    )
    .unwrap();
    let exp = gather(tmp.path()).unwrap();
    let files = adn_report::figures::write_figures(&exp).unwrap();
    let heat: Vec<_> = files
        .iter()
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("heatmap_")
        })
        .collect();
    assert_eq!(heat.len(), 2, "{files:?}");
    let svg = fs::read_to_string(
        heat.iter()
            .find(|f| f.extension().unwrap() == "svg")
            .unwrap(),
    )
    .unwrap();
    // Every category, the mean row and each cell's value are written in the map, in
    // type that prints at 8 pt or more: the SVG is 2 px per point, so an em of ≥ 16 px.
    let sizes: Vec<f64> = svg
        .split("font-size=\"")
        .skip(1)
        .map(|t| t.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        !sizes.is_empty() && sizes.iter().all(|&s| s >= 15.99),
        "{sizes:?}"
    );
    for text in ["bottle", "cable", "screw", "mean", "75.0", "62.5", "50.0"] {
        assert!(svg.contains(&format!(">\n{text}\n<")), "{text} missing");
    }
}

/// An `adn explain` folder as it writes one: a defective image with its mask and a good
/// one, each run's map as 16-bit gray, every run DifferNet's.
fn write_explain_dir(dir: &Path, defect: &str, attentions: &[&str]) {
    let runs: Vec<(&str, &str)> = attentions.iter().map(|a| (*a, "DifferNet")).collect();
    write_explain_flows(dir, defect, &runs);
}

/// [`write_explain_dir`] for runs of `(attention, flow)`: only DifferNet's have Grad-CAM.
fn write_explain_flows(dir: &Path, defect: &str, runs_of: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    let side = 8;
    for i in 0..2 {
        image::RgbImage::from_pixel(side, side, image::Rgb([90, 90, 90]))
            .save(dir.join(format!("input_{i}.png")))
            .unwrap();
    }
    image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([if (2..5).contains(&x) && (2..5).contains(&y) {
            255
        } else {
            0
        }])
    })
    .save(dir.join("mask_0.png"))
    .unwrap();
    let mut runs = Vec::new();
    let mut described: Vec<String> = Vec::new();
    for (k, (a, flow)) in runs_of.iter().enumerate() {
        let mut maps = Vec::new();
        for i in 0..2 {
            let name = format!("map{k}_{a}_{i}.png");
            image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(side, side, |x, _| {
                image::Luma([(x * 9000) as u16])
            })
            .save(dir.join(&name))
            .unwrap();
            maps.push(format!("\"{name}\""));
        }
        let how = format!(r#"{{"flow": "{flow}", "how": "{flow}'s map: |g|, of 2 views"}}"#);
        if !described.contains(&how) {
            described.push(how.clone());
        }
        // One scale per row and flow.
        let scale = 1.5 + described.iter().position(|d| *d == how).unwrap() as f64;
        let cams = match *flow {
            "DifferNet" => maps.join(", "),
            _ => String::new(),
        };
        runs.push(format!(
            r#"{{"run_dir": "elsewhere/{k}", "attention": "{a}", "flow": "{flow}",
                "cams": [{cams}], "maps": [{}], "map_max": [{}, 0.0], "scores": [2.0, 0.5],
                "threshold": 1.0}}"#,
            maps.join(", "),
            scale
        ));
    }
    fs::write(
        dir.join("explain.json"),
        format!(
            r#"{{"layer": "stage4", "cam_max": 0.8, "maps": [{}],
                "inputs": ["input_0.png", "input_1.png"],
                "images": [{{"path": "a.png", "defect": "{defect}", "anomalous": true,
                             "why": "first of its type", "mask": "mask_0.png"}},
                           {{"path": "b.png", "defect": "good", "anomalous": false,
                             "why": "good", "mask": null}}],
                "runs": [{}]}}"#,
            described.join(", "),
            runs.join(", ")
        ),
    )
    .unwrap();
}

#[test]
fn anomaly_maps_are_drawn_per_dataset_and_per_category() {
    let tmp = tempfile::tempdir().unwrap();
    // Any experiment: the explained runs are not among its folders, so columns are named
    // by attention.
    write_experiment(tmp.path());
    let exp = gather(tmp.path()).unwrap();
    let a = tmp.path().join("explain_a");
    let b = tmp.path().join("explain_b");
    write_explain_dir(&a, "crack", &["none", "se"]);
    write_explain_dir(&b, "hole", &["none", "se"]);
    let grid = adn_report::figures::write_map_grid(&a, &exp, &tmp.path().join("maps_a")).unwrap();
    // One page, two paper columns wide (240 px cells of 65 pt): two rows of cells.
    assert_eq!(grid.len(), 1);
    assert_eq!(grid[0], tmp.path().join("maps_a.png"));
    let (w, h) = image::image_dimensions(&grid[0]).unwrap();
    assert!(w == 1861 && h > 2 * 240, "{w} × {h}");
    let categories = vec![("bottle".to_string(), a.clone()), ("screw".to_string(), b)];
    let paper =
        adn_report::figures::write_category_maps(&categories, &exp, &tmp.path().join("maps_mvtec"))
            .unwrap();
    // Rows: input and the 2 variants; columns: the 2 categories; one page 7 in wide.
    assert_eq!(paper, vec![tmp.path().join("maps_mvtec.png")]);
    let (w, h) = image::image_dimensions(&paper[0]).unwrap();
    assert_eq!(w, 1861);
    assert!(h > 3 * 250 && h < 4 * 250 + 300, "{h}");
    // Categories explaining other variants are refused, naming the category.
    let c = tmp.path().join("explain_c");
    write_explain_dir(&c, "cut", &["none"]);
    let e = adn_report::figures::write_category_maps(
        &[("bottle".to_string(), a), ("cable".to_string(), c)],
        &exp,
        &tmp.path().join("maps_bad"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cable"), "{e}");
}

#[test]
fn the_families_maps_go_side_by_side_each_on_its_flow_s_scale() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path());
    let exp = gather(tmp.path()).unwrap();
    let dir = tmp.path().join("explain_families");
    let flows = ["DifferNet", "FastFlow", "CS-Flow", "CFlow-AD"];
    let runs: Vec<(&str, &str)> = flows.iter().map(|f| ("none", *f)).collect();
    write_explain_flows(&dir, "crack", &runs);
    let stem = tmp.path().join("maps_families");
    let checked = adn_report::figures::check_map_grid(&dir, &exp, &stem).unwrap();
    for (name, v) in &checked {
        assert!(v.is_empty(), "{name}: {v:#?}");
    }
    let pages = adn_report::figures::write_map_grid(&dir, &exp, &stem).unwrap();
    assert_eq!(pages.len(), checked.len());
    // Four maps and the input fit across two paper columns, under a third caption line.
    assert_eq!(pages, vec![tmp.path().join("maps_families.png")]);
    let one_flow = tmp.path().join("explain_one");
    write_explain_dir(&one_flow, "crack", &["none", "se", "cbam", "cbam-official"]);
    let plain =
        adn_report::figures::write_map_grid(&one_flow, &exp, &tmp.path().join("maps_one")).unwrap();
    let (h_families, h_one) = (
        image::image_dimensions(&pages[0]).unwrap().1,
        image::image_dimensions(&plain[0]).unwrap().1,
    );
    assert!(h_families > h_one, "{h_families} vs {h_one}");
    // Grad-CAM is DifferNet's: the grid is refused naming the first run without it.
    let e = adn_report::figures::write_gradcam_grid(&dir, &exp, &tmp.path().join("gradcam"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("FastFlow") && e.contains("no Grad-CAM"), "{e}");
    // So is the categories figure, which compares one flow's variants on one scale.
    let e = adn_report::figures::write_category_maps(
        &[("fabric".to_string(), dir.clone())],
        &exp,
        &tmp.path().join("maps_categories"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("4 flows"), "{e}");
}

#[test]
fn fifteen_categories_go_on_pages_that_keep_the_print_rules() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path());
    let exp = gather(tmp.path()).unwrap();
    let attentions = ["none", "se", "cbam", "cbam-official", "se", "cbam"];
    let categories: Vec<(String, std::path::PathBuf)> = (0..15)
        .map(|k| {
            let dir = tmp.path().join(format!("explain_{k}"));
            write_explain_dir(&dir, "combined-contamination-and-scratch", &attentions);
            (format!("category-number-{k}"), dir)
        })
        .collect();
    let stem = tmp.path().join("maps_many_categories");
    let checked = adn_report::figures::check_category_maps(&categories, &exp, &stem).unwrap();
    assert!(checked.len() >= 3, "{checked:?}");
    for (name, v) in &checked {
        assert!(v.is_empty(), "{name}: {v:#?}");
    }
    let pages = adn_report::figures::write_category_maps(&categories, &exp, &stem).unwrap();
    assert_eq!(pages.len(), checked.len());
}

/// An `attention.json` beside an `adn explain` folder: `runs` runs with a channel gate at
/// three positions and, for CBAM, a spatial gate; 3 good and 3 defective images.
fn write_attention(dir: &Path, attentions: &[&str]) {
    let images: Vec<String> = (0..6)
        .map(|i| {
            image::RgbImage::from_pixel(8, 8, image::Rgb([90, 90, 90]))
                .save(dir.join(format!("attention_input_{i}.png")))
                .unwrap();
            let anomalous = i >= 3;
            format!(
                r#"{{"path": "{i}.png", "defect": "{}", "anomalous": {anomalous},
                    "input": "attention_input_{i}.png"}}"#,
                if anomalous {
                    "polymer-insulator-broken-shell"
                } else {
                    "good"
                }
            )
        })
        .collect();
    let values = |n: usize| {
        (0..n)
            .map(|k| format!("{:.3}", (k % 17) as f32 / 17.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let runs: Vec<String> = attentions
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let positions: Vec<String> = ["stage2", "stage3", "stage4"]
                .iter()
                .map(|p| {
                    let mut gates = vec![format!(
                        r#"{{"gate": "channel", "shape": [6, 40], "values": [{}]}}"#,
                        values(6 * 40)
                    )];
                    if a.starts_with("cbam") {
                        gates.push(format!(
                            r#"{{"gate": "spatial", "shape": [6, 5, 5], "values": [{}]}}"#,
                            values(6 * 25)
                        ));
                    }
                    format!(r#"{{"position": "{p}", "gates": [{}]}}"#, gates.join(", "))
                })
                .collect();
            format!(
                r#"{{"run_dir": "elsewhere/{k}", "attention": "{a}", "positions": [{}]}}"#,
                positions.join(", ")
            )
        })
        .collect();
    fs::write(
        dir.join("attention.json"),
        format!(
            r#"{{"images": [{}], "runs": [{}]}}"#,
            images.join(", "),
            runs.join(", ")
        ),
    )
    .unwrap();
}

#[test]
fn attention_pictures_of_many_runs_keep_the_print_rules() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path());
    let exp = gather(tmp.path()).unwrap();
    let dir = tmp.path().join("explain");
    let attentions = [
        "se",
        "cbam",
        "cbam-official",
        "se",
        "cbam",
        "cbam-official",
        "se",
        "cbam",
        "cbam-official",
        "se",
        "cbam",
    ];
    write_explain_dir(&dir, "crack", &attentions);
    write_attention(&dir, &attentions);
    let figures = tmp.path().join("figures");
    fs::create_dir_all(&figures).unwrap();
    let checked =
        adn_report::figures::check_attention_pictures(&dir, &exp, &figures, "d_c").unwrap();
    // 11 runs of 240 px rows do not fit one 9 in page; 8 CBAM runs × 3 positions do not
    // fit across one.
    let channels = checked
        .iter()
        .filter(|(n, _)| n.starts_with("attention_channels_d_c_"))
        .count();
    let spatial = checked
        .iter()
        .filter(|(n, _)| n.starts_with("attention_spatial_d_c_"))
        .count();
    assert!(channels >= 2 && spatial >= 4, "{checked:?}");
    for (name, v) in &checked {
        assert!(v.is_empty(), "{name}: {v:#?}");
    }
    let written =
        adn_report::figures::write_attention_pictures(&dir, &exp, &figures, "d_c").unwrap();
    assert_eq!(written.len(), checked.len());
    for page in &written {
        assert_eq!(image::image_dimensions(page).unwrap().0, 1861);
    }
}

#[test]
fn many_runs_go_on_pages_of_the_map_and_grad_cam_figures_that_keep_the_print_rules() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path());
    let exp = gather(tmp.path()).unwrap();
    let dir = tmp.path().join("explain_many");
    let attentions = [
        "none",
        "se",
        "cbam",
        "cbam-official",
        "se",
        "cbam",
        "cbam-official",
        "se",
        "cbam",
        "cbam-official",
    ];
    write_explain_dir(&dir, "polymer-insulator-upper-shackle-broken", &attentions);
    let stem = tmp.path().join("maps_many");
    let checked = adn_report::figures::check_map_grid(&dir, &exp, &stem).unwrap();
    assert!(checked.len() >= 2, "{checked:?}");
    for (name, v) in &checked {
        assert!(v.is_empty(), "{name}: {v:#?}");
    }
    let pages = adn_report::figures::write_map_grid(&dir, &exp, &stem).unwrap();
    // Where each run's column went, page by page, for the HTML page to cut out: every run
    // once, inside its page.
    let places = adn_report::figures::ColumnPlaces::read(&stem).unwrap();
    assert_eq!(places.pages.len(), pages.len());
    let mut keys: Vec<String> = Vec::new();
    for p in &places.pages {
        assert!(
            p.top >= 0 && p.bottom <= p.height as i32 && p.top < p.bottom,
            "{p:?}"
        );
        assert!(p.input_x.is_some());
        for (k, x) in &p.columns {
            assert!(*x > p.input_x.unwrap() && *x + p.cell as i32 <= p.width as i32);
            keys.push(k.clone());
        }
    }
    let expected: Vec<String> = (0..attentions.len()).map(|k| k.to_string()).collect();
    assert_eq!(keys, expected);
    let names: Vec<String> = checked.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names[0], "maps_many_1.png");
    for (page, name) in pages.iter().zip(&names) {
        assert_eq!(page.file_name().unwrap().to_string_lossy(), *name);
        assert_eq!(image::image_dimensions(page).unwrap().0, 1861);
    }
    let mut stale = adn_report::figures::stale_pages(&stem);
    stale.sort();
    assert_eq!(stale, pages);
    // Drawn again with fewer runs, the figure is one page and the earlier pages are gone,
    // removed only once the new page is written.
    let few = tmp.path().join("explain_few");
    write_explain_dir(&few, "hole", &["none", "se"]);
    let again = adn_report::figures::write_map_grid(&few, &exp, &stem).unwrap();
    assert_eq!(again, vec![stem.with_extension("png")]);
    assert_eq!(adn_report::figures::stale_pages(&stem), again);
    // The Grad-CAM grid of the same runs: pages too, each within the rules.
    let cams =
        adn_report::figures::check_gradcam_grid(&dir, &exp, &tmp.path().join("cam")).unwrap();
    assert!(cams.len() >= 2, "{cams:?}");
    for (name, v) in &cams {
        assert!(v.is_empty(), "{name}: {v:#?}");
    }
    let written =
        adn_report::figures::write_gradcam_grid(&dir, &exp, &tmp.path().join("cam")).unwrap();
    assert_eq!(written.len(), cams.len());
    assert_eq!(image::image_dimensions(&written[0]).unwrap().0, 1861);
    // A short defect name and a miss: the row label's column is as wide as its longest
    // word, "(missed by DifferNet)" wrapped beside the images, not over them.
    let missed = tmp.path().join("explain_missed");
    write_explain_dir(&missed, "hole", &["none", "se"]);
    let json = missed.join("explain.json");
    let text = fs::read_to_string(&json)
        .unwrap()
        .replace("first of its type", "missed by the first run");
    fs::write(&json, text).unwrap();
    let checked =
        adn_report::figures::check_map_grid(&missed, &exp, &tmp.path().join("maps_missed"))
            .unwrap();
    assert_eq!(checked.len(), 1);
    assert!(checked[0].1.is_empty(), "{:#?}", checked[0].1);
}

#[test]
fn a_reproduced_run_keeps_the_committed_session_facts_and_a_changed_one_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_experiment(tmp.path());
    let exp = adn_report::gather(tmp.path()).unwrap();
    adn_report::write_tables(&exp, &common::published()).unwrap();
    let committed =
        adn_report::tables::committed_session_facts(&tmp.path().join("runs.parquet")).unwrap();
    // A rerun on another machine and day: other wall times and commit on every run, and
    // other scores on one of them.
    let mut rerun = exp.clone();
    for r in &mut rerun.runs {
        if let Some(f) = r.manifest.as_mut() {
            f.wall_s.total += 100.0;
            f.git_commit = Some("another commit".into());
        }
    }
    let complete: Vec<usize> = (0..rerun.runs.len())
        .filter(|&i| rerun.runs[i].metrics.is_some() && rerun.runs[i].manifest.is_some())
        .collect();
    assert!(complete.len() >= 2);
    let changed = complete[0];
    let scores = rerun.runs[changed].dir.join("scores.csv");
    let mut text = fs::read_to_string(&scores).unwrap();
    text.push('\n');
    fs::write(&scores, text).unwrap();

    let kept = rerun.keep_committed_session_facts(&committed);
    assert_eq!(kept, complete.len() - 1);
    for &i in &complete {
        let (before, after) = (&exp.runs[i], &rerun.runs[i]);
        let (b, a) = (
            before.manifest.as_ref().unwrap(),
            after.manifest.as_ref().unwrap(),
        );
        if i == changed {
            assert_eq!(a.wall_s.total, b.wall_s.total + 100.0);
            assert_eq!(a.git_commit.as_deref(), Some("another commit"));
        } else {
            assert_eq!(a.wall_s.total, b.wall_s.total, "{}", after.run_id);
            assert_eq!(a.git_commit, b.git_commit, "{}", after.run_id);
        }
    }
}
