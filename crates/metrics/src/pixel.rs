//! Pixel-level metrics, where ground-truth masks exist (MVTec AD's layout): pixel AUROC over
//! every pixel of every test image, and AUPRO, the area under the per-region-overlap curve up
//! to a false-positive rate (0.3 in MVTec AD's definition), divided by that rate so that a
//! perfect map scores 1.
//!
//! The PRO of a threshold is the mean, over every connected defect region of every image
//! (8-connected, as MVTec AD's evaluation labels them), of the fraction of the region's
//! pixels scored at or above the threshold. Its FPR is the fraction of all good pixels (those
//! outside every mask, good images' pixels included) at or above it. The curve is exact: one
//! point per distinct score, and the last segment is interpolated at the FPR limit.

use crate::{MetricsError, auroc, check_finite};

/// One test image's anomaly map and its ground-truth mask, row-major, `width × height`. A
/// good image has an all-false mask.
#[derive(Debug, Clone, Copy)]
pub struct PixelImage<'a> {
    pub width: usize,
    pub height: usize,
    pub map: &'a [f64],
    pub mask: &'a [bool],
}

impl PixelImage<'_> {
    fn check(&self) -> Result<(), MetricsError> {
        let pixels = self.width * self.height;
        for len in [self.map.len(), self.mask.len()] {
            if len != pixels {
                return Err(MetricsError::LengthMismatch {
                    labels: pixels,
                    scores: len,
                });
            }
        }
        check_finite(self.map)
    }
}

/// AUROC over every pixel of `images` (anomalous: inside a mask), ties counted one half.
pub fn pixel_auroc(images: &[PixelImage]) -> Result<f64, MetricsError> {
    let mut labels = Vec::new();
    let mut scores = Vec::new();
    for image in images {
        image.check()?;
        labels.extend_from_slice(image.mask);
        scores.extend_from_slice(image.map);
    }
    auroc(&labels, &scores)
}

/// The connected regions of a mask, 8-connected: each region's pixel indices.
pub fn mask_regions(width: usize, height: usize, mask: &[bool]) -> Vec<Vec<usize>> {
    let mut seen = vec![false; mask.len()];
    let mut regions = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut region = Vec::new();
        while let Some(p) = stack.pop() {
            region.push(p);
            let (x, y) = ((p % width) as i64, (p / width) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let q = ny as usize * width + nx as usize;
                    if mask[q] && !seen[q] {
                        seen[q] = true;
                        stack.push(q);
                    }
                }
            }
        }
        region.sort_unstable();
        regions.push(region);
    }
    regions
}

/// The PRO curve as `(fpr, pro)` points from `(0, 0)` to `(1, 1)`, one per distinct score.
pub fn pro_curve(images: &[PixelImage]) -> Result<Vec<(f64, f64)>, MetricsError> {
    let mut regions = Vec::new();
    let mut good_pixels = 0usize;
    for (i, image) in images.iter().enumerate() {
        image.check()?;
        good_pixels += image.mask.iter().filter(|m| !**m).count();
        for region in mask_regions(image.width, image.height, image.mask) {
            regions.push((i, region));
        }
    }
    if images.is_empty() {
        return Err(MetricsError::Empty);
    }
    if regions.is_empty() {
        return Err(MetricsError::SingleClass("no defect region in any mask"));
    }
    if good_pixels == 0 {
        return Err(MetricsError::SingleClass("no good pixel"));
    }
    // (score, FPR step, PRO step) of every pixel.
    let mut steps: Vec<(f64, f64, f64)> = Vec::new();
    let fp_step = 1.0 / good_pixels as f64;
    for image in images {
        for (&score, &defect) in image.map.iter().zip(image.mask) {
            if !defect {
                steps.push((score, fp_step, 0.0));
            }
        }
    }
    let per_region = 1.0 / regions.len() as f64;
    for (i, region) in &regions {
        let step = per_region / region.len() as f64;
        steps.extend(region.iter().map(|&p| (images[*i].map[p], 0.0, step)));
    }
    steps.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut curve = vec![(0.0, 0.0)];
    let (mut fpr, mut pro) = (0.0f64, 0.0f64);
    let mut k = 0;
    while k < steps.len() {
        let score = steps[k].0;
        while k < steps.len() && steps[k].0 == score {
            fpr += steps[k].1;
            pro += steps[k].2;
            k += 1;
        }
        curve.push((fpr.min(1.0), pro.min(1.0)));
    }
    // The sums reach 1 up to rounding; the curve ends there exactly.
    if let Some(last) = curve.last_mut() {
        *last = (1.0, 1.0);
    }
    Ok(curve)
}

