//! What `adn explain` and `adn eval` write beside the run records: `explain.json` (each
//! run's own anomaly map of a few test images, and DifferNet's Grad-CAM), `attention.json`
//! (every attention gate on good and defective images) and `eval.json` (a run rescored on
//! other data). The runner writes these types and the report reads them, strictly, so each
//! field is declared here once.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{CacheStats, RecordError, files, read_json};

/// `explain.json`: the qualitative figures' test images (rows) and runs (columns).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Explanation {
    /// The backbone layer Grad-CAM looked at.
    pub layer: String,
    /// The largest Grad-CAM value over every image and run: the one scale at which every
    /// `cams` file is stored (score units per activation position).
    pub cam_max: f32,
    /// Test images (rows).
    pub images: Vec<ExplainedImage>,
    /// Runs (columns): folder, attention, flow, the Grad-CAM and map files of every image.
    pub runs: Vec<ExplainedRun>,
    /// The resized inputs, one per image.
    pub inputs: Vec<String>,
    /// How each flow's maps were made, in words: one entry per flow among the runs, in the
    /// order the runs first show it.
    pub maps: Vec<MapDescription>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainedImage {
    pub path: String,
    /// `good` or the defect type.
    pub defect: String,
    pub anomalous: bool,
    /// Why it was picked: `first of its type`, `missed by the first run` or `good`.
    pub why: String,
    /// Its ground-truth mask at the input size (8-bit, 255 = defect), when it has one.
    pub mask: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainedRun {
    pub run_dir: String,
    pub attention: String,
    /// The run's flow by its paper's name (`DifferNet`, `FastFlow`, `CS-Flow`, `CFlow-AD`).
    pub flow: String,
    /// Grad-CAM of every image as a 16-bit gray PNG, `value / cam_max`; empty for a flow
    /// on feature maps (Grad-CAM is of DifferNet's score of pooled features).
    pub cams: Vec<String>,
    /// The run's own anomaly map of every image as a 16-bit gray PNG, `value / map_max`
    /// of the same image.
    pub maps: Vec<String>,
    /// Each image's map scale: the largest value of that image's maps over the runs of
    /// the same flow, so that the variants of one flow share a row's colours (maps of
    /// different flows are in different units).
    pub map_max: Vec<f32>,
    /// Every image's anomaly score in the run's `scores.csv`, and the threshold with the
    /// best F1 over its test set (anomalous when `score >= threshold`).
    pub scores: Vec<f64>,
    pub threshold: f64,
}

/// How one flow's maps were made; `how` reads `"<what>: <how it was made>"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MapDescription {
    pub flow: String,
    pub how: String,
}

impl Explanation {
    /// `explain.json` of the `adn explain` folder `dir`, refusing one whose runs do not
    /// carry a map, a scale and a score for every image (and a Grad-CAM, when they have
    /// any), or whose flows are not described.
    pub fn read(dir: &Path) -> Result<Explanation, RecordError> {
        let path = dir.join(files::EXPLAIN);
        let e: Explanation = read_json(&path, "explain.json")?;
        let n = e.images.len();
        let invalid = |reason: String| RecordError::Invalid {
            path: path.clone(),
            reason,
        };
        if e.inputs.len() != n {
            return Err(invalid(format!("{} inputs for {n} images", e.inputs.len())));
        }
        for r in &e.runs {
            for (what, len) in [
                ("maps", r.maps.len()),
                ("map_max", r.map_max.len()),
                ("scores", r.scores.len()),
            ] {
                if len != n {
                    return Err(invalid(format!(
                        "run {} has {len} {what} for {n} images",
                        r.run_dir
                    )));
                }
            }
            if !r.cams.is_empty() && r.cams.len() != n {
                return Err(invalid(format!(
                    "run {} has {} cams for {n} images",
                    r.run_dir,
                    r.cams.len()
                )));
            }
            if !e.maps.iter().any(|m| m.flow == r.flow) {
                return Err(invalid(format!(
                    "run {} has flow {:?}, whose maps are not described",
                    r.run_dir, r.flow
                )));
            }
        }
        Ok(e)
    }

    /// Whether every run has its Grad-CAM (all are DifferNet's).
    pub fn has_cams(&self) -> bool {
        self.runs.iter().all(|r| !r.cams.is_empty())
    }
}

