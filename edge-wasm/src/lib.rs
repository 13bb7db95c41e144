//! The Patchwire edge stage.
//!
//! Everything a camera-side device does before bytes leave it, as plain functions that build
//! natively (tests, benchmarks, the server's evaluation loop) and for WebAssembly:
//!
//! ```text
//! camera/file -> preprocess::resize_224 -> [backbone::TapModel: MobileNetV2 taps] -> encoder
//! ```
//!
//! - [`preprocess`]: decoding, the straight resize to 224x224 the paper uses, input scaling.
//! - [`backbone`]: an ONNX model run by tract with named intermediate outputs ("taps"); the
//!   edge runs MobileNetV2 through it and the server reuses it for its own backbone.
//! - [`scenario`]: the transmission scenarios, named once for the CLI, JSON and wire format.
#![forbid(unsafe_code)]

pub mod backbone;
pub mod codec;
pub mod preprocess;
pub mod scenario;

pub use backbone::{FeatureMap, TapModel};
pub use preprocess::InputScaling;
pub use scenario::Scenario;

/// Errors of the edge stage. Each variant names the offending input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// The image bytes could not be decoded.
    #[error("cannot decode image: {0}")]
    Image(String),
    /// An image or tensor had a size this stage cannot take.
    #[error("bad size: {0}")]
    Size(String),
    /// The ONNX model could not be loaded, optimized or run.
    #[error("model error: {0}")]
    Model(String),
    /// A requested tap is not a tensor of the model.
    #[error("the model has no tensor named {name:?}")]
    UnknownTap {
        /// The requested output name.
        name: String,
    },
    /// A scenario name that is not one of [`Scenario::ALL`].
    #[error("unknown scenario {0:?} (known: {known})", known = scenario::known_names())]
    UnknownScenario(String),
}
