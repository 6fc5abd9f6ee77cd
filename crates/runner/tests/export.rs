//! `adn export` end to end: a smoke run exported as TorchScript, checked against `adn
//! predict` on the same images; and, where the venv has the runtimes, the file loaded in
//! PyTorch, converted to ONNX and run in ONNX Runtime and OpenVINO.

mod common;

use std::path::{Path, PathBuf};

use common::{SHORT, adn, assert_ok, copy_test_images, json, run_smoke, workspace_root};

/// A short smoke run, a folder of 6 of its test images (3 good, 3 anomalous), `adn predict`
/// on it and `adn export --batch 4` checked on it; returns the run, the folder and the
/// predicted scores in file order.
fn exported(dir: &Path) -> (PathBuf, PathBuf, Vec<f64>) {
    assert_ok(&run_smoke(dir, "run", &SHORT));
    let run = dir.join("run");
    let folder = dir.join("line");
    copy_test_images(dir, &folder, 3);
    let predict = adn("predict")
        .arg(&run)
        .arg(&folder)
        .args(["--device", "cpu", "--quiet"])
        .output()
        .unwrap();
    assert_ok(&predict);
    let csv = std::fs::read_to_string(run.join("predict-line/predictions.csv")).unwrap();
    let predicted: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let export = adn("export")
        .arg(&run)
        .arg("--check")
        .arg(&folder)
        .args(["--batch", "4"])
        .output()
        .unwrap();
    assert_ok(&export);
    (run, folder, predicted)
}

#[test]
fn an_export_scores_the_images_as_adn_predict_and_says_how_to_feed_it() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _, predicted) = exported(dir.path());
    let out = run.join("export");
    let record = json(&out.join("export.json"));
    assert_eq!(record["format"], "torchscript");
    assert_eq!(
        record["input"]["shape"],
        serde_json::json!([4, 3, 128, 128])
    );
    assert_eq!(record["rotations"].as_array().unwrap().len(), 8);
    assert_eq!(record["checked_images"], 6);
    assert!(
        record["max_relative_difference"].as_f64().unwrap() <= 1e-4,
        "{record}"
    );
    let names: Vec<&str> = record["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good-q99", "good-q99.9", "test-f1"], "{record}");
    let bytes = std::fs::read(out.join("model.pt")).unwrap();
    use sha2::Digest;
    assert_eq!(
        record["file_sha256"].as_str().unwrap(),
        format!("{:x}", sha2::Sha256::digest(&bytes))
    );
    // The checked scores are adn predict's on the same images, in the same order.
    let check = tch::Tensor::read_safetensors(out.join("check.safetensors")).unwrap();
    let scores = &check.iter().find(|(n, _)| n == "scores").unwrap().1;
    let checked = Vec::<f64>::try_from(scores.to_kind(tch::Kind::Double)).unwrap();
    assert_eq!(checked.len(), predicted.len());
    for (a, b) in checked.iter().zip(&predicted) {
        assert!(
            (a - b).abs() <= 1e-6 * a.abs(),
            "{checked:?} vs {predicted:?}"
        );
    }
    // The file itself, loaded by libtorch, gives those scores (the export checked it too).
    let module = tch::CModule::load(out.join("model.pt")).unwrap();
    let inputs = &check.iter().find(|(n, _)| n == "inputs").unwrap().1;
    let got = Vec::<f64>::try_from(
        module
            .forward_ts(&[inputs.narrow(0, 0, 4)])
            .unwrap()
            .to_kind(tch::Kind::Double),
    )
    .unwrap();
    for (a, b) in got.iter().zip(&predicted) {
        assert!((a - b).abs() <= 1e-4 * b.abs(), "{got:?} vs {predicted:?}");
    }

    // An existing export is kept without --force; a batch of 0 is refused by name.
    let again = adn("export").arg(&run).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let zero = adn("export")
        .arg(&run)
        .args(["--batch", "0", "--force"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--batch"));
    assert!(
        out.join("model.pt").is_file(),
        "a refused export keeps the folder"
    );
}

/// Run by `cargo xtask test` where the venv has torch, onnx, onnxruntime and openvino.
#[test]
#[ignore = "needs the venv's Python with torch, onnx, onnxruntime and openvino; cargo xtask test runs it"]
fn the_exported_file_scores_as_adn_in_pytorch_onnx_runtime_and_openvino() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _, _) = exported(dir.path());
    let python = workspace_root().join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .args(["-W", "ignore"])
        .arg(workspace_root().join("bench/export/check.py"))
        .arg(run.join("export"))
        .arg("--onnx")
        .output()
        .unwrap();
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["images"], 6);
    for runtime in ["torchscript", "onnxruntime", "openvino"] {
        let rel = result[format!("{runtime}_max_rel")].as_f64().unwrap();
        assert!(rel <= 1e-4, "{runtime}: {rel:e} relative ({result})");
    }
}

#[test]
fn a_bf16_run_exports_its_bf16_operations_and_scores_as_adn() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = SHORT.to_vec();
    args.extend([
        "--set",
        "model.precision=\"bf16\"",
        "--set",
        "train.precision=\"bf16\"",
    ]);
    assert_ok(&run_smoke(dir.path(), "bf16", &args));
    let run = dir.path().join("bf16");
    assert_ok(&adn("export").arg(&run).output().unwrap());
    let record = json(&run.join("export/export.json"));
    assert_eq!(record["checked_images"], 16);
    assert!(
        record["max_relative_difference"].as_f64().unwrap() <= 1e-4,
        "{record}"
    );
}
