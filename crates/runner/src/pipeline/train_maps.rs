//! A run's third stage for a flow on feature maps (`flow.kind = "fastflow"` or
//! `"csflow"`): the family's network (anomalib's, `adn_flows`) trained on the held feature
//! maps with the run's Adam, over the same meta-epochs, sub-epochs, batches and views as
//! DifferNet's loop, evaluated after every meta-epoch with the family's own image score.
//! CS-Flow's gradients are clipped to norm 1 first, as anomalib trains it.

use std::time::Instant;

use adn_flows::{Adam, CsFlow, CsFlowConfig, FastFlow, FastFlowConfig, FlowKind, Param};
use anyhow::{Context, Result, bail};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor, nn};

use crate::config::Config;
use crate::pipeline::data::RunData;
use crate::pipeline::diagnostics;
use crate::pipeline::features::RunFeatures;
use crate::pipeline::train::{FlowModel, Trained, adam, evaluated, loss_failure};

/// A trained or training flow on feature maps. Its inputs are the extractor's maps in
/// order: FastFlow's one per feature layer, CS-Flow's one layer at three scales.
pub enum MapFlow {
    Fast(FastFlow),
    Cs(CsFlow),
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
            FlowKind::Differnet => bail!("DifferNet's flow is not a flow on maps"),
        }
    }

    /// The training loss of a batch of maps.
    fn loss(&self, x: &[Tensor]) -> Tensor {
        match self {
            MapFlow::Fast(f) => adn_flows::fastflow_loss(&f.forward(x)),
            MapFlow::Cs(f) => {
                let (z, log_det) = f.forward(&three(x));
                adn_flows::csflow_loss(&z, &log_det)
            }
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
        }
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
        }
    }
}

/// CS-Flow's three inputs.
fn three(x: &[Tensor]) -> [Tensor; 3] {
    [0, 1, 2].map(|s| x[s].shallow_clone())
}

/// Per-image scores of maps laid out `[image · transforms, C, H, W]` per input: the
/// family's image score of each view, the mean over the image's views.
pub fn map_scores(flow: &MapFlow, maps: &[Tensor], transforms: i64, size: i64) -> Vec<f64> {
    let rows = maps[0].size()[0];
    let step = (MAP_ROWS / transforms).max(1) * transforms;
    let mut out = Vec::new();
    tch::no_grad(|| {
        let mut start = 0;
        while start < rows {
            let len = step.min(rows - start);
            let chunk: Vec<Tensor> = maps.iter().map(|m| m.narrow(0, start, len)).collect();
            let (_, score) = flow.map_and_score(&chunk, size);
            let s = score
                .reshape([-1, transforms])
                .mean_dim([1].as_slice(), false, Kind::Double)
                .to_device(Device::Cpu);
            out.extend(Vec::<f64>::try_from(s).expect("1-d double tensor"));
            start += len;
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
    let maps = features
        .maps()
        .context("a flow on maps trains on feature maps, and the run has none")?;
    let device = features.source.settings.device;
    tch::manual_seed(cfg.train.seed as i64);
    let flow_vs = nn::VarStore::new(device);
    let dims: Vec<(i64, i64, i64)> = maps
        .train
        .iter()
        .map(|m| {
            let s = m.size();
            (s[1], s[2], s[3])
        })
        .collect();
    let flow = MapFlow::build(cfg, &flow_vs, &dims)?;
    let t = &cfg.train;
    let params = flow_vs
        .trainable_variables()
        .iter()
        .map(Param::plain)
        .collect();
    let mut opt = Adam::new(params, adam(t, t.lr));
    let clip = matches!(flow, MapFlow::Cs(_)).then_some(1.0);

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
                let x: Vec<Tensor> = maps
                    .train
                    .iter()
                    .map(|m| m.index_select(0, &rows))
                    .collect();
                let loss = flow.loss(&x);
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    failure = Some(loss_failure(value, meta));
                    break 'meta;
                }
                match clip {
                    Some(max) => opt.backward_clipped_step(&loss, max),
                    None => opt.backward_step(&loss),
                }
                .context("the training step failed")?;
                loss_sum += value;
                loss_count += 1;
            }
            bar.inc(1);
        }
        wall_train += t2.elapsed().as_secs_f64();

        let t3 = Instant::now();
        let scores = map_scores(&flow, maps.test, transforms, size);
        if meta + 1 == t.meta_epochs
            && let Some(v) = maps.validation
        {
            validation_scores = map_scores(&flow, v, transforms, size);
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
