//! One scenario's path from camera image to PatchCore input, stage by stage and timed:
//!
//! ```text
//! edge: [MobileNetV2 taps] -> encode  ==payload==>  server: decode -> [server backbone]
//! ```

use std::time::Instant;

use anyhow::{Context, Result};
use image::RgbImage;
use patchwire_edge::{FeatureMap, Scenario, codec};
use serde::Serialize;

use crate::backbones::{Backbone, BackboneId};

/// Milliseconds spent in each stage for one image (or their means over many).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct StageTimes {
    /// Edge backbone (MobileNetV2) inference.
    pub edge_extract: f64,
    /// Edge encoder.
    pub edge_encode: f64,
    /// Server decoder.
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

/// A scenario with the backbones it needs.
pub struct Pipeline<'a> {
    /// The transmission scenario.
    pub scenario: Scenario,
    /// MobileNetV2 on the edge (feature scenarios).
    pub edge: &'a Backbone,
    /// The server backbone (image scenarios).
    pub server: &'a Backbone,
    edge_shapes: Vec<[usize; 3]>,
}

/// What crossed the link for one image, and the features the server got out of it.
pub struct Processed {
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// The layers PatchCore embeds.
    pub features: Vec<FeatureMap>,
    /// Stage times (scoring not included).
    pub times: StageTimes,
}

impl<'a> Pipeline<'a> {
    /// Sets up a scenario; runs the edge backbone once to learn its output shapes.
    ///
    /// # Errors
    /// When the edge backbone cannot run.
    pub fn new(scenario: Scenario, edge: &'a Backbone, server: &'a Backbone) -> Result<Self> {
        let probe = RgbImage::new(224, 224);
        let edge_shapes = edge
            .extract(&probe)?
            .iter()
            .map(FeatureMap::shape)
            .collect();
        Ok(Pipeline {
            scenario,
            edge,
            server,
            edge_shapes,
        })
    }

    /// The backbone whose features fill the memory bank.
    pub fn feature_backbone(&self) -> &BackboneId {
        if self.scenario.sends_image() {
            self.server.id()
        } else {
            self.edge.id()
        }
    }

    /// Runs edge and server stages for one 224x224 image.
    ///
    /// # Errors
    /// Inference or decoding failures.
    pub fn process(&self, img: &RgbImage) -> Result<Processed> {
        let mut times = StageTimes::default();
        let (payload_bytes, features) = match self.scenario {
            Scenario::Original => {
                let (payload, t) = timed(|| codec::encode_png(img));
                times.edge_encode = t;
                let (decoded, t) = timed(|| codec::decode_png(&payload));
                times.server_decode = t;
                let decoded = decoded.context("server decoding the PNG payload")?;
                let (features, t) = timed(|| self.server.extract(&decoded));
                times.server_extract = t;
                (payload.len(), features?)
            }
            Scenario::Features => {
                let (maps, t) = timed(|| self.edge.extract(img));
                times.edge_extract = t;
                let maps = maps?;
                let (payload, t) = timed(|| codec::encode_raw(&maps));
                times.edge_encode = t;
                let (decoded, t) = timed(|| codec::decode_raw(&payload, &self.edge_shapes));
                times.server_decode = t;
                (payload.len(), decoded?)
            }
        };
        Ok(Processed {
            payload_bytes,
            features,
            times,
        })
    }
}
