//! Product quantization of the whole image embedding, as the paper ran it (NOTES.md, "Product
//! quantization"): the three layers flattened and concatenated into one vector per image,
//! split into `M` contiguous sub-vectors, each replaced by the index of its nearest of `2^bits`
//! centroids learnt by k-means. The paper used `M = 976` for the full 95,648-dim vector (98
//! values per sub-vector) and `bits = clamp(floor(log2(N_train / 4)), 4, 8)`.
//!
//! Departures from the reference code: the quantizer is fitted on training images only (its
//! script fitted it on the test set, a leak), k-means is seeded, and the codes are bit-packed
//! on the wire (`ceil(M * bits / 8)` bytes) rather than counted as 4-byte floats.

use serde::{Deserialize, Serialize};

use crate::CodecError;
use crate::bits::{BitReader, BitWriter, packed_len};
use crate::rng::SplitMix64;

/// Lloyd iterations per sub-quantizer.
const KMEANS_ITERATIONS: usize = 20;

/// A trained product quantizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductQuantizer {
    /// Length of the vectors it codes.
    pub dim: usize,
    /// Bits per code (`2^bits` centroids per sub-quantizer).
    pub bits: u32,
    /// Sub-vector boundaries: sub-quantizer `m` codes `v[bounds[m]..bounds[m + 1]]`.
    pub bounds: Vec<usize>,
    /// Centroids, sub-quantizer after sub-quantizer, `2^bits` rows of its sub-vector length.
    #[serde(skip)]
    pub centroids: Vec<f32>,
}

/// The paper's rule for the code width: `clamp(floor(log2(n_train / 4)), 4, 8)`.
pub fn default_bits(n_train: usize) -> u32 {
    let x = (n_train as f64 / 4.0).max(1.0);
    (x.log2().floor() as u32).clamp(4, 8)
}

/// The paper's sub-vector length, 98 values (95,648 / 976).
pub const PAPER_SUB_DIM: usize = 98;

/// Sub-quantizers for a vector of `dim` values at the paper's sub-vector length.
pub fn default_sub_quantizers(dim: usize) -> usize {
    dim.div_ceil(PAPER_SUB_DIM).max(1)
}

impl ProductQuantizer {
    /// Fits `sub_quantizers` k-means codebooks of `2^bits` centroids on training vectors.
    ///
    /// # Errors
    /// [`CodecError::Param`] for no vectors, vectors of different lengths, bits outside 1..=12
    /// or more sub-quantizers than values.
    pub fn train(
        vectors: &[Vec<f32>],
        sub_quantizers: usize,
        bits: u32,
        seed: u64,
    ) -> Result<Self, CodecError> {
        let dim = vectors.first().map_or(0, Vec::len);
        if dim == 0 || vectors.iter().any(|v| v.len() != dim) {
            return Err(CodecError::Param(
                "PQ needs training vectors of one non-zero length".into(),
            ));
        }
        if !(1..=12).contains(&bits) {
            return Err(CodecError::Param(format!("PQ code width {bits} is not in 1..=12 bits")));
        }
        if sub_quantizers == 0 || sub_quantizers > dim {
            return Err(CodecError::Param(format!(
                "{sub_quantizers} sub-quantizers for {dim} values"
            )));
        }
        // Even split: the first `dim % M` sub-vectors take one extra value.
        let (base, extra) = (dim / sub_quantizers, dim % sub_quantizers);
        let mut bounds = vec![0];
        for m in 0..sub_quantizers {
            bounds.push(bounds[m] + base + usize::from(m < extra));
        }

        let k = 1usize << bits;
        let mut rng = SplitMix64::new(seed);
        let mut centroids = Vec::with_capacity(k * dim);
        for m in 0..sub_quantizers {
            let (lo, hi) = (bounds[m], bounds[m + 1]);
            let points: Vec<&[f32]> = vectors.iter().map(|v| &v[lo..hi]).collect();
            centroids.extend(kmeans(&points, k, &mut rng));
        }
        Ok(ProductQuantizer { dim, bits, bounds, centroids })
    }

