//! The trained-model file: a versioned, checksummed container for a PatchCore memory bank.
//!
//! Byte layout (all integers little-endian):
//!
//! | offset    | size | field                                                      |
//! |-----------|------|------------------------------------------------------------|
//! | 0         | 8    | magic `b"PWCORE\r\n"` (the CR LF catches text-mode damage) |
//! | 8         | 4    | format version, `u32` (currently 1)                        |
//! | 12        | 4    | header length `H` in bytes, `u32`                          |
//! | 16        | 8    | bank length `B` in bytes, `u64` (= rows * dim * 4)         |
//! | 24        | 8    | artifact length `A` in bytes, `u64` (0 when none)          |
//! | 32        | H    | header: UTF-8 JSON, [`ModelHeader`]                        |
//! | 32+H      | B    | bank: `f32` rows of `dim` values                           |
//! | 32+H+B    | A    | the edge artifact file ([`patchwire_codec::artifact`])     |
//! | 32+H+B+A  | 4    | CRC-32 (IEEE) of every byte before it                      |
//!
//! The artifact travels inside the model so that one file is everything a server needs to
//! serve a scenario, and to hand edges the channel subset or codebook they encode with.

use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"PWCORE\r\n";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;
const FIXED: usize = 32;

/// What a model file says about how its bank was made. Everything needed to score new images
/// the same way, and to refuse inputs that were not made the same way.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelHeader {
    /// Transmission scenario the bank was trained for.
    pub scenario: patchwire_edge::Scenario,
    /// The backbone whose features fill the bank.
    pub backbone: crate::backbones::BackboneId,
    /// Channels of each tapped layer, in concatenation order.
    pub layer_channels: Vec<usize>,
    /// Patch grid `(height, width)` of one image.
    pub grid: (usize, usize),
    /// Coreset and scoring settings.
    pub config: super::PatchCoreConfig,
    /// Training images the bank was built from.
    pub train_images: usize,
    /// Patches before the coreset.
    pub train_patches: usize,
    /// Bank rows.
    pub rows: usize,
    /// Values per row.
    pub dim: usize,
    /// The edge model's id payloads must carry (feature scenarios).
    pub edge_model_id: u32,
    /// The shapes payloads carry.
    pub wire_shapes: Vec<[u16; 3]>,
    /// The encoder settings the bank was built with.
    pub encode: patchwire_codec::body::EncodeParams,
    /// Image score above which an image is called defective, if calibrated.
    pub threshold: Option<f32>,
    /// What the bank was built from.
    pub bank: crate::pipeline::BankSource,
    /// How the threshold was calibrated, if it was.
    #[serde(default)]
    pub calibration: Option<crate::eval::Calibration>,
}

/// Why a model file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelFileError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The file does not start with the model magic: not a Patchwire model.
    #[error("not a Patchwire model file (first bytes {found:02x?})")]
    Foreign { found: Vec<u8> },
    /// A model file of a version this build cannot read.
    #[error("model file version {found} is not supported (this build reads version {VERSION})")]
    Version { found: u32 },
    /// The file is shorter than its own length fields say.
    #[error("model file truncated: {expected} bytes expected, {found} present")]
    Truncated { expected: u64, found: u64 },
    /// The checksum does not match: the file was damaged.
    #[error("model file corrupt: CRC-32 {found:08x}, expected {expected:08x}")]
    Checksum { expected: u32, found: u32 },
    /// The header is not valid, or disagrees with the bank's size.
    #[error("model header invalid: {0}")]
    Header(String),
    /// The embedded edge artifact is invalid.
    #[error("model's edge artifact: {0}")]
    Artifact(#[from] patchwire_codec::ArtifactError),
}

/// Everything a model file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// How the bank was made.
    pub header: ModelHeader,
    /// The memory bank.
    pub bank: Array2<f32>,
    /// The edge artifact, for scenarios that use one.
    pub artifact: Option<patchwire_codec::Artifact>,
}

/// Serializes a model into file bytes.
pub fn to_bytes(model: &ModelFile) -> Vec<u8> {
    let json = serde_json::to_vec(&model.header).expect("a model header always serializes");
    let artifact =
        model.artifact.as_ref().map(patchwire_codec::Artifact::to_bytes).unwrap_or_default();
    let bank = &model.bank;
    let mut out = Vec::with_capacity(FIXED + json.len() + bank.len() * 4 + artifact.len() + 4);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&((bank.len() * 4) as u64).to_le_bytes());
    out.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for v in bank.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&artifact);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Parses model-file bytes, checking magic, version, lengths, checksum and shapes.
