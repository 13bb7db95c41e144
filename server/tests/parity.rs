//! The edge stage as three builds, fed the same real images: native, the wasmtime component
//! (`target/wasm32-wasip2/release/patchwire_edge.wasm`) and the browser module (`www/pkg`, in
//! Debian's headless Chromium through `tests/browser/parity.mjs`). All three are built by
//! `scripts/setup.sh` (`scripts/build-wasm.sh`).
//!
//! For every scenario they must agree: same headers; identical bytes where the encoder is
//! integer arithmetic on identical inputs (`original`, and `webp`, whose payloads must at least
//! decode to the same pixels); and decoded features within float tolerance where the edge
//! model runs: tract's wasm SIMD kernels round differently from its native ones (measured:
//! about 2e-6 of the tensor's scale). The quantizing encoders (`pq`, `rs-pq`, `rs-webp`,
//! `klt-rc`) can turn such a difference into a different level or code, which a lossy WebP then
//! amplifies; for them, what one host decodes must differ from what another decodes by no more
//! than the codec's own error on that frame.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;
use patchwire_codec::artifact::{Artifact, ArtifactParams};
use patchwire_codec::body::{self, Decoded, EncodeParams};
use patchwire_codec::{FeatureMap, Scenario, wire};
use patchwire_edge::{EdgeConfig, EdgeStage};
use patchwire_server::backbones::{self, Backbone, BackboneConfig};
use patchwire_server::dataset::{self, FolderOptions};
use patchwire_server::gateway::{ComponentHost, EdgeSetup};
use patchwire_server::{eval, models_dir, repo_dir, shared_dir};

fn built(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh (scripts/build-wasm.sh)",
        path.display()
    );
    path
}

struct Case {
    scenario: Scenario,
    artifact: Option<Artifact>,
}

/// Full-size bottle test images of three kinds, and an artifact per scenario made from a
/// dozen training images.
fn inputs() -> (Vec<RgbImage>, Vec<Case>, Vec<u8>) {
    let data =
        dataset::open(&shared_dir().join("datasets/mvtec_ad"), "bottle", &FolderOptions::default())
            .unwrap();
    let pick = ["good", "broken_large", "contamination"];
    let frames: Vec<RgbImage> = pick
        .iter()
        .map(|kind| {
            let s = data.test.iter().find(|s| &s.kind == kind).unwrap();
            image::open(&s.path).unwrap().to_rgb8()
        })
        .collect();
    let edge =
        Backbone::load(&BackboneConfig::resolve(backbones::EDGE_BACKBONE, &models_dir()).unwrap())
            .unwrap();
    let params = ArtifactParams::default();
    let cases = Scenario::ALL
        .into_iter()
        .map(|scenario| Case {
            scenario,
            artifact: eval::train_artifact(scenario, &edge, &data.train[..12], &params).unwrap(),
        })
        .collect();
    let model = std::fs::read(models_dir().join("mobilenet_v2.onnx")).unwrap();
    (frames, cases, model)
}

fn native(frames: &[RgbImage], case: &Case, model: &[u8]) -> Vec<Vec<u8>> {
    let config = EdgeConfig { scenario: case.scenario, ..EdgeConfig::default() };
    let artifact = case.artifact.as_ref().map(Artifact::to_bytes);
    let stage = EdgeStage::new(&config, Some(model), artifact.as_deref()).unwrap();
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            stage.process_rgb_bytes_as(f.as_raw(), f.width(), f.height(), i as u32).unwrap().payload
        })
        .collect()
}

fn component(
    host: &ComponentHost,
    wasm: &[u8],
    frames: &[RgbImage],
    case: &Case,
    model: &[u8],
) -> Vec<Vec<u8>> {
    let compiled = host.compile(wasm).unwrap();
    let setup = EdgeSetup {
        scenario: case.scenario,
        encode: EncodeParams::default(),
        model: Some(model.to_vec()),
        artifact: case.artifact.as_ref().map(Artifact::to_bytes),
    };
    let mut edge = host.instantiate(&compiled, &setup).unwrap();
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| edge.process(f.as_raw(), f.width(), f.height(), i as u32).unwrap().payload)
        .collect()
}

fn browser(
    work: &Path,
    frames: &[RgbImage],
    cases: &[Case],
    model: &[u8],
) -> BTreeMap<(Scenario, usize), Vec<u8>> {
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(work.join("mobilenet_v2.onnx"), model).unwrap();
    let mut frame_list = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(work.join(format!("f{i}.rgb")), f.as_raw()).unwrap();
        frame_list.push(serde_json::json!({"file": format!("f{i}.rgb"), "width": f.width(), "height": f.height()}));
    }
    let mut scenarios = Vec::new();
    for c in cases {
        let artifact = c.artifact.as_ref().map(|a| {
            let name = format!("{}.pwart", c.scenario);
            std::fs::write(work.join(&name), a.to_bytes()).unwrap();
            name
        });
        scenarios.push(serde_json::json!({"name": c.scenario.name(), "artifact": artifact, "encode": EncodeParams::default()}));
    }
    let job = serde_json::json!({"model": "mobilenet_v2.onnx", "frames": frame_list, "scenarios": scenarios});
    std::fs::write(work.join("job.json"), job.to_string()).unwrap();

    let script = built(repo_dir().join("tests/browser/parity.mjs"));
    built(repo_dir().join("tests/browser/node_modules/playwright-core"));
    built(repo_dir().join("www/pkg/patchwire_edge.js"));
    let status = Command::new("node")
        .arg(&script)
        .arg("--www")
        .arg(repo_dir().join("www"))
        .arg("--work")
        .arg(work)
        .status()
        .expect("node runs (scripts/setup.sh --browser installs the browser test tools)");
    assert!(status.success(), "the browser run failed");

    let mut out = BTreeMap::new();
    for c in cases {
        for i in 0..frames.len() {
            let path = work.join(format!("browser/{}-{i}.pwir", c.scenario));
            out.insert((c.scenario, i), std::fs::read(&path).unwrap());
        }
    }
    out
}

