//! A run's third stage: the flow (and jointly trained attention) trained with DifferNet's
//! Adam over meta-epochs of sub-epochs, evaluated after every meta-epoch.

use std::time::Instant;

use adn_backbones::{FeatureExtractor, Precision};
use adn_flows::optim::backward_step_all;
use adn_flows::{Adam, AdamConfig, DifferNetFlow, Param, nll_loss, nll_parts, volume_charge};
use adn_record::{Diagnostics, EvalPoint};
use anyhow::{Context, Result};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use tch::nn;

use crate::config::{Config, TrainConfig};
use crate::pipeline::data::RunData;
use crate::pipeline::diagnostics::{self, LossSums};
use crate::pipeline::features::RunFeatures;
use crate::pipeline::score;
use crate::pipeline::settings::Settings;

/// DifferNet's Adam with the run's betas, eps and weight decay, at learning rate `lr`.
pub fn adam(t: &TrainConfig, lr: f64) -> AdamConfig {
    AdamConfig {
        lr,
        beta1: t.betas[0],
        beta2: t.betas[1],
        eps: t.eps,
        weight_decay: t.weight_decay,
    }
}

/// The run's flow over `dim`-dimensional features under `vs`, with bfloat16 matrix
/// multiplies when the settings say so.
pub fn build_flow(cfg: &Config, settings: &Settings, vs: &nn::VarStore, dim: i64) -> DifferNetFlow {
    let flow = DifferNetFlow::new(&vs.root(), dim, &cfg.flow);
    if settings.flow_precision == Precision::Bf16 {
        flow.with_bf16_matmuls()
    } else {
        flow
    }
}

/// The trained flow and what training saw.
pub struct Trained {
    pub flow_vs: nn::VarStore,
    pub flow: DifferNetFlow,
    /// One evaluation per finished meta-epoch.
    pub trajectory: Vec<EvalPoint>,
    /// The model before training, then after every evaluated meta-epoch.
    pub diagnostics: Vec<Diagnostics>,
    /// Test scores after the last finished meta-epoch.
    pub last_scores: Vec<f64>,
    /// Why training stopped early (a non-finite loss or score), if it did.
    pub failure: Option<String>,
    pub wall_train: f64,
    pub wall_eval: f64,
}

