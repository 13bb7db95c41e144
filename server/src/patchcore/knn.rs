//! Nearest memory-bank entry for every test patch: exact, or approximate with HNSW.
//!
//! Exact search is one matrix product per batch of queries, `|q|^2 - 2 q.b + |b|^2`, then the
//! winning distance is recomputed directly so cancellation in that expansion never reaches a
//! score. HNSW (`hnsw_rs`) is kept for banks where it wins; docs/TOOLCHAIN.md measured exact
//! search as both faster and exact at PatchCore's scale, and `patchwire bench-knn` measures
//! it again on real data.

use hnsw_rs::prelude::{DistL2, Hnsw};
use ndarray::{Array2, ArrayView2, Axis, linalg::general_mat_mul};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which nearest-neighbour search scores patches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KnnMethod {
    /// Brute force as batched matrix products; exact.
    Exact,
    /// Hierarchical navigable small-world graph (`hnsw_rs`); approximate.
    Hnsw,
}

/// Squared Euclidean distance.
#[inline]
pub fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorize without reassociating.
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (ra, rb) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for k in 0..8 {
            let d = x[k] - y[k];
            acc[k] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += (x - y) * (x - y);
    }
    sum
}

/// HNSW graph and search parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node (hnsw_rs's `max_nb_connection`).
    pub max_connections: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
    /// Candidate list size while searching.
    pub ef_search: usize,
}

impl Default for HnswParams {
    /// 32 links and a build list of 400. A coreset is by construction the most spread-out
    /// subset of the patches, which makes a sparse graph miss badly: on a 40k-entry bottle
    /// coreset, 16 links and 200 left 0.6% of test patches matched up to 20x too far, enough
    /// to drop image AUROC from 1.0 to 0.58; 32 and 400 gave recall 0.9998, no miss over
    /// 1.06x, at the same search cost (the build took 1.7x longer).
    fn default() -> Self {
        HnswParams { max_connections: 32, ef_construction: 400, ef_search: 64 }
    }
}

const HNSW_LAYERS: usize = 16;

/// A searchable memory bank.
pub enum NearestIndex {
    /// Bank rows and their squared norms.
    Exact { bank: Array2<f32>, norms: Vec<f32> },
    /// The bank (for exact re-ranking of the result) and the graph over it.
    Hnsw { bank: Array2<f32>, graph: Box<Hnsw<'static, f32, DistL2>>, params: HnswParams },
}

/// Queries per matrix product: 256 x 10k distances is 10 MB, comfortably cached in L3-ish
/// sizes and large enough for the GEMM to run at full speed.
const QUERY_BATCH: usize = 256;

impl NearestIndex {
    /// Indexes `bank` (one entry per row), HNSW with [`HnswParams::default`].
    pub fn build(bank: ArrayView2<'_, f32>, method: KnnMethod) -> NearestIndex {
        Self::build_with(bank, method, HnswParams::default())
    }

    /// Indexes `bank` (one entry per row); `params` apply to HNSW only.
    pub fn build_with(
        bank: ArrayView2<'_, f32>,
        method: KnnMethod,
        params: HnswParams,
    ) -> NearestIndex {
        let bank = bank.to_owned();
        match method {
            KnnMethod::Exact => {
                let norms = bank.outer_iter().map(|r| r.dot(&r)).collect();
                NearestIndex::Exact { bank, norms }
            }
            KnnMethod::Hnsw => {
                let graph = Hnsw::new(
                    params.max_connections,
                    bank.nrows(),
                    HNSW_LAYERS,
                    params.ef_construction,
                    DistL2 {},
                );
                let rows: Vec<(&[f32], usize)> = bank
                    .outer_iter()
                    .enumerate()
                    .map(|(i, r)| (r.to_slice().expect("row-major bank"), i))
                    .collect();
                graph.parallel_insert_slice(&rows);
                let mut graph = Box::new(graph);
                graph.set_searching_mode(true);
                NearestIndex::Hnsw { bank, graph, params }
            }
        }
    }

    fn bank(&self) -> &Array2<f32> {
        match self {
            NearestIndex::Exact { bank, .. } | NearestIndex::Hnsw { bank, .. } => bank,
        }
    }

