//! Edge artifacts: what an edge needs beyond its model to encode a scenario, made on the server
//! from training images: the channel subset (`rs`, `rs-pq`, `rs-webp`), the product
//! quantizer (`pq`, `rs-pq`) and the `klt-rc` tables.
//!
//! An artifact names the scenario and the edge model it was made for; an edge refuses one made
//! for another model, and every payload carries the artifact's id so the server can refuse a
//! payload encoded with another one.
//!
//! File layout (integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `PWART\r\n\x1a` |
//! | 8 | 4 | format version, `u32`, currently 1 |
//! | 12 | 4 | header length `H`, `u32` |
//! | 16 | 8 | data length `D` in bytes, `u64`, a multiple of 4 |
//! | 24 | H | header: UTF-8 JSON (scenario, model id, subset, quantizer shape) |
//! | 24+H | D | `f32` values: the quantizer's centroids, then the `klt-rc` tables |
//! | 24+H+D | 4 | CRC-32 of every byte before it; this is also the artifact's id |

use serde::{Deserialize, Serialize};

use crate::klt::{KltCodec, KltParams};
use crate::pq::{self, ProductQuantizer};
use crate::rs::ChannelSubset;
use crate::{CodecError, FeatureMap, Scenario};

/// First bytes of every artifact file.
pub const MAGIC: [u8; 8] = *b"PWART\r\n\x1a";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
const FIXED: usize = 24;

/// Why an artifact was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// Not an artifact file.
    #[error("not a Patchwire edge artifact (first bytes {found:02x?})")]
    Foreign {
        /// Up to eight first bytes.
        found: Vec<u8>,
    },
    /// A format version this build does not read.
    #[error("artifact format version {found} is not supported (this build reads {VERSION})")]
    Version {
        /// The version field.
        found: u32,
    },
    /// Shorter than its length fields say.
    #[error("artifact truncated: {expected} bytes expected, {found} present")]
    Truncated {
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Damaged.
    #[error("artifact corrupt: CRC-32 {found:08x}, expected {expected:08x}")]
    Checksum {
        /// Stored CRC.
        expected: u32,
        /// Computed CRC.
        found: u32,
    },
    /// The header is invalid or disagrees with the data.
    #[error("artifact header invalid: {0}")]
    Header(String),
    /// Made for another edge model.
    #[error("artifact made for edge model {artifact:08x}, this edge runs {model:08x}")]
    ModelMismatch {
        /// The artifact's model id.
        artifact: u32,
        /// The running model's id.
        model: u32,
    },
    /// Made for another scenario.
    #[error("artifact made for scenario {artifact}, not {requested}")]
    ScenarioMismatch {
        /// The artifact's scenario.
        artifact: Scenario,
        /// The scenario asked for.
        requested: Scenario,
    },
    /// Lacks a part its scenario needs.
    #[error("artifact for {scenario} has no {missing}")]
    Incomplete {
        /// The artifact's scenario.
        scenario: Scenario,
        /// The missing part.
        missing: &'static str,
    },
}

/// A channel subset and/or product quantizer, for one scenario and edge model.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    /// The scenario it encodes.
    pub scenario: Scenario,
    /// The edge model it was made for ([`crate::wire::model_id`]).
    pub model_id: u32,
    /// Channels kept per layer, for the `rs*` scenarios.
    pub subset: Option<ChannelSubset>,
    /// The quantizer, for the `*pq` scenarios.
    pub pq: Option<ProductQuantizer>,
    /// The `klt-rc` codec.
    pub klt: Option<KltCodec>,
    id: u32,
}

#[derive(Serialize, Deserialize)]
struct HeaderJson {
    scenario: Scenario,
    model_id: u32,
    subset: Option<ChannelSubset>,
    pq: Option<ProductQuantizer>,
    #[serde(default)]
    klt: Option<KltCodec>,
}

