//! Global image statistics and the scorers built on them: the guard that a stand-in's
//! defects cannot be found from whole-image mean, standard deviation or histogram, and a
//! simple local (block-wise) scorer that shows the defects are there to be found.

use image::DynamicImage;

/// Histogram bins of the gray values.
pub const HIST_BINS: usize = 16;

/// Whole-image statistics of one image: per-channel mean and standard deviation (on `[0, 1]`
/// values; gray images have one channel) and the normalised gray-value histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalStats {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub hist: [f64; HIST_BINS],
}

impl GlobalStats {
    pub fn of(img: &DynamicImage) -> Self {
        let gray = img.to_luma8();
        let mut hist = [0f64; HIST_BINS];
        for p in gray.pixels() {
            hist[p.0[0] as usize * HIST_BINS / 256] += 1.0;
        }
        let n = (gray.width() as f64 * gray.height() as f64).max(1.0);
        for h in &mut hist {
            *h /= n;
        }
        let channels: Vec<Vec<f64>> = if img.color().channel_count() < 3 {
            vec![gray.pixels().map(|p| p.0[0] as f64 / 255.0).collect()]
        } else {
            let rgb = img.to_rgb8();
            (0..3)
                .map(|c| rgb.pixels().map(|p| p.0[c] as f64 / 255.0).collect())
                .collect()
        };
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for ch in &channels {
            let m = ch.iter().sum::<f64>() / n;
            let v = ch.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
            mean.push(m);
            std.push(v.sqrt());
        }
        GlobalStats { mean, std, hist }
    }

    fn part(&self, which: Part) -> Vec<f64> {
        match which {
            Part::Mean => self.mean.clone(),
            Part::Std => self.std.clone(),
            Part::Hist => self.hist.to_vec(),
            Part::All => {
                let mut v = self.mean.clone();
                v.extend(&self.std);
                v.extend(self.hist);
                v
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Part {
    Mean,
    Std,
    Hist,
    All,
}

/// Area under the ROC curve of `scores` (higher = more anomalous) for `labels` (true =
/// anomalous), with ties counted half (Mann–Whitney). `None` without both classes.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0f64, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum += avg;
                pos += 1;
            }
        }
        i = j + 1;
    }
    let neg = scores.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// Per-feature mean and standard deviation of the training rows (std floored).
fn fit(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let d = rows.first().map_or(0, Vec::len);
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / n;
        }
    }
    let mut sd = vec![0.0; d];
    for r in rows {
        for ((s, v), m) in sd.iter_mut().zip(r).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    let sd = sd.into_iter().map(|v| v.sqrt().max(1e-4)).collect();
    (mean, sd)
}

