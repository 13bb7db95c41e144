//! One scenario's path from camera image to PatchCore input, stage by stage and timed:
//!
//! ```text
//! edge (patchwire_edge::EdgeStage): [MobileNetV2 taps] -> encoder -> payload
//! server: decode_payload (envelope, model checks, body) -> [server backbone] -> features
//! ```
//!
//! The edge half is the edge crate's own code, the same that runs in the browser and the
//! gateway component, so payload sizes and edge timings are those of a real edge.

use std::time::Instant;

use anyhow::{Context, Result};
use image::RgbImage;
use patchwire_codec::artifact::Artifact;
use patchwire_codec::body::{self, Decoded, EncodeParams};
use patchwire_codec::wire::{Expected, Header};
use patchwire_codec::{FeatureMap, Scenario};
use patchwire_edge::{EdgeConfig, EdgeStage};
use serde::Serialize;

use crate::backbones::{Backbone, BackboneId};
use crate::patchcore::embed::Pooling;

/// What the memory bank is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BankSource {
    /// Training images go through the edge encoder and the server decoder, as test images do.
    Decoded,
    /// The uncompressed training features (the server has them: artifacts are trained on
    /// them), with the scenario's channel subset applied.
    Raw,
}

impl BankSource {
    /// The measured better choice per scenario: raw for `klt-rc` (equal image AUROC, higher
    /// pixel F1 on bottle), decoded for the paper's scenarios (its PQ loses far more with a raw
    /// bank: image AUROC 0.83 against 0.92 in our measurement).
    pub fn default_for(scenario: Scenario) -> BankSource {
        if scenario == Scenario::KltRc { BankSource::Raw } else { BankSource::Decoded }
    }
}

/// Milliseconds spent in each stage for one image (or their means over many).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct StageTimes {
    /// Edge backbone (MobileNetV2) inference.
    pub edge_extract: f64,
    /// Edge encoder, wire envelope included.
    pub edge_encode: f64,
    /// Server: envelope checks and body decoding.
    pub server_decode: f64,
    /// Server backbone inference.
    pub server_extract: f64,
    /// PatchCore scoring.
    pub server_score: f64,
}

impl StageTimes {
    /// Adds another image's times.
    pub fn add(&mut self, o: &StageTimes) {
        self.edge_extract += o.edge_extract;
        self.edge_encode += o.edge_encode;
        self.server_decode += o.server_decode;
        self.server_extract += o.server_extract;
        self.server_score += o.server_score;
    }

    /// Divides every stage by `n`.
    pub fn mean(mut self, n: usize) -> StageTimes {
        let n = n.max(1) as f64;
        for t in [
            &mut self.edge_extract,
            &mut self.edge_encode,
            &mut self.server_decode,
            &mut self.server_extract,
            &mut self.server_score,
        ] {
            *t /= n;
        }
        self
    }
}

/// Runs `f` and returns its result and the elapsed milliseconds.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64() * 1e3)
}

/// A scenario with everything both ends need: the backbones, the edge stage, the artifact and
/// what the server accepts.
pub struct Pipeline<'a> {
    /// The transmission scenario.
    pub scenario: Scenario,
    /// MobileNetV2 on the edge (feature scenarios).
    pub edge: &'a Backbone,
    /// The server backbone (image scenarios).
    pub server: &'a Backbone,
    stage: EdgeStage,
    artifact: Option<Artifact>,
    encode: EncodeParams,
    expected: Expected,
    bank: BankSource,
}

/// What crossed the link for one image, and the features the server got out of it.
pub struct Processed {
    /// Payload size in bytes, header included.
    pub payload_bytes: usize,
    /// The layers PatchCore embeds.
    pub features: Vec<FeatureMap>,
    /// Whether they still need PatchCore's 3x3 pooling.
    pub pooling: Pooling,
    /// Stage times (scoring not included).
    pub times: StageTimes,
}

impl<'a> Pipeline<'a> {
    /// Sets up a scenario. `artifact` is required by the scenarios that sample or quantize
    /// (see [`crate::eval::train_artifact`]).
    ///
    /// # Errors
    /// A missing or mismatched artifact, or an edge backbone that cannot run.
    pub fn new(
        scenario: Scenario,
        edge: &'a Backbone,
        server: &'a Backbone,
        encode: EncodeParams,
        artifact: Option<Artifact>,
    ) -> Result<Self> {
        let config = EdgeConfig {
            scenario,
            taps: edge.id().taps.clone(),
            scaling: edge.id().scaling,
            encode,
            ..EdgeConfig::default()
        };
        let stage =
            EdgeStage::from_parts(&config, Some(edge.tap_model().clone()), artifact.clone())
                .with_context(|| format!("setting up the edge for scenario {scenario}"))?;

        // What this scenario's payloads look like: run the edge once on a blank image.
        let probe = RgbImage::new(224, 224);
        let (payload, _, _) = stage.encode_224(0, &probe)?;
        let (header, _) = patchwire_codec::wire::decode(&payload)?;
        let expected = Expected {
            scenario,
            model_id: stage.model_id(),
            artifact_id: artifact.as_ref().map_or(0, Artifact::id),
            shapes: header.shapes,
        };
        let bank = BankSource::default_for(scenario);
        Ok(Pipeline { scenario, edge, server, stage, artifact, encode, expected, bank })
    }

