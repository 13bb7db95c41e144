//! Everything a server does with bytes from the network before PatchCore: the envelope, the
//! checks against a model, and every scenario's body decoder, with real artifacts. Also the
//! artifact parser, which edges run on files from the server.
//!
//! The first input byte picks a mode: even bytes feed the rest as it is; odd bytes first
//! re-seal it with a valid CRC-32, so the fuzzer also reaches the field and body decoders
//! behind the checksum. Nothing may panic.
#![no_main]

#[path = "common.rs"]
mod common;

use common::artifacts;
use libfuzzer_sys::fuzz_target;
use patchwire_codec::artifact::Artifact;
use patchwire_codec::{body, wire};

/// Replaces the last four bytes with the CRC-32 of the others.
fn reseal(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if out.len() >= 4 {
        let n = out.len() - 4;
        let crc = crc32(&out[..n]);
        out[n..].copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// CRC-32 (IEEE), bit by bit: the fuzz crate keeps to the codec's own dependencies.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let bytes = if mode % 2 == 1 { reseal(rest) } else { rest.to_vec() };

    let _ = Artifact::from_bytes(&bytes);
    let Ok((header, body_bytes)) = wire::decode(&bytes) else { return };
    let artifact = artifacts().iter().find(|a| a.scenario == header.scenario);
    let _ = body::decode(&header, body_bytes, artifact);
    let expected = wire::Expected {
        scenario: header.scenario,
        model_id: 1,
        artifact_id: artifact.map_or(0, Artifact::id),
        shapes: header.shapes.clone(),
    };
    let _ = body::decode_payload(&bytes, &expected, artifact);
});
