//! Writes one valid payload per scenario (and each artifact file) into
//! `corpus/decode_payload/`, as seeds for the fuzzer: `cargo run --bin make_corpus`.

#[path = "common.rs"]
mod common;

use patchwire_codec::body::{EncodeParams, Encoder};
use patchwire_codec::rng::SplitMix64;
use patchwire_codec::Scenario;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/decode_payload");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = SplitMix64::new(11);
    let maps = common::maps(&mut rng);
    let image = image_224();
    for scenario in Scenario::ALL {
        let artifact = common::artifacts().iter().find(|a| a.scenario == scenario).cloned();
        let encoder = Encoder::new(scenario, 1, artifact, EncodeParams::default(), "fuzz").unwrap();
        let payload = encoder.encode(0, &image, Some(&maps)).unwrap();
        // Mode byte 0: fed as it is.
        let seed: Vec<u8> = std::iter::once(0).chain(payload).collect();
        std::fs::write(dir.join(format!("payload-{scenario}")), seed).unwrap();
    }
    for a in common::artifacts() {
        let seed: Vec<u8> = std::iter::once(0).chain(a.to_bytes()).collect();
        std::fs::write(dir.join(format!("artifact-{}", a.scenario)), seed).unwrap();
    }
    println!("corpus written to {}", dir.display());
}

/// A smooth 224x224 test picture.
fn image_224() -> image::RgbImage {
    image::RgbImage::from_fn(224, 224, |x, y| image::Rgb([x as u8, y as u8, ((x * y) / 224) as u8]))
}
