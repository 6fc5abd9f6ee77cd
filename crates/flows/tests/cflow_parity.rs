//! CFlow-AD against anomalib 2.7.0 on goldens written by goldens/make_family_goldens.py: the
//! same decoder weights in (anomalib's names), the same feature maps; the positional
//! encoding, each layer's log-likelihood per position, the anomaly map and score, and one
//! training step on a fixed shuffle of fibers must agree.

mod common;

use std::collections::HashMap;

use common::{assert_stepped_as_anomalib, goldens, load_anomalib_weights, relative};

use adn_flows::{
    Adam, AdamConfig, Cflow, CflowConfig, Param, cflow_loss, cflow_map, cflow_score, fibers,
    positional_encoding_2d,
};
use tch::nn;
use tch::{Device, Tensor};

const CHANNELS: [i64; 2] = [6, 10];
const SIZES: [(i64, i64); 2] = [(8, 8), (4, 4)];

fn loaded(g: &HashMap<String, Tensor>) -> (nn::VarStore, Cflow) {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = CflowConfig {
        blocks: 3,
        condition: 8,
        ..CflowConfig::default()
    };
    let flow = Cflow::new(&vs.root(), &CHANNELS, &config);
    load_anomalib_weights(&vs, g);
    (vs, flow)
}

#[test]
fn encodings_log_likelihoods_map_and_score_match_anomalib() {
    let g = goldens("cflow.safetensors");
    let (_vs, flow) = loaded(&g);
    for (l, &(h, w)) in SIZES.iter().enumerate() {
        let e = relative(
            &positional_encoding_2d(8, h, w),
            &g[&format!("encoding.{l}")],
        );
        assert!(e <= 1e-6, "layer {l}: positional encoding differs by {e:e}");
    }
    let maps: Vec<Tensor> = (0..2)
        .map(|l| g[&format!("input.{l}")].shallow_clone())
        .collect();
    let log_probs = tch::no_grad(|| flow.log_probs(&maps));
    for (l, lp) in log_probs.iter().enumerate() {
        let e = relative(lp, &g[&format!("log_prob.{l}")]);
        assert!(e <= 1e-5, "layer {l}: log-likelihood differs by {e:e}");
    }
    let map = cflow_map(&log_probs, &SIZES, 3, (32, 32));
    let e = relative(&map, &g["map"]);
    assert!(e <= 1e-5, "map differs by {e:e}");
    let e = relative(&cflow_score(&map), &g["score"]);
    assert!(e <= 1e-5, "score differs by {e:e}");
}

#[test]
fn one_training_step_matches_anomalibs() {
    let g = goldens("cflow.safetensors");
    let (vs, flow) = loaded(&g);
    let (rows, condition) = fibers(&g["input.0"], 8);
    let order = &g["train.order"];
    let decoder = &flow.decoders()[0];
    let (z, log_det) = decoder.forward(
        &rows.index_select(0, order),
        &condition.index_select(0, order),
    );
    assert!(relative(&z, &g["train.z"]) <= 1e-5);
    assert!(relative(&log_det, &g["train.ldj"]) <= 1e-5);
    let log_prob = decoder.log_prob(
        &rows.index_select(0, order),
        &condition.index_select(0, order),
    );
    let loss = cflow_loss(&log_prob);
    let e = relative(&loss.reshape([1]), &g["train.loss"]);
    assert!(e <= 1e-5, "loss differs by {e:e}");
    // Only the trained layer's decoder steps (anomalib's Adam skips the others: no gradient).
    let trained: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, t)| n.starts_with("decoders.0.") && t.requires_grad())
        .collect();
    let mut adam = Adam::new(
        trained.iter().map(|(_, t)| Param::plain(t)).collect(),
        AdamConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    );
    adam.backward_step(&loss).unwrap();
    assert_stepped_as_anomalib(&vs, &g, 1e-5);
}
