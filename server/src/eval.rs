//! Training and evaluation of one category under one or more scenarios.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use serde::Serialize;

use crate::backbones::Backbone;
use crate::dataset::{self, Dataset, Sample};
use crate::metrics;
use crate::patchcore::file::{ModelFile, ModelHeader};
use crate::patchcore::{self, KnnMethod, PatchCore, PatchCoreConfig, embed};
use crate::pipeline::{Pipeline, StageTimes};
use patchwire_codec::artifact::{Artifact, ArtifactParams};

/// A trained model with what it was trained on.
pub struct Trained {
    /// The model.
    pub model: PatchCore,
    /// The header saved with it.
    pub header: ModelHeader,
    /// The edge artifact it was trained with.
    pub artifact: Option<Artifact>,
    /// Wall-clock training time (feature extraction, embedding, coreset), seconds.
    pub train_s: f64,
}

/// A progress bar in the house style; hidden when stderr is not a terminal.
pub fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64).with_message(what.to_string());
    pb.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb
}

/// Makes the edge artifact (channel subset, codebook) of `scenario` from the edge model's
/// features of the training images, or `None` for a scenario that needs none.
///
/// Only training images are used: the paper's script fitted its quantizer on the test set
/// (NOTES.md, "Product quantization").
///
/// # Errors
/// Unreadable images, inference failures or bad parameters.
pub fn train_artifact(
    scenario: patchwire_edge::Scenario,
    edge: &Backbone,
    samples: &[Sample],
    params: &ArtifactParams,
) -> Result<Option<Artifact>> {
    if !scenario.needs_artifact() {
        return Ok(None);
    }
    ensure!(!samples.is_empty(), "no training images");
    let pb = bar(samples.len(), &format!("{scenario}: artifact features"));
    let mut training = Vec::with_capacity(samples.len());
    for sample in samples {
        training.push(edge.extract(&dataset::load_image(&sample.path)?)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let model_id = edge.tap_model().model_id();
    let artifact = Artifact::train(scenario, model_id, &training, params)
        .with_context(|| format!("training the {scenario} artifact"))?;
    Ok(Some(artifact))
}

/// Every training patch of a category, as PatchCore embeds it, before the coreset.
pub struct TrainingPatches {
    /// `images * grid cells x dim` patch features.
    pub patches: Array2<f32>,
    /// Patch grid `(height, width)` of one image.
    pub grid: (usize, usize),
    /// Channels of each layer, in concatenation order.
    pub layer_channels: Vec<usize>,
    /// Training images the patches came from.
    pub images: usize,
    /// Wall-clock seconds spent extracting and embedding.
    pub extract_s: f64,
}

/// Runs every training image through `pipeline` and embeds its features.
///
/// # Errors
/// Unreadable images, inference failures, or images whose features differ in shape.
pub fn extract_training(pipeline: &Pipeline<'_>, samples: &[Sample]) -> Result<TrainingPatches> {
    ensure!(!samples.is_empty(), "no training images");
    let start = Instant::now();
    let pb = bar(samples.len(), &format!("{}: extracting", pipeline.scenario));

    let mut rows: Vec<f32> = Vec::new();
    let mut shape = None;
    for sample in samples {
        let img = dataset::load_image(&sample.path)?;
        let processed = pipeline.process_training(&img)?;
        let embedded = embed::embed_with(&processed.features, processed.pooling);
        let channels: Vec<usize> = processed.features.iter().map(|f| f.channels).collect();
        let this = (embed::grid_of(&processed.features), channels, embedded.ncols());
        match &shape {
            None => shape = Some(this),
            Some(s) if *s != this => {
                bail!("{} gave features of another shape", sample.path.display())
            }
            Some(_) => {}
        }
        rows.extend(embedded.iter());
        pb.inc(1);
    }
    pb.finish_and_clear();

    let (grid, layer_channels, dim) = shape.expect("at least one sample");
    let patches = Array2::from_shape_vec((rows.len() / dim, dim), rows).expect("rows of dim");
    Ok(TrainingPatches {
        patches,
        grid,
        layer_channels,
        images: samples.len(),
        extract_s: start.elapsed().as_secs_f64(),
    })
}

/// Builds a PatchCore memory bank from extracted training patches.
pub fn fit(
    pipeline: &Pipeline<'_>,
    training: &TrainingPatches,
    config: &PatchCoreConfig,
    knn: KnnMethod,
) -> Trained {
    let start = Instant::now();
    let target = config.coreset.resolve(training.patches.nrows());
    let pb = bar(target, &format!("{}: coreset", pipeline.scenario));
    let model = PatchCore::fit(training.patches.view(), training.grid, config, knn, &|done, _| {
        pb.set_position(done as u64)
    });
    pb.finish_and_clear();

    let header = ModelHeader {
        scenario: pipeline.scenario,
        backbone: pipeline.feature_backbone().clone(),
        layer_channels: training.layer_channels.clone(),
        grid: training.grid,
        config: config.clone(),
        train_images: training.images,
        train_patches: training.patches.nrows(),
        rows: model.bank().nrows(),
        dim: training.patches.ncols(),
        edge_model_id: pipeline.expected().model_id,
        wire_shapes: pipeline.expected().shapes.clone(),
        encode: pipeline.encode_params(),
        threshold: None,
        bank: pipeline.bank_source(),
        calibration: None,
    };
    Trained {
        model,
        header,
        artifact: pipeline.artifact().cloned(),
        train_s: training.extract_s + start.elapsed().as_secs_f64(),
    }
}

/// Extracts training features through `pipeline` and builds a PatchCore memory bank.
///
/// # Errors
/// Unreadable images or inference failures.
pub fn train(
    pipeline: &Pipeline<'_>,
    samples: &[Sample],
    config: &PatchCoreConfig,
    knn: KnnMethod,
) -> Result<Trained> {
    let training = extract_training(pipeline, samples)?;
    Ok(fit(pipeline, &training, config, knn))
}

/// How a model's threshold was calibrated.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Calibration {
    /// Good training images held out of the bank and scored.
    pub held_out: usize,
    /// The quantile of their image scores taken as the threshold (1 = the highest).
    pub quantile: f64,
    /// Their image scores, lowest first.
    pub scores: Vec<f32>,
}

/// The `q`-quantile of sorted scores, by the nearest rank at or above it.
fn quantile(sorted: &[f32], q: f64) -> f32 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Trains like [`train`], holding a seeded `holdout` share (at least three) of the good
/// training images out of the bank, and sets the threshold to the `q`-quantile of their
/// image scores: with `q = 1`, the highest score a good part got.
///
/// A good image scoring above the threshold is then a false alarm at a rate of roughly
/// `1 / (held_out + 1)`; MVTec AD has no defective training images, so an F1-optimal point
/// cannot be found without touching the test set.
///
/// # Errors
/// Too few training images, or as [`train`].
pub fn train_calibrated(
    pipeline: &Pipeline<'_>,
    samples: &[Sample],
    config: &PatchCoreConfig,
    knn: KnnMethod,
    holdout: f64,
    q: f64,
) -> Result<Trained> {
    ensure!(
        (0.0..1.0).contains(&holdout) && holdout > 0.0,
        "hold-out share {holdout} must be in (0, 1)"
    );
    ensure!(q > 0.0 && q <= 1.0, "threshold quantile {q} must be in (0, 1]");
    let n_hold = ((samples.len() as f64 * holdout).round() as usize).max(3);
    ensure!(
        samples.len() > n_hold + 1,
        "{} training images are too few to hold {n_hold} out",
        samples.len()
    );
    let mut order: Vec<usize> = (0..samples.len()).collect();
    patchwire_codec::rng::SplitMix64::new(config.seed ^ 0xCA1B).shuffle(&mut order);
    let (held, fit_on) = order.split_at(n_hold);
    let pick = |ix: &[usize]| -> Vec<Sample> {
        let mut ix = ix.to_vec();
        ix.sort_unstable();
        ix.iter().map(|&i| samples[i].clone()).collect()
    };
    let mut trained = train(pipeline, &pick(fit_on), config, knn)?;
    let run = test(pipeline, &trained.model, &pick(held))?;
    let mut scores = run.scores;
    scores.sort_by(f32::total_cmp);
    trained.header.threshold = Some(quantile(&scores, q));
    trained.header.calibration = Some(Calibration { held_out: n_hold, quantile: q, scores });
    Ok(trained)
}

/// Scores and ground truth of a test set.
pub struct TestRun {
    /// Image scores, test order.
    pub scores: Vec<f32>,
    /// Whether each image is defective.
    pub labels: Vec<bool>,
    /// Anomaly maps, 224x224 each.
    pub maps: Vec<Vec<f32>>,
    /// Ground-truth masks, 224x224 each.
    pub masks: Vec<Vec<bool>>,
    /// Mean per-image stage times.
    pub times: StageTimes,
    /// Mean payload bytes per image.
    pub payload_bytes: f64,
}

/// Runs every test image through `pipeline` and scores it with `model`.
///
/// # Errors
/// Unreadable images or masks, inference failures, features that do not fit the model.
pub fn test(pipeline: &Pipeline<'_>, model: &PatchCore, samples: &[Sample]) -> Result<TestRun> {
    let pb = bar(samples.len(), &format!("{}: testing", pipeline.scenario));
    let mut run = TestRun {
        scores: Vec::new(),
        labels: Vec::new(),
        maps: Vec::new(),
        masks: Vec::new(),
        times: StageTimes::default(),
        payload_bytes: 0.0,
    };
    for sample in samples {
        let img = dataset::load_image(&sample.path)?;
        let mut processed = pipeline.process(&img)?;
        let embedded = embed::embed_with(&processed.features, processed.pooling);
        ensure!(
            embedded.ncols() == model.bank().ncols(),
            "{}: {} feature dims, the model has {}",
            sample.path.display(),
            embedded.ncols(),
            model.bank().ncols()
        );
        let (scored, t) = crate::pipeline::timed(|| model.score(embedded.view()));
        processed.times.server_score = t;

        run.times.add(&processed.times);
        run.payload_bytes += processed.payload_bytes as f64;
        run.scores.push(scored.image_score);
        run.labels.push(sample.anomalous);
        run.maps.push(scored.map);
        run.masks.push(dataset::load_mask(sample)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let n = samples.len();
    run.times = run.times.mean(n);
    run.payload_bytes /= n.max(1) as f64;
    Ok(run)
}

/// The four accuracy figures of the paper's Table 1 (plus pixel AUROC).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Accuracy {
    /// Image-level ROC AUC.
    pub image_auroc: f64,
    /// ROC AUC over every test pixel.
    pub pixel_auroc: f64,
    /// Maximum F1 over every test pixel.
    pub pixel_f1: f64,
    /// AUPRO up to FPR 0.3, normalized.
    pub aupro: f64,
}

/// Computes the metrics of a test run.
///
/// # Errors
/// Degenerate test sets (one class only) or NaN scores.
pub fn accuracy(run: &TestRun) -> Result<Accuracy> {
    let image_auroc = metrics::auroc(&run.scores, &run.labels)?;
    let pixels: Vec<f32> = run.maps.iter().flatten().copied().collect();
    let truth: Vec<bool> = run.masks.iter().flatten().copied().collect();
    let pixel_auroc = metrics::auroc(&pixels, &truth)?;
    let pixel_f1 = metrics::f1_max(&pixels, &truth)?;
    let maps: Vec<&[f32]> = run.maps.iter().map(Vec::as_slice).collect();
    let masks: Vec<&[bool]> = run.masks.iter().map(Vec::as_slice).collect();
    let aupro = metrics::aupro(&maps, &masks, 224, 224, 0.3)?;
    Ok(Accuracy { image_auroc, pixel_auroc, pixel_f1, aupro })
}

/// One scenario's line of the evaluation JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// Accuracy figures, flattened into this object.
    #[serde(flatten)]
    pub accuracy: Accuracy,
    /// Mean payload bytes per image.
    pub payload_bytes: f64,
    /// Training images.
    pub n_train: usize,
    /// Test images.
    pub n_test: usize,
    /// Training wall-clock seconds (0 when the model was loaded).
    pub train_s: f64,
    /// Mean per-image stage times, milliseconds.
    pub times_ms: StageTimes,
    /// Backbone whose features fill the bank.
    pub backbone: String,
    /// Taps of that backbone.
    pub taps: Vec<String>,
    /// Memory-bank rows and bytes.
    pub bank_rows: usize,
    /// Memory-bank size in bytes (f32).
    pub bank_bytes: usize,
    /// Nearest-neighbour search used.
    pub knn: KnnMethod,
    /// What the memory bank was built from.
    pub bank: crate::pipeline::BankSource,
    /// Mean milliseconds to send one payload over the link.
    pub tx_ms: f64,
    /// Mean end-to-end milliseconds: scaled edge time, transmission and server time.
    pub total_ms: f64,
}

/// The evaluation JSON of one category.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Category name.
    pub category: String,
    /// Where it ran.
    pub machine: String,
    /// The latency model behind `tx_ms` and `total_ms`.
    #[serde(flatten)]
    pub link: LinkModel,
    /// One entry per scenario.
    pub scenarios: Vec<ScenarioReport>,
}

