use super::*;

#[test]
fn rotation_sources_gather_what_rotate_nearest_draws() {
    let img = RgbImage::from_fn(13, 13, |x, y| {
        image::Rgb([(x * 19) as u8, (y * 17) as u8, (x * y + 1) as u8])
    });
    for degrees in [0.0, 90.0, 180.0, 270.0, 33.0, -127.5, 45.0] {
        let rotated = rotate_nearest(&img, degrees);
        let sources = rotation_sources(13, 13, degrees).unwrap();
        let src = img.as_raw();
        let gathered: Vec<u8> = sources
            .iter()
            .flat_map(|s| match s {
                Some(i) => src[*i as usize * 3..*i as usize * 3 + 3].to_vec(),
                None => vec![0, 0, 0],
            })
            .collect();
        assert_eq!(gathered, rotated.as_raw().clone(), "{degrees}°");
        let filled = sources.iter().filter(|s| s.is_none()).count();
        assert_eq!(
            filled == 0,
            degrees as i64 % 90 == 0,
            "{degrees}°: {filled}"
        );
    }
    assert!(rotation_sources(4096, 4096, 10.0).is_none());
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, (x + y) as u8]))
}

#[test]
fn full_turns_and_quarter_turns_are_exact() {
    let img = gradient(8, 8);
    assert_eq!(rotate_nearest(&img, 360.0), img);
    let once = rotate_nearest(&img, 90.0);
    let back = rotate_nearest(&rotate_nearest(&rotate_nearest(&once, 90.0), 90.0), 90.0);
    assert_eq!(back, img);
    // A quarter turn of an even-sized image loses no pixel.
    assert!(once.pixels().filter(|p| p.0 == [0, 0, 0]).count() <= 1);
    // Counter-clockwise: the top-right corner moves to the top-left.
    assert_eq!(once.get_pixel(0, 0), img.get_pixel(7, 0));
}

#[test]
fn rotation_fills_corners_with_black() {
    let img = RgbImage::from_pixel(16, 16, image::Rgb([200, 200, 200]));
    let r = rotate_nearest(&img, 45.0);
    assert_eq!(r.get_pixel(0, 0).0, [0, 0, 0]);
    assert_eq!(r.get_pixel(8, 8).0, [200, 200, 200]);
}

#[test]
fn small_rotation_is_counter_clockwise() {
    // A bright dot right of the centre moves up (towards smaller y) for positive angles.
    let mut img = RgbImage::new(41, 41);
    img.put_pixel(35, 20, image::Rgb([255, 255, 255]));
    let r = rotate_nearest(&img, 30.0);
    let (x, y) = r
        .enumerate_pixels()
        .find(|(_, _, p)| p.0[0] == 255)
        .map(|(x, y, _)| (x, y))
        .unwrap();
    assert!(y < 20 && x < 35, "dot at {x},{y}");
}

#[test]
fn resize_keeps_constant_images_constant() {
    let img = RgbImage::from_pixel(37, 23, image::Rgb([10, 128, 250]));
    for (w, h) in [(16, 16), (50, 50), (37, 10), (5, 23)] {
        let r = resize_bilinear(&img, w, h);
        assert_eq!(r.dimensions(), (w, h));
        assert!(r.pixels().all(|p| p.0 == [10, 128, 250]));
    }
}

#[test]
fn normalisation_is_per_channel_chw() {
    let img = RgbImage::from_pixel(2, 1, image::Rgb([255, 0, 128]));
    let v = to_chw(&img, &Normalization::IMAGENET);
    assert_eq!(v.len(), 6);
    assert!((v[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
    assert!((v[2] - (0.0 - 0.456) / 0.224).abs() < 1e-6);
    let e = to_chw(&img, &Normalization::EFFICIENTNET_LITE);
    assert!((e[0] - (255.0 - 127.0) / 128.0).abs() < 1e-6);
    assert!((e[2] - (0.0 - 127.0) / 128.0).abs() < 1e-6);
    assert!((e[4] - (128.0 - 127.0) / 128.0).abs() < 1e-6);
}

#[test]
fn nearest_halving_takes_even_pixels() {
    let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let out = resize_nearest_chw(&src, 1, 4, 4, 2, 2);
    assert_eq!(out, vec![0.0, 2.0, 8.0, 10.0]);
}

#[test]
fn fixed_angles_cover_the_circle() {
    assert_eq!(fixed_angles(4), vec![0.0, 90.0, 180.0, 270.0]);
}

#[test]
fn random_angles_are_seeded_and_in_range() {
    let a = random_angles(3, 50);
    assert_eq!(a, random_angles(3, 50));
    assert_ne!(a, random_angles(4, 50));
    assert!(a.iter().all(|v| (-180.0..180.0).contains(v)));
}

#[test]
fn views_have_the_requested_sizes() {
    let img = gradient(30, 20);
    let v = differnet_views(&img, &[16, 8, 4], 10.0, &Normalization::IMAGENET);
    assert_eq!(
        v.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3 * 256, 3 * 64, 3 * 16]
    );
}
