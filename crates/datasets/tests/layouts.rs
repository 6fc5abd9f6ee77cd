//! Every layout, on fixtures generated in the real folder structures.

mod common;

use std::fs;

use adn_datasets::decode::load_rgb;
use adn_datasets::layout::{Masks, load_category};
use adn_datasets::{DatasetKind, check, load};
use common::*;

#[test]
fn mvtec_category_loads_with_masks_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    mvtec_category(
        dir.path(),
        "bottle",
        4,
        2,
        &[("broken_large", 2), ("contamination", 1)],
        24,
        false,
    );
    let data = load(DatasetKind::Mvtec, dir.path(), "bottle").unwrap();
    assert_eq!(data.train.len(), 4);
    assert_eq!(
        data.test_counts(),
        vec![
            ("broken_large".into(), 2),
            ("contamination".into(), 1),
            ("good".into(), 2)
        ]
    );
    for s in &data.test {
        assert_eq!(s.mask.is_some(), s.is_anomalous(), "{s:?}");
    }
    // The runner's entry point sees the same.
    let listed = load_category(dir.path(), "bottle", Masks::Required).unwrap();
    assert_eq!(listed.test.len(), data.test.len());

    // A known category with other counts than the published ones: a warning, not a failure.
    let report = check(DatasetKind::Mvtec, dir.path()).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("published dataset has 209 / 20 / 63"),
        "{text}"
    );
    assert!(
        text.contains("broken_large") && text.contains("contamination"),
        "{text}"
    );
    assert!(text.contains("train  good"), "{text}");
}

#[test]
fn mvtec_gray_categories_become_three_channels() {
    let dir = tempfile::tempdir().unwrap();
    mvtec_category(dir.path(), "grid", 2, 1, &[("bent", 1)], 16, true);
    let report = check(DatasetKind::Mvtec, dir.path()).unwrap();
    assert_eq!(
        report.categories[0].formats.keys().collect::<Vec<_>>(),
        vec!["gray 8-bit"]
    );
    let data = load(DatasetKind::Mvtec, dir.path(), "grid").unwrap();
    let img = load_rgb(&data.train[0].path).unwrap();
    let p = img.get_pixel(3, 5).0;
    assert_eq!(p[0], p[1]);
    assert_eq!(p[1], p[2]);
}

#[test]
fn mvtec_requires_a_mask_for_every_defect() {
    let dir = tempfile::tempdir().unwrap();
    let cat = mvtec_category(dir.path(), "screw", 2, 1, &[("scratch_head", 2)], 16, true);
    fs::remove_file(cat.join("ground_truth/scratch_head/001_mask.png")).unwrap();
    let err = load(DatasetKind::Mvtec, dir.path(), "screw").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("test/scratch_head/001.png"), "{msg}");
    assert!(msg.contains("001_mask.png"), "{msg}");
    // The generic folder kind accepts the same set without that mask.
    assert!(load(DatasetKind::Folder, dir.path(), "screw").is_ok());
}

#[test]
fn a_defective_image_whose_name_is_not_utf8_finds_its_mask() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let cat = mvtec_category(dir.path(), "screw", 2, 1, &[("scratch_head", 1)], 16, false);
    // Latin-1 "défaut" (0xE9 is not UTF-8 on its own), for the image and its mask.
    let stem = OsStr::from_bytes(b"d\xe9faut");
    let name = |suffix: &str| {
        let mut n = stem.to_os_string();
        n.push(suffix);
        n
    };
    let test = cat.join("test/scratch_head");
    let gt = cat.join("ground_truth/scratch_head");
    fs::rename(test.join("000.png"), test.join(name(".png"))).unwrap();
    fs::rename(gt.join("000_mask.png"), gt.join(name("_mask.png"))).unwrap();
    let data = load(DatasetKind::Mvtec, dir.path(), "screw").unwrap();
    let sample = data
        .test
        .iter()
        .find(|s| s.path.file_stem() == Some(stem))
        .expect("the image is listed");
    assert_eq!(
        sample.mask.as_deref(),
        Some(gt.join(name("_mask.png")).as_path())
    );
}

