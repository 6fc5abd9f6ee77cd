//! Every bad input of the issue gets an error naming the file or folder and what is wrong
//! (never a panic).

mod common;

use std::fs;
use std::path::Path;

use adn_datasets::decode::{load_dynamic, load_rgb};
use adn_datasets::{DatasetError, DatasetKind, check, load};
use common::*;

/// A valid small MVTec-style dataset `<root>/cat`.
fn valid(root: &Path) -> std::path::PathBuf {
    mvtec_category(root, "cat", 3, 2, &[("dent", 2)], 16, false)
}

fn check_err(root: &Path) -> DatasetError {
    check(DatasetKind::Mvtec, root).expect_err("the dataset should be rejected")
}

#[test]
fn missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nowhere");
    let err = check_err(&root);
    assert!(matches!(err, DatasetError::MissingFolder { ref path } if path == &root));
    assert!(err.to_string().contains("nowhere"));
    let err = load(DatasetKind::Folder, &root, "cat").unwrap_err();
    assert!(err.to_string().contains("nowhere") && err.to_string().contains("does not exist"));
    // A file where a folder should be.
    fs::write(dir.path().join("file"), "x").unwrap();
    let err = check_err(&dir.path().join("file"));
    assert!(err.to_string().contains("is not a folder"), "{err}");
}

#[test]
fn empty_train_good() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    for e in fs::read_dir(cat.join("train/good")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    let err = check_err(dir.path());
    assert!(matches!(err, DatasetError::NoImages { .. }), "{err}");
    assert!(
        err.to_string().contains("train/good holds no images"),
        "{err}"
    );
    // A missing train/good folder names the folder too.
    fs::remove_dir_all(cat.join("train/good")).unwrap();
    let err = check_err(dir.path());
    assert!(
        err.to_string().contains("train/good does not exist"),
        "{err}"
    );
}

#[test]
fn zero_byte_image() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let bad = cat.join("train/good/empty.png");
    fs::write(&bad, b"").unwrap();
    let err = check_err(dir.path());
    let msg = err.to_string();
    assert!(
        msg.contains("empty.png") && msg.contains("0 bytes"),
        "{msg}"
    );
}

#[test]
fn truncated_image() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let good = cat.join("test/good/000.png");
    let bytes = fs::read(&good).unwrap();
    let bad = cat.join("test/good/cut.png");
    fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let err = check_err(dir.path());
    let msg = err.to_string();
    assert!(msg.contains("cut.png"), "{msg}");
    assert!(matches!(err, DatasetError::Decode { .. }), "{err:?}");
    // A truncated JPEG too.
    let jpg = cat.join("test/good/cut.jpg");
    save(&rgb(32, 32, 3), &jpg);
    let bytes = fs::read(&jpg).unwrap();
    fs::write(&jpg, &bytes[..bytes.len() / 3]).unwrap();
    let err = load_rgb(&jpg).unwrap_err();
    assert!(err.to_string().contains("cut.jpg"), "{err}");
}

#[test]
fn non_image_file_with_an_image_extension() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let bad = cat.join("test/dent/notes.png");
    fs::write(&bad, "these are not pixels").unwrap();
    fs::write(
        cat.join("ground_truth/dent/notes_mask.png"),
        "nor are these",
    )
    .unwrap();
    let err = check_err(dir.path());
    let msg = err.to_string();
    assert!(
        msg.contains("notes.png") && msg.contains("not an image"),
        "{msg}"
    );
}

#[test]
fn image_of_zero_width() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let bad = cat.join("train/good/flat.png");
    fs::write(&bad, png_with_size(0, 7)).unwrap();
    let err = check_err(dir.path());
    assert!(
        matches!(&err, DatasetError::EmptyImage { path, width: 0, height: 7 } if path == &bad),
        "{err:?}"
    );
    assert!(err.to_string().contains("0x7"), "{err}");
}

#[test]
fn sixteen_bit_and_rgba_pngs_are_converted_not_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let deep = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(16, 16, |x, _| {
        image::Luma([if x < 8 { 65535 } else { 32896 }])
    });
    let p16 = cat.join("train/good/deep.png");
    image::DynamicImage::ImageLuma16(deep).save(&p16).unwrap();
    let rgba = image::RgbaImage::from_fn(16, 16, |_, _| image::Rgba([10, 20, 30, 0]));
    let pa = cat.join("train/good/alpha.png");
    image::DynamicImage::ImageRgba8(rgba).save(&pa).unwrap();

    let report = check(DatasetKind::Mvtec, dir.path()).unwrap();
    let c = &report.categories[0];
    assert_eq!(c.formats.get("gray 16-bit"), Some(&1), "{c}");
    assert_eq!(c.formats.get("RGBA 8-bit"), Some(&1), "{c}");
    assert!(c.warnings.iter().any(|w| w.contains("converted")), "{c}");
    assert_eq!(c.train_good, 5);
    let deep = load_rgb(&p16).unwrap();
    assert_eq!(deep.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(deep.get_pixel(15, 0).0, [128, 128, 128]);
    // Alpha is dropped, the colour kept (as PIL's convert("RGB")).
    assert_eq!(load_rgb(&pa).unwrap().get_pixel(3, 3).0, [10, 20, 30]);
}

