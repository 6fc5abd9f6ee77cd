use super::*;
use crate::{DifferNetFlow, FlowConfig, nll_loss};
use tch::nn::{self, OptimizerConfig};

const CONFIG: AdamConfig = AdamConfig {
    lr: 2e-4,
    beta1: 0.8,
    beta2: 0.8,
    eps: 1e-4,
    weight_decay: 1e-5,
};

fn small(seed: i64) -> (nn::VarStore, DifferNetFlow) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = FlowConfig {
        coupling_blocks: 2,
        hidden: 300,
        ..FlowConfig::default()
    };
    let flow = DifferNetFlow::new(&vs.root(), 40, &cfg);
    (vs, flow)
}

/// Overwrites every weight with values that depend on nothing but its name's rank and
/// size, at the scale the initialiser gave it. libtorch's generator is process-global, so
/// a seeded draw still changes when another test draws in between; the Adam parity bound
/// is about 10× the rounding of one fixed case, not a bound over every draw.
fn fix_weights(vs: &nn::VarStore) {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (rank, (_, mut t)) in variables.into_iter().enumerate() {
            let scale = f64::try_from(t.square().mean(Kind::Double).sqrt()).unwrap();
            let values = (Tensor::arange(t.numel() as i64, (Kind::Double, Device::Cpu))
                * (0.7371 + 0.113 * rank as f64))
                .sin()
                * scale.max(1e-2)
                * 3f64.sqrt();
            t.copy_(&values.to_kind(t.kind()).view(t.size().as_slice()));
        }
    });
}

/// A batch that depends only on `step`: 16 × 40 values in [−1, 1], scaled up per step.
fn fixed_batch(step: usize) -> Tensor {
    let values: Vec<f32> = (0..16 * 40)
        .map(|k| ((0.11 * k as f64 + 0.5 * step as f64).sin() * (1.0 + step as f64)) as f32)
        .collect();
    Tensor::from_slice(&values).view([16, 40])
}

/// ‖a − b‖ / ‖b‖ and ‖a − b‖ / ‖b − start‖ over every variable: the difference against
/// the weights, and against the updates themselves.
fn relative_differences(
    a: &nn::VarStore,
    b: &nn::VarStore,
    start: &std::collections::HashMap<String, Tensor>,
) -> (f64, f64) {
    let (mut diff, mut size, mut moved) = (0.0, 0.0, 0.0);
    let bv = b.variables();
    let sq = |t: Tensor| f64::try_from(t.square().sum(Kind::Double)).unwrap();
    for (name, t) in a.variables() {
        let other = &bv[&name];
        diff += sq(&t - other);
        size += sq(other.shallow_clone());
        moved += sq(other - &start[&name]);
    }
    ((diff / size).sqrt(), (diff / moved).sqrt())
}

#[test]
fn one_pass_adam_matches_libtorchs_over_ten_steps() {
    let (vs_ref, flow_ref) = small(1);
    fix_weights(&vs_ref);
    let (mut vs, flow) = small(2);
    vs.copy(&vs_ref).unwrap();
    let start: std::collections::HashMap<String, Tensor> = vs_ref
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.copy()))
        .collect();
    let mut reference = nn::Adam {
        beta1: CONFIG.beta1,
        beta2: CONFIG.beta2,
        wd: CONFIG.weight_decay,
        eps: CONFIG.eps,
        amsgrad: false,
    }
    .build(&vs_ref, CONFIG.lr)
    .unwrap();
    let mut ours = Adam::new(flow.params(), CONFIG);
    for step in 0..10 {
        let x = fixed_batch(step);
        let (z, ld) = flow_ref.forward(&x);
        reference.backward_step(&nll_loss(&z, &ld));
        let (z, ld) = flow.forward(&x);
        ours.backward_step(&nll_loss(&z, &ld)).unwrap();
    }
    // Float rounding of the weights alone is ~1e-7 of them (~1e-6 of ten small updates).
    let (of_weights, of_update) = relative_differences(&vs, &vs_ref, &start);
    assert!(of_weights <= 1e-6, "relative to the weights {of_weights:e}");
    assert!(of_update <= 1e-5, "relative to the update {of_update:e}");
}

