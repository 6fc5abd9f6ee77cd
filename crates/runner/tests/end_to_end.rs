//! End-to-end runs of the `adn` binary on the generated smoke set.

mod common;

use std::process::Command;

use common::{SHORT, adn, assert_ok, json, run_smoke, smoke_command, workspace_root};

#[test]
fn smoke_run_separates_squares_from_circles_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_smoke(dir.path(), "a", &[]);
    assert!(
        out.status.success(),
        "adn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("auroc_last="), "no summary line: {stdout}");

    let run = dir.path().join("a");
    let metrics = json(&run.join("metrics.json"));
    let auroc = metrics["auroc_last"].as_f64().unwrap();
    assert!(auroc >= 0.95, "auroc_last {auroc} on the smoke set");
    assert_eq!(metrics["trajectory"].as_array().unwrap().len(), 4);
    // The smoke set has masks (the circle), so the run scored its anomaly maps against them.
    let pixel = &metrics["pixel"];
    assert_eq!(pixel["images"], 40);
    assert_eq!(pixel["anomalous"], 20);
    assert_eq!(pixel["rotations"], 8);
    assert_eq!(pixel["size"], 128);
    for key in ["auroc", "aupro", "peak_in_mask"] {
        let v = pixel[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    // The defect is a whole shape on black: a map that cannot find it is broken.
    assert!(pixel["auroc"].as_f64().unwrap() > 0.8, "{pixel}");
    assert!(stdout.contains("pixel auroc="), "{stdout}");
    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["device"], "Cpu");
    assert_eq!(manifest["dataset"]["test_images"], 40);
    // The record states the machine: the CPU, the kernel-relevant instruction sets it has
    // (every x86-64 CPU this runs on has SSE4.2), and libtorch's build.
    let machine = &manifest["machine"];
    assert!(!machine["cpu"].as_str().unwrap().is_empty(), "{machine}");
    let features = machine["cpu_features"].as_array().unwrap();
    if cfg!(target_arch = "x86_64") {
        assert!(features.iter().any(|f| f == "sse4_2"), "{machine}");
    }
    assert!(machine["libtorch_build"].as_array().is_some(), "{machine}");
    assert!(run.join("model.safetensors").is_file());
    let scores = std::fs::read_to_string(run.join("scores.csv")).unwrap();
    assert_eq!(scores.lines().count(), 41);

    // The qualitative figure's input: Grad-CAM and DifferNet maps of the trained run.
    let explain = adn("explain")
        .args(["--images", "2", "--device", "cpu", "--out"])
        .arg(dir.path().join("explain"))
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        explain.status.success(),
        "{}",
        String::from_utf8_lossy(&explain.stderr)
    );
    let e = json(&dir.path().join("explain/explain.json"));
    assert_eq!(e["layer"], "relu5");
    // The smoke set's one defect type, a miss of the run at its F1-optimal threshold where
    // there is one, and the first good image; each with a Grad-CAM overlay, DifferNet's map
    // on the row's scale, the score and the threshold.
    let images = e["images"].as_array().unwrap();
    let run0 = &e["runs"][0];
    let threshold = run0["threshold"].as_f64().unwrap();
    let shown: Vec<f64> = run0["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let why: Vec<&str> = images.iter().map(|i| i["why"].as_str().unwrap()).collect();
    let missed = images
        .iter()
        .zip(&shown)
        .any(|(i, &s)| i["anomalous"].as_bool().unwrap() && s < threshold);
    match why.as_slice() {
        ["first of its type", "good"] => assert!(!missed, "a miss was not shown"),
        ["first of its type", "missed by the first run", "good"] => {
            assert!(shown[1] < threshold)
        }
        other => panic!("unexpected rows {other:?}"),
    }
    assert!(images[0]["mask"].is_string() && images.last().unwrap()["mask"].is_null());
    let n = images.len();
    for key in ["cams", "maps"] {
        let files = run0[key].as_array().unwrap();
        assert_eq!(files.len(), n, "{key}");
        let first = dir.path().join("explain").join(files[0].as_str().unwrap());
        assert_eq!(image::image_dimensions(&first).unwrap(), (128, 128));
    }
    // One run: its map reaches the row's maximum (65535) in every row with a non-zero map.
    assert_eq!(run0["flow"], "DifferNet");
    for (i, f) in run0["maps"].as_array().unwrap().iter().enumerate() {
        let map = image::open(dir.path().join("explain").join(f.as_str().unwrap()))
            .unwrap()
            .into_luma16();
        let top = map.pixels().map(|p| p[0]).max().unwrap();
        assert_eq!(top == 65535, run0["map_max"][i].as_f64().unwrap() > 0.0);
    }
    // Grad-CAM is on one scale for every image and run: the largest map reaches it.
    let cam_top = run0["cams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let cam = image::open(dir.path().join("explain").join(f.as_str().unwrap()))
                .unwrap()
                .into_luma16();
            cam.pixels().map(|p| p[0]).max().unwrap()
        })
        .max()
        .unwrap();
    assert_eq!(cam_top == 65535, e["cam_max"].as_f64().unwrap() > 0.0);

    // Same config, same seed, CPU: bit-identical scores.
    let again = run_smoke(dir.path(), "b", &[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let scores_b = std::fs::read_to_string(dir.path().join("b/scores.csv")).unwrap();
    assert_eq!(
        scores, scores_b,
        "a rerun with the same seed changed the scores"
    );

    // An existing run folder is never overwritten without --force.
    let refused = run_smoke(dir.path(), "a", &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(run.join("scores.csv")).unwrap(),
        scores
    );
}

#[test]
fn a_bf16_run_separates_records_its_precision_and_rescores_identically() {
    let dir = tempfile::tempdir().unwrap();
    let bf16 = [
        "--set",
        "model.precision=\"bf16\"",
        "--set",
        "train.precision=\"bf16\"",
    ];
    let out = run_smoke(dir.path(), "bf16", &bf16);
    assert_ok(&out);
    let run = dir.path().join("bf16");
    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["precision"], "bf16");
    assert_eq!(manifest["flow_precision"], "bf16");
    let metrics = json(&run.join("metrics.json"));
    let last = metrics["auroc_last"].as_f64().unwrap();
    assert!(last >= 0.95, "auroc_last {last} on the smoke set in bf16");
    // The maps differentiate the backbone in float32 and still find the circle.
    assert!(metrics["pixel"]["auroc"].as_f64().unwrap() > 0.8);
    // The saved float32 masters, reloaded with their bf16 copies, score as the run did.
    let eval = adn("eval")
        .arg(&run)
        .args(["--device", "cpu", "--quiet", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    assert_ok(&eval);
    let rescored = json(&run.join("eval-test/eval.json"))["auroc"]
        .as_f64()
        .unwrap();
    assert!(
        (rescored - last).abs() < 1e-9,
        "eval {rescored} vs run {last}"
    );
    // A config that now says fp32 (as `auto` would on a machine without bf16 units) still
    // scores the run in the precisions its manifest records.
    let fp32_config = dir.path().join("eval-fp32-config");
    let eval = adn("eval")
        .arg(&run)
        .args(["--device", "cpu", "--quiet", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .args(["--set", "model.precision=\"fp32\""])
        .args(["--set", "train.precision=\"fp32\""])
        .arg("--out")
        .arg(&fp32_config)
        .output()
        .unwrap();
    assert_ok(&eval);
    assert_eq!(
        std::fs::read_to_string(fp32_config.join("scores.csv")).unwrap(),
        std::fs::read_to_string(run.join("eval-test/scores.csv")).unwrap(),
        "an fp32 config rescored a bf16 run in fp32"
    );
    // And the config it writes names the precisions it scored with, not the override.
    let written = std::fs::read_to_string(fp32_config.join("config.toml")).unwrap();
    assert_eq!(
        written.matches("precision = \"bf16\"").count(),
        2,
        "{written}"
    );
}

#[test]
fn reproducible_mode_pins_the_kernels_whatever_the_environment_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let reproducible = ["--set", "compute.reproducible=true"];
    let mut args: Vec<&str> = SHORT.to_vec();
    args.extend(reproducible);
    let out = run_smoke(dir.path(), "a", &args);
    assert_ok(&out);
    let a = dir.path().join("a");
    let machine = json(&a.join("manifest.json"))["machine"].clone();
    assert_eq!(machine["reproducible"], true, "{machine}");
    let switches: Vec<&str> = machine["switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        switches.contains(&"ATEN_CPU_CAPABILITY=avx2"),
        "{switches:?}"
    );
    assert!(switches.contains(&"MKL_CBWR=AVX2,STRICT"), "{switches:?}");
    assert_eq!(json(&a.join("manifest.json"))["threads"], 1);
    // The same config under an environment that caps or widens every kernel switch, more
    // threads and no cache: the mode overrides them all and gives the same bits.
    let hostile = smoke_command(
        &dir.path().join("data"),
        &dir.path().join("cache-b"),
        &dir.path().join("b"),
        &args,
    )
    .env("ATEN_CPU_CAPABILITY", "default")
    .env("DNNL_MAX_CPU_ISA", "SSE41")
    .env("ONEDNN_MAX_CPU_ISA", "SSE41")
    .env("MKL_ENABLE_INSTRUCTIONS", "SSE4_2")
    .env("MKL_CBWR", "COMPATIBLE")
    .env("OMP_NUM_THREADS", "2")
    .output()
    .unwrap();
    assert_ok(&hostile);
    let scores = |run: &str| std::fs::read_to_string(dir.path().join(run).join("scores.csv"));
    assert_eq!(scores("a").unwrap(), scores("b").unwrap());
    // A reproducible run is rescored in the same mode: `eval` enters it itself.
    let eval = adn("eval")
        .arg(&a)
        .args(["--device", "cpu", "--quiet", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    assert_ok(&eval);
    assert_eq!(
        std::fs::read_to_string(a.join("eval-test/scores.csv")).unwrap(),
        scores("a").unwrap()
    );
    // bf16 kernels exist only on some CPUs: refused by name before any work.
    let mut bf16 = args.clone();
    bf16.extend(["--set", "model.precision=\"bf16\""]);
    let refused = run_smoke(dir.path(), "c", &bf16);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("model.precision") && err.contains("reproducible"),
        "{err}"
    );
}

#[test]
fn diverging_training_is_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_smoke(
        dir.path(),
        "nan",
        &["--set", "train.lr=1e12", "--set", "train.meta_epochs=2"],
    );
    assert!(!out.status.success(), "a run with lr=1e12 should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("training loss became") || stderr.contains("diverged"),
        "{stderr}"
    );
    let run = dir.path().join("nan");
    assert_eq!(json(&run.join("manifest.json"))["status"], "failed");
    assert!(
        !run.join("metrics.json").exists(),
        "a failed run must not look complete"
    );
    assert!(!run.join("scores.csv").exists());
}

#[test]
fn config_typos_are_reported_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_smoke(dir.path(), "typo", &["--set", "train.batchsize=3"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("batchsize"), "{stderr}");
    assert!(!dir.path().join("typo").exists());
}

#[test]
fn identity_start_with_a_volume_charge_starts_as_vanilla_and_charges_what_it_removes() {
    let dir = tempfile::tempdir().unwrap();
    let set = [
        "model.attention=\"se\"",
        "model.attention_training=\"joint\"",
        "model.attention_init=\"identity\"",
        "train.volume_charge=1.0",
        "train.meta_epochs=1",
        "train.sub_epochs=2",
        "train.rotation_pool=4",
    ];
    let args: Vec<&str> = set.iter().flat_map(|s| ["--set", *s]).collect();
    let out = run_smoke(dir.path(), "charged", &args);
    assert!(
        out.status.success(),
        "adn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = json(&dir.path().join("charged/metrics.json"));
    let d = metrics["diagnostics"].as_array().unwrap();
    // Identity gates start at exactly 1 and have moved after training.
    for g in d[0]["gates"].as_array().unwrap() {
        assert!((g["mean"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{g}");
        assert!(g["sd"].as_f64().unwrap() < 1e-6, "{g}");
    }
    assert!(
        d[1]["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| (g["mean"].as_f64().unwrap() - 1.0).abs() > 1e-7)
    );
    // The charge was computed and is part of the optimised loss.
    let loss = &d[1]["loss"];
    let parts = loss["z"].as_f64().unwrap()
        + loss["neg_log_det"].as_f64().unwrap()
        + loss["volume_charge"].as_f64().unwrap();
    let train_loss = metrics["trajectory"][0]["train_loss"].as_f64().unwrap();
    assert!((parts - train_loss).abs() < 1e-4, "{parts} vs {train_loss}");
    assert!(loss["volume_charge"].as_f64().unwrap().is_finite());
    assert_ne!(loss["volume_charge"].as_f64().unwrap(), 0.0);
}

#[test]
fn joint_attention_trains_saves_and_rescores_identically() {
    let dir = tempfile::tempdir().unwrap();
    let joint = [
        "--set",
        "model.attention=\"se\"",
        "--set",
        "model.attention_training=\"joint\"",
        "--set",
        "train.meta_epochs=2",
        "--set",
        "train.sub_epochs=2",
        // Joint runs hold every pooled rotation's frozen prefix in memory: a small pool.
        "--set",
        "train.rotation_pool=8",
    ];
    let out = run_smoke(dir.path(), "joint", &joint);
    assert!(
        out.status.success(),
        "adn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = dir.path().join("joint");
    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    // SE r=2 at relu1/relu2/relu5: 64² + 192² + 256² weights, all trained.
    assert_eq!(
        manifest["trainable_attention_parameters"],
        64 * 64 + 192 * 192 + 256 * 256
    );
    assert!(run.join("attention.safetensors").is_file());
    // Nothing from a joint run goes to the feature cache: its features change every step.
    assert_eq!(manifest["feature_cache"]["enabled"], false);
    // Diagnostics: the state before training, then one entry per meta-epoch, with the
    // loss split, per-layer norms and every gate.
    let metrics = json(&run.join("metrics.json"));
    let diagnostics = metrics["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 3);
    assert!(diagnostics[0]["meta_epoch"].is_null() && diagnostics[0]["loss"].is_null());
    for (i, d) in diagnostics.iter().enumerate().skip(1) {
        assert_eq!(d["meta_epoch"], i - 1);
        let loss = &d["loss"];
        let sum = loss["z"].as_f64().unwrap() + loss["neg_log_det"].as_f64().unwrap();
        let train_loss = metrics["trajectory"][i - 1]["train_loss"].as_f64().unwrap();
        assert!((sum - train_loss).abs() < 1e-4, "{sum} vs {train_loss}");
        assert_eq!(loss["volume_charge"], 0.0);
    }
    for d in diagnostics {
        // One record per position and scale (SE has one gate).
        let gates = d["gates"].as_array().unwrap().len();
        assert!(gates > 0 && gates % 3 == 0, "{gates} gate records");
        assert!(d["norm_train"].as_f64().unwrap() > 0.0);
        assert!(!d["feature_norms"].as_array().unwrap().is_empty());
    }

    // The pictures of the attention: every gate at every position on 2 good and 2
    // defective test images.
    let explain = adn("explain")
        .args([
            "--images",
            "1",
            "--attention-images",
            "2",
            "--device",
            "cpu",
        ])
        .arg("--out")
        .arg(dir.path().join("explain"))
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        explain.status.success(),
        "{}",
        String::from_utf8_lossy(&explain.stderr)
    );
    let pictures = json(&dir.path().join("explain/attention.json"));
    let images = pictures["images"].as_array().unwrap();
    let anomalous: Vec<bool> = images
        .iter()
        .map(|i| i["anomalous"].as_bool().unwrap())
        .collect();
    assert_eq!(anomalous, [false, false, true, true]);
    for i in images {
        let input = dir
            .path()
            .join("explain")
            .join(i["input"].as_str().unwrap());
        assert_eq!(image::image_dimensions(&input).unwrap(), (128, 128));
    }
    let positions = pictures["runs"][0]["positions"].as_array().unwrap();
    let channels: Vec<u64> = positions
        .iter()
        .map(|p| {
            let g = &p["gates"][0];
            assert_eq!(g["gate"], "channel");
            let shape: Vec<u64> = g["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let values = g["values"].as_array().unwrap();
            assert_eq!(values.len() as u64, shape[0] * shape[1]);
            assert!(
                values
                    .iter()
                    .all(|v| (0.0..=1.0).contains(&v.as_f64().unwrap()))
            );
            assert_eq!(shape[0], 4);
            shape[1]
        })
        .collect();
    assert_eq!(channels, [64, 192, 256]);

    // Same seed, same scores.
    let again = run_smoke(dir.path(), "joint-again", &joint);
    assert!(again.status.success());
    let scores = std::fs::read_to_string(run.join("scores.csv")).unwrap();
    assert_eq!(
        scores,
        std::fs::read_to_string(dir.path().join("joint-again/scores.csv")).unwrap()
    );

    // Rescoring loads the trained attention: the last epoch's AUROC comes back.
    let eval = adn("eval")
        .arg(&run)
        .args(["--device", "cpu", "--quiet", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let record = json(&run.join("eval-test/eval.json"));
    let last = json(&run.join("metrics.json"))["auroc_last"]
        .as_f64()
        .unwrap();
    let rescored = record["auroc"].as_f64().unwrap();
    assert!(
        (rescored - last).abs() < 1e-9,
        "eval AUROC {rescored} differs from the run's {last}"
    );
}

/// One meta-epoch of one sub-epoch: enough for the record's behaviour.

#[test]
fn a_failed_replacement_keeps_the_complete_run() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_smoke(dir.path(), "a", &SHORT);
    assert_ok(&first);
    let run = dir.path().join("a");
    let scores = std::fs::read_to_string(run.join("scores.csv")).unwrap();
    let model = std::fs::read(run.join("model.safetensors")).unwrap();

    let mut diverging = SHORT.to_vec();
    diverging.extend(["--set", "train.lr=1e30", "--force"]);
    let second = run_smoke(dir.path(), "a", &diverging);
    assert!(!second.status.success(), "lr=1e30 should fail");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("was kept"), "{stderr}");
    assert_eq!(json(&run.join("manifest.json"))["status"], "complete");
    assert_eq!(
        std::fs::read_to_string(run.join("scores.csv")).unwrap(),
        scores
    );
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
}

#[test]
fn an_out_path_that_is_a_file_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    for (name, force) in [("notes.txt", true), ("notes.txt/run", false)] {
        let extra: &[&str] = if force { &["--force"] } else { &[] };
        let out = run_smoke(dir.path(), name, extra);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is a file"), "{name}: {stderr}");
        // Refused before the smoke set was generated or a feature computed.
        assert!(!dir.path().join("data").exists(), "{name}: work was done");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "something was left beside the user's file");
}

#[test]
fn eval_refuses_a_model_the_run_did_not_train() {
    let dir = tempfile::tempdir().unwrap();
    for (name, seed) in [("a", "0"), ("b", "1")] {
        let mut args = SHORT.to_vec();
        let seed = format!("train.seed={seed}");
        args.extend(["--set", &seed]);
        let out = run_smoke(dir.path(), name, &args);
        assert_ok(&out);
    }
    let a = dir.path().join("a");
    assert!(json(&a.join("manifest.json"))["model_sha256"]["model.safetensors"].is_string());
    // Same shapes, another run's weights.
    std::fs::copy(
        dir.path().join("b/model.safetensors"),
        a.join("model.safetensors"),
    )
    .unwrap();
    let eval = |extra: &[&str]| {
        adn("eval")
            .arg(&a)
            .args(["--device", "cpu", "--quiet", "--force", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = eval(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not the model") && stderr.contains("--any-model"),
        "{stderr}"
    );
    assert!(!a.join("eval-test").exists());
    let allowed = eval(&["--any-model"]);
    assert_ok(&allowed);
    // The rescoring says the model was not the run's.
    let record = json(&a.join("eval-test/eval.json"));
    assert_eq!(record["model_matches_record"], false, "{record}");

    // The run's own model, checked: said so.
    let b = dir.path().join("b");
    let eval_b = |extra: &[&str]| {
        adn("eval")
            .arg(&b)
            .args(["--device", "cpu", "--quiet", "--force", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .args(extra)
            .output()
            .unwrap()
    };
    assert_ok(&eval_b(&[]));
    let record = json(&b.join("eval-test/eval.json"));
    assert_eq!(record["model_matches_record"], true, "{record}");
    std::fs::remove_dir_all(b.join("eval-test")).unwrap();

    // A config edited after training keeps the tensor shapes but not the model's meaning:
    // refused, naming the file, and nothing is written.
    let config = b.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("clamp = 3.0"), "{text}");
    std::fs::write(&config, text.replace("clamp = 3.0", "clamp = 0.5")).unwrap();
    let refused = eval_b(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("config.toml") && stderr.contains("edited after training"),
        "{stderr}"
    );
    assert!(!b.join("eval-test").exists());
}

#[test]
fn out_of_range_thread_counts_are_usage_errors_not_panics() {
    for threads in ["0", "-3"] {
        let out = Command::new(env!("CARGO_BIN_EXE_adn"))
            .current_dir(workspace_root())
            .arg(format!("--threads={threads}"))
            .args(["model", "summary", "experiments/smoke.toml"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--threads={threads}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--threads") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[test]
fn sizes_the_backbone_or_the_memory_cannot_take_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    for (set, expected) in [
        ("model.image_size=20000", "needs at least"),
        ("model.image_size=7", "too small"),
        ("model.scales=65", "too small"),
    ] {
        let out = run_smoke(dir.path(), "big", &["--set", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{set}: {stderr}");
        assert!(
            stderr.contains("model.image_size") && stderr.contains(expected),
            "{set}: {stderr}"
        );
        // Refused before the data stage: the smoke set was not even generated.
        assert!(!dir.path().join("data").exists(), "{set}");
        assert!(!dir.path().join("big").exists(), "{set}");
    }
}

#[test]
fn a_test_set_without_anomalies_is_refused_before_any_feature() {
    let dir = tempfile::tempdir().unwrap();
    let made = adn("data")
        .args(["make", "--kind", "smoke", "--size", "64", "--out"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_ok(&made);
    let test_dir = dir.path().join("data/shapes/test");
    for e in std::fs::read_dir(&test_dir).unwrap().flatten() {
        if e.file_name() != "good" {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
    // Their masks go with them, so the layout stays valid.
    std::fs::remove_dir_all(dir.path().join("data/shapes/ground_truth")).unwrap();
    let out = run_smoke(dir.path(), "only-good", &SHORT);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0 anomalous") && stderr.contains("both"),
        "{stderr}"
    );
    assert!(!dir.path().join("cache").exists(), "features were computed");
    assert!(!dir.path().join("only-good").exists());
}

#[test]
fn concurrent_runs_share_a_generated_dataset_and_never_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let spawn = |name: &str| {
        let mut cmd = common::smoke_command(
            &dir.path().join("data"),
            &dir.path().join("cache"),
            &dir.path().join(name),
            &SHORT,
        );
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Both find the smoke set missing: one writes it, the other waits and uses it.
    let (a, b) = (spawn("a"), spawn("b"));
    for child in [a, b] {
        assert_ok(&child.wait_with_output().unwrap());
    }
    let data = dir.path().join("data/shapes");
    assert_eq!(
        std::fs::read_dir(data.join("test/good")).unwrap().count(),
        20
    );

    // A process for a run folder that another holds is refused. The holder is this test
    // (another process to adn, with the same kind of lock): a second adn run racing a short
    // first one could find it already finished.
    let held = adn_util::lock::try_lock(&dir.path().join("c"), "the run folder").unwrap();
    let refused = run_smoke(dir.path(), "c", &SHORT);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("run folder") && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(!dir.path().join("c/manifest.json").exists());
    // Released, the folder is free again.
    drop(held);
    assert_ok(&run_smoke(dir.path(), "c", &SHORT));
    assert_eq!(
        json(&dir.path().join("c/manifest.json"))["status"],
        "complete"
    );
}

/// `--set` arguments for a flow on maps on the smoke set with one view per image and
/// anomalib's rate, then `sets`.
fn one_view_sets(sets: &[&str]) -> Vec<String> {
    let one_view = [
        "train.rotation_pool=1",
        "train.train_transforms=1",
        "test.test_transforms=1",
        "train.lr=1e-3",
    ];
    one_view
        .iter()
        .chain(sets)
        .flat_map(|s| ["--set".to_string(), s.to_string()])
        .collect()
}

#[test]
fn a_fastflow_run_trains_on_feature_maps_localises_natively_rescores_and_is_refused_where_not_built()
 {
    let dir = tempfile::tempdir().unwrap();
    let args = one_view_sets(&[
        "train.meta_epochs=1",
        "flow.kind=fastflow",
        "model.scales=1",
        "model.feature_layers=[\"relu1\",\"relu2\",\"relu5\"]",
    ]);
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_smoke(dir.path(), "ff", &extra);
    assert_ok(&out);
    let run = dir.path().join("ff");
    let metrics = json(&run.join("metrics.json"));
    // The smoke set's squares and circles: FastFlow separates them after 4 sub-epochs.
    let auroc = metrics["auroc_last"].as_f64().unwrap();
    assert!(auroc > 0.9, "auroc_last {auroc}");
    // Its own map, of the unrotated image, against the masks.
    let pixel = &metrics["pixel"];
    assert_eq!(pixel["rotations"], 1, "{pixel}");
    assert!(pixel["map"].as_str().unwrap().starts_with("FastFlow's map"));
    assert!(pixel["auroc"].as_f64().unwrap() > 0.5, "{pixel}");
    // The model holds anomalib's names.
    let model = tch::Tensor::read_safetensors(run.join("model.safetensors")).unwrap();
    assert!(model.iter().any(|(n, _)| n == "norms.0.weight"));
    assert!(
        model
            .iter()
            .any(|(n, _)| n == "fast_flow_blocks.2.module_list.7.subnet.2.weight")
    );
    // `adn eval` rescores it: on the run's own data, the run's own scores.
    let eval_dir = dir.path().join("eval");
    assert_ok(
        &adn("eval")
            .arg(&run)
            .args(["--quiet", "--device", "cpu", "--out"])
            .arg(&eval_dir)
            .output()
            .unwrap(),
    );
    let scores = |path: &std::path::Path| -> Vec<(String, f64)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                // path,category,defect,label,score
                let (p, score) = (l.split(',').next(), l.rsplit(',').next());
                (p.unwrap().to_string(), score.unwrap().parse().unwrap())
            })
            .collect()
    };
    let (trained, rescored) = (
        scores(&run.join("scores.csv")),
        scores(&eval_dir.join("scores.csv")),
    );
    assert_eq!(trained.len(), rescored.len());
    for ((p, a), (q, b)) in trained.iter().zip(&rescored) {
        assert_eq!(p, q);
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1e-3), "{p}: {a} vs {b}");
    }
    let eval = json(&eval_dir.join("eval.json"));
    assert!(
        (eval["auroc"].as_f64().unwrap() - auroc).abs() < 1e-9,
        "{eval}"
    );
    // Commands built for DifferNet's runs refuse it by name, before any work.
    let folder = dir.path().join("data");
    for (command, args) in [("export", vec![&run]), ("predict", vec![&run, &folder])] {
        let refused = adn(command).args(args).output().unwrap();
        assert!(
            !refused.status.success(),
            "adn {command} accepted a FastFlow run"
        );
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("fastflow"), "adn {command}: {err}");
    }
}

#[test]
fn a_cflow_run_trains_on_fibers_and_localises_natively() {
    let dir = tempfile::tempdir().unwrap();
    let args = one_view_sets(&[
        "train.meta_epochs=1",
        "flow.kind=cflow",
        "flow.clamp=1.9",
        "model.scales=1",
        "model.feature_layers=[\"relu2\",\"relu5\"]",
    ]);
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_smoke(dir.path(), "cf", &extra);
    assert_ok(&out);
    let run = dir.path().join("cf");
    let metrics = json(&run.join("metrics.json"));
    let auroc = metrics["auroc_last"].as_f64().unwrap();
    assert!(auroc > 0.9, "auroc_last {auroc}");
    let pixel = &metrics["pixel"];
    assert!(
        pixel["map"].as_str().unwrap().starts_with("CFlow-AD's map"),
        "{pixel}"
    );
    assert!(pixel["auroc"].as_f64().unwrap() > 0.7, "{pixel}");
    // One decoder per layer, under anomalib's names.
    let model = tch::Tensor::read_safetensors(run.join("model.safetensors")).unwrap();
    assert!(
        model
            .iter()
            .any(|(n, _)| n == "decoders.1.module_list.7.subnet.2.weight")
    );
}

#[test]
fn attention_trains_jointly_in_front_of_fastflow_and_cflow() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["fastflow", "cflow"] {
        let flow = format!("flow.kind={kind}");
        let args = one_view_sets(&[
            "train.meta_epochs=1",
            "train.sub_epochs=2",
            &flow,
            "model.scales=1",
            "model.feature_layers=[\"relu2\",\"relu5\"]",
            "model.attention=se",
            "model.positions=[\"relu2\"]",
            "model.attention_training=joint",
            // SE's last layer starts at exactly 0 (gates at 1): any weight there is learnt.
            "model.attention_init=identity",
        ]);
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_ok(&run_smoke(dir.path(), kind, &extra));
        let run = dir.path().join(kind);
        let manifest = json(&run.join("manifest.json"));
        // SE r = 2 at relu2: 192 × 96 + 96 × 192 weights, all trained.
        assert_eq!(manifest["trainable_attention_parameters"], 192 * 192);
        let attention = tch::Tensor::read_safetensors(run.join("attention.safetensors")).unwrap();
        let (_, fc2) = attention
            .iter()
            .find(|(n, _)| n.ends_with("fc2.weight"))
            .expect("SE's second layer is saved");
        assert!(
            fc2.abs().max().double_value(&[]) > 0.0,
            "{kind}: SE's last layer never left 0"
        );
    }
    // `adn explain` shows the two flows' own maps side by side, each on its own scale
    // (their units differ), with the trained gates; Grad-CAM is DifferNet's alone.
    let out = dir.path().join("explain");
    assert_ok(
        &adn("explain")
            .args([
                "--images",
                "1",
                "--attention-images",
                "1",
                "--device",
                "cpu",
                "--out",
            ])
            .arg(&out)
            .arg(dir.path().join("fastflow"))
            .arg(dir.path().join("cflow"))
            .output()
            .unwrap(),
    );
    let e = json(&out.join("explain.json"));
    let flows: Vec<&str> = e["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["flow"].as_str().unwrap())
        .collect();
    assert_eq!(flows, ["FastFlow", "CFlow-AD"]);
    let n = e["images"].as_array().unwrap().len();
    for run in e["runs"].as_array().unwrap() {
        assert!(run["cams"].as_array().unwrap().is_empty(), "{run}");
        for (i, f) in run["maps"].as_array().unwrap().iter().enumerate() {
            let map = image::open(out.join(f.as_str().unwrap()))
                .unwrap()
                .into_luma16();
            assert_eq!(map.dimensions(), (128, 128));
            // Alone in its flow, each run's map reaches its own scale.
            let top = map.pixels().map(|p| p[0]).max().unwrap();
            assert_eq!(top == 65535, run["map_max"][i].as_f64().unwrap() > 0.0);
        }
        assert_eq!(run["map_max"].as_array().unwrap().len(), n);
    }
    let gates = json(&out.join("attention.json"));
    assert_eq!(gates["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn a_csflow_run_trains_on_one_layer_at_three_scales_and_localises_natively() {
    let dir = tempfile::tempdir().unwrap();
    let args = one_view_sets(&[
        "train.meta_epochs=2",
        "flow.kind=csflow",
        "model.backbone=efficientnet-lite0",
        "model.scales=3",
        "model.feature_layers=[\"stage4\"]",
        "flow.coupling_blocks=4",
        "flow.hidden=32",
    ]);
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_smoke(dir.path(), "cs", &extra);
    assert_ok(&out);
    let run = dir.path().join("cs");
    let metrics = json(&run.join("metrics.json"));
    // With random backbone weights and 8 sub-epochs the image score (the mean z² of every
    // position) is near chance on the smoke shapes; the loss falls and the map localises.
    let trajectory = metrics["trajectory"].as_array().unwrap();
    let loss = |k: usize| trajectory[k]["train_loss"].as_f64().unwrap();
    assert!(loss(1) < loss(0), "{trajectory:?}");
    let pixel = &metrics["pixel"];
    assert!(
        pixel["map"].as_str().unwrap().starts_with("CS-Flow's map"),
        "{pixel}"
    );
    assert!(pixel["auroc"].as_f64().unwrap() > 0.7, "{pixel}");
    let model = tch::Tensor::read_safetensors(run.join("model.safetensors")).unwrap();
    assert!(
        model
            .iter()
            .any(|(n, _)| n == "module_list.7.cross_convolution2.down_conv12.weight")
    );
    // A size whose maps do not halve exactly is refused by name.
    let odd = run_smoke(
        dir.path(),
        "odd",
        &[extra.as_slice(), &["--set", "model.image_size=144"]].concat(),
    );
    assert!(!odd.status.success());
    let err = String::from_utf8_lossy(&odd.stderr);
    assert!(
        err.contains("halve") && err.contains("model.image_size"),
        "{err}"
    );
}
