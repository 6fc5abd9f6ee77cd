//! The prefetching loader gives what the transforms give, in order, and stops at errors.

mod common;

use adn_datasets::decode::load_rgb;
use adn_datasets::loader::batches;
use adn_datasets::transforms::{Normalization, resize_square, rotate_nearest, to_chw};
use common::{rgb, save};

#[test]
fn batches_match_the_transforms_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = (0..5)
        .map(|i| {
            let p = dir.path().join(format!("{i}.png"));
            save(&rgb(20 + i, 17, i as u8 * 30), &p);
            p
        })
        .collect();
    let angles: Vec<Vec<f64>> = (0..5).map(|i| vec![0.0, 30.0 * i as f64]).collect();
    let norm = Normalization::IMAGENET;
    let got: Vec<_> = batches(paths.clone(), angles.clone(), 12, norm, 2, 2)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        got.iter().map(|b| b.images).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert_eq!(
        got.iter().map(|b| b.first).collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
    let flat: Vec<f32> = got.iter().flat_map(|b| b.data.iter().copied()).collect();
    let mut want = Vec::new();
    for (p, a) in paths.iter().zip(&angles) {
        let img = resize_square(&load_rgb(p).unwrap(), 12);
        for &deg in a {
            want.extend(to_chw(&rotate_nearest(&img, deg), &norm));
        }
    }
    assert_eq!(flat, want);
    assert_eq!(got[0].views, 2);
}

#[test]
fn loader_stops_at_the_first_bad_image_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a.png");
    save(&rgb(8, 8, 1), &good);
    let bad = dir.path().join("b.png");
    std::fs::write(&bad, b"").unwrap();
    let mut it = batches(
        vec![good.clone(), good.clone(), bad, good],
        vec![vec![0.0]; 4],
        8,
        Normalization::IMAGENET,
        2,
        1,
    );
    assert!(it.next().unwrap().is_ok());
    let err = it.next().unwrap().unwrap_err();
    assert!(err.to_string().contains("b.png"), "{err}");
    assert!(it.next().is_none());
}

#[test]
fn dropping_the_loader_early_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.png");
    save(&rgb(8, 8, 1), &p);
    let mut it = batches(
        vec![p; 50],
        vec![vec![0.0]; 50],
        8,
        Normalization::IMAGENET,
        1,
        1,
    );
    assert!(it.next().unwrap().is_ok());
    drop(it);
}
