//! The hand-written experiment folder the report's tests read: two datasets, vanilla and
//! SE, three seeds, one run failed and one still pending.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use adn_record::{
    CacheStats, DatasetSummary, EvalPoint, Manifest, MetricsRecord, PixelMetrics, RunFacts,
    RunRecord, ScoreRow, WallTimes, Writer,
};
use adn_report::Published;

/// Writes a complete run whose test scores give exactly `auroc_last` (good images score
/// 0..n, anomalous ones are shifted so the requested fraction of pairs is ordered).
pub fn write_run(runs: &Path, id: &str, auroc_last: f64, auroc_best: f64, pixel: Option<f64>) {
    let dir = runs.join(id);
    let manifest = Manifest {
        format: adn_record::FORMAT,
        run_id: id.into(),
        experiment: "t".into(),
        status: adn_record::Status::Complete,
        error: None,
        written_by: Writer::Run,
        run: Some(RunFacts {
            git_commit: Some("abc".into()),
            adn_version: "0.1.0".into(),
            libtorch: "2.13.0".into(),
            device: "Cpu".into(),
            threads: 1,
            seed: 0,
            started_unix: 0.0,
            finished_unix: 10.0,
            wall_s: WallTimes {
                data: 1.0,
                features: 6.0,
                train: 3.0,
                eval: 0.0,
                total: 10.0,
            },
            dataset: DatasetSummary {
                train_images: 10,
                test_images: 4,
                ..Default::default()
            },
            feature_dim: 8,
            backbone_weights: "random".into(),
            flow_parameters: 100,
            trainable_attention_parameters: 0,
            feature_cache: CacheStats {
                enabled: true,
                misses: 20,
                ..Default::default()
            },
            model_sha256: Default::default(),
            peak_rss_mb: None,
            precision: adn_record::Precision::Fp32,
            flow_precision: adn_record::Precision::Fp32,
            machine: None,
        }),
    };
    let point = |meta_epoch, train_loss, auroc| EvalPoint {
        meta_epoch,
        train_loss,
        auroc,
    };
    let metrics = MetricsRecord {
        auroc_last,
        auroc_best,
        auroc_best_epoch: 1,
        auroc_best_selection: "test".into(),
        auroc_min_loss: auroc_last,
        auroc_min_loss_epoch: 1,
        trajectory: vec![point(0, 1.0, 0.5), point(1, 0.5, auroc_last)],
        diagnostics: Vec::new(),
        pixel: pixel.map(|auroc| PixelMetrics {
            map: "input gradient".into(),
            auroc,
            aupro: auroc - 0.1,
            aupro_max_fpr: 0.3,
            peak_in_mask: 0.5,
            images: 4,
            anomalous: 2,
            size: 16,
            rotations: 2,
            sigma_px: 1.0,
            wall_s: 0.5,
        }),
        thresholds: Vec::new(),
    };
    // Two good and two anomalous images: AUROC = ordered pairs / 4.
    let ordered = (auroc_last * 4.0).round() as usize;
    let bad = match ordered {
        4 => [3.0, 4.0],
        3 => [1.5, 4.0],
        _ => [0.5, 1.5],
    };
    let row = |path: &str, defect: &str, score: f64| ScoreRow {
        path: path.into(),
        category: "c".into(),
        defect: defect.into(),
        label: (defect != "good") as u8,
        score,
    };
    let scores = [
        row("a.png", "good", 1.0),
        row("b.png", "good", 2.0),
        row("c.png", "crack", bad[0]),
        row("d.png", "scratch", bad[1]),
    ];
    let record = RunRecord {
        config_toml: "",
        manifest: &manifest,
        metrics: Some(&metrics),
        scores: &scores,
        save_model: None,
        log: None,
    };
    adn_record::write_run(&dir, &record, false).unwrap();
}

pub fn write_experiment(dir: &Path) {
    let runs = dir.join("runs");
    let mut planned = Vec::new();
    let mut id = 0;
    for dataset in ["InsPLAD-fault", "Own"] {
        for attention in ["none", "se"] {
            for seed in 0..3 {
                id += 1;
                let run_id = format!("run{id:02}");
                planned.push(format!(
                    r#"{{"run_id": "{run_id}", "dataset": "{dataset}", "category": "glass-insulator",
                        "axes": {{"model.attention": "\"{attention}\"", "train.seed": "{seed}"}},
                        "overrides": []}}"#
                ));
                match (dataset, attention, seed) {
                    // One failed run and one that never ran.
                    ("Own", "se", 2) => {}
                    ("Own", "se", 1) => {
                        let failed =
                            Manifest::failed_elsewhere(&run_id, "t", "training loss became NaN");
                        adn_record::write_failure(&runs.join(&run_id), &failed).unwrap();
                    }
                    _ => {
                        let base = if attention == "none" { 0.75 } else { 1.0 };
                        let step = if attention == "none" { 0.01 } else { 0.02 };
                        let best = base - step * seed as f64;
                        // Only "Own" has masks, hence pixel metrics.
                        let pixel = (dataset == "Own").then_some(base - 0.1);
                        write_run(&runs, &run_id, base, best, pixel);
                    }
                }
            }
        }
    }
    fs::write(
        dir.join("plan.json"),
        format!(
            r#"{{"experiment": "t", "base": "base.toml", "axis_keys": ["model.attention", "train.seed"],
                "published": {{"InsPLAD-fault": "InsPLAD-fault"}}, "runs": [{}]}}"#,
            planned.join(",")
        ),
    )
    .unwrap();
}

pub fn published() -> Published {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("published.toml");
    fs::write(
        &path,
        "[[methods]]\nname = \"DifferNet\"\nvariant = \"none\"\n\
         [[entries]]\ndataset = \"InsPLAD-fault\"\ncategory = \"glass-insulator\"\n\
         method = \"DifferNet\"\nauroc = 82.81\nsource = \"paper\"\n",
    )
    .unwrap();
    Published::load(&path).unwrap()
}
