//! The browser build (wasm32-unknown-unknown, wasm-bindgen): one JS class around
//! [`EdgeStage`].
//!
//! ```js
//! import init, { Edge } from "./pkg/patchwire_edge.js";
//! await init();
//! const model = new Uint8Array(await (await fetch("/v1/models/edge")).arrayBuffer());
//! const edge = new Edge({ scenario: "features" }, model, undefined);
//! const frame = edge.process(imageData.data, imageData.width, imageData.height);
//! frame.payload; frame.sequence; frame.resize_ms; frame.extract_ms; frame.encode_ms;
//! ```
//!
//! Errors are thrown as JS `Error`s whose message names the problem.

use wasm_bindgen::prelude::*;

use crate::{EdgeConfig, EdgeOutput, EdgeStage, stage};

/// An edge for one scenario.
#[wasm_bindgen]
pub struct Edge {
    stage: EdgeStage,
}

/// One processed frame.
#[wasm_bindgen]
pub struct Frame {
    out: EdgeOutput,
}

#[wasm_bindgen]
impl Frame {
    /// The wire payload (a copy, as a `Uint8Array`).
    #[wasm_bindgen(getter)]
    pub fn payload(&self) -> Vec<u8> {
        self.out.payload.clone()
    }

    /// The frame number the payload carries.
    #[wasm_bindgen(getter)]
    pub fn sequence(&self) -> u32 {
        self.out.sequence
    }

    /// Milliseconds converting and resizing the frame.
    #[wasm_bindgen(getter)]
    pub fn resize_ms(&self) -> f64 {
        self.out.times.resize_ms
    }

    /// Milliseconds of edge-model inference (0 for image scenarios).
    #[wasm_bindgen(getter)]
    pub fn extract_ms(&self) -> f64 {
        self.out.times.extract_ms
    }

    /// Milliseconds encoding the payload.
    #[wasm_bindgen(getter)]
    pub fn encode_ms(&self) -> f64 {
        self.out.times.encode_ms
    }
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl Edge {
    /// Sets up an edge. `config` is an object with `scenario` (required) and optionally
    /// `encode: {webp_quality, tile_quality}`; `model` the edge model's ONNX bytes (feature
    /// scenarios); `artifact` the artifact file of the scenario (rs, pq, rs-pq, rs-webp).
    #[wasm_bindgen(constructor)]
    pub fn new(
        config: JsValue,
        model: Option<Vec<u8>>,
        artifact: Option<Vec<u8>>,
    ) -> Result<Edge, JsError> {
        let config: EdgeConfig = serde_wasm_bindgen::from_value(config)
            .map_err(|e| js_err(format_args!("bad edge config: {e}")))?;
        let stage =
            EdgeStage::new(&config, model.as_deref(), artifact.as_deref()).map_err(js_err)?;
        Ok(Edge { stage })
    }

    /// Processes the next frame from RGBA pixels (`ImageData.data`).
    pub fn process(&mut self, rgba: &[u8], width: u32, height: u32) -> Result<Frame, JsError> {
        let out = self.stage.process_rgba(rgba, width, height).map_err(js_err)?;
        Ok(Frame { out })
    }

    /// Processes packed RGB pixels as frame number `sequence` (for parity tests).
    #[wasm_bindgen(js_name = processRgb)]
    pub fn process_rgb(
        &self,
        rgb: &[u8],
        width: u32,
        height: u32,
        sequence: u32,
    ) -> Result<Frame, JsError> {
        let out = self.stage.process_rgb_bytes_as(rgb, width, height, sequence).map_err(js_err)?;
        Ok(Frame { out })
    }

    /// The scenario's name.
    #[wasm_bindgen(getter)]
    pub fn scenario(&self) -> String {
        self.stage.scenario().to_string()
    }

    /// The edge model's id as payloads carry it.
    #[wasm_bindgen(getter, js_name = modelId)]
    pub fn model_id(&self) -> u32 {
        self.stage.model_id()
    }

    /// The version payloads carry.
    pub fn version() -> String {
        stage::VERSION.to_string()
    }
}
