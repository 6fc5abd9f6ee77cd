//! CFlow-AD (Gudovskiy et al., WACV 2022): per feature layer, a conditional flow over single
//! feature vectors ("fibers", one per position), conditioned on a 2D sinusoidal encoding of
//! the position, as anomalib 2.7.0 builds it (`cflow/utils.py`'s `cflow_head` over its own
//! `AllInOneBlock`, `positional_encoding_2d`, `get_logp`), so that its weights load here by
//! their names and the two compute the same numbers.
//!
//! A decoder is `blocks` blocks over `C`-vectors. A block splits a vector (the first ⌈C/2⌉
//! condition), runs `Linear(d, 2d) → ReLU → Linear(2d, 2⌊C/2⌋)` on the first part joined to
//! the position's encoding (`d = ⌈C/2⌉ + P`), scales that by 0.1, and applies
//! `y₂ = x₂·exp(α·tanh(s)) + t`; then the per-channel affine and fixed permutation anomalib's
//! `AllInOneBlock` ends with. The log-likelihood per dimension is
//! `(−C·ln√(2π) − ½‖z‖² + log|det J|) / C`; training minimises `−log σ(·)` of it over
//! shuffled fibers. The anomaly map of a batch is, per layer, `exp(ℓ − max ℓ)` over the
//! batch, upsampled (corners aligned) and summed over layers, then `max − map`; the image
//! score is its maximum. Both maxima are over the whole batch, as anomalib's: a map depends
//! on the batch it was computed with.

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::all_in_one::AffinePermute;

/// CFlow-AD's settings (anomalib's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CflowConfig {
    /// Blocks per decoder.
    pub blocks: usize,
    /// Length `P` of the positional condition (a multiple of 4).
    pub condition: i64,
    /// α of the coupling's scale `α·tanh(s)`.
    pub clamp: f64,
    /// Fibers per step, and per chunk when scoring.
    pub fiber_batch: i64,
}

impl Default for CflowConfig {
    fn default() -> Self {
        CflowConfig {
            blocks: 8,
            condition: 128,
            clamp: 1.9,
            fiber_batch: 64,
        }
    }
}

/// PyTorch's default `nn.Linear` initialisation (weights and bias uniform in ±1/√fan_in).
fn linear(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    let b = 1.0 / (c_in.max(1) as f64).sqrt();
    nn::linear(
        p,
        c_in,
        c_out,
        nn::LinearConfig {
            ws_init: Init::Uniform { lo: -b, up: b },
            bs_init: Some(Init::Uniform { lo: -b, up: b }),
            bias: true,
        },
    )
}

/// One conditional block.
#[derive(Debug)]
struct CondBlock {
    /// `subnet.0` and `subnet.2`, anomalib's names.
    fc1: nn::Linear,
    fc2: nn::Linear,
    affine: AffinePermute,
    split: (i64, i64),
    clamp: f64,
}

impl CondBlock {
    fn new(p: &nn::Path, channels: i64, config: &CflowConfig) -> Self {
        let (c1, c2) = (channels - channels / 2, channels / 2);
        let affine = AffinePermute::new(p, channels, 0);
        let d = c1 + config.condition;
        let subnet = p / "subnet";
        CondBlock {
            fc1: linear(&subnet / "0", d, 2 * d),
            fc2: linear(&subnet / "2", 2 * d, 2 * c2),
            affine,
            split: (c1, c2),
            clamp: config.clamp,
        }
    }

    fn forward(&self, x: &Tensor, condition: &Tensor) -> (Tensor, Tensor) {
        let (c1, c2) = self.split;
        let x1 = x.narrow(1, 0, c1);
        let x2 = x.narrow(1, c1, c2);
        let h = Tensor::cat(&[&x1, condition], 1);
        let a = self.fc2.forward(&self.fc1.forward(&h).relu()) * 0.1;
        let s = a.narrow(1, 0, c2).tanh() * self.clamp;
        let t = a.narrow(1, c2, c2);
        let y2 = x2 * s.exp() + t;
        let log_det = s.sum_dim_intlist([1].as_slice(), false, s.kind());
        let (out, affine_log_det) = self.affine.forward(&Tensor::cat(&[x1, y2], 1));
        (out, log_det + affine_log_det)
    }
}

