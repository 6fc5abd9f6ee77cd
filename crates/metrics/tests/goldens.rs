//! Golden values from scikit-learn, SciPy and a brute-force DeLong reference, produced by
//! `crates/metrics/goldens/make_goldens.py` and stored in `tests/fixtures/`.

use adn_metrics::special::{
    incomplete_beta, ln_gamma, normal_cdf, normal_quantile, normal_sf, student_t_cdf,
    student_t_quantile, student_t_sf,
};
use adn_metrics::{
    MetricsError, Ranking, auroc, average_precision, delong_auroc, delong_test, f1_max,
    paired_comparison, roc_curve, tpr_at_fpr,
};
use serde::Deserialize;

fn fixture<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `None` in a fixture stands for `+inf` (JSON has no infinity).
fn inf(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::INFINITY)
}

fn assert_close(what: &str, got: f64, want: f64, abs: f64, rel: f64) {
    let tol = abs.max(rel * want.abs());
    assert!(
        (got - want).abs() <= tol || got == want,
        "{what}: got {got:e}, want {want:e} (|diff| {:e} > {tol:e})",
        (got - want).abs()
    );
}

#[derive(Deserialize)]
struct Curve {
    fpr: Vec<f64>,
    tpr: Vec<f64>,
    thresholds: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct F1 {
    f1: f64,
    threshold: f64,
    precision: f64,
    recall: f64,
}

#[derive(Deserialize)]
struct Tpr {
    max_fpr: f64,
    tpr: f64,
    fpr: f64,
    threshold: Option<f64>,
}

#[derive(Deserialize)]
struct DeLongSingle {
    auroc_a: f64,
    variance_a: f64,
}

#[derive(Deserialize)]
struct MetricCase {
    name: String,
    labels: Vec<u8>,
    scores: Vec<f64>,
    auroc: f64,
    average_precision: f64,
    f1_max: F1,
    tpr_at_fpr: Vec<Tpr>,
    roc_full_len: usize,
    roc_dropped_len: usize,
    delong: Option<DeLongSingle>,
    roc_full: Option<Curve>,
    roc_dropped: Option<Curve>,
}

#[derive(Deserialize)]
struct MetricFixture {
    cases: Vec<MetricCase>,
}

fn bools(labels: &[u8]) -> Vec<bool> {
    labels.iter().map(|&l| l == 1).collect()
}

fn check_curve(name: &str, got: &adn_metrics::RocCurve, want: &Curve) {
    assert_eq!(got.fpr.len(), want.fpr.len(), "{name}: ROC length");
    for k in 0..want.fpr.len() {
        assert_close(
            &format!("{name} fpr[{k}]"),
            got.fpr[k],
            want.fpr[k],
            1e-15,
            0.0,
        );
        assert_close(
            &format!("{name} tpr[{k}]"),
            got.tpr[k],
            want.tpr[k],
            1e-15,
            0.0,
        );
        assert_eq!(
            got.thresholds[k],
            inf(want.thresholds[k]),
            "{name}: threshold[{k}]"
        );
    }
}

#[test]
fn metrics_match_scikit_learn() {
    let fixture: MetricFixture = fixture("metrics.json");
    assert!(fixture.cases.len() >= 10);
    for case in &fixture.cases {
        let name = &case.name;
        let labels = bools(&case.labels);
        let s = &case.scores;
        assert_close(
            &format!("{name} auroc"),
            auroc(&labels, s).unwrap(),
            case.auroc,
            1e-12,
            0.0,
        );
        let ranking = Ranking::new(&labels, s).unwrap();
        assert_eq!(ranking.auroc(), auroc(&labels, s).unwrap(), "{name}");
        assert_close(
            &format!("{name} average precision"),
            average_precision(&labels, s).unwrap(),
            case.average_precision,
            1e-12,
            0.0,
        );
        let f = f1_max(&labels, s).unwrap();
        assert_eq!(f.f1, case.f1_max.f1, "{name}: f1");
        assert_eq!(f.threshold, case.f1_max.threshold, "{name}: f1 threshold");
        assert_close(
            &format!("{name} f1 precision"),
            f.precision,
            case.f1_max.precision,
            1e-15,
            0.0,
        );
        assert_close(
            &format!("{name} f1 recall"),
            f.recall,
            case.f1_max.recall,
            1e-15,
            0.0,
        );
        for t in &case.tpr_at_fpr {
            let got = tpr_at_fpr(&labels, s, t.max_fpr).unwrap();
            assert_eq!(got.tpr, t.tpr, "{name}: tpr at fpr <= {}", t.max_fpr);
            assert_eq!(got.fpr, t.fpr, "{name}: fpr at fpr <= {}", t.max_fpr);
            assert_eq!(got.threshold, inf(t.threshold), "{name}: threshold");
        }
        let full = roc_curve(&labels, s, false).unwrap();
        let dropped = roc_curve(&labels, s, true).unwrap();
        assert_eq!(full.fpr.len(), case.roc_full_len, "{name}: full ROC length");
        assert_eq!(
            dropped.fpr.len(),
            case.roc_dropped_len,
            "{name}: dropped ROC length"
        );
        if let Some(want) = &case.roc_full {
            check_curve(&format!("{name} full"), &full, want);
        }
        if let Some(want) = &case.roc_dropped {
            check_curve(&format!("{name} dropped"), &dropped, want);
        }
        match (&case.delong, delong_auroc(&labels, s)) {
            (Some(want), Ok(got)) => {
                assert_close(
                    &format!("{name} delong auroc"),
                    got.auroc,
                    want.auroc_a,
                    1e-12,
                    0.0,
                );
                assert_close(
                    &format!("{name} delong variance"),
                    got.variance,
                    want.variance_a,
                    1e-15,
                    1e-9,
                );
            }
            (None, Err(MetricsError::TooFew { .. })) => {}
            (want, got) => panic!("{name}: delong want {:?} got {got:?}", want.is_some()),
        }
    }
}

#[derive(Deserialize)]
struct DeLongCase {
    name: String,
    labels: Vec<u8>,
    scores_a: Vec<f64>,
    scores_b: Vec<f64>,
    auroc_a: f64,
    auroc_b: f64,
    variance_a: f64,
    variance_b: f64,
    covariance: f64,
    difference: f64,
    std_error: f64,
    z: f64,
    p_value: f64,
}

#[derive(Deserialize)]
struct DeLongFixture {
    cases: Vec<DeLongCase>,
}

#[test]
fn delong_matches_brute_force_reference() {
    let fixture: DeLongFixture = fixture("delong.json");
    assert!(fixture.cases.len() >= 6);
    for c in &fixture.cases {
        let name = &c.name;
        let labels = bools(&c.labels);
        let d = delong_test(&labels, &c.scores_a, &c.scores_b).unwrap();
        let close = |what: &str, got: f64, want: f64, rel: f64| {
            assert_close(&format!("{name} {what}"), got, want, 1e-15, rel)
        };
        close("auroc_a", d.auroc_a, c.auroc_a, 1e-12);
        close("auroc_b", d.auroc_b, c.auroc_b, 1e-12);
        close("difference", d.difference, c.difference, 1e-10);
        close("variance_a", d.variance_a, c.variance_a, 1e-9);
        close("variance_b", d.variance_b, c.variance_b, 1e-9);
        close("covariance", d.covariance, c.covariance, 1e-9);
        close("std_error", d.std_error, c.std_error, 1e-9);
        assert_close(&format!("{name} z"), d.z, c.z, 1e-9, 1e-8);
        assert_close(&format!("{name} p"), d.p_value, c.p_value, 1e-15, 1e-7);
        // The single-AUROC variance agrees with the pairwise one.
        let single = delong_auroc(&labels, &c.scores_a).unwrap();
        assert_eq!(single.variance, d.variance_a, "{name}");
    }
}

#[derive(Deserialize)]
struct NormalPoint {
    x: f64,
    cdf: f64,
    sf: f64,
}

#[derive(Deserialize)]
struct NormalPpf {
    p: f64,
    x: f64,
}

#[derive(Deserialize)]
struct TPoint {
    t: f64,
    df: f64,
    cdf: f64,
    sf: f64,
}

#[derive(Deserialize)]
struct TPpf {
    p: f64,
    df: f64,
    t: f64,
}

#[derive(Deserialize)]
struct GammaPoint {
    x: f64,
    value: f64,
}

#[derive(Deserialize)]
struct BetaPoint {
    a: f64,
    b: f64,
    x: f64,
    value: f64,
}

#[derive(Deserialize)]
struct PairedCase {
    a: Vec<f64>,
    b: Vec<f64>,
    mean_difference: f64,
    sd_difference: f64,
    t: f64,
    df: f64,
    p_value: f64,
    ci95: [f64; 2],
}

#[derive(Deserialize)]
struct SpecialFixture {
    normal: Vec<NormalPoint>,
    normal_ppf: Vec<NormalPpf>,
    student_t: Vec<TPoint>,
    student_t_ppf: Vec<TPpf>,
    ln_gamma: Vec<GammaPoint>,
    incomplete_beta: Vec<BetaPoint>,
    paired: Vec<PairedCase>,
}

#[test]
fn distribution_functions_match_scipy() {
    let f: SpecialFixture = fixture("special.json");
    for p in &f.normal {
        assert_close(
            &format!("normal cdf({})", p.x),
            normal_cdf(p.x),
            p.cdf,
            0.0,
            1e-14,
        );
        assert_close(
            &format!("normal sf({})", p.x),
            normal_sf(p.x),
            p.sf,
            0.0,
            1e-14,
        );
    }
    for p in &f.normal_ppf {
        assert_close(
            &format!("normal ppf({})", p.p),
            normal_quantile(p.p),
            p.x,
            1e-14,
            1e-12,
        );
    }
    for p in &f.student_t {
        // Relative accuracy degrades only slowly with df (ln Γ differences of large numbers).
        let rel = if p.df > 1000.0 { 1e-9 } else { 1e-11 };
        assert_close(
            &format!("t cdf({}, df {})", p.t, p.df),
            student_t_cdf(p.t, p.df),
            p.cdf,
            0.0,
            rel,
        );
        assert_close(
            &format!("t sf({}, df {})", p.t, p.df),
            student_t_sf(p.t, p.df),
            p.sf,
            0.0,
            rel,
        );
    }
    for p in &f.student_t_ppf {
        assert_close(
            &format!("t ppf({}, df {})", p.p, p.df),
            student_t_quantile(p.p, p.df),
            p.t,
            1e-13,
            1e-10,
        );
    }
    for p in &f.ln_gamma {
        assert_close(
            &format!("ln_gamma({})", p.x),
            ln_gamma(p.x),
            p.value,
            1e-14,
            1e-13,
        );
    }
    for p in &f.incomplete_beta {
        assert_close(
            &format!("I_{}({}, {})", p.x, p.a, p.b),
            incomplete_beta(p.a, p.b, p.x),
            p.value,
            1e-300,
            1e-11,
        );
    }
}

#[test]
fn paired_t_test_matches_scipy_ttest_rel() {
    let f: SpecialFixture = fixture("special.json");
    assert!(f.paired.len() >= 4);
    for c in &f.paired {
        let n = c.a.len();
        let got = paired_comparison(&c.a, &c.b).unwrap();
        assert_eq!(got.n, n);
        assert_close(
            &format!("n={n} mean"),
            got.mean_difference,
            c.mean_difference,
            1e-15,
            1e-12,
        );
        assert_close(
            &format!("n={n} sd"),
            got.sd_difference,
            c.sd_difference,
            1e-15,
            1e-10,
        );
        assert_close(&format!("n={n} t"), got.t, c.t, 1e-12, 1e-10);
        assert_eq!(got.df, c.df);
        assert_close(&format!("n={n} p"), got.p_value, c.p_value, 1e-15, 1e-9);
        let (lo, hi) = got.ci(0.95).unwrap();
        assert_close(&format!("n={n} ci lo"), lo, c.ci95[0], 1e-12, 1e-9);
        assert_close(&format!("n={n} ci hi"), hi, c.ci95[1], 1e-12, 1e-9);
    }
}
