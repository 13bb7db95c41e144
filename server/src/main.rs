//! `patchwire`: train, evaluate and benchmark the Patchwire pipeline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use patchwire_codec::artifact::ArtifactParams;
use patchwire_codec::body::EncodeParams;
use patchwire_edge::Scenario;
use patchwire_server::backbones::{self, Backbone, BackboneConfig};
use patchwire_server::dataset::{self, FolderOptions};
use patchwire_server::eval::{self, Report};
use patchwire_server::patchcore::{CoresetSize, KnnMethod, PatchCoreConfig, file};
use patchwire_server::pipeline::{BankSource, Pipeline};
use patchwire_server::{bench, report};

#[derive(Parser)]
#[command(
    name = "patchwire",
    version,
    about = "Visual anomaly detection split between edge and server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a PatchCore model for one category and scenario and save it.
    Train {
        #[command(flatten)]
        data: DataArgs,
        /// Transmission scenario.
        #[arg(long)]
        scenario: Scenario,
        /// Where to write the model file.
        #[arg(long)]
        out: PathBuf,
        /// Share of good training images held out to calibrate the threshold.
        #[arg(long, default_value_t = 0.1)]
        holdout: f64,
        /// Quantile of the held-out images' scores taken as the threshold (1 = the highest).
        #[arg(long, default_value_t = 1.0)]
        threshold_quantile: f64,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Train (or load) and evaluate; writes the JSON report.
    Eval {
        #[command(flatten)]
        data: DataArgs,
        /// Scenarios, comma-separated, or `all`.
        #[arg(long, value_delimiter = ',', default_value = "original,features")]
        scenario: Vec<String>,
        /// Where to write the JSON report.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Folder for the tables and plots: `eval-CATEGORY.md` (summary), `tables-CATS.md` (the
        /// paper's Tables 1-3), `figure3-CATS.svg` and `figure4-CATS.svg`, where CATS is
        /// the categories joined by `-and-`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Uplink rate for the latency model, kB/s.
        #[arg(long = "link-kBps", default_value_t = 100.0)]
        link_kbps: f64,
        /// Factor on edge times for the latency model (server core vs edge core clock).
        #[arg(long, default_value_t = 3.0)]
        edge_scale: f64,
        /// Load this model instead of training (one category and scenario only).
        #[arg(long)]
        load: Option<PathBuf>,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Measurements behind the README's tables; each writes NAME.json and NAME.md to --out.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// The inspection service: HTTP API, camera page, fleet view, SQLite store.
    Serve(ServeArgs),
    /// The gateway: runs the edge stage as a WebAssembly component in wasmtime.
    Gateway {
        #[command(subcommand)]
        which: GatewayCommand,
    },
    /// Write the edge backbone's taps, masks and labels of a category as .npy files, for
    /// experiments outside Rust (float32, C order; one file per split and layer).
    DumpFeatures {
        #[command(flatten)]
        data: DataArgs,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Exact nearest-neighbour search against HNSW on the same banks and test patches.
    Knn {
        #[command(flatten)]
        data: DataArgs,
        /// Scenario whose features fill the bank.
        #[arg(long, default_value = "features")]
        scenario: Scenario,
        /// Bank sizes to compare, comma-separated counts or ratios.
        #[arg(long = "sizes", value_delimiter = ',', default_value = "10000")]
        sizes: Vec<CoresetSize>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// tract against onnxruntime, one thread each, on the edge and server backbones.
    Inference {
        /// Backbones to time (presets with optional taps, or JSON configs).
        #[arg(long = "backbone", default_values = ["mobilenet-v2", "efficientnet-lite0", "efficientnet-lite2"])]
        backbones: Vec<String>,
        /// Image fed to every backbone (resized to 224x224).
        #[arg(long)]
        image: PathBuf,
        /// Timed runs per runtime.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Folder of prepared ONNX models.
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// The edge stage natively and in wasmtime (SIMD, and scalar when given), per scenario.
    Edge {
        #[command(flatten)]
        data: DataArgs,
        /// The SIMD component.
        #[arg(long, default_value = "target/wasm32-wasip2/release/patchwire_edge.wasm")]
        component: PathBuf,
        /// A component built without SIMD (scripts/bench-edge.sh builds one).
        #[arg(long)]
        scalar_component: Option<PathBuf>,
        /// Frames timed per scenario (plus one warm-up).
        #[arg(long, default_value_t = 20)]
        frames: usize,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Our lossy WebP encoder at several qualities against libwebp, on a category's images.
    Webp {
        #[command(flatten)]
        data: DataArgs,
        /// Qualities of our encoder to try.
        #[arg(long, value_delimiter = ',', default_value = "70,75,80,85,88,90,92,95")]
        qualities: Vec<u8>,
        /// libwebp's quality to compare with.
        #[arg(long, default_value_t = 80)]
        reference: u8,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Server-backbone candidates for the `original` scenario on one category.
    Backbones {
        #[command(flatten)]
        data: DataArgs,
        /// A candidate (preset:taps or JSON config); repeat the flag for each.
        #[arg(long = "candidate", required = true)]
        candidates: Vec<String>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
}

// Parsed once per process: the size of its largest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum GatewayCommand {
    /// Feed frames to a component at a rate and collect its payloads; replace the component
    /// while running when the watched file changes.
    Run {
        /// The edge component (`wasm32-wasip2` build of edge-wasm).
        #[arg(long)]
        component: PathBuf,
        /// Watch the component file and take over new versions between frames.
        #[arg(long)]
        watch: bool,
        /// A folder of images, or a numbered file sequence such as `cam/frame-{}.png`.
        #[arg(long)]
        frames: PathBuf,
        /// Frames per second (0: as fast as possible).
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Stop after this many frames (default: all).
        #[arg(long)]
        count: Option<usize>,
        /// A trained model file: its scenario, encoder settings and artifact set up the edge.
        #[arg(long)]
        model: Option<PathBuf>,
        /// The scenario, when no model file is given (image and raw-feature scenarios only).
        #[arg(long, default_value = "features")]
        scenario: Scenario,
        /// The edge model's ONNX file (default: the prepared MobileNetV2).
        #[arg(long)]
        edge_model: Option<PathBuf>,
        /// Write payloads here as NNNNNNNN.pwir.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Append one JSON line per event (frame, swap, refusal) to this file.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Folder for compiled native code of components.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Send every payload to this Patchwire server (`http://HOST:PORT`).
        #[arg(long, requires = "token")]
        server: Option<String>,
        /// The device token the server issued (`patchwire serve --device NAME`).
        #[arg(long, env = "PATCHWIRE_DEVICE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Accept new components by `PUT /v1/component` on this address.
        #[arg(long)]
        push_listen: Option<std::net::SocketAddr>,
        /// Bearer token the push endpoint requires (default: a random one, printed).
        #[arg(long, env = "PATCHWIRE_PUSH_TOKEN", hide_env_values = true)]
        push_token: Option<String>,
    },
    /// Stamp a version into a built component's version slot, in place of the old one.
    Stamp {
        /// The version string (at most 36 bytes).
        #[arg(long)]
        version: String,
        /// The component.
        input: PathBuf,
        /// Where to write the stamped copy.
        output: PathBuf,
    },
}

#[derive(Args, Clone)]
struct DataArgs {
    /// Folder holding the categories.
    #[arg(long)]
    data: PathBuf,
    /// Categories, comma-separated (folders under --data).
    #[arg(long, value_delimiter = ',')]
    category: Vec<String>,
    /// Folder layout only: the class folder of good images.
    #[arg(long, default_value = "good")]
    good: String,
    /// Folder layout only: share of good images used for training.
    #[arg(long, default_value_t = 0.5)]
    train_ratio: f64,
    /// Cap on training images, for quick runs.
    #[arg(long)]
    max_train: Option<usize>,
    /// Seed of the folder-layout split and of PatchCore's random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Server backbone for image scenarios: a prepared one (efficientnet-lite0,
    /// efficientnet-lite2, optionally `:tap,tap`) or a JSON config file.
    #[arg(long, default_value = backbones::DEFAULT_SERVER_BACKBONE)]
    server_backbone: String,
    /// Coreset size: a count (10000) or a ratio of all training patches (0.1).
    #[arg(long, default_value = "10000")]
    coreset: CoresetSize,
    /// Nearest-neighbour search for scoring.
    #[arg(long, value_enum, default_value_t = KnnMethod::Exact)]
    knn: KnnMethod,
    /// Folder of prepared ONNX models.
    #[arg(long)]
    models: Option<PathBuf>,
    /// WebP quality of the `webp` image (0-100).
    #[arg(long, default_value_t = patchwire_codec::image::DEFAULT_WEBP_QUALITY)]
    webp_quality: u8,
    /// WebP quality of the `rs-webp` feature tiles (0-100).
    #[arg(long, default_value_t = patchwire_codec::image::DEFAULT_WEBP_QUALITY)]
    tile_quality: u8,
    /// Channel sampling ratio (default 0.25 for `rs`, 0.5 for `rs-pq` and `rs-webp`).
    #[arg(long)]
    rs_ratio: Option<f64>,
    /// PQ bits per code (default clamp(floor(log2(N_train / 4)), 4, 8)).
    #[arg(long)]
    pq_bits: Option<u32>,
    /// PQ sub-quantizers (default one per 98 values: 976 for the full vector).
    #[arg(long)]
    pq_sub_quantizers: Option<usize>,
    /// What the memory bank is built from (default: raw for klt-rc, decoded otherwise).
    #[arg(long, value_enum)]
    bank: Option<BankSource>,
    /// `klt-rc`: most body bytes per image.
    #[arg(long, default_value_t = 1950)]
    klt_cap: usize,
    /// `klt-rc`: base quantization steps of the three layers.
    #[arg(long, value_delimiter = ',', default_value = "4,3,3")]
    klt_steps: Vec<f64>,
}

impl ModelArgs {
    fn bank_of<'a>(&self, pipeline: Pipeline<'a>) -> Pipeline<'a> {
        match self.bank {
            Some(bank) => pipeline.with_bank(bank),
            None => pipeline,
        }
    }

    fn encode(&self) -> EncodeParams {
        EncodeParams { webp_quality: self.webp_quality, tile_quality: self.tile_quality }
    }

    fn artifact_params(&self, seed: u64) -> ArtifactParams {
        ArtifactParams {
            rs_ratio: self.rs_ratio,
            pq_bits: self.pq_bits,
            pq_sub_quantizers: self.pq_sub_quantizers,
            seed,
            klt: patchwire_codec::klt::KltParams {
                steps: self.klt_steps.clone(),
                cap: self.klt_cap,
                ..Default::default()
            },
        }
    }

    fn backbones(&self) -> Result<(Backbone, Backbone)> {
        let dir = self.models.clone().unwrap_or_else(patchwire_server::models_dir);
        let edge = Backbone::load(&BackboneConfig::resolve(backbones::EDGE_BACKBONE, &dir)?)?;
        let server = Backbone::load(&BackboneConfig::resolve(&self.server_backbone, &dir)?)?;
        Ok((edge, server))
    }

    fn models_dir(&self) -> PathBuf {
        self.models.clone().unwrap_or_else(patchwire_server::models_dir)
    }

    fn patchcore(&self, seed: u64) -> PatchCoreConfig {
        PatchCoreConfig { coreset: self.coreset, seed, ..PatchCoreConfig::default() }
    }
}

impl DataArgs {
    fn open(&self, category: &str) -> Result<dataset::Dataset> {
        let folders = FolderOptions {
            good: self.good.clone(),
            train_ratio: self.train_ratio,
            seed: self.seed,
            max_train: self.max_train,
        };
        let mut data = dataset::open(&self.data, category, &folders)?;
        if let Some(cap) = self.max_train {
            data.train.truncate(cap);
        }
        Ok(data)
    }

    fn categories(&self) -> Result<&[String]> {
        if self.category.is_empty() {
            bail!("give at least one --category");
        }
        Ok(&self.category)
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train { data, scenario, out, holdout, threshold_quantile, model } => {
            let [category] = data.categories()? else { bail!("train takes one --category") };
            let dataset = data.open(category)?;
            let (edge, server) = model.backbones()?;
            let artifact = eval::train_artifact(
                scenario,
                &edge,
                &dataset.train,
                &model.artifact_params(data.seed),
            )?;
            let pipeline =
                model.bank_of(Pipeline::new(scenario, &edge, &server, model.encode(), artifact)?);
            let config = model.patchcore(data.seed);
            let trained = eval::train_calibrated(
                &pipeline,
                &dataset.train,
                &config,
                model.knn,
                holdout,
                threshold_quantile,
            )?;
            file::save(&out, &trained.to_file())?;
            eprintln!(
                "trained {category}/{scenario} on {} images in {:.1} s: {} x {} bank, threshold {:.3} \
                 from {} held-out good images -> {}",
                trained.header.train_images,
                trained.train_s,
                trained.header.rows,
                trained.header.dim,
                trained.header.threshold.unwrap_or(f32::NAN),
                trained.header.calibration.as_ref().map_or(0, |c| c.held_out),
                out.display()
            );
            Ok(())
        }
        Command::Eval { data, scenario, json, out, link_kbps, edge_scale, load, model } => {
            let scenario = parse_scenarios(&scenario)?;
            if !(link_kbps > 0.0 && edge_scale > 0.0) {
                bail!("--link-kBps and --edge-scale must be positive");
            }
            let link = eval::LinkModel { link_kbps, edge_scale };
            if load.is_some() && (scenario.len() != 1 || data.category.len() != 1) {
                bail!("--load evaluates one saved model: give one --category and one --scenario");
            }
            let (edge, server) = model.backbones()?;
            let mut reports = Vec::new();
            for category in data.categories()? {
                let dataset = data.open(category)?;
                let mut lines = Vec::new();
                for &sc in &scenario {
                    let trained;
                    let pipeline;
                    if let Some(path) = &load {
                        let file = eval::read_model(path)?;
                        let encode = file.header.encode;
                        pipeline =
                            Pipeline::new(sc, &edge, &server, encode, file.artifact.clone())?;
                        trained = eval::load(path, file, &pipeline, model.knn)?;
                    } else {
                        let params = model.artifact_params(data.seed);
                        let artifact = eval::train_artifact(sc, &edge, &dataset.train, &params)?;
                        pipeline = model.bank_of(Pipeline::new(
                            sc,
                            &edge,
                            &server,
                            model.encode(),
                            artifact,
                        )?);
                        trained = eval::train(
                            &pipeline,
                            &dataset.train,
                            &model.patchcore(data.seed),
                            model.knn,
                        )?;
                    }
                    let run = eval::test(&pipeline, &trained.model, &dataset.test)?;
                    let line =
                        eval::report_line(&pipeline, &trained, &dataset, &run, model.knn, &link)?;
                    print_line(category, &line);
                    lines.push(line);
                }
                let report = Report {
                    category: category.clone(),
                    machine: eval::machine(),
                    link,
                    scenarios: lines,
                };
                if let Some(dir) = &out {
                    let md = report::summary(&report, &command_line());
                    write_markdown(dir, &format!("eval-{category}"), &md)?;
                }
                reports.push(report);
            }
            if let Some(dir) = &out {
                write_paper_tables(dir, &reports)?;
            }
            if let Some(path) = json {
                write_json(&path, &reports)?;
            }
            Ok(())
        }
        Command::Bench { which } => bench(which),
        Command::Gateway { which } => gateway(which),
        Command::Serve(args) => serve(args),
        Command::DumpFeatures { data, out, model } => {
            let [category] = data.categories()? else {
                bail!("dump-features takes one --category")
            };
            let (edge, _) = model.backbones()?;
            dump_features(&data.open(category)?, &edge, &out)
        }
    }
}

fn bench(which: BenchCommand) -> Result<()> {
    let machine = eval::machine();
    match which {
        BenchCommand::Knn { data, scenario, sizes, out, model } => {
            let [category] = data.categories()? else { bail!("bench knn takes one --category") };
            let dataset = data.open(category)?;
            let (edge, server) = model.backbones()?;
            let params = model.artifact_params(data.seed);
            let artifact = eval::train_artifact(scenario, &edge, &dataset.train, &params)?;
            let pipeline =
                model.bank_of(Pipeline::new(scenario, &edge, &server, model.encode(), artifact)?);
            let rows = bench::knn(&pipeline, &dataset, &model.patchcore(data.seed), &sizes)?;
            let exact = |rows: &[bench::KnnRow], bank| {
                rows.iter().find(|r| r.bank_rows == bank && r.method == KnnMethod::Exact).cloned()
            };
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let e = exact(&rows, r.bank_rows).expect("exact runs first on every bank");
                    vec![
                        format!("{:?}", r.method).to_lowercase(),
                        r.bank_rows.to_string(),
                        report::f1(r.build_s),
                        report::f1(r.score_ms),
                        format!("{:.2}x", e.score_ms / r.score_ms),
                        report::f3(r.recall),
                        report::f3(r.accuracy.image_auroc),
                        format!("{:+.4}", r.accuracy.image_auroc - e.accuracy.image_auroc),
                        report::f3(r.accuracy.pixel_f1),
                        format!("{:+.4}", r.accuracy.pixel_f1 - e.accuracy.pixel_f1),
                    ]
                })
                .collect();
            let md = report::caption(
                &format!(
                    "Exact vs HNSW search, {category}, scenario {scenario}, {} test images",
                    dataset.test.len()
                ),
                &machine,
                &command_line(),
            ) + "\n"
                + &report::table(
                    &[
                        "search",
                        "bank rows",
                        "build s",
                        "score ms/img",
                        "speed vs exact",
                        "recall@1",
                        "img AUROC",
                        "vs exact",
                        "px F1",
                        "vs exact",
                    ],
                    &cells,
                );
            write_outputs(&out, "knn", &rows, &md)
        }
        BenchCommand::Inference { backbones: specs, image, runs, out, models } => {
            let dir = models.unwrap_or_else(patchwire_server::models_dir);
            let loaded: Vec<Backbone> = specs
                .iter()
                .map(|s| Backbone::load(&BackboneConfig::resolve(s, &dir)?))
                .collect::<Result<_>>()?;
            let img = dataset::load_image(&image)?;
            let python = patchwire_server::repo_dir().join("models/.venv/bin/python");
            let scratch =
                std::env::temp_dir().join(format!("patchwire-bench-{}", std::process::id()));
            let refs: Vec<&Backbone> = loaded.iter().collect();
            let rows = bench::inference(&refs, &img, runs, &python, &scratch)?;
            std::fs::remove_dir_all(&scratch).ok();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.backbone.clone(),
                        r.taps.join(", "),
                        report::f1(r.tract_ms),
                        report::f1(r.onnxruntime_ms),
                        format!("{:.2}x", r.ratio),
                    ]
                })
                .collect();
            let md = report::caption(
                &format!(
                    "tract vs onnxruntime, one thread each, mean of {runs} runs on {}",
                    image.display()
                ),
                &machine,
                &command_line(),
            ) + "\n"
                + &report::table(
                    &["backbone", "outputs", "tract ms", "onnxruntime ms", "tract / ort"],
                    &cells,
                );
            write_outputs(&out, "inference", &rows, &md)
        }
        BenchCommand::Edge { data, component, scalar_component, frames, out } => {
            let [category] = data.categories()? else { bail!("bench edge takes one --category") };
            let dataset = data.open(category)?;
            let dir = patchwire_server::models_dir();
            let edge = Backbone::load(&BackboneConfig::resolve(backbones::EDGE_BACKBONE, &dir)?)?;
            let mut artifacts = Vec::new();
            let params = ArtifactParams::default();
            for sc in Scenario::ALL {
                artifacts.push((sc, eval::train_artifact(sc, &edge, &dataset.train, &params)?));
            }
            let images: Vec<image::RgbImage> = dataset
                .test
                .iter()
                .take(frames + 1)
                .map(|s| {
                    Ok(image::open(&s.path)
                        .with_context(|| format!("reading {}", s.path.display()))?
                        .to_rgb8())
                })
                .collect::<Result<_>>()?;
            let model = std::fs::read(dir.join("mobilenet_v2.onnx"))?;
            let simd = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            let scalar = scalar_component
                .as_ref()
                .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
                .transpose()?;
            let host = patchwire_server::gateway::ComponentHost::new(Some(
                patchwire_server::repo_dir().join("target/component-cache"),
            ))?;
            let rows = bench::edge(&host, &simd, scalar.as_deref(), &images, &model, &artifacts)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        format!("`{}`", r.scenario),
                        r.stage.clone(),
                        format!("{:.2}", r.native_ms),
                        format!("{:.2}", r.wasm_simd_ms),
                        format!("{:.2}x", r.wasm_simd_ms / r.native_ms),
                        r.wasm_scalar_ms.map_or("-".into(), |v| format!("{v:.2}")),
                        r.wasm_scalar_ms.map_or("-".into(), |v| format!("{:.2}x", v / r.native_ms)),
                    ]
                })
                .collect();
            let md = report::caption(
                &format!(
                    "Edge stage natively and in wasmtime 48, median over {frames} {category} test images per row \
                     (full-size input, resize not included), one thread each; artifacts from the \
                     {} training images",
                    dataset.train.len()
                ),
                &machine,
                &command_line(),
            ) + "\n"
                + &report::table(
                    &[
                        "scenario",
                        "stage",
                        "native ms",
                        "wasm SIMD ms",
                        "SIMD / native",
                        "wasm scalar ms",
                        "scalar / native",
                    ],
                    &cells,
                );
            write_outputs(&out, "edge", &rows, &md)
        }
        BenchCommand::Webp { data, qualities, reference, out } => {
            let [category] = data.categories()? else { bail!("bench webp takes one --category") };
            let dataset = data.open(category)?;
            let samples: Vec<_> = dataset.train.iter().chain(&dataset.test).cloned().collect();
            let python = patchwire_server::repo_dir().join("models/.venv/bin/python");
            let scratch =
                std::env::temp_dir().join(format!("patchwire-webp-{}", std::process::id()));
            let rows = bench::webp(&samples, &qualities, reference, &python, &scratch);
            std::fs::remove_dir_all(&scratch).ok();
            let rows = rows?;
            let libwebp = &rows[0];
            let closest = |f: &dyn Fn(&bench::WebpRow) -> f64| {
                rows[1..]
                    .iter()
                    .min_by(|a, b| (f(a) - f(libwebp)).abs().total_cmp(&(f(b) - f(libwebp)).abs()))
            };
            let by_psnr = closest(&|r| r.mean_psnr_db).map(|r| r.quality);
            let by_size = closest(&|r| r.mean_bytes).map(|r| r.quality);
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.encoder.clone(),
                        r.quality.to_string(),
                        format!("{:.0}", r.mean_bytes),
                        format!("{:.2}x", r.mean_bytes / libwebp.mean_bytes),
                        format!("{:.1}", r.mean_psnr_db),
                        format!("{:+.1}", r.mean_psnr_db - libwebp.mean_psnr_db),
                        format!("{:.1}", r.mean_encode_ms),
                    ]
                })
                .collect();
            let md = report::caption(
                &format!(
                    "Lossy WebP on {category}, all {} images at 224x224: ours against libwebp q{reference}                      (method 4). Closest in PSNR: q{}; closest in size: q{}",
                    samples.len(),
                    by_psnr.unwrap_or(0),
                    by_size.unwrap_or(0)
                ),
                &machine,
                &command_line(),
            ) + "\n"
                + &report::table(
                    &[
                        "encoder",
                        "quality",
                        "bytes",
                        "vs libwebp",
                        "PSNR dB",
                        "vs libwebp",
                        "encode ms",
                    ],
                    &cells,
                );
            write_outputs(&out, "webp", &rows, &md)
        }
        BenchCommand::Backbones { data, candidates, out, model } => {
            let [category] = data.categories()? else {
                bail!("bench backbones takes one --category")
            };
            let dataset = data.open(category)?;
            let dir = model.models_dir();
            let edge = Backbone::load(&BackboneConfig::resolve(backbones::EDGE_BACKBONE, &dir)?)?;
            let loaded: Vec<Backbone> = candidates
                .iter()
                .map(|s| Backbone::load(&BackboneConfig::resolve(s, &dir)?))
                .collect::<Result<_>>()?;
            let rows = bench::backbones(&edge, &loaded, &dataset, &model.patchcore(data.seed))?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let l = &r.report;
                    vec![
                        l.backbone.clone(),
                        l.taps.join(", "),
                        r.dim.to_string(),
                        report::f3(l.accuracy.image_auroc),
                        report::f3(l.accuracy.pixel_auroc),
                        report::f3(l.accuracy.pixel_f1),
                        report::f3(l.accuracy.aupro),
                        report::f1(l.times_ms.server_extract),
                        report::f1(l.times_ms.server_score),
                        report::f1(l.train_s),
                    ]
                })
                .collect();
            let md = report::caption(
                &format!(
                    "Server backbones for `original`, {category} ({} train / {} test images)",
                    dataset.train.len(),
                    dataset.test.len()
                ),
                &machine,
                &command_line(),
            ) + "\n"
                + &report::table(
                    &[
                        "backbone",
                        "taps",
                        "dims",
                        "img AUROC",
                        "px AUROC",
                        "px F1",
                        "AUPRO",
                        "extract ms",
                        "score ms",
                        "train s",
                    ],
                    &cells,
                );
            write_outputs(&out, &format!("backbones-{category}"), &rows, &md)
        }
    }
}