    /// Sub-quantizer count.
    pub fn sub_quantizers(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// Bytes of one image's packed codes.
    pub fn code_bytes(&self) -> usize {
        packed_len(self.sub_quantizers(), self.bits)
    }

    /// Checks the quantizer's internal sizes (after loading it).
    ///
    /// # Errors
    /// [`CodecError::Param`] naming what does not add up.
    pub fn validate(&self) -> Result<(), CodecError> {
        let ok_bounds = self.bounds.first() == Some(&0)
            && self.bounds.last() == Some(&self.dim)
            && self.bounds.windows(2).all(|w| w[0] < w[1]);
        let expected = (1usize << self.bits.min(12)) * self.dim;
        if !ok_bounds || !(1..=12).contains(&self.bits) || self.centroids.len() != expected {
            return Err(CodecError::Param(format!(
                "product quantizer of {} values, {} bits, {} bounds and {} centroid values \
                 is inconsistent",
                self.dim,
                self.bits,
                self.bounds.len(),
                self.centroids.len()
            )));
        }
        Ok(())
    }

    fn codebook(&self, m: usize) -> (&[f32], usize) {
        let len = self.bounds[m + 1] - self.bounds[m];
        let k = 1usize << self.bits;
        let start = self.bounds[m] * k;
        (&self.centroids[start..start + k * len], len)
    }

    /// Codes one vector: each sub-vector's nearest centroid, bit-packed.
    ///
    /// # Errors
    /// [`CodecError::Size`] for a vector of the wrong length.
    pub fn encode(&self, v: &[f32]) -> Result<Vec<u8>, CodecError> {
        if v.len() != self.dim {
            return Err(CodecError::Size(format!(
                "PQ codes vectors of {} values, got {}",
                self.dim,
                v.len()
            )));
        }
        let mut w = BitWriter::default();
        for m in 0..self.sub_quantizers() {
            let (book, len) = self.codebook(m);
            let sub = &v[self.bounds[m]..self.bounds[m + 1]];
            w.put(nearest(sub, book, len) as u32, self.bits);
        }
        Ok(w.finish())
    }

    /// Rebuilds a vector from packed codes.
    ///
    /// # Errors
    /// [`CodecError::Size`] when `codes` is not exactly [`Self::code_bytes`] long.
    pub fn decode(&self, codes: &[u8]) -> Result<Vec<f32>, CodecError> {
        if codes.len() != self.code_bytes() {
            return Err(CodecError::Size(format!(
                "PQ codes of {} bytes, this codebook writes {}",
                codes.len(),
                self.code_bytes()
            )));
        }
        let mut r = BitReader::new(codes);
        let mut out = Vec::with_capacity(self.dim);
        for m in 0..self.sub_quantizers() {
            let (book, len) = self.codebook(m);
            // Cannot fail: the length was checked above, and every bits-wide value names a
            // centroid.
            let code = r.get(self.bits).unwrap_or(0) as usize;
            out.extend_from_slice(&book[code * len..(code + 1) * len]);
        }
        Ok(out)
    }
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index of the row of `book` (rows of `len`) nearest to `x`; the first on ties.
fn nearest(x: &[f32], book: &[f32], len: usize) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, c) in book.chunks_exact(len).enumerate() {
        let d = sq_dist(x, c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// k-means++ seeding, then Lloyd iterations; returns `k` centroids, flattened. With fewer
/// distinct points than `k`, the spare centroids repeat points (their codes are never
/// nearer than the first copy, so decoding is unaffected).
fn kmeans(points: &[&[f32]], k: usize, rng: &mut SplitMix64) -> Vec<f32> {
    let len = points[0].len();
    let mut centroids: Vec<f32> = points[rng.below(points.len())].to_vec();
    let mut d2: Vec<f32> = points.iter().map(|p| sq_dist(p, &centroids[..len])).collect();
    while centroids.len() < k * len {
        let total: f64 = d2.iter().map(|&d| f64::from(d)).sum();
        let pick = if total > 0.0 {
            let mut target = rng.next_f64() * total;
            let mut chosen = points.len() - 1;
            for (i, &d) in d2.iter().enumerate() {
                target -= f64::from(d);
                if target <= 0.0 && d > 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.below(points.len())
        };
        let start = centroids.len();
        centroids.extend_from_slice(points[pick]);
        for (d, p) in d2.iter_mut().zip(points) {
            *d = d.min(sq_dist(p, &centroids[start..]));
        }
    }

    let mut assignment = vec![usize::MAX; points.len()];
    for _ in 0..KMEANS_ITERATIONS {
        let mut changed = false;
        for (a, p) in assignment.iter_mut().zip(points) {
            let n = nearest(p, &centroids, len);
            changed |= *a != n;
            *a = n;
        }
        if !changed {
            break;
        }
        let mut sums = vec![0f64; k * len];
        let mut counts = vec![0usize; k];
        for (&a, p) in assignment.iter().zip(points) {
            counts[a] += 1;
            for (s, &v) in sums[a * len..(a + 1) * len].iter_mut().zip(p.iter()) {
                *s += f64::from(v);
            }
        }
        for c in 0..k {
            // An empty cluster keeps its centroid.
            if counts[c] > 0 {
                for (dst, s) in centroids[c * len..(c + 1) * len].iter_mut().zip(&sums[c * len..]) {
                    *dst = (*s / counts[c] as f64) as f32;
                }
            }
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| (0..dim).map(|_| rng.normal() as f32).collect()).collect()
    }

    #[test]
    fn paper_parameters() {
        assert_eq!(default_bits(209), 5);
        assert_eq!(default_bits(10), 4);
        assert_eq!(default_bits(100_000), 8);
        assert_eq!(default_sub_quantizers(95_648), 976);
        assert_eq!(default_sub_quantizers(47_824), 488);
        assert_eq!(packed_len(976, 5), 610);
    }

    #[test]
    fn codes_round_trip_and_error_shrinks_with_more_bits() {
        let train = vectors(300, 40, 1);
        let test = vectors(20, 40, 2);
        let err = |bits| {
            let pq = ProductQuantizer::train(&train, 8, bits, 0).unwrap();
            pq.validate().unwrap();
            test.iter()
                .map(|v| {
                    let codes = pq.encode(v).unwrap();
                    assert_eq!(codes.len(), pq.code_bytes());
                    sq_dist(v, &pq.decode(&codes).unwrap())
                })
                .sum::<f32>()
        };
        let (e2, e6) = (err(2), err(6));
        assert!(e6 < e2, "{e6} >= {e2}");
        // PQ can never do worse than coding every sub-vector with the global mean would.
        let zero: f32 = test.iter().map(|v| v.iter().map(|x| x * x).sum::<f32>()).sum();
        assert!(e2 < zero);
    }

    #[test]
    fn a_training_vector_decodes_to_itself_when_centroids_suffice() {
        let train = vectors(8, 12, 3);
        let pq = ProductQuantizer::train(&train, 3, 4, 9).unwrap();
        for v in &train {
            let back = pq.decode(&pq.encode(v).unwrap()).unwrap();
            assert!(sq_dist(v, &back) < 1e-10);
        }
    }

    #[test]
    fn seeded() {
        let train = vectors(50, 10, 4);
        let a = ProductQuantizer::train(&train, 2, 3, 5).unwrap();
        assert_eq!(a, ProductQuantizer::train(&train, 2, 3, 5).unwrap());
        assert_eq!(a.centroids, ProductQuantizer::train(&train, 2, 3, 5).unwrap().centroids);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let pq = ProductQuantizer::train(&vectors(20, 10, 5), 2, 3, 0).unwrap();
        assert!(matches!(pq.encode(&[0.0; 9]), Err(CodecError::Size(_))));
        // Two 3-bit codes fill one byte.
        assert_eq!(pq.code_bytes(), 1);
        assert!(matches!(pq.decode(&[0; 2]), Err(CodecError::Size(_))));
        assert!(ProductQuantizer::train(&[], 2, 3, 0).is_err());
        assert!(ProductQuantizer::train(&vectors(5, 4, 0), 5, 3, 0).is_err());
    }
}
