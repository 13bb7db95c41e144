//! The whole edge stage for one scenario: resize to 224, [MobileNetV2 taps], encode, payload.
//!
//! The browser module and the gateway component are thin wrappers around [`EdgeStage`], and
//! the server's evaluation runs the same code, so every host produces the same payloads.

use image::RgbImage;
use patchwire_codec::artifact::Artifact;
use patchwire_codec::body::{EncodeParams, Encoder};
use patchwire_codec::{FeatureMap, Scenario};
use web_time::Instant;

use crate::preprocess::{self, InputScaling};
use crate::{EdgeError, MOBILENET_V2_TAPS, TapModel};

/// This crate's version as payloads carry it.
pub const VERSION: &str = concat!("patchwire-edge ", env!("CARGO_PKG_VERSION"));

/// How an edge is set up; every field but the scenario has the paper's default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// What to send.
    pub scenario: Scenario,
    /// Outputs of the edge model to tap.
    pub taps: Vec<String>,
    /// The edge model's input scaling.
    pub scaling: InputScaling,
    /// WebP qualities.
    pub encode: EncodeParams,
    /// The version payloads carry; this crate's by default.
    pub edge_version: String,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            scenario: Scenario::Features,
            taps: MOBILENET_V2_TAPS.map(String::from).to_vec(),
            scaling: InputScaling::TF,
            encode: EncodeParams::default(),
            edge_version: VERSION.to_string(),
        }
    }
}

/// Milliseconds per stage for one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeTimes {
    /// Decoding or converting the input and resizing it to 224x224.
    pub resize_ms: f64,
    /// The edge model's inference (0 for image scenarios).
    pub extract_ms: f64,
    /// The scenario's encoder and the wire envelope.
    pub encode_ms: f64,
}

/// One frame's payload and timings.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeOutput {
    /// The wire payload.
    pub payload: Vec<u8>,
    /// The frame number it carries.
    pub sequence: u32,
    /// Where the time went.
    pub times: EdgeTimes,
}

/// An edge, ready to turn frames into payloads.
#[derive(Debug)]
pub struct EdgeStage {
    model: Option<TapModel>,
    scaling: InputScaling,
    encoder: Encoder,
    sequence: u32,
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

impl EdgeStage {
    /// Sets up an edge from bytes: the edge model's ONNX file (feature scenarios) and the
    /// artifact file (scenarios that need one).
    ///
    /// # Errors
    /// A model that does not load or lacks a tap, a missing model or artifact, an artifact
    /// made for another model or scenario.
    pub fn new(
        config: &EdgeConfig,
        model_onnx: Option<&[u8]>,
        artifact: Option<&[u8]>,
    ) -> Result<Self, EdgeError> {
        let model = match (config.scenario.sends_image(), model_onnx) {
            (true, _) => None,
            (false, Some(bytes)) => Some(TapModel::from_onnx(bytes, &config.taps)?),
            (false, None) => return Err(EdgeError::MissingModel(config.scenario)),
        };
        let artifact = artifact
            .map(Artifact::from_bytes)
            .transpose()
            .map_err(patchwire_codec::CodecError::from)?;
        Self::from_parts(config, model, artifact)
    }

    /// Sets up an edge from a loaded model and artifact.
    ///
    /// # Errors
    /// As [`EdgeStage::new`].
    pub fn from_parts(
        config: &EdgeConfig,
        model: Option<TapModel>,
        artifact: Option<Artifact>,
    ) -> Result<Self, EdgeError> {
        if !config.scenario.sends_image() && model.is_none() {
            return Err(EdgeError::MissingModel(config.scenario));
        }
        let model = model.filter(|_| !config.scenario.sends_image());
        let model_id = model.as_ref().map_or(0, TapModel::model_id);
        let encoder = Encoder::new(
            config.scenario,
            model_id,
            artifact,
            config.encode,
            config.edge_version.clone(),
        )?;
        Ok(EdgeStage { model, scaling: config.scaling, encoder, sequence: 0 })
    }

    /// The scenario it sends.
    pub fn scenario(&self) -> Scenario {
        self.encoder.scenario()
    }

    /// The edge model's id, 0 for image scenarios.
    pub fn model_id(&self) -> u32 {
        self.model.as_ref().map_or(0, TapModel::model_id)
    }

