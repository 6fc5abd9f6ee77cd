//! Per-image input pipeline: PNG decode, Pillow-exact bilinear resize, nearest rotation and
//! normalisation to CHW floats, at DifferNet's sizes.
//!
//! `cargo bench -p adn-datasets --bench transforms`

use std::hint::black_box;

use adn_datasets::decode::load_rgb;
use adn_datasets::transforms::{Normalization, resize_square, rotate_nearest, to_chw};
use criterion::{Criterion, criterion_group, criterion_main};
use image::{Rgb, RgbImage};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.png");
    // A 700×700 textured image: MVTec AD's smallest side.
    let img = RgbImage::from_fn(700, 700, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    img.save(&path).unwrap();
    let norm = Normalization::IMAGENET;
    let mut group = c.benchmark_group("input_pipeline");
    group.sample_size(20);
    group.bench_function("decode_png_700", |b| {
        b.iter(|| load_rgb(black_box(&path)).unwrap())
    });
    for size in [224u32, 448] {
        group.bench_function(format!("resize_700_to_{size}"), |b| {
            b.iter(|| resize_square(black_box(&img), size))
        });
        let small = resize_square(&img, size);
        group.bench_function(format!("rotate_{size}"), |b| {
            b.iter(|| rotate_nearest(black_box(&small), 37.0))
        });
        group.bench_function(format!("to_chw_{size}"), |b| {
            b.iter(|| to_chw(black_box(&small), &norm))
        });
        group.bench_function(format!("whole_{size}"), |b| {
            b.iter(|| {
                let img = load_rgb(&path).unwrap();
                to_chw(&rotate_nearest(&resize_square(&img, size), 37.0), &norm)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
