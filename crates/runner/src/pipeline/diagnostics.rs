//! What a run records about its model before training and after every meta-epoch
//! (`metrics.json`, `diagnostics`): the pooled features' norms per layer and scale, the
//! attention gates, and the loss split into its parts. A collapse of jointly trained
//! attention shows here as shrinking norms and a falling `0.5·‖z‖²` part.

use adn_backbones::{FeatureBlock, FeatureExtractor};
use adn_record::{Diagnostics, GateRecord, LayerNorm, LossParts};
use tch::{Device, Kind, Tensor};

use crate::pipeline::features::Inputs;

/// Rows of each set that a joint run's diagnostics look at, evenly spaced: enough for
/// stable means, cheap beside a meta-epoch.
const SAMPLE_ROWS: i64 = 128;

/// Mean L2 norm over the rows of `x`, of the whole vector and of each block.
fn norms(x: &Tensor, blocks: &[FeatureBlock]) -> (f64, Vec<f64>) {
    let mean_norm = |t: &Tensor| {
        t.to_kind(Kind::Float)
            .square()
            .sum_dim_intlist(1, false, Kind::Float)
            .sqrt()
            .mean(Kind::Float)
            .double_value(&[])
    };
    let per_block = blocks
        .iter()
        .map(|b| mean_norm(&x.narrow(1, b.start, b.width)))
        .collect();
    (mean_norm(x), per_block)
}

/// Up to [`SAMPLE_ROWS`] evenly spaced rows of every prefix.
fn sample(prefixes: &[Tensor]) -> Vec<Tensor> {
    let rows = prefixes[0].size()[0];
    // Rounded up, so that the sample spans every row to the last image.
    let step = ((rows + SAMPLE_ROWS - 1) / SAMPLE_ROWS).max(1);
    let picked = Tensor::arange_start_step(0, rows, step, (Kind::Int64, Device::Cpu))
        .to_device(prefixes[0].device());
    prefixes
        .iter()
        .map(|p| p.index_select(0, &picked))
        .collect()
}

/// Measures the model now: `meta_epoch` is `None` before training, `loss` the meta-epoch's
/// mean loss parts. Fixed features are measured whole; a joint run's on a sample of rows
/// through the attention as it stands, gates included.
pub fn measure(
    extractor: &FeatureExtractor,
    inputs: &Inputs,
    meta_epoch: Option<usize>,
    loss: Option<LossParts>,
) -> Diagnostics {
    let blocks = extractor.feature_blocks();
    let (train, test, gates) = match inputs {
        Inputs::Fixed { train, test, .. } => {
            (train.shallow_clone(), test.shallow_clone(), Vec::new())
        }
        Inputs::Joint { train, test, .. } => {
            let (train, gates) = extractor.probe_from_prefix(&sample(train));
            let (test, _) = extractor.probe_from_prefix(&sample(test));
            let gates = gates
                .into_iter()
                .map(|g| GateRecord {
                    position: g.position,
                    scale: g.scale,
                    gate: g.gate,
                    mean: g.mean,
                    sd: g.sd,
                })
                .collect();
            (train, test, gates)
        }
        // The maps pooled as DifferNet pools them (the mean over positions, the layers side
        // by side; one scale), so the same measures describe them.
        Inputs::Maps { train, test, .. } => {
            let pooled = |maps: &[Tensor]| {
                let means: Vec<Tensor> = maps
                    .iter()
                    .map(|m| m.mean_dim([2, 3].as_slice(), false, Kind::Float))
                    .collect();
                Tensor::cat(&means, 1)
            };
            (pooled(train), pooled(test), Vec::new())
        }
    };
    let (norm_train, train_blocks) = norms(&train, &blocks);
    let (norm_test, test_blocks) = norms(&test, &blocks);
    let feature_norms = blocks
        .iter()
        .zip(train_blocks.iter().zip(&test_blocks))
        .map(|(b, (&train, &test))| LayerNorm {
            layer: b.layer.clone(),
            scale: b.scale,
            train,
            test,
        })
        .collect();
    Diagnostics {
        meta_epoch,
        loss,
        norm_train,
        norm_test,
        feature_norms,
        gates,
    }
}

/// Sums of the loss parts over a meta-epoch's batches.
#[derive(Default)]
pub struct LossSums {
    z: f64,
    neg_log_det: f64,
    volume_charge: f64,
    batches: usize,
}

impl LossSums {
    pub fn add(&mut self, z: f64, neg_log_det: f64, volume_charge: f64) {
        self.z += z;
        self.neg_log_det += neg_log_det;
        self.volume_charge += volume_charge;
        self.batches += 1;
    }

    /// The means; `None` when no batch was added.
    pub fn mean(&self) -> Option<LossParts> {
        let n = self.batches as f64;
        (self.batches > 0).then(|| LossParts {
            z: self.z / n,
            neg_log_det: self.neg_log_det / n,
            volume_charge: self.volume_charge / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_are_per_row_means_over_the_whole_vector_and_each_block() {
        // Rows (3, 4 | 0) and (0, 0 | 2): whole norms 5 and 2, blocks 5, 0 and 0, 2.
        let x = Tensor::from_slice(&[3f32, 4., 0., 0., 0., 2.]).reshape([2, 3]);
        let block = |start, width| FeatureBlock {
            layer: "l".into(),
            scale: 0,
            start,
            width,
        };
        let (whole, per) = norms(&x, &[block(0, 2), block(2, 1)]);
        assert!((whole - 3.5).abs() < 1e-6);
        assert!((per[0] - 2.5).abs() < 1e-6 && (per[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn samples_are_evenly_spaced_and_capped() {
        let p = Tensor::arange(1000, (Kind::Float, Device::Cpu)).reshape([1000, 1]);
        let s = &sample(std::slice::from_ref(&p))[0];
        // Every 8th row: 125 rows, the last of them 992.
        assert_eq!(s.size()[0], 125);
        assert_eq!(s.double_value(&[1, 0]), 8.0);
        assert_eq!(s.double_value(&[124, 0]), 992.0);
        let small = Tensor::arange(5, (Kind::Float, Device::Cpu)).reshape([5, 1]);
        assert_eq!(sample(&[small])[0].size()[0], 5);
    }
}