/// `attention.json`: the gates of every run with attention on the same images.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionPictures {
    /// The images, good ones first, each as the pictures' column order has it.
    pub images: Vec<PictureImage>,
    pub runs: Vec<RunGates>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PictureImage {
    pub path: String,
    /// `good` or the defect type.
    pub defect: String,
    pub anomalous: bool,
    /// The resized input, in the output folder.
    pub input: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunGates {
    pub run_dir: String,
    pub attention: String,
    pub positions: Vec<PositionGates>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionGates {
    pub position: String,
    pub gates: Vec<GateValues>,
}

/// One gate on every image: `channel` with shape `[images, C]`, or `spatial` with shape
/// `[images, H, W]` at the position's resolution; values row-major.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateValues {
    pub gate: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl GateValues {
    /// Image `i`'s values.
    pub fn of_image(&self, i: usize) -> &[f32] {
        let per = self.values.len() / self.shape[0].max(1);
        &self.values[i * per..(i + 1) * per]
    }
}

impl AttentionPictures {
    /// `attention.json` of the `adn explain` folder `dir`, refusing an unknown gate or a
    /// shape that does not match the images and the values.
    pub fn read(dir: &Path) -> Result<AttentionPictures, RecordError> {
        let path = dir.join(files::ATTENTION_GATES);
        let p: AttentionPictures = read_json(&path, "attention.json")?;
        for run in &p.runs {
            for pos in &run.positions {
                for g in &pos.gates {
                    let want = match g.gate.as_str() {
                        "channel" => 2,
                        "spatial" => 3,
                        other => {
                            return Err(RecordError::Invalid {
                                path,
                                reason: format!("unknown gate {other:?}"),
                            });
                        }
                    };
                    if g.shape.len() != want
                        || g.shape[0] != p.images.len()
                        || g.shape.iter().product::<usize>() != g.values.len()
                    {
                        return Err(RecordError::Invalid {
                            path,
                            reason: format!(
                                "the {} gate at {} of {} has shape {:?} and {} values for {} \
                                 images",
                                g.gate,
                                pos.position,
                                run.run_dir,
                                g.shape,
                                g.values.len(),
                                p.images.len()
                            ),
                        });
                    }
                }
            }
        }
        Ok(p)
    }
}

/// `eval.json`: a run's model rescored on a dataset folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRecord {
    pub source_run: String,
    pub data_root: String,
    pub category: String,
    pub test_images: usize,
    pub auroc: f64,
    pub device: String,
    pub feature_cache: CacheStats,
    /// Whether the model files' SHA-256 are the ones the run recorded. `adn eval` refuses
    /// other files unless told `--any-model`; then this says they were not the run's.
    pub model_matches_record: bool,
}

impl EvalRecord {
    /// `eval.json` of the `adn eval` folder `dir`.
    pub fn read(dir: &Path) -> Result<EvalRecord, RecordError> {
        read_json(&dir.join(files::EVAL), "eval.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(shape: Vec<usize>, values: usize) -> AttentionPictures {
        AttentionPictures {
            images: vec![PictureImage {
                path: "a.png".into(),
                defect: "good".into(),
                anomalous: false,
                input: "attention_input_0.png".into(),
            }],
            runs: vec![RunGates {
                run_dir: "runs/x".into(),
                attention: "se".into(),
                positions: vec![PositionGates {
                    position: "conv2".into(),
                    gates: vec![GateValues {
                        gate: "channel".into(),
                        shape,
                        values: vec![0.5; values],
                    }],
                }],
            }],
        }
    }

    #[test]
    fn attention_json_round_trips_and_a_wrong_shape_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |p: &AttentionPictures| {
            std::fs::write(
                dir.path().join(files::ATTENTION_GATES),
                serde_json::to_string(p).unwrap(),
            )
            .unwrap()
        };
        write(&gates(vec![1, 4], 4));
        let back = AttentionPictures::read(dir.path()).unwrap();
        assert_eq!(back.runs[0].positions[0].gates[0].of_image(0), &[0.5; 4]);
        write(&gates(vec![1, 4], 3));
        let err = AttentionPictures::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("attention.json"), "{err}");
        assert!(err.contains("[1, 4]") && err.contains("3 values"), "{err}");
    }

    #[test]
    fn explain_json_with_a_missing_or_unknown_field_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = Explanation {
            layer: "relu5".into(),
            cam_max: 1.0,
            images: vec![],
            runs: vec![],
            inputs: vec![],
            maps: vec![MapDescription {
                flow: "DifferNet".into(),
                how: "DifferNet's input gradient".into(),
            }],
        };
        let mut v = serde_json::to_value(&e).unwrap();
        std::fs::write(dir.path().join(files::EXPLAIN), v.to_string()).unwrap();
        assert_eq!(Explanation::read(dir.path()).unwrap().layer, "relu5");
        v["extra"] = 1.into();
        std::fs::write(dir.path().join(files::EXPLAIN), v.to_string()).unwrap();
        let err = Explanation::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("explain.json") && err.contains("extra"),
            "{err}"
        );
        v.as_object_mut().unwrap().remove("extra");
        v.as_object_mut().unwrap().remove("maps");
        std::fs::write(dir.path().join(files::EXPLAIN), v.to_string()).unwrap();
        let err = Explanation::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("maps"), "{err}");
    }

    #[test]
    fn explain_json_runs_need_described_flows_and_grad_cam_for_every_image_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let run = |flow: &str, cams: usize| ExplainedRun {
            run_dir: format!("runs/{flow}"),
            attention: "none".into(),
            flow: flow.into(),
            cams: vec!["cam.png".into(); cams],
            maps: vec!["map.png".into()],
            map_max: vec![1.0],
            scores: vec![0.5],
            threshold: 0.4,
        };
        let read = |runs: Vec<ExplainedRun>| {
            let e = Explanation {
                layer: "stage4".into(),
                cam_max: 1.0,
                images: vec![ExplainedImage {
                    path: "a.png".into(),
                    defect: "crack".into(),
                    anomalous: true,
                    why: "first of its type".into(),
                    mask: None,
                }],
                runs,
                inputs: vec!["input_0.png".into()],
                maps: ["DifferNet", "FastFlow"]
                    .map(|flow| MapDescription {
                        flow: flow.into(),
                        how: format!("{flow}'s map"),
                    })
                    .to_vec(),
            };
            std::fs::write(
                dir.path().join(files::EXPLAIN),
                serde_json::to_string(&e).unwrap(),
            )
            .unwrap();
            Explanation::read(dir.path()).map_err(|e| e.to_string())
        };
        // A flow on maps has no Grad-CAM: the explanation is read, without cams.
        let e = read(vec![run("DifferNet", 1), run("FastFlow", 0)]).unwrap();
        assert!(!e.has_cams());
        assert!(read(vec![run("DifferNet", 1)]).unwrap().has_cams());
        let err = read(vec![run("DifferNet", 2)]).unwrap_err();
        assert!(err.contains("2 cams for 1 images"), "{err}");
        let err = read(vec![run("CS-Flow", 0)]).unwrap_err();
        assert!(
            err.contains("\"CS-Flow\"") && err.contains("not described"),
            "{err}"
        );
    }
}
