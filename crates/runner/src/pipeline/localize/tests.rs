use super::*;

#[test]
fn blur_matches_a_direct_mirrored_convolution() {
    let (h, w) = (7usize, 9usize);
    let values: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32).collect();
    let sigma = 0.9;
    let got = Vec::<f32>::try_from(
        gaussian_blur(
            &Tensor::from_slice(&values).reshape([1, h as i64, w as i64]),
            sigma,
        )
        .reshape([-1]),
    )
    .unwrap();
    let r = (4.0 * sigma + 0.5) as i64;
    let weight = |d: i64| (-0.5 * (d as f64 / sigma).powi(2)).exp();
    let norm: f64 = (-r..=r).map(weight).sum();
    let mirror = |i: i64, n: i64| {
        let i = if i < 0 { -i } else { i };
        if i >= n { 2 * (n - 1) - i } else { i }
    };
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let mut v = 0.0;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (yy, xx) = (mirror(y + dy, h as i64), mirror(x + dx, w as i64));
                    v += weight(dy) * weight(dx) / (norm * norm)
                        * values[(yy * w as i64 + xx) as usize] as f64;
                }
            }
            let g = got[(y * w as i64 + x) as usize] as f64;
            assert!((g - v).abs() < 1e-4, "({y}, {x}): {g} vs {v}");
        }
    }
    // σ = 0: unchanged.
    let same = gaussian_blur(&Tensor::from_slice(&values).reshape([1, 7, 9]), 0.0);
    assert_eq!(Vec::<f32>::try_from(same.reshape([-1])).unwrap(), values);
}

fn tiny_model(size: i64) -> (FeatureExtractor, tch::nn::VarStore, DifferNetFlow) {
    use adn_backbones::{AttentionKind, AttentionTraining, BackboneConfig, BackboneKind};
    let kind = BackboneKind::EfficientnetLite0;
    let c = BackboneConfig {
        kind,
        attention: AttentionKind::None,
        positions: Vec::new(),
        se_reduction: 2,
        attention_init: Default::default(),
        feature_layers: vec!["stage2".into(), "stage3".into()],
        image_size: size,
        scales: 1,
    };
    let fx =
        FeatureExtractor::new(&c, None, AttentionTraining::FrozenAtInit, 1, Device::Cpu).unwrap();
    tch::manual_seed(2);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let flow_cfg = adn_flows::FlowConfig {
        coupling_blocks: 2,
        hidden: 8,
        clamp: 3.0,
        standardize: false,
        ..adn_flows::FlowConfig::default()
    };
    let flow = DifferNetFlow::new(&vs.root(), fx.feature_dim(), &flow_cfg);
    (fx, vs, flow)
}

/// `map[p]` gathered through `rotate_nearest`'s mapping of `degrees`.
fn rotated(map: &[f32], side: u32, degrees: f64) -> Vec<f32> {
    adn_datasets::transforms::rotation_sources(side, side, degrees)
        .unwrap()
        .iter()
        .map(|s| s.map_or(0.0, |i| map[i as usize]))
        .collect()
}

#[test]
fn each_view_s_gradient_lands_on_the_pixel_it_came_from() {
    let side = 32i64;
    let (fx, _vs, flow) = tiny_model(side);
    tch::manual_seed(5);
    let xs = Tensor::randn([1, 3, side, side], (Kind::Float, Device::Cpu));
    let map = |x: &Tensor, angles: &[f64]| {
        let m = differnet_maps(&fx, &flow, x, &[angles.to_vec()], 0.0).unwrap();
        Vec::<f32>::try_from(m.reshape([-1])).unwrap()
    };
    let close = |a: &[f32], b: &[f32]| {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * scale, "pixel {i}: {x} vs {y}");
        }
    };
    // A view turned 90° is the unturned view of the turned image: its map is that map
    // turned back.
    let turned = xs.rot90(1, [2, 3]);
    let direct = map(&xs, &[90.0]);
    let of_turned = map(&turned, &[0.0]);
    assert_ne!(direct, map(&xs, &[0.0]));
    let (a, b) = (
        rotated(&of_turned, side as u32, -90.0),
        rotated(&of_turned, side as u32, 90.0),
    );
    let back = if a
        .iter()
        .zip(&direct)
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        < b.iter()
            .zip(&direct)
            .map(|(x, y)| (x - y).abs())
            .sum::<f32>()
    {
        a
    } else {
        b
    };
    close(&direct, &back);
    // Views average.
    let both = map(&xs, &[0.0, 90.0]);
    let mean: Vec<f32> = map(&xs, &[0.0])
        .iter()
        .zip(&direct)
        .map(|(x, y)| (x + y) / 2.0)
        .collect();
    close(&both, &mean);
    // A pixel no output of a 45° view samples gets no gradient.
    let at45 = map(&xs, &[45.0]);
    let sources =
        adn_datasets::transforms::rotation_sources(side as u32, side as u32, 45.0).unwrap();
    let mut used = vec![false; (side * side) as usize];
    for s in sources.into_iter().flatten() {
        used[s as usize] = true;
    }
    assert!(used.iter().any(|u| !u));
    for (p, u) in used.iter().enumerate() {
        assert_eq!(at45[p] > 0.0, *u, "pixel {p}");
    }
}

#[test]
fn localize_on_needs_a_mask_for_every_defect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "experiment = \"t\"\n[data]\nkind = \"folder\"\nroot = \"d\"\ncategory = \"c\"\n",
    )
    .unwrap();
    let cfg = |v: &str| Config::load(&path, &[format!("test.localize=\"{v}\"")]).unwrap();
    let sample = |defect: &str, mask: bool| Sample {
        path: format!("{defect}.png").into(),
        defect: defect.into(),
        mask: mask.then(|| format!("{defect}_mask.png").into()),
    };
    let data = |masked: bool| CategoryData {
        root: "d".into(),
        category: "c".into(),
        train: Vec::new(),
        test: vec![sample("good", false), sample("crack", masked)],
    };
    assert!(wanted(&cfg("auto"), &data(true)).unwrap());
    assert!(!wanted(&cfg("auto"), &data(false)).unwrap());
    assert!(!wanted(&cfg("off"), &data(true)).unwrap());
    assert!(wanted(&cfg("on"), &data(true)).unwrap());
    let e = wanted(&cfg("on"), &data(false)).unwrap_err().to_string();
    assert!(
        e.contains("1 of them") && e.contains("test.localize"),
        "{e}"
    );
}

#[test]
fn the_peak_is_the_first_maximum() {
    let mask = [false, true, false, true];
    assert!(peak_in_mask(&[0.1, 0.9, 0.2, 0.9], &mask));
    assert!(!peak_in_mask(&[0.9, 0.1, 0.2, 0.9], &mask));
}