/// One layer's decoder.
#[derive(Debug)]
pub struct Decoder {
    blocks: Vec<CondBlock>,
    channels: i64,
}

impl Decoder {
    /// `(z, log|det J|)` of fibers `[N, C]` at positions encoded `[N, P]`.
    pub fn forward(&self, fibers: &Tensor, condition: &Tensor) -> (Tensor, Tensor) {
        let mut z = fibers.shallow_clone();
        let mut log_det: Option<Tensor> = None;
        for block in &self.blocks {
            let (y, j) = block.forward(&z, condition);
            z = y;
            log_det = Some(match log_det {
                None => j,
                Some(l) => j + l,
            });
        }
        (z, log_det.expect("at least one block"))
    }

    /// The log-likelihood per dimension of each fiber, `[N]`.
    pub fn log_prob(&self, fibers: &Tensor, condition: &Tensor) -> Tensor {
        let (z, log_det) = self.forward(fibers, condition);
        let c = self.channels as f64;
        let ln_sqrt_2pi = -(2.0 * std::f64::consts::PI).sqrt().ln();
        let squares = z.square().sum_dim_intlist([1].as_slice(), false, z.kind());
        ((squares * 0.5).neg() + c * ln_sqrt_2pi + log_det) / c
    }
}

/// CFlow-AD: one decoder per feature layer.
#[derive(Debug)]
pub struct Cflow {
    decoders: Vec<Decoder>,
    pub config: CflowConfig,
}

impl Cflow {
    /// Builds a decoder per channel count under `p`: `decoders.{l}.module_list.{k}`,
    /// anomalib's names.
    pub fn new(p: &nn::Path, channels: &[i64], config: &CflowConfig) -> Self {
        let decoders = channels
            .iter()
            .enumerate()
            .map(|(l, &c)| {
                let list = p / "decoders" / l / "module_list";
                Decoder {
                    blocks: (0..config.blocks)
                        .map(|k| CondBlock::new(&(&list / k), c, config))
                        .collect(),
                    channels: c,
                }
            })
            .collect();
        Cflow {
            decoders,
            config: *config,
        }
    }

    pub fn decoders(&self) -> &[Decoder] {
        &self.decoders
    }

    /// Each layer's log-likelihood per dimension at every position of `maps` (one
    /// `[B, C, H, W]` per layer), `[B·H·W]` in `(b, h, w)` order, scored in chunks of
    /// `fiber_batch` fibers as anomalib does.
    pub fn log_probs(&self, maps: &[Tensor]) -> Vec<Tensor> {
        self.log_probs_in_chunks(maps, self.config.fiber_batch)
    }

    /// [`Cflow::log_probs`] in chunks of `chunk` fibers: each fiber's value is its own, so
    /// larger chunks only score faster (to float rounding).
    pub fn log_probs_in_chunks(&self, maps: &[Tensor], chunk: i64) -> Vec<Tensor> {
        self.decoders
            .iter()
            .zip(maps)
            .map(|(decoder, map)| {
                let (fibers, condition) = fibers(map, self.config.condition);
                let n = fibers.size()[0];
                let chunks: Vec<Tensor> = (0..n)
                    .step_by(chunk as usize)
                    .map(|start| {
                        let len = chunk.min(n - start);
                        decoder.log_prob(
                            &fibers.narrow(0, start, len),
                            &condition.narrow(0, start, len),
                        )
                    })
                    .collect();
                Tensor::cat(&chunks, 0)
            })
            .collect()
    }
}

/// The fibers of a map `[B, C, H, W]` as rows `[B·H·W, C]` in `(b, h, w)` order, with each
/// row's positional encoding `[B·H·W, P]`.
pub fn fibers(map: &Tensor, condition: i64) -> (Tensor, Tensor) {
    let (b, c, h, w) = map.size4().expect("a [B, C, H, W] map");
    let rows = map.permute([0, 2, 3, 1]).reshape([b * h * w, c]);
    let encoding = positional_encoding_2d(condition, h, w)
        .to_device(map.device())
        .permute([1, 2, 0])
        .reshape([1, h * w, condition])
        .expand([b, h * w, condition], false)
        .reshape([b * h * w, condition]);
    (rows, encoding)
}

