//! The wire format: one payload per image, from an edge to the server.
//!
//! Every scenario uses the same envelope; only the body differs (see [`crate::body`]). All
//! integers are little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `PWIR` |
//! | 4 | 1 | format version, currently 1 |
//! | 5 | 1 | scenario code ([`Scenario::code`]) |
//! | 6 | 2 | flags, `u16`; none are defined and a payload with any set is refused |
//! | 8 | 4 | edge model id, `u32` ([`model_id`] of the edge ONNX file and its taps; 0 when the payload is an image) |
//! | 12 | 4 | artifact id, `u32`: the channel subset or codebook the body was encoded with, 0 when none |
//! | 16 | 8 | seed, `u64`: the seed the artifact's channel subset was drawn with, 0 when none |
//! | 24 | 4 | sequence, `u32`: the device's frame counter |
//! | 28 | 1 | `V`, length of the edge version |
//! | 29 | V | edge version, UTF-8 (the crate or the hot-swapped component that encoded it) |
//! | 29+V | 1 | `T`, tensor count, 1 to 8 |
//! | 30+V | 6T | per tensor: channels, height, width, `u16` each (an image is `[3, 224, 224]`) |
//! | 30+V+6T | 4 | `B`, body length in bytes, `u32` |
//! | 34+V+6T | B | body |
//! | 34+V+6T+B | 4 | CRC-32 (IEEE 802.3) of every byte before it |
//!
//! The shapes are those of the tensors the body carries: after channel sampling, so a server
//! can check a payload against its model before decoding the body.

use crate::Scenario;

/// First bytes of every payload.
pub const MAGIC: [u8; 4] = *b"PWIR";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Most tensors one payload may describe.
pub const MAX_TENSORS: usize = 8;
/// Bytes of a payload around its edge version, shapes and body.
pub const OVERHEAD: usize = 29 + 1 + 4 + 4;

/// Why a payload was refused. Each variant carries the offending values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the fields read so far say there must be.
    #[error("payload truncated: {needed} bytes needed, {found} present")]
    Truncated {
        /// Bytes the payload must have.
        needed: usize,
        /// Bytes it has.
        found: usize,
    },
    /// More bytes than the header and body lengths account for.
    #[error("payload has {extra} bytes after its checksum")]
    Trailing {
        /// Extra bytes.
        extra: usize,
    },
    /// Not a Patchwire payload.
    #[error("not a Patchwire payload: magic {found:02x?}, expected {MAGIC:02x?} (\"PWIR\")")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A payload format this build does not read.
    #[error("payload format version {found} is not supported (this build reads {VERSION})")]
    Version {
        /// The version byte.
        found: u8,
    },
    /// The checksum does not match: the payload was damaged.
    #[error("payload corrupt: CRC-32 {found:08x}, header says {expected:08x}")]
    Checksum {
        /// Stored CRC.
        expected: u32,
        /// CRC of the bytes received.
        found: u32,
    },
    /// A scenario code no scenario has.
    #[error("unknown scenario code {code}")]
    UnknownScenario {
        /// The code byte.
        code: u8,
    },
    /// Flags this build does not know.
    #[error("unknown payload flags {found:#06x}")]
    Flags {
        /// The flags field.
        found: u16,
    },
    /// The edge version is not UTF-8, or too long to encode.
    #[error("edge version invalid: {0}")]
    EdgeVersion(String),
    /// No tensors, or more than [`MAX_TENSORS`].
    #[error("payload describes {count} tensors; 1 to {MAX_TENSORS} allowed")]
    TensorCount {
        /// The count.
        count: usize,
    },
    /// A tensor with a zero dimension.
    #[error("tensor {index} has an empty shape {shape:?}")]
    EmptyTensor {
        /// Which tensor.
        index: usize,
        /// Its shape.
        shape: [u16; 3],
    },
    /// The body is larger than a `u32` length can say.
    #[error("body of {0} bytes is too large for one payload")]
    BodyTooLarge(usize),
    /// The payload is for another scenario than the model that received it.
    #[error("payload is for scenario {found}, this model serves {expected}")]
    ScenarioMismatch {
        /// What the model serves.
        expected: Scenario,
        /// What the payload says.
        found: Scenario,
    },
    /// Features from another edge model than the one the server's model was trained on.
    #[error("payload from edge model {found:08x}, this model was trained on {expected:08x}")]
    ModelMismatch {
        /// The model's edge model id.
        expected: u32,
        /// The payload's.
        found: u32,
    },
    /// Encoded with another channel subset or codebook than the server's.
    #[error("payload encoded with artifact {found:08x}, this model uses {expected:08x}")]
    ArtifactMismatch {
        /// The model's artifact id.
        expected: u32,
        /// The payload's.
        found: u32,
    },
    /// Tensor shapes other than the model's.
    #[error("payload shapes {found:?}, this model expects {expected:?}")]
    ShapeMismatch {
        /// The model's shapes.
        expected: Vec<[u16; 3]>,
        /// The payload's.
        found: Vec<[u16; 3]>,
    },
}

