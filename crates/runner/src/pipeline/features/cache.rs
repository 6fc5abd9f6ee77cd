//! The on-disk feature cache.
//!
//! When nothing before the flow trains, the pooled feature of an (image, rotation) never
//! changes, so it is computed once and reused across epochs, reruns, variants and seeds.
//! An entry's key hashes everything its value depends on: the image file's bytes, the
//! rotation angle, and the extractor (backbone, weights file hash or random seed, attention
//! and its seed, feature layers, scales, resolution, normalisation). A changed image, weight
//! file or transform therefore misses exactly the affected entries.
//!
//! An entry is verified before it is used: it names the key it was written for and ends
//! with a SHA-256 of everything before it, so a truncated, overwritten, shuffled or zeroed
//! entry, or one copied under another name, is a miss ([`Lookup::Rejected`]) that the
//! caller recomputes and rewrites. Entries are written to a temporary name and renamed, so a
//! killed run never leaves a half entry under the real name; they are not fsynced (one per
//! view on the extraction's hot path), which the checksum makes safe: a torn entry after a
//! power cut is rejected, not used.

use std::fs;
use std::path::{Path, PathBuf};

use adn_util::hash::sha256_hex;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Bump when the feature computation changes in a way the key does not capture (v2:
/// Pillow-exact resize and rotation; v3: verified entries, fixed-size extraction batches).
const FORMAT: &str = "adn-feature-cache-v3";
/// First bytes of every entry.
const MAGIC: &[u8; 8] = b"ADNFEAT3";
/// Magic, key digest, dimension.
const HEADER: usize = 8 + 32 + 4;
const CHECKSUM: usize = 32;

/// SHA-256 of a file's bytes.
pub fn file_hash(path: &Path) -> Result<String> {
    adn_util::sha256_file(path).with_context(|| format!("cannot read {}", path.display()))
}

/// What the cache holds for a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Hit(Vec<f32>),
    /// No entry.
    Miss,
    /// An entry that failed verification, and why; treat as a miss and rewrite it.
    Rejected(String),
}

/// Cache of one extractor configuration.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
    /// Identifies the extractor inside every entry's key.
    extractor_digest: String,
    dim: usize,
}

impl FeatureCache {
    /// `extractor_key` describes everything about the extractor that changes its output.
    pub fn new(root: &Path, extractor_key: &str, dim: usize) -> Self {
        let digest = sha256_hex(format!("{FORMAT}\n{extractor_key}").as_bytes());
        FeatureCache {
            dir: root.join(&digest[..24]),
            extractor_digest: digest,
            dim,
        }
    }

    /// The folder holding this extractor's entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full key of an entry: extractor, image bytes, angle.
    fn key(&self, image_hash: &str, angle: f64) -> [u8; 32] {
        Sha256::digest(
            format!(
                "{}/{image_hash}/{:016x}",
                self.extractor_digest,
                angle.to_bits()
            )
            .as_bytes(),
        )
        .into()
    }

    fn entry_path(&self, key: &[u8; 32]) -> PathBuf {
        let name: String = key.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(&name[..2])
            .join(format!("{}.f32", &name[2..32]))
    }

    /// The path of an entry (for tests and diagnostics).
    pub fn entry(&self, image_hash: &str, angle: f64) -> PathBuf {
        self.entry_path(&self.key(image_hash, angle))
    }