#[test]
fn insplad_discovers_assets_and_defect_folders_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let asset = dir.path().join("vari-grip");
    for i in 0..3 {
        save(&rgb(40, 25, i), &asset.join(format!("Train/GOOD/{i}.jpg")));
    }
    save(&rgb(37, 52, 9), &asset.join("test/Good/a.JPG"));
    save(&rgb(30, 20, 8), &asset.join("test/Ferrugem/b.jpeg"));
    save(&rgb(33, 21, 7), &asset.join("test/ninho-de-passaro/c.png"));
    let other = dir.path().join("glass-insulator");
    save(&rgb(20, 50, 1), &other.join("train/good/x.jpg"));
    save(&rgb(20, 50, 2), &other.join("test/good/y.jpg"));
    save(&rgb(20, 50, 3), &other.join("test/missing-cap/z.jpg"));

    let report = check(DatasetKind::Insplad, dir.path()).unwrap();
    let names: Vec<&str> = report
        .categories
        .iter()
        .map(|c| c.category.as_str())
        .collect();
    assert_eq!(names, vec!["glass-insulator", "vari-grip"]);
    let vg = &report.categories[1];
    assert_eq!(vg.train_good, 3);
    assert_eq!(
        vg.test,
        vec![
            ("Ferrugem".into(), 1),
            ("good".into(), 1),
            ("ninho-de-passaro".into(), 1)
        ]
    );
    assert_eq!((vg.min_size, vg.max_size), ((30, 20), (40, 52)));
    assert_eq!(vg.masks, 0);
    // Counts of known assets are compared with the published ones.
    assert!(vg.warnings.iter().any(|w| w.contains("477")), "{vg}");

    let data = load(DatasetKind::Insplad, dir.path(), "vari-grip").unwrap();
    let anomalous: Vec<&str> = data
        .test
        .iter()
        .filter(|s| s.is_anomalous())
        .map(|s| s.defect.as_str())
        .collect();
    assert_eq!(anomalous, vec!["Ferrugem", "ninho-de-passaro"]);
}

#[test]
fn folder_kind_takes_any_common_format_and_optional_masks() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("wafer");
    save(&gray(32, 32, 1), &cat.join("train/good/a.bmp"));
    save(&gray(32, 32, 2), &cat.join("train/good/b.tif"));
    save(&gray(32, 32, 3), &cat.join("test/good/c.tiff"));
    save(&gray(32, 32, 4), &cat.join("test/chipping/d.png"));
    save(&mask(32, 32), &cat.join("ground_truth/chipping/d_mask.tif"));
    save(&gray(32, 32, 5), &cat.join("test/particle/e.jpg"));
    let report = check(DatasetKind::Folder, dir.path()).unwrap();
    let c = &report.categories[0];
    assert_eq!(c.train_good, 2);
    assert_eq!(c.masks, 1);
    let data = load(DatasetKind::Folder, dir.path(), "wafer").unwrap();
    let chip = data.test.iter().find(|s| s.defect == "chipping").unwrap();
    assert!(chip.mask.as_ref().unwrap().ends_with("d_mask.tif"));
    assert!(
        data.test
            .iter()
            .find(|s| s.defect == "particle")
            .unwrap()
            .mask
            .is_none()
    );
}

#[test]
fn a_category_folder_can_be_given_as_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let cat = mvtec_category(dir.path(), "elpv-mono", 3, 2, &[("defect", 2)], 12, true);
    fs::write(cat.join("LICENSE.md"), "licence").unwrap();
    fs::write(cat.join("split.json"), "{}").unwrap();
    let report = check(DatasetKind::Folder, &cat).unwrap();
    assert_eq!(report.categories.len(), 1);
    assert_eq!(report.categories[0].category, "elpv-mono");
    let text = report.to_string();
    assert!(
        text.contains("train  good") && text.contains("defect"),
        "{text}"
    );
    // load() accepts the category folder as root too.
    let data = load(DatasetKind::Folder, &cat, "elpv-mono").unwrap();
    assert_eq!(data.train.len(), 3);
}

#[test]
fn stray_files_and_hidden_folders_are_ignored_and_odd_splits_warned() {
    let dir = tempfile::tempdir().unwrap();
    let cat = mvtec_category(dir.path(), "thing", 2, 2, &[], 8, false);
    fs::write(cat.join("train/good/notes.txt"), "x").unwrap();
    fs::write(cat.join("train/good/.DS_Store"), "x").unwrap();
    save(&rgb(8, 8, 1), &cat.join("test/.cache/zzz.png"));
    fs::create_dir_all(dir.path().join(".thing.partial-1/train")).unwrap();
    let report = check(DatasetKind::Folder, dir.path()).unwrap();
    assert_eq!(report.categories.len(), 1);
    let c = &report.categories[0];
    assert_eq!(c.test, vec![("good".into(), 2)]);
    assert!(c.warnings.iter().any(|w| w.contains("no anomalous")), "{c}");
}