/// AUROC of each global-statistics scorer fitted on `train` (good images) and applied to
/// `test` (`true` = anomalous). Scorers: squared z-distance from the training mean of the
/// channel means, of the channel stds, of the histogram, of all of them together (a
/// diagonal Gaussian), and the nearest-neighbour distance in the standardised space of all.
pub fn global_stats_auroc(
    train: &[GlobalStats],
    test: &[(GlobalStats, bool)],
) -> Vec<(&'static str, f64)> {
    let labels: Vec<bool> = test.iter().map(|(_, l)| *l).collect();
    let mut out = Vec::new();
    for (name, part) in [
        ("mean", Part::Mean),
        ("std", Part::Std),
        ("histogram", Part::Hist),
        ("all, diagonal Gaussian", Part::All),
    ] {
        let rows: Vec<Vec<f64>> = train.iter().map(|s| s.part(part)).collect();
        let (m, sd) = fit(&rows);
        let scores: Vec<f64> = test
            .iter()
            .map(|(s, _)| {
                s.part(part)
                    .iter()
                    .zip(&m)
                    .zip(&sd)
                    .map(|((v, m), s)| ((v - m) / s).powi(2))
                    .sum()
            })
            .collect();
        if let Some(a) = auroc(&scores, &labels) {
            out.push((name, a));
        }
    }
    let rows: Vec<Vec<f64>> = train.iter().map(|s| s.part(Part::All)).collect();
    let (m, sd) = fit(&rows);
    let z = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .zip(&m)
            .zip(&sd)
            .map(|((v, m), s)| (v - m) / s)
            .collect()
    };
    let train_z: Vec<Vec<f64>> = rows.iter().map(|r| z(r)).collect();
    let scores: Vec<f64> = test
        .iter()
        .map(|(s, _)| {
            let q = z(&s.part(Part::All));
            train_z
                .iter()
                .map(|t| {
                    t.iter()
                        .zip(&q)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    if let Some(a) = auroc(&scores, &labels) {
        out.push(("all, nearest neighbour", a));
    }
    out
}

/// Patch descriptors for the patch-novelty scorer: the image resized to `side`×`side` and
/// standardised by its own mean and std (so global brightness and contrast do not count),
/// cut into 8×8 patches at stride `stride`; each patch described by its 4×4 gray means and,
/// for colour images, its mean per channel.
pub fn patch_descriptors(img: &DynamicImage, side: u32, stride: usize) -> Vec<Vec<f32>> {
    let rgb = image::imageops::resize(
        &img.to_rgb8(),
        side,
        side,
        image::imageops::FilterType::Triangle,
    );
    let colour = img.color().channel_count() >= 3;
    let n = (side * side) as f32;
    let mut chans: Vec<Vec<f32>> = (0..3)
        .map(|c| rgb.pixels().map(|p| p.0[c] as f32 / 255.0).collect())
        .collect();
    for ch in &mut chans {
        let m = ch.iter().sum::<f32>() / n;
        let sd = (ch.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / n)
            .sqrt()
            .max(1e-3);
        for v in ch.iter_mut() {
            *v = (*v - m) / sd;
        }
    }
    let s = side as usize;
    let gray: Vec<f32> = (0..s * s)
        .map(|i| (chans[0][i] + chans[1][i] + chans[2][i]) / 3.0)
        .collect();
    let mut out = Vec::new();
    let mut y = 0;
    while y + 8 <= s {
        let mut x = 0;
        while x + 8 <= s {
            let mut d = Vec::with_capacity(19);
            for by in 0..4 {
                for bx in 0..4 {
                    let mut acc = 0.0;
                    for yy in 0..2 {
                        for xx in 0..2 {
                            acc += gray[(y + by * 2 + yy) * s + x + bx * 2 + xx];
                        }
                    }
                    d.push(acc / 4.0);
                }
            }
            if colour {
                for ch in &chans {
                    let mut acc = 0.0;
                    for yy in 0..8 {
                        for xx in 0..8 {
                            acc += ch[(y + yy) * s + x + xx];
                        }
                    }
                    d.push(acc / 64.0);
                }
            }
            out.push(d);
            x += stride;
        }
        y += stride;
    }
    out
}

/// AUROC of a patch-novelty scorer (a crude PatchCore): a memory bank of training patches
/// (every `thin`-th one), each test image scored by its patch farthest from its nearest
/// bank patch. A sanity check that the defects are local and findable, not a model.
pub fn patch_novelty_auroc(
    train: &[Vec<Vec<f32>>],
    test: &[(Vec<Vec<f32>>, bool)],
    thin: usize,
) -> Option<f64> {
    use rayon::prelude::*;
    let bank: Vec<&Vec<f32>> = train.iter().flatten().step_by(thin.max(1)).collect();
    let scores: Vec<f64> = test
        .par_iter()
        .map(|(patches, _)| {
            patches
                .iter()
                .map(|q| {
                    bank.iter()
                        .map(|b| b.iter().zip(q).map(|(a, c)| (a - c) * (a - c)).sum::<f32>())
                        .fold(f32::INFINITY, f32::min)
                })
                .fold(0.0f32, f32::max) as f64
        })
        .collect();
    let labels: Vec<bool> = test.iter().map(|(_, l)| *l).collect();
    auroc(&scores, &labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_ties_half() {
        assert_eq!(
            auroc(&[0.1, 0.2, 0.3, 0.4], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            auroc(&[0.4, 0.3, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(auroc(&[1.0, 1.0], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None);
    }

    #[test]
    fn stats_of_a_gray_image() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_fn(4, 1, |x, _| {
            image::Luma([if x < 2 { 0 } else { 255 }])
        }));
        let s = GlobalStats::of(&img);
        assert_eq!(s.mean.len(), 1);
        assert!((s.mean[0] - 0.5).abs() < 1e-9 && (s.std[0] - 0.5).abs() < 1e-9);
        assert_eq!(s.hist[0], 0.5);
        assert_eq!(s.hist[HIST_BINS - 1], 0.5);
    }
}
