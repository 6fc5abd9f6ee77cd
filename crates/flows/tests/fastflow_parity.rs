//! FastFlow against anomalib 2.7.0 on goldens written by goldens/make_family_goldens.py:
//! the same weights in (anomalib's names), the same feature maps; z, log|det J|, the loss,
//! the anomaly map, the image score and one Adam step with FastFlow's settings must agree.

mod common;

use std::collections::HashMap;

use common::{assert_stepped_as_anomalib, goldens, load_anomalib_weights, relative};

use adn_flows::{
    Adam, AdamConfig, FastFlow, FastFlowConfig, Param, fastflow_loss, fastflow_map, fastflow_score,
};
use tch::nn;
use tch::{Device, Tensor};

const DIMS: [(i64, i64, i64); 3] = [(6, 8, 8), (9, 4, 4), (12, 2, 2)];

/// The flow with anomalib's weights.
fn loaded(g: &HashMap<String, Tensor>) -> (nn::VarStore, FastFlow) {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = FastFlowConfig {
        flow_steps: 4,
        ..FastFlowConfig::default()
    };
    let flow = FastFlow::new(&vs.root(), &DIMS, &config);
    load_anomalib_weights(&vs, g);
    (vs, flow)
}

#[test]
fn forward_loss_map_and_score_match_anomalib() {
    let g = goldens("fastflow.safetensors");
    let (_vs, flow) = loaded(&g);
    let inputs: Vec<Tensor> = (0..3)
        .map(|i| g[&format!("input.{i}")].shallow_clone())
        .collect();
    let outputs = flow.forward(&inputs);
    for (i, (z, log_det)) in outputs.iter().enumerate() {
        let ez = relative(z, &g[&format!("z.{i}")]);
        let ej = relative(log_det, &g[&format!("ldj.{i}")]);
        assert!(ez <= 1e-5, "scale {i}: z differs by {ez:e}");
        assert!(ej <= 1e-5, "scale {i}: log|det J| differs by {ej:e}");
    }
    let loss = fastflow_loss(&outputs);
    let el = relative(&loss.reshape([1]), &g["loss"]);
    assert!(el <= 1e-5, "loss differs by {el:e}");
    let map = fastflow_map(&outputs, (32, 32));
    let em = relative(&map, &g["map"]);
    assert!(em <= 1e-5, "map differs by {em:e}");
    let es = relative(&fastflow_score(&map), &g["score"]);
    assert!(es <= 1e-5, "score differs by {es:e}");
}

#[test]
fn one_adam_step_matches_anomalibs() {
    let g = goldens("fastflow.safetensors");
    let (vs, flow) = loaded(&g);
    let inputs: Vec<Tensor> = (0..3)
        .map(|i| g[&format!("input.{i}")].shallow_clone())
        .collect();
    let trained: Vec<(String, Tensor)> = {
        let mut v: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    // FastFlow's optimiser: Adam, lr 1e-3, weight decay 1e-5 added to the gradient.
    let mut adam = Adam::new(
        trained.iter().map(|(_, t)| Param::plain(t)).collect(),
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-5,
        },
    );
    adam.backward_step(&fastflow_loss(&flow.forward(&inputs)))
        .unwrap();
    assert_stepped_as_anomalib(&vs, &g, 1e-5);
    // Not trained: the permutations.
    for (name, t) in vs.variables() {
        if name.ends_with("w_perm") || name.ends_with("w_perm_inv") {
            assert_eq!(relative(&t, &g[&format!("param.{name}")]), 0.0, "{name}");
        }
    }
}