/// Trains the flow on `features`, drawing batches and views from `rng`.
pub fn train(
    cfg: &Config,
    data: &RunData,
    features: &RunFeatures,
    quiet: bool,
    rng: &mut ChaCha8Rng,
) -> Result<Trained> {
    let extractor = &features.source.extractor;
    let settings = &features.source.settings;
    let device = settings.device;
    tch::manual_seed(cfg.train.seed as i64);
    let flow_vs = nn::VarStore::new(device);
    let flow = build_flow(cfg, settings, &flow_vs, extractor.feature_dim());
    let t = &cfg.train;
    let mut opt = Adam::new(flow.params(), adam(t, t.lr));
    // Jointly trained attention: its own Adam, at `lr · attention_lr_scale`.
    let mut attention_opt = features
        .is_joint()
        .then(|| attention_optimizer(extractor, t));

    let test = &data.images.test;
    let labels: Vec<bool> = test.iter().map(|s| s.is_anomalous()).collect();
    let n_train = data.images.train.len();
    let pool = data.train_angles.first().map_or(0, Vec::len) as i64;
    let views = t.train_transforms as i64;
    let mut trajectory = Vec::new();
    let mut last_scores = Vec::new();
    let (mut wall_train, mut wall_eval) = (0.0, 0.0);
    let bar = crate::progress::bar(quiet, (t.meta_epochs * t.sub_epochs) as u64, "train");
    let mut failure = None;
    // Standardised flow inputs: fixed features are described once; jointly trained
    // attention's change, so each batch uses its own statistics and the stored ones (used
    // to score) are those of the meta-epoch's batches.
    if let Some(train) = features.fixed_train()
        && flow.standardizes()
    {
        flow.fit_standardization(train);
    }
    let joint_standardized = flow.standardizes() && features.is_joint();
    let mut diagnostics = vec![diagnostics::measure(
        extractor,
        &features.inputs,
        None,
        None,
    )];
    // The volume charge compares each batch with the same rows through the backbone alone,
    // computed once: the backbone is frozen.
    let charge_reference = match t.volume_charge > 0.0 {
        true => features.train_without_attention(),
        false => None,
    };
    'meta: for meta in 0..t.meta_epochs {
        let t2 = Instant::now();
        let (mut loss_sum, mut loss_count) = (0.0, 0usize);
        let mut moments = MomentSums::default();
        let mut parts = LossSums::default();
        for _sub in 0..t.sub_epochs {
            let mut order: Vec<i64> = (0..n_train as i64).collect();
            order.shuffle(rng);
            for batch in order.chunks(t.batch_size) {
                let rows = batch_rows(batch, pool, views, t.redraw_rotations, rng);
                let rows = Tensor::from_slice(&rows).to_device(device);
                let x = features.train_rows(&rows);
                let BatchLoss {
                    loss,
                    z,
                    log_det,
                    charge,
                } = batch_loss(
                    &flow,
                    &x,
                    joint_standardized.then_some(&mut moments),
                    charge_reference
                        .as_ref()
                        .map(|r| (r, &rows, t.volume_charge)),
                );
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    failure = Some(format!(
                        "training loss became {value} at meta-epoch {meta}; the run is stopped \
                         (try a lower train.lr or check the features for NaN)"
                    ));
                    break 'meta;
                }
                match attention_opt.as_mut() {
                    None => opt.backward_step(&loss),
                    Some(att) => backward_step_all(&loss, &mut [&mut opt, att]),
                }
                .context("the training step failed")?;
                loss_sum += value;
                loss_count += 1;
                let (zz, ld) = tch::no_grad(|| nll_parts(&z.detach(), &log_det.detach()));
                parts.add(zz.double_value(&[]), ld.double_value(&[]), charge);
            }
            bar.inc(1);
        }
        wall_train += t2.elapsed().as_secs_f64();
        if let Some((mean, sd)) = moments.mean_sd() {
            flow.set_standardization(&mean, &sd);
        }

        let t3 = Instant::now();
        let scores = score::test_scores(cfg, &flow, features);
        wall_eval += t3.elapsed().as_secs_f64();
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            failure = Some(format!(
                "the score of test image {} is {} after meta-epoch {meta}; the flow diverged",
                test[i].path.display(),
                scores[i]
            ));
            break;
        }
        let auroc =
            adn_metrics::auroc(&labels, &scores).context("cannot compute the test AUROC")?;
        let train_loss = loss_sum / loss_count.max(1) as f64;
        tracing::info!(meta_epoch = meta, train_loss, auroc, "evaluated");
        trajectory.push(EvalPoint {
            meta_epoch: meta,
            train_loss,
            auroc,
        });
        last_scores = scores;
        diagnostics.push(diagnostics::measure(
            extractor,
            &features.inputs,
            Some(meta),
            parts.mean(),
        ));
    }
    bar.finish_and_clear();
    Ok(Trained {
        flow_vs,
        flow,
        trajectory,
        diagnostics,
        last_scores,
        failure,
        wall_train,
        wall_eval,
    })
}

/// Jointly trained attention's optimiser: DifferNet's Adam at `lr · attention_lr_scale`.
fn attention_optimizer(extractor: &FeatureExtractor, t: &TrainConfig) -> Adam {
    let params = extractor
        .attention_vs
        .trainable_variables()
        .iter()
        .map(Param::plain)
        .collect();
    Adam::new(params, adam(t, t.lr * t.attention_lr_scale))
}

/// One batch's loss and the flow outputs it came from.
struct BatchLoss {
    loss: Tensor,
    z: Tensor,
    log_det: Tensor,
    /// The weighted volume charge in the loss (0 without one).
    charge: f64,
}

