//! `metrics.json`: the image-level AUROC of a run, after every meta-epoch and summarised.

use serde::{Deserialize, Serialize};

/// One evaluation after a meta-epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalPoint {
    /// Counted from 0.
    pub meta_epoch: usize,
    /// Mean training loss over the meta-epoch.
    pub train_loss: f64,
    pub auroc: f64,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRecord {
    /// AUROC after the last meta-epoch: the headline number, no model selection.
    pub auroc_last: f64,
    /// Maximum AUROC over all evaluations. Selected on the test set, as DifferNet-style
    /// papers report it; optimistic by construction.
    pub auroc_best: f64,
    pub auroc_best_epoch: usize,
    pub auroc_best_selection: String,
    /// AUROC at the meta-epoch with the lowest mean training loss (selection without labels).
    pub auroc_min_loss: f64,
    pub auroc_min_loss_epoch: usize,
    pub trajectory: Vec<EvalPoint>,
}

impl MetricsRecord {
    /// The summary of a run's evaluations; `None` when there were none. The earliest
    /// evaluation wins ties.
    pub fn from_trajectory(trajectory: Vec<EvalPoint>) -> Option<MetricsRecord> {
        let first = *trajectory.first()?;
        let last = *trajectory.last()?;
        let best = trajectory
            .iter()
            .fold(first, |b, p| if p.auroc > b.auroc { *p } else { b });
        let min_loss =
            trajectory.iter().fold(
                first,
                |b, p| {
                    if p.train_loss < b.train_loss { *p } else { b }
                },
            );
        Some(MetricsRecord {
            auroc_last: last.auroc,
            auroc_best: best.auroc,
            auroc_best_epoch: best.meta_epoch,
            auroc_best_selection: "maximum over evaluations, selected on the test set".into(),
            auroc_min_loss: min_loss.auroc,
            auroc_min_loss_epoch: min_loss.meta_epoch,
            trajectory,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_last_the_best_and_the_lowest_loss_with_early_ties() {
        let p = |meta_epoch, train_loss, auroc| EvalPoint {
            meta_epoch,
            train_loss,
            auroc,
        };
        let m = MetricsRecord::from_trajectory(vec![
            p(0, 1.0, 0.7),
            p(1, 0.5, 0.9),
            p(2, 0.5, 0.9),
            p(3, 0.7, 0.8),
        ])
        .unwrap();
        assert_eq!(m.auroc_last, 0.8);
        assert_eq!((m.auroc_best, m.auroc_best_epoch), (0.9, 1));
        assert_eq!((m.auroc_min_loss, m.auroc_min_loss_epoch), (0.9, 1));
        assert!(MetricsRecord::from_trajectory(Vec::new()).is_none());
    }
}
