//! Multiply-accumulate counts of the feature extractor, computed from the layer shapes:
//! what `adn model summary` reports and what benchmarks divide by.

use crate::efficientnet::STAGES;
use crate::{AttentionKind, BackboneConfig, BackboneKind};

/// MACs of one image through the extractor, every scale, up to its deepest feature layer,
/// attention included.
pub fn macs(config: &BackboneConfig) -> f64 {
    let last = deepest(config);
    (0..config.scales)
        .map(|s| {
            let side = config.image_size >> s;
            let mut total = 0.0;
            let mut tap = |position: &str, channels: i64, h: i64| {
                if config.positions.iter().any(|p| p == position) {
                    total += attention_macs(config.attention, channels, h, config.se_reduction);
                }
            };
            let body = match config.kind {
                BackboneKind::Alexnet => alexnet_macs(side, &last, &mut tap),
                BackboneKind::EfficientnetLite0 => lite_macs(side, &last, &mut tap),
            };
            body + total
        })
        .sum()
}

fn deepest(config: &BackboneConfig) -> String {
    let order = config.kind.positions();
    config
        .feature_layers
        .iter()
        .max_by_key(|l| order.iter().position(|p| p == l))
        .cloned()
        .unwrap_or_default()
}

fn conv(h_out: i64, c_in: i64, c_out: i64, k: i64) -> f64 {
    (h_out * h_out * c_in * c_out * k * k) as f64
}

fn attention_macs(kind: AttentionKind, c: i64, h: i64, r: i64) -> f64 {
    let hw = (h * h) as f64;
    let c = c as f64;
    match kind {
        AttentionKind::None => 0.0,
        // Pool, two bias-free linears, scaling.
        AttentionKind::Se => hw * c + 2.0 * c * (c / r as f64).floor().max(1.0) + hw * c,
        AttentionKind::Cbam | AttentionKind::CbamOfficial => {
            let k = if kind == AttentionKind::Cbam {
                49.0
            } else {
                7.0
            };
            let hidden = (c / 16.0).floor().max(1.0);
            // Two pools and the shared MLP twice, channel scaling, [max, mean], spatial conv,
            // spatial scaling.
            2.0 * hw * c + 4.0 * c * hidden + hw * c + 2.0 * hw * c + hw * 2.0 * k * k + hw * c
        }
    }
}

fn alexnet_macs(side: i64, last: &str, tap: &mut dyn FnMut(&str, i64, i64)) -> f64 {
    let pool = |a: i64| (a - 3) / 2 + 1;
    let o1 = (side + 4 - 11) / 4 + 1;
    let p1 = pool(o1);
    let p2 = pool(p1);
    let steps: [(&str, i64, i64, f64); 6] = [
        ("relu1", 64, o1, conv(o1, 3, 64, 11)),
        ("pool1", 64, p1, 0.0),
        ("relu2", 192, p1, conv(p1, 64, 192, 5)),
        ("pool2", 192, p2, 0.0),
        (
            "relu5",
            256,
            p2,
            conv(p2, 192, 384, 3) + conv(p2, 384, 256, 3) + conv(p2, 256, 256, 3),
        ),
        ("pool5", 256, pool(p2), 0.0),
    ];
    let mut total = 0.0;
    for (name, c, h, m) in steps {
        total += m;
        tap(name, c, h);
        if name == last {
            break;
        }
    }
    total
}

fn lite_macs(side: i64, last: &str, tap: &mut dyn FnMut(&str, i64, i64)) -> f64 {
    let down = |h: i64, s: i64| (h + s - 1) / s;
    let mut h = down(side, 2);
    let mut total = conv(h, 3, 32, 3);
    tap("stem", 32, h);
    if last == "stem" {
        return total;
    }
    let mut c_in = 32;
    for (i, (expand, k, stride, c_out, repeats)) in STAGES.iter().enumerate() {
        for r in 0..*repeats {
            let s = if r == 0 { *stride } else { 1 };
            let mid = c_in * expand;
            if *expand != 1 {
                total += conv(h, c_in, mid, 1);
            }
            h = down(h, s);
            total += conv(h, mid, 1, *k) + conv(h, mid, *c_out, 1);
            c_in = *c_out;
        }
        let name = format!("stage{}", i + 1);
        tap(&name, c_in, h);
        if name == last {
            return total;
        }
    }
    total += conv(h, c_in, 1280, 1);
    tap("head", 1280, h);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: BackboneKind, attention: AttentionKind, size: i64) -> BackboneConfig {
        BackboneConfig {
            kind,
            attention,
            positions: vec!["relu1".into(), "relu2".into(), "relu5".into()],
            se_reduction: 2,
            attention_init: Default::default(),
            feature_layers: kind.default_feature_layers(),
            image_size: size,
            scales: 1,
        }
    }

    #[test]
    fn alexnet_features_cost_what_pytorch_counts() {
        // torch.utils.flop_counter on goldens/make_goldens.py's AlexNetFeatures, 224 px:
        // 1,311,133,056 FLOPs = 655,566,528 MACs.
        let m = macs(&config(BackboneKind::Alexnet, AttentionKind::None, 224));
        assert_eq!(m, 655_566_528.0);
    }

    #[test]
    fn lite0_costs_what_pytorch_counts() {
        // torch.utils.flop_counter on the golden script's Lite0 at 224 px: 385,187,552 MACs
        // with the classifier (1,280,000), so 383,907,552 up to the head.
        let mut c = config(BackboneKind::EfficientnetLite0, AttentionKind::None, 224);
        c.feature_layers = vec!["head".into()];
        c.positions.clear();
        assert_eq!(macs(&c), 383_907_552.0);
    }

    #[test]
    fn attention_adds_little() {
        let plain = macs(&config(BackboneKind::Alexnet, AttentionKind::None, 224));
        let se = macs(&config(BackboneKind::Alexnet, AttentionKind::Se, 224));
        assert!(se > plain && se < plain * 1.01);
    }
}
