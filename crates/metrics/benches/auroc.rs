//! AUROC of 1,000,000 scores (continuous, and with heavy ties) must take well under a second.
//!
//! `CARGO_TARGET_DIR=/work/target-metrics cargo bench -p adn-metrics --bench auroc`

use std::hint::black_box;
use std::time::Duration;

use adn_metrics::{Ranking, auroc};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 1_000_000;

fn data(ties: bool) -> (Vec<bool>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let labels: Vec<bool> = (0..N).map(|_| rng.random_bool(0.3)).collect();
    let scores = labels
        .iter()
        .map(|&l| {
            let s: f64 = rng.random::<f64>() + if l { 0.4 } else { 0.0 };
            if ties { (s * 100.0).round() / 100.0 } else { s }
        })
        .collect();
    (labels, scores)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("auroc_1e6");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, ties) in [("continuous", false), ("ties", true)] {
        let (labels, scores) = data(ties);
        group.bench_function(name, |b| {
            b.iter(|| auroc(black_box(&labels), black_box(&scores)).unwrap())
        });
    }
    let (labels, scores) = data(false);
    group.bench_function("ranking_all_metrics", |b| {
        b.iter(|| {
            let r = Ranking::new(black_box(&labels), black_box(&scores)).unwrap();
            (
                r.auroc(),
                r.average_precision(),
                r.f1_max(),
                r.tpr_at_fpr(0.05),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
