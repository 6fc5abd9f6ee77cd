//! A run's third stage for a flow on feature maps (`flow.kind = "fastflow"`, `"csflow"` or
//! `"cflow"`): the family's network (anomalib's, `adn_flows`) trained on the held feature
//! maps with the run's Adam, over the same meta-epochs, sub-epochs, batches and views as
//! DifferNet's loop, evaluated after every meta-epoch with the family's own image score.
//! CS-Flow's gradients are clipped to norm 1 first, as anomalib trains it. CFlow-AD trains
//! as anomalib does: per batch of images and per layer, the positions' fibers shuffled and
//! cut into batches of `flow.fiber_batch` (anomalib's 64), one Adam step each on that
//! layer's decoder.

use std::cell::RefCell;
use std::time::Instant;

use adn_backbones::FeatureExtractor;
use adn_flows::optim::backward_step_all_clipped;
use adn_flows::{
    Adam, Cflow, CflowConfig, CsFlow, CsFlowConfig, FastFlow, FastFlowConfig, FlowKind, Param,
};
use anyhow::{Context, Result, bail};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor, nn};

use crate::config::Config;
use crate::pipeline::data::RunData;
use crate::pipeline::diagnostics;
use crate::pipeline::features::RunFeatures;
use crate::pipeline::train::{
    FlowModel, Trained, adam, attention_optimizer, evaluated, loss_failure,
};

/// A trained or training flow on feature maps. Its inputs are the extractor's maps in
/// order: FastFlow's one per feature layer, CS-Flow's one layer at three scales.
pub enum MapFlow {
    Fast(FastFlow),
    Cs(CsFlow),
    Cf(CflowRun),
}

/// CFlow-AD and the maxima its maps are normalised by. anomalib takes them over each scored
/// batch, so an image's score would depend on its batch-mates; the paper's code takes them
/// over the whole test set. Here they are the test set's, fixed at each evaluation
/// ([`map_scores`] with `fix`) and used for the validation images and the pixel maps too.
pub struct CflowRun {
    net: Cflow,
    /// Per layer the largest log-likelihood per dimension, then the largest summed
    /// likelihood.
    maxima: RefCell<Option<(Vec<f64>, f64)>>,
}

/// Refuses maps of `dims` `(C, h, w)` that the run's flow cannot take: CS-Flow's one layer
/// at three scales must halve exactly from scale to scale. Checked on one blank image
/// before any extraction, and again when the flow is built.
pub fn check_dims(cfg: &Config, dims: &[(i64, i64, i64)]) -> Result<()> {
    if cfg.flow.kind != FlowKind::Csflow {
        return Ok(());
    }
    let [(c, h0, w0), (c1, h1, w1), (c2, h2, w2)] = dims else {
        bail!(
            "CS-Flow takes one map at three scales, got {} maps",
            dims.len()
        );
    };
    if c != c1 || c != c2 || *h0 != 2 * h1 || *h1 != 2 * h2 || *w0 != 2 * w1 || *w1 != 2 * w2 {
        bail!(
            "CS-Flow needs the layer's maps at the three scales to halve exactly, got \
             {h0}×{w0}, {h1}×{w1} and {h2}×{w2} at model.image_size = {}; choose an image size \
             that the layer's stride times 4 divides",
            cfg.model.image_size
        );
    }
    Ok(())
}

/// Views scored per forward pass.
const MAP_ROWS: i64 = 64;

/// CFlow-AD's fibers scored per decoder pass (anomalib scores 64 at a time, as it trains;
/// the values are the same, and small chunks cost a third of a run's time here).
const SCORE_FIBERS: i64 = 8192;

impl MapFlow {
    /// The run's flow under `vs` for maps of `dims` `(C, h, w)`.
    pub fn build(cfg: &Config, vs: &nn::VarStore, dims: &[(i64, i64, i64)]) -> Result<MapFlow> {
        let f = &cfg.flow;
        match f.kind {
            FlowKind::Fastflow => Ok(MapFlow::Fast(FastFlow::new(
                &vs.root(),
                dims,
                &FastFlowConfig {
                    flow_steps: f.coupling_blocks,
                    ..FastFlowConfig::default()
                },
            ))),
            FlowKind::Csflow => {
                check_dims(cfg, dims)?;
                let c = dims[0].0;
                Ok(MapFlow::Cs(CsFlow::new(
                    &vs.root(),
                    c,
                    &CsFlowConfig {
                        blocks: f.coupling_blocks,
                        hidden: f.hidden,
                        clamp: f.clamp,
                    },
                )))
            }
            FlowKind::Cflow => {
                let channels: Vec<i64> = dims.iter().map(|d| d.0).collect();
                Ok(MapFlow::Cf(CflowRun {
                    net: Cflow::new(
                        &vs.root(),
                        &channels,
                        &CflowConfig {
                            blocks: f.coupling_blocks,
                            clamp: f.clamp,
                            fiber_batch: f.fiber_batch,
                            ..CflowConfig::default()
                        },
                    ),
                    maxima: RefCell::new(None),
                }))
            }
            FlowKind::Differnet => bail!("DifferNet's flow is not a flow on maps"),
        }
    }

