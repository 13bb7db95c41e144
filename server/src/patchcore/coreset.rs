//! Greedy k-center coreset selection on randomly projected patches.
//!
//! PatchCore picks, one at a time, the patch farthest from every centre chosen so far, in a
//! random projection of the features (Johnson-Lindenstrauss). Done naively that is
//! `k` passes over all `n` patches, which at bottle's scale (655k patches, 10k centres) is
//! memory-bound and takes many minutes on two cores. The search here is exact greedy
//! k-center, sped up with the triangle inequality: a patch at distance `d` from its nearest
//! centre `a` cannot get closer to a new centre `c` when `|c - a| >= 2d`, so its features are
//! not read at all. As centres accumulate, almost every patch is skipped.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::knn::sq_dist;
use patchwire_codec::rng::SplitMix64;

/// How large the coreset is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum CoresetSize {
    /// A fraction of all training patches, in (0, 1].
    Ratio(f64),
    /// A fixed number of centres (all patches when there are fewer).
    Count(usize),
}

impl CoresetSize {
    /// The number of centres for `n` training patches (at least one when `n > 0`).
    pub fn resolve(self, n: usize) -> usize {
        let k = match self {
            CoresetSize::Ratio(r) => (n as f64 * r).round() as usize,
            CoresetSize::Count(k) => k,
        };
        k.clamp(n.min(1), n)
    }
}

impl std::fmt::Display for CoresetSize {
    /// The form [`FromStr`](std::str::FromStr) reads back: `0.1` or `10000`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoresetSize::Ratio(r) => write!(f, "{r}"),
            CoresetSize::Count(k) => write!(f, "{k}"),
        }
    }
}

impl std::str::FromStr for CoresetSize {
    type Err = String;

    /// `0.1` is a ratio, `10000` a count.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(k) = s.parse::<usize>() {
            return if k > 0 {
                Ok(CoresetSize::Count(k))
            } else {
                Err("coreset count must be > 0".into())
            };
        }
        match s.parse::<f64>() {
            Ok(r) if r > 0.0 && r <= 1.0 => Ok(CoresetSize::Ratio(r)),
            _ => Err(format!("coreset size {s:?} is neither a count nor a ratio in (0, 1]")),
        }
    }
}

/// A seeded Gaussian projection `d x proj`, or `None` when the features are already small.
fn projection(d: usize, proj: usize, seed: u64) -> Option<Array2<f32>> {
    if proj == 0 || proj >= d {
        return None;
    }
    let mut rng = SplitMix64::new(seed ^ 0x5EED_C0DE);
    let scale = 1.0 / (proj as f64).sqrt();
    Some(Array2::from_shape_simple_fn((d, proj), || (rng.normal() * scale) as f32))
}

