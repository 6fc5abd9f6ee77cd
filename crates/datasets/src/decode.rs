//! Decoding images into 8-bit RGB with errors that name the file.
//!
//! 1-channel images (MVTec's grid, screw, zipper; wafer dies; ELPV cells) are replicated to
//! three channels for ImageNet backbones; 16-bit and RGBA images are converted, not rejected.

use std::path::Path;

use image::{DynamicImage, ImageReader, RgbImage};

use crate::DatasetError;

/// Reads and decodes `path` as RGB8.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DatasetError> {
    let img = load_dynamic(path)?;
    Ok(img.into_rgb8())
}

/// Reads and decodes `path` as 8-bit gray (used for masks).
pub fn load_gray(path: &Path) -> Result<image::GrayImage, DatasetError> {
    Ok(load_dynamic(path)?.into_luma8())
}

fn load_dynamic(path: &Path) -> Result<DynamicImage, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    if bytes.is_empty() {
        return Err(DatasetError::Decode {
            path: path.to_path_buf(),
            reason: "the file is empty (0 bytes)".into(),
        });
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DatasetError::io(path, e))?;
    if reader.format().is_none() {
        return Err(DatasetError::Decode {
            path: path.to_path_buf(),
            reason: "not a PNG or JPEG file (unrecognised content)".into(),
        });
    }
    let img = reader.decode().map_err(|e| DatasetError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(DatasetError::EmptyImage {
            path: path.to_path_buf(),
            width: img.width(),
            height: img.height(),
        });
    }
    Ok(img)
}
