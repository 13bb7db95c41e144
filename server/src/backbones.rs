//! Backbones as configuration: an ONNX file, the tensors to tap, and the input scaling.
//!
//! Three come prepared by `models/prepare.sh` (MobileNetV2 for the edge, EfficientNet-Lite0
//! and Lite2 for the server). Any other backbone is a JSON file, for example a torchvision
//! `wide_resnet50_2` export:
//!
//! ```json
//! {"name": "wrn50", "onnx": "wide_resnet50_2.onnx", "taps": ["layer1", "layer2", "layer3"],
//!  "scaling": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
//! ```
//!
//! A relative `onnx` path is taken relative to the JSON file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::RgbImage;
use patchwire_edge::{FeatureMap, InputScaling, TapModel, preprocess};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a model file records the backbone that made its bank.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackboneId {
    /// Preset or config name.
    pub name: String,
    /// SHA-256 of the ONNX file, hex.
    pub onnx_sha256: String,
    /// Tapped tensors, in concatenation order.
    pub taps: Vec<String>,
    /// Input scaling.
    pub scaling: InputScaling,
}

/// A backbone described by configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackboneConfig {
    /// A short name for reports.
    pub name: String,
    /// The ONNX file.
    pub onnx: PathBuf,
    /// Tensor names to tap.
    pub taps: Vec<String>,
    /// Input scaling.
    pub scaling: InputScaling,
}

/// The prepared backbones: name, file in `models/build`, default taps.
const PRESETS: &[(&str, &str, &[&str])] = &[
    ("mobilenet-v2", "mobilenet_v2.onnx", &["features.3", "features.8", "features.14"]),
    ("efficientnet-lite0", "efficientnet_lite0.onnx", &["stage2", "stage3", "stage4"]),
    ("efficientnet-lite2", "efficientnet_lite2.onnx", &["stage2", "stage3", "stage4"]),
];

/// The edge backbone of the paper: MobileNetV2 with taps 3/8/14.
pub const EDGE_BACKBONE: &str = "mobilenet-v2";
/// The default server backbone for scenarios that send an image: EfficientNet-Lite2 with the
/// stride 4, 8 and 16 stages 2-4, the best pixel F1 of the compared candidates on both MVTec
/// AD bottle (0.774) and the magnetic tile set (0.373); `patchwire bench backbones`, README.
pub const DEFAULT_SERVER_BACKBONE: &str = "efficientnet-lite2";

impl BackboneConfig {
    /// Resolves `spec`: a preset name (optionally `name:tap1,tap2` to choose taps) looked up in
    /// `models_dir`, or the path of a JSON config file.
    ///
    /// # Errors
    /// An unknown preset, an unreadable or invalid JSON file.
    pub fn resolve(spec: &str, models_dir: &Path) -> Result<BackboneConfig> {
        let (name, taps) = match spec.split_once(':') {
            Some((n, t)) => (n, Some(t.split(',').map(str::to_string).collect::<Vec<_>>())),
            None => (spec, None),
        };
        if let Some(&(preset, file, default_taps)) = PRESETS.iter().find(|p| p.0 == name) {
            return Ok(BackboneConfig {
                name: preset.to_string(),
                onnx: models_dir.join(file),
                taps: taps.unwrap_or_else(|| default_taps.iter().map(|t| t.to_string()).collect()),
                scaling: InputScaling::TF,
            });
        }
        let path = Path::new(name);
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading backbone config {}", path.display()))?;
            let mut cfg: BackboneConfig = serde_json::from_str(&text)
                .with_context(|| format!("backbone config {} is not valid", path.display()))?;
            if cfg.onnx.is_relative() {
                cfg.onnx = path.parent().unwrap_or(Path::new(".")).join(&cfg.onnx);
            }
            if let Some(t) = taps {
                cfg.taps = t;
            }
            if cfg.taps.is_empty() {
                bail!("backbone config {} lists no taps", path.display());
            }
            return Ok(cfg);
        }
        let known: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
        bail!("unknown backbone {name:?}: use one of {known:?} or a .json config file")
    }
}

/// A loaded backbone, ready to extract features.
#[derive(Debug)]
pub struct Backbone {
    id: BackboneId,
    onnx: PathBuf,
    model: TapModel,
}

/// SHA-256 of a byte string, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Backbone {
    /// Loads the ONNX file of `config`. When `models/build/manifest.json` records the file,
    /// its checksum must match, so a damaged model is reported rather than run.
    ///
    /// # Errors
    /// A missing or corrupt ONNX file, a checksum mismatch, or taps the model lacks.
    pub fn load(config: &BackboneConfig) -> Result<Backbone> {
        let bytes = std::fs::read(&config.onnx).with_context(|| {
            format!(
                "reading backbone {} from {} (run models/prepare.sh to build the prepared models)",
                config.name,
                config.onnx.display()
            )
        })?;
        let sha = sha256_hex(&bytes);
        check_manifest(&config.onnx, &sha)?;
        let model = TapModel::from_onnx(&bytes, &config.taps).with_context(|| {
            format!("loading backbone {} ({})", config.name, config.onnx.display())
        })?;
        let id = BackboneId {
            name: config.name.clone(),
            onnx_sha256: sha,
            taps: config.taps.clone(),
            scaling: config.scaling,
        };
        Ok(Backbone { id, onnx: config.onnx.clone(), model })
    }

    /// The ONNX file it was loaded from.
    pub fn onnx_path(&self) -> &Path {
        &self.onnx
    }

    /// The tract model, for benchmarks that time inference alone.
    pub fn tap_model(&self) -> &TapModel {
        &self.model
    }

    /// What a model file records about this backbone.
    pub fn id(&self) -> &BackboneId {
        &self.id
    }

    /// Features of a 224x224 image.
    ///
    /// # Errors
    /// A wrong image size or an inference failure.
    pub fn extract(&self, img: &RgbImage) -> Result<Vec<FeatureMap>> {
        let input = preprocess::to_nchw(img, self.id.scaling)?;
        Ok(self.model.run(&input)?)
    }
}

/// Checks `file` against the manifest beside it, if it is listed there.
fn check_manifest(file: &Path, sha: &str) -> Result<()> {
    let Some(dir) = file.parent() else {
        return Ok(());
    };
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        return Ok(());
    };
    let manifest: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", dir.join("manifest.json").display()))?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let recorded = manifest["models"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .chain(manifest["models"].as_array().into_iter().flatten())
        .find(|m| m["file"].as_str() == Some(name))
        .and_then(|m| m["sha256"].as_str());
    match recorded {
        Some(expected) if expected != sha => bail!(
            "{} is damaged: SHA-256 {sha}, manifest says {expected}; rerun models/prepare.sh",
            file.display()
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_tap_overrides_resolve() {
        let dir = Path::new("/m");
        let c = BackboneConfig::resolve("efficientnet-lite2:stage3,stage4", dir).unwrap();
        assert_eq!(c.onnx, Path::new("/m/efficientnet_lite2.onnx"));
        assert_eq!(c.taps, ["stage3", "stage4"]);
        let err = BackboneConfig::resolve("resnet9000", dir).unwrap_err().to_string();
        assert!(err.contains("resnet9000"), "{err}");
    }
}