#[test]
fn mask_size_differs_from_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let m = cat.join("ground_truth/dent/001_mask.png");
    save(&mask(15, 16), &m);
    let err = check_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::MaskSize { .. }), "{err:?}");
    assert!(
        msg.contains("001_mask.png") && msg.contains("15x16"),
        "{msg}"
    );
    assert!(
        msg.contains("test/dent/001.png") && msg.contains("16x16"),
        "{msg}"
    );
}

#[test]
fn mask_without_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    save(&mask(16, 16), &cat.join("ground_truth/dent/077_mask.png"));
    save(&mask(16, 16), &cat.join("ground_truth/crack/000_mask.png"));
    let err = check_err(dir.path());
    let msg = err.to_string();
    // Both orphans are reported at once.
    assert_eq!(err.problems().len(), 2, "{msg}");
    assert!(
        msg.contains("077_mask.png") && msg.contains("test/dent/077.png"),
        "{msg}"
    );
    assert!(msg.contains("crack/000_mask.png"), "{msg}");
    assert!(
        err.problems()
            .iter()
            .all(|p| matches!(p, DatasetError::OrphanMask { .. }))
    );
}

#[cfg(unix)]
#[test]
fn symlink_loops() {
    use std::os::unix::fs::symlink;
    // A file link to itself, named like an image.
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let l = cat.join("train/good/loop.png");
    symlink("loop.png", &l).unwrap();
    let err = check_err(dir.path());
    assert!(
        matches!(&err, DatasetError::SymlinkLoop { path } if path == &l),
        "{err:?}"
    );
    assert!(err.to_string().contains("symbolic link loop"), "{err}");

    // A defect folder linking back to the category's test folder.
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let l = cat.join("test/again");
    symlink("..", &l).unwrap();
    let err = check_err(dir.path());
    assert!(
        matches!(&err, DatasetError::SymlinkLoop { path } if path == &l),
        "{err:?}"
    );

    // A category linking to the dataset root.
    let dir = tempfile::tempdir().unwrap();
    valid(dir.path());
    let l = dir.path().join("self");
    symlink(dir.path(), &l).unwrap();
    let err = check_err(dir.path());
    assert!(matches!(err, DatasetError::SymlinkLoop { .. }), "{err:?}");

    // A dangling link is named as such.
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    symlink("gone.png", cat.join("train/good/ghost.png")).unwrap();
    let err = check_err(dir.path());
    assert!(err.to_string().contains("ghost.png"), "{err}");
    assert!(err.to_string().contains("gone.png"), "{err}");
}

#[test]
fn every_problem_is_listed_together() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    fs::write(cat.join("train/good/a.png"), b"").unwrap();
    fs::write(cat.join("train/good/b.png"), b"junk").unwrap();
    fs::write(cat.join("test/good/c.png"), png_with_size(5, 0)).unwrap();
    let err = check_err(dir.path());
    assert_eq!(err.problems().len(), 3, "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("3 problems in dataset"), "{msg}");
    for name in ["a.png", "b.png", "c.png"] {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn decoding_never_panics_on_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.png");
    let mut bytes = png_with_size(4, 4);
    for len in [1, 8, 12, 20, 33, bytes.len()] {
        fs::write(&p, &bytes[..len.min(bytes.len())]).unwrap();
        assert!(load_dynamic(&p).is_err());
    }
    bytes[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    fs::write(&p, &bytes).unwrap();
    assert!(load_dynamic(&p).is_err());
    assert!(load_dynamic(&dir.path().join("missing.png")).is_err());
}

#[test]
fn an_image_too_large_to_decode_says_its_size_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let cat = valid(dir.path());
    let bad = cat.join("train/good/huge.png");
    // A header that promises 40000 × 40000 pixels (1.6 GB as 8-bit gray): the decoder's
    // memory limit refuses it before reading any pixel.
    fs::write(&bad, png_with_pixel_data(40000, 40000)).unwrap();
    let err = load_rgb(&bad).unwrap_err().to_string();
    assert!(err.contains("huge.png"), "{err}");
    assert!(err.contains("40000") && err.contains("resize"), "{err}");
}

/// [`png_with_size`] with an (empty) IDAT chunk before its end, so that a decoder reads the
/// header through and reaches the point where it would allocate the pixels.
fn png_with_pixel_data(w: u32, h: u32) -> Vec<u8> {
    let mut png = png_with_size(w, h);
    let end = png.len() - 12; // the IEND chunk: length, type, CRC
    let data = [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]; // an empty zlib stream
    let mut chunk = b"IDAT".to_vec();
    chunk.extend(data);
    let mut idat = (data.len() as u32).to_be_bytes().to_vec();
    idat.extend(&chunk);
    idat.extend(common::crc32(&chunk).to_be_bytes());
    png.splice(end..end, idat);
    png
}
