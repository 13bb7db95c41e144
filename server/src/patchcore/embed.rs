//! From per-layer feature maps to one patch-feature matrix per image.
//!
//! Follows NOTES.md, steps 1-2: a 3x3 average pool (stride 1, zero padding 1, divisor 9 as
//! torch's `avg_pool2d` default `count_include_pad=True`), bilinear upsampling of every layer
//! to the largest map (`align_corners=False`), then channel concatenation.

use ndarray::Array2;
use patchwire_edge::FeatureMap;

/// The patch grid `(height, width)` an embedding of these layers has: the largest map.
pub fn grid_of(layers: &[FeatureMap]) -> (usize, usize) {
    layers.iter().map(|l| (l.height, l.width)).max_by_key(|&(h, w)| h * w).unwrap_or((0, 0))
}

/// Embeds one image's layers into an `h*w x sum(C)` matrix, row = `y * w + x`.
pub fn embed(layers: &[FeatureMap]) -> Array2<f32> {
    embed_with(layers, Pooling::Pool)
}

/// Whether [`embed_with`] still has to apply the 3x3 average pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Raw maps: pool them (NOTES.md step 1).
    Pool,
    /// Maps that arrive pooled already (the `klt-rc` codec codes pooled maps).
    AlreadyPooled,
}

/// [`embed`], for maps that may already be pooled.
pub fn embed_with(layers: &[FeatureMap], pooling: Pooling) -> Array2<f32> {
    let (h, w) = grid_of(layers);
    let dim: usize = layers.iter().map(|l| l.channels).sum();
    let mut out = Array2::<f32>::zeros((h * w, dim));

    let mut offset = 0;
    for layer in layers {
        let pooled = match pooling {
            Pooling::Pool => std::borrow::Cow::Owned(layer.avg_pool_3x3()),
            Pooling::AlreadyPooled => std::borrow::Cow::Borrowed(layer),
        };
        for c in 0..layer.channels {
            let plane = pooled.plane(c);
            let up = bilinear(plane, layer.height, layer.width, h, w);
            for (row, v) in up.into_iter().enumerate() {
                out[[row, offset + c]] = v;
            }
        }
        offset += layer.channels;
    }
    out
}

/// Source coordinate and blend weight of bilinear resampling, `align_corners=False`.
fn bilinear_taps(out: usize, input: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f32 / out as f32;
    (0..out)
        .map(|o| {
            let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(input - 1);
            let i1 = (i0 + 1).min(input - 1);
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// Bilinear resize of one `ih x iw` plane to `oh x ow`, as torch's `interpolate(...,
/// mode="bilinear", align_corners=False)`.
pub fn bilinear(plane: &[f32], ih: usize, iw: usize, oh: usize, ow: usize) -> Vec<f32> {
    if (ih, iw) == (oh, ow) {
        return plane.to_vec();
    }
    let ys = bilinear_taps(oh, ih);
    let xs = bilinear_taps(ow, iw);
    let mut out = Vec::with_capacity(oh * ow);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = plane[y0 * iw + x0] * (1.0 - fx) + plane[y0 * iw + x1] * fx;
            let bottom = plane[y1 * iw + x0] * (1.0 - fx) + plane[y1 * iw + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_divides_by_nine_at_borders() {
        let layer = FeatureMap::new(1, 2, 2, vec![9.0; 4]).unwrap();
        // Every cell sees the 4 real cells and 5 zero-padded ones.
        assert_eq!(layer.avg_pool_3x3().data, vec![4.0; 4]);
    }

    #[test]
    fn bilinear_matches_torch_on_a_2x2_to_4x4_case() {
        // torch.nn.functional.interpolate([[1,2],[3,4]], size=4, mode="bilinear") first row:
        // 1.0, 1.25, 1.75, 2.0
        let up = bilinear(&[1.0, 2.0, 3.0, 4.0], 2, 2, 4, 4);
        assert_eq!(&up[..4], &[1.0, 1.25, 1.75, 2.0]);
        assert_eq!(&up[12..], &[3.0, 3.25, 3.75, 4.0]);
    }

    #[test]
    fn layers_are_upsampled_to_the_largest_and_concatenated() {
        let big = FeatureMap::new(2, 4, 4, vec![1.0; 32]).unwrap();
        let small = FeatureMap::new(3, 2, 2, vec![1.0; 12]).unwrap();
        let e = embed(&[big, small]);
        assert_eq!(e.dim(), (16, 5));
        // The centre cells of the 4x4 map see a full 3x3 window of ones.
        assert_eq!(e[[5, 0]], 1.0);
        assert_eq!(e[[0, 0]], 4.0 / 9.0);
    }
}
