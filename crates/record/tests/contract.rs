//! The record contract: what is written reads back, and anything else is refused with an
//! error that names the file.

use std::fs;
use std::path::Path;

use adn_record::*;
use adn_util::Precision;

fn facts() -> RunFacts {
    RunFacts {
        git_commit: None,
        adn_version: "0.1.0".into(),
        libtorch: "2.13.0".into(),
        device: "Cpu".into(),
        threads: 2,
        seed: 3,
        started_unix: 1.0,
        finished_unix: 2.0,
        wall_s: WallTimes {
            total: 1.0,
            ..Default::default()
        },
        dataset: DatasetSummary {
            test_counts: vec![("good".into(), 2), ("crack".into(), 1)],
            ..Default::default()
        },
        feature_dim: 8,
        backbone_weights: "random".into(),
        flow_parameters: 10,
        trainable_attention_parameters: 0,
        feature_cache: CacheStats::default(),
        model_sha256: Default::default(),
        peak_rss_mb: Some(12.5),
        precision: Precision::Fp32,
        flow_precision: Precision::Bf16,
        machine: Some(Machine {
            cpu: "Test CPU".into(),
            cpu_features: vec!["avx2".into()],
            libtorch_build: vec!["mkldnn".into()],
            reproducible: true,
            switches: vec!["ATEN_CPU_CAPABILITY=avx2".into()],
        }),
    }
}

fn complete(dir: &Path) {
    let manifest = Manifest {
        format: FORMAT,
        run_id: "abc".into(),
        experiment: "t".into(),
        status: Status::Complete,
        error: None,
        written_by: Writer::Run,
        run: Some(facts()),
    };
    let metrics = MetricsRecord::from_trajectory(vec![EvalPoint {
        meta_epoch: 0,
        train_loss: 1.0,
        auroc: 0.75,
    }])
    .unwrap();
    let scores = [ScoreRow {
        path: "a.png".into(),
        category: "c".into(),
        defect: "good".into(),
        label: 0,
        score: 1.0,
    }];
    let save: SaveModel<'_> = &|p: &Path| Ok(fs::write(p, b"model")?);
    let record = RunRecord {
        config_toml: "experiment = \"t\"\n",
        manifest: &manifest,
        metrics: Some(&metrics),
        scores: &scores,
        save_model: Some(save),
        log: Some(b"log".to_vec()),
    };
    write_run(dir, &record, false).unwrap();
}

type Object = serde_json::Map<String, serde_json::Value>;
/// A field the case is about, and how it breaks the manifest.
type Case = (&'static str, fn(&mut Object));

/// Rewrites the manifest of `dir` through `edit`.
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Object)) {
    let path = dir.join(files::MANIFEST);
    let mut value: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(value.as_object_mut().unwrap());
    fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
}

#[test]
fn a_written_record_reads_back_whole_and_flat() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("abc");
    assert_eq!(run_state(&dir).unwrap(), RunState::Absent);
    complete(&dir);
    assert_eq!(run_state(&dir).unwrap(), RunState::Complete);
    let m = read_manifest(&dir).unwrap();
    assert_eq!(m.status, Status::Complete);
    let run = m.run.unwrap();
    assert_eq!(run.peak_rss_mb, Some(12.5));
    assert_eq!(run.dataset.test_counts.len(), 2);
    assert_eq!(read_metrics(&dir).unwrap().auroc_last, 0.75);
    assert_eq!(read_scores(&dir.join(files::SCORES)).unwrap().len(), 1);
    // Flat on disk, so `jq .wall_s.total` and older scripts keep working.
    let raw: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join(files::MANIFEST)).unwrap()).unwrap();
    assert_eq!(raw["wall_s"]["total"], 1.0);
    assert_eq!(raw["format"], FORMAT);
    // Header first, then the run's facts, in declaration order (readable as it stands).
    let text = fs::read_to_string(dir.join(files::MANIFEST)).unwrap();
    assert!(
        text.starts_with("{\n  \"format\": 1,\n  \"run_id\""),
        "{text}"
    );
    assert!(
        text.find("\"written_by\"") < text.find("\"git_commit\""),
        "{text}"
    );
    assert_eq!(fs::read(dir.join(files::MODEL)).unwrap(), b"model");
    // The model's hash is recorded, and a model swapped in afterwards is caught.
    let recorded = read_manifest(&dir).unwrap();
    assert_eq!(
        recorded.run.as_ref().unwrap().model_sha256[files::MODEL],
        adn_util::hash::sha256_hex(b"model")
    );
    verify_model_files(&dir, &recorded).unwrap();
    fs::write(dir.join(files::MODEL), b"another run's model").unwrap();
    let err = verify_model_files(&dir, &recorded).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("not the model"),
        "{err}"
    );
    // A complete manifest without its scores is not a complete run.
    fs::remove_file(dir.join(files::SCORES)).unwrap();
    assert_eq!(run_state(&dir).unwrap(), RunState::Partial);
}

