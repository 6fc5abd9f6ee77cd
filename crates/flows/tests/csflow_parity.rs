//! CS-Flow against anomalib 2.7.0 on goldens written by goldens/make_family_goldens.py:
//! the same weights in (anomalib's names), the same three feature maps; z, log|det J|, the
//! loss, the anomaly map, the image score and one clipped Adam step with CS-Flow's settings
//! (`Adam::backward_clipped_step` against PyTorch's `clip_grad_norm_`) must agree.

mod common;

use std::collections::HashMap;

use common::{assert_stepped_as_anomalib, goldens, load_anomalib_weights, relative};

use adn_flows::{
    Adam, AdamConfig, CsFlow, CsFlowConfig, Param, csflow_loss, csflow_map, csflow_score,
};
use tch::nn;
use tch::{Device, Tensor};

/// The flow with anomalib's weights: 9 channels, hidden 5, 3 blocks.
fn loaded(g: &HashMap<String, Tensor>) -> (nn::VarStore, CsFlow) {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = CsFlowConfig {
        blocks: 3,
        hidden: 5,
        clamp: 3.0,
    };
    let flow = CsFlow::new(&vs.root(), 9, &config);
    load_anomalib_weights(&vs, g);
    (vs, flow)
}

fn inputs(g: &HashMap<String, Tensor>) -> [Tensor; 3] {
    [0, 1, 2].map(|i| g[&format!("input.{i}")].shallow_clone())
}

#[test]
fn forward_loss_map_and_score_match_anomalib() {
    let g = goldens("csflow.safetensors");
    let (_vs, flow) = loaded(&g);
    let (z, log_det) = flow.forward(&inputs(&g));
    for (i, z) in z.iter().enumerate() {
        let e = relative(z, &g[&format!("z.{i}")]);
        assert!(e <= 1e-5, "scale {i}: z differs by {e:e}");
    }
    let checks = [
        ("log|det J|", log_det.shallow_clone(), "ldj"),
        ("loss", csflow_loss(&z, &log_det).reshape([1]), "loss"),
        ("map", csflow_map(&z, (64, 64)), "map"),
        ("score", csflow_score(&z), "score"),
    ];
    for (what, ours, key) in checks {
        let e = relative(&ours, &g[key]);
        assert!(e <= 1e-5, "{what} differs by {e:e}");
    }
}

#[test]
fn one_clipped_adam_step_matches_anomalibs() {
    let g = goldens("csflow.safetensors");
    let (vs, flow) = loaded(&g);
    let mut trained: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    trained.sort_by(|a, b| a.0.cmp(&b.0));
    let (z, log_det) = flow.forward(&inputs(&g));
    let loss = csflow_loss(&z, &log_det);
    // CS-Flow's optimiser: Adam, lr 2e-4, betas (0.5, 0.9), eps 1e-4, weight decay 1e-5.
    let mut adam = Adam::new(
        trained.iter().map(|(_, t)| Param::plain(t)).collect(),
        AdamConfig {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.9,
            eps: 1e-4,
            weight_decay: 1e-5,
        },
    );
    // Lightning's gradient_clip_val = 1: the gradients' joint 2-norm at most 1.
    adam.backward_clipped_step(&loss, 1.0).unwrap();
    assert_stepped_as_anomalib(&vs, &g, 1e-4);
}
