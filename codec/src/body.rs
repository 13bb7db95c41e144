//! Payload bodies per scenario, and the two ends that use them: [`Encoder`] on the edge and
//! [`decode_payload`] on the server.
//!
//! | scenario | body |
//! |---|---|
//! | `original` | PNG of the 224x224 RGB image |
//! | `webp` | lossy WebP of the 224x224 RGB image |
//! | `features` | every tap as little-endian `f32`, layer after layer, CHW |
//! | `rs` | the kept channels as `f32`, same order |
//! | `pq` | the product-quantization codes of the flattened taps, bit-packed LSB first |
//! | `rs-pq` | the codes of the flattened kept channels |
//! | `rs-webp` | per layer of kept channels: `min f32`, `max f32`, `len u32`, grey WebP ([`crate::tiles`]) |
//! | `klt-rc` | one byte (the quantization pass), then range-coded coefficients ([`crate::klt`]) |

use ::image::RgbImage;

use crate::artifact::{Artifact, flatten};
use crate::wire::{self, Expected, Header};
use crate::{CodecError, FeatureMap, Scenario, image, tiles, wire_shapes};

/// Side of the images the image scenarios send.
pub const IMAGE_SIDE: usize = 224;

/// Encoder settings that do not need training.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncodeParams {
    /// WebP quality of the `webp` image, 0..=100.
    pub webp_quality: u8,
    /// WebP quality of the `rs-webp` tiles, 0..=100.
    pub tile_quality: u8,
}

impl Default for EncodeParams {
    fn default() -> Self {
        EncodeParams {
            webp_quality: image::DEFAULT_WEBP_QUALITY,
            tile_quality: image::DEFAULT_WEBP_QUALITY,
        }
    }
}

/// What the server gets out of a body.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// An image, for the server backbone.
    Image(RgbImage),
    /// Feature maps, for PatchCore directly.
    Features(Vec<FeatureMap>),
    /// Feature maps already 3x3-pooled (`klt-rc`), for PatchCore without pooling again.
    PooledFeatures(Vec<FeatureMap>),
}

fn raw_bytes(maps: &[FeatureMap]) -> Vec<u8> {
    maps.iter().flat_map(|m| &m.data).flat_map(|v| v.to_le_bytes()).collect()
}

/// Splits a flat vector into maps of `shapes`.
fn unflatten(values: Vec<f32>, shapes: &[[usize; 3]]) -> Result<Vec<FeatureMap>, CodecError> {
    let mut it = values.into_iter();
    shapes
        .iter()
        .map(|&[c, h, w]| FeatureMap::new(c, h, w, it.by_ref().take(c * h * w).collect()))
        .collect()
}

fn total(shapes: &[[usize; 3]]) -> usize {
    shapes.iter().map(|s| s[0] * s[1] * s[2]).sum()
}

/// Encodes one image's body; returns it with the shapes of the tensors it carries.
///
/// `maps` are the edge model's taps, needed by every feature scenario.
///
/// # Errors
/// A missing artifact or maps, maps the artifact was not made for, bad parameters.
pub fn encode(
    scenario: Scenario,
    params: &EncodeParams,
    artifact: Option<&Artifact>,
    image: &RgbImage,
    maps: Option<&[FeatureMap]>,
) -> Result<(Vec<u8>, Vec<[usize; 3]>), CodecError> {
    if scenario.sends_image() {
        let side = IMAGE_SIDE as u32;
        if image.dimensions() != (side, side) {
            return Err(CodecError::Size(format!(
                "image scenarios send {side}x{side} images, got {}x{}",
                image.width(),
                image.height()
            )));
        }
        let body = match scenario {
            Scenario::Webp => image::encode_webp_rgb(image, params.webp_quality)?,
            _ => image::encode_png(image)?,
        };
        return Ok((body, vec![[3, IMAGE_SIDE, IMAGE_SIDE]]));
    }

    let maps = maps.ok_or_else(|| {
        CodecError::Param(format!("scenario {scenario} needs the edge model's feature maps"))
    })?;
    let artifact = match (scenario.needs_artifact(), artifact) {
        (true, None) => return Err(CodecError::MissingArtifact(scenario)),
        (_, a) => a,
    };
    let sampled;
    let maps = match scenario {
        Scenario::Rs | Scenario::RsPq | Scenario::RsWebp => {
            let subset = artifact.ok_or(CodecError::MissingArtifact(scenario))?.need_subset()?;
            sampled = subset.apply(maps)?;
            &sampled[..]
        }
        _ => maps,
    };
    let shapes: Vec<[usize; 3]> = maps.iter().map(FeatureMap::shape).collect();
    let body = match scenario {
        Scenario::Features | Scenario::Rs => raw_bytes(maps),
        Scenario::Pq | Scenario::RsPq => artifact
            .ok_or(CodecError::MissingArtifact(scenario))?
            .need_pq()?
            .encode(&flatten(maps))?,
        Scenario::RsWebp => tiles::encode(maps, params.tile_quality)?,
        Scenario::KltRc => {
            artifact.ok_or(CodecError::MissingArtifact(scenario))?.need_klt()?.encode(maps)?
        }
        Scenario::Original | Scenario::Webp => unreachable!("image scenarios returned above"),
    };
    Ok((body, shapes))
}

