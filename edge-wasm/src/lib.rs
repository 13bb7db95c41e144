//! The Patchwire edge stage.
//!
//! Everything a camera-side device does before bytes leave it, as plain Rust that builds
//! natively (tests, benchmarks, the server's evaluation loop) and for WebAssembly:
//!
//! ```text
//! camera/file -> preprocess::resize_224 -> [backbone::TapModel: MobileNetV2 taps]
//!             -> patchwire_codec::body::Encoder (scenario + artifact) -> wire payload
//! ```
//!
//! - [`preprocess`]: decoding, the straight resize to 224x224 the paper uses, input scaling.
//! - [`backbone`]: an ONNX model run by tract with named intermediate outputs ("taps"); the
//!   edge runs MobileNetV2 through it and the server reuses it for its own backbone.
//! - [`stage`]: the whole edge stage for one scenario, with per-stage timings.
//!
//! The scenarios, encoders and the wire format live in `patchwire-codec`, shared with the
//! server; this crate re-exports what an edge needs of it.
// No unsafe code of ours anywhere; the WASI build is exempt only because wit-bindgen's
// generated glue (component.rs) needs it.
#![cfg_attr(not(target_os = "wasi"), forbid(unsafe_code))]

pub mod backbone;
pub mod preprocess;
pub mod stage;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod browser;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod component;

pub use backbone::TapModel;
pub use patchwire_codec::{self as codec, CodecError, FeatureMap, Scenario};
pub use preprocess::InputScaling;
pub use stage::{EdgeConfig, EdgeOutput, EdgeStage, EdgeTimes};

/// The edge model's taps: the ends of torchvision MobileNetV2 blocks 3, 8 and 14 (NOTES.md).
pub const MOBILENET_V2_TAPS: [&str; 3] = ["features.3", "features.8", "features.14"];

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
    /// A feature scenario was configured without a model.
    #[error("scenario {0} extracts features on the edge and needs the edge model")]
    MissingModel(Scenario),
    /// Encoding failed, or the artifact does not fit.
    #[error(transparent)]
    Codec(#[from] CodecError),
}
