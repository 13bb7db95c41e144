//! Feature maps as images (`rs-webp`), after Choi and Bajic (ICIP 2018) as the paper used it.
//!
//! Per layer, one min/max for the whole tensor maps values to 8 bits; the channels are tiled
//! into a grid of `ceil(sqrt(C))` columns (zero-padded) and the grey image is encoded as lossy
//! WebP (NOTES.md, "Feature maps as WebP"). The reference code neither sent the min/max nor
//! mapped the values back; here both travel in the body and the server de-quantizes.
//!
//! Body, per layer in order (little-endian): `min: f32`, `max: f32`, `len: u32`, then `len`
//! bytes of WebP.
//!
//! The tile image is padded to even dimensions by repeating its last row and column:
//! vaam-image-webp 0.1 encodes odd-sized images wrongly (a 63x63 grey image, the 80-channel
//! layer's grid, decoded with errors up to 143 of 255 in libwebp and in its own decoder,
//! at any quality). The server crops the padding off.

use ::image::GrayImage;

use crate::{CodecError, FeatureMap, Scenario, image};

/// Pixel size `(width, height)` of the tile image of a `c x h x w` layer, padding included.
pub fn image_size(c: usize, h: usize, w: usize) -> (usize, usize) {
    let (cols, rows) = grid(c);
    let even = |n: usize| n + n % 2;
    (even(cols * w), even(rows * h))
}

/// Grid of a layer of `c` channels: `(columns, rows)`.
pub fn grid(c: usize) -> (usize, usize) {
    let cols = (c as f64).sqrt().ceil() as usize;
    (cols.max(1), c.div_ceil(cols.max(1)))
}

/// Encodes each map as a tiled grey WebP with its value range.
///
/// # Errors
/// [`CodecError::Param`] for a quality over 100, [`CodecError::Size`] for non-finite values.
pub fn encode(maps: &[FeatureMap], quality: u8) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    for m in maps {
        let (min, max) = m
            .data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if !min.is_finite() || !max.is_finite() {
            return Err(CodecError::Size(format!("layer {:?} has non-finite values", m.shape())));
        }
        let scale = if max > min { 255.0 / (max - min) } else { 0.0 };
        let (cols, rows) = grid(m.channels);
        let (h, w) = (m.height, m.width);
        let (iw, ih) = image_size(m.channels, h, w);
        let mut img = GrayImage::new(iw as u32, ih as u32);
        for c in 0..m.channels {
            let (gx, gy) = ((c % cols) * w, (c / cols) * h);
            for (i, &v) in m.plane(c).iter().enumerate() {
                let q = ((v - min) * scale).round().clamp(0.0, 255.0) as u8;
                img.put_pixel((gx + i % w) as u32, (gy + i / w) as u32, ::image::Luma([q]));
            }
        }
        // Repeat the last column and row into the padding.
        let (gw, gh) = ((cols * w) as u32, (rows * h) as u32);
        for y in 0..ih as u32 {
            for x in gw..iw as u32 {
                let p = *img.get_pixel(gw - 1, y.min(gh - 1));
                img.put_pixel(x, y, p);
            }
        }
        for y in gh..ih as u32 {
            for x in 0..iw as u32 {
                let p = *img.get_pixel(x, gh - 1);
                img.put_pixel(x, y, p);
            }
        }
        let webp = image::encode_webp_grey(&img, quality)?;
        out.extend_from_slice(&min.to_le_bytes());
        out.extend_from_slice(&max.to_le_bytes());
        out.extend_from_slice(&(webp.len() as u32).to_le_bytes());
        out.extend_from_slice(&webp);
    }
    Ok(out)
}

