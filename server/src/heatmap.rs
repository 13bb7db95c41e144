//! The anomaly map as a PNG heatmap to lay over the 224x224 image.
//!
//! Scaled by the model's threshold so colours mean the same on every frame: 0 is transparent,
//! the threshold is orange at 70% opacity, twice the threshold and above is opaque red.
//! Between, a blue-cyan-yellow-red ramp.

use anyhow::{Context, Result};
use image::{ExtendedColorType, ImageEncoder, codecs::png::PngEncoder};

/// Colour stops of the ramp, at t = 0, 1/3, 2/3, 1.
const STOPS: [[f32; 3]; 4] =
    [[0.0, 0.0, 255.0], [0.0, 255.0, 255.0], [255.0, 220.0, 0.0], [255.0, 0.0, 0.0]];

fn colour(t: f32) -> [u8; 4] {
    let t = t.clamp(0.0, 1.0);
    let x = t * 3.0;
    let i = (x.floor() as usize).min(2);
    let f = x - i as f32;
    let c = |k: usize| (STOPS[i][k] * (1.0 - f) + STOPS[i + 1][k] * f) as u8;
    [c(0), c(1), c(2), (t.sqrt() * 255.0) as u8]
}

/// RGBA PNG of a square anomaly map (row-major), scaled so `threshold` sits at t = 0.5.
///
/// # Errors
/// A map that is not square.
pub fn png(map: &[f32], threshold: f32) -> Result<Vec<u8>> {
    let side = (map.len() as f64).sqrt() as usize;
    anyhow::ensure!(
        side * side == map.len() && side > 0,
        "anomaly map of {} values is not square",
        map.len()
    );
    let scale = if threshold > 0.0 { 0.5 / threshold } else { 1.0 };
    let rgba: Vec<u8> = map.iter().flat_map(|&v| colour(v * scale)).collect();
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(&rgba, side as u32, side as u32, ExtendedColorType::Rgba8)
        .context("encoding the heatmap")?;
    Ok(out)
}

/// Standard base64 with padding, for maps inlined in JSON.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, coded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn heatmap_is_a_decodable_rgba_png_scaled_by_the_threshold() {
        let mut map = vec![0.0f32; 224 * 224];
        map[224 * 100 + 100] = 10.0;
        let bytes = png(&map, 2.0).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (224, 224));
        assert_eq!(img.get_pixel(0, 0)[3], 0, "zero is transparent");
        assert_eq!(
            img.get_pixel(100, 100).0,
            [255, 0, 0, 255],
            "far above the threshold is opaque red"
        );
        assert!(png(&[0.0; 10], 1.0).is_err());
    }
}
