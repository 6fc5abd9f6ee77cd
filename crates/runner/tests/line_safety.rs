//! The line's commands (`adn predict`, `adn export`, `adn eval`) against a hostile user:
//! an output folder that is an input or the run, `--force` on a folder of the user's,
//! images whose paths flatten alike, a swapped model, numbers out of range, a check folder
//! without images, a leftover of a killed export. One short smoke run serves every test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::{SHORT, adn, assert_ok, copy_test_images, json, run_smoke};

/// The shared run: its folder, and a folder of 4 of its test images (2 good, 2 anomalous).
struct Shared {
    _dir: tempfile::TempDir,
    /// The folder that holds the run and its generated data.
    root: PathBuf,
    run: PathBuf,
    images: PathBuf,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        assert_ok(&run_smoke(dir.path(), "run", &SHORT));
        let images = dir.path().join("images");
        copy_test_images(dir.path(), &images, 2);
        Shared {
            root: dir.path().to_path_buf(),
            run: dir.path().join("run"),
            images,
            _dir: dir,
        }
    })
}

/// A copy of the shared run in a fresh folder, for tests that change or fill it.
fn own_run(into: &Path) -> PathBuf {
    let run = into.join("run");
    copy_dir(&shared().run, &run);
    run
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails unless `out` is a clean refusal: exit code 1, `words` in its message, and no
/// panic, C++ frames or internal error.
fn assert_refused(out: &Output, words: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in words {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
    for bad in [
        "panicked",
        "internal error",
        "c10::Error",
        "terminate called",
    ] {
        assert!(!err.contains(bad), "{bad:?} in: {err}");
    }
}

/// Every file below `dir` with its bytes, for checking that nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn out_may_not_be_an_input_or_the_run_even_with_force() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let run = own_run(dir.path());
    let images = dir.path().join("images");
    copy_dir(&s.images, &images);
    std::fs::write(images.join("notes.txt"), "the user's own file").unwrap();
    let (run_before, images_before) = (snapshot(&run), snapshot(&images));

    let predict = |out: &Path| {
        adn("predict")
            .arg(&run)
            .arg(&images)
            .arg("--out")
            .arg(out)
            .args(["--force", "--device", "cpu", "--quiet"])
            .output()
            .unwrap()
    };
    assert_refused(&predict(&images), &["is the folder of images"]);
    assert_refused(&predict(&images.join("good")), &["lies inside"]);
    assert_refused(&predict(dir.path()), &["contains the run folder"]);
    assert_refused(&predict(&run), &["is the run folder"]);
    let export = |out: &Path| {
        adn("export")
            .arg(&run)
            .arg("--check")
            .arg(&images)
            .arg("--out")
            .arg(out)
            .arg("--force")
            .output()
            .unwrap()
    };
    assert_refused(&export(&run), &["is the run folder"]);
    assert_refused(&export(&images), &["is the folder of check images"]);
    // A folder of the user's, not an earlier output: --force does not clear it.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("keep.txt"), "mine").unwrap();
    assert_refused(
        &predict(&theirs),
        &["no predict.json", "nothing there was touched"],
    );
    assert_refused(&export(&theirs), &["no export.json"]);
    assert_eq!(
        std::fs::read_to_string(theirs.join("keep.txt")).unwrap(),
        "mine"
    );

    assert_eq!(snapshot(&run), run_before, "the run changed");
    assert_eq!(snapshot(&images), images_before, "the images changed");
    // An earlier prediction is replaced under --force, as before.
    let out = dir.path().join("predicted");
    assert_ok(&predict(&out));
    assert_ok(&predict(&out));
}

#[test]
fn an_existing_out_is_refused_before_any_work() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing");
    std::fs::create_dir_all(&existing).unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    // Each command is given an input it would fail on only after its work began: the
    // refusal of the existing folder must come first.
    let predict = adn("predict")
        .arg(&s.run)
        .arg(&empty)
        .arg("--out")
        .arg(&existing)
        .output()
        .unwrap();
    assert_refused(&predict, &["already exists", "--force"]);
    let export = adn("export")
        .arg(&s.run)
        .arg("--check")
        .arg(&empty)
        .arg("--out")
        .arg(&existing)
        .output()
        .unwrap();
    assert_refused(&export, &["already exists", "--force"]);
    let eval = adn("eval")
        .arg(&s.run)
        .arg("--data")
        .arg(dir.path().join("no-such-dataset"))
        .arg("--out")
        .arg(&existing)
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    assert_refused(&eval, &["already exists", "--force"]);
}

