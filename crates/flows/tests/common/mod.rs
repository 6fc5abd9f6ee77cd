//! What the flow families' parity tests share: their goldens (made by
//! goldens/make_family_goldens.py), loading anomalib's weights by name, and the comparisons.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use tch::Tensor;
use tch::nn;

/// The tensors of `tests/fixtures/<file>` by name.
pub fn goldens(file: &str) -> HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

/// max |a − b| / max |b|.
pub fn relative(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let d = f64::try_from((a - b).abs().max()).unwrap();
    d / f64::try_from(b.abs().max()).unwrap().max(1e-30)
}

/// Copies anomalib's parameters (`param.<name>`) into every variable of `vs`, and checks
/// that anomalib has none that `vs` lacks.
pub fn load_anomalib_weights(vs: &nn::VarStore, g: &HashMap<String, Tensor>) {
    let mut loaded = 0;
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let golden = g
                .get(&format!("param.{name}"))
                .unwrap_or_else(|| panic!("anomalib has no parameter {name}"));
            var.copy_(golden);
            loaded += 1;
        }
    });
    let theirs = g.keys().filter(|k| k.starts_with("param.")).count();
    assert_eq!(loaded, theirs, "anomalib has parameters this flow lacks");
}

/// Every variable of `vs` that anomalib stepped (`after.<name>`) equals its weight after
/// the step to `of_step` of the step's size, or the weight's own rounding (a few ulps).
pub fn assert_stepped_as_anomalib(vs: &nn::VarStore, g: &HashMap<String, Tensor>, of_step: f64) {
    let mut checked = 0;
    for (name, t) in vs.variables() {
        let Some(expected) = g.get(&format!("after.{name}")) else {
            continue;
        };
        let before = &g[&format!("param.{name}")];
        let moved = f64::try_from((expected - before).abs().max()).unwrap();
        let diff = f64::try_from((&t - expected).abs().max()).unwrap();
        let ulps = 4.0 * f32::EPSILON as f64 * f64::try_from(expected.abs().max()).unwrap();
        assert!(
            diff <= of_step * moved + ulps,
            "{name}: {diff:e} off after one step (the step moved it {moved:e})"
        );
        checked += 1;
    }
    assert!(checked > 0, "no stepped weight to compare");
}