#[test]
fn missing_renamed_and_unknown_fields_are_errors_naming_the_file() {
    let cases: [Case; 5] = [
        ("wall_s", |m| {
            m.remove("wall_s");
        }),
        ("peak_rss_mb", |m| {
            let v = m.remove("peak_rss_mb").unwrap();
            m.insert("peak_rss".into(), v);
        }),
        ("error", |m| {
            m.remove("error");
        }),
        ("total", |m| {
            m["wall_s"].as_object_mut().unwrap().remove("total");
        }),
        // A precision this build does not know is refused, never read as fp32.
        ("fp16", |m| {
            m.insert("precision".into(), "fp16".into());
        }),
    ];
    for (field, edit) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("abc");
        complete(&dir);
        edit_manifest(&dir, edit);
        let err = read_manifest(&dir).unwrap_err().to_string();
        assert!(
            err.contains("manifest.json") && err.contains(field),
            "{field}: {err}"
        );
        assert!(run_state(&dir).is_err(), "{field}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("abc");
    complete(&dir);
    fs::write(dir.join(files::METRICS), r#"{"auroc_last": 0.5}"#).unwrap();
    let err = read_metrics(&dir).unwrap_err().to_string();
    assert!(
        err.contains("metrics.json") && err.contains("auroc_best"),
        "{err}"
    );
}

#[test]
fn records_of_another_format_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("abc");
    complete(&dir);
    edit_manifest(&dir, |m| {
        m.remove("format");
    });
    let err = read_manifest(&dir).unwrap_err().to_string();
    assert!(
        err.contains("manifest.json") && err.contains("before formats were numbered"),
        "{err}"
    );
    edit_manifest(&dir, |m| {
        m.insert("format".into(), (FORMAT + 1).into());
    });
    let err = read_manifest(&dir).unwrap_err().to_string();
    assert!(err.contains(&format!("format {}", FORMAT + 1)), "{err}");
    assert!(err.contains("newer adn"), "{err}");
}

#[test]
fn a_failure_recorded_by_the_sweep_replaces_the_folder_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("abc");
    complete(&dir);
    let failed = Manifest::failed_elsewhere("abc", "t", "killed by signal 9");
    write_failure(&dir, &failed).unwrap();
    assert_eq!(run_state(&dir).unwrap(), RunState::Failed);
    let m = read_manifest(&dir).unwrap();
    assert_eq!(m.written_by, Writer::Sweep);
    assert_eq!(m.error.as_deref(), Some("killed by signal 9"));
    assert!(m.run.is_none());
    assert!(!dir.join(files::MODEL).exists());
    // A folder without a manifest is partial.
    fs::remove_file(dir.join(files::MANIFEST)).unwrap();
    assert_eq!(run_state(&dir).unwrap(), RunState::Partial);
}

#[test]
fn plans_read_back_and_reject_unknown_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(files::PLAN);
    let plan = Plan {
        experiment: "t".into(),
        base: "base.toml".into(),
        axis_keys: vec!["model.attention".into()],
        published: Default::default(),
        runs: vec![PlannedRun {
            run_id: "abc".into(),
            dataset: "d".into(),
            category: "c".into(),
            axes: [("model.attention".to_string(), "\"se\"".to_string())].into(),
            overrides: vec![],
            missing: None,
        }],
    };
    plan.write(&path).unwrap();
    assert_eq!(Plan::read(&path).unwrap().runs[0].run_id, "abc");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("axis_keys", "axes_keys");
    fs::write(&path, text).unwrap();
    let err = Plan::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("plan.json") && err.contains("axes_keys"),
        "{err}"
    );
}

#[test]
fn a_failed_model_save_keeps_its_cause_and_writes_nothing() {
    /// An error with a cause, as `anyhow`'s context makes one.
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot save model.safetensors")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("abc");
    let manifest = Manifest {
        format: FORMAT,
        run_id: "abc".into(),
        experiment: "t".into(),
        status: Status::Complete,
        error: None,
        written_by: Writer::Run,
        run: Some(facts()),
    };
    let metrics = MetricsRecord::from_trajectory(vec![EvalPoint {
        meta_epoch: 0,
        train_loss: 1.0,
        auroc: 0.75,
    }])
    .unwrap();
    let save: SaveModel<'_> = &|_: &Path| {
        Err(Box::new(Outer(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (os error 28)",
        ))))
    };
    let record = RunRecord {
        config_toml: "experiment = \"t\"\n",
        manifest: &manifest,
        metrics: Some(&metrics),
        scores: &[],
        save_model: Some(save),
        log: None,
    };
    let err = write_run(&dir, &record, false).unwrap_err().to_string();
    assert!(
        err.contains("cannot save model.safetensors") && err.contains("No space left on device"),
        "{err}"
    );
    assert!(!dir.exists(), "a failed record leaves no folder");
}
