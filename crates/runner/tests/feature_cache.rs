//! The feature cache never changes a result: not when its entries are damaged, not when it
//! cannot be written, and not when other experiments filled it first.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{assert_ok, json, run_smoke_with};

/// SE attention (linear layers, whose kernels round differently on very small batches), one
/// test view per image, 8 training rotations per image, one short meta-epoch.
const CONFIG: [&str; 10] = [
    "--set",
    "train.rotation_pool=8",
    "--set",
    "model.attention=\"se\"",
    "--set",
    "test.test_transforms=1",
    "--set",
    "train.meta_epochs=1",
    "--set",
    "train.sub_epochs=2",
];

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![cache.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "f32") {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn cache_stats(run: &Path) -> serde_json::Value {
    json(&run.join("manifest.json"))["feature_cache"].clone()
}

fn scores(run: &Path) -> String {
    fs::read_to_string(run.join("scores.csv")).unwrap()
}

#[test]
fn damaged_unwritable_or_warmed_caches_give_the_same_scores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    let cold = d.join("cold");
    let run = |data: &Path, cache: &Path, out: &str| {
        let o = run_smoke_with(data, cache, &d.join(out), &CONFIG);
        assert_ok(&o);
        o
    };
    run(&data, &cold, "a");
    let reference = scores(&d.join("a"));

    // Another experiment on the same images filled the cache first: the same data without
    // two of its good test images. Those two are then computed on their own, which without
    // fixed-size extraction batches changed their last bits and so the scores.
    let subset = d.join("subset");
    copy_tree(&data, &subset);
    let good = subset.join("shapes/test/good");
    let mut goods: Vec<_> = fs::read_dir(&good)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    goods.sort();
    for p in &goods[..2] {
        fs::remove_file(p).unwrap();
    }
    let warm = d.join("warm");
    run(&subset, &warm, "other-experiment");
    run(&data, &warm, "b");
    assert_eq!(cache_stats(&d.join("b"))["misses"], 2);
    assert_eq!(
        scores(&d.join("b")),
        reference,
        "a warmed cache changed the scores"
    );

    // Damage entries in every way the issue found: other finite floats, shuffled, zeroed,
    // random bytes (NaN inside), truncated, another entry's bytes.
    let files = entries(&cold);
    let damaged = 6;
    for (k, path) in files.iter().take(damaged).enumerate() {
        let mut bytes = fs::read(path).unwrap();
        let payload = 44..bytes.len() - 32;
        match k {
            0 => {
                for c in bytes[payload].chunks_exact_mut(4) {
                    c.copy_from_slice(&0.625f32.to_le_bytes());
                }
            }
            1 => bytes[payload].reverse(),
            2 => bytes[payload].fill(0),
            3 => bytes[payload].fill(0xff),
            4 => bytes.truncate(bytes.len() / 2),
            _ => bytes = fs::read(&files[files.len() - 1]).unwrap(),
        }
        fs::write(path, bytes).unwrap();
    }
    let out = run(&data, &cold, "c");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not be used"), "{stderr}");
    let stats = cache_stats(&d.join("c"));
    assert_eq!(stats["rejected"], damaged, "{stats}");
    assert_eq!(scores(&d.join("c")), reference, "damaged entries were used");
    // ... and were rewritten: the next run finds every entry whole.
    run(&data, &cold, "d");
    let stats = cache_stats(&d.join("d"));
    assert_eq!(
        (&stats["rejected"], &stats["misses"]),
        (&0.into(), &0.into())
    );

    // A cache that cannot be written costs recomputation, never the run.
    let not_a_folder = d.join("cache-file");
    fs::write(&not_a_folder, "in the way").unwrap();
    let out = run(&data, &not_a_folder, "e");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("going on without storing"), "{stderr}");
    assert!(cache_stats(&d.join("e"))["unstored"].as_u64().unwrap() > 0);
    assert_eq!(scores(&d.join("e")), reference);
}