#[test]
fn tensor_operations_give_the_one_pass_update() {
    // The path CUDA tensors take, run here on the same gradients as the one-pass loop.
    let (vs_a, flow_a) = small(3);
    let (mut vs_b, flow_b) = small(4);
    vs_b.copy(&vs_a).unwrap();
    let mut fast = Adam::new(flow_a.params(), CONFIG);
    let mut slow = Adam::new(flow_b.params(), CONFIG);
    for _ in 0..3 {
        let grads: Vec<Tensor> = fast.leaves().iter().map(Tensor::randn_like).collect();
        fast.step(&grads);
        tch::no_grad(|| {
            for (slot, g) in slow.slots.iter_mut().zip(&grads) {
                slot.step += 1;
                slot.update_with_tensor_ops(g, false, CONFIG);
            }
        });
    }
    let bv = vs_b.variables();
    for (name, a) in vs_a.variables() {
        let b = &bv[&name];
        let e =
            f64::try_from((&a - b).abs().max()).unwrap() / f64::try_from(b.abs().max()).unwrap();
        assert!(e < 1e-6, "{name}: relative difference {e:e}");
    }
}

#[test]
fn a_gradient_sharing_the_weights_memory_is_stepped_as_a_copy_would_be() {
    let start = Tensor::randn([1000], (Kind::Float, Device::Cpu));
    let (a, b) = (start.copy(), start.copy());
    let mut aliased = Adam::new(vec![Param::plain(&a)], CONFIG);
    let mut copied = Adam::new(vec![Param::plain(&b)], CONFIG);
    for _ in 0..3 {
        aliased.step(&[a.shallow_clone()]);
        copied.step(&[b.copy()]);
    }
    let e = f64::try_from((&a - &b).abs().max()).unwrap();
    assert!(e < 1e-6, "difference {e:e}");
    assert!(f64::try_from((&a - &start).abs().max()).unwrap() > 1e-5);
}

#[test]
#[should_panic(expected = "parameter of 1000 elements, gradient of 10")]
fn a_wrong_sized_gradient_is_refused() {
    let w = Tensor::zeros([1000], (Kind::Float, Device::Cpu));
    let mut adam = Adam::new(vec![Param::plain(&w)], CONFIG);
    adam.step(&[Tensor::zeros([10], (Kind::Float, Device::Cpu))]);
}

#[test]
fn bf16_rounding_matches_the_half_crate() {
    let mut values = vec![
        0.0f32,
        -0.0,
        1.0,
        f32::MAX,
        f32::MIN_POSITIVE,
        1e-40,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x3F80_8000), // a tie, rounds to even (down)
        f32::from_bits(0x3F81_8000), // a tie, rounds to even (up)
    ];
    let mut x = 0x1234_5678u32;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        values.push(f32::from_bits(x));
    }
    for v in values {
        let want = half::bf16::from_f32(v);
        if v.is_nan() {
            assert!(f32::from_bits(u32::from(bf16_bits(v)) << 16).is_nan());
        } else {
            assert_eq!(bf16_bits(v), want.to_bits(), "{v:e}");
        }
        assert_eq!(bf16_bits(v).value().to_bits(), want.to_f32().to_bits());
    }
}

#[test]
fn bf16_copies_are_updated_with_their_masters_and_gradients_reach_the_masters() {
    let (_vs, flow) = small(5);
    let flow = flow.with_bf16_matmuls();
    let params = flow.params();
    let copies = params
        .iter()
        .filter(|p| p.leaf.kind() == Kind::BFloat16)
        .count();
    assert_eq!(copies, 2 * 2 * 4, "every subnet weight has a copy");
    let before: Vec<Tensor> = params.iter().map(|p| p.master.copy()).collect();
    let mut opt = Adam::new(params, CONFIG);
    let x = Tensor::randn([16, 40], (Kind::Float, Device::Cpu));
    let (z, ld) = flow.forward(&x);
    assert_eq!(z.kind(), Kind::Float);
    opt.backward_step(&nll_loss(&z, &ld)).unwrap();
    for (slot, before) in opt.slots.iter().zip(&before) {
        let p = &slot.param;
        assert!(
            f64::try_from((&p.master - before).abs().max()).unwrap() > 0.0,
            "every master moved"
        );
        if p.leaf.kind() == Kind::BFloat16 {
            let rounded = p.master.to_kind(Kind::BFloat16);
            assert!(bool::try_from(rounded.eq_tensor(&p.leaf).all()).unwrap());
        }
    }
}