/// Decodes a body whose header has already been checked against the receiving model.
///
/// # Errors
/// [`CodecError::Body`] or [`CodecError::Image`] for a body that does not parse,
/// [`CodecError::MissingArtifact`] when the scenario needs an artifact and none was given.
pub fn decode(
    header: &Header,
    body: &[u8],
    artifact: Option<&Artifact>,
) -> Result<Decoded, CodecError> {
    let scenario = header.scenario;
    let bad = |reason: String| CodecError::Body { scenario, reason };
    let shapes: Vec<[usize; 3]> = header
        .shapes
        .iter()
        .map(|s| [usize::from(s[0]), usize::from(s[1]), usize::from(s[2])])
        .collect();

    let img = match scenario {
        Scenario::Original => Some(image::decode_png(body)?),
        Scenario::Webp => Some(image::decode_webp(body)?),
        _ => None,
    };
    if let Some(img) = img {
        let side = IMAGE_SIDE as u32;
        if img.dimensions() != (side, side) {
            return Err(bad(format!(
                "image is {}x{}, expected {side}x{side}",
                img.width(),
                img.height()
            )));
        }
        return Ok(Decoded::Image(img));
    }

    let maps = match scenario {
        Scenario::Features | Scenario::Rs => {
            let needed = total(&shapes) * 4;
            if body.len() != needed {
                return Err(bad(format!(
                    "{} bytes of floats, shapes {shapes:?} need {needed}",
                    body.len()
                )));
            }
            let values: Vec<f32> = body
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("value {i} is {}", values[i])));
            }
            unflatten(values, &shapes)?
        }
        Scenario::Pq | Scenario::RsPq => {
            let pq = artifact.ok_or(CodecError::MissingArtifact(scenario))?.need_pq()?;
            if pq.dim != total(&shapes) {
                return Err(bad(format!(
                    "shapes {shapes:?} hold {} values, the codebook codes {}",
                    total(&shapes),
                    pq.dim
                )));
            }
            unflatten(pq.decode(body)?, &shapes)?
        }
        Scenario::RsWebp => tiles::decode(body, &shapes)?,
        Scenario::KltRc => {
            let klt = artifact.ok_or(CodecError::MissingArtifact(scenario))?.need_klt()?;
            if klt.shapes() != shapes {
                return Err(bad(format!("shapes {shapes:?}, the codec codes {:?}", klt.shapes())));
            }
            return Ok(Decoded::PooledFeatures(klt.decode(body)?));
        }
        Scenario::Original | Scenario::Webp => unreachable!("image scenarios returned above"),
    };
    Ok(Decoded::Features(maps))
}

/// The edge end: turns images (and the edge model's maps) into payloads of one scenario.
#[derive(Clone, Debug)]
pub struct Encoder {
    scenario: Scenario,
    params: EncodeParams,
    artifact: Option<Artifact>,
    model_id: u32,
    edge_version: String,
}