/// `tables-CATS.md` (Tables 1-3 per category, and their mean over categories),
/// `figure3-CATS.svg` and `figure4-CATS.svg`, CATS being the categories joined by `-and-`.
fn write_paper_tables(dir: &Path, reports: &[Report]) -> Result<()> {
    let Some(first) = reports.first() else { return Ok(()) };
    let mut md = report::caption(
        &format!(
            "The paper's Tables 1-3 on {}",
            reports.iter().map(|r| r.category.as_str()).collect::<Vec<_>>().join(", ")
        ),
        &first.machine,
        &command_line(),
    );
    for r in reports {
        md.push('\n');
        md += &report::paper_tables(r);
    }
    if reports.len() > 1
        && let Some(mean) = report::mean_report(reports)
    {
        md.push('\n');
        md += &report::paper_tables(&mean);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Named after the categories, so runs on different categories share one folder.
    let name = reports.iter().map(|r| r.category.as_str()).collect::<Vec<_>>().join("-and-");
    let path = dir.join(format!("tables-{name}.md"));
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    patchwire_server::figures::pixel_f1_bars(reports, &dir.join(format!("figure3-{name}.svg")))?;
    patchwire_server::figures::f1_vs_payload(reports, &dir.join(format!("figure4-{name}.svg")))?;
    eprintln!("tables and figures written to {}", dir.display());
    Ok(())
}

/// Scenario names, with `all` for every scenario.
fn parse_scenarios(names: &[String]) -> Result<Vec<Scenario>> {
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.extend(Scenario::ALL);
        } else {
            out.push(name.parse()?);
        }
    }
    out.dedup();
    Ok(out)
}

