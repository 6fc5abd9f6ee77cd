//! A run's third stage for FastFlow (`flow.kind = "fastflow"`): its per-layer 2D flows
//! trained on the held feature maps with the run's Adam, over the same meta-epochs,
//! sub-epochs, batches and views as DifferNet's loop, evaluated after every meta-epoch with
//! FastFlow's own image score (the maximum of its anomaly map).

use std::time::Instant;

use adn_flows::{Adam, FastFlow, FastFlowConfig, Param, fastflow_loss};
use adn_record::EvalPoint;
use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Tensor, nn};

use crate::config::Config;
use crate::pipeline::data::RunData;
use crate::pipeline::diagnostics;
use crate::pipeline::features::RunFeatures;
use crate::pipeline::score::fastflow_scores;
use crate::pipeline::train::{FlowModel, Trained, adam};

/// FastFlow's settings from the run's config: `flow.coupling_blocks` steps per layer,
/// anomalib's defaults otherwise.
pub fn fastflow_config(cfg: &Config) -> FastFlowConfig {
    FastFlowConfig {
        flow_steps: cfg.flow.coupling_blocks,
        ..FastFlowConfig::default()
    }
}

/// Trains FastFlow on `features`' maps, drawing batches and views from `rng`.
pub fn train(
    cfg: &Config,
    data: &RunData,
    features: &RunFeatures,
    quiet: bool,
    rng: &mut ChaCha8Rng,
) -> Result<Trained> {
    let maps = features
        .maps()
        .context("FastFlow trains on feature maps, and the run has none")?;
    let (train_maps, test_maps, validation_maps) = (maps.train, maps.test, maps.validation);
    let device = features.source.settings.device;
    tch::manual_seed(cfg.train.seed as i64);
    let flow_vs = nn::VarStore::new(device);
    let dims: Vec<(i64, i64, i64)> = train_maps
        .iter()
        .map(|m| {
            let s = m.size();
            (s[1], s[2], s[3])
        })
        .collect();
    let flow = FastFlow::new(&flow_vs.root(), &dims, &fastflow_config(cfg));
    let t = &cfg.train;
    let params = flow_vs
        .trainable_variables()
        .iter()
        .map(Param::plain)
        .collect();
    let mut opt = Adam::new(params, adam(t, t.lr));

    let test = &data.images.test;
    let labels: Vec<bool> = test.iter().map(|s| s.is_anomalous()).collect();
    let n_train = data.images.train.len();
    let pool = data.train_angles.first().map_or(0, Vec::len) as i64;
    let views = t.train_transforms as i64;
    let transforms = cfg.test.test_transforms as i64;
    let size = cfg.model.image_size;
    let mut trajectory = Vec::new();
    let mut last_scores = Vec::new();
    let mut validation_scores = Vec::new();
    let (mut wall_train, mut wall_eval) = (0.0, 0.0);
    let bar = crate::progress::bar(quiet, (t.meta_epochs * t.sub_epochs) as u64, "train");
    let mut failure = None;
    let extractor = &features.source.extractor;
    let diagnostics = vec![diagnostics::measure(
        extractor,
        &features.inputs,
        None,
        None,
    )];
    'meta: for meta in 0..t.meta_epochs {
        let t2 = Instant::now();
        let (mut loss_sum, mut loss_count) = (0.0, 0usize);
        for _sub in 0..t.sub_epochs {
            let mut order: Vec<i64> = (0..n_train as i64).collect();
            order.shuffle(rng);
            for batch in order.chunks(t.batch_size) {
                let rows = RunFeatures::batch_rows(batch, pool, views, t.redraw_rotations, rng);
                let rows = Tensor::from_slice(&rows).to_device(device);
                let x: Vec<Tensor> = train_maps
                    .iter()
                    .map(|m| m.index_select(0, &rows))
                    .collect();
                let loss = fastflow_loss(&flow.forward(&x));
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    failure = Some(format!(
                        "training loss became {value} at meta-epoch {meta}; the run is stopped \
                         (try a lower train.lr or check the features for NaN)"
                    ));
                    break 'meta;
                }
                opt.backward_step(&loss)
                    .context("the training step failed")?;
                loss_sum += value;
                loss_count += 1;
            }
            bar.inc(1);
        }
        wall_train += t2.elapsed().as_secs_f64();

        let t3 = Instant::now();
        let scores = fastflow_scores(&flow, test_maps, transforms, size);
        if meta + 1 == t.meta_epochs
            && let Some(v) = validation_maps
        {
            validation_scores = fastflow_scores(&flow, v, transforms, size);
        }
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
    }
    bar.finish_and_clear();
    Ok(Trained {
        flow_vs,
        flow: FlowModel::FastFlow(flow),
        trajectory,
        diagnostics,
        last_scores,
        validation_scores,
        failure,
        wall_train,
        wall_eval,
    })
}
