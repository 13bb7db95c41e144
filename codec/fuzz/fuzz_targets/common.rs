//! What the fuzz target and the corpus generator share.

use std::sync::OnceLock;

use patchwire_codec::artifact::{Artifact, ArtifactParams};
use patchwire_codec::rng::SplitMix64;
use patchwire_codec::{FeatureMap, Scenario};

/// Shapes of the small feature maps the artifacts are made for.
pub const SHAPES: [[usize; 3]; 2] = [[8, 4, 4], [4, 2, 2]];

/// Seeded random maps of [`SHAPES`].
pub fn maps(rng: &mut SplitMix64) -> Vec<FeatureMap> {
    SHAPES
        .iter()
        .map(|&[c, h, w]| {
            let data = (0..c * h * w).map(|_| rng.normal() as f32).collect();
            FeatureMap::new(c, h, w, data).unwrap()
        })
        .collect()
}

/// One small artifact per scenario that needs one, made once from seeded random maps.
pub fn artifacts() -> &'static Vec<Artifact> {
    static CELL: OnceLock<Vec<Artifact>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut rng = SplitMix64::new(7);
        let training: Vec<Vec<FeatureMap>> = (0..8).map(|_| maps(&mut rng)).collect();
        let klt = patchwire_codec::klt::KltParams { steps: vec![1.0, 1.0], ..Default::default() };
        let params = ArtifactParams { pq_sub_quantizers: Some(8), klt, ..Default::default() };
        Scenario::ALL
            .into_iter()
            .filter(|s| s.needs_artifact())
            .map(|s| Artifact::train(s, 1, &training, &params).unwrap())
            .collect()
    })
}
