//! The print rules on every chart the report draws, for an experiment built to break them:
//! long dataset and category names, ten variants (three attentions × three regimes and
//! vanilla), two categories per dataset (a heat map), three seeds.

mod common;

use std::fs;

use adn_report::gather;
use common::write_run;

/// Diagnostics before training and after two meta-epochs, with gates where there is
/// attention, so that the diagnostics figure is drawn too.
fn add_diagnostics(run: &std::path::Path, v: f64, gates: bool) {
    let path = run.join("metrics.json");
    let mut metrics: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let point = |epoch: Option<usize>| {
        let k = epoch.map_or(0.0, |e| e as f64 + 1.0);
        serde_json::json!({
            "meta_epoch": epoch,
            "loss": epoch.map(|_| serde_json::json!({
                "z": 0.5, "neg_log_det": -0.1 * v * k, "volume_charge": 0.0
            })),
            "norm_train": 10.0 - v * k * 0.3,
            "norm_test": 10.0,
            "feature_norms": [],
            "gates": if gates {
                serde_json::json!([{"position": "stage4", "scale": 0, "gate": "channel",
                                    "mean": 0.5 + 0.02 * v * k, "sd": 0.1}])
            } else {
                serde_json::json!([])
            },
        })
    };
    metrics["diagnostics"] = serde_json::json!([point(None), point(Some(0)), point(Some(1))]);
    fs::write(&path, serde_json::to_string(&metrics).unwrap()).unwrap();
}

#[test]
fn every_chart_keeps_the_print_rules_with_long_names_and_many_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let mut planned = Vec::new();
    let mut id = 0;
    let datasets = [
        "InsPLAD-fault stand-in (drone photographs)",
        "Semiconductor wafer stand-in",
    ];
    let categories = [
        "polymer-insulator-upper-shackle",
        "lightning-rod-suspension",
    ];
    let mut variants = vec![("none", None)];
    for attention in ["se", "cbam", "cbam-official"] {
        for regime in ["frozen", "joint", "remedied"] {
            variants.push((attention, Some(regime)));
        }
    }
    for (d, dataset) in datasets.iter().enumerate() {
        for category in categories {
            for (v, (attention, regime)) in variants.iter().enumerate() {
                for seed in 0..3 {
                    id += 1;
                    let run_id = format!("run{id:03}");
                    let regime =
                        regime.map_or(String::new(), |r| format!(r#", "regime": "\"{r}\"""#));
                    planned.push(format!(
                        r#"{{"run_id": "{run_id}", "dataset": "{dataset}", "category": "{category}",
                            "axes": {{"model.attention": "\"{attention}\"", "train.seed": "{seed}"{regime}}},
                            "overrides": []}}"#
                    ));
                    let auroc = [0.5, 0.75, 1.0][(v + seed) % 3];
                    write_run(&runs, &run_id, auroc, auroc, (d == 1).then_some(auroc));
                    add_diagnostics(&runs.join(&run_id), v as f64, attention != &"none");
                }
            }
        }
    }
    fs::write(
        tmp.path().join("plan.json"),
        format!(
            r#"{{"experiment": "a-study-with-a-long-name", "base": "base.toml",
                "axis_keys": ["model.attention", "regime", "train.seed"],
                "published": {{}}, "runs": [{}]}}"#,
            planned.join(",")
        ),
    )
    .unwrap();
    let exp = gather(tmp.path()).unwrap();
    assert_eq!(exp.variants().len(), 10);
    let checked = adn_report::figures::check_figures(&exp).unwrap();
    // Bars of 3 metrics, Δ plots of 2, a heat map per dataset, then ROC, scores, training
    // and diagnostics per dataset × category; each as PNG and SVG.
    assert_eq!(checked.len(), 2 * (3 + 2 + 2 + 4 * 4), "{checked:#?}");
    let broken: Vec<String> = checked
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(stem, v)| format!("{stem}:\n  {}", v.join("\n  ")))
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
