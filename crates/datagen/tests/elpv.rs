//! ELPV: the split written from a wheel, reproducibly and atomically, with licence and
//! citation beside the data. Uses a small fake wheel in the real package's structure (no
//! network); `real_wheel_gives_the_published_split` uses the real cached wheel when present.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use adn_datagen::elpv::{self, ElpvOptions};
use adn_datagen::staging::Outcome;
use adn_datasets::{DatasetError, DatasetKind, check};
use adn_util::wheel::WheelError;

/// A wheel with `labels.csv`, one 24×24 PNG per row and the licence file.
fn fake_wheel(dir: &Path, rows: &[(&str, f64, &str)]) -> PathBuf {
    let path = dir.join("elpv_dataset-1.0.0.post1-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut labels = String::new();
    for (i, (name, p, t)) in rows.iter().enumerate() {
        labels.push_str(&format!("images/{name}  {p}  {t}\n"));
        let mut png = std::io::Cursor::new(Vec::new());
        gray(24, 24, i as u8)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        zip.start_file(format!("elpv_dataset/data/images/{name}"), opts)
            .unwrap();
        zip.write_all(png.get_ref()).unwrap();
    }
    zip.start_file("elpv_dataset/data/labels.csv", opts)
        .unwrap();
    zip.write_all(labels.as_bytes()).unwrap();
    zip.start_file(
        "elpv_dataset-1.0.0.post1.dist-info/licenses/LICENSE.md",
        opts,
    )
    .unwrap();
    zip.write_all(b"Attribution-NonCommercial-ShareAlike 4.0 International\n")
        .unwrap();
    zip.finish().unwrap();
    path
}

fn rows() -> Vec<(String, f64, &'static str)> {
    let mut v = Vec::new();
    for i in 0..20 {
        let t = if i % 2 == 0 { "mono" } else { "poly" };
        let p = match i % 10 {
            0..=5 => 0.0,
            6 | 7 => 1.0,
            8 => 1.0 / 3.0,
            _ => 2.0 / 3.0,
        };
        v.push((format!("cell{:04}.png", i + 1), p, t));
    }
    v
}

fn wheel_in(dir: &Path) -> PathBuf {
    let r = rows();
    let refs: Vec<(&str, f64, &str)> = r.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    fake_wheel(dir, &refs)
}

#[test]
fn split_is_written_per_cell_type_with_licence_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = wheel_in(dir.path());
    let out = dir.path().join("out");
    let made = elpv::write_from_wheel(&wheel, &out, 0, 0.7, None).unwrap();
    assert_eq!(
        made.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        vec!["elpv-mono", "elpv-poly"]
    );
    for m in &made {
        // 6 cells at p = 0 (4 train, 2 test), 2 at p = 1, 2 uncertain left out.
        assert_eq!(
            m.counts,
            vec![
                ("train/good".to_string(), 4),
                ("test/good".to_string(), 2),
                ("test/defect".to_string(), 2)
            ]
        );
        assert_eq!(m.excluded_uncertain, 2);
        for f in ["LICENSE.md", "CITATION.md", "split.json"] {
            assert!(m.path.join(f).is_file(), "{f} beside the data");
        }
        let citation = fs::read_to_string(m.path.join("CITATION.md")).unwrap();
        assert!(citation.contains("Buerhop-Lutz") && citation.contains("Deitsch"));
        assert!(citation.contains("CC BY-NC-SA 4.0"));
        let report = check(DatasetKind::Folder, &m.path).unwrap();
        assert_eq!(report.categories[0].train_good, 4);
        let text = report.to_string();
        assert!(
            text.contains("defect") && text.contains("train  good"),
            "{text}"
        );
    }
    // Images are copied byte for byte.
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("elpv-mono/split.json")).unwrap())
            .unwrap();
    let first = &manifest["files"][0];
    let written = fs::read(out.join("elpv-mono").join(first["dest"].as_str().unwrap())).unwrap();
    let mut zip = zip::ZipArchive::new(fs::File::open(&wheel).unwrap()).unwrap();
    let mut original = Vec::new();
    std::io::Read::read_to_end(
        &mut zip
            .by_name(&format!(
                "elpv_dataset/data/{}",
                first["source"].as_str().unwrap()
            ))
            .unwrap(),
        &mut original,
    )
    .unwrap();
    assert_eq!(written, original);
    assert!(out.join("LICENSE-ELPV.md").is_file() && out.join("CITATION-ELPV.md").is_file());
}

