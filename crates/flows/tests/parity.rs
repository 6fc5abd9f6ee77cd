//! Parity with NumPy and PyTorch on goldens written by goldens/make_goldens.py.

use std::path::{Path, PathBuf};

use adn_flows::numpy_rng::seeded_permutation;
use adn_flows::{DifferNetFlow, FlowConfig, nll_loss};
use tch::nn;
use tch::{Device, Kind, Tensor};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn permutations_equal_numpys() {
    let text = std::fs::read_to_string(fixtures().join("permutations.json")).unwrap();
    let golden: std::collections::BTreeMap<String, Vec<usize>> =
        serde_json::from_str(&text).unwrap();
    assert_eq!(golden.len(), 24);
    for (key, expected) in golden {
        let (seed, dim) = key.split_once('/').unwrap();
        let got = seeded_permutation(seed.parse().unwrap(), dim.parse().unwrap());
        assert_eq!(
            got, expected,
            "numpy.random.seed({seed}); permutation({dim})"
        );
    }
}

fn golden(all: &[(String, Tensor)], name: &str) -> Tensor {
    all.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no golden {name}"))
        .1
        .shallow_clone()
}

/// 0.2·sin(0.37·k + 1.3·j) over the flat index k of the j-th tensor in name order.
fn set_formula(vs: &nn::VarStore) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for (j, name) in names.into_iter().enumerate() {
        let mut var = vars[name].shallow_clone();
        let n = var.numel() as i64;
        let w = ((Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.37 + 1.3 * j as f64).sin()
            * 0.2)
            .to_kind(Kind::Float)
            .reshape(var.size());
        tch::no_grad(|| var.copy_(&w));
    }
}

#[test]
fn forward_loss_and_one_adam_step_match_pytorch() {
    let all = Tensor::read_safetensors(fixtures().join("flow.safetensors")).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let config = FlowConfig {
        coupling_blocks: 3,
        hidden: 16,
        clamp: 3.0,
        standardize: false,
        ..FlowConfig::default()
    };
    let flow = DifferNetFlow::new(&vs.root(), 12, &config);
    set_formula(&vs);
    let x = ((Tensor::arange(60, (Kind::Double, Device::Cpu)) * 0.11).sin() * 1.5)
        .to_kind(Kind::Float)
        .reshape([5, 12]);
    let (z, log_det) = flow.forward(&x);
    let err = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
    assert!(
        err(&z, &golden(&all, "z")) < 1e-5,
        "z differs by {}",
        err(&z, &golden(&all, "z"))
    );
    assert!(err(&log_det, &golden(&all, "log_det")) < 1e-5);
    let loss = nll_loss(&z, &log_det);
    assert!(err(&loss.reshape([1]), &golden(&all, "loss")) < 1e-6);

    // The project's one-pass Adam against `torch.optim.Adam`'s step.
    let mut opt = adn_flows::Adam::new(
        flow.params(),
        adn_flows::AdamConfig {
            lr: 1e-2,
            beta1: 0.8,
            beta2: 0.8,
            eps: 1e-4,
            weight_decay: 1e-5,
        },
    );
    opt.backward_step(&loss).unwrap();
    let vars = vs.variables();
    assert_eq!(vars.len(), 3 * 2 * 4 * 2);
    for (name, var) in vars {
        let expected = golden(&all, &format!("after_adam.{name}"));
        let e = err(&var, &expected);
        assert!(e < 1e-5, "{name} after one Adam step differs by {e}");
    }
}

#[test]
fn default_rng_permutations_equal_numpys() {
    let text = std::fs::read_to_string(fixtures().join("csflow_permutations.json")).unwrap();
    let golden: std::collections::BTreeMap<String, Vec<usize>> =
        serde_json::from_str(&text).unwrap();
    assert_eq!(golden.len(), 56);
    for (key, expected) in golden {
        let (seed, n) = key.split_once('/').unwrap();
        let got = adn_flows::numpy_rng::default_rng_permutation(
            seed.parse().unwrap(),
            n.parse().unwrap(),
        );
        assert_eq!(
            got, expected,
            "numpy.random.default_rng({seed}).permutation({n})"
        );
    }
}
