//! Random channel sampling ("RS"): a fixed, seeded subset of each layer's channels.
//!
//! The paper samples channels of the MobileNetV2 taps at ratio 0.25 (6/16/40 of 24/64/160
//! channels) or 0.5 (12/32/80), the same subset for training and test (NOTES.md, "Random
//! sampling"). Its code never applied the seed it was given; here the subset is drawn with an
//! explicit seed on the server, saved in an [`crate::Artifact`], and loaded by the edges.

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;
use crate::{CodecError, FeatureMap};

/// The channels kept from each layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelSubset {
    /// Share of each layer's channels kept.
    pub ratio: f64,
    /// The seed the subset was drawn with.
    pub seed: u64,
    /// Channels of each layer before sampling.
    pub channels: Vec<usize>,
    /// Kept channel indices per layer, ascending.
    pub kept: Vec<Vec<u16>>,
}

impl ChannelSubset {
    /// Draws `round(ratio * C)` channels (at least one) of each layer, without replacement.
    ///
    /// # Errors
    /// [`CodecError::Param`] for a ratio outside (0, 1] or a layer of no or over 65,535
    /// channels.
    pub fn draw(channels: &[usize], ratio: f64, seed: u64) -> Result<Self, CodecError> {
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(CodecError::Param(format!("sampling ratio {ratio} is not in (0, 1]")));
        }
        if let Some(&c) = channels.iter().find(|&&c| c == 0 || c > usize::from(u16::MAX)) {
            return Err(CodecError::Param(format!("cannot sample a layer of {c} channels")));
        }
        let mut rng = SplitMix64::new(seed);
        let kept = channels
            .iter()
            .map(|&c| {
                let k = ((c as f64 * ratio).round() as usize).clamp(1, c);
                let mut all: Vec<u16> = (0..c as u16).collect();
                // Partial Fisher-Yates: the first k slots end up a uniform k-subset.
                for i in 0..k {
                    let j = i + rng.below(c - i);
                    all.swap(i, j);
                }
                let mut chosen = all[..k].to_vec();
                chosen.sort_unstable();
                chosen
            })
            .collect();
        Ok(ChannelSubset { ratio, seed, channels: channels.to_vec(), kept })
    }

    /// Checks that the subset is well formed for the layers it names.
    ///
    /// # Errors
    /// [`CodecError::Param`] naming the first bad layer.
    pub fn validate(&self) -> Result<(), CodecError> {
        if self.kept.len() != self.channels.len() {
            return Err(CodecError::Param(format!(
                "channel subset lists {} layers but describes {}",
                self.kept.len(),
                self.channels.len()
            )));
        }
        for (layer, (kept, &c)) in self.kept.iter().zip(&self.channels).enumerate() {
            let ascending = kept.windows(2).all(|w| w[0] < w[1]);
            if kept.is_empty() || !ascending || kept.iter().any(|&k| usize::from(k) >= c) {
                return Err(CodecError::Param(format!(
                    "layer {layer}: kept channels must be distinct, ascending and below {c}"
                )));
            }
        }
        Ok(())
    }

    /// Shapes after sampling.
    pub fn shapes(&self, full: &[[usize; 3]]) -> Vec<[usize; 3]> {
        full.iter().zip(&self.kept).map(|(s, k)| [k.len(), s[1], s[2]]).collect()
    }

    /// Keeps the subset's channels of each map.
    ///
    /// # Errors
    /// [`CodecError::Size`] when the maps are not the layers the subset was drawn for.
    pub fn apply(&self, maps: &[FeatureMap]) -> Result<Vec<FeatureMap>, CodecError> {
        let found: Vec<usize> = maps.iter().map(|m| m.channels).collect();
        if found != self.channels {
            return Err(CodecError::Size(format!(
                "channel subset drawn for layers of {:?} channels, got {found:?}",
                self.channels
            )));
        }
        maps.iter()
            .zip(&self.kept)
            .map(|(m, kept)| {
                let data = kept.iter().flat_map(|&c| m.plane(usize::from(c))).copied().collect();
                FeatureMap::new(kept.len(), m.height, m.width, data)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_ratios_give_the_paper_channel_counts() {
        let quarter = ChannelSubset::draw(&[24, 64, 160], 0.25, 1).unwrap();
        assert_eq!(quarter.kept.iter().map(Vec::len).collect::<Vec<_>>(), [6, 16, 40]);
        let half = ChannelSubset::draw(&[24, 64, 160], 0.5, 1).unwrap();
        assert_eq!(half.kept.iter().map(Vec::len).collect::<Vec<_>>(), [12, 32, 80]);
        assert!(half.validate().is_ok());
    }

    #[test]
    fn seeded_and_seed_dependent() {
        let a = ChannelSubset::draw(&[24, 64], 0.5, 3).unwrap();
        assert_eq!(a, ChannelSubset::draw(&[24, 64], 0.5, 3).unwrap());
        assert_ne!(a.kept, ChannelSubset::draw(&[24, 64], 0.5, 4).unwrap().kept);
    }

    #[test]
    fn apply_keeps_the_named_planes() {
        let map = FeatureMap::new(4, 1, 2, (0..8).map(|v| v as f32).collect()).unwrap();
        let subset =
            ChannelSubset { ratio: 0.5, seed: 0, channels: vec![4], kept: vec![vec![1, 3]] };
        let out = subset.apply(std::slice::from_ref(&map)).unwrap();
        assert_eq!(out[0].data, [2.0, 3.0, 6.0, 7.0]);
        assert!(matches!(subset.apply(&[map.clone(), map]), Err(CodecError::Size(_))));
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(ChannelSubset::draw(&[8], 0.0, 0), Err(CodecError::Param(_))));
        assert!(matches!(ChannelSubset::draw(&[8], 1.5, 0), Err(CodecError::Param(_))));
        let bad = ChannelSubset { ratio: 0.5, seed: 0, channels: vec![4], kept: vec![vec![3, 1]] };
        assert!(bad.validate().is_err());
    }
}