impl Encoder {
    /// An encoder for `scenario` on an edge running the model `model_id`.
    ///
    /// # Errors
    /// [`CodecError::MissingArtifact`] when the scenario needs one and none is given, and
    /// [`CodecError::Artifact`] for an artifact made for another scenario or model.
    pub fn new(
        scenario: Scenario,
        model_id: u32,
        artifact: Option<Artifact>,
        params: EncodeParams,
        edge_version: impl Into<String>,
    ) -> Result<Self, CodecError> {
        match &artifact {
            Some(a) => a.check_for(scenario, model_id)?,
            None if scenario.needs_artifact() => return Err(CodecError::MissingArtifact(scenario)),
            None => {}
        }
        for q in [params.webp_quality, params.tile_quality] {
            if q > 100 {
                return Err(CodecError::Param(format!("WebP quality {q} is not in 0..=100")));
            }
        }
        Ok(Encoder { scenario, params, artifact, model_id, edge_version: edge_version.into() })
    }

    /// The scenario it encodes.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// The artifact it encodes with, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.artifact.as_ref()
    }

    /// Encodes frame number `sequence` into a complete payload.
    ///
    /// # Errors
    /// As [`encode`].
    pub fn encode(
        &self,
        sequence: u32,
        image: &RgbImage,
        maps: Option<&[FeatureMap]>,
    ) -> Result<Vec<u8>, CodecError> {
        let (body, shapes) =
            encode(self.scenario, &self.params, self.artifact.as_ref(), image, maps)?;
        let header = Header {
            scenario: self.scenario,
            model_id: if self.scenario.sends_image() { 0 } else { self.model_id },
            artifact_id: self.artifact.as_ref().map_or(0, Artifact::id),
            seed: self.artifact.as_ref().and_then(|a| a.subset.as_ref()).map_or(0, |s| s.seed),
            sequence,
            edge_version: self.edge_version.clone(),
            shapes: wire_shapes(&shapes)?,
        };
        Ok(wire::encode(&header, &body)?)
    }
}