/// How to make an artifact; `None` fields take the paper's values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactParams {
    /// Channel sampling ratio: 0.25 for `rs`, 0.5 for `rs-pq` and `rs-webp`.
    pub rs_ratio: Option<f64>,
    /// PQ code width: `clamp(floor(log2(N_train / 4)), 4, 8)`.
    pub pq_bits: Option<u32>,
    /// PQ sub-quantizers: one per 98 values (976 for the full MobileNetV2 vector).
    pub pq_sub_quantizers: Option<usize>,
    /// Seed of the channel subset and of k-means.
    pub seed: u64,
    /// The `klt-rc` settings.
    #[serde(default)]
    pub klt: KltParams,
}

impl ArtifactParams {
    /// The sampling ratio for `scenario`, if it samples channels.
    pub fn ratio_for(&self, scenario: Scenario) -> Option<f64> {
        match scenario {
            Scenario::Rs => Some(self.rs_ratio.unwrap_or(0.25)),
            Scenario::RsPq | Scenario::RsWebp => Some(self.rs_ratio.unwrap_or(0.5)),
            _ => None,
        }
    }
}

/// Concatenates maps, layer after layer, CHW each: the paper's image embedding.
pub fn flatten(maps: &[FeatureMap]) -> Vec<f32> {
    maps.iter().flat_map(|m| m.data.iter().copied()).collect()
}

