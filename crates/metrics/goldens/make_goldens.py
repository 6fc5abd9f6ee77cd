#!/usr/bin/env python3
"""Regenerates the golden fixtures of adn-metrics (crates/metrics/tests/fixtures/*.json).

Dev-only: the Rust tests read the committed JSON and never run Python. Needs numpy,
scikit-learn and scipy:

    .venv/bin/pip install scikit-learn scipy
    .venv/bin/python crates/metrics/goldens/make_goldens.py

References:
- AUROC, ROC curve, average precision: scikit-learn (roc_auc_score, roc_curve,
  average_precision_score).
- F1-max and TPR at FPR <= bound: derived from scikit-learn's roc_curve counts (the highest
  threshold wins ties for F1-max; TPR is the last ROC point with FPR <= bound, no interpolation).
- DeLong: a brute-force O(n^2) implementation written from the definition below (structural
  components V10, V01 of DeLong, DeLong & Clarke-Pearson 1988), independent of the midrank
  algorithm the Rust code uses.
- Normal and Student-t distribution functions: mpmath at 50 digits (it comes with torch's
  sympy in the project venv), each value cross-checked against scipy.stats to 1e-12 relative
  where scipy is that accurate (scipy's normal tail loses ~1e-13 beyond z = 30 because it
  divides z by sqrt(2) first). Paired t-test: scipy.stats.ttest_rel.

Infinite thresholds are written as null (JSON has no infinity).
"""

import json
import math
from pathlib import Path

import mpmath
import numpy as np
import scipy
import scipy.special
import scipy.stats
import sklearn
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
FPR_BOUNDS = [0.0, 0.01, 0.05, 0.1, 0.3, 1.0]


def floats(xs):
    return [None if math.isinf(x) else float(x) for x in xs]


def f1_max_from_roc(fpr, tpr, thr, pos, neg):
    """Max of 2tp / (tp + fp + P) over thresholds; the first (highest threshold) wins ties."""
    best = (0.0, math.inf, 0.0, 0.0)
    for k in range(1, len(thr)):
        tp = int(round(tpr[k] * pos))
        fp = int(round(fpr[k] * neg))
        f1 = (2 * tp) / (tp + fp + pos)
        if f1 > best[0]:
            best = (f1, float(thr[k]), tp / (tp + fp), tp / pos)
    return best


def tpr_at_fpr_from_roc(fpr, tpr, thr, bound):
    idx = [k for k in range(len(fpr)) if fpr[k] <= bound]
    k = idx[-1]  # the (0, 0) point at +inf always qualifies
    return {"max_fpr": bound, "tpr": float(tpr[k]), "fpr": float(fpr[k]),
            "threshold": None if math.isinf(thr[k]) else float(thr[k])}


def psi(x, y):
    return (x[:, None] > y[None, :]).astype(float) + 0.5 * (x[:, None] == y[None, :])


def delong_components(labels, scores):
    """Brute-force structural components from the definition: V10[i] = mean_j psi(X_i, Y_j),
    V01[j] = mean_i psi(X_i, Y_j), X the anomalous scores, Y the good ones."""
    x = scores[labels == 1]
    y = scores[labels == 0]
    p = psi(x, y)
    return p.mean(axis=1), p.mean(axis=0)


def delong_reference(labels, a, b=None):
    a10, a01 = delong_components(labels, a)
    m, n = len(a10), len(a01)
    var_a = np.var(a10, ddof=1) / m + np.var(a01, ddof=1) / n
    out = {"auroc_a": float(a10.mean()), "variance_a": float(var_a)}
    if b is None:
        return out
    b10, b01 = delong_components(labels, b)
    var_b = np.var(b10, ddof=1) / m + np.var(b01, ddof=1) / n
    cov = np.cov(a10, b10, ddof=1)[0, 1] / m + np.cov(a01, b01, ddof=1)[0, 1] / n
    diff = a10.mean() - b10.mean()
    var_diff = max(var_a + var_b - 2 * cov, 0.0)
    if var_diff > 0:
        z = diff / math.sqrt(var_diff)
        p_value = float(min(1.0, 2 * scipy.stats.norm.sf(abs(z))))
    else:
        assert diff == 0
        z, p_value = 0.0, 1.0
    out.update({"auroc_b": float(b10.mean()), "variance_b": float(var_b),
                "covariance": float(cov), "difference": float(diff),
                "std_error": math.sqrt(var_diff), "z": float(z), "p_value": p_value})
    return out


