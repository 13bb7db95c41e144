//! Image preprocessing: decode, resize straight to 224x224, scale for a model.
//!
//! The paper resizes the full-resolution image to 224x224 with no centre crop (NOTES.md,
//! "Pipeline"). The filter is a triangle (bilinear) filter whose support widens with the
//! downscale factor, i.e. antialiased bilinear like PIL's `BILINEAR`, which torchvision's
//! `Resize` used for the reference numbers. Masks use nearest neighbour so they stay binary.

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};

use crate::EdgeError;

/// Side of the square model input, in pixels.
pub const INPUT_SIZE: usize = 224;

/// Per-channel input normalisation: `(x / 255 - mean) / std`, RGB order.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputScaling {
    /// Channel means in 0..1 units.
    pub mean: [f32; 3],
    /// Channel standard deviations in 0..1 units.
    pub std: [f32; 3],
}

impl InputScaling {
    /// TensorFlow convention, `(x - 127.5) / 127.5`: MobileNetV2 and EfficientNet-Lite.
    pub const TF: InputScaling = InputScaling { mean: [0.5; 3], std: [0.5; 3] };
    /// torchvision's ImageNet mean and std: WideResNet-50 and other torchvision exports.
    pub const IMAGENET: InputScaling =
        InputScaling { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
}

/// Decodes PNG, JPEG or BMP bytes into RGB (grey images are replicated to three channels).
///
/// # Errors
/// [`EdgeError::Image`] when the bytes are not an image of a supported format.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, EdgeError> {
    let img = image::load_from_memory(bytes).map_err(|e| EdgeError::Image(e.to_string()))?;
    Ok(img.to_rgb8())
}

/// Resizes an image of any size straight to 224x224 (no crop).
///
/// # Errors
/// [`EdgeError::Size`] for an empty image.
pub fn resize_224(img: &RgbImage) -> Result<RgbImage, EdgeError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(EdgeError::Size(format!("empty image {}x{}", img.width(), img.height())));
    }
    if img.dimensions() == (INPUT_SIZE as u32, INPUT_SIZE as u32) {
        return Ok(img.clone());
    }
    let side = INPUT_SIZE as u32;
    Ok(imageops::resize(img, side, side, FilterType::Triangle))
}

/// Resizes a ground-truth mask to `side` x `side` with nearest neighbour; any non-zero pixel
/// is defective.
pub fn resize_mask(mask: &GrayImage, side: usize) -> Vec<bool> {
    let side32 = side as u32;
    let resized = if mask.dimensions() == (side32, side32) {
        mask.clone()
    } else {
        imageops::resize(mask, side32, side32, FilterType::Nearest)
    };
    resized.into_raw().into_iter().map(|v| v > 0).collect()
}

/// Lays out a 224x224 RGB image as a scaled NCHW float tensor (batch 1).
///
/// # Errors
/// [`EdgeError::Size`] when the image is not 224x224.
pub fn to_nchw(img: &RgbImage, scaling: InputScaling) -> Result<Vec<f32>, EdgeError> {
    let side = INPUT_SIZE as u32;
    if img.dimensions() != (side, side) {
        return Err(EdgeError::Size(format!(
            "model input must be {side}x{side}, got {}x{}",
            img.width(),
            img.height()
        )));
    }
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            let x = f32::from(px[c]) / 255.0;
            out[c * plane + i] = (x - scaling.mean[c]) / scaling.std[c];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_scaling_maps_the_byte_range_to_plus_minus_one() {
        let img =
            RgbImage::from_fn(224, 224, |x, _| image::Rgb([0, 255, if x == 0 { 0 } else { 255 }]));
        let t = to_nchw(&img, InputScaling::TF).unwrap();
        let plane = 224 * 224;
        assert_eq!(t[0], -1.0);
        assert_eq!(t[plane], 1.0);
        assert_eq!(t[2 * plane], -1.0);
        assert_eq!(t[2 * plane + 1], 1.0);
    }

    #[test]
    fn resize_is_straight_not_cropped() {
        // A wide image whose left half is black and right half white keeps both halves.
        let img =
            RgbImage::from_fn(448, 100, |x, _| image::Rgb([if x < 224 { 0 } else { 255 }; 3]));
        let r = resize_224(&img).unwrap();
        assert_eq!(r.dimensions(), (224, 224));
        assert_eq!(r.get_pixel(10, 100)[0], 0);
        assert_eq!(r.get_pixel(213, 100)[0], 255);
    }

    #[test]
    fn masks_stay_binary() {
        let mask = GrayImage::from_fn(900, 900, |x, y| {
            image::Luma([if x > 450 && y > 450 { 255 } else { 0 }])
        });
        let m = resize_mask(&mask, 224);
        assert_eq!(m.len(), 224 * 224);
        assert!(m[223 * 224 + 223] && !m[0]);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        assert!(matches!(
            to_nchw(&RgbImage::new(10, 10), InputScaling::TF),
            Err(EdgeError::Size(_))
        ));
        assert!(matches!(resize_224(&RgbImage::new(0, 10)), Err(EdgeError::Size(_))));
        assert!(matches!(decode_rgb(b"not an image"), Err(EdgeError::Image(_))));
    }
}