/// Everything in a payload but its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// How the body was encoded.
    pub scenario: Scenario,
    /// The edge model's id, 0 for image payloads.
    pub model_id: u32,
    /// The artifact's id, 0 when the scenario uses none.
    pub artifact_id: u32,
    /// The seed of the artifact's channel subset, 0 when none.
    pub seed: u64,
    /// The device's frame counter.
    pub sequence: u32,
    /// What encoded it: the edge crate's or the component's version.
    pub edge_version: String,
    /// Shapes of the tensors the body carries.
    pub shapes: Vec<[u16; 3]>,
}

/// What a server's model accepts, to check a header against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The model's scenario.
    pub scenario: Scenario,
    /// The edge model id it was trained on (ignored for image scenarios).
    pub model_id: u32,
    /// Its artifact id, 0 when none.
    pub artifact_id: u32,
    /// The tensor shapes it was trained on.
    pub shapes: Vec<[u16; 3]>,
}

impl Header {
    /// Checks that a payload fits a model: same scenario, edge model, artifact and shapes.
    ///
    /// # Errors
    /// The first mismatch, as a `*Mismatch` variant.
    pub fn check(&self, expected: &Expected) -> Result<(), WireError> {
        if self.scenario != expected.scenario {
            return Err(WireError::ScenarioMismatch {
                expected: expected.scenario,
                found: self.scenario,
            });
        }
        if !self.scenario.sends_image() && self.model_id != expected.model_id {
            return Err(WireError::ModelMismatch {
                expected: expected.model_id,
                found: self.model_id,
            });
        }
        if self.artifact_id != expected.artifact_id {
            return Err(WireError::ArtifactMismatch {
                expected: expected.artifact_id,
                found: self.artifact_id,
            });
        }
        if self.shapes != expected.shapes {
            return Err(WireError::ShapeMismatch {
                expected: expected.shapes.clone(),
                found: self.shapes.clone(),
            });
        }
        Ok(())
    }

    /// Bytes of a payload with this header and no body.
    pub fn overhead(&self) -> usize {
        OVERHEAD + self.edge_version.len() + 6 * self.shapes.len()
    }
}

/// A 32-bit id of an edge model: the first four bytes of a digest of its ONNX file and taps,
/// as the caller computes them (`digest` is typically SHA-256 of the file).
pub fn model_id(digest: &[u8], taps: &[String]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(digest);
    for t in taps {
        h.update(t.as_bytes());
        h.update(&[0]);
    }
    h.finalize()
}