fn decode(case: &Case, payload: &[u8]) -> (wire::Header, Decoded) {
    let (header, body_bytes) = wire::decode(payload).unwrap();
    let decoded = body::decode(&header, body_bytes, case.artifact.as_ref()).unwrap();
    (header, decoded)
}

/// Largest difference between two sets of maps, relative to the largest magnitude in `a`.
fn relative_diff(a: &[FeatureMap], b: &[FeatureMap]) -> f32 {
    let scale = a.iter().flat_map(|m| &m.data).fold(0f32, |s, v| s.max(v.abs())).max(1e-12);
    let worst = a
        .iter()
        .zip(b)
        .flat_map(|(x, y)| x.data.iter().zip(&y.data))
        .fold(0f32, |w, (p, q)| w.max((p - q).abs()));
    worst / scale
}

/// What the native encoder was given, as the server decodes it: the taps, after the channel
/// subset, pooled for `klt-rc`.
fn reference(case: &Case, frame: &RgbImage, model: &[u8]) -> Vec<FeatureMap> {
    let config = EdgeConfig { scenario: Scenario::Features, ..EdgeConfig::default() };
    let stage = EdgeStage::new(&config, Some(model), None).unwrap();
    let img = patchwire_edge::preprocess::resize_224(frame).unwrap();
    let maps = stage.extract(&img).unwrap().unwrap();
    let maps = match case.artifact.as_ref().and_then(|a| a.subset.as_ref()) {
        Some(subset) => subset.apply(&maps).unwrap(),
        None => maps,
    };
    if case.scenario == Scenario::KltRc {
        maps.iter().map(FeatureMap::avg_pool_3x3).collect()
    } else {
        maps
    }
}

/// Checks `other` against the native payload; returns whether the bytes were identical.
/// `truth` is what the native encoder was given (see [`reference`]).
fn agree(case: &Case, native: &[u8], other: &[u8], truth: &[FeatureMap], host: &str) -> bool {
    let (h1, d1) = decode(case, native);
    let (h2, d2) = decode(case, other);
    assert_eq!(h1, h2, "{}: {host} header differs from native", case.scenario);
    let identical = native == other;
    match (case.scenario, d1, d2) {
        (Scenario::Original, _, _) => assert!(identical, "original: {host} PNG bytes differ"),
        (Scenario::Webp, Decoded::Image(a), Decoded::Image(b)) => {
            assert_eq!(a, b, "webp: {host} payload decodes to other pixels");
        }
        (s, Decoded::Features(a), Decoded::Features(b))
        | (s, Decoded::PooledFeatures(a), Decoded::PooledFeatures(b)) => {
            let d = relative_diff(&a, &b);
            let bound = match s {
                Scenario::Features | Scenario::Rs => 1e-4,
                _ => relative_diff(truth, &a),
            };
            eprintln!(
                "{s}: {host} differs by {d:.2e} of the scale (bound {bound:.2e}), identical bytes {identical}"
            );
            assert!(
                d <= bound,
                "{s}: {host} features differ by {d:.2e} of their scale, bound {bound:.2e}"
            );
        }
        (s, _, _) => panic!("{s}: {host} decoded to another kind of body"),
    }
    identical
}

#[test]
fn parity_of_native_wasmtime_and_browser_builds_on_real_images() {
    let wasm =
        std::fs::read(built(repo_dir().join("target/wasm32-wasip2/release/patchwire_edge.wasm")))
            .unwrap();
    let (frames, cases, model) = inputs();
    let host = ComponentHost::new(Some(repo_dir().join("target/component-cache"))).unwrap();
    let work = std::env::temp_dir().join(format!("pw-parity-{}", std::process::id()));
    let from_browser = browser(&work, &frames, &cases, &model);

    for case in &cases {
        let ours = native(&frames, case, &model);
        let theirs = component(&host, &wasm, &frames, case, &model);
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            let truth = if case.scenario.sends_image() {
                Vec::new()
            } else {
                reference(case, &frames[i], &model)
            };
            let same_wasm = agree(case, a, b, &truth, "wasmtime");
            let same_web = agree(case, a, &from_browser[&(case.scenario, i)], &truth, "browser");
            eprintln!(
                "{} frame {i}: identical bytes wasmtime {same_wasm}, browser {same_web}",
                case.scenario
            );
        }
    }
    std::fs::remove_dir_all(work).ok();
}