    /// The training loss of a batch of maps (FastFlow and CS-Flow; CFlow-AD trains on
    /// fibers, [`train_cflow_batch`]).
    fn loss(&self, x: &[Tensor]) -> Tensor {
        match self {
            MapFlow::Fast(f) => adn_flows::fastflow_loss(&f.forward(x)),
            MapFlow::Cs(f) => {
                let (z, log_det) = f.forward(&three(x));
                adn_flows::csflow_loss(&z, &log_det)
            }
            MapFlow::Cf(_) => unreachable!("CFlow-AD trains on fibers"),
        }
    }

    /// The anomaly maps `[N, S, S]` of a batch, and the image scores `[N]` (higher is more
    /// anomalous), both the family's own.
    pub fn map_and_score(&self, x: &[Tensor], size: i64) -> (Tensor, Tensor) {
        match self {
            MapFlow::Fast(f) => {
                let map = adn_flows::fastflow_map(&f.forward(x), (size, size));
                let score = adn_flows::fastflow_score(&map);
                (map.squeeze_dim(1), score)
            }
            MapFlow::Cs(f) => {
                let (z, _) = f.forward(&three(x));
                (
                    adn_flows::csflow_map(&z, (size, size)).squeeze_dim(1),
                    adn_flows::csflow_score(&z),
                )
            }
            MapFlow::Cf(f) => f.map_and_score(&f.net.log_probs_in_chunks(x, SCORE_FIBERS), x, size),
        }
    }

    /// The family's own anomaly maps `[N, S, S]` of the normalised, unrotated images `xs`
    /// at `S = size`, through `extractor`'s feature maps, without autograd.
    pub fn image_maps(&self, extractor: &FeatureExtractor, xs: &Tensor, size: i64) -> Tensor {
        tch::no_grad(|| {
            let features: Vec<Tensor> = extractor
                .feature_maps_per_scale(xs, false)
                .into_iter()
                .map(|m| m.to_kind(Kind::Float))
                .collect();
            self.map_and_score(&features, size).0
        })
    }

    /// What the map is, in words, for the record.
    pub fn describe(&self) -> &'static str {
        match self {
            MapFlow::Fast(_) => {
                "FastFlow's map: −exp(−½·mean over channels of z²) per position of each \
                 feature layer, upsampled bilinearly to the input and averaged over the layers; \
                 the unrotated image, no blur"
            }
            MapFlow::Cs(_) => {
                "CS-Flow's map: the mean over channels of z² per position at each of the three \
                 scales, upsampled bilinearly to the input and multiplied; the unrotated image, \
                 no blur"
            }
            MapFlow::Cf(_) => {
                "CFlow-AD's map: per feature layer exp(ℓ − max ℓ) of each position's \
                 log-likelihood per dimension, upsampled bilinearly (corners aligned) to the \
                 input and summed, subtracted from its maximum; both maxima over the test set; \
                 the unrotated image, no blur"
            }
        }
    }
}

impl CflowRun {
    /// The map and score of maps `x` from their log-likelihoods `log_probs`, with the fixed
    /// maxima, or unfixed (anomalib's) with the maxima of this batch.
    fn map_and_score(&self, log_probs: &[Tensor], x: &[Tensor], size: i64) -> (Tensor, Tensor) {
        let fixed = self.maxima.borrow().clone();
        let (layer_max, map_max) = fixed.unwrap_or_else(|| {
            let layer_max = log_probs.iter().map(|l| l.max().double_value(&[]));
            let layer_max: Vec<f64> = layer_max.collect();
            let s = self.likelihood(log_probs, x, size, &layer_max);
            (layer_max, s.max().double_value(&[]))
        });
        let map = self.likelihood(log_probs, x, size, &layer_max).neg() + map_max;
        let score = adn_flows::cflow_score(&map);
        (map, score)
    }