#[test]
fn split_is_reproducible_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = wheel_in(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    elpv::write_from_wheel(&wheel, &a, 5, 0.7, None).unwrap();
    elpv::write_from_wheel(&wheel, &b, 5, 0.7, None).unwrap();
    let read = |d: &Path| fs::read_to_string(d.join("elpv-poly/split.json")).unwrap();
    assert_eq!(read(&a), read(&b));
    let again = elpv::write_from_wheel(&wheel, &a, 5, 0.7, None).unwrap();
    assert!(again.iter().all(|m| m.outcome == Outcome::Unchanged));
    // Another seed into the same place is refused; the existing split stays.
    let before = read(&a);
    let err = elpv::write_from_wheel(&wheel, &a, 6, 0.7, None).unwrap_err();
    assert!(matches!(err, DatasetError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(read(&a), before);
    let c = dir.path().join("c");
    elpv::write_from_wheel(&wheel, &c, 6, 0.7, None).unwrap();
    assert_ne!(read(&c), before);
}

#[test]
fn a_wheel_with_the_wrong_checksum_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = wheel_in(dir.path());
    let out = dir.path().join("out");
    let err = elpv::write_from_wheel(&wheel, &out, 0, 0.7, Some(elpv::WHEEL_SHA256)).unwrap_err();
    assert!(
        matches!(err, DatasetError::Wheel(WheelError::Checksum { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains(elpv::WHEEL_SHA256));
    assert!(!out.exists());

    // A corrupt file in the cache is reported, not replaced or deleted.
    let cache = dir.path().join("cache");
    fs::create_dir_all(&cache).unwrap();
    fs::write(cache.join(elpv::WHEEL), b"half a download").unwrap();
    let opts = ElpvOptions {
        cache_dir: Some(cache.clone()),
        python: Some("/nonexistent/python".into()),
        ..ElpvOptions::default()
    };
    let err = elpv::obtain_wheel(&opts).unwrap_err();
    assert!(
        matches!(err, DatasetError::Wheel(WheelError::Checksum { .. })),
        "{err:?}"
    );
    assert_eq!(
        fs::read(cache.join(elpv::WHEEL)).unwrap(),
        b"half a download"
    );
}

#[test]
fn a_missing_python_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ElpvOptions {
        cache_dir: Some(dir.path().join("cache")),
        python: Some("/nonexistent/python".into()),
        ..ElpvOptions::default()
    };
    let err = elpv::obtain_wheel(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/python") && msg.contains("pip download"),
        "{msg}"
    );
    assert!(msg.contains("elpv-dataset==1.0.0.post1"), "{msg}");
}

#[test]
fn broken_wheels_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("x.whl");
    fs::write(&not_zip, "not a zip").unwrap();
    let err = elpv::write_from_wheel(&not_zip, &dir.path().join("o"), 0, 0.7, None).unwrap_err();
    assert!(err.to_string().contains("x.whl"), "{err}");
    // Labels that point at an image the wheel does not have: nothing is left behind.
    let sub = dir.path().join("w");
    fs::create_dir_all(&sub).unwrap();
    let wheel = fake_wheel(&sub, &[("a.png", 0.0, "mono"), ("b.png", 1.0, "mono")]);
    let mut zip_in = zip::ZipArchive::new(fs::File::open(&wheel).unwrap()).unwrap();
    let broken = dir.path().join("broken.whl");
    let mut zip_out = zip::ZipWriter::new(fs::File::create(&broken).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zip_in.len() {
        let mut f = zip_in.by_index(i).unwrap();
        if f.name().ends_with("b.png") {
            continue;
        }
        let name = f.name().to_string();
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut buf).unwrap();
        zip_out.start_file(name, opts).unwrap();
        zip_out.write_all(&buf).unwrap();
    }
    zip_out.finish().unwrap();
    let out = dir.path().join("o2");
    let err = elpv::write_from_wheel(&broken, &out, 0, 0.7, None).unwrap_err();
    assert!(err.to_string().contains("b.png"), "{err}");
    let leftovers: Vec<_> = fs::read_dir(&out)
        .map(|r| r.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// With the real wheel in the workspace cache (no download here): the published split.
#[test]
#[ignore]
fn real_wheel_gives_the_published_split() {
    let wheel = elpv::default_cache_dir().join(elpv::WHEEL);
    if !wheel.is_file() {
        eprintln!("{} not cached; skipped", wheel.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let made = elpv::write_from_wheel(
        &wheel,
        dir.path(),
        0,
        elpv::TRAIN_FRACTION,
        Some(elpv::WHEEL_SHA256),
    )
    .unwrap();
    let counts: Vec<Vec<usize>> = made
        .iter()
        .map(|m| m.counts.iter().map(|c| c.1).collect())
        .collect();
    assert_eq!(counts, vec![vec![412, 176, 313], vec![644, 276, 402]]);
    let report = check(DatasetKind::Folder, &dir.path().join("elpv-mono")).unwrap();
    println!("{report}");
    assert_eq!(report.categories[0].min_size, (300, 300));
}

/// A small grey test image.
fn gray(w: u32, h: u32, seed: u8) -> image::DynamicImage {
    image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([(x as u8 ^ y as u8).wrapping_add(seed)])
    }))
}