impl Artifact {
    /// Makes the artifact of `scenario` from the edge features of the training images.
    ///
    /// # Errors
    /// [`CodecError::Param`] for a scenario that needs no artifact, no training images or bad
    /// parameters; [`CodecError::Size`] for training maps of other shapes.
    pub fn train(
        scenario: Scenario,
        model_id: u32,
        training: &[Vec<FeatureMap>],
        params: &ArtifactParams,
    ) -> Result<Artifact, CodecError> {
        if !scenario.needs_artifact() {
            return Err(CodecError::Param(format!("scenario {scenario} uses no artifact")));
        }
        let first =
            training.first().ok_or_else(|| CodecError::Param("no training images".into()))?;
        let channels: Vec<usize> = first.iter().map(|m| m.channels).collect();
        let subset = params
            .ratio_for(scenario)
            .map(|ratio| ChannelSubset::draw(&channels, ratio, params.seed))
            .transpose()?;
        let pq = if matches!(scenario, Scenario::Pq | Scenario::RsPq) {
            let vectors = training
                .iter()
                .map(|maps| match &subset {
                    Some(s) => s.apply(maps).map(|m| flatten(&m)),
                    None => Ok(flatten(maps)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let dim = vectors[0].len();
            let bits = params.pq_bits.unwrap_or_else(|| pq::default_bits(training.len()));
            let m = params.pq_sub_quantizers.unwrap_or_else(|| pq::default_sub_quantizers(dim));
            Some(ProductQuantizer::train(&vectors, m, bits, params.seed)?)
        } else {
            None
        };
        let klt = match scenario {
            Scenario::KltRc => Some(KltCodec::train(training, &params.klt)?),
            _ => None,
        };
        let mut artifact = Artifact { scenario, model_id, subset, pq, klt, id: 0 };
        artifact.id = artifact.checksum();
        Ok(artifact)
    }

    /// The artifact's id: the CRC-32 its file ends with.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Checks that this artifact encodes `scenario` for the edge model `model_id`.
    ///
    /// # Errors
    /// [`ArtifactError::ScenarioMismatch`] or [`ArtifactError::ModelMismatch`].
    pub fn check_for(&self, scenario: Scenario, model_id: u32) -> Result<(), ArtifactError> {
        if self.scenario != scenario {
            return Err(ArtifactError::ScenarioMismatch {
                artifact: self.scenario,
                requested: scenario,
            });
        }
        if self.model_id != model_id {
            return Err(ArtifactError::ModelMismatch { artifact: self.model_id, model: model_id });
        }
        Ok(())
    }

    /// The subset, or the error naming its absence.
    pub(crate) fn need_subset(&self) -> Result<&ChannelSubset, ArtifactError> {
        self.subset
            .as_ref()
            .ok_or(ArtifactError::Incomplete { scenario: self.scenario, missing: "channel subset" })
    }

    /// The `klt-rc` codec, or the error naming its absence.
    pub(crate) fn need_klt(&self) -> Result<&KltCodec, ArtifactError> {
        self.klt
            .as_ref()
            .ok_or(ArtifactError::Incomplete { scenario: self.scenario, missing: "klt-rc tables" })
    }

    /// The quantizer, or the error naming its absence.
    pub(crate) fn need_pq(&self) -> Result<&ProductQuantizer, ArtifactError> {
        self.pq.as_ref().ok_or(ArtifactError::Incomplete {
            scenario: self.scenario,
            missing: "product quantizer",
        })
    }

    fn body_bytes(&self) -> Vec<u8> {
        let header = HeaderJson {
            scenario: self.scenario,
            model_id: self.model_id,
            subset: self.subset.clone(),
            pq: self.pq.clone(),
            klt: self.klt.clone(),
        };
        let json = serde_json::to_vec(&header).expect("an artifact header always serializes");
        let mut data: Vec<f32> = self.pq.as_ref().map_or_else(Vec::new, |p| p.centroids.clone());
        if let Some(k) = &self.klt {
            data.extend(k.tables());
        }
        let mut out = Vec::with_capacity(FIXED + json.len() + data.len() * 4 + 4);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&((data.len() * 4) as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for v in &data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn checksum(&self) -> u32 {
        crc32fast::hash(&self.body_bytes())
    }

    /// The artifact file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body_bytes();
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and validates an artifact file.
    ///
    /// # Errors
    /// An [`ArtifactError`] naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Artifact, ArtifactError> {
        let found = bytes.len() as u64;
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(ArtifactError::Foreign { found: bytes.iter().take(8).copied().collect() });
        }
        if bytes.len() < FIXED + 4 {
            return Err(ArtifactError::Truncated { expected: FIXED as u64 + 4, found });
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let version = u32_at(8);
        if version != VERSION {
            return Err(ArtifactError::Version { found: version });
        }
        let header_len = u64::from(u32_at(12));
        let mut d = [0u8; 8];
        d.copy_from_slice(&bytes[16..24]);
        let data_len = u64::from_le_bytes(d);
        let expected = (FIXED as u64)
            .checked_add(header_len)
            .and_then(|n| n.checked_add(data_len))
            .and_then(|n| n.checked_add(4))
            .ok_or_else(|| ArtifactError::Header(format!("data length {data_len} overflows")))?;
        if found != expected {
            if found < expected {
                return Err(ArtifactError::Truncated { expected, found });
            }
            return Err(ArtifactError::Header(format!(
                "{} bytes after the checksum",
                found - expected
            )));
        }
        let end = bytes.len() - 4;
        let stored = u32_at(end);
        let actual = crc32fast::hash(&bytes[..end]);
        if stored != actual {
            return Err(ArtifactError::Checksum { expected: stored, found: actual });
        }
        if data_len % 4 != 0 {
            return Err(ArtifactError::Header(format!(
                "data length {data_len} is not whole floats"
            )));
        }

        let header_end = FIXED + header_len as usize;
        let header: HeaderJson = serde_json::from_slice(&bytes[FIXED..header_end])
            .map_err(|e| ArtifactError::Header(e.to_string()))?;
        let data: Vec<f32> = bytes[header_end..end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let invalid = |e: CodecError| ArtifactError::Header(e.to_string());
        let mut at = 0;
        let mut pq = header.pq;
        if let Some(p) = &mut pq {
            let n = p.bounds.last().copied().unwrap_or(0).saturating_mul(1usize << p.bits.min(12));
            let centroids = data.get(..n);
            p.centroids = centroids
                .ok_or_else(|| ArtifactError::Header("centroids truncated".into()))?
                .to_vec();
            at = n;
        }
        let mut klt = header.klt;
        if let Some(k) = &mut klt {
            at += k.load_tables(&data[at..]).map_err(invalid)?;
        }
        if at != data.len() {
            return Err(ArtifactError::Header(format!(
                "{} data values unaccounted for",
                data.len() - at
            )));
        }
        let artifact = Artifact {
            scenario: header.scenario,
            model_id: header.model_id,
            subset: header.subset,
            pq,
            klt,
            id: stored,
        };
        artifact.validate()?;
        Ok(artifact)
    }

    /// Checks that the artifact has what its scenario needs, well formed.
    fn validate(&self) -> Result<(), ArtifactError> {
        let invalid = |e: CodecError| ArtifactError::Header(e.to_string());
        if matches!(self.scenario, Scenario::Rs | Scenario::RsPq | Scenario::RsWebp) {
            self.need_subset()?.validate().map_err(invalid)?;
        }
        if matches!(self.scenario, Scenario::Pq | Scenario::RsPq) {
            // The quantizer's length is checked against the tensors it codes when a body is
            // encoded or decoded.
            self.need_pq()?.validate().map_err(invalid)?;
        }
        if self.scenario == Scenario::KltRc {
            self.need_klt()?.validate().map_err(invalid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn training(n: usize) -> Vec<Vec<FeatureMap>> {
        let mut rng = SplitMix64::new(1);
        (0..n)
            .map(|_| {
                [[8usize, 4, 4], [4, 2, 2]]
                    .iter()
                    .map(|&[c, h, w]| {
                        let data = (0..c * h * w).map(|_| rng.normal() as f32).collect();
                        FeatureMap::new(c, h, w, data).unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn round_trip_keeps_everything_and_the_id() {
        let params = ArtifactParams { pq_sub_quantizers: Some(4), ..Default::default() };
        let a = Artifact::train(Scenario::RsPq, 0xabcd, &training(20), &params).unwrap();
        assert_eq!(
            a.subset.as_ref().unwrap().kept.iter().map(Vec::len).collect::<Vec<_>>(),
            [4, 2]
        );
        let bytes = a.to_bytes();
        let b = Artifact::from_bytes(&bytes).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.id(), u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()));
    }

    #[test]
    fn refuses_other_models_and_scenarios() {
        let a = Artifact::train(Scenario::Rs, 7, &training(3), &ArtifactParams::default()).unwrap();
        assert!(a.check_for(Scenario::Rs, 7).is_ok());
        assert_eq!(
            a.check_for(Scenario::Rs, 8),
            Err(ArtifactError::ModelMismatch { artifact: 7, model: 8 })
        );
        assert!(matches!(
            a.check_for(Scenario::RsWebp, 7),
            Err(ArtifactError::ScenarioMismatch { .. })
        ));
        assert!(
            Artifact::train(Scenario::Features, 7, &training(3), &ArtifactParams::default())
                .is_err()
        );
    }

    #[test]
    fn damage_is_named() {
        let params = ArtifactParams { pq_sub_quantizers: Some(4), ..Default::default() };
        let good = Artifact::train(Scenario::Pq, 1, &training(20), &params).unwrap().to_bytes();
        assert!(matches!(
            Artifact::from_bytes(&good[..good.len() - 1]),
            Err(ArtifactError::Truncated { .. })
        ));
        assert!(matches!(
            Artifact::from_bytes(b"PWCORE\r\n........"),
            Err(ArtifactError::Foreign { .. })
        ));
        let mut flipped = good.clone();
        flipped[30] ^= 0x20;
        assert!(matches!(Artifact::from_bytes(&flipped), Err(ArtifactError::Checksum { .. })));
        let mut future = good;
        future[8] = 2;
        assert_eq!(Artifact::from_bytes(&future), Err(ArtifactError::Version { found: 2 }));
    }
}
