//! Parity with PyTorch: goldens written by goldens/make_goldens.py from independent PyTorch
//! modules. Random-init modules use formula weights that both sides compute; Lite0 uses the
//! real ImageNet weights.

use std::path::{Path, PathBuf};

use adn_backbones::Backbone;
use adn_backbones::alexnet::AlexNetFeatures;
use adn_backbones::attention::AttentionBlock;
use adn_backbones::efficientnet::EfficientNetLite;
use adn_backbones::{
    AttentionKind, AttentionTraining, BackboneConfig, BackboneKind, FeatureExtractor, weights,
};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn golden(name: &str) -> Tensor {
    let all = Tensor::read_safetensors(fixtures().join("backbones.safetensors")).unwrap();
    all.into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no golden {name}"))
        .1
}

/// 0.2·sin(0.37·k + 1.3·j) over the flat index k: the script's `formula`.
fn formula(shape: &[i64], j: usize) -> Tensor {
    let n: i64 = shape.iter().product();
    ((Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.37 + 1.3 * j as f64).sin() * 0.2)
        .to_kind(Kind::Float)
        .reshape(shape)
}

fn formula_input(shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    ((Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.11).sin() * 1.5)
        .to_kind(Kind::Float)
        .reshape(shape)
}

/// Formula weights for every variable, numbered in sorted-name order, as the script does.
fn set_formula(vs: &nn::VarStore) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for (j, name) in names.into_iter().enumerate() {
        let mut var = vars[name].shallow_clone();
        let mut w = formula(&var.size(), j);
        if name.ends_with("running_var") {
            w = w.abs() + 1.0;
        }
        tch::no_grad(|| var.copy_(&w));
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn formula_inputs_match_the_script() {
    let err = max_abs_diff(&formula_input(&[2, 32, 12, 12]), &golden("attention.input"));
    assert!(err < 1e-6, "{err}");
}

#[test]
fn alexnet_features_match_pytorch() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = AlexNetFeatures::new(&vs.root());
    set_formula(&vs);
    let out = net.forward_with(&formula_input(&[2, 3, 128, 128]), None, &mut |_, x| x);
    let expected = golden("alexnet.features");
    let err = max_abs_diff(&out, &expected);
    // float32 with ~10^4-term sums; outputs are of order 10-100.
    let scale = expected.abs().max().double_value(&[]);
    assert!(
        err <= 1e-4 * scale.max(1.0),
        "max abs error {err} (output scale {scale})"
    );
}

#[test]
fn attention_modules_match_pytorch() {
    let x = formula_input(&[2, 32, 12, 12]);
    for (kind, name) in [
        (AttentionKind::Se, "se"),
        (AttentionKind::Cbam, "cbam"),
        (AttentionKind::CbamOfficial, "cbam_official"),
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let block = AttentionBlock::new(&vs.root(), kind, 32, 2, Default::default()).unwrap();
        set_formula(&vs);
        let out = block.forward_t(&x, false);
        let err = max_abs_diff(&out, &golden(&format!("{name}.output")));
        assert!(err <= 1e-5, "{name}: max abs error {err}");
    }
}

fn lite0_weights() -> PathBuf {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights/efficientnet-lite0.safetensors");
    assert!(
        path.is_file(),
        "{} is missing: `cargo xtask test` fetches it, or run `cargo run -p adn-runner -- weights fetch`",
        path.display()
    );
    path
}

/// The two natural images, normalised as the Lite weights expect: (x·255 − 127) / 128.
fn natural_batch() -> Tensor {
    let imgs: Vec<Tensor> = ["chelsea_224.png", "coffee_224.png"]
        .iter()
        .map(|f| {
            tch::vision::image::load(fixtures().join(f))
                .unwrap()
                .to_kind(Kind::Float)
        })
        .collect();
    (Tensor::stack(&imgs, 0) - 127.0) / 128.0
}

