//! SE and CBAM blocks at AlexNet's conv2 output for 448 px input (192 × 55 × 55), a batch
//! of 16, forward without autograd (frozen) and with it (joint training).
//!
//! `cargo bench -p adn-backbones --bench attention`

use std::hint::black_box;

use adn_backbones::AttentionKind;
use adn_backbones::attention::AttentionBlock;
use criterion::{Criterion, criterion_group, criterion_main};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("attention_192x55x55_batch16");
    group.sample_size(10);
    let x = Tensor::randn([16, 192, 55, 55], (Kind::Float, Device::Cpu));
    for kind in [
        AttentionKind::Se,
        AttentionKind::Cbam,
        AttentionKind::CbamOfficial,
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let block =
            AttentionBlock::new(&vs.root(), kind, 192, 2, Default::default()).expect("attention");
        group.bench_function(format!("{kind:?}/forward"), |b| {
            b.iter(|| tch::no_grad(|| block.forward_t(black_box(&x), false)))
        });
        group.bench_function(format!("{kind:?}/forward_backward"), |b| {
            b.iter(|| {
                for v in vs.trainable_variables().iter_mut() {
                    v.zero_grad();
                }
                block
                    .forward_t(black_box(&x), true)
                    .sum(Kind::Float)
                    .backward();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
