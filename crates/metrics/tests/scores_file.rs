//! The score-file reader and the `adn metrics` reports, including every bad-input error.

use std::path::{Path, PathBuf};

use adn_metrics::{
    ReportOptions, ScoresError, ScoresFile, auroc, compare_scores_files, delong_test,
    report_scores_file, report_scores_file_with,
};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A run record's `scores.csv`: 6 good images and two defect types.
const RUN_SCORES: &str = "path,category,defect,label,score
bottle/test/good/000.png,bottle,good,0,0.10
bottle/test/good/001.png,bottle,good,0,0.35
bottle/test/good/002.png,bottle,good,0,0.20
bottle/test/good/003.png,bottle,good,0,0.50
bottle/test/good/004.png,bottle,good,0,0.15
bottle/test/good/005.png,bottle,good,0,0.30
bottle/test/broken_large/000.png,bottle,broken_large,1,0.90
bottle/test/broken_large/001.png,bottle,broken_large,1,0.80
bottle/test/broken_large/002.png,bottle,broken_large,1,0.35
bottle/test/contamination/000.png,bottle,contamination,1,0.45
bottle/test/contamination/001.png,bottle,contamination,1,0.60
bottle/test/contamination/002.png,bottle,contamination,1,0.25
";

#[test]
fn run_record_scores_csv_reports_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "scores.csv", RUN_SCORES);
    let report = report_scores_file(&path).unwrap();
    for needle in [
        "Images: 12 (6 good, 6 anomalous)",
        "Overall (category bottle): 6 anomalous vs 6 good",
        "AUROC",
        "DeLong SE",
        "Average precision",
        "F1-max",
        "TPR @ FPR <= 1%",
        "TPR @ FPR <= 10%",
        "Per defect type (each against all 6 good images)",
        "broken_large",
        "contamination",
        "ROC curve",
        "bootstrap: 2000 stratified resamples, seed 0",
    ] {
        assert!(report.contains(needle), "missing `{needle}` in\n{report}");
    }
    // The overall AUROC is that of the parsed file.
    let file = ScoresFile::read(&path).unwrap();
    let a = auroc(&file.labels(), &file.scores()).unwrap();
    assert!(
        report.contains(&format!("AUROC              {a:.4}")),
        "{report}"
    );
    // broken_large vs good: 0.9 and 0.8 beat all 6, 0.35 beats 4 and ties 1 -> 16.5/18.
    let broken = format!("{:.4}", 16.5 / 18.0);
    let line = report.lines().find(|l| l.contains("broken_large")).unwrap();
    assert!(line.contains(&broken), "{line}");
    // Deterministic: same seed, same text.
    assert_eq!(report, report_scores_file(&path).unwrap());
}

#[test]
fn minimal_label_score_file_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "s.csv",
        "label,score\r\n0,1\r\n1,3\r\n0,2\r\n1,2.5\r\n\r\n",
    );
    let options = ReportOptions {
        fpr_bounds: vec![0.5],
        roc_points: false,
        ..Default::default()
    };
    let report = report_scores_file_with(&path, &options).unwrap();
    assert!(report.contains("AUROC              1.0000"), "{report}");
    assert!(report.contains("TPR @ FPR <= 50%"), "{report}");
    assert!(!report.contains("Per defect type"));
    assert!(!report.contains("ROC curve"));
}

#[test]
fn several_categories_get_their_own_sections() {
    let dir = tempfile::tempdir().unwrap();
    let text = "category,label,score,defect\n\
                a,0,0.1,good\na,0,0.2,good\na,1,0.9,crack\na,1,0.8,crack\n\
                b,0,0.5,good\nb,0,0.6,good\nb,1,0.55,hole\nb,1,0.7,hole\n";
    let path = write(dir.path(), "two.csv", text);
    let report = report_scores_file(&path).unwrap();
    assert!(report.contains("All 2 categories pooled"), "{report}");
    assert!(
        report.contains("Category a: 2 anomalous vs 2 good"),
        "{report}"
    );
    assert!(
        report.contains("Category b: 2 anomalous vs 2 good"),
        "{report}"
    );
}

