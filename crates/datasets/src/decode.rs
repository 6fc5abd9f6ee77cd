//! Decoding images into 8-bit RGB with errors that name the file.
//!
//! 1-channel images (MVTec's grid, screw, zipper; wafer dies; ELPV cells) are replicated to
//! three channels for ImageNet backbones; 16-bit and RGBA images are converted, not rejected:
//! 16-bit values are scaled to 8 bits (`round(v / 257)`) and alpha is dropped, as PIL's
//! `convert("RGB")` drops it. (PIL clips 16-bit values instead of scaling them, which turns
//! most of a 16-bit image white; scaling keeps the picture.)

use std::path::Path;

use image::{ColorType, DynamicImage, ImageReader, RgbImage};

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

/// What decoding an image found, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// Channels as stored (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
    pub channels: u8,
    /// Bits per channel as stored (8 or 16; 32 for float images).
    pub bits: u8,
}

impl ImageInfo {
    fn of(img: &DynamicImage) -> Self {
        let color: ColorType = img.color();
        ImageInfo {
            width: img.width(),
            height: img.height(),
            channels: color.channel_count(),
            bits: (color.bits_per_pixel() / color.channel_count() as u16) as u8,
        }
    }
}

/// Decodes `path` completely (so truncated files are found) and tells what it held.
pub fn inspect(path: &Path) -> Result<ImageInfo, DatasetError> {
    Ok(ImageInfo::of(&load_dynamic(path)?))
}

/// Reads and decodes `path` in whatever format and depth it has.
pub fn load_dynamic(path: &Path) -> Result<DynamicImage, DatasetError> {
    let bytes = read_file(path)?;
    decode_bytes(path, bytes)
}

/// Decodes the bytes of an image; `path` only names it in errors.
pub fn decode_bytes(path: &Path, bytes: Vec<u8>) -> Result<DynamicImage, DatasetError> {
    let fail = |reason: String| DatasetError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(fail("the file is empty (0 bytes)".into()));
    }
    // The PNG header's size: an empty image is refused before decoding, and a too large one
    // is named by its size.
    let size = png_header_size(&bytes);
    if let Some((width, height)) = size
        && (width == 0 || height == 0)
    {
        return Err(DatasetError::EmptyImage {
            path: path.to_path_buf(),
            width,
            height,
        });
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DatasetError::io(path, e))?;
    if reader.format().is_none() {
        return Err(fail(
            "not an image file (the content is not PNG, JPEG, BMP or TIFF)".into(),
        ));
    }
    let img = reader.decode().map_err(|e| {
        if let image::ImageError::Limits(limit) = &e {
            let size = match size {
                Some((w, h)) => format!(" of {w} × {h} pixels"),
                None => String::new(),
            };
            return fail(format!(
                "the image{size} needs more memory than the decoder allows per image (512 MiB; \
                 {limit}); resize it"
            ));
        }
        let msg = e.to_string();
        let truncated = matches!(&e, image::ImageError::IoError(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof)
            || msg.contains("end of file")
            || msg.contains("EOF")
            || msg.contains("unexpected end");
        if truncated {
            fail(format!("the file is truncated ({msg})"))
        } else {
            fail(msg)
        }
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

/// Reads a file, telling a symbolic link loop or a dangling link apart from other errors.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DatasetError> {
    std::fs::read(path).map_err(|e| link_error(path, e))
}

/// Turns an io error on `path` into a link error when `path` is a bad symbolic link.
pub(crate) fn link_error(path: &Path, e: std::io::Error) -> DatasetError {
    if is_loop_error(&e) {
        return DatasetError::SymlinkLoop {
            path: path.to_path_buf(),
        };
    }
    if e.kind() == std::io::ErrorKind::NotFound
        && path.symlink_metadata().is_ok_and(|m| m.is_symlink())
    {
        let target = std::fs::read_link(path)
            .map(|t| format!("it points to {}, which does not exist", t.display()))
            .unwrap_or_else(|_| "its target does not exist".into());
        return DatasetError::BrokenLink {
            path: path.to_path_buf(),
            reason: target,
        };
    }
    DatasetError::io(path, e)
}

/// ELOOP: too many levels of symbolic links.
pub(crate) fn is_loop_error(e: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    const ELOOP: i32 = 40;
    #[cfg(not(target_os = "linux"))]
    const ELOOP: i32 = 62;
    e.raw_os_error() == Some(ELOOP) || e.to_string().contains("symbolic links")
}

/// Width and height from a PNG's IHDR chunk, before any decoding.
fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}
