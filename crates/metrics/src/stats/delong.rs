//! DeLong's variance of an AUROC and the z-test for two correlated AUROCs (Sun & Xu's
//! O(n log n) midrank algorithm).

use crate::special::{normal_quantile, normal_sf};
use crate::{MetricsError, check};

use super::*;

/// DeLong's estimate of an AUROC's sampling variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeLongAuroc {
    pub auroc: f64,
    pub variance: f64,
    pub std_error: f64,
}

/// DeLong's test of two correlated AUROCs (variants A and B scored on the same images).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeLongComparison {
    pub auroc_a: f64,
    pub auroc_b: f64,
    /// `auroc_a - auroc_b`.
    pub difference: f64,
    pub variance_a: f64,
    pub variance_b: f64,
    pub covariance: f64,
    /// Standard error of the difference, `sqrt(var_a + var_b - 2 cov)`.
    pub std_error: f64,
    /// `difference / std_error` (0 when both are 0).
    pub z: f64,
    /// Two-sided p-value of `H0: AUROC_A = AUROC_B`.
    pub p_value: f64,
}

/// Midranks (1-based, ties get the mean of their ranks) of `values`.
pub(super) fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mid = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = mid;
        }
        i = j;
    }
    ranks
}

/// DeLong's structural components of one score vector: `V10[i]` for each anomalous image (the
/// share of good images it outranks, ties one half) and `V01[j]` for each good image (the share
/// of anomalous images that outrank it). Both average to the AUROC.
pub(super) fn structural_components(
    labels: &[bool],
    scores: &[f64],
    pos: usize,
    neg: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (xs, ys): (Vec<f64>, Vec<f64>) = {
        let mut xs = Vec::with_capacity(pos);
        let mut ys = Vec::with_capacity(neg);
        for (&l, &s) in labels.iter().zip(scores) {
            if l { xs.push(s) } else { ys.push(s) }
        }
        (xs, ys)
    };
    // Sun & Xu: the rank of x_i among all minus its rank among the positives counts the good
    // images below it (ties one half); likewise for y_j.
    let tx = midranks(&xs);
    let ty = midranks(&ys);
    let tz = midranks(&[xs.as_slice(), ys.as_slice()].concat());
    let v10 = (0..pos).map(|i| (tz[i] - tx[i]) / neg as f64).collect();
    let v01 = (0..neg)
        .map(|j| 1.0 - (tz[pos + j] - ty[j]) / pos as f64)
        .collect();
    (v10, v01)
}

pub(super) fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0)
}

pub(super) fn delong_counts(
    labels: &[bool],
    scores: &[f64],
) -> Result<(usize, usize), MetricsError> {
    let (pos, neg) = check(labels, scores)?;
    if pos < 2 {
        return Err(MetricsError::TooFew {
            what: "DeLong's variance: anomalous images",
            needed: 2,
            got: pos,
        });
    }
    if neg < 2 {
        return Err(MetricsError::TooFew {
            what: "DeLong's variance: good images",
            needed: 2,
            got: neg,
        });
    }
    Ok((pos, neg))
}

/// AUROC with DeLong's variance estimate, in O(n log n). Needs at least two images of each
/// class.
pub fn delong_auroc(labels: &[bool], scores: &[f64]) -> Result<DeLongAuroc, MetricsError> {
    let (pos, neg) = delong_counts(labels, scores)?;
    let (v10, v01) = structural_components(labels, scores, pos, neg);
    let auroc = v10.iter().sum::<f64>() / pos as f64;
    let variance = covariance(&v10, &v10) / pos as f64 + covariance(&v01, &v01) / neg as f64;
    Ok(DeLongAuroc {
        auroc,
        variance,
        std_error: variance.sqrt(),
    })
}

impl DeLongAuroc {
    /// Normal-approximation confidence interval `auroc ± z * std_error`, clipped to [0, 1].
    pub fn ci(&self, confidence: f64) -> Result<(f64, f64), MetricsError> {
        check_confidence(confidence)?;
        let z = normal_quantile(0.5 + confidence / 2.0);
        Ok((
            (self.auroc - z * self.std_error).max(0.0),
            (self.auroc + z * self.std_error).min(1.0),
        ))
    }
}

/// DeLong's test of two correlated AUROCs: variants A and B scored on the same images
/// (`labels[i]`, `scores_a[i]`, `scores_b[i]` belong to image `i`).
///
/// `z = (AUROC_A - AUROC_B) / sqrt(var_A + var_B - 2 cov_AB)`, two-sided normal p-value.
/// When the difference and its variance are both zero (e.g. B is a monotone transform of A),
/// `z = 0` and `p = 1`; a non-zero difference with zero variance is an error.
pub fn delong_test(
    labels: &[bool],
    scores_a: &[f64],
    scores_b: &[f64],
) -> Result<DeLongComparison, MetricsError> {
    let (pos, neg) = delong_counts(labels, scores_a)?;
    delong_counts(labels, scores_b)?;
    let (a10, a01) = structural_components(labels, scores_a, pos, neg);
    let (b10, b01) = structural_components(labels, scores_b, pos, neg);
    let (p, q) = (pos as f64, neg as f64);
    let auroc_a = a10.iter().sum::<f64>() / p;
    let auroc_b = b10.iter().sum::<f64>() / p;
    let variance_a = covariance(&a10, &a10) / p + covariance(&a01, &a01) / q;
    let variance_b = covariance(&b10, &b10) / p + covariance(&b01, &b01) / q;
    let cov = covariance(&a10, &b10) / p + covariance(&a01, &b01) / q;
    let var_diff = (variance_a + variance_b - 2.0 * cov).max(0.0);
    let difference = auroc_a - auroc_b;
    let std_error = var_diff.sqrt();
    let (z, p_value) = z_test(difference, std_error, "DeLong's test")?;
    Ok(DeLongComparison {
        auroc_a,
        auroc_b,
        difference,
        variance_a,
        variance_b,
        covariance: cov,
        std_error,
        z,
        p_value,
    })
}

pub(super) fn z_test(
    difference: f64,
    std_error: f64,
    what: &'static str,
) -> Result<(f64, f64), MetricsError> {
    if std_error > 0.0 {
        let z = difference / std_error;
        Ok((z, (2.0 * normal_sf(z.abs())).min(1.0)))
    } else if difference == 0.0 {
        Ok((0.0, 1.0))
    } else {
        Err(MetricsError::ZeroVariance(what))
    }
}

impl DeLongComparison {
    /// Normal-approximation confidence interval of `auroc_a - auroc_b`.
    pub fn ci(&self, confidence: f64) -> Result<(f64, f64), MetricsError> {
        check_confidence(confidence)?;
        let z = normal_quantile(0.5 + confidence / 2.0);
        Ok((
            self.difference - z * self.std_error,
            self.difference + z * self.std_error,
        ))
    }
}
