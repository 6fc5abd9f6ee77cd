//! Property tests: symmetry, invariance under monotone transforms, constant scores, agreement
//! with the O(n^2) definition, and sanity of the statistics.

use adn_metrics::special::{normal_cdf, normal_quantile, student_t_cdf, student_t_quantile};
use adn_metrics::{
    BootstrapConfig, Ranking, auroc, average_precision, bootstrap_auroc_ci, delong_auroc,
    delong_test, f1_max, paired_comparison,
};
use proptest::prelude::*;

/// Labels with both classes and integer-valued scores (so ties are common and monotone
/// transforms cannot merge distinct scores).
fn labelled_scores() -> impl Strategy<Value = (Vec<bool>, Vec<f64>)> {
    (2usize..80)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(any::<bool>(), n),
                prop::collection::vec(-40i32..40, n),
                0usize..n,
                0usize..n,
            )
        })
        .prop_map(|(mut labels, scores, i, j)| {
            // Force both classes.
            let j = if i == j { (j + 1) % labels.len() } else { j };
            labels[i] = true;
            labels[j] = false;
            (labels, scores.into_iter().map(f64::from).collect())
        })
}

fn brute_force_auroc(labels: &[bool], scores: &[f64]) -> f64 {
    let mut wins = 0.0;
    let mut pairs = 0.0;
    for (i, &li) in labels.iter().enumerate() {
        for (j, &lj) in labels.iter().enumerate() {
            if li && !lj {
                pairs += 1.0;
                if scores[i] > scores[j] {
                    wins += 1.0;
                } else if scores[i] == scores[j] {
                    wins += 0.5;
                }
            }
        }
    }
    wins / pairs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn negated_scores_complement((labels, scores) in labelled_scores()) {
        let neg: Vec<f64> = scores.iter().map(|s| -s).collect();
        let sum = auroc(&labels, &scores).unwrap() + auroc(&labels, &neg).unwrap();
        prop_assert!((sum - 1.0).abs() < 1e-12, "sum {}", sum);
    }

    #[test]
    fn monotone_transforms_change_nothing((labels, scores) in labelled_scores()) {
        let base = Ranking::new(&labels, &scores).unwrap();
        let transforms: [fn(f64) -> f64; 4] = [
            |s| 2.5 * s + 7.0,
            |s| s * s * s,
            |s| (s / 10.0).exp(),
            f64::atan,
        ];
        for f in transforms {
            let t: Vec<f64> = scores.iter().map(|&s| f(s)).collect();
            let r = Ranking::new(&labels, &t).unwrap();
            prop_assert_eq!(r.auroc(), base.auroc());
            prop_assert_eq!(r.average_precision(), base.average_precision());
            prop_assert_eq!(r.f1_max().f1, base.f1_max().f1);
            prop_assert_eq!(r.distinct_scores(), base.distinct_scores());
            let (rc, bc) = (r.roc_curve(true), base.roc_curve(true));
            prop_assert_eq!(rc.fpr, bc.fpr);
            prop_assert_eq!(rc.tpr, bc.tpr);
            if let (Ok(a), Ok(b)) = (delong_auroc(&labels, &t), delong_auroc(&labels, &scores)) {
                prop_assert!((a.variance - b.variance).abs() <= 1e-15 + 1e-12 * b.variance);
            }
        }
    }

    #[test]
    fn constant_scores_give_one_half((labels, scores) in labelled_scores(), c in -1e6f64..1e6) {
        let constant = vec![c; scores.len()];
        prop_assert_eq!(auroc(&labels, &constant).unwrap(), 0.5);
        let pos = labels.iter().filter(|&&l| l).count() as f64;
        let ap = average_precision(&labels, &constant).unwrap();
        prop_assert!((ap - pos / labels.len() as f64).abs() < 1e-15);
    }

    #[test]
    fn auroc_equals_definition((labels, scores) in labelled_scores()) {
        let got = auroc(&labels, &scores).unwrap();
        prop_assert!((got - brute_force_auroc(&labels, &scores)).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&got));
    }

    #[test]
    fn permutation_invariant((labels, scores) in labelled_scores(), rot in 0usize..80) {
        let k = rot % labels.len();
        let (mut l2, mut s2) = (labels.clone(), scores.clone());
        l2.rotate_left(k);
        s2.rotate_left(k);
        prop_assert_eq!(auroc(&labels, &scores).unwrap(), auroc(&l2, &s2).unwrap());
        prop_assert_eq!(f1_max(&labels, &scores).unwrap(), f1_max(&l2, &s2).unwrap());
    }

    #[test]
    fn delong_self_comparison_is_null((labels, scores) in labelled_scores()) {
        if let Ok(d) = delong_test(&labels, &scores, &scores) {
            prop_assert_eq!(d.difference, 0.0);
            prop_assert_eq!(d.p_value, 1.0);
            prop_assert!(d.variance_a >= 0.0);
        }
    }

    #[test]
    fn quantiles_invert_cdfs(p in 1e-6f64..(1.0 - 1e-6), df in 1.0f64..200.0) {
        prop_assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-12);
        prop_assert!((student_t_cdf(student_t_quantile(p, df), df) - p).abs() < 1e-10);
    }

    #[test]
    fn paired_sign_flips(a in prop::collection::vec(0.5f64..1.0, 2..12),
                         shift in prop::collection::vec(-0.05f64..0.05, 12)) {
        let b: Vec<f64> = a.iter().zip(&shift).map(|(x, s)| x + s).collect();
        let ab = paired_comparison(&a, &b).unwrap();
        let ba = paired_comparison(&b, &a).unwrap();
        prop_assert!((ab.mean_difference + ba.mean_difference).abs() < 1e-15);
        prop_assert!((ab.p_value - ba.p_value).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&ab.p_value));
    }
}

#[test]
fn bootstrap_interval_agrees_with_delong_scale() {
    // A moderately sized problem: the bootstrap SE should be close to DeLong's.
    let n = 400;
    let labels: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
    let scores: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 101) as f64 / 10.0 + if labels[i] { 2.5 } else { 0.0 })
        .collect();
    let d = delong_auroc(&labels, &scores).unwrap();
    let b = bootstrap_auroc_ci(&labels, &scores, &BootstrapConfig::default()).unwrap();
    let ratio = b.std_error / d.std_error;
    assert!(
        (0.85..1.15).contains(&ratio),
        "bootstrap SE / DeLong SE = {ratio}"
    );
    assert!(b.lower < d.auroc && d.auroc < b.upper);
    let (lo, hi) = d.ci(0.95).unwrap();
    assert!((b.lower - lo).abs() < 0.02 && (b.upper - hi).abs() < 0.02);
}
