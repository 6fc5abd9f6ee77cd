//! What the training loop asks of the flow's inputs, answered the same way for fixed
//! features and for jointly trained attention, so that the loop reads as DifferNet's
//! algorithm: which rows a batch takes, those rows' features, every test row, every
//! validation row.
//!
//! Fixed features (a frozen extractor) are picked from the tensors computed once. Jointly
//! trained attention (`model.attention_training = "joint"`) keeps the frozen prefix of
//! every row, everything before the first attention position, and runs the attention
//! blocks and the rest of the backbone at every step with autograd, so the attention
//! learns from the flow's likelihood.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::{Inputs, RunFeatures};

/// Rows forwarded together when a joint run's features are recomputed without autograd.
const EVAL_CHUNK: i64 = 64;

impl RunFeatures {
    /// A flow on maps' training maps of `rows`, per scale and layer: picked from the held
    /// maps, or computed through the jointly trained attention with autograd.
    pub fn train_maps(&self, rows: &Tensor) -> Vec<Tensor> {
        match &self.inputs {
            Inputs::Maps { train, .. } => train.iter().map(|m| m.index_select(0, rows)).collect(),
            Inputs::Joint { train, .. } => {
                let picked: Vec<Tensor> = train.iter().map(|p| p.index_select(0, rows)).collect();
                self.source.extractor.maps_from_prefix(&picked, true)
            }
            Inputs::Fixed { .. } => unreachable!("maps are a flow on maps'"),
        }
    }

    /// A flow on maps' every test map, per scale and layer, without autograd.
    pub fn test_maps(&self) -> Vec<Tensor> {
        match &self.inputs {
            Inputs::Maps { test, .. } => test.iter().map(Tensor::shallow_clone).collect(),
            Inputs::Joint { test, .. } => self.maps_in_chunks(test),
            Inputs::Fixed { .. } => unreachable!("maps are a flow on maps'"),
        }
    }

    /// A flow on maps' every validation map, per scale and layer, without autograd; `None`
    /// when the run has no validation images.
    pub fn validation_maps(&self) -> Option<Vec<Tensor>> {
        match &self.inputs {
            Inputs::Maps { validation, .. } => validation
                .as_ref()
                .map(|v| v.iter().map(Tensor::shallow_clone).collect()),
            Inputs::Joint { validation, .. } => validation.as_ref().map(|v| self.maps_in_chunks(v)),
            Inputs::Fixed { .. } => unreachable!("maps are a flow on maps'"),
        }
    }

    /// The maps of every row of `prefixes`, [`EVAL_CHUNK`] rows at a time, without autograd.
    fn maps_in_chunks(&self, prefixes: &[Tensor]) -> Vec<Tensor> {
        in_chunks_each(prefixes, |picked| {
            self.source.extractor.maps_from_prefix(picked, false)
        })
    }

    /// Whether the attention trains with the flow.
    pub fn is_joint(&self) -> bool {
        matches!(self.inputs, Inputs::Joint { .. })
    }

    /// The fixed training features, when they do not change during training.
    pub fn fixed_train(&self) -> Option<&Tensor> {
        match &self.inputs {
            Inputs::Fixed { train, .. } => Some(train),
            Inputs::Joint { .. } | Inputs::Maps { .. } => None,
        }
    }

    /// The training rows of a batch of images: `views` rows `i·pool + v` per image `i`,
    /// each rotation `v` drawn independently from the image's pool of `pool` (DifferNet's
    /// RandomRotation per view) under `redraw`, else the whole pool, which then holds the
    /// once-drawn views.
    pub fn batch_rows(
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

    /// The training feature rows `rows`: picked from the fixed features, or computed
    /// through the attention with autograd.
    pub fn train_rows(&self, rows: &Tensor) -> Tensor {
        match &self.inputs {
            Inputs::Fixed { train, .. } => train.index_select(0, rows),
            Inputs::Joint { train, .. } => {
                let picked: Vec<Tensor> = train.iter().map(|p| p.index_select(0, rows)).collect();
                self.source.extractor.pooled_from_prefix(&picked, true)
            }
            Inputs::Maps { .. } => unreachable!("pooled rows are DifferNet's"),
        }
    }

    /// Every test feature row `[images · views, dim]`, without autograd.
    pub fn test_rows(&self) -> Tensor {
        match &self.inputs {
            Inputs::Fixed { test, .. } => test.shallow_clone(),
            Inputs::Joint { test, .. } => in_chunks(test, |picked| {
                self.source.extractor.pooled_from_prefix(picked, false)
            }),
            Inputs::Maps { .. } => unreachable!("pooled rows are DifferNet's"),
        }
    }

    /// Every view of the validation images (held-out good ones, then the labelled folder's),
    /// without autograd; `None` when the run has none.
    pub fn validation_rows(&self) -> Option<Tensor> {
        match &self.inputs {
            Inputs::Fixed { validation, .. } => validation.as_ref().map(Tensor::shallow_clone),
            Inputs::Joint { validation, .. } => validation.as_ref().map(|prefixes| {
                in_chunks(prefixes, |picked| {
                    self.source.extractor.pooled_from_prefix(picked, false)
                })
            }),
            Inputs::Maps { .. } => unreachable!("pooled rows are DifferNet's"),
        }
    }

    /// A joint run's training rows through the backbone alone, attention skipped: the
    /// pretrained backbone's own features of the same views, which the volume charge
    /// compares each batch with. `None` for fixed features.
    pub fn train_without_attention(&self) -> Option<Tensor> {
        match &self.inputs {
            Inputs::Fixed { .. } | Inputs::Maps { .. } => None,
            Inputs::Joint { train, .. } => Some(in_chunks(train, |picked| {
                self.source
                    .extractor
                    .pooled_from_prefix_without_attention(picked)
            })),
        }
    }
}

/// `f` over every row of `prefixes`, [`EVAL_CHUNK`] rows at a time, without autograd.
fn in_chunks(prefixes: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) -> Tensor {
    let mut out = in_chunks_each(prefixes, |picked| vec![f(picked)]);
    out.remove(0)
}

/// [`in_chunks`] for an `f` with several outputs: each concatenated over the chunks, as
/// float.
fn in_chunks_each(prefixes: &[Tensor], f: impl Fn(&[Tensor]) -> Vec<Tensor>) -> Vec<Tensor> {
    let rows = prefixes[0].size()[0];
    tch::no_grad(|| {
        let mut per_output: Vec<Vec<Tensor>> = Vec::new();
        for start in (0..rows).step_by(EVAL_CHUNK as usize) {
            let len = EVAL_CHUNK.min(rows - start);
            let picked: Vec<Tensor> = prefixes.iter().map(|p| p.narrow(0, start, len)).collect();
            let outputs = f(&picked);
            per_output.resize_with(outputs.len(), Vec::new);
            for (chunks, t) in per_output.iter_mut().zip(outputs) {
                chunks.push(t.to_kind(Kind::Float));
            }
        }
        per_output.iter().map(|c| Tensor::cat(c, 0)).collect()
    })
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
            .map(|_| RunFeatures::batch_rows(&images, 4, 2, true, &mut rng))
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
            assert_eq!(
                RunFeatures::batch_rows(&[2, 0], 2, 2, false, &mut rng),
                vec![4, 5, 0, 1]
            );
        }
    }
}
