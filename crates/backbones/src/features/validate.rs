//! What a backbone config must satisfy that its types cannot express.

use crate::{AttentionKind, BackboneConfig, BackboneError, BackboneKind};

/// AlexNet's final spatial side for an input side, or `None` when a layer would be empty.
pub(super) fn alexnet_output_side(side: i64) -> Option<i64> {
    let pool = |a: i64| if a >= 3 { Some((a - 3) / 2 + 1) } else { None };
    if side + 4 < 11 {
        return None;
    }
    let conv1 = (side + 4 - 11) / 4 + 1;
    pool(pool(pool(conv1)?)?)
}

/// Checks what the types cannot express (sizes, positions); [`BackboneConfig::validate`].
pub(crate) fn check_config(config: &BackboneConfig) -> Result<(), BackboneError> {
    let kind = config.kind;
    if config.scales == 0 {
        return Err(BackboneError::Config(
            "model.scales must be at least 1".into(),
        ));
    }
    if config.se_reduction < 1 {
        return Err(BackboneError::Config(
            "model.se_reduction must be at least 1".into(),
        ));
    }
    // A shift past the integer's width (a typo like `model.scales = 65`) is "too small" too.
    let smallest = u32::try_from(config.scales - 1)
        .ok()
        .and_then(|shift| config.image_size.checked_shr(shift))
        .unwrap_or(0);
    let too_small = match kind {
        BackboneKind::Alexnet => alexnet_output_side(smallest).is_none(),
        BackboneKind::EfficientnetLite0 => smallest < 32,
    };
    if too_small {
        return Err(BackboneError::Config(format!(
            "model.image_size = {} with {} scales gives {} px at the smallest scale, too small \
             for {} (AlexNet needs at least 63 px, EfficientNet-Lite 32); use a larger image or \
             fewer scales",
            config.image_size,
            config.scales,
            smallest,
            kind.name()
        )));
    }
    if config.attention != AttentionKind::None && config.positions.is_empty() {
        return Err(BackboneError::Config(
            "model.attention is set but model.positions is empty".into(),
        ));
    }
    if config.feature_layers.is_empty() {
        return Err(BackboneError::Config(
            "model.feature_layers is empty".into(),
        ));
    }
    let named = (config.positions.iter().map(|p| ("model.positions", p))).chain(
        config
            .feature_layers
            .iter()
            .map(|p| ("model.feature_layers", p)),
    );
    for (key, p) in named {
        if kind.channels_at(p).is_none() {
            return Err(BackboneError::UnknownPosition {
                key,
                position: p.clone(),
                backbone: kind.name(),
                known: kind.positions().join(", "),
            });
        }
    }
    Ok(())
}