/// Writes a payload.
///
/// # Errors
/// An edge version over 255 bytes, a tensor count outside 1..=8, an empty tensor, or a body
/// over 4 GiB.
pub fn encode(header: &Header, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let version = header.edge_version.as_bytes();
    let version_len = u8::try_from(version.len())
        .map_err(|_| WireError::EdgeVersion(format!("{} bytes, at most 255", version.len())))?;
    check_shapes(&header.shapes)?;
    let body_len = u32::try_from(body.len()).map_err(|_| WireError::BodyTooLarge(body.len()))?;

    let mut out = Vec::with_capacity(header.overhead() + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(header.scenario.code());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&header.model_id.to_le_bytes());
    out.extend_from_slice(&header.artifact_id.to_le_bytes());
    out.extend_from_slice(&header.seed.to_le_bytes());
    out.extend_from_slice(&header.sequence.to_le_bytes());
    out.push(version_len);
    out.extend_from_slice(version);
    out.push(header.shapes.len() as u8);
    for shape in &header.shapes {
        for d in shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn check_shapes(shapes: &[[u16; 3]]) -> Result<(), WireError> {
    if shapes.is_empty() || shapes.len() > MAX_TENSORS {
        return Err(WireError::TensorCount { count: shapes.len() });
    }
    match shapes.iter().position(|s| s.contains(&0)) {
        Some(index) => Err(WireError::EmptyTensor { index, shape: shapes[index] }),
        None => Ok(()),
    }
}

/// A bounds-checked reader over the payload bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(
            WireError::Truncated { needed: self.at.saturating_add(n), found: self.bytes.len() },
        )?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Reads a payload: its header and a view of its body.
///
/// Checks, in order: magic, version, lengths, checksum, then the fields (scenario code,
/// flags, edge version, shapes). Never panics, whatever the bytes.
///
/// # Errors
/// The first problem found, as a [`WireError`].
pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), WireError> {
    let mut c = Cursor { bytes, at: 0 };
    let magic = c.take(4)?;
    if magic != MAGIC {
        return Err(WireError::Magic { found: [magic[0], magic[1], magic[2], magic[3]] });
    }
    let version = c.u8()?;
    if version != VERSION {
        return Err(WireError::Version { found: version });
    }
    let code = c.u8()?;
    let flags = c.u16()?;
    let model_id = c.u32()?;
    let artifact_id = c.u32()?;
    let seed = c.u64()?;
    let sequence = c.u32()?;
    let version_len = usize::from(c.u8()?);
    let edge_version = c.take(version_len)?;
    let count = usize::from(c.u8()?);
    let mut shapes = Vec::with_capacity(count.min(MAX_TENSORS));
    for _ in 0..count {
        shapes.push([c.u16()?, c.u16()?, c.u16()?]);
    }
    let body_len = c.u32()? as usize;
    let body = c.take(body_len)?;
    let body_end = c.at;
    let stored = c.u32()?;
    if c.at < bytes.len() {
        return Err(WireError::Trailing { extra: bytes.len() - c.at });
    }
    let actual = crc32fast::hash(&bytes[..body_end]);
    if stored != actual {
        return Err(WireError::Checksum { expected: stored, found: actual });
    }

    let scenario = Scenario::from_code(code).ok_or(WireError::UnknownScenario { code })?;
    if flags != 0 {
        return Err(WireError::Flags { found: flags });
    }
    let edge_version = std::str::from_utf8(edge_version)
        .map_err(|e| WireError::EdgeVersion(format!("not UTF-8: {e}")))?
        .to_string();
    check_shapes(&shapes)?;
    let header = Header { scenario, model_id, artifact_id, seed, sequence, edge_version, shapes };
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            scenario: Scenario::Rs,
            model_id: 0xdead_beef,
            artifact_id: 0x0102_0304,
            seed: 7,
            sequence: 42,
            edge_version: "patchwire-edge 0.1.0".into(),
            shapes: vec![[6, 56, 56], [16, 14, 14], [40, 7, 7]],
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let body = [1u8, 2, 3, 4, 5];
        let bytes = encode(&header(), &body).unwrap();
        assert_eq!(bytes.len(), header().overhead() + body.len());
        assert_eq!(&bytes[..4], b"PWIR");
        assert_eq!(bytes[5], Scenario::Rs.code());
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 0xdead_beef);
        let (h, b) = decode(&bytes).unwrap();
        assert_eq!(h, header());
        assert_eq!(b, body);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode(&header(), &[9; 40]).unwrap();
        for n in 0..bytes.len() {
            let err = decode(&bytes[..n]).unwrap_err();
            assert!(matches!(err, WireError::Truncated { .. }), "{n}: {err}");
        }
    }

    #[test]
    fn damage_is_named() {
        let good = encode(&header(), &[9; 40]).unwrap();

        let mut flipped = good.clone();
        flipped[50] ^= 1;
        assert!(matches!(decode(&flipped), Err(WireError::Checksum { .. })));

        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(decode(&magic), Err(WireError::Magic { .. })));

        let mut future = good.clone();
        future[4] = 2;
        assert_eq!(decode(&future).unwrap_err(), WireError::Version { found: 2 });

        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(decode(&longer).unwrap_err(), WireError::Trailing { extra: 1 });

        // Fields are checked after the checksum: re-seal a payload with a bad code.
        let reseal = |mut b: Vec<u8>| {
            let n = b.len() - 4;
            let crc = crc32fast::hash(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let mut code = good.clone();
        code[5] = 200;
        assert_eq!(decode(&reseal(code)).unwrap_err(), WireError::UnknownScenario { code: 200 });
        let mut flags = good.clone();
        flags[6] = 1;
        assert_eq!(decode(&reseal(flags)).unwrap_err(), WireError::Flags { found: 1 });
    }

    #[test]
    fn encode_refuses_what_decode_would() {
        let mut h = header();
        h.shapes.clear();
        assert_eq!(encode(&h, &[]).unwrap_err(), WireError::TensorCount { count: 0 });
        h.shapes = vec![[1, 0, 3]];
        assert!(matches!(encode(&h, &[]), Err(WireError::EmptyTensor { index: 0, .. })));
        h.shapes = vec![[1, 1, 1]];
        h.edge_version = "v".repeat(256);
        assert!(matches!(encode(&h, &[]), Err(WireError::EdgeVersion(_))));
    }

    #[test]
    fn mismatches_against_a_model_are_typed() {
        let h = header();
        let ok = Expected {
            scenario: Scenario::Rs,
            model_id: h.model_id,
            artifact_id: h.artifact_id,
            shapes: h.shapes.clone(),
        };
        assert_eq!(h.check(&ok), Ok(()));
        let wrong_codebook = Expected { artifact_id: 5, ..ok.clone() };
        assert!(matches!(h.check(&wrong_codebook), Err(WireError::ArtifactMismatch { .. })));
        let wrong_shape = Expected { shapes: vec![[12, 56, 56]], ..ok.clone() };
        assert!(matches!(h.check(&wrong_shape), Err(WireError::ShapeMismatch { .. })));
        let wrong_model = Expected { model_id: 1, ..ok.clone() };
        assert!(matches!(h.check(&wrong_model), Err(WireError::ModelMismatch { .. })));
        let other = Expected { scenario: Scenario::Pq, ..ok };
        assert!(matches!(h.check(&other), Err(WireError::ScenarioMismatch { .. })));
    }
}