/// This process's command line as a user would type it, for table captions.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("patchwire {}", args.join(" "))
}

#[derive(Args)]
struct ServeArgs {
    /// A trained model file; repeat for each scenario to serve.
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The SQLite store (created if missing).
    #[arg(long, default_value = "out/patchwire.sqlite")]
    db: PathBuf,
    /// Verdict threshold for every model, instead of each model's calibrated one.
    #[arg(long)]
    threshold: Option<f32>,
    /// Register this device (or give it a new token) and print its page URL.
    #[arg(long)]
    device: Option<String>,
    /// Token for device administration (default: a random one, printed).
    #[arg(long, env = "PATCHWIRE_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// The page folder (default: www/ in the repository).
    #[arg(long)]
    www: Option<PathBuf>,
    /// Server backbone, as the image-scenario models were trained with.
    #[arg(long, default_value = backbones::DEFAULT_SERVER_BACKBONE)]
    server_backbone: String,
    /// Nearest-neighbour search.
    #[arg(long, value_enum, default_value_t = KnnMethod::Exact)]
    knn: KnnMethod,
}

fn serve(a: ServeArgs) -> Result<()> {
    use patchwire_server::service::{self, AppState};
    use patchwire_server::store::Store;

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let dir = patchwire_server::models_dir();
    let edge_config = BackboneConfig::resolve(backbones::EDGE_BACKBONE, &dir)?;
    let edge_model = std::fs::read(&edge_config.onnx)
        .with_context(|| format!("reading {}", edge_config.onnx.display()))?;
    // The backbones live as long as the process.
    let edge: &'static Backbone = Box::leak(Box::new(Backbone::load(&edge_config)?));
    let server: &'static Backbone =
        Box::leak(Box::new(Backbone::load(&BackboneConfig::resolve(&a.server_backbone, &dir)?)?));
    let models = service::load_models(&a.models, edge, server, a.threshold, a.knn)?;
    if let Some(parent) = a.db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let store = Store::open(&a.db)?;
    let admin_token = match a.admin_token {
        Some(t) => t,
        None => random_token()?,
    };
    let device = match &a.device {
        Some(name) => Some((name.clone(), store.register(name)?)),
        None => None,
    };
    let www = a.www.unwrap_or_else(|| patchwire_server::repo_dir().join("www"));
    let scenarios: Vec<String> = models.keys().map(ToString::to_string).collect();
    let metrics = service::Metrics::default_for(models.keys().copied());
    let state = std::sync::Arc::new(AppState {
        models,
        edge_model,
        store,
        admin_token: admin_token.clone(),
        www,
        metrics,
    });
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(service::serve(state, a.listen, |addr| {
        println!(
            "patchwire serving {} on http://{addr}/ (store {})",
            scenarios.join(", "),
            a.db.display()
        );
        println!("fleet view: http://{addr}/fleet");
        println!("admin token: {admin_token}");
        if let Some((name, token)) = &device {
            println!("camera page for device {name}: http://{addr}/?device={name}&token={token}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }))
}

/// 128 random bits in hex.
fn random_token() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn gateway(which: GatewayCommand) -> Result<()> {
    use patchwire_server::gateway::{self as gw, ComponentHost, EdgeSetup};
    match which {
        GatewayCommand::Stamp { version, input, output } => {
            let mut wasm =
                std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            gw::stamp(&mut wasm, &version)?;
            std::fs::write(&output, wasm)
                .with_context(|| format!("writing {}", output.display()))?;
            eprintln!("{} stamped {version:?} -> {}", input.display(), output.display());
            Ok(())
        }
        GatewayCommand::Run {
            component,
            watch,
            frames,
            rate,
            count,
            model,
            scenario,
            edge_model,
            out,
            log,
            cache,
            server,
            token,
            push_listen,
            push_token,
        } => {
            let (scenario, encode, artifact) = match &model {
                Some(path) => {
                    let file = eval::read_model(path)?;
                    (file.header.scenario, file.header.encode, file.artifact.map(|a| a.to_bytes()))
                }
                None if scenario.needs_artifact() => {
                    bail!(
                        "scenario {scenario} needs an artifact: pass --model with a model trained for it"
                    )
                }
                None => (scenario, EncodeParams::default(), None),
            };
            let edge_model = edge_model
                .unwrap_or_else(|| patchwire_server::models_dir().join("mobilenet_v2.onnx"));
            let model_bytes = if scenario.sends_image() {
                None
            } else {
                Some(
                    std::fs::read(&edge_model)
                        .with_context(|| format!("reading edge model {}", edge_model.display()))?,
                )
            };
            let setup = EdgeSetup { scenario, encode, model: model_bytes, artifact };
            let host = std::sync::Arc::new(ComponentHost::new(cache)?);
            let wasm = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            eprintln!("compiling {} ({:.1} MB)...", component.display(), wasm.len() as f64 / 1e6);
            let first = gw::validate(&host, &wasm, &setup, None, &component.display().to_string())
                .with_context(|| {
                    format!("the starting component {} was refused", component.display())
                })?;
            let mut first = first.instance;
            let model_id = first.model_id()?;
            eprintln!("running component version {:?}, scenario {scenario}", first.version());

            let (tx, rx) = std::sync::mpsc::channel();
            if watch {
                gw::spawn_watcher(
                    host.clone(),
                    component.clone(),
                    setup.clone(),
                    model_id,
                    tx.clone(),
                );
            }
            if let Some(listen) = push_listen {
                let push_token = match push_token {
                    Some(t) => t,
                    None => random_token()?,
                };
                let addr = gw::spawn_push_endpoint(
                    listen,
                    push_token.clone(),
                    host.clone(),
                    setup.clone(),
                    model_id,
                    tx.clone(),
                )?;
                eprintln!("push endpoint: PUT http://{addr}/v1/component (token {push_token})");
            }
            drop(tx);
            let sink = match (&server, &token) {
                (Some(url), Some(token)) => Some(gw::http_sink(url, token)),
                _ => None,
            };
            let mut files = gw::frame_files(&frames)?;
            if let Some(n) = count {
                files.truncate(n);
            }
            let mut log_file = match &log {
                Some(p) => Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                        .with_context(|| format!("opening {}", p.display()))?,
                ),
                None => None,
            };
            let mut opts =
                gw::RunOptions { component, watch, frames: files, rate, setup, out, sink };
            gw::run(first, &mut opts, &rx, &mut |event| {
                let line = serde_json::to_string(event).unwrap_or_default();
                if let Some(f) = &mut log_file {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
                println!("{line}");
            })
        }
    }
}

/// Writes `out/NAME.json` and `out/NAME.md` and prints the Markdown.
fn write_outputs<T: serde::Serialize>(out: &Path, name: &str, rows: &T, md: &str) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join(format!("{name}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(rows)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    write_markdown(out, name, md)
}

/// Writes `out/NAME.md` and prints it.
fn write_markdown(out: &Path, name: &str, md: &str) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(format!("{name}.md"));
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("{md}");
    Ok(())
}

/// `train_l{i}.npy` (N x C x H x W), `test_l{i}.npy`, `test_masks.npy` (N x 224 x 224, 0/1)
/// and `test_labels.npy` (N, 0/1).
fn dump_features(dataset: &dataset::Dataset, edge: &Backbone, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (split, samples) in [("train", &dataset.train), ("test", &dataset.test)] {
        let mut layers: Vec<(Vec<usize>, Vec<f32>)> = Vec::new();
        let pb = eval::bar(samples.len(), &format!("{split}: extracting"));
        for sample in samples.iter() {
            let maps = edge.extract(&dataset::load_image(&sample.path)?)?;
            layers.resize_with(maps.len(), Default::default);
            for (layer, map) in layers.iter_mut().zip(maps) {
                layer.0 = map.shape().to_vec();
                layer.1.extend(map.data);
            }
            pb.inc(1);
        }
        pb.finish_and_clear();
        for (i, (shape, data)) in layers.iter().enumerate() {
            let full: Vec<usize> =
                std::iter::once(samples.len()).chain(shape.iter().copied()).collect();
            patchwire_server::npy::write_f32(
                &out.join(format!("{split}_l{}.npy", i + 1)),
                &full,
                data,
            )?;
        }
    }
    let mut masks = Vec::new();
    for sample in &dataset.test {
        masks.extend(dataset::load_mask(sample)?.into_iter().map(|m| if m { 1.0 } else { 0.0 }));
    }
    let n = dataset.test.len();
    patchwire_server::npy::write_f32(&out.join("test_masks.npy"), &[n, 224, 224], &masks)?;
    let labels: Vec<f32> =
        dataset.test.iter().map(|s| if s.anomalous { 1.0 } else { 0.0 }).collect();
    patchwire_server::npy::write_f32(&out.join("test_labels.npy"), &[n], &labels)
}

fn print_line(category: &str, l: &eval::ScenarioReport) {
    println!(
        "{category:<14} {:<9} img AUROC {:.3}  px AUROC {:.3}  px F1 {:.3}  AUPRO {:.3}  payload {:>8.0} B  train {:>6.1} s  score {:>6.1} ms/img",
        l.name,
        l.accuracy.image_auroc,
        l.accuracy.pixel_auroc,
        l.accuracy.pixel_f1,
        l.accuracy.aupro,
        l.payload_bytes,
        l.train_s,
        l.times_ms.server_score
    );
}

/// One category writes its report object; several write an array of them.
fn write_json(path: &Path, reports: &[Report]) -> Result<()> {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one)?,
        many => serde_json::to_string_pretty(many)?,
    };
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
