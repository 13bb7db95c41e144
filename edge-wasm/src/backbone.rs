//! ONNX backbones with named intermediate outputs ("taps"), run by tract.
//!
//! The edge runs MobileNetV2 through this; the server runs its own backbone (EfficientNet-Lite,
//! or a user's WideResNet-50 export) through the same type, because a backbone is
//! configuration, not code: an ONNX file, the output names to tap and the input scaling.

use std::sync::Arc;

use patchwire_codec::FeatureMap;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::EdgeError;
use crate::preprocess::INPUT_SIZE;

type Plan = Arc<TypedRunnableModel>;

/// An optimized ONNX model that maps a 1x3x224x224 input to a set of named outputs.
#[derive(Clone)]
pub struct TapModel {
    plan: Plan,
    taps: Vec<String>,
    sha256: [u8; 32],
}

impl std::fmt::Debug for TapModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapModel")
            .field("taps", &self.taps)
            .field("model_id", &format_args!("{:08x}", self.model_id()))
            .finish_non_exhaustive()
    }
}

impl TapModel {
    /// Loads ONNX bytes, exposes `taps` (tensor names) as the outputs, and optimizes the graph
    /// for a 1x3x224x224 float input.
    ///
    /// # Errors
    /// [`EdgeError::Model`] for bytes that are not a loadable ONNX model, and
    /// [`EdgeError::UnknownTap`] for a tap the graph does not have.
    pub fn from_onnx(bytes: &[u8], taps: &[String]) -> Result<Self, EdgeError> {
        let model_err = |e: TractError| EdgeError::Model(format!("{e:#}"));
        let mut model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(model_err)?;

        // Check the taps by name first, so a typo is reported as such rather than as a
        // generic graph error.
        let names: std::collections::HashSet<&str> = model
            .outlet_labels
            .values()
            .map(String::as_str)
            .chain(model.nodes().iter().map(|n| n.name.as_str()))
            .collect();
        if let Some(missing) = taps.iter().find(|t| !names.contains(t.as_str())) {
            return Err(EdgeError::UnknownTap { name: missing.clone() });
        }

        let side = INPUT_SIZE;
        model.set_input_fact(0, f32::fact([1, 3, side, side]).into()).map_err(model_err)?;
        model.select_outputs_by_name(taps).map_err(model_err)?;
        let plan = model.into_optimized().map_err(model_err)?.into_runnable().map_err(model_err)?;
        Ok(TapModel { plan, taps: taps.to_vec(), sha256: Sha256::digest(bytes).into() })
    }

    /// SHA-256 of the ONNX file.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The id payloads and artifacts carry for this model and taps
    /// ([`patchwire_codec::wire::model_id`]).
    pub fn model_id(&self) -> u32 {
        patchwire_codec::wire::model_id(&self.sha256, &self.taps)
    }

    /// The tapped output names, in output order.
    pub fn taps(&self) -> &[String] {
        &self.taps
    }

    /// Runs one scaled NCHW 1x3x224x224 input and returns one map per tap.
    ///
    /// Taps with a rank-2 output (a classifier's logits) come back as `n x 1 x 1` maps.
    ///
    /// # Errors
    /// [`EdgeError::Size`] for an input of the wrong length, [`EdgeError::Model`] when tract
    /// fails.
    pub fn run(&self, input: &[f32]) -> Result<Vec<FeatureMap>, EdgeError> {
        let side = INPUT_SIZE;
        if input.len() != 3 * side * side {
            return Err(EdgeError::Size(format!(
                "backbone input must hold 3x{side}x{side} values, got {}",
                input.len()
            )));
        }
        let model_err = |e: TractError| EdgeError::Model(format!("{e:#}"));
        let tensor = Tensor::from_shape(&[1, 3, side, side], input).map_err(model_err)?;
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(model_err)?;

        outputs
            .iter()
            .zip(&self.taps)
            .map(|(out, name)| {
                let view = out.to_plain_array_view::<f32>().map_err(model_err)?;
                let (c, h, w) = match *view.shape() {
                    [1, c, h, w] => (c, h, w),
                    [1, n] => (n, 1, 1),
                    ref other => {
                        return Err(EdgeError::Size(format!(
                            "tap {name:?} has shape {other:?}, expected 1xCxHxW or 1xN"
                        )));
                    }
                };
                Ok(FeatureMap::new(c, h, w, view.iter().copied().collect())?)
            })
            .collect()
    }
}
