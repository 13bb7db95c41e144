//! Patchwire's payload: the wire format, and every transmission scenario's encoder (run on the
//! edge) and decoder (run on the server), in one crate so both sides share one definition.
//!
//! ```text
//! edge:   image or feature maps -> body::Encoder (scenario + artifact) -> wire::encode
//! server: wire::decode -> Header::check (model, artifact, shapes) -> body::decode
//! ```
//!
//! - [`scenario`]: the scenario names and wire codes.
//! - [`wire`]: the envelope every payload shares, with its byte layout.
//! - [`body`]: per-scenario bodies, built from the codecs below.
//! - [`image`]: PNG and lossy WebP for the image scenarios.
//! - [`rs`], [`pq`], [`tiles`]: the paper's channel sampling, product quantization and
//!   feature-maps-as-WebP.
//! - [`klt`] on [`rangecoder`]: `klt-rc`, our codec, which beats the paper's trade-off.
//! - [`artifact`]: channel subsets and codebooks trained on the server and loaded by edges.
//!
//! Plain Rust with no model runtime, so it builds for every target (native, wasm32 in the
//! browser and in wasmtime) and its decoder can be fuzzed on its own.
#![forbid(unsafe_code)]

pub mod artifact;
pub mod bits;
pub mod body;
pub mod image;
pub mod klt;
pub mod pq;
pub mod rangecoder;
pub mod rng;
pub mod rs;
pub mod scenario;
pub mod tiles;
pub mod wire;

pub use artifact::{Artifact, ArtifactError};
pub use scenario::Scenario;
pub use wire::{Header, WireError};

/// Errors of encoding and decoding. Each variant names the offending input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload envelope is malformed or does not fit the receiving model.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// An artifact is malformed or does not fit.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A scenario name that is not one of [`Scenario::ALL`].
    #[error("unknown scenario {0:?} (known: {known})", known = scenario::known_names())]
    UnknownScenario(String),
    /// A tensor or image of a size this codec cannot take.
    #[error("bad size: {0}")]
    Size(String),
    /// Image bytes that could not be encoded or decoded.
    #[error("image codec: {0}")]
    Image(String),
    /// A payload body that does not parse for its scenario.
    #[error("malformed {scenario} body: {reason}")]
    Body {
        /// The scenario the header named.
        scenario: Scenario,
        /// What was wrong.
        reason: String,
    },
    /// The scenario needs an artifact (channel subset or codebook) and none was given.
    #[error("scenario {0} needs an artifact (channel subset or codebook) trained on the server")]
    MissingArtifact(Scenario),
    /// An encoder parameter out of range.
    #[error("invalid parameter: {0}")]
    Param(String),
}

/// One layer's activations for one image, channel-major (CHW).
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMap {
    /// Number of channels.
    pub channels: usize,
    /// Height in cells.
    pub height: usize,
    /// Width in cells.
    pub width: usize,
    /// `channels * height * width` values, channel-major.
    pub data: Vec<f32>,
}

impl FeatureMap {
    /// Wraps CHW data, checking that its length matches the shape.
    ///
    /// # Errors
    /// [`CodecError::Size`] when `data.len() != channels * height * width`.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        data: Vec<f32>,
    ) -> Result<Self, CodecError> {
        if Some(data.len()) != channels.checked_mul(height).and_then(|n| n.checked_mul(width)) {
            return Err(CodecError::Size(format!(
                "feature map {channels}x{height}x{width} cannot hold {} values",
                data.len()
            )));
        }
        Ok(FeatureMap { channels, height, width, data })
    }

    /// The `channels x height x width` shape.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The 3x3 mean of every cell (stride 1, zero padding, always divided by 9, as torch's
    /// `avg_pool2d` with `count_include_pad=True`): PatchCore's local aggregation, and what
    /// the `klt-rc` codec codes.
    pub fn avg_pool_3x3(&self) -> FeatureMap {
        let (h, w) = (self.height, self.width);
        let mut out = vec![0f32; self.data.len()];
        for c in 0..self.channels {
            let src = self.plane(c);
            let dst = &mut out[c * h * w..(c + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    let mut sum = 0f32;
                    for yy in y.saturating_sub(1)..(y + 2).min(h) {
                        for xx in x.saturating_sub(1)..(x + 2).min(w) {
                            sum += src[yy * w + xx];
                        }
                    }
                    dst[y * w + x] = sum / 9.0;
                }
            }
        }
        FeatureMap { channels: self.channels, height: h, width: w, data: out }
    }

    /// Values of one cell plane.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }
}

/// Shapes as the wire format writes them.
///
/// # Errors
/// [`CodecError::Size`] for a dimension over 65,535.
pub fn wire_shapes(shapes: &[[usize; 3]]) -> Result<Vec<[u16; 3]>, CodecError> {
    shapes
        .iter()
        .map(|s| {
            let d = |v: usize| {
                u16::try_from(v).map_err(|_| CodecError::Size(format!("dimension {v} in {s:?}")))
            };
            Ok([d(s[0])?, d(s[1])?, d(s[2])?])
        })
        .collect()
}