def metric_case(name, labels, scores, with_curves=True):
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    pos, neg = int(labels.sum()), int(len(labels) - labels.sum())
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    dfpr, dtpr, dthr = roc_curve(labels, scores, drop_intermediate=True)
    f1, f1_thr, f1_p, f1_r = f1_max_from_roc(fpr, tpr, thr, pos, neg)
    case = {
        "name": name,
        "labels": labels.tolist(),
        "scores": scores.tolist(),
        "auroc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "f1_max": {"f1": f1, "threshold": f1_thr, "precision": f1_p, "recall": f1_r},
        "tpr_at_fpr": [tpr_at_fpr_from_roc(fpr, tpr, thr, b) for b in FPR_BOUNDS],
        "roc_full_len": len(fpr),
        "roc_dropped_len": len(dfpr),
        "delong": delong_reference(labels, scores) if min(pos, neg) >= 2 else None,
    }
    if with_curves:
        case["roc_full"] = {"fpr": floats(fpr), "tpr": floats(tpr), "thresholds": floats(thr)}
        case["roc_dropped"] = {"fpr": floats(dfpr), "tpr": floats(dtpr),
                               "thresholds": floats(dthr)}
    return case


def metric_cases(rng):
    cases = []
    lab = rng.integers(0, 2, 30)
    cases.append(metric_case("ties_small_integers", lab, rng.integers(0, 5, 30)))
    lab = rng.integers(0, 2, 200)
    cases.append(metric_case("ties_medium", lab, np.round(rng.normal(size=200) + 0.8 * lab, 1)))
    lab = rng.integers(0, 2, 150)
    cases.append(metric_case("continuous", lab, np.round(rng.normal(size=150) + lab, 6)))
    lab = np.array([0] * 9 + [1] * 11)
    cases.append(metric_case("all_equal", rng.permutation(lab), np.full(20, 0.5)))
    lab = np.array([0] * 6 + [1] * 6)
    cases.append(metric_case("perfect", lab, np.arange(12) / 4.0))
    cases.append(metric_case("inverted", lab, -np.arange(12) / 4.0))
    cases.append(metric_case("tiny_two", [0, 1], [0.2, 0.7]))
    cases.append(metric_case("tiny_three", [1, 0, 1], [0.3, 0.3, 0.9]))
    cases.append(metric_case("tiny_four_tied_pair", [0, 0, 1, 1], [0.1, 0.3, 0.3, 0.4]))
    lab = np.array([0] * 100 + [1] * 3)
    cases.append(metric_case("imbalanced", lab, np.round(rng.normal(size=103) + 1.5 * lab, 2)))
    cases.append(metric_case("signed_zero_and_negative", [0, 1, 0, 1, 1, 0],
                             [-0.0, 0.0, -1.5, 2.0, -1.5, 0.0]))
    lab = rng.integers(0, 2, 5000)
    cases.append(metric_case("large_ties", lab,
                             np.round(rng.normal(size=5000) + 0.7 * lab, 2), with_curves=False))
    return cases


def delong_cases(rng):
    cases = []

    def add(name, labels, a, b):
        labels = np.asarray(labels, dtype=int)
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        ref = delong_reference(labels, a, b)
        # Cross-check the reference against scikit-learn.
        assert abs(ref["auroc_a"] - roc_auc_score(labels, a)) < 1e-12
        assert abs(ref["auroc_b"] - roc_auc_score(labels, b)) < 1e-12
        cases.append({"name": name, "labels": labels.tolist(), "scores_a": a.tolist(),
                      "scores_b": b.tolist(), **ref})

    lab = rng.integers(0, 2, 100)
    a = np.round(rng.normal(size=100) + lab, 5)
    add("correlated_continuous", lab, a, np.round(a + rng.normal(scale=0.7, size=100), 5))
    lab = rng.integers(0, 2, 60)
    add("heavy_ties", lab, rng.integers(0, 4, 60) + lab, rng.integers(0, 3, 60) + lab)
    add("identical", lab, a[:60], a[:60])
    add("monotone_transform", lab, a[:60], np.round(np.exp(a[:60]), 12))
    add("tiny_two_each", [0, 1, 0, 1], [0.1, 0.8, 0.4, 0.5], [0.3, 0.2, 0.1, 0.9])
    lab = np.array([0] * 80 + [1] * 4)
    add("imbalanced", lab, np.round(rng.normal(size=84) + 2 * lab, 3),
        np.round(rng.normal(size=84) + lab, 3))
    lab = rng.integers(0, 2, 2000)
    a = np.round(rng.normal(size=2000) + 0.9 * lab, 2)
    add("large_ties", lab, a, np.round(a + rng.normal(scale=0.5, size=2000) - 0.1 * lab, 2))
    return cases