/// The flow's NLL of the batch `x`. With `moments`, `x` is standardised by its own
/// statistics (jointly trained attention), which are added to the meta-epoch's sums. With
/// `charge = (reference, rows, weight)`, the volume charge of `x` against the same rows of
/// `reference` (the backbone without attention), times `weight`, is added.
fn batch_loss(
    flow: &DifferNetFlow,
    x: &Tensor,
    moments: Option<&mut MomentSums>,
    charge: Option<(&Tensor, &Tensor, f64)>,
) -> BatchLoss {
    let (z, log_det) = match moments {
        Some(moments) => {
            moments.add(x);
            flow.forward_batch_standardized(x)
        }
        None => flow.forward(x),
    };
    let nll = nll_loss(&z, &log_det);
    let (loss, charge) = match charge {
        Some((reference, rows, weight)) => {
            let charge = volume_charge(x, &reference.index_select(0, rows));
            let weighted = charge * weight;
            let c = weighted.double_value(&[]);
            (&nll + weighted, c)
        }
        None => (nll, 0.0),
    };
    BatchLoss {
        loss,
        z,
        log_det,
        charge,
    }
}

/// Running sums of feature rows (detached, in double precision) over a meta-epoch.
#[derive(Default)]
struct MomentSums {
    sums: Option<(Tensor, Tensor)>,
    rows: i64,
}

impl MomentSums {
    fn add(&mut self, x: &Tensor) {
        let x = x.detach().to_kind(tch::Kind::Double);
        let s = x.sum_dim_intlist(0, false, tch::Kind::Double);
        let q = x.square().sum_dim_intlist(0, false, tch::Kind::Double);
        self.sums = Some(match self.sums.take() {
            None => (s, q),
            Some((a, b)) => (a + s, b + q),
        });
        self.rows += x.size()[0];
    }

    /// Mean and sd of every row added, as float; `None` when nothing was.
    fn mean_sd(&self) -> Option<(Tensor, Tensor)> {
        let (s, q) = self.sums.as_ref()?;
        let n = self.rows as f64;
        let mean = s / n;
        let var = (q / n - mean.square()).clamp_min(0.0);
        Some((
            mean.to_kind(tch::Kind::Float),
            var.sqrt().to_kind(tch::Kind::Float),
        ))
    }
}

/// The training feature rows of a batch of images: `views` rows `i·pool + v` per image `i`,
/// each rotation `v` drawn independently from the image's pool (DifferNet's RandomRotation
/// per view) under `redraw`, else the whole pool, which then holds the once-drawn views.
fn batch_rows(
    images: &[i64],
    pool: i64,
    views: i64,
    redraw: bool,
    rng: &mut ChaCha8Rng,
) -> Vec<i64> {
    let mut rows = Vec::with_capacity(images.len() * views as usize);
    for &i in images {
        for k in 0..views {
            let v = if redraw { rng.random_range(0..pool) } else { k };
            rows.push(i * pool + v);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn redrawn_views_come_from_each_images_pool_and_change_between_batches() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let images = [3i64, 0, 5];
        let draws: Vec<Vec<i64>> = (0..20)
            .map(|_| batch_rows(&images, 4, 2, true, &mut rng))
            .collect();
        for rows in &draws {
            assert_eq!(rows.len(), 6);
            for (k, r) in rows.iter().enumerate() {
                let i = images[k / 2];
                assert!((i * 4..i * 4 + 4).contains(r), "row {r} of image {i}");
            }
        }
        // Independent draws: every rotation of image 3 appears across the batches, and the
        // batches are not all the same.
        let seen: std::collections::BTreeSet<i64> =
            draws.iter().flat_map(|r| r[..2].to_vec()).collect();
        assert_eq!(seen, (12..16).collect());
        assert!(draws.iter().any(|r| r != &draws[0]));
    }

    #[test]
    fn without_redraw_every_batch_takes_each_images_fixed_views() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..3 {
            assert_eq!(batch_rows(&[2, 0], 2, 2, false, &mut rng), vec![4, 5, 0, 1]);
        }
    }
}
