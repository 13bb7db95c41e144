//! The gateway build (wasm32-wasip2): the `edge-component` world of `wit/edge.wit`, a thin
//! wrapper around [`EdgeStage`].
//!
//! The component's version, carried by every payload it encodes, lives in [`VERSION_SLOT`]: a
//! marker followed by a NUL-padded string. Release tooling can stamp a built component with
//! a new version by overwriting the bytes after the marker (`patchwire gateway stamp`), so a
//! gateway can tell builds apart without a rebuild of the model runtime.

use std::cell::RefCell;

use exports::patchwire::edge::stage::{self as wit, Guest, GuestEdge};

use crate::{EdgeConfig, EdgeError, EdgeOutput, EdgeStage, Scenario};

wit_bindgen::generate!({
    world: "edge-component",
    path: "../wit",
});

/// What precedes the version in [`VERSION_SLOT`].
pub const VERSION_MARKER: &[u8; 28] = b"PATCHWIRE-COMPONENT-VERSION:";
/// Bytes of the slot after the marker.
pub const VERSION_CAPACITY: usize = 36;

/// The stampable version: marker, then the version padded with NULs.
#[used]
pub static VERSION_SLOT: [u8; 64] = version_slot(crate::stage::VERSION.as_bytes());

const fn version_slot(version: &[u8]) -> [u8; 64] {
    let mut slot = [0u8; 64];
    let mut i = 0;
    while i < VERSION_MARKER.len() {
        slot[i] = VERSION_MARKER[i];
        i += 1;
    }
    let mut j = 0;
    while j < version.len() && j < VERSION_CAPACITY {
        slot[VERSION_MARKER.len() + j] = version[j];
        j += 1;
    }
    slot
}

/// The version in the slot as the binary holds it now.
fn version() -> String {
    // Read through an opaque reference, so the compiler cannot fold the slot's build-time
    // contents into the code and a stamped binary reports its stamp.
    let slot: &[u8; 64] = std::hint::black_box(&VERSION_SLOT);
    let body = &slot[VERSION_MARKER.len()..];
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

struct Component;

impl Guest for Component {
    type Edge = Edge;

    fn version() -> String {
        version()
    }
}

/// One edge resource.
struct Edge {
    stage: RefCell<EdgeStage>,
}

fn scenario(s: wit::Scenario) -> Scenario {
    match s {
        wit::Scenario::Original => Scenario::Original,
        wit::Scenario::Webp => Scenario::Webp,
        wit::Scenario::Features => Scenario::Features,
        wit::Scenario::Rs => Scenario::Rs,
        wit::Scenario::Pq => Scenario::Pq,
        wit::Scenario::RsPq => Scenario::RsPq,
        wit::Scenario::RsWebp => Scenario::RsWebp,
        wit::Scenario::KltRc => Scenario::KltRc,
    }
}

fn error(e: EdgeError) -> wit::EdgeError {
    use patchwire_codec::CodecError;
    let message = e.to_string();
    match e {
        EdgeError::Model(_) | EdgeError::UnknownTap { .. } => wit::EdgeError::BadModel(message),
        EdgeError::Codec(CodecError::Artifact(_)) => wit::EdgeError::BadArtifact(message),
        EdgeError::MissingModel(_)
        | EdgeError::Codec(CodecError::MissingArtifact(_) | CodecError::Param(_)) => {
            wit::EdgeError::BadConfig(message)
        }
        EdgeError::Size(_) | EdgeError::Image(_) => wit::EdgeError::BadFrame(message),
        _ => wit::EdgeError::Failed(message),
    }
}

fn frame(out: EdgeOutput) -> wit::Frame {
    wit::Frame {
        payload: out.payload,
        sequence: out.sequence,
        timings: wit::Timings {
            resize_ms: out.times.resize_ms,
            extract_ms: out.times.extract_ms,
            encode_ms: out.times.encode_ms,
        },
    }
}

impl GuestEdge for Edge {
    fn create(
        config: wit::Config,
        model: Option<Vec<u8>>,
        artifact: Option<Vec<u8>>,
    ) -> Result<wit::Edge, wit::EdgeError> {
        let config = EdgeConfig {
            scenario: scenario(config.scenario),
            encode: patchwire_codec::body::EncodeParams {
                webp_quality: config.webp_quality,
                tile_quality: config.tile_quality,
            },
            edge_version: version(),
            ..EdgeConfig::default()
        };
        let stage =
            EdgeStage::new(&config, model.as_deref(), artifact.as_deref()).map_err(error)?;
        Ok(wit::Edge::new(Edge { stage: RefCell::new(stage) }))
    }

    fn process(&self, rgb: Vec<u8>, width: u32, height: u32) -> Result<wit::Frame, wit::EdgeError> {
        self.stage.borrow_mut().process_rgb_bytes(&rgb, width, height).map(frame).map_err(error)
    }

    fn process_numbered(
        &self,
        rgb: Vec<u8>,
        width: u32,
        height: u32,
        sequence: u32,
    ) -> Result<wit::Frame, wit::EdgeError> {
        self.stage
            .borrow()
            .process_rgb_bytes_as(&rgb, width, height, sequence)
            .map(frame)
            .map_err(error)
    }

    fn model_id(&self) -> u32 {
        self.stage.borrow().model_id()
    }
}

export!(Component);