    /// The summed likelihood `[N, S, S]` of maps `x` from their log-likelihoods.
    fn likelihood(&self, log_probs: &[Tensor], x: &[Tensor], size: i64, max: &[f64]) -> Tensor {
        let sizes: Vec<(i64, i64)> = x.iter().map(|m| (m.size()[2], m.size()[3])).collect();
        let batch = x[0].size()[0];
        adn_flows::cflow_likelihood(log_probs, &sizes, batch, (size, size), max)
    }

    /// Fixes the maxima on the row chunks `chunks` of maps (every chunk one input per
    /// layer), running each decoder once; returns each chunk's log-likelihoods, for
    /// scoring.
    fn fix_maxima(&self, chunks: &[Vec<Tensor>], size: i64) -> Vec<Vec<Tensor>> {
        let log_probs: Vec<Vec<Tensor>> = chunks
            .iter()
            .map(|x| self.net.log_probs_in_chunks(x, SCORE_FIBERS))
            .collect();
        let layers = chunks.first().map_or(0, Vec::len);
        let mut layer_max = vec![f64::NEG_INFINITY; layers];
        for l in &log_probs {
            for (m, l) in layer_max.iter_mut().zip(l) {
                *m = m.max(l.max().double_value(&[]));
            }
        }
        let map_max = log_probs
            .iter()
            .zip(chunks)
            .map(|(l, x)| {
                self.likelihood(l, x, size, &layer_max)
                    .max()
                    .double_value(&[])
            })
            .fold(f64::NEG_INFINITY, f64::max);
        *self.maxima.borrow_mut() = Some((layer_max, map_max));
        log_probs
    }
}

/// Rows scored per chunk: whole images of `transforms` views, at most [`MAP_ROWS`] rows
/// (unless one image has more views).
fn score_rows(transforms: i64) -> i64 {
    (MAP_ROWS / transforms).max(1) * transforms
}

/// `maps` (one tensor per layer) cut into chunks of `step` rows.
fn row_chunks(maps: &[Tensor], step: i64) -> Vec<Vec<Tensor>> {
    let rows = maps[0].size()[0];
    (0..rows)
        .step_by(step as usize)
        .map(|start| {
            let len = step.min(rows - start);
            maps.iter().map(|m| m.narrow(0, start, len)).collect()
        })
        .collect()
}

/// Fixes a CFlow-AD flow's maxima on `maps` (laid out as [`map_scores`] takes them), as
/// an evaluation with `fix` does, without scoring; nothing for the other flows.
pub fn fix_cflow_maxima(flow: &MapFlow, maps: &[Tensor], transforms: i64, size: i64) {
    if let MapFlow::Cf(f) = flow {
        tch::no_grad(|| f.fix_maxima(&row_chunks(maps, score_rows(transforms)), size));
    }
}

/// CS-Flow's three inputs.
fn three(x: &[Tensor]) -> [Tensor; 3] {
    [0, 1, 2].map(|s| x[s].shallow_clone())
}

/// Per-image scores of maps laid out `[image · transforms, C, H, W]` per input: the
/// family's image score of each view, the mean over the image's views. With `fix`,
/// CFlow-AD's maxima are first taken over these maps and kept for later scoring; the
/// log-likelihoods they were taken from are scored, so its decoders run once.
pub fn map_scores(
    flow: &MapFlow,
    maps: &[Tensor],
    transforms: i64,
    size: i64,
    fix: bool,
) -> Vec<f64> {
    let chunks = row_chunks(maps, score_rows(transforms));
    let mut out = Vec::new();
    tch::no_grad(|| {
        let scores: Vec<Tensor> = match (flow, fix) {
            (MapFlow::Cf(f), true) => {
                let log_probs = f.fix_maxima(&chunks, size);
                let scored = log_probs.iter().zip(&chunks);
                scored.map(|(l, x)| f.map_and_score(l, x, size).1).collect()
            }
            _ => chunks
                .iter()
                .map(|x| flow.map_and_score(x, size).1)
                .collect(),
        };
        for score in scores {
            let s = score
                .reshape([-1, transforms])
                .mean_dim([1].as_slice(), false, Kind::Double)
                .to_device(Device::Cpu);
            out.extend(Vec::<f64>::try_from(s).expect("1-d double tensor"));
        }
    });
    out
}