/// The server end: checks a payload against what a model expects and decodes it.
///
/// # Errors
/// Any [`CodecError`]: a malformed envelope, a payload for another scenario, edge model,
/// artifact or shape, or a body that does not parse.
pub fn decode_payload(
    bytes: &[u8],
    expected: &Expected,
    artifact: Option<&Artifact>,
) -> Result<(Header, Decoded), CodecError> {
    let (header, body) = wire::decode(bytes)?;
    header.check(expected)?;
    let decoded = decode(&header, body, artifact)?;
    Ok((header, decoded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::ArtifactParams;
    use crate::rng::SplitMix64;

    fn maps(seed: u64) -> Vec<FeatureMap> {
        let mut rng = SplitMix64::new(seed);
        [[24usize, 8, 8], [16, 4, 4]]
            .iter()
            .map(|&[c, h, w]| {
                FeatureMap::new(c, h, w, (0..c * h * w).map(|_| rng.normal() as f32).collect())
                    .unwrap()
            })
            .collect()
    }

    fn image() -> RgbImage {
        RgbImage::from_fn(224, 224, |x, y| ::image::Rgb([x as u8, y as u8, (x + y) as u8]))
    }

    fn artifact(scenario: Scenario) -> Option<Artifact> {
        let training: Vec<Vec<FeatureMap>> = (0..12).map(maps).collect();
        let klt = crate::klt::KltParams { steps: vec![4.0, 3.0], ..Default::default() };
        let params = ArtifactParams { pq_sub_quantizers: Some(16), klt, ..Default::default() };
        scenario.needs_artifact().then(|| Artifact::train(scenario, 9, &training, &params).unwrap())
    }

    fn expected(
        scenario: Scenario,
        artifact: Option<&Artifact>,
        shapes: &[[usize; 3]],
    ) -> Expected {
        Expected {
            scenario,
            model_id: 9,
            artifact_id: artifact.map_or(0, Artifact::id),
            shapes: wire_shapes(shapes).unwrap(),
        }
    }

    #[test]
    fn every_scenario_round_trips_through_the_wire() {
        let input = maps(100);
        for scenario in Scenario::ALL {
            let a = artifact(scenario);
            let enc =
                Encoder::new(scenario, 9, a.clone(), EncodeParams::default(), "test").unwrap();
            let payload = enc.encode(0, &image(), Some(&input)).unwrap();
            let (header, _) = wire::decode(&payload).unwrap();
            let shapes: Vec<[usize; 3]> =
                header.shapes.iter().map(|s| s.map(usize::from)).collect();
            let (h, decoded) =
                decode_payload(&payload, &expected(scenario, a.as_ref(), &shapes), a.as_ref())
                    .unwrap();
            assert_eq!(h.sequence, 0);
            match (scenario, decoded) {
                (Scenario::Original, Decoded::Image(img)) => assert_eq!(img, image()),
                (Scenario::Webp, Decoded::Image(img)) => assert_eq!(img.dimensions(), (224, 224)),
                (Scenario::Features, Decoded::Features(m)) => assert_eq!(m, input),
                (Scenario::Rs, Decoded::Features(m)) => {
                    assert_eq!(m, a.unwrap().subset.unwrap().apply(&input).unwrap());
                }
                (Scenario::KltRc, Decoded::PooledFeatures(m)) | (_, Decoded::Features(m)) => {
                    assert_eq!(m.iter().map(FeatureMap::shape).collect::<Vec<_>>(), shapes)
                }
                (s, Decoded::Image(_)) => panic!("{s} decoded to an image"),
                (s, Decoded::PooledFeatures(_)) => panic!("{s} decoded to pooled maps"),
            }
            let again = enc.encode(1, &image(), Some(&input)).unwrap();
            assert_eq!(wire::decode(&again).unwrap().0.sequence, 1);
        }
    }

    #[test]
    fn payload_bytes_are_the_paper_sizes_plus_the_header() {
        let input = maps(1);
        let enc = Encoder::new(Scenario::Features, 9, None, EncodeParams::default(), "v").unwrap();
        let payload = enc.encode(0, &image(), Some(&input)).unwrap();
        let floats: usize = input.iter().map(|m| m.data.len()).sum();
        assert_eq!(payload.len(), floats * 4 + wire::OVERHEAD + 1 + 2 * 6);
    }

    #[test]
    fn the_edge_refuses_artifacts_of_other_models_and_the_server_other_codebooks() {
        let a = artifact(Scenario::Pq).unwrap();
        let err = Encoder::new(Scenario::Pq, 10, Some(a.clone()), EncodeParams::default(), "v")
            .unwrap_err();
        assert!(
            matches!(err, CodecError::Artifact(crate::ArtifactError::ModelMismatch { .. })),
            "{err}"
        );
        assert!(matches!(
            Encoder::new(Scenario::Pq, 9, None, EncodeParams::default(), "v"),
            Err(CodecError::MissingArtifact(Scenario::Pq))
        ));

        let enc =
            Encoder::new(Scenario::Pq, 9, Some(a.clone()), EncodeParams::default(), "v").unwrap();
        let payload = enc.encode(0, &image(), Some(&maps(3))).unwrap();
        let shapes = [[24, 8, 8], [16, 4, 4]];
        let other =
            Expected { artifact_id: a.id() ^ 1, ..expected(Scenario::Pq, Some(&a), &shapes) };
        let err = decode_payload(&payload, &other, Some(&a)).unwrap_err();
        assert!(matches!(err, CodecError::Wire(wire::WireError::ArtifactMismatch { .. })), "{err}");
    }

    #[test]
    fn non_finite_features_are_refused() {
        let mut input = maps(2);
        input[0].data[5] = f32::NAN;
        let enc = Encoder::new(Scenario::Features, 9, None, EncodeParams::default(), "v").unwrap();
        let payload = enc.encode(0, &image(), Some(&input)).unwrap();
        let exp = expected(Scenario::Features, None, &[[24, 8, 8], [16, 4, 4]]);
        assert!(matches!(decode_payload(&payload, &exp, None), Err(CodecError::Body { .. })));
    }
}