    /// For every query row: the index of its nearest bank entry and the Euclidean distance.
    pub fn nearest(&self, queries: ArrayView2<'_, f32>) -> Vec<(usize, f32)> {
        let bank = self.bank();
        let rows: Vec<usize> = match self {
            NearestIndex::Exact { bank, norms } => queries
                .axis_chunks_iter(Axis(0), QUERY_BATCH)
                .collect::<Vec<_>>()
                .into_par_iter()
                .flat_map_iter(|chunk| nearest_exact(chunk, bank, norms))
                .collect(),
            NearestIndex::Hnsw { graph, params, .. } => queries
                .outer_iter()
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|q| {
                    let q = q.to_slice().expect("row-major queries");
                    // An empty answer (possible for a degenerate graph) falls back to a scan
                    // rather than to an arbitrary entry.
                    match graph.search(q, 1, params.ef_search).first() {
                        Some(n) => n.d_id,
                        None => scan(q, bank),
                    }
                })
                .collect(),
        };
        rows.into_iter()
            .zip(queries.outer_iter())
            .map(|(j, q)| {
                let q = q.to_slice().expect("row-major queries");
                (j, sq_dist(q, bank.row(j).to_slice().expect("row-major bank")).sqrt())
            })
            .collect()
    }
}

/// Argmin over the bank for one query, by direct distances.
fn scan(q: &[f32], bank: &Array2<f32>) -> usize {
    let rows = bank.outer_iter().map(|r| sq_dist(q, r.to_slice().expect("row-major bank")));
    rows.enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).map_or(0, |(j, _)| j)
}

/// Argmin over the bank for one batch of queries, via one matrix product.
fn nearest_exact(queries: ArrayView2<'_, f32>, bank: &Array2<f32>, norms: &[f32]) -> Vec<usize> {
    let mut dots = Array2::<f32>::zeros((queries.nrows(), bank.nrows()));
    general_mat_mul(1.0, &queries, &bank.t(), 0.0, &mut dots);
    dots.outer_iter()
        .map(|row| {
            // |q|^2 is the same for the whole row, so it does not change the argmin.
            let mut best = (0, f32::INFINITY);
            for (j, (&dot, &norm)) in row.iter().zip(norms).enumerate() {
                let d = norm - 2.0 * dot;
                if d < best.1 {
                    best = (j, d);
                }
            }
            best.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwire_codec::rng::SplitMix64;

    fn random(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut rng = SplitMix64::new(seed);
        Array2::from_shape_simple_fn((n, d), || rng.normal() as f32)
    }

    #[test]
    fn exact_search_agrees_with_a_direct_scan() {
        let bank = random(700, 40, 1);
        let queries = random(300, 40, 2);
        let index = NearestIndex::build(bank.view(), KnnMethod::Exact);
        for (q, (j, d)) in queries.outer_iter().zip(index.nearest(queries.view())) {
            let q = q.to_slice().unwrap();
            let (bj, bd) = bank
                .outer_iter()
                .enumerate()
                .map(|(i, b)| (i, sq_dist(q, b.to_slice().unwrap())))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            assert_eq!(j, bj);
            assert!((d - bd.sqrt()).abs() < 1e-5);
        }
    }

    #[test]
    fn hnsw_finds_most_true_neighbours() {
        let bank = random(2000, 32, 3);
        let queries = random(200, 32, 4);
        let exact = NearestIndex::build(bank.view(), KnnMethod::Exact).nearest(queries.view());
        let approx = NearestIndex::build(bank.view(), KnnMethod::Hnsw).nearest(queries.view());
        let hits = exact.iter().zip(&approx).filter(|(a, b)| a.0 == b.0).count();
        assert!(hits >= 180, "recall {hits}/200");
        // An approximate neighbour is never closer than the true one.
        assert!(exact.iter().zip(&approx).all(|(a, b)| b.1 >= a.1 - 1e-5));
    }

    #[test]
    fn sq_dist_handles_remainders() {
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        let b = vec![0f32; 11];
        assert_eq!(sq_dist(&a, &b), (0..11).map(|i| (i * i) as f32).sum::<f32>());
    }
}