/// Indices of `k` patches chosen by greedy k-center in a `proj`-dimensional random projection.
///
/// The first centre is drawn with `seed` (the PatchCore reference also starts at a random
/// patch). `progress(done, k)` is called now and then.
pub fn greedy_k_center(
    patches: ArrayView2<'_, f32>,
    k: usize,
    proj: usize,
    seed: u64,
    progress: &dyn Fn(usize, usize),
) -> Vec<usize> {
    let n = patches.nrows();
    if k >= n {
        return (0..n).collect();
    }
    let points = match projection(patches.ncols(), proj, seed) {
        Some(p) => patches.dot(&p),
        None => patches.to_owned(),
    };
    let dim = points.ncols();
    let flat = points.as_slice().expect("a fresh array is contiguous");
    let row = |i: usize| &flat[i * dim..(i + 1) * dim];

    let mut rng = SplitMix64::new(seed);
    let first = rng.below(n);
    let mut centres = vec![first];
    // Nearest-centre distance (not squared: the pruning test needs a metric) and which
    // centre (its position in `centres`) it is.
    let mut nearest: Vec<(f32, u32)> =
        (0..n).map(|i| (sq_dist(row(i), row(first)).sqrt(), 0)).collect();
    const CHUNK: usize = 4096;

    while centres.len() < k {
        // The next centre: the patch farthest from all centres.
        let (next, _) = nearest
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(ci, chunk)| {
                chunk.iter().enumerate().fold(
                    (ci * CHUNK, f32::NEG_INFINITY),
                    |best, (i, &(d, _))| {
                        if d > best.1 { (ci * CHUNK + i, d) } else { best }
                    },
                )
            })
            .reduce(
                || (0, f32::NEG_INFINITY),
                |a, b| {
                    if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) { b } else { a }
                },
            );
        let slot = centres.len() as u32;
        centres.push(next);

        // Distances from the new centre to the old ones, for the pruning test.
        let c = row(next);
        let to_old: Vec<f32> = centres.iter().map(|&j| sq_dist(c, row(j)).sqrt()).collect();

        nearest.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, chunk)| {
            for (i, entry) in chunk.iter_mut().enumerate() {
                let (d, a) = *entry;
                if to_old[a as usize] >= 2.0 * d {
                    continue;
                }
                let dc = sq_dist(row(ci * CHUNK + i), c).sqrt();
                if dc < d {
                    *entry = (dc, slot);
                }
            }
        });
        if centres.len() % 256 == 0 {
            progress(centres.len(), k);
        }
    }
    progress(k, k);
    centres
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook algorithm: every pass reads every point.
    fn brute_force(points: ArrayView2<'_, f32>, k: usize, first: usize) -> Vec<usize> {
        let row = |i: usize| points.row(i).to_vec();
        let mut dist: Vec<f32> =
            (0..points.nrows()).map(|i| sq_dist(&row(i), &row(first))).collect();
        let mut out = vec![first];
        while out.len() < k {
            let next = (0..dist.len()).fold(0, |b, i| if dist[i] > dist[b] { i } else { b });
            out.push(next);
            for (i, d) in dist.iter_mut().enumerate() {
                *d = d.min(sq_dist(&row(i), &row(next)));
            }
        }
        out
    }

    fn random_points(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut rng = SplitMix64::new(seed);
        Array2::from_shape_simple_fn((n, d), || rng.normal() as f32)
    }

    #[test]
    fn pruned_search_picks_the_same_centres_as_brute_force() {
        let pts = random_points(3000, 16, 3);
        // No projection (proj >= d), so both run on the same points.
        let fast = greedy_k_center(pts.view(), 200, 64, 11, &|_, _| {});
        let slow = brute_force(pts.view(), 200, fast[0]);
        assert_eq!(fast, slow);
    }

    #[test]
    fn coreset_covers_every_point_within_the_last_radius() {
        let pts = random_points(2000, 8, 5);
        let chosen = greedy_k_center(pts.view(), 100, 0, 1, &|_, _| {});
        let mut unique = chosen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 100, "centres are distinct");

        // Greedy k-center is a 2-approximation: the covering radius is at most twice the
        // smallest distance between chosen centres.
        let cover = |i: usize| {
            chosen
                .iter()
                .map(|&c| sq_dist(pts.row(i).as_slice().unwrap(), pts.row(c).as_slice().unwrap()))
                .fold(f32::MAX, f32::min)
                .sqrt()
        };
        let radius = (0..pts.nrows()).map(cover).fold(0.0, f32::max);
        let mut min_sep = f32::MAX;
        for (a, &i) in chosen.iter().enumerate() {
            for &j in &chosen[a + 1..] {
                min_sep = min_sep.min(
                    sq_dist(pts.row(i).as_slice().unwrap(), pts.row(j).as_slice().unwrap()).sqrt(),
                );
            }
        }
        assert!(radius <= min_sep + 1e-4, "radius {radius} > separation {min_sep}");
    }

    #[test]
    fn sizes_resolve_and_parse() {
        assert_eq!(CoresetSize::Ratio(0.1).resolve(1000), 100);
        assert_eq!(CoresetSize::Count(10_000).resolve(500), 500);
        assert_eq!("0.01".parse::<CoresetSize>(), Ok(CoresetSize::Ratio(0.01)));
        assert_eq!("250".parse::<CoresetSize>(), Ok(CoresetSize::Count(250)));
        assert!("1.5".parse::<CoresetSize>().is_err());
        assert!("0".parse::<CoresetSize>().is_err());
    }
}