/// The paper's latency model (section 4.1): a constant-rate uplink with no protocol
/// overhead, and edge time estimated as the time measured here times a clock-ratio factor
/// (3 for a 2.7 GHz server core against a 0.9 GHz Raspberry-Pi-class core).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LinkModel {
    /// Uplink rate in kB/s (1 kB = 1000 bytes).
    #[serde(rename = "link_kBps")]
    pub link_kbps: f64,
    /// Factor applied to edge times.
    pub edge_scale: f64,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel { link_kbps: 100.0, edge_scale: 3.0 }
    }
}

impl LinkModel {
    /// Milliseconds to send `bytes`.
    pub fn tx_ms(&self, bytes: f64) -> f64 {
        bytes / self.link_kbps
    }

    /// Scaled edge milliseconds.
    pub fn edge_ms(&self, t: &StageTimes) -> f64 {
        self.edge_scale * (t.edge_extract + t.edge_encode)
    }

    /// End-to-end milliseconds for one image.
    pub fn total_ms(&self, t: &StageTimes, bytes: f64) -> f64 {
        self.edge_ms(t) + self.tx_ms(bytes) + t.server_decode + t.server_extract + t.server_score
    }
}

/// Builds a scenario report.
pub fn report_line(
    pipeline: &Pipeline<'_>,
    trained: &Trained,
    data: &Dataset,
    run: &TestRun,
    knn: KnnMethod,
    link: &LinkModel,
) -> Result<ScenarioReport> {
    Ok(ScenarioReport {
        bank: trained.header.bank,
        tx_ms: link.tx_ms(run.payload_bytes),
        total_ms: link.total_ms(&run.times, run.payload_bytes),
        name: pipeline.scenario.to_string(),
        accuracy: accuracy(run)?,
        payload_bytes: run.payload_bytes,
        n_train: trained.header.train_images,
        n_test: data.test.len(),
        train_s: trained.train_s,
        times_ms: run.times,
        backbone: trained.header.backbone.name.clone(),
        taps: trained.header.backbone.taps.clone(),
        bank_rows: trained.model.bank().nrows(),
        bank_bytes: trained.model.bank().len() * 4,
        knn,
    })
}

