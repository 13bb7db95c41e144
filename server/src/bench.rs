//! The measurements behind the README's tables. Each compares alternatives inside one process
//! on the same inputs, so the ratios it prints compare like with like:
//!
//! - [`knn`]: exact search against HNSW on the same memory bank and test patches;
//! - [`inference`]: tract against onnxruntime, one thread each, on the same model and input;
//! - [`backbones`]: candidate server backbones and taps, trained and tested on real data.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::backbones::Backbone;
use crate::dataset::{self, Dataset, Sample};
use crate::eval::{self, Accuracy, TestRun};
use crate::patchcore::{CoresetSize, KnnMethod, PatchCore, PatchCoreConfig, embed};
use crate::pipeline::{Pipeline, StageTimes, timed};

/// The embedded patches and ground truth of a test set, extracted once and reused.
pub struct EmbeddedTestSet {
    /// `cells x dim` patches of each image.
    pub patches: Vec<Array2<f32>>,
    /// Whether each image is defective.
    pub labels: Vec<bool>,
    /// 224x224 ground-truth masks.
    pub masks: Vec<Vec<bool>>,
}

/// Runs every test image through `pipeline` and embeds its features.
///
/// # Errors
/// Unreadable images or masks, inference failures.
pub fn embed_test_set(pipeline: &Pipeline<'_>, samples: &[Sample]) -> Result<EmbeddedTestSet> {
    let pb = eval::bar(samples.len(), &format!("{}: embedding tests", pipeline.scenario));
    let mut set = EmbeddedTestSet { patches: Vec::new(), labels: Vec::new(), masks: Vec::new() };
    for sample in samples {
        let processed = pipeline.process(&dataset::load_image(&sample.path)?)?;
        set.patches.push(embed::embed_with(&processed.features, processed.pooling));
        set.labels.push(sample.anomalous);
        set.masks.push(dataset::load_mask(sample)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(set)
}

/// One search method on one bank.
#[derive(Clone, Debug, Serialize)]
pub struct KnnRow {
    /// The search.
    pub method: KnnMethod,
    /// Memory-bank entries.
    pub bank_rows: usize,
    /// Seconds to build the index (0 for exact search, which only computes row norms).
    pub build_s: f64,
    /// Mean milliseconds to score one image: search, re-weighting and anomaly map.
    pub score_ms: f64,
    /// Share of test patches whose returned neighbour is at the exact nearest distance.
    pub recall: f64,
    /// Accuracy with this search.
    #[serde(flatten)]
    pub accuracy: Accuracy,
}

/// Exact search against HNSW, on banks of each of `sizes`, for one category.
///
/// # Errors
/// Extraction failures or degenerate metrics.
pub fn knn(
    pipeline: &Pipeline<'_>,
    data: &Dataset,
    config: &PatchCoreConfig,
    sizes: &[CoresetSize],
) -> Result<Vec<KnnRow>> {
    let training = eval::extract_training(pipeline, &data.train)?;
    let tests = embed_test_set(pipeline, &data.test)?;
    let mut rows = Vec::new();
    for &coreset in sizes {
        let config = PatchCoreConfig { coreset, ..config.clone() };
        let bank =
            eval::fit(pipeline, &training, &config, KnnMethod::Exact).model.bank().to_owned();
        let mut exact_scores: Option<Vec<Vec<f32>>> = None;
        for method in [KnnMethod::Exact, KnnMethod::Hnsw] {
            let (model, build_ms) = timed(|| {
                PatchCore::from_bank(
                    bank.clone(),
                    training.grid,
                    config.reweight_neighbours,
                    method,
                )
            });
            let build_s = if method == KnnMethod::Exact { 0.0 } else { build_ms / 1e3 };
            let pb =
                eval::bar(tests.patches.len(), &format!("{method:?} on {} rows", bank.nrows()));
            let mut run = TestRun {
                scores: Vec::new(),
                labels: tests.labels.clone(),
                maps: Vec::new(),
                masks: tests.masks.clone(),
                times: StageTimes::default(),
                payload_bytes: 0.0,
            };
            let mut patch_scores = Vec::new();
            let mut total_ms = 0.0;
            for patches in &tests.patches {
                let (scored, ms) = timed(|| model.score(patches.view()));
                total_ms += ms;
                run.scores.push(scored.image_score);
                run.maps.push(scored.map);
                patch_scores.push(scored.patch_scores);
                pb.inc(1);
            }
            pb.finish_and_clear();

            let exact = exact_scores.get_or_insert_with(|| patch_scores.clone());
            let pairs = exact.iter().flatten().zip(patch_scores.iter().flatten());
            let (hits, total) =
                pairs.fold((0usize, 0usize), |(h, t), (e, a)| (h + usize::from(a <= e), t + 1));
            rows.push(KnnRow {
                method,
                bank_rows: bank.nrows(),
                build_s,
                score_ms: total_ms / tests.patches.len() as f64,
                recall: hits as f64 / total.max(1) as f64,
                accuracy: eval::accuracy(&run)?,
            });
        }
    }
    Ok(rows)
}

/// One backbone's inference time in tract and in onnxruntime.
#[derive(Clone, Debug, Serialize)]
pub struct InferenceRow {
    /// Backbone name.
    pub backbone: String,
    /// Outputs requested from both runtimes.
    pub taps: Vec<String>,
    /// Timed runs per runtime (after two warm-up runs).
    pub runs: usize,
    /// Mean milliseconds per run in tract.
    pub tract_ms: f64,
    /// Mean milliseconds per run in onnxruntime.
    pub onnxruntime_ms: f64,
    /// `tract_ms / onnxruntime_ms`.
    pub ratio: f64,
}

/// What `models/ort_run.py --bench` prints.
#[derive(Deserialize)]
struct OrtBench {
    mean_ms: f64,
}

/// tract against onnxruntime (both on one thread) for each backbone, on the same scaled input.
///
/// `python` runs `models/ort_run.py` (the models venv); `scratch` holds the exchanged tensors.
///
/// # Errors
/// Inference failures, or onnxruntime not runnable.
pub fn inference(
    backbones: &[&Backbone],
    image: &image::RgbImage,
    runs: usize,
    python: &Path,
    scratch: &Path,
) -> Result<Vec<InferenceRow>> {
    ensure!(runs > 0, "give at least one run");
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut rows = Vec::new();
    for backbone in backbones {
        let id = backbone.id();
        let input = patchwire_edge::preprocess::to_nchw(image, id.scaling)?;
        let model = backbone.tap_model();

        for _ in 0..2 {
            model.run(&input)?;
        }
        let mut total = 0.0;
        for _ in 0..runs {
            let (out, ms) = timed(|| model.run(&input));
            out?;
            total += ms;
        }
        let tract_ms = total / runs as f64;

        let input_path = scratch.join("input.npy");
        crate::npy::write_f32(&input_path, &[1, 3, 224, 224], &input)?;
        let script = crate::repo_dir().join("models/ort_run.py");
        let output = Command::new(python)
            .arg(&script)
            .arg(backbone.onnx_path())
            .arg(&input_path)
            .arg(scratch)
            .args(["--outputs", &id.taps.join(","), "--threads", "1", "--bench", &runs.to_string()])
            .output()
            .with_context(|| format!("running {} (run models/prepare.sh)", python.display()))?;
        if !output.status.success() {
            bail!("ort_run.py failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().context("ort_run.py printed nothing")?;
        let ort: OrtBench =
            serde_json::from_str(line).with_context(|| format!("ort_run.py printed {line:?}"))?;
        rows.push(InferenceRow {
            backbone: id.name.clone(),
            taps: id.taps.clone(),
            runs,
            tract_ms,
            onnxruntime_ms: ort.mean_ms,
            ratio: tract_ms / ort.mean_ms,
        });
    }
    Ok(rows)
}

/// One server-backbone candidate on one category (the `original` scenario).
#[derive(Clone, Debug, Serialize)]
pub struct BackboneRow {
    /// Category.
    pub category: String,
    /// The full evaluation line.
    #[serde(flatten)]
    pub report: eval::ScenarioReport,
    /// Embedding dimensions (sum of tapped channels).
    pub dim: usize,
}

/// Trains and tests `original` with each server backbone on a category.
///
/// # Errors
/// Extraction failures or degenerate metrics.
pub fn backbones(
    edge: &Backbone,
    candidates: &[Backbone],
    data: &Dataset,
    config: &PatchCoreConfig,
) -> Result<Vec<BackboneRow>> {
    let mut rows = Vec::new();
    for server in candidates {
        let pipeline = Pipeline::new(
            patchwire_edge::Scenario::Original,
            edge,
            server,
            Default::default(),
            None,
        )?;
        let trained = eval::train(&pipeline, &data.train, config, KnnMethod::Exact)?;
        let run = eval::test(&pipeline, &trained.model, &data.test)?;
        let link = eval::LinkModel::default();
        let report = eval::report_line(&pipeline, &trained, data, &run, KnnMethod::Exact, &link)?;
        rows.push(BackboneRow { category: data.name.clone(), report, dim: trained.header.dim });
    }
    Ok(rows)
}

/// One WebP encoder setting over a set of images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebpRow {
    /// Which encoder.
    pub encoder: String,
    /// Its quality setting.
    pub quality: u8,
    /// Images encoded.
    pub images: usize,
    /// Mean WebP bytes per image.
    pub mean_bytes: f64,
    /// Mean PSNR of the decoded image, dB.
    pub mean_psnr_db: f64,
    /// Mean encoding milliseconds.
    pub mean_encode_ms: f64,
}

/// Our lossy WebP encoder (vaam-image-webp) at each of `qualities` against libwebp at
/// `reference_quality` (through Pillow, `models/webp_oracle.py`), on the same 224x224 images.
///
/// # Errors
/// Unreadable images, or the oracle not runnable.
pub fn webp(
    samples: &[Sample],
    qualities: &[u8],
    reference_quality: u8,
    python: &Path,
    scratch: &Path,
) -> Result<Vec<WebpRow>> {
    ensure!(!samples.is_empty(), "no images");
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut images = Vec::with_capacity(samples.len());
    for (i, sample) in samples.iter().enumerate() {
        let img = dataset::load_image(&sample.path)?;
        let png = patchwire_codec::image::encode_png(&img)?;
        std::fs::write(scratch.join(format!("{i:05}.png")), png)?;
        images.push(img);
    }

    let output = Command::new(python)
        .arg(crate::repo_dir().join("models/webp_oracle.py"))
        .arg(scratch)
        .args(["--quality", &reference_quality.to_string()])
        .output()
        .with_context(|| format!("running {} (run models/prepare.sh)", python.display()))?;
    if !output.status.success() {
        bail!("webp_oracle.py failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().context("webp_oracle.py printed nothing")?;
    let mut rows: Vec<WebpRow> = vec![
        serde_json::from_str(line).with_context(|| format!("webp_oracle.py printed {line:?}"))?,
    ];

    for &q in qualities {
        let (mut bytes, mut psnr, mut ms) = (0.0, 0.0, 0.0);
        for img in &images {
            let (encoded, t) = timed(|| patchwire_codec::image::encode_webp_rgb(img, q));
            let encoded = encoded?;
            let back = patchwire_codec::image::decode_webp(&encoded)?;
            bytes += encoded.len() as f64;
            psnr += patchwire_codec::image::psnr(img.as_raw(), back.as_raw());
            ms += t;
        }
        let n = images.len() as f64;
        rows.push(WebpRow {
            encoder: "vaam-image-webp 0.1".into(),
            quality: q,
            images: images.len(),
            mean_bytes: bytes / n,
            mean_psnr_db: psnr / n,
            mean_encode_ms: ms / n,
        });
    }
    Ok(rows)
}

/// One stage of one scenario, natively and in wasmtime.
#[derive(Clone, Debug, Serialize)]
pub struct EdgeRow {
    /// Scenario.
    pub scenario: String,
    /// `extract` (the edge model) or `encode` (the scenario's encoder and envelope).
    pub stage: String,
    /// Median milliseconds per frame natively.
    pub native_ms: f64,
    /// Median milliseconds per frame in wasmtime, SIMD build.
    pub wasm_simd_ms: f64,
    /// Median milliseconds per frame in wasmtime, scalar build, if one was given.
    pub wasm_scalar_ms: Option<f64>,
}

/// Edge-stage times natively and in wasmtime, on the same frames, in one run.
///
/// `artifacts` holds one per scenario that needs one; `runs` frames are timed per scenario
/// after one warm-up frame.
///
/// # Errors
/// A component that does not run.
pub fn edge(
    host: &crate::gateway::ComponentHost,
    simd: &[u8],
    scalar: Option<&[u8]>,
    frames: &[image::RgbImage],
    model: &[u8],
    artifacts: &[(patchwire_codec::Scenario, Option<patchwire_codec::Artifact>)],
) -> Result<Vec<EdgeRow>> {
    use crate::gateway::EdgeSetup;
    use patchwire_edge::{EdgeConfig, EdgeStage};

    ensure!(frames.len() >= 2, "give at least two frames (one warms up)");
    let components: Vec<crate::gateway::Compiled> =
        std::iter::once(simd).chain(scalar).map(|w| host.compile(w)).collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (scenario, artifact) in artifacts {
        let artifact_bytes = artifact.as_ref().map(patchwire_codec::Artifact::to_bytes);
        let config = EdgeConfig { scenario: *scenario, ..EdgeConfig::default() };
        let stage = EdgeStage::new(&config, Some(model), artifact_bytes.as_deref())?;
        let setup = EdgeSetup {
            scenario: *scenario,
            encode: Default::default(),
            model: Some(model.to_vec()),
            artifact: artifact_bytes,
        };
        let mut edges: Vec<_> =
            components.iter().map(|c| host.instantiate(c, &setup)).collect::<Result<_>>()?;
        // Per frame (extract, encode), after the warm-up frame. The builds take turns on each
        // frame, so a slow minute on this shared VM falls on all of them alike.
        let mut native = Vec::new();
        let mut wasm = vec![Vec::new(); edges.len()];
        for (i, f) in frames.iter().enumerate() {
            let out = stage.process_rgb_bytes_as(f.as_raw(), f.width(), f.height(), i as u32)?;
            let mut row = vec![(out.times.extract_ms, out.times.encode_ms)];
            for edge in &mut edges {
                let out = edge.process(f.as_raw(), f.width(), f.height(), i as u32)?;
                row.push((out.extract_ms, out.encode_ms));
            }
            if i > 0 {
                native.push(row[0]);
                for (w, t) in wasm.iter_mut().zip(&row[1..]) {
                    w.push(*t);
                }
            }
        }
        // Medians: on a shared VM a few frames stall for reasons of their own, and a mean
        // turns those into a ratio that differs between identical computations.
        let median = |times: &[(f64, f64)], pick: fn((f64, f64)) -> f64| {
            let mut v: Vec<f64> = times.iter().map(|&t| pick(t)).collect();
            v.sort_by(f64::total_cmp);
            let m = v.len() / 2;
            if v.len().is_multiple_of(2) { (v[m - 1] + v[m]) / 2.0 } else { v[m] }
        };
        // (stage name, which of the (extract, encode) sums it reads)
        type Stage = (&'static str, fn((f64, f64)) -> f64);
        let stages: &[Stage] = if scenario.sends_image() {
            &[("encode", |t| t.1)]
        } else {
            &[("extract", |t| t.0), ("encode", |t| t.1)]
        };
        for (name, pick) in stages {
            rows.push(EdgeRow {
                scenario: scenario.to_string(),
                stage: name.to_string(),
                native_ms: median(&native, *pick),
                wasm_simd_ms: median(&wasm[0], *pick),
                wasm_scalar_ms: wasm.get(1).map(|t| median(t, *pick)),
            });
        }
    }
    Ok(rows)
}
