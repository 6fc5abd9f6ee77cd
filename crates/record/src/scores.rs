//! `scores.csv`: one row per test image, in the dataset's order, with the image's anomaly
//! score after the last meta-epoch.

use std::path::Path;

use crate::RecordError;

/// One row of `scores.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub path: String,
    pub category: String,
    /// `good` for defect-free images.
    pub defect: String,
    /// 1 for anomalous images.
    pub label: u8,
    pub score: f64,
}

/// The header of a run's `scores.csv`.
pub const HEADER: &str = "path,category,defect,label,score";

/// The `scores.csv` text (scores with ten significant digits).
pub fn scores_csv(scores: &[ScoreRow]) -> String {
    let mut csv = format!("{HEADER}\n");
    for r in scores {
        csv.push_str(&format!(
            "{},{},{},{},{:.9e}\n",
            csv_field(&r.path),
            csv_field(&r.category),
            csv_field(&r.defect),
            r.label,
            r.score
        ));
    }
    csv
}

/// Reads a run's `scores.csv`: every column of [`HEADER`] must be there.
pub fn read_scores(path: &Path) -> Result<Vec<ScoreRow>, RecordError> {
    let file = adn_metrics::ScoresFile::read(path)?;
    if !(file.has_path && file.has_category && file.has_defect) {
        return Err(RecordError::Invalid {
            path: path.to_path_buf(),
            reason: format!("a run's scores file has the columns {HEADER}"),
        });
    }
    Ok(file
        .rows
        .into_iter()
        .map(|r| ScoreRow {
            path: r.path.unwrap_or_default(),
            category: r.category.unwrap_or_default(),
            defect: r.defect.unwrap_or_default(),
            label: r.label as u8,
            score: r.score,
        })
        .collect())
}

/// Quotes a CSV field when it holds a comma, quote or newline.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_a_write_and_a_read_with_awkward_paths() {
        let rows = vec![
            ScoreRow {
                path: "a, \"b\".png".into(),
                category: "c".into(),
                defect: "good".into(),
                label: 0,
                score: -1.25,
            },
            ScoreRow {
                path: "d.png".into(),
                category: "c".into(),
                defect: "crack".into(),
                label: 1,
                score: 3.5e7,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.csv");
        std::fs::write(&path, scores_csv(&rows)).unwrap();
        assert_eq!(read_scores(&path).unwrap(), rows);
        std::fs::write(&path, "label,score\n0,1.0\n1,2.0\n").unwrap();
        let err = read_scores(&path).unwrap_err().to_string();
        assert!(err.contains("scores.csv") && err.contains(HEADER), "{err}");
    }
}