#[test]
fn maps_of_paths_that_flatten_alike_are_kept_apart() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("line");
    let good: Vec<PathBuf> = std::fs::read_dir(s.images.join("good"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let anomalous: Vec<PathBuf> = std::fs::read_dir(s.images.join("circle"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // `a/b.png` and `a__b.png`: different images, one flattened name.
    std::fs::create_dir_all(folder.join("a")).unwrap();
    std::fs::copy(&good[0], folder.join("a/b.png")).unwrap();
    std::fs::copy(&anomalous[0], folder.join("a__b.png")).unwrap();
    let out = dir.path().join("out");
    let predict = adn("predict")
        .arg(&s.run)
        .arg(&folder)
        .arg("--out")
        .arg(&out)
        .args(["--maps", "--device", "cpu", "--quiet"])
        .output()
        .unwrap();
    assert_ok(&predict);
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let maps: Vec<&str> = rows.iter().map(|r| r[4]).collect();
    assert_ne!(maps[0], maps[1], "two images, one map file: {csv}");
    for row in &rows {
        // Each row's map is a file of its own, named after the image's path.
        assert!(row[4].contains(row[0]), "{csv}");
        let map = image::open(out.join(row[4])).unwrap();
        assert_eq!(map.width(), 128);
    }
    // The anomalous image's map is not the good one's.
    assert_ne!(
        std::fs::read(out.join(maps[0])).unwrap(),
        std::fs::read(out.join(maps[1])).unwrap()
    );
}

#[test]
fn an_export_of_a_swapped_model_says_so_and_hashes_what_it_exported() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let run = own_run(dir.path());
    // Same shapes, other weights.
    let model = run.join("model.safetensors");
    let tensors = tch::Tensor::read_safetensors(&model).unwrap();
    let changed: Vec<(String, tch::Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.f_add_scalar(1e-3).unwrap()))
        .collect();
    tch::Tensor::write_safetensors(&changed, &model).unwrap();
    let export = |extra: &[&str]| {
        adn("export")
            .arg(&run)
            .arg("--check")
            .arg(&s.images)
            .args(extra)
            .output()
            .unwrap()
    };
    assert_refused(&export(&[]), &["not the model", "--any-model"]);
    assert_ok(&export(&["--any-model"]));
    let record = json(&run.join("export/export.json"));
    assert_eq!(record["model_matches_record"], false, "{record}");
    assert_eq!(record["any_model"], true, "{record}");
    use sha2::Digest;
    let swapped = format!("{:x}", sha2::Sha256::digest(std::fs::read(&model).unwrap()));
    assert_eq!(
        record["model_sha256"]["model.safetensors"],
        swapped.as_str()
    );
    let recorded = json(&run.join("manifest.json"))["model_sha256"]["model.safetensors"].clone();
    assert_eq!(
        record["recorded_model_sha256"]["model.safetensors"],
        recorded
    );
    assert_ne!(recorded, swapped.as_str());
    // The run's thresholds were chosen on the other model's scores: not carried.
    assert_eq!(record["thresholds"], serde_json::json!([]), "{record}");
    assert!(
        record["thresholds_note"]
            .as_str()
            .unwrap()
            .contains("not the ones")
    );

    // The run's own model: matches, and its thresholds come along.
    let own = dir.path().join("own");
    let out = adn("export")
        .arg(&s.run)
        .arg("--check")
        .arg(&s.images)
        .arg("--out")
        .arg(&own)
        .output()
        .unwrap();
    assert_ok(&out);
    let record = json(&own.join("export.json"));
    assert_eq!(record["model_matches_record"], true, "{record}");
    assert_eq!(record["any_model"], false, "{record}");
    assert_eq!(record["model_sha256"], record["recorded_model_sha256"]);
    assert_eq!(
        record["thresholds"].as_array().unwrap().len(),
        3,
        "{record}"
    );
}

#[test]
fn numbers_out_of_range_are_refused_before_work_without_a_panic() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    // A batch that no machine holds: refused against memory, naming the option.
    let out = adn("export")
        .arg(&s.run)
        .arg("--check")
        .arg(&s.images)
        .args(["--batch", "100000"])
        .arg("--out")
        .arg(dir.path().join("export"))
        .output()
        .unwrap();
    assert_refused(&out, &["--batch 100000", "memory", "largest batch"]);
    let out = adn("export")
        .arg(&s.run)
        .args(["--check-images", "0"])
        .arg("--out")
        .arg(dir.path().join("export"))
        .output()
        .unwrap();
    assert_refused(&out, &["--check-images"]);
    let out = adn("predict")
        .arg(&s.run)
        .arg(&s.images)
        .args(["--batch", "0"])
        .arg("--out")
        .arg(dir.path().join("predict"))
        .output()
        .unwrap();
    assert_refused(&out, &["--batch"]);
    let out = adn("predict")
        .arg(&s.run)
        .arg(&s.images)
        .args(["--maps", "--batch", "100000000"])
        .arg("--out")
        .arg(dir.path().join("predict"))
        .output()
        .unwrap();
    // Only as many images as the folder holds are ever in one batch: this one fits.
    assert_ok(&out);
    assert!(!dir.path().join("export").exists());
}

#[test]
fn export_errors_say_what_failed() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    // --check given, but it holds no images: said so, not "the run's test images are gone".
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = adn("export")
        .arg(&s.run)
        .arg("--check")
        .arg(&empty)
        .arg("--out")
        .arg(dir.path().join("export"))
        .output()
        .unwrap();
    assert_refused(&out, &["--check", "holds no images"]);
    assert!(!stderr(&out).contains("are gone"), "{}", stderr(&out));
    // Started from another working directory than `adn run` was, with the data root given
    // relative to it: the test images exist, and the error says why they are not found.
    let run = own_run(dir.path());
    let scores = run.join("scores.csv");
    let prefix = format!("{}/", s.root.display());
    let relative = std::fs::read_to_string(&scores)
        .unwrap()
        .replace(&prefix, "");
    assert!(relative.contains("\ndata/shapes/test/"), "{relative}");
    std::fs::write(&scores, relative).unwrap();
    let export_from = |cwd: &Path, out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_adn"))
            .current_dir(cwd)
            .args(["--threads", "1", "export"])
            .arg(&run)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .unwrap()
    };
    assert_refused(
        &export_from(dir.path(), "elsewhere"),
        &["relative to the folder `adn run` was started in", "--check"],
    );
    // From where the run was started they are found.
    assert_ok(&export_from(&s.root, "from-the-run's-folder"));
}

#[test]
fn a_killed_exports_leftover_is_swept_by_the_next_export() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    // What an export killed mid-write (or aborted inside libtorch) leaves beside its folder.
    let leftover = dir.path().join(".export.partial-99999999");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("model.pt"), vec![0u8; 65536]).unwrap();
    let done = adn("export")
        .arg(&s.run)
        .arg("--check")
        .arg(&s.images)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&done);
    assert!(!leftover.exists(), "{}", stderr(&done));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["export"]);
}
