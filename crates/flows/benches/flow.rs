//! DifferNet's flow: forward, and forward + NLL + backward, at the paper's size (768-d,
//! 8 blocks of width 2048, a batch of 24 images × 4 rotations) and the demo's (624-d, 256).
//!
//! `cargo bench -p adn-flows --bench flow`

use std::hint::black_box;

use adn_flows::{DifferNetFlow, FlowConfig, nll_loss};
use criterion::{Criterion, criterion_group, criterion_main};
use tch::{Device, Kind, Tensor, nn};

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("flow");
    group.sample_size(10);
    for (name, dim, hidden) in [("paper_768x2048", 768, 2048), ("demo_624x256", 624, 256)] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FlowConfig {
            hidden,
            ..FlowConfig::default()
        };
        let flow = DifferNetFlow::new(&vs.root(), dim, &cfg);
        let x = Tensor::randn([96, dim], (Kind::Float, Device::Cpu));
        group.bench_function(format!("{name}/forward_no_grad"), |b| {
            b.iter(|| tch::no_grad(|| flow.forward(black_box(&x))))
        });
        group.bench_function(format!("{name}/forward_backward"), |b| {
            b.iter(|| {
                for v in vs.trainable_variables().iter_mut() {
                    v.zero_grad();
                }
                let (z, log_det) = flow.forward(black_box(&x));
                nll_loss(&z, &log_det).backward();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
