//! A run's third stage: the flow (and jointly trained attention) trained with DifferNet's
//! Adam over meta-epochs of sub-epochs, evaluated after every meta-epoch.

use std::time::Instant;

use adn_backbones::{FeatureExtractor, Precision};
use adn_flows::optim::backward_step_all;
use adn_flows::{Adam, AdamConfig, DifferNetFlow, Param, nll_parts};
use adn_record::{Diagnostics, EvalPoint};
use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use tch::nn;

use crate::config::{Config, TrainConfig};
use crate::pipeline::data::RunData;
use crate::pipeline::diagnostics::{self, LossSums};
use crate::pipeline::features::RunFeatures;
use crate::pipeline::objective::{BatchLoss, MomentSums, batch_loss};
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

/// A trained flow of any family.
pub enum FlowModel {
    Differnet(DifferNetFlow),
    Maps(crate::pipeline::train_maps::MapFlow),
}

/// The trained flow and what training saw.
pub struct Trained {
    pub flow_vs: nn::VarStore,
    pub flow: FlowModel,
    /// One evaluation per finished meta-epoch.
    pub trajectory: Vec<EvalPoint>,
    /// The model before training, then after every evaluated meta-epoch.
    pub diagnostics: Vec<Diagnostics>,
    /// Test scores after the last finished meta-epoch.
    pub last_scores: Vec<f64>,
    /// The validation images' scores after the last meta-epoch, in `RunData::validation`'s
    /// order (empty when the run has none, or stopped early).
    pub validation_scores: Vec<f64>,
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
    let mut validation_scores = Vec::new();
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
    // What the flow sees, before training (`None`) and after every meta-epoch.
    let measure = |meta, loss| diagnostics::measure(extractor, &features.inputs, meta, loss);
    let mut diagnostics = vec![measure(None, None)];
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
                let rows = RunFeatures::batch_rows(batch, pool, views, t.redraw_rotations, rng);
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
                    failure = Some(loss_failure(value, meta));
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
        if meta + 1 == t.meta_epochs {
            validation_scores = score::validation_scores(cfg, &flow, features).unwrap_or_default();
        }
        wall_eval += t3.elapsed().as_secs_f64();
        match evaluated(
            meta,
            &scores,
            &labels,
            test,
            loss_sum / loss_count.max(1) as f64,
        )? {
            Ok(point) => trajectory.push(point),
            Err(diverged) => {
                failure = Some(diverged);
                break;
            }
        }
        last_scores = scores;
        diagnostics.push(measure(Some(meta), parts.mean()));
    }
    bar.finish_and_clear();
    Ok(Trained {
        flow_vs,
        flow: FlowModel::Differnet(flow),
        trajectory,
        diagnostics,
        last_scores,
        validation_scores,
        failure,
        wall_train,
        wall_eval,
    })
}

/// Why a run stops when its training loss is `value`, not finite, at meta-epoch `meta`.
pub fn loss_failure(value: f64, meta: usize) -> String {
    format!(
        "training loss became {value} at meta-epoch {meta}; the run is stopped (try a lower \
         train.lr or check the features for NaN)"
    )
}

/// A meta-epoch's evaluation from its test `scores`: the point of the trajectory, or why
/// the run stops (a test score that is not finite: the flow diverged).
pub fn evaluated(
    meta: usize,
    scores: &[f64],
    labels: &[bool],
    test: &[adn_datasets::Sample],
    train_loss: f64,
) -> Result<std::result::Result<EvalPoint, String>> {
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Ok(Err(format!(
            "the score of test image {} is {} after meta-epoch {meta}; the flow diverged",
            test[i].path.display(),
            scores[i]
        )));
    }
    let auroc = adn_metrics::auroc(labels, scores).context("cannot compute the test AUROC")?;
    tracing::info!(meta_epoch = meta, train_loss, auroc, "evaluated");
    Ok(Ok(EvalPoint {
        meta_epoch: meta,
        train_loss,
        auroc,
    }))
}

/// Jointly trained attention's optimiser: DifferNet's Adam at `lr · attention_lr_scale`.
pub fn attention_optimizer(extractor: &FeatureExtractor, t: &TrainConfig) -> Adam {
    let params = extractor
        .attention_vs
        .trainable_variables()
        .iter()
        .map(Param::plain)
        .collect();
    Adam::new(params, adam(t, t.lr * t.attention_lr_scale))
}
