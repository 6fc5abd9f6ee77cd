//! The on-disk feature cache.
//!
//! When nothing before the flow trains, the pooled feature of an (image, rotation) never
//! changes, so it is computed once and reused across epochs, reruns, variants and seeds.
//! An entry's key hashes everything its value depends on: the image file's bytes, the
//! rotation angle, and the extractor (backbone, weights file hash or random seed, attention
//! and its seed, feature layers, scales, resolution, normalisation). A changed image, weight
//! file or transform therefore misses exactly the affected entries. Entries are raw
//! little-endian `f32` vectors written to a temporary name and renamed, so a killed run
//! never leaves a truncated entry.

use std::fs;
use std::path::{Path, PathBuf};

use adn_util::hash::sha256_hex;
use anyhow::{Context, Result};

/// Bump when the feature computation changes in a way the key does not capture (v2:
/// Pillow-exact resize and rotation).
const FORMAT: &str = "adn-feature-cache-v2";

/// SHA-256 of a file's bytes.
pub fn file_hash(path: &Path) -> Result<String> {
    adn_util::sha256_file(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Cache of one extractor configuration.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
    dim: usize,
}

impl FeatureCache {
    /// `extractor_key` describes everything about the extractor that changes its output.
    pub fn new(root: &Path, extractor_key: &str, dim: usize) -> Self {
        let digest = sha256_hex(format!("{FORMAT}\n{extractor_key}").as_bytes());
        FeatureCache {
            dir: root.join(&digest[..24]),
            dim,
        }
    }

    fn entry(&self, image_hash: &str, angle: f64) -> PathBuf {
        let name = sha256_hex(format!("{image_hash}/{:016x}", angle.to_bits()).as_bytes());
        self.dir
            .join(&name[..2])
            .join(format!("{}.f32", &name[2..32]))
    }

    /// The cached feature, if present and whole.
    pub fn get(&self, image_hash: &str, angle: f64) -> Option<Vec<f32>> {
        let bytes = fs::read(self.entry(image_hash, angle)).ok()?;
        if bytes.len() != self.dim * 4 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }

    /// Stores a feature; failures to write only cost a later recomputation.
    pub fn put(&self, image_hash: &str, angle: f64, feature: &[f32]) -> Result<()> {
        let path = self.entry(image_hash, angle);
        let dir = path.parent().expect("entries live in a folder");
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let bytes: Vec<u8> = feature.iter().flat_map(|v| v.to_le_bytes()).collect();
        fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Seconds per computed feature measured by an earlier run, to estimate time saved.
    pub fn seconds_per_entry(&self) -> Option<f64> {
        fs::read_to_string(self.dir.join("seconds_per_entry"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn record_seconds_per_entry(&self, seconds: f64) {
        let _ = fs::create_dir_all(&self.dir);
        let _ = fs::write(self.dir.join("seconds_per_entry"), format!("{seconds}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_keys_separate() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path(), "alexnet/weights=abc", 3);
        assert_eq!(cache.get("img1", 90.0), None);
        cache.put("img1", 90.0, &[1.0, -2.5, 3.25]).unwrap();
        assert_eq!(cache.get("img1", 90.0), Some(vec![1.0, -2.5, 3.25]));
        assert_eq!(
            cache.get("img1", 45.0),
            None,
            "another angle is another entry"
        );
        assert_eq!(
            cache.get("img2", 90.0),
            None,
            "another image is another entry"
        );
        let other = FeatureCache::new(dir.path(), "alexnet/weights=def", 3);
        assert_eq!(
            other.get("img1", 90.0),
            None,
            "other weights are another cache"
        );
        // A truncated entry is a miss, not garbage.
        let path = cache.entry("img1", 90.0);
        fs::write(&path, [0u8; 5]).unwrap();
        assert_eq!(cache.get("img1", 90.0), None);
    }
}