#[test]
fn efficientnet_lite0_is_imagenet_and_matches_pytorch() {
    let path = lite0_weights();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = EfficientNetLite::lite0(&vs.root());
    let report = weights::load_strict(&mut vs, &path, BackboneKind::EfficientnetLite0).unwrap();
    assert_eq!(report.used, 247, "every model tensor loads");
    assert_eq!(report.skipped, 49, "only BatchNorm counters are skipped");

    let logits = tch::no_grad(|| net.logits(&natural_batch()));
    let err = max_abs_diff(&logits, &golden("lite0.logits"));
    assert!(err <= 1e-3, "logits: max abs error {err}");
    // ImageNet classes: 281-285 are domestic cats, 967 is espresso.
    let top = logits.argmax(1, false);
    let chelsea = top.int64_value(&[0]);
    assert!(
        (281..=285).contains(&chelsea),
        "chelsea (a tabby cat) classified as {chelsea}"
    );
    assert_eq!(
        top.int64_value(&[1]),
        967,
        "coffee classified as {}",
        top.int64_value(&[1])
    );

    let config = BackboneConfig {
        kind: BackboneKind::EfficientnetLite0,
        attention: AttentionKind::None,
        positions: vec![],
        se_reduction: 2,
        attention_init: Default::default(),
        feature_layers: vec!["stage5".into(), "stage6".into(), "stage7".into()],
        image_size: 224,
        scales: 1,
    };
    let fx = FeatureExtractor::new(
        &config,
        Some(&path),
        AttentionTraining::FrozenAtInit,
        0,
        Device::Cpu,
    )
    .unwrap();
    let feats = tch::no_grad(|| fx.pooled_features(&natural_batch(), false));
    let expected = Tensor::cat(
        &[
            golden("lite0.stage5_pooled"),
            golden("lite0.stage6_pooled"),
            golden("lite0.stage7_pooled"),
        ],
        1,
    );
    let err = max_abs_diff(&feats, &expected);
    assert!(err <= 1e-4, "pooled features: max abs error {err}");
}

#[test]
fn weights_with_missing_or_foreign_tensors_are_refused() {
    let dir = std::env::temp_dir().join(format!("adn-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("partial.safetensors");
    let t = Tensor::zeros([64, 3, 11, 11], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("features.0.weight", &t)], &path).unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = AlexNetFeatures::new(&vs.root());
    let err = weights::load_strict(&mut vs, &path, BackboneKind::Alexnet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing") && err.contains("features.3.weight"),
        "{err}"
    );

    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = EfficientNetLite::lite0(&vs.root());
    let err = weights::load_strict(&mut vs, &path, BackboneKind::EfficientnetLite0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grad_cam_matches_pytorch() {
    let config = BackboneConfig {
        kind: BackboneKind::Alexnet,
        attention: AttentionKind::None,
        positions: vec![],
        se_reduction: 2,
        attention_init: Default::default(),
        feature_layers: vec!["pool5".into()],
        image_size: 128,
        scales: 2,
    };
    let mut fx = FeatureExtractor::new(
        &config,
        None,
        AttentionTraining::FrozenAtInit,
        0,
        Device::Cpu,
    )
    .unwrap();
    // In float64, as the golden: a float32 Grad-CAM is only good to about 1e-3.
    fx.backbone_vs.double();
    set_formula(&fx.backbone_vs);
    let x = formula_input(&[1, 3, 128, 128]).to_kind(Kind::Double);
    let cam = fx
        .grad_cam(&x, "relu2", &|f| {
            f.pow_tensor_scalar(2)
                .sum_dim_intlist(1, false, Kind::Double)
        })
        .unwrap();
    let expected = golden("gradcam.relu2");
    assert_eq!(cam.size(), vec![1, 128, 128]);
    let err = max_abs_diff(&cam, &expected);
    // Measured 1.6e-6; the float32 map differs from the float64 one by 7e-4.
    assert!(
        err <= 1e-5,
        "Grad-CAM max abs error {err} (maps are in [0, 1])"
    );
    assert!(
        fx.grad_cam(&x, "conv9", &|f| f.sum_dim_intlist(1, false, Kind::Float))
            .is_err()
    );
}
