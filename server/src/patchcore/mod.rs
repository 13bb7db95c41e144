//! PatchCore (Roth et al., CVPR 2022) as the paper ran it (NOTES.md, "Pipeline").
//!
//! ```text
//! per-layer maps -> embed (3x3 avg pool, upsample to the largest map, concat)
//!   train: all patches -> coreset (random projection, greedy k-center) -> memory bank
//!   test:  patches -> nearest bank entry (exact or HNSW) -> patch scores
//!          -> image score (max, re-weighted, eq. 7) and anomaly map (bilinear 224, blur 4)
//! ```

pub mod coreset;
pub mod embed;
pub mod file;
pub mod knn;
pub mod map;

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

pub use coreset::CoresetSize;
pub use knn::{KnnMethod, NearestIndex};

/// Training settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PatchCoreConfig {
    /// How many bank entries the coreset keeps.
    pub coreset: CoresetSize,
    /// Dimension of the random projection the k-center search runs in (PatchCore uses 128).
    pub projection_dim: usize,
    /// Seed of the projection and of the first coreset centre.
    pub seed: u64,
    /// Neighbours used to re-weight the image score (PatchCore eq. 7 uses b = 9).
    pub reweight_neighbours: usize,
}

impl Default for PatchCoreConfig {
    fn default() -> Self {
        // 10,000 centres is what the paper's code used (NOTES.md, step 3).
        PatchCoreConfig {
            coreset: CoresetSize::Count(10_000),
            projection_dim: 128,
            seed: 0,
            reweight_neighbours: 9,
        }
    }
}

/// A trained PatchCore model: the memory bank and how to search it.
pub struct PatchCore {
    bank: Array2<f32>,
    grid: (usize, usize),
    reweight_neighbours: usize,
    index: NearestIndex,
}

/// The result of scoring one image.
#[derive(Clone, Debug)]
pub struct Scored {
    /// Re-weighted maximum patch score.
    pub image_score: f32,
    /// Distance of every patch to its nearest bank entry, row-major over the patch grid.
    pub patch_scores: Vec<f32>,
    /// The anomaly map at 224x224, row-major.
    pub map: Vec<f32>,
}

impl PatchCore {
    /// Builds the memory bank from the stacked patches of all training images.
    ///
    /// `patches` is `n x d`, `grid` the patch grid of one image (for the maps at test time).
    pub fn fit(
        patches: ArrayView2<'_, f32>,
        grid: (usize, usize),
        config: &PatchCoreConfig,
        knn: KnnMethod,
        progress: &dyn Fn(usize, usize),
    ) -> PatchCore {
        let target = config.coreset.resolve(patches.nrows());
        let chosen =
            coreset::greedy_k_center(patches, target, config.projection_dim, config.seed, progress);
        let bank = patches.select(Axis(0), &chosen);
        PatchCore::from_bank(bank, grid, config.reweight_neighbours, knn)
    }

    /// Wraps an existing bank (a loaded model).
    pub fn from_bank(
        bank: Array2<f32>,
        grid: (usize, usize),
        reweight_neighbours: usize,
        knn: KnnMethod,
    ) -> PatchCore {
        let index = NearestIndex::build(bank.view(), knn);
        PatchCore { bank, grid, reweight_neighbours, index }
    }

    /// The memory bank, `entries x dim`.
    pub fn bank(&self) -> ArrayView2<'_, f32> {
        self.bank.view()
    }

    /// The patch grid `(height, width)` of one image.
    pub fn grid(&self) -> (usize, usize) {
        self.grid
    }

    /// Neighbours used for the image-score re-weighting.
    pub fn reweight_neighbours(&self) -> usize {
        self.reweight_neighbours
    }

    /// Scores the `h*w x d` patches of one image.
    pub fn score(&self, patches: ArrayView2<'_, f32>) -> Scored {
        let nearest = self.index.nearest(patches);
        let patch_scores: Vec<f32> = nearest.iter().map(|&(_, d)| d).collect();

        // Image score: the largest patch score, re-weighted (PatchCore eq. 7).
        let (worst, &(bank_ix, worst_dist)) = nearest
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
            .expect("an image has at least one patch");
        let weight = self.reweight(patches.row(worst).as_slice().expect("row-major"), bank_ix);
        let map = map::anomaly_map(&patch_scores, self.grid);
        Scored { image_score: weight * worst_dist, patch_scores, map }
    }

    /// `1 - softmax` weight of PatchCore eq. 7: the patch's distance to its nearest bank entry
    /// m*, against its distances to the b nearest bank neighbours of m*. A patch whose nearest
    /// entry sits in a dense region of the bank keeps less of its score than one near an
    /// isolated entry.
    fn reweight(&self, patch: &[f32], bank_ix: usize) -> f32 {
        let b = self.reweight_neighbours.min(self.bank.nrows());
        if b < 2 {
            return 1.0;
        }
        let m_star = self.bank.row(bank_ix);
        let mut by_dist: Vec<(f32, usize)> = self
            .bank
            .outer_iter()
            .enumerate()
            .map(|(j, row)| {
                (
                    knn::sq_dist(
                        row.as_slice().expect("row-major"),
                        m_star.as_slice().expect("row-major"),
                    ),
                    j,
                )
            })
            .collect();
        by_dist.select_nth_unstable_by(b - 1, |x, y| x.0.total_cmp(&y.0));
        let mut support: Vec<(f32, usize)> = by_dist[..b].to_vec();
        support.sort_by(|x, y| x.0.total_cmp(&y.0));

        // Distances from the test patch to m* (first) and its neighbours; a stable softmax.
        let dists: Vec<f32> = support
            .iter()
            .map(|&(_, j)| {
                knn::sq_dist(patch, self.bank.row(j).as_slice().expect("row-major")).sqrt()
            })
            .collect();
        let top = dists.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = dists.iter().map(|d| (d - top).exp()).sum();
        1.0 - (dists[0] - top).exp() / total
    }
}