/// Trains the run's flow on `features`' maps, drawing batches and views from `rng`.
pub fn train(
    cfg: &Config,
    data: &RunData,
    features: &RunFeatures,
    quiet: bool,
    rng: &mut ChaCha8Rng,
) -> Result<Trained> {
    let device = features.source.settings.device;
    tch::manual_seed(cfg.train.seed as i64);
    let flow_vs = nn::VarStore::new(device);
    let dims = features.source.map_dims();
    let flow = MapFlow::build(cfg, &flow_vs, &dims)?;
    let t = &cfg.train;
    let mut opts = optimizers(&flow, &flow_vs, t);
    let clip = matches!(flow, MapFlow::Cs(_)).then_some(1.0);
    let extractor = &features.source.extractor;
    // Jointly trained attention: its own Adam, at `lr · attention_lr_scale`.
    let mut attention_opt = features
        .is_joint()
        .then(|| attention_optimizer(extractor, t));

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
                let x = features.train_maps(&rows);
                if let MapFlow::Cf(f) = &flow {
                    match train_cflow_batch(&f.net, &x, &mut opts, attention_opt.as_mut(), rng)? {
                        Ok((sum, count)) => {
                            loss_sum += sum;
                            loss_count += count;
                        }
                        Err(value) => {
                            failure = Some(loss_failure(value, meta));
                            break 'meta;
                        }
                    }
                    continue;
                }
                let loss = flow.loss(&x);
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    failure = Some(loss_failure(value, meta));
                    break 'meta;
                }
                let mut stepped: Vec<&mut Adam> = opts.iter_mut().collect();
                stepped.extend(attention_opt.as_mut());
                backward_step_all_clipped(&loss, &mut stepped, clip)
                    .context("the training step failed")?;
                loss_sum += value;
                loss_count += 1;
            }
            bar.inc(1);
        }
        wall_train += t2.elapsed().as_secs_f64();

        let t3 = Instant::now();
        let scores = map_scores(&flow, &features.test_maps(), transforms, size, true);
        if meta + 1 == t.meta_epochs
            && let Some(v) = features.validation_maps()
        {
            validation_scores = map_scores(&flow, &v, transforms, size, false);
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
    }
    bar.finish_and_clear();
    Ok(Trained {
        flow_vs,
        flow: FlowModel::Maps(flow),
        trajectory,
        diagnostics,
        last_scores,
        validation_scores,
        failure,
        wall_train,
        wall_eval,
    })
}

/// The run's Adam over the flow's weights: one for FastFlow and CS-Flow, one per decoder
/// for CFlow-AD (anomalib has one Adam over all decoders, but a step leaves the decoders
/// without a gradient untouched, their step counts included: the same thing).
fn optimizers(flow: &MapFlow, vs: &nn::VarStore, t: &crate::config::TrainConfig) -> Vec<Adam> {
    let variables = vs.variables();
    let mut named: Vec<(&String, &Tensor)> = variables
        .iter()
        .filter(|(_, v)| v.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    let adam_over = |prefix: &str| {
        let params = named
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, v)| Param::plain(v))
            .collect();
        Adam::new(params, adam(t, t.lr))
    };
    match flow {
        MapFlow::Cf(f) => (0..f.net.decoders().len())
            .map(|l| adam_over(&format!("decoders.{l}.")))
            .collect(),
        _ => vec![adam_over("")],
    }
}

