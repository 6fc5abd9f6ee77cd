//! A prefetching loader: decodes and transforms the next chunk of images (in parallel, with
//! rayon) on a background thread while the caller runs the backbone on the current one.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;

use crate::DatasetError;
use crate::decode;
use crate::transforms::{Normalization, resize_square, rotate_nearest, to_chw_into};

/// One chunk of transformed images.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Index of the chunk's first image in the input list.
    pub first: usize,
    /// Images in the chunk.
    pub images: usize,
    /// Views per image (rotations); row `i·views + t` is image `first + i` under angle `t`.
    pub views: usize,
    pub size: u32,
    /// `[images·views, 3, size, size]`, normalised, row-major.
    pub data: Vec<f32>,
}

/// Batches of DifferNet-transformed images (resize → rotate → normalise), produced ahead.
pub struct Batches {
    rx: Option<Receiver<Result<Batch, DatasetError>>>,
    worker: Option<JoinHandle<()>>,
}

impl Iterator for Batches {
    type Item = Result<Batch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.rx.as_ref()?.recv().ok();
        if item.is_none() {
            self.rx = None;
            if let Some(w) = self.worker.take() {
                let _ = w.join();
            }
        }
        item
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the channel stops the worker at its next send.
        self.rx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Starts loading `paths[i]` under the rotations `angles[i]` (all of the same length), in
/// chunks of `chunk` images, keeping up to `ahead` chunks ready. Stops at the first error,
/// which it yields.
pub fn batches(
    paths: Vec<PathBuf>,
    angles: Vec<Vec<f64>>,
    size: u32,
    norm: Normalization,
    chunk: usize,
    ahead: usize,
) -> Batches {
    // Checked here, on the caller's thread: the rows are laid out as image × view.
    let views = angles.first().map_or(0, Vec::len);
    assert!(
        paths.len() == angles.len() && angles.iter().all(|a| a.len() == views),
        "loader: every image needs the same number of rotations"
    );
    let (tx, rx) = sync_channel(ahead.max(1));
    let chunk = chunk.max(1);
    let worker = std::thread::spawn(move || {
        let row = 3 * (size as usize) * (size as usize);
        for (c, (ps, angs)) in paths.chunks(chunk).zip(angles.chunks(chunk)).enumerate() {
            let item = load_chunk(ps, angs, views, row, size, &norm).map(|data| Batch {
                first: c * chunk,
                images: ps.len(),
                views,
                size,
                data,
            });
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                return;
            }
        }
    });
    Batches {
        rx: Some(rx),
        worker: Some(worker),
    }
}

/// One chunk's rows, written in place into a single buffer: images are decoded and resized
/// in parallel, then every (image, view) row is rotated and normalised in parallel, so a
/// chunk of one image under 64 rotations still uses every thread, and nothing is copied
/// between intermediate vectors.
fn load_chunk(
    paths: &[PathBuf],
    angles: &[Vec<f64>],
    views: usize,
    row: usize,
    size: u32,
    norm: &Normalization,
) -> Result<Vec<f32>, DatasetError> {
    let images: Vec<_> = paths
        .par_iter()
        .map(|p| Ok(resize_square(&decode::load_rgb(p)?, size)))
        .collect::<Result<_, DatasetError>>()?;
    let mut data = vec![0f32; paths.len() * views * row];
    data.par_chunks_mut(row.max(1))
        .enumerate()
        .for_each(|(k, out)| {
            let (i, t) = (k / views, k % views);
            to_chw_into(&rotate_nearest(&images[i], angles[i][t]), norm, out);
        });
    Ok(data)
}
