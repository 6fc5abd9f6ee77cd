//! Times the flow families' networks on fixed feature-map shapes, for
//! `bench/families.py`, which runs anomalib's modules (`bench/reference/families.py`) on
//! the same shapes beside it: a training step (forward, loss, backward, optimiser step) and
//! scoring (forward, map, image score). Prints one JSON object per family. With `phases`,
//! FastFlow's and CS-Flow's training steps are timed phase by phase instead (forward and
//! loss, backward, clipping and optimiser step): where a ratio below 1 comes from.
//!
//! `cargo run --release -p adn-flows --example families_bench -- THREADS REPEATS [phases]`

use std::hint::black_box;
use std::time::Instant;

use adn_flows::{
    Adam, AdamConfig, Cflow, CflowConfig, CsFlow, CsFlowConfig, FastFlow, FastFlowConfig, Param,
    cflow_loss, cflow_map, cflow_score, csflow_loss, csflow_map, csflow_score, fastflow_loss,
    fastflow_map, fastflow_score, fibers,
};
use tch::{Device, Kind, Tensor, nn};

/// EfficientNet-Lite0's stage2–4 maps at 160 px: FastFlow's and CFlow-AD's inputs.
const LAYERS: [(i64, i64, i64); 3] = [(24, 40, 40), (40, 20, 20), (80, 10, 10)];
/// Lite0 stage4 at 128, 64 and 32 px: CS-Flow's.
const SCALES: [(i64, i64, i64); 3] = [(80, 8, 8), (80, 4, 4), (80, 2, 2)];
const BATCH: i64 = 24;
const SCORED: i64 = 64;

fn maps(dims: &[(i64, i64, i64)], n: i64) -> Vec<Tensor> {
    dims.iter()
        .map(|&(c, h, w)| Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)))
        .collect()
}

fn adam(vs: &nn::VarStore, lr: f64) -> Adam {
    let params = vs.trainable_variables().iter().map(Param::plain).collect();
    Adam::new(
        params,
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-5,
        },
    )
}

/// The median of `repeats` timings of `f` (after one untimed call), in seconds.
fn median(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Medians over `repeats` training steps (after one untimed) of each phase: the forward
/// and loss, the backward, then the clipping (given `clip`) and the optimiser step.
fn phases(
    repeats: usize,
    loss: &dyn Fn() -> Tensor,
    opt: &mut Adam,
    clip: Option<f64>,
) -> [f64; 3] {
    let mut times: [Vec<f64>; 3] = Default::default();
    for k in 0..=repeats {
        let s = Instant::now();
        let l = loss();
        let forward = s.elapsed().as_secs_f64();
        let s = Instant::now();
        let grads = Tensor::run_backward(&[&l], &opt.leaves(), false, false);
        let backward = s.elapsed().as_secs_f64();
        let s = Instant::now();
        let grads = match clip {
            Some(max_norm) => adn_flows::optim::clip_grad_norm(&grads, max_norm).unwrap(),
            None => grads,
        };
        opt.step(&grads);
        let step = s.elapsed().as_secs_f64();
        if k > 0 {
            for (t, v) in times.iter_mut().zip([forward, backward, step]) {
                t.push(v);
            }
        }
    }
    times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    })
}

fn report_phases(family: &str, [forward, backward, step]: [f64; 3]) {
    println!(
        "{{\"family\": \"{family}\", \"forward_s\": {forward}, \"backward_s\": {backward}, \"step_s\": {step}}}"
    );
}

fn report(family: &str, step_s: f64, images: i64, score_s: f64) {
    println!(
        "{{\"family\": \"{family}\", \"train_steps_per_s\": {}, \"score_images_per_s\": {}}}",
        1.0 / step_s,
        images as f64 / score_s
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: i32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let repeats: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let by_phase = args.get(3).is_some_and(|a| a == "phases");
    tch::set_num_threads(threads);
    tch::manual_seed(0);

    let vs = nn::VarStore::new(Device::Cpu);
    let flow = FastFlow::new(&vs.root(), &LAYERS, &FastFlowConfig::default());
    let mut opt = adam(&vs, 1e-3);
    let x = maps(&LAYERS, BATCH);
    if by_phase {
        let loss = || fastflow_loss(&flow.forward(&x));
        report_phases("fastflow", phases(repeats, &loss, &mut opt, None));
    } else {
        let step = median(repeats, || {
            opt.backward_step(&fastflow_loss(&flow.forward(&x)))
                .unwrap();
        });
        let y = maps(&LAYERS, SCORED);
        let score = median(repeats, || {
            let _ = black_box(tch::no_grad(|| {
                fastflow_score(&fastflow_map(&flow.forward(&y), (160, 160)))
            }));
        });
        report("fastflow", step, SCORED, score);
    }

    let vs = nn::VarStore::new(Device::Cpu);
    let config = CsFlowConfig {
        blocks: 4,
        hidden: 64,
        clamp: 3.0,
    };
    let flow = CsFlow::new(&vs.root(), 80, &config);
    let mut opt = adam(&vs, 2e-4);
    let three = |m: Vec<Tensor>| [0, 1, 2].map(|s| m[s].shallow_clone());
    let x = three(maps(&SCALES, BATCH));
    if by_phase {
        let loss = || {
            let (z, log_det) = flow.forward(&x);
            csflow_loss(&z, &log_det)
        };
        report_phases("csflow", phases(repeats, &loss, &mut opt, Some(1.0)));
        return;
    }
    let step = median(repeats, || {
        let (z, log_det) = flow.forward(&x);
        let loss = csflow_loss(&z, &log_det);
        opt.backward_clipped_step(&loss, 1.0).unwrap();
    });
    let y = three(maps(&SCALES, SCORED));
    let score = median(repeats, || {
        let _ = black_box(tch::no_grad(|| {
            let (z, _) = flow.forward(&y);
            (csflow_score(&z), csflow_map(&z, (128, 128)))
        }));
    });
    report("csflow", step, SCORED, score);

    let vs = nn::VarStore::new(Device::Cpu);
    let channels: Vec<i64> = LAYERS.iter().map(|d| d.0).collect();
    let flow = Cflow::new(&vs.root(), &channels, &CflowConfig::default());
    let mut opt = adam(&vs, 1e-4);
    let layer0 = maps(&LAYERS[..1], 1).remove(0);
    let (rows, condition) = fibers(&layer0, 128);
    let (e, c) = (rows.narrow(0, 0, 64), condition.narrow(0, 0, 64));
    let step = median(repeats, || {
        let loss = cflow_loss(&flow.decoders()[0].log_prob(&e, &c));
        opt.backward_step(&loss).unwrap();
    });
    let scored = 16;
    let y = maps(&LAYERS, scored);
    let sizes: Vec<(i64, i64)> = LAYERS.iter().map(|d| (d.1, d.2)).collect();
    let score = median(repeats, || {
        let _ = black_box(tch::no_grad(|| {
            let lp = flow.log_probs(&y);
            cflow_score(&cflow_map(&lp, &sizes, scored, (160, 160)))
        }));
    });
    report("cflow", step, scored, score);
}