    /// The cached feature, if present, whole and written for this key.
    pub fn get(&self, image_hash: &str, angle: f64) -> Lookup {
        let key = self.key(image_hash, angle);
        let path = self.entry_path(&key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Lookup::Miss;
            }
            Err(e) => return Lookup::Rejected(format!("{}: unreadable: {e}", path.display())),
        };
        match self.decode(&key, &bytes) {
            Ok(v) => Lookup::Hit(v),
            Err(why) => Lookup::Rejected(format!("{}: {why}", path.display())),
        }
    }

    fn decode(&self, key: &[u8; 32], bytes: &[u8]) -> Result<Vec<f32>, String> {
        let expected = HEADER + self.dim * 4 + CHECKSUM;
        if bytes.len() != expected {
            return Err(format!("{} bytes, expected {expected}", bytes.len()));
        }
        let (body, sum) = bytes.split_at(expected - CHECKSUM);
        if Sha256::digest(body).as_slice() != sum {
            return Err("checksum mismatch (corrupted or overwritten)".into());
        }
        if &body[..8] != MAGIC {
            return Err("not a feature-cache entry".into());
        }
        if &body[8..40] != key {
            return Err("written for another key".into());
        }
        let dim = u32::from_le_bytes(body[40..44].try_into().expect("4 bytes")) as usize;
        if dim != self.dim {
            return Err(format!("dimension {dim}, expected {}", self.dim));
        }
        Ok(body[HEADER..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Stores a feature. The caller decides what a failure costs (the extraction warns and
    /// goes on without storing).
    pub fn put(&self, image_hash: &str, angle: f64, feature: &[f32]) -> Result<()> {
        let key = self.key(image_hash, angle);
        let path = self.entry_path(&key);
        let dir = path.parent().expect("entries live in a folder");
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut bytes = Vec::with_capacity(HEADER + feature.len() * 4 + CHECKSUM);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&key);
        bytes.extend_from_slice(&(feature.len() as u32).to_le_bytes());
        bytes.extend(feature.iter().flat_map(|v| v.to_le_bytes()));
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        let tmp = adn_util::atomic::partial_path(&path);
        let written = fs::write(&tmp, &bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))
            .and_then(|()| {
                fs::rename(&tmp, &path)
                    .with_context(|| format!("cannot rename into {}", path.display()))
            });
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Seconds per computed feature measured by an earlier run, to estimate time saved.
    pub fn seconds_per_entry(&self) -> Option<f64> {
        fs::read_to_string(self.dir.join("seconds_per_entry"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Best effort: only the time-saved estimate depends on it.
    pub fn record_seconds_per_entry(&self, seconds: f64) {
        let _ = fs::create_dir_all(&self.dir);
        let _ = fs::write(self.dir.join("seconds_per_entry"), format!("{seconds}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(l: Lookup) -> String {
        match l {
            Lookup::Rejected(why) => why,
            other => panic!("expected a rejected entry, got {other:?}"),
        }
    }

    #[test]
    fn entries_round_trip_and_keys_separate() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path(), "alexnet/weights=abc", 3);
        assert_eq!(cache.get("img1", 90.0), Lookup::Miss);
        cache.put("img1", 90.0, &[1.0, -2.5, 3.25]).unwrap();
        assert_eq!(cache.get("img1", 90.0), Lookup::Hit(vec![1.0, -2.5, 3.25]));
        assert_eq!(cache.get("img1", 45.0), Lookup::Miss, "another angle");
        assert_eq!(cache.get("img2", 90.0), Lookup::Miss, "another image");
        let other = FeatureCache::new(dir.path(), "alexnet/weights=def", 3);
        assert_eq!(other.get("img1", 90.0), Lookup::Miss, "other weights");
    }

    #[test]
    fn damaged_entries_are_rejected_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path(), "k", 4);
        let good = [0.5f32, -1.0, 2.0, 8.0];
        cache.put("img", 0.0, &good).unwrap();
        let path = cache.entry("img", 0.0);
        let clean = fs::read(&path).unwrap();
        let payload = HEADER..HEADER + 16;

        // Truncated.
        fs::write(&path, &clean[..clean.len() - 1]).unwrap();
        assert!(rejected(cache.get("img", 0.0)).contains("bytes, expected"));
        // Payload overwritten with other finite floats, shuffled, zeroed, or random bytes.
        let mut other = clean.clone();
        other[payload.clone()].copy_from_slice(
            &[9.0f32, 1.0, 1.0, 1.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let mut shuffled = clean.clone();
        shuffled[payload.clone()].rotate_left(4);
        let mut zeroed = clean.clone();
        zeroed[payload.clone()].fill(0);
        let mut noise = clean.clone();
        for (i, b) in noise[payload.clone()].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(97).wrapping_add(0x7f);
        }
        for damaged in [other, shuffled, zeroed, noise] {
            fs::write(&path, &damaged).unwrap();
            assert!(rejected(cache.get("img", 0.0)).contains("checksum"));
        }
        // A whole valid entry of another key copied over this one.
        cache.put("img", 90.0, &good).unwrap();
        fs::copy(cache.entry("img", 90.0), &path).unwrap();
        assert!(rejected(cache.get("img", 0.0)).contains("another key"));
        // Rewriting repairs it.
        cache.put("img", 0.0, &good).unwrap();
        assert_eq!(cache.get("img", 0.0), Lookup::Hit(good.to_vec()));
    }

    #[test]
    fn a_cache_folder_that_is_a_file_fails_the_write_and_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        fs::write(&root, b"not a folder").unwrap();
        let cache = FeatureCache::new(&root, "k", 2);
        let err = cache.put("img", 0.0, &[1.0, 2.0]).unwrap_err();
        assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
        assert_eq!(cache.get("img", 0.0), Lookup::Miss);
    }
}