/// One batch of maps for CFlow-AD, as anomalib's training step: per layer, the fibers of
/// every position shuffled and cut into batches of `fiber_batch` (the remainder dropped,
/// at least one batch), one step of the layer's Adam each. Jointly trained attention
/// (`attention`) then takes one step per batch of images, on the mean of the fiber steps'
/// gradients with respect to the maps, each taken as its step saw the decoder. Returns
/// the sum and count of the losses, or the first non-finite loss.
fn train_cflow_batch(
    net: &Cflow,
    x: &[Tensor],
    opts: &mut [Adam],
    mut attention: Option<&mut Adam>,
    rng: &mut ChaCha8Rng,
) -> Result<std::result::Result<(f64, usize), f64>> {
    let fiber_batch = net.config.fiber_batch;
    let (mut sum, mut count) = (0.0, 0);
    let mut surrogate: Option<Tensor> = None;
    for ((decoder, map), opt) in net.decoders().iter().zip(x).zip(opts.iter_mut()) {
        let (fibers, condition) = adn_flows::fibers(map, net.config.condition);
        let held = fibers.detach();
        let mut to_maps = attention.is_some().then(|| held.zeros_like());
        let n = fibers.size()[0];
        let mut order: Vec<i64> = (0..n).collect();
        order.shuffle(rng);
        let len = fiber_batch.min(n) as usize;
        let steps = order.len() / len;
        for idx in order.chunks_exact(len) {
            let idx = Tensor::from_slice(idx).to_device(map.device());
            let picked = held.index_select(0, &idx);
            let picked = match to_maps {
                Some(_) => picked.set_requires_grad(true),
                None => picked,
            };
            let log_prob = decoder.log_prob(&picked, &condition.index_select(0, &idx));
            let loss = adn_flows::cflow_loss(&log_prob);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Ok(Err(value));
            }
            let mut leaves = opt.leaves();
            let decoder_leaves = leaves.len();
            if to_maps.is_some() {
                leaves.push(picked.shallow_clone());
            }
            let grads = Tensor::f_run_backward(&[&loss], &leaves, false, false)
                .context("the training step failed")?;
            opt.step(&grads[..decoder_leaves]);
            if let Some(acc) = to_maps.as_mut() {
                let _ = acc.index_add_(0, &idx, &grads[grads.len() - 1]);
            }
            sum += value;
            count += 1;
        }
        if let Some(acc) = to_maps {
            let term = (fibers * acc / steps.max(1) as f64).sum(Kind::Float);
            surrogate = Some(match surrogate {
                None => term,
                Some(s) => s + term,
            });
        }
    }
    if let (Some(att), Some(s)) = (attention.as_mut(), surrogate) {
        att.backward_step(&s)
            .context("the attention's step failed")?;
    }
    Ok(Ok((sum, count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(flow: &MapFlow, maps: &[Tensor], fix: bool) -> Vec<f64> {
        map_scores(flow, maps, 1, 16, fix)
    }

    #[test]
    fn cflow_scores_from_the_held_log_likelihoods_are_a_rescoring_s_in_every_chunk() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = CflowConfig {
            blocks: 2,
            ..CflowConfig::default()
        };
        let flow = MapFlow::Cf(CflowRun {
            net: Cflow::new(&vs.root(), &[6], &config),
            maxima: RefCell::new(None),
        });
        // 43 images of 3 views: 129 rows, scored in chunks of 63, 63 and 3.
        let maps = [Tensor::randn([129, 6, 4, 4], (Kind::Float, Device::Cpu))];
        let held = map_scores(&flow, &maps, 3, 8, true);
        // The maxima are fixed now: this runs the decoders again, chunk by chunk.
        let again = map_scores(&flow, &maps, 3, 8, false);
        assert_eq!(held.len(), 43);
        for (i, (a, b)) in held.iter().zip(&again).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "image {i}: {a} {b}"
            );
        }
        // The images differ, so a chunk scored as another would show.
        assert!(held.iter().any(|s| (s - held[0]).abs() > 1e-6), "{held:?}");
    }

    #[test]
    fn cflow_scores_an_image_the_same_in_any_batch_once_its_maxima_are_fixed() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = CflowConfig {
            blocks: 2,
            ..CflowConfig::default()
        };
        let run = || CflowRun {
            net: Cflow::new(&vs.root(), &[6, 10], &config),
            maxima: RefCell::new(None),
        };
        let flow = MapFlow::Cf(run());
        let cpu = (Kind::Float, Device::Cpu);
        let maps = [
            Tensor::randn([10, 6, 8, 8], cpu),
            Tensor::randn([10, 10, 4, 4], cpu),
        ];
        let all = scored(&flow, &maps, true);
        // The maxima are the set's: its smallest map value is exactly 0.
        let (map, _) = tch::no_grad(|| flow.map_and_score(&maps, 16));
        assert!(map.min().double_value(&[]).abs() < 1e-6);
        // Three of the images scored on their own, with the fixed maxima: the same scores.
        let idx = Tensor::from_slice(&[7i64, 2, 5]);
        let some: Vec<Tensor> = maps.iter().map(|m| m.index_select(0, &idx)).collect();
        let alone = scored(&flow, &some, false);
        for (a, i) in alone.iter().zip([7, 2, 5]) {
            assert!(
                (a - all[i]).abs() <= 1e-5 * all[i].abs().max(1e-3),
                "{a} {}",
                all[i]
            );
        }
        // anomalib's maxima of each batch would have scored them differently.
        let unfixed = MapFlow::Cf(CflowRun {
            net: match flow {
                MapFlow::Cf(f) => f.net,
                _ => unreachable!(),
            },
            maxima: RefCell::new(None),
        });
        let batch_wise = scored(&unfixed, &some, false);
        assert!(
            batch_wise
                .iter()
                .zip(&alone)
                .any(|(b, a)| (b - a).abs() > 1e-3),
            "{batch_wise:?} {alone:?}"
        );
    }
}