fn err_text(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.csv", text);
    let err = report_scores_file(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad.csv"), "error must name the file: {msg}");
    msg
}

#[test]
fn bad_input_is_a_clear_error() {
    assert!(err_text("").contains("empty file"));
    assert!(err_text("label,score\n").contains("no data rows"));
    assert!(err_text("path,score\na,1\n").contains("bad.csv:1: the header must name"));
    let nan = err_text("label,score\n0,0.1\n1,NaN\n");
    assert!(
        nan.contains("bad.csv:3:") && nan.contains("not finite"),
        "{nan}"
    );
    assert!(err_text("label,score\n0,inf\n1,2\n").contains("bad.csv:2:"));
    assert!(err_text("label,score\n0,0.1\n1,abc\n").contains("`abc` is not a number"));
    assert!(err_text("label,score\n2,0.1\n").contains("bad.csv:2: label must be"));
    assert!(err_text("label,score\n0,0.1,7\n").contains("expected 2 fields"));
    assert!(err_text("label,score,label\n0,0.1,0\n").contains("appears twice"));
    let single = err_text("label,score\n0,0.1\n0,0.2\n");
    assert!(
        single.contains("only one class present (all good)"),
        "{single}"
    );
    let single = err_text("label,score\n1,0.1\n1,0.2\n");
    assert!(single.contains("all anomalous"), "{single}");
    let missing = report_scores_file(Path::new("/nonexistent/scores.csv")).unwrap_err();
    assert!(matches!(missing, ScoresError::Io { .. }));
    assert!(missing.to_string().contains("/nonexistent/scores.csv"));
}

const B_SCORES: &str = "path,category,defect,label,score
bottle/test/contamination/002.png,bottle,contamination,1,0.55
bottle/test/good/000.png,bottle,good,0,0.12
bottle/test/good/001.png,bottle,good,0,0.30
bottle/test/good/002.png,bottle,good,0,0.22
bottle/test/good/003.png,bottle,good,0,0.40
bottle/test/good/004.png,bottle,good,0,0.10
bottle/test/good/005.png,bottle,good,0,0.31
bottle/test/broken_large/000.png,bottle,broken_large,1,0.95
bottle/test/broken_large/001.png,bottle,broken_large,1,0.85
bottle/test/broken_large/002.png,bottle,broken_large,1,0.45
bottle/test/contamination/000.png,bottle,contamination,1,0.50
bottle/test/contamination/001.png,bottle,contamination,1,0.65
";

#[test]
fn compare_matches_by_path_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", RUN_SCORES);
    let b = write(dir.path(), "b.csv", B_SCORES);
    let report = compare_scores_files(&a, &b).unwrap();
    for needle in [
        "12 images matched by path (6 good, 6 anomalous)",
        "DeLong test of AUROC",
        "Paired bootstrap of the AUROC difference",
        "Per defect type",
        "broken_large",
        "Average precision",
    ] {
        assert!(report.contains(needle), "missing `{needle}` in\n{report}");
    }
    // The DeLong figures are those of the rows matched by path.
    let fa = ScoresFile::read(&a).unwrap();
    let fb = ScoresFile::read(&b).unwrap();
    let mut sb = Vec::new();
    for r in &fa.rows {
        let m = fb.rows.iter().find(|x| x.path == r.path).unwrap();
        sb.push(m.score);
    }
    let d = delong_test(&fa.labels(), &fa.scores(), &sb).unwrap();
    assert!(report.contains(&format!("z = {:.3}", d.z)), "{report}");

    // Comparing a file with itself: no difference, p = 1.
    let same = compare_scores_files(&a, &a).unwrap();
    assert!(same.contains("+0.00 pp"), "{same}");
    assert!(same.contains("p = 1.0000"), "{same}");
}

#[test]
fn compare_without_paths_uses_row_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.csv",
        "label,score\n0,0.1\n1,0.9\n0,0.3\n1,0.4\n",
    );
    let b = write(
        dir.path(),
        "b.csv",
        "label,score\n0,0.2\n1,0.5\n0,0.6\n1,0.7\n",
    );
    let report = compare_scores_files(&a, &b).unwrap();
    assert!(report.contains("4 images matched by row order"), "{report}");
    assert!(report.contains("+25.00 pp"), "{report}");
}

#[test]
fn compare_mismatches_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", RUN_SCORES);
    // One image renamed in B.
    let renamed = B_SCORES.replace("good/005.png", "good/999.png");
    let b = write(dir.path(), "b.csv", &renamed);
    let msg = compare_scores_files(&a, &b).unwrap_err().to_string();
    assert!(msg.contains("a.csv vs") && msg.contains("b.csv"), "{msg}");
    assert!(
        msg.contains("only in A: 1 (bottle/test/good/005.png)"),
        "{msg}"
    );
    assert!(
        msg.contains("only in B: 1 (bottle/test/good/999.png)"),
        "{msg}"
    );

    // A label that disagrees.
    let flipped = B_SCORES.replace("good/004.png,bottle,good,0", "good/004.png,bottle,good,1");
    let b = write(dir.path(), "b.csv", &flipped);
    let msg = compare_scores_files(&a, &b).unwrap_err().to_string();
    assert!(
        msg.contains("image `bottle/test/good/004.png`: label 0 in A (line 6) but 1 in B"),
        "{msg}"
    );

    // A duplicated path.
    let dup = format!("{RUN_SCORES}bottle/test/good/000.png,bottle,good,0,0.11\n");
    let d = write(dir.path(), "dup.csv", &dup);
    let msg = compare_scores_files(&d, &a).unwrap_err().to_string();
    assert!(
        msg.contains("dup.csv:14: path `bottle/test/good/000.png` already appeared on line 2"),
        "{msg}"
    );

    // Row order: different lengths, then different labels.
    let x = write(dir.path(), "x.csv", "label,score\n0,0.1\n1,0.9\n");
    let y = write(dir.path(), "y.csv", "label,score\n0,0.1\n1,0.9\n1,0.3\n");
    let msg = compare_scores_files(&x, &y).unwrap_err().to_string();
    assert!(msg.contains("2 rows vs 3 rows"), "{msg}");
    let y = write(dir.path(), "y.csv", "label,score\n1,0.1\n0,0.9\n");
    let msg = compare_scores_files(&x, &y).unwrap_err().to_string();
    assert!(
        msg.contains("row 1: label 0 in A (line 2) but 1 in B (line 2)"),
        "{msg}"
    );

    // A NaN in B is reported with B's line.
    let y = write(dir.path(), "y.csv", "label,score\n0,0.1\n1,nan\n");
    let msg = compare_scores_files(&x, &y).unwrap_err().to_string();
    assert!(msg.contains("y.csv:3:"), "{msg}");
}