    /// Builds the bank from `bank` instead of the scenario's default.
    pub fn with_bank(mut self, bank: BankSource) -> Self {
        self.bank = bank;
        self
    }

    /// What the bank is built from.
    pub fn bank_source(&self) -> BankSource {
        self.bank
    }

    /// The backbone whose features fill the memory bank.
    pub fn feature_backbone(&self) -> &BackboneId {
        if self.scenario.sends_image() { self.server.id() } else { self.edge.id() }
    }

    /// The artifact the edge encodes with.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.artifact.as_ref()
    }

    /// The encoder settings.
    pub fn encode_params(&self) -> EncodeParams {
        self.encode
    }

    /// What the server accepts from edges.
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// The shapes payloads carry, as `usize`.
    pub fn wire_shapes(&self) -> Vec<[usize; 3]> {
        self.expected.shapes.iter().map(|s| s.map(usize::from)).collect()
    }

    /// The server half: checks and decodes a payload, runs the server backbone on an image.
    /// Returns the header, the features, and the decode and extract times in milliseconds.
    ///
    /// # Errors
    /// A payload that is malformed or does not fit this model, or an inference failure.
    pub fn serve(&self, payload: &[u8]) -> Result<Served> {
        let (decoded, decode_ms) =
            timed(|| body::decode_payload(payload, &self.expected, self.artifact.as_ref()));
        let (header, decoded) = decoded?;
        let (features, pooling, extract_ms) = match decoded {
            Decoded::Features(maps) => (maps, Pooling::Pool, 0.0),
            Decoded::PooledFeatures(maps) => (maps, Pooling::AlreadyPooled, 0.0),
            Decoded::Image(img) => {
                let (features, ms) = timed(|| self.server.extract(&img));
                (features?, Pooling::Pool, ms)
            }
        };
        Ok(Served { header, features, pooling, decode_ms, extract_ms })
    }

    /// Runs edge and server stages for one 224x224 image.
    ///
    /// # Errors
    /// Inference, encoding or decoding failures.
    pub fn process(&self, img: &RgbImage) -> Result<Processed> {
        let (payload, edge_extract, edge_encode) = self.stage.encode_224(0, img)?;
        let served = self.serve(&payload).context("server decoding the edge's own payload")?;
        let times = StageTimes {
            edge_extract,
            edge_encode,
            server_decode: served.decode_ms,
            server_extract: served.extract_ms,
            server_score: 0.0,
        };
        Ok(Processed {
            payload_bytes: payload.len(),
            features: served.features,
            pooling: served.pooling,
            times,
        })
    }

    /// What a training image contributes to the bank, per [`BankSource`].
    ///
    /// # Errors
    /// As [`Pipeline::process`].
    pub fn process_training(&self, img: &RgbImage) -> Result<Processed> {
        if self.bank == BankSource::Decoded {
            return self.process(img);
        }
        let (features, t) = if self.scenario.sends_image() {
            timed(|| self.server.extract(img))
        } else {
            timed(|| -> Result<Vec<FeatureMap>> {
                let maps = self.edge.extract(img)?;
                match self.artifact.as_ref().and_then(|a| a.subset.as_ref()) {
                    Some(subset) => Ok(subset.apply(&maps)?),
                    None => Ok(maps),
                }
            })
        };
        let times = StageTimes { edge_extract: t, ..StageTimes::default() };
        Ok(Processed { payload_bytes: 0, features: features?, pooling: Pooling::Pool, times })
    }
}

/// What the server got out of one payload.
pub struct Served {
    /// The payload's header.
    pub header: Header,
    /// The layers PatchCore embeds.
    pub features: Vec<FeatureMap>,
    /// Whether they still need PatchCore's 3x3 pooling.
    pub pooling: Pooling,
    /// Milliseconds checking and decoding.
    pub decode_ms: f64,
    /// Milliseconds in the server backbone.
    pub extract_ms: f64,
}