/// Decodes a body written by [`encode`] into maps of `shapes`.
///
/// # Errors
/// [`CodecError::Body`] for a truncated or inconsistent body, a bad range or a tile image of
/// the wrong size.
pub fn decode(body: &[u8], shapes: &[[usize; 3]]) -> Result<Vec<FeatureMap>, CodecError> {
    let bad = |reason: String| CodecError::Body { scenario: Scenario::RsWebp, reason };
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], CodecError> {
        let slice = body
            .get(at..at.saturating_add(n))
            .ok_or_else(|| bad(format!("ends at byte {} of {} needed", body.len(), at + n)))?;
        at += n;
        Ok(slice)
    };
    let mut maps = Vec::with_capacity(shapes.len());
    for (layer, &[c, h, w]) in shapes.iter().enumerate() {
        let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let min = f(take(4)?);
        let max = f(take(4)?);
        if !min.is_finite() || !max.is_finite() || max < min {
            return Err(bad(format!("layer {layer}: value range [{min}, {max}]")));
        }
        let len_bytes = take(4)?;
        let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let img = image::decode_webp_grey(take(len as usize)?)?;
        let cols = grid(c).0;
        let (iw, ih) = image_size(c, h, w);
        if img.dimensions() != (iw as u32, ih as u32) {
            return Err(bad(format!(
                "layer {layer}: tile image {:?}, expected {iw}x{ih} for {c}x{h}x{w}",
                img.dimensions()
            )));
        }
        let step = (max - min) / 255.0;
        let mut data = Vec::with_capacity(c * h * w);
        for ch in 0..c {
            let (gx, gy) = ((ch % cols) * w, (ch / cols) * h);
            for i in 0..h * w {
                let q = img.get_pixel((gx + i % w) as u32, (gy + i / w) as u32)[0];
                data.push(min + f32::from(q) * step);
            }
        }
        maps.push(FeatureMap::new(c, h, w, data)?);
    }
    if at != body.len() {
        return Err(bad(format!("{} bytes after the last layer", body.len() - at)));
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_follow_the_reference() {
        assert_eq!(grid(12), (4, 3));
        assert_eq!(grid(32), (6, 6));
        assert_eq!(grid(80), (9, 9));
        assert_eq!(grid(1), (1, 1));
    }

    #[test]
    fn odd_grids_are_padded_to_even_images() {
        assert_eq!(image_size(80, 7, 7), (64, 64));
        assert_eq!(image_size(12, 56, 56), (224, 168));
        // The 80-channel layer of rs-webp round-trips as well as an even one.
        let data: Vec<f32> =
            (0..80 * 49).map(|i| ((i % 49) as f32 / 9.0).sin() + (i / 49) as f32 * 0.05).collect();
        let map = FeatureMap::new(80, 7, 7, data.clone()).unwrap();
        let back = decode(&encode(&[map], 90).unwrap(), &[[80, 7, 7]]).unwrap();
        let mean = data.iter().zip(&back[0].data).map(|(a, b)| (a - b).abs()).sum::<f32>()
            / data.len() as f32;
        // Unpadded, the last tile row decoded up to 143 grey levels (3.4 units) off.
        let worst = data.iter().zip(&back[0].data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(mean < 0.1 && worst < 0.6, "mean error {mean}, worst {worst}, range about 6");
    }

    #[test]
    fn round_trip_restores_the_value_range() {
        // Smooth planes with a different level and slope per channel, like activations.
        let data: Vec<f32> = (0..12 * 14 * 14)
            .map(|i| {
                let (c, y, x) = (i / 196, (i % 196) / 14, i % 14);
                (c as f32 * 0.7 - 3.0) + ((x as f32 + c as f32) / 4.0).sin() + y as f32 * 0.1
            })
            .collect();
        let map = FeatureMap::new(12, 14, 14, data.clone()).unwrap();
        let body = encode(&[map], 95).unwrap();
        let back = decode(&body, &[[12, 14, 14]]).unwrap();
        let (lo, hi) = data.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let range = hi - lo;
        let worst = data.iter().zip(&back[0].data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < range * 0.1, "worst error {worst}");
        let mean = data.iter().zip(&back[0].data).map(|(a, b)| (a - b).abs()).sum::<f32>()
            / data.len() as f32;
        assert!(mean < range * 0.01, "mean error {mean}");
    }

    #[test]
    fn damaged_bodies_are_errors() {
        let map = FeatureMap::new(4, 7, 7, vec![1.0; 196]).unwrap();
        let body = encode(&[map], 80).unwrap();
        for n in [0, 3, 8, 12, body.len() - 1] {
            assert!(decode(&body[..n], &[[4, 7, 7]]).is_err(), "{n} bytes");
        }
        assert!(decode(&body, &[[9, 7, 7]]).is_err(), "wrong shape");
        let mut extra = body.clone();
        extra.push(0);
        assert!(decode(&extra, &[[4, 7, 7]]).is_err());
        let mut inverted = body;
        inverted[..4].copy_from_slice(&5.0f32.to_le_bytes());
        assert!(decode(&inverted, &[[4, 7, 7]]).is_err());
    }
}
