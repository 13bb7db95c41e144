//! The pixel anomaly map: patch scores upsampled to 224x224 and smoothed.
//!
//! NOTES.md step 5: bilinear upsampling of the patch-score grid to the input size, then a
//! Gaussian blur with sigma 4. The kernel spans `2 * round(4 sigma) + 1` = 33 taps and the
//! border is reflected, as PatchCore's reference blur does.

use patchwire_edge::preprocess::INPUT_SIZE;

use super::embed::bilinear;

/// Blur strength of the anomaly map, in pixels.
pub const SIGMA: f32 = 4.0;

/// Upsamples a `grid` of patch scores to 224x224 and blurs it.
pub fn anomaly_map(patch_scores: &[f32], grid: (usize, usize)) -> Vec<f32> {
    let side = INPUT_SIZE;
    let up = bilinear(patch_scores, grid.0, grid.1, side, side);
    gaussian_blur(&up, side, side, SIGMA)
}

/// Separable Gaussian blur with reflected borders (`dcb|abcd|cba`).
pub fn gaussian_blur(img: &[f32], h: usize, w: usize, sigma: f32) -> Vec<f32> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut kernel: Vec<f32> =
        (-radius..=radius).map(|i| (-((i * i) as f32) / (2.0 * sigma * sigma)).exp()).collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);

    let reflect = |i: isize, n: usize| -> usize {
        let n = n as isize;
        let mut i = i;
        // Reflection without repeating the edge; loops only for kernels wider than the image.
        while i < 0 || i >= n {
            i = if i < 0 { -i } else { 2 * (n - 1) - i };
        }
        i as usize
    };

    let mut tmp = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, &g)| g * img[y * w + reflect(x as isize + k as isize - radius, w)])
                .sum();
        }
    }
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, &g)| g * tmp[reflect(y as isize + k as isize - radius, h) * w + x])
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_constants_and_mass() {
        let flat = vec![3.0f32; 40 * 40];
        assert!(gaussian_blur(&flat, 40, 40, 4.0).iter().all(|v| (v - 3.0).abs() < 1e-5));

        // An impulse far from the borders spreads symmetrically and keeps its total.
        let mut dot = vec![0f32; 64 * 64];
        dot[32 * 64 + 32] = 1.0;
        let b = gaussian_blur(&dot, 64, 64, 4.0);
        assert!((b.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!((b[32 * 64 + 28] - b[32 * 64 + 36]).abs() < 1e-7);
        assert!((b[28 * 64 + 32] - b[32 * 64 + 28]).abs() < 1e-7);
    }

    #[test]
    fn map_is_224_square() {
        let m = anomaly_map(&[0.0; 56 * 56], (56, 56));
        assert_eq!(m.len(), 224 * 224);
    }
}