def close(a, b, rel):
    return abs(a - b) <= rel * abs(b)


def mp_normal_sf(x):
    return float(mpmath.erfc(mpmath.mpf(x) / mpmath.sqrt(2)) / 2)


def mp_t_sf(t, df):
    """P(T > t) = I_{df/(df+t^2)}(df/2, 1/2) / 2 for t >= 0."""
    t, df = mpmath.mpf(t), mpmath.mpf(df)
    tail = mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2
    return tail if t >= 0 else 1 - tail


def special_values():
    mpmath.mp.dps = 50
    xs = [-8.0, -5.0, -3.0, -1.96, -1.0, -0.5, -1e-3, 0.0, 0.3, 1.0, 1.5, 2.0, 2.5, 3.0,
          3.5, 3.6, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 37.0]
    normal = []
    for x in xs:
        cdf, sf = mp_normal_sf(-x), mp_normal_sf(x)
        assert close(scipy.stats.norm.cdf(x), cdf, 1e-12 if x > -30 else 1e-12 * abs(x) ** 2)
        assert close(scipy.stats.norm.sf(x), sf, 1e-12 if x < 30 else 1e-12 * x ** 2)
        normal.append({"x": x, "cdf": cdf, "sf": sf})
    ps = [1e-10, 1e-3, 0.025, 0.1, 0.5, 0.8, 0.975, 0.999]
    normal_ppf = []
    for p in ps:
        x = float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(p) - 1))
        assert close(scipy.stats.norm.ppf(p), x, 1e-12) or x == 0.0
        normal_ppf.append({"p": p, "x": x})
    dfs = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 10.5, 29.0, 100.0, 1000.0, 1e5]
    ts = [0.0, 0.1, 0.5, 1.0, 2.0, 2.5, 4.0, 10.0, 50.0, 1e3, -1.0, -3.0]
    student_t = []
    for df in dfs:
        for t in ts:
            sf, cdf = float(mp_t_sf(t, df)), float(1 - mp_t_sf(t, df))
            assert close(scipy.stats.t.sf(t, df), sf, 1e-9), (t, df)
            assert close(scipy.stats.t.cdf(t, df), cdf, 1e-9), (t, df)
            student_t.append({"t": t, "df": df, "cdf": cdf, "sf": sf})
    t_ppf = [{"p": p, "df": df, "t": float(scipy.stats.t.ppf(p, df))}
             for df in [1.0, 2.0, 4.0, 9.0, 30.0]
             for p in [1e-6, 0.025, 0.6, 0.9, 0.975, 0.995, 0.9995]]
    lgamma = [{"x": x, "value": math.lgamma(x)}
              for x in [0.1, 0.5, 1.0, 1.5, 2.5, 3.0, 10.0, 100.5, 1e4, 1e6]]
    betainc = [{"a": a, "b": b, "x": x, "value": float(scipy.special.betainc(a, b, x))}
               for (a, b) in [(0.5, 0.5), (2.0, 3.0), (4.5, 0.5), (50.0, 0.5), (1.0, 1.0)]
               for x in [1e-4, 0.1, 0.5, 0.9, 0.999]]
    return {"normal": normal, "normal_ppf": normal_ppf, "student_t": student_t,
            "student_t_ppf": t_ppf, "ln_gamma": lgamma, "incomplete_beta": betainc}


def paired_cases(rng):
    cases = []
    for n in [2, 3, 5, 10, 30]:
        a = np.round(0.9 + 0.02 * rng.normal(size=n), 4)
        b = np.round(a - 0.01 + 0.01 * rng.normal(size=n), 4)
        res = scipy.stats.ttest_rel(a, b)
        d = a - b
        ci = res.confidence_interval(0.95)
        cases.append({"a": a.tolist(), "b": b.tolist(), "mean_difference": float(d.mean()),
                      "sd_difference": float(d.std(ddof=1)), "t": float(res.statistic),
                      "df": float(res.df), "p_value": float(res.pvalue),
                      "ci95": [float(ci.low), float(ci.high)]})
    return cases


def dump(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
    print(f"{path}: {path.stat().st_size} bytes")


def main():
    rng = np.random.default_rng(20240611)
    versions = {"numpy": np.__version__, "scikit-learn": sklearn.__version__,
                "scipy": scipy.__version__, "mpmath": mpmath.__version__}
    dump("metrics.json", {"versions": versions, "cases": metric_cases(rng)})
    dump("delong.json", {"versions": versions, "cases": delong_cases(rng)})
    dump("special.json", {"versions": versions, **special_values(),
                          "paired": paired_cases(rng)})


if __name__ == "__main__":
    main()