/// The 2D sinusoidal encoding `[P, H, W]` (computed on the CPU, in float32, as anomalib's):
/// channels `0..P/2` encode the column, sine and cosine interleaved at frequencies
/// `10000^(−2k/(P/2))`, channels `P/2..P` the row the same way.
pub fn positional_encoding_2d(p: i64, height: i64, width: i64) -> Tensor {
    assert!(
        p % 4 == 0,
        "the condition length must be a multiple of 4, got {p}"
    );
    let half = p / 2;
    let cpu = (Kind::Float, tch::Device::Cpu);
    let div_term = (Tensor::arange_start_step(0.0, half as f64, 2.0, cpu)
        * -(1e4f64.ln() / half as f64))
        .exp();
    let pos_w = Tensor::arange(width, cpu).unsqueeze(1);
    let pos_h = Tensor::arange(height, cpu).unsqueeze(1);
    let along_w = &pos_w * &div_term; // [W, half/2]
    let along_h = &pos_h * &div_term; // [H, half/2]
    let k = half / 2;
    // [half, H, W] for the column part: channel 2j = sin, 2j + 1 = cos, constant along rows.
    let column = |t: Tensor| t.tr().unsqueeze(1).expand([k, height, width], false);
    let row = |t: Tensor| t.tr().unsqueeze(2).expand([k, height, width], false);
    let interleave =
        |sin: Tensor, cos: Tensor| Tensor::stack(&[sin, cos], 1).reshape([half, height, width]);
    let x = interleave(column(along_w.sin()), column(along_w.cos()));
    let y = interleave(row(along_h.sin()), row(along_h.cos()));
    Tensor::cat(&[x, y], 0)
}

/// CFlow-AD's training loss on a batch of fibers: `mean(−log σ(ℓ))`.
pub fn cflow_loss(log_prob: &Tensor) -> Tensor {
    log_prob.log_sigmoid().neg().mean(Kind::Float)
}

/// The anomaly map `[B, H, W]` at `size` from each layer's log-likelihoods (from
/// [`Cflow::log_probs`], layer maps of `(h, w)` each): per layer `exp(ℓ − max ℓ)` over the
/// batch, upsampled bilinearly with corners aligned and summed over layers; then the
/// batch's maximum minus that. Higher is more anomalous.
pub fn cflow_map(
    log_probs: &[Tensor],
    sizes: &[(i64, i64)],
    batch: i64,
    size: (i64, i64),
) -> Tensor {
    let maxima: Vec<f64> = log_probs
        .iter()
        .map(|l| l.max().double_value(&[]))
        .collect();
    let score = cflow_likelihood(log_probs, sizes, batch, size, &maxima);
    score.max() - score
}

/// The map before its final `max − ·`: per layer `exp(ℓ − m)` with the layer's maximum `m`
/// from `maxima`, upsampled bilinearly with corners aligned
/// and summed over layers, `[B, H, W]`. Lower is more anomalous. With maxima fixed on one
/// set of images, every image's map is its own, whatever it is scored with.
pub fn cflow_likelihood(
    log_probs: &[Tensor],
    sizes: &[(i64, i64)],
    batch: i64,
    size: (i64, i64),
    maxima: &[f64],
) -> Tensor {
    let mut score: Option<Tensor> = None;
    for ((l, &(h, w)), m) in log_probs.iter().zip(sizes).zip(maxima) {
        let prob = (l - *m).exp().reshape([batch, 1, h, w]);
        let up = prob
            .upsample_bilinear2d([size.0, size.1], true, None, None)
            .squeeze_dim(1);
        score = Some(match score {
            None => up.zeros_like() + up,
            Some(s) => s + up,
        });
    }
    score.expect("at least one layer")
}

/// The image score `[B]`: the map's maximum.
pub fn cflow_score(map: &Tensor) -> Tensor {
    map.amax([-2, -1].as_slice(), false)
}