    /// The edge model's taps of a 224x224 image (`None` for image scenarios).
    ///
    /// # Errors
    /// A wrong image size or an inference failure.
    pub fn extract(&self, img: &RgbImage) -> Result<Option<Vec<FeatureMap>>, EdgeError> {
        let Some(model) = &self.model else { return Ok(None) };
        let input = preprocess::to_nchw(img, self.scaling)?;
        Ok(Some(model.run(&input)?))
    }

    /// Encodes a 224x224 image (and its taps) as frame `sequence`: extract and encode
    /// timings in milliseconds, and the payload.
    ///
    /// # Errors
    /// As [`EdgeStage::extract`], or an encoder error.
    pub fn encode_224(
        &self,
        sequence: u32,
        img: &RgbImage,
    ) -> Result<(Vec<u8>, f64, f64), EdgeError> {
        let start = Instant::now();
        let maps = self.extract(img)?;
        let extract_ms = if maps.is_some() { ms_since(start) } else { 0.0 };
        let start = Instant::now();
        let payload = self.encoder.encode(sequence, img, maps.as_deref())?;
        Ok((payload, extract_ms, ms_since(start)))
    }

    /// Processes the next frame, an RGB image of any size; frames are numbered from 0.
    ///
    /// # Errors
    /// An empty image, or as [`EdgeStage::encode_224`].
    pub fn process_rgb(&mut self, img: &RgbImage) -> Result<EdgeOutput, EdgeError> {
        let start = Instant::now();
        let resized = preprocess::resize_224(img)?;
        let resize_ms = ms_since(start);
        self.finish(resized, resize_ms)
    }

    /// Processes the next frame from packed 8-bit RGB pixels, row-major.
    ///
    /// # Errors
    /// [`EdgeError::Size`] when `rgb` is not `width * height * 3` bytes, or as
    /// [`EdgeStage::process_rgb`].
    pub fn process_rgb_bytes(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<EdgeOutput, EdgeError> {
        let sequence = self.sequence;
        let out = self.process_rgb_bytes_as(rgb, width, height, sequence)?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(out)
    }

    /// Processes packed RGB pixels as frame number `sequence`, leaving the edge's own
    /// counter alone (for hosts that number frames across component swaps).
    ///
    /// # Errors
    /// As [`EdgeStage::process_rgb_bytes`].
    pub fn process_rgb_bytes_as(
        &self,
        rgb: &[u8],
        width: u32,
        height: u32,
        sequence: u32,
    ) -> Result<EdgeOutput, EdgeError> {
        let start = Instant::now();
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected || expected == 0 {
            return Err(EdgeError::Size(format!(
                "{width}x{height} RGB needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        let img = RgbImage::from_raw(width, height, rgb.to_vec())
            .ok_or_else(|| EdgeError::Size("RGB buffer".into()))?;
        let resized = preprocess::resize_224(&img)?;
        let resize_ms = ms_since(start);
        let (payload, extract_ms, encode_ms) = self.encode_224(sequence, &resized)?;
        Ok(EdgeOutput { payload, sequence, times: EdgeTimes { resize_ms, extract_ms, encode_ms } })
    }

    /// Processes the next frame from RGBA pixels (a canvas's `ImageData`), row-major.
    ///
    /// # Errors
    /// [`EdgeError::Size`] when `rgba` is not `width * height * 4` bytes, or as
    /// [`EdgeStage::process_rgb`].
    pub fn process_rgba(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
    ) -> Result<EdgeOutput, EdgeError> {
        let start = Instant::now();
        let expected = width as usize * height as usize * 4;
        if rgba.len() != expected || expected == 0 {
            return Err(EdgeError::Size(format!(
                "{width}x{height} RGBA needs {expected} bytes, got {}",
                rgba.len()
            )));
        }
        let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        let img = RgbImage::from_raw(width, height, rgb)
            .ok_or_else(|| EdgeError::Size("RGBA buffer".into()))?;
        let resized = preprocess::resize_224(&img)?;
        let resize_ms = ms_since(start);
        self.finish(resized, resize_ms)
    }

    fn finish(&mut self, img: RgbImage, resize_ms: f64) -> Result<EdgeOutput, EdgeError> {
        let sequence = self.sequence;
        let (payload, extract_ms, encode_ms) = self.encode_224(sequence, &img)?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(EdgeOutput { payload, sequence, times: EdgeTimes { resize_ms, extract_ms, encode_ms } })
    }
}