///
/// # Errors
/// Every way the bytes can be wrong has its own [`ModelFileError`] variant.
pub fn from_bytes(bytes: &[u8]) -> Result<ModelFile, ModelFileError> {
    let found = bytes.len() as u64;
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(ModelFileError::Foreign { found: bytes.iter().take(8).copied().collect() });
    }
    if bytes.len() < FIXED {
        return Err(ModelFileError::Truncated { expected: FIXED as u64 + 4, found });
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    if version != VERSION {
        return Err(ModelFileError::Version { found: version });
    }
    let header_len = u64::from(u32_at(12));
    let bank_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let artifact_len = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
    let expected = (FIXED as u64)
        .checked_add(header_len)
        .and_then(|n| n.checked_add(bank_len))
        .and_then(|n| n.checked_add(artifact_len))
        .and_then(|n| n.checked_add(4))
        .ok_or_else(|| {
            ModelFileError::Header(format!("lengths {bank_len} and {artifact_len} overflow"))
        })?;
    if found < expected {
        return Err(ModelFileError::Truncated { expected, found });
    }
    if found > expected {
        return Err(ModelFileError::Header(format!(
            "{} trailing bytes after the checksum",
            found - expected
        )));
    }

    let body = &bytes[..bytes.len() - 4];
    let stored = u32_at(bytes.len() - 4);
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(ModelFileError::Checksum { expected: stored, found: actual });
    }

    let header_end = FIXED + header_len as usize;
    let header: ModelHeader = serde_json::from_slice(&bytes[FIXED..header_end])
        .map_err(|e| ModelFileError::Header(e.to_string()))?;
    if header.rows.checked_mul(header.dim).and_then(|n| n.checked_mul(4)) != Some(bank_len as usize)
    {
        return Err(ModelFileError::Header(format!(
            "{} rows x {} dims do not fill a {bank_len}-byte bank",
            header.rows, header.dim
        )));
    }
    let bank_end = header_end + bank_len as usize;
    let values: Vec<f32> = body[header_end..bank_end]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let bank = Array2::from_shape_vec((header.rows, header.dim), values)
        .map_err(|e| ModelFileError::Header(e.to_string()))?;
    let artifact = match &body[bank_end..] {
        [] => None,
        a => Some(patchwire_codec::Artifact::from_bytes(a)?),
    };
    if header.scenario.needs_artifact() != artifact.is_some() {
        return Err(ModelFileError::Header(format!(
            "scenario {} {} an edge artifact",
            header.scenario,
            if artifact.is_some() { "has no use for" } else { "needs" }
        )));
    }
    Ok(ModelFile { header, bank, artifact })
}

/// Writes a model file atomically (a temporary file renamed into place), so a crash never
/// leaves a half-written model where a good one was.
///
/// # Errors
/// [`ModelFileError::Io`] when the file cannot be written.
pub fn save(path: &Path, model: &ModelFile) -> Result<(), ModelFileError> {
    let io = |source| ModelFileError::Io { path: path.display().to_string(), source };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, to_bytes(model)).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads and checks a model file.
///
/// # Errors
/// [`ModelFileError::Io`] when it cannot be read, otherwise as [`from_bytes`].
pub fn load(path: &Path) -> Result<ModelFile, ModelFileError> {
    let bytes = std::fs::read(path)
        .map_err(|source| ModelFileError::Io { path: path.display().to_string(), source })?;
    from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::BackboneId;
    use patchwire_edge::{InputScaling, Scenario};

    fn sample() -> ModelFile {
        let bank = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32 * 0.5);
        let header = ModelHeader {
            scenario: Scenario::Features,
            backbone: BackboneId {
                name: "mobilenet_v2".into(),
                onnx_sha256: "ab".repeat(32),
                taps: vec!["features.3".into()],
                scaling: InputScaling::TF,
            },
            layer_channels: vec![4],
            grid: (56, 56),
            config: Default::default(),
            train_images: 1,
            train_patches: 3136,
            rows: 3,
            dim: 4,
            edge_model_id: 1,
            wire_shapes: vec![[4, 56, 56]],
            encode: Default::default(),
            threshold: Some(1.5),
            bank: crate::pipeline::BankSource::Decoded,
            calibration: None,
        };
        ModelFile { header, bank, artifact: None }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(from_bytes(&to_bytes(&m)).unwrap(), m);
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let good = to_bytes(&sample());

        let truncated = &good[..good.len() - 10];
        assert!(matches!(from_bytes(truncated), Err(ModelFileError::Truncated { .. })));
        assert!(matches!(from_bytes(&good[..5]), Err(ModelFileError::Foreign { .. })));

        let mut flipped = good.clone();
        let last_value = flipped.len() - 6;
        flipped[last_value] ^= 0x40;
        assert!(matches!(from_bytes(&flipped), Err(ModelFileError::Checksum { .. })));

        assert!(matches!(
            from_bytes(b"\x89PNG\r\n\x1a\n rest of a png"),
            Err(ModelFileError::Foreign { .. })
        ));

        let mut future = good.clone();
        future[8] = 9;
        assert!(matches!(from_bytes(&future), Err(ModelFileError::Version { found: 9 })));

        let mut longer = good;
        longer.push(0);
        assert!(matches!(from_bytes(&longer), Err(ModelFileError::Header(_))));
    }
}
