//! What training minimises: DifferNet's negative log-likelihood of a batch of feature rows
//! under the flow, plus, for jointly trained attention, the volume charge against the same
//! rows without attention when `train.volume_charge` asks for it. Jointly trained
//! attention's inputs change every step, so each batch is standardised by its own
//! statistics, which are summed over the meta-epoch for scoring.

use adn_flows::{DifferNetFlow, nll_loss, volume_charge};
use tch::Tensor;

/// One batch's loss and the flow outputs it came from.
pub struct BatchLoss {
    pub loss: Tensor,
    pub z: Tensor,
    pub log_det: Tensor,
    /// The weighted volume charge in the loss (0 without one).
    pub charge: f64,
}

/// The flow's NLL of the batch `x`. With `moments`, `x` is standardised by its own
/// statistics (jointly trained attention), which are added to the meta-epoch's sums. With
/// `charge = (reference, rows, weight)`, the volume charge of `x` against the same rows of
/// `reference` (the backbone without attention), times `weight`, is added.
pub fn batch_loss(
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
pub struct MomentSums {
    sums: Option<(Tensor, Tensor)>,
    rows: i64,
}

impl MomentSums {
    pub fn add(&mut self, x: &Tensor) {
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
    pub fn mean_sd(&self) -> Option<(Tensor, Tensor)> {
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
