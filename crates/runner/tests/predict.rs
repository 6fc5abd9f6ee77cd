//! `adn predict` end to end: a smoke run that holds good images out of training records its
//! thresholds, then scores a folder of unlabelled images, nested, with an unreadable file
//! among them.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{adn, assert_ok, json, run_smoke};

/// The first `n` images of a folder of the generated smoke set, by name.
fn first_images(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files.truncate(n);
    files
}

#[test]
fn held_out_thresholds_decide_a_folder_and_unreadable_images_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // The smoke config holds a fifth of its good training images out.
    let out = run_smoke(dir.path(), "run", &[]);
    assert_ok(&out);
    let run = dir.path().join("run");

    // The record: how many good images were held out, and the thresholds set on them.
    let manifest = json(&run.join("manifest.json"));
    let trained = manifest["dataset"]["train_images"].as_u64().unwrap();
    let held = manifest["dataset"]["held_out_images"].as_u64().unwrap();
    assert_eq!(
        held,
        ((trained + held) as f64 * 0.2).round() as u64,
        "{manifest}"
    );
    let metrics = json(&run.join("metrics.json"));
    let thresholds = metrics["thresholds"].as_array().unwrap();
    let names: Vec<&str> = thresholds
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good-q99", "good-q99.9", "test-f1"], "{metrics}");
    let value = |i: usize| thresholds[i]["value"].as_f64().unwrap();
    assert!(value(0) <= value(1), "{thresholds:?}");
    for t in &thresholds[..2] {
        assert_eq!(t["images"].as_u64(), Some(held));
        assert_eq!(t["on_test_set"], false);
        // Fewer than 100 images: the record says the quantile does not bound the rate.
        assert!(
            t["chosen_on"].as_str().unwrap().contains("does not bound"),
            "{t}"
        );
    }
    assert_eq!(thresholds[2]["on_test_set"], true);

    // A line's folder: good and anomalous test images at two depths, an unreadable file
    // that claims to be a PNG, and a file that is not an image.
    let test = dir.path().join("data/shapes/test");
    let folder = dir.path().join("line");
    let mut copied = BTreeMap::new();
    for (sub, target) in [("good", "cam1"), ("circle", "cam2/deep")] {
        let from = test.join(sub);
        let from = if from.is_dir() {
            from
        } else {
            // The defect folder's name: whatever is not `good`.
            std::fs::read_dir(&test)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.file_name().unwrap() != "good")
                .unwrap()
        };
        std::fs::create_dir_all(folder.join(target)).unwrap();
        for img in first_images(&from, 3) {
            let name = img.file_name().unwrap().to_owned();
            let rel = Path::new(target).join(&name);
            std::fs::copy(&img, folder.join(&rel)).unwrap();
            copied.insert(rel.display().to_string(), img);
        }
    }
    std::fs::write(folder.join("cam1/broken.png"), b"not a png at all").unwrap();
    std::fs::write(folder.join("notes.txt"), b"shift 2").unwrap();

    let predict = |extra: &[&str]| {
        adn("predict")
            .arg(&run)
            .arg(&folder)
            .args(["--device", "cpu", "--quiet", "--batch", "4"])
            .args(extra)
            .output()
            .unwrap()
    };
    let result = predict(&["--maps"]);
    // One image could not be read: named, the rest scored, a failing exit at the end.
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("broken.png"), "{stderr}");
    assert!(
        stderr.contains("1 of 7 images could not be read"),
        "{stderr}"
    );
    let out = run.join("predict-line");
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("path,score,decision,threshold,map,map_max")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6, "{csv}");

    // Each copied test image scores as it did in the run (same model, same rotations).
    let run_scores: BTreeMap<String, f64> = std::fs::read_to_string(run.join("scores.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[4].parse().unwrap())
        })
        .collect();
    let mut anomalous = 0;
    for row in &rows {
        let source = &copied[row[0]];
        let expected = run_scores
            .iter()
            .find(|(p, _)| Path::new(p).ends_with(source.strip_prefix(&test).unwrap()))
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("{} not in the run's scores", source.display()));
        let score: f64 = row[1].parse().unwrap();
        assert!(
            (score - expected).abs() <= 1e-6 * expected.abs().max(1.0),
            "{}: {score} vs {expected} in the run",
            row[0]
        );
        assert_eq!(row[3], "good-q99");
        let decided = score >= value(0);
        assert_eq!(row[2], if decided { "anomalous" } else { "good" });
        anomalous += decided as usize;
        // The map: a 16-bit PNG at the model's input size, and its overlay.
        let map = image::open(out.join(row[4])).unwrap();
        assert!(map.as_luma16().is_some(), "{}", row[4]);
        assert_eq!((map.width(), map.height()), (128, 128));
        assert!(row[5].parse::<f64>().unwrap() > 0.0);
    }
    let record = json(&out.join("predict.json"));
    assert_eq!(record["scored"], 6);
    assert!(record["wall_s"].as_f64().unwrap() > 0.0, "{record}");
    assert_eq!(record["anomalous"].as_u64(), Some(anomalous as u64));
    assert_eq!(
        record["unreadable"][0]["path"], "cam1/broken.png",
        "{record}"
    );
    assert_eq!(record["threshold"]["name"], "good-q99");
    // The smoke set's circles are far from its squares: the held-out threshold finds them.
    assert!(anomalous >= 3, "{csv}");

    // A second prediction never overwrites the first without --force; a named threshold
    // that the run lacks is refused, listing those it has.
    let again = predict(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(out.join("maps").is_dir(), "the first prediction is intact");
    let unknown = predict(&["--threshold", "good-q95", "--force"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("good-q99, good-q99.9, test-f1"), "{stderr}");
    assert!(
        out.join("maps").is_dir(),
        "a refused prediction keeps the folder"
    );

    // A labelled validation folder too (here copies of test images: the mechanics, not a
    // protocol), and nothing held out: its F1-optimal threshold is recorded, never trained
    // on, and decides by default.
    let validation = dir.path().join("validation");
    for (rel, source) in &copied {
        let class = if rel.starts_with("cam1") {
            "good"
        } else {
            "circle"
        };
        let to = validation
            .join(class)
            .join(Path::new(rel).file_name().unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(source, &to).unwrap();
    }
    let with_folder = format!("data.validation={:?}", validation.display().to_string());
    let mut args = common::SHORT.to_vec();
    args.extend([
        "--set",
        &with_folder,
        "--set",
        "train.validation_fraction=0",
    ]);
    assert_ok(&run_smoke(dir.path(), "labelled", &args));
    let labelled = dir.path().join("labelled");
    let metrics = json(&labelled.join("metrics.json"));
    let names: Vec<&str> = metrics["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["validation-f1", "test-f1"], "{metrics}");
    assert_eq!(metrics["thresholds"][0]["images"], 6);
    assert!(json(&labelled.join("manifest.json"))["dataset"]["held_out_images"].is_null());
    let result = adn("predict")
        .arg(&labelled)
        .arg(&validation)
        .args(["--device", "cpu", "--quiet"])
        .output()
        .unwrap();
    assert_ok(&result);
    let record = json(&labelled.join("predict-validation/predict.json"));
    assert_eq!(record["threshold"]["name"], "validation-f1", "{record}");

    // A validation folder without anomalous images cannot set an F1 threshold: refused
    // before any work, naming the key.
    std::fs::remove_dir_all(validation.join("circle")).unwrap();
    let refused = run_smoke(dir.path(), "refused", &args);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("data.validation") && stderr.contains("0 anomalous"),
        "{stderr}"
    );
}