/// The area under `curve` (points in increasing x) from x = 0 to `limit`, by trapezoids, the
/// last one cut at `limit` with the value interpolated there.
fn area_up_to(curve: &[(f64, f64)], limit: f64) -> f64 {
    let mut area = 0.0;
    for w in curve.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x0 >= limit {
            break;
        }
        if x1 <= limit {
            area += (x1 - x0) * (y0 + y1) / 2.0;
        } else {
            let y = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
            area += (limit - x0) * (y0 + y) / 2.0;
            break;
        }
    }
    area
}

/// AUPRO: the area under the PRO curve from FPR 0 to `max_fpr` (MVTec AD: 0.3), divided by
/// `max_fpr`. Errors when no mask has a defect pixel, no pixel is good, or `max_fpr` is not
/// in (0, 1].
pub fn aupro(images: &[PixelImage], max_fpr: f64) -> Result<f64, MetricsError> {
    if !(max_fpr > 0.0 && max_fpr <= 1.0) {
        return Err(MetricsError::InvalidArgument(format!(
            "the FPR limit {max_fpr} is not in (0, 1]"
        )));
    }
    let curve = pro_curve(images)?;
    Ok(area_up_to(&curve, max_fpr) / max_fpr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Image A, one row of 4: defect regions {0, 1} and {3}; image B, one good row of 2.
    fn worked_example() -> (Vec<f64>, Vec<bool>, Vec<f64>, Vec<bool>) {
        (
            vec![0.9, 0.5, 0.7, 0.1],
            vec![true, true, false, true],
            vec![0.2, 0.6],
            vec![false, false],
        )
    }

    #[test]
    fn a_worked_example_by_hand() {
        let (ma, ka, mb, kb) = worked_example();
        let images = [
            PixelImage {
                width: 4,
                height: 1,
                map: &ma,
                mask: &ka,
            },
            PixelImage {
                width: 2,
                height: 1,
                map: &mb,
                mask: &kb,
            },
        ];
        // Defect pixels 0.9, 0.5, 0.1 against good 0.7, 0.2, 0.6: 3 + 1 + 0 of 9 pairs.
        assert_eq!(pixel_auroc(&images).unwrap(), 4.0 / 9.0);
        // Descending: 0.9 (PRO +1/4), 0.7 (FPR +1/3), 0.6 (FPR +1/3), 0.5 (PRO +1/4),
        // 0.2 (FPR +1/3), 0.1 (PRO +1/2).
        let curve = pro_curve(&images).unwrap();
        let expected = [
            (0.0, 0.0),
            (0.0, 0.25),
            (1.0 / 3.0, 0.25),
            (2.0 / 3.0, 0.25),
            (2.0 / 3.0, 0.5),
            (1.0, 0.5),
            (1.0, 1.0),
        ];
        assert_eq!(curve.len(), expected.len());
        for (got, want) in curve.iter().zip(expected) {
            assert!((got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12);
        }
        // Whole curve: 1/3 · 1/4 + 1/3 · 1/4 + 1/3 · 1/2 = 1/3.
        assert!((aupro(&images, 1.0).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // Up to FPR 0.5: (1/3 · 1/4 + 1/6 · 1/4) / 0.5 = 1/4.
        assert!((aupro(&images, 0.5).unwrap() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn regions_are_eight_connected() {
        // Two diagonal pixels are one region; a pixel two steps away is another.
        #[rustfmt::skip]
        let mask = [
            true,  false, false, false,
            false, true,  false, true,
            false, false, false, false,
        ];
        let regions = mask_regions(4, 3, &mask);
        assert_eq!(regions, vec![vec![0, 5], vec![7]]);
    }

    #[test]
    fn a_perfect_map_scores_one_and_a_constant_map_the_diagonal() {
        let mask = [false, true, true, false, false, true];
        let perfect: Vec<f64> = mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
        let image = |map| PixelImage {
            width: 3,
            height: 2,
            map,
            mask: &mask,
        };
        assert!((aupro(&[image(&perfect)], 0.3).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(pixel_auroc(&[image(&perfect)]).unwrap(), 1.0);
        // One threshold takes every pixel at once: the curve is the diagonal, whose area up
        // to 0.3 is 0.3² / 2.
        let flat = [0.5; 6];
        assert!((aupro(&[image(&flat)], 0.3).unwrap() - 0.15).abs() < 1e-12);
    }

    #[test]
    fn every_curve_point_counts_what_its_threshold_takes() {
        // Seeded random maps with tied scores (10 levels) and blotchy masks, 3 images of 6 × 5.
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let (w, h) = (6, 5);
        let maps: Vec<Vec<f64>> = (0..3)
            .map(|_| (0..w * h).map(|_| (next() % 10) as f64 / 10.0).collect())
            .collect();
        let masks: Vec<Vec<bool>> = (0..3)
            .map(|i| (0..w * h).map(|_| i > 0 && next() % 3 == 0).collect())
            .collect();
        let images: Vec<PixelImage> = maps
            .iter()
            .zip(&masks)
            .map(|(map, mask)| PixelImage {
                width: w,
                height: h,
                map,
                mask,
            })
            .collect();
        let curve = pro_curve(&images).unwrap();
        let mut levels: Vec<f64> = maps.iter().flatten().copied().collect();
        levels.sort_by(|a, b| b.total_cmp(a));
        levels.dedup();
        assert_eq!(curve.len(), levels.len() + 1);
        let good: usize = masks.iter().flatten().filter(|m| !**m).count();
        for (point, &t) in curve[1..].iter().zip(&levels) {
            let mut fp = 0;
            for (map, mask) in maps.iter().zip(&masks) {
                fp += map
                    .iter()
                    .zip(mask)
                    .filter(|(s, m)| !**m && **s >= t)
                    .count();
            }
            let mut overlaps = Vec::new();
            for (map, mask) in maps.iter().zip(&masks) {
                for region in mask_regions(w, h, mask) {
                    let hit = region.iter().filter(|&&p| map[p] >= t).count();
                    overlaps.push(hit as f64 / region.len() as f64);
                }
            }
            let pro = overlaps.iter().sum::<f64>() / overlaps.len() as f64;
            assert!(
                (point.0 - fp as f64 / good as f64).abs() < 1e-9,
                "FPR at {t}"
            );
            assert!((point.1 - pro).abs() < 1e-9, "PRO at {t}");
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let map = [0.1, 0.2];
        let short = PixelImage {
            width: 3,
            height: 1,
            map: &map,
            mask: &[true, false, false],
        };
        assert!(matches!(
            pixel_auroc(&[short]),
            Err(MetricsError::LengthMismatch { .. })
        ));
        let good = PixelImage {
            width: 2,
            height: 1,
            map: &map,
            mask: &[false, false],
        };
        assert!(matches!(
            aupro(&[good], 0.3),
            Err(MetricsError::SingleClass(_))
        ));
        let nan = [f64::NAN, 0.0];
        let with_nan = PixelImage {
            width: 2,
            height: 1,
            map: &nan,
            mask: &[true, false],
        };
        assert!(matches!(
            aupro(&[with_nan], 0.3),
            Err(MetricsError::NonFinite { .. })
        ));
        let fine = PixelImage {
            width: 2,
            height: 1,
            map: &map,
            mask: &[true, false],
        };
        assert!(matches!(
            aupro(&[fine], 0.0),
            Err(MetricsError::InvalidArgument(_))
        ));
        assert_eq!(aupro(&[], 0.3), Err(MetricsError::Empty));
    }
}
