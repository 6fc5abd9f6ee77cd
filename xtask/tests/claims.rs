//! The README's and the results READMEs' numbers are the committed data's: every decimal
//! number in their prose must appear, rounded as written, in the tables of the experiments
//! the text is about (tables.md, headline.md, summary.csv, runs.csv; fractions also as
//! percent), or be listed below with what it is instead. The generated headline blocks are
//! the tables themselves and are not read.
//!
//! It matches by value, so it is a net, not a proof: a wrong number that happens to equal
//! another number of the same tables passes. Whole numbers (counts, sizes, seeds) are not
//! checked.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A decimal number as written: its value and its number of decimals (of the mantissa when
/// written in scientific notation, `2.06e-4`).
#[derive(Debug, Clone, Copy)]
struct Written {
    value: f64,
    decimals: usize,
    scientific: bool,
}

/// Every decimal number of `text` (`1.49`, `.004`, `−31.37`, `2e-4`); signs are dropped, as
/// the tables write differences with a sign and the prose often without.
fn decimals_in(text: &str) -> Vec<(String, Written)> {
    let bytes: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts = c.is_ascii_digit()
            || (c == '.' && bytes.get(i + 1).is_some_and(|d| d.is_ascii_digit()));
        let after_word = i > 0 && (bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        if !starts || after_word {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == '.') {
            j += 1;
        }
        let mut token: String = bytes[i..j].iter().collect();
        token = token.trim_end_matches('.').to_string();
        // Scientific notation: 2e-4, 3.1e-05.
        if j < bytes.len() && bytes[j] == 'e' {
            let mut k = j + 1;
            if k < bytes.len() && (bytes[k] == '-' || bytes[k] == '+') {
                k += 1;
            }
            let exp_start = k;
            while k < bytes.len() && bytes[k].is_ascii_digit() {
                k += 1;
            }
            if k > exp_start {
                let sci: String = bytes[i..k].iter().collect();
                let mantissa = &sci[..sci.find('e').unwrap_or(sci.len())];
                if let Ok(value) = sci.parse::<f64>() {
                    out.push((
                        sci.clone(),
                        Written {
                            value,
                            decimals: mantissa.find('.').map_or(0, |d| mantissa.len() - d - 1),
                            scientific: true,
                        },
                    ));
                }
                i = k;
                continue;
            }
        }
        // Dotted names (versions like 2.13.0, file names) are not numbers.
        let dotted = token.matches('.').count() > 1
            || (j < bytes.len() && bytes[j].is_alphabetic() && bytes[j] != 'e');
        if let (false, Some(dot)) = (dotted, token.find('.'))
            && let Ok(value) = format!("0{token}").parse::<f64>()
        {
            out.push((
                token.clone(),
                Written {
                    value,
                    decimals: token.len() - dot - 1,
                    scientific: false,
                },
            ));
        }
        i = j;
    }
    out
}

/// Every number of a source file, as full-precision values.
fn numbers_of(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut values = Vec::new();
    for token in text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-')) {
        let t = token.trim_matches(|c| c == '-' || c == '.' || c == 'e');
        if let Ok(v) = t.parse::<f64>() {
            values.push(v.abs());
        }
    }
    values
}

/// Whether `w` is `v` rounded as written (or `v` as percent).
fn matches(w: Written, v: f64) -> bool {
    let d = w.decimals;
    [v, 100.0 * v].iter().any(|&v| {
        let rounded = if w.scientific {
            format!("{v:.d$e}")
        } else {
            format!("{v:.d$}")
        };
        rounded.parse::<f64>() == Ok(w.value)
    })
}

/// The prose of a Markdown file: without its generated headline blocks and code.
fn prose(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    let (mut generated, mut code) = (false, false);
    for line in text.lines() {
        if line.starts_with("<!-- headline:") {
            generated = true;
        } else if line.starts_with("<!-- /headline:") {
            generated = false;
        } else if line.starts_with("```") {
            code = !code;
        } else if !generated && !code {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Checks one README against the tables of `experiments`; `other` lists the numbers that
/// are not results, each with what it is.
fn check(readme: &str, experiments: &[&str], other: &[(&str, &str)]) -> Vec<String> {
    let root = root();
    let mut values = Vec::new();
    for exp in experiments {
        let dir = root.join("results").join(exp);
        for file in [
            "tables/tables.md",
            "tables/headline.md",
            "tables/summary.csv",
            "runs.csv",
        ] {
            // Every experiment has its tables and runs; a headline only where it has one.
            let path = dir.join(file);
            if path.exists() || file != "tables/headline.md" {
                values.extend(numbers_of(&path));
            }
        }
    }
    decimals_in(&prose(&root.join(readme)))
        .into_iter()
        .filter(|(token, w)| {
            !other.iter().any(|(t, _)| t == token) && !values.iter().any(|&v| matches(*w, v))
        })
        .map(|(token, _)| format!("{readme}: {token}"))
        .collect()
}

#[test]
fn the_number_reader_reads_what_the_prose_writes() {
    let found: Vec<String> = decimals_in(
        "Δ −31.37 pp (p .004, 2e-4), torch 2.13.0, stage2, x1.5, 0.5 ×, 12 runs, sha 3.1e-05.",
    )
    .into_iter()
    .map(|(t, _)| t)
    .collect();
    assert_eq!(found, ["31.37", ".004", "2e-4", "0.5", "3.1e-05"]);
    let w = |t: &str| decimals_in(t)[0].1;
    assert!(matches(w("0.55"), 0.5512));
    assert!(matches(w("89.54"), 0.895417));
    assert!(!matches(w("89.55"), 0.895417));
    assert!(matches(w("2e-4"), 0.000213));
    assert!(matches(w("2.06e-4"), 0.000206_4));
    assert!(!matches(w("2.06e-4"), 0.000213));
    assert!(matches(w(".004"), 0.00412));
}

#[test]
fn every_result_number_in_the_readmes_is_in_the_committed_tables() {
    let mut unmatched = Vec::new();
    unmatched.extend(check(
        "README.md",
        &["demo", "attention", "families-pilot", "families"],
        &[],
    ));
    unmatched.extend(check(
        "results/families-pilot/README.md",
        &["families-pilot"],
        &[],
    ));
    unmatched.extend(check(
        "results/families/README.md",
        &["families", "families-pilot"],
        &[],
    ));
    unmatched.extend(check(
        "results/demo/README.md",
        &["demo"],
        &[
            ("3.3", "in: a one-column figure's print width"),
            ("9.5", "pt: the figures' largest text at print size"),
        ],
    ));
    unmatched.extend(check(
        "results/attention/README.md",
        &["attention", "attention-pilot"],
        &[(
            "2.80",
            "the mean −log det of the pilot's 5 SE joint runs (loss_neg_log_det_last, runs.csv)",
        )],
    ));
    assert!(
        unmatched.is_empty(),
        "numbers not found in the committed tables (fix the text, or list them with what \
         they are): {unmatched:#?}"
    );
}