impl Trained {
    /// The model file's contents.
    pub fn to_file(&self) -> ModelFile {
        ModelFile {
            header: self.header.clone(),
            bank: self.model.bank().to_owned(),
            artifact: self.artifact.clone(),
        }
    }
}

/// Reads a saved model file.
///
/// # Errors
/// A missing, damaged or foreign file.
pub fn read_model(path: &Path) -> Result<ModelFile> {
    patchcore::file::load(path).with_context(|| format!("loading model {}", path.display()))
}

/// Wraps a model file for scoring, checking that it fits `pipeline` (built with the file's
/// artifact and encoder settings).
///
/// # Errors
/// A model made for another scenario, backbone or payload shape.
pub fn load(
    path: &Path,
    file: ModelFile,
    pipeline: &Pipeline<'_>,
    knn: KnnMethod,
) -> Result<Trained> {
    let header = file.header;
    ensure!(
        header.scenario == pipeline.scenario,
        "{} was trained for scenario {}, not {}",
        path.display(),
        header.scenario,
        pipeline.scenario
    );
    ensure!(
        &header.backbone == pipeline.feature_backbone(),
        "{} was trained with backbone {} (taps {:?}, sha256 {}), this run uses {} (taps {:?}, sha256 {})",
        path.display(),
        header.backbone.name,
        header.backbone.taps,
        header.backbone.onnx_sha256,
        pipeline.feature_backbone().name,
        pipeline.feature_backbone().taps,
        pipeline.feature_backbone().onnx_sha256
    );
    ensure!(
        header.wire_shapes == pipeline.expected().shapes,
        "{} expects payloads of shapes {:?}, this edge sends {:?}",
        path.display(),
        header.wire_shapes,
        pipeline.expected().shapes
    );
    let model =
        PatchCore::from_bank(file.bank, header.grid, header.config.reweight_neighbours, knn);
    Ok(Trained { model, header, artifact: file.artifact, train_s: 0.0 })
}

/// A one-line description of this machine for reports.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{cpu}, {cores} cores, {} threads for PatchCore, {}",
        rayon::current_num_threads(),
        std::env::consts::OS
    )
}
