//! Payload encoders of the edge and their decoders on the server.
//!
//! These are the payload bodies of the scenarios built so far: the image as PNG (`original`),
//! and the MobileNetV2 taps as raw little-endian float32 (`features`). The shapes of the
//! feature maps are not in the body: both sides know them from the edge model.

use image::{ImageEncoder, RgbImage, codecs::png::PngEncoder};

use crate::{EdgeError, FeatureMap};

/// Encodes a 224x224 RGB image as PNG.
pub fn encode_png(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding PNG into memory cannot fail for a well-formed RGB image");
    out
}

/// Decodes a PNG image payload.
///
/// # Errors
/// [`EdgeError::Image`] for bytes that are not a PNG image.
pub fn decode_png(bytes: &[u8]) -> Result<RgbImage, EdgeError> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| EdgeError::Image(e.to_string()))?;
    Ok(img.to_rgb8())
}

/// Concatenates feature maps as little-endian float32, layer after layer, CHW each.
pub fn encode_raw(maps: &[FeatureMap]) -> Vec<u8> {
    let mut out = Vec::with_capacity(maps.iter().map(|m| m.data.len() * 4).sum());
    for v in maps.iter().flat_map(|m| &m.data) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Splits raw float32 bytes back into maps of the given `[C, H, W]` shapes.
///
/// # Errors
/// [`EdgeError::Size`] when the byte count does not match the shapes.
pub fn decode_raw(bytes: &[u8], shapes: &[[usize; 3]]) -> Result<Vec<FeatureMap>, EdgeError> {
    let needed: usize = shapes.iter().map(|s| s[0] * s[1] * s[2] * 4).sum();
    if bytes.len() != needed {
        return Err(EdgeError::Size(format!(
            "raw feature payload of {} bytes, shapes {shapes:?} need {needed}",
            bytes.len()
        )));
    }
    let mut values = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    shapes
        .iter()
        .map(|&[c, h, w]| FeatureMap::new(c, h, w, values.by_ref().take(c * h * w).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trip_and_size_check() {
        let maps = vec![
            FeatureMap::new(2, 2, 2, (0..8).map(|i| i as f32 - 3.5).collect()).unwrap(),
            FeatureMap::new(1, 1, 3, vec![1e-30, f32::MAX, -0.0]).unwrap(),
        ];
        let bytes = encode_raw(&maps);
        assert_eq!(bytes.len(), 44);
        assert_eq!(decode_raw(&bytes, &[[2, 2, 2], [1, 1, 3]]).unwrap(), maps);
        assert!(matches!(
            decode_raw(&bytes[1..], &[[2, 2, 2], [1, 1, 3]]),
            Err(EdgeError::Size(_))
        ));
    }

    #[test]
    fn png_is_lossless() {
        let img = RgbImage::from_fn(224, 224, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        assert_eq!(decode_png(&encode_png(&img)).unwrap(), img);
        assert!(decode_png(b"GIF89a").is_err());
    }
}
