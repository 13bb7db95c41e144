//! The gateway host: runs the edge stage as a WebAssembly component (`wit/edge.wit`) in
//! wasmtime, and replaces it while running.
//!
//! ```text
//! frames (folder or file sequence) --> [component: edge] --> payloads --> server / folder
//!                                        ^
//! new .wasm (watched path, HTTP push) -> compile + validate off the hot path -> swap between frames
//! ```
//!
//! - [`ComponentHost`] compiles components (caching the native code, since wasmtime needs
//!   10-20 s to compile the tract-sized module) and instantiates edges.
//! - [`EdgeInstance`] is one live edge; [`Candidate`] a new component being validated.
//! - The host numbers frames itself and asks each component to encode frame `n`, so a swap
//!   neither drops nor repeats a frame; every payload carries the version of the component
//!   that encoded it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use patchwire_codec::Scenario;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    // Sync bindings for the one world the component exports; it imports only WASI, which
    // wasmtime-wasi provides.
    wasmtime::component::bindgen!({
        world: "edge-component",
        path: "../wit",
    });
}

pub use bindings::EdgeComponent;
use bindings::exports::patchwire::edge::stage as wit;

/// Per-instance host state: WASI with nothing granted (no files, no network, no
/// environment); the component only needs clocks and randomness.
pub struct HostState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// A compiled component and where it came from.
#[derive(Clone)]
pub struct Compiled {
    component: Component,
    /// SHA-256 of the `.wasm` bytes, hex.
    pub sha256: String,
}

/// The wasmtime engine and linker shared by every component a gateway runs.
pub struct ComponentHost {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<PathBuf>,
}

/// What an edge is set up with: scenario and encoder settings, the edge model and artifact.
#[derive(Clone)]
pub struct EdgeSetup {
    /// What to send.
    pub scenario: Scenario,
    /// WebP qualities.
    pub encode: patchwire_codec::body::EncodeParams,
    /// The edge model's ONNX bytes (feature scenarios).
    pub model: Option<Vec<u8>>,
    /// The scenario's artifact file (rs, pq, rs-pq, rs-webp).
    pub artifact: Option<Vec<u8>>,
}

/// One frame as the component returned it.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The wire payload.
    pub payload: Vec<u8>,
    /// Its frame number.
    pub sequence: u32,
    /// Milliseconds resizing, extracting, encoding, inside the component.
    pub resize_ms: f64,
    /// Edge-model inference.
    pub extract_ms: f64,
    /// Encoder and envelope.
    pub encode_ms: f64,
}

/// wasmtime 48 has its own error type; this converts it to take context.
fn wt<T>(r: wasmtime::Result<T>) -> Result<T> {
    r.map_err(anyhow::Error::from)
}

fn wit_scenario(s: Scenario) -> wit::Scenario {
    match s {
        Scenario::Original => wit::Scenario::Original,
        Scenario::Webp => wit::Scenario::Webp,
        Scenario::Features => wit::Scenario::Features,
        Scenario::Rs => wit::Scenario::Rs,
        Scenario::Pq => wit::Scenario::Pq,
        Scenario::RsPq => wit::Scenario::RsPq,
        Scenario::RsWebp => wit::Scenario::RsWebp,
        Scenario::KltRc => wit::Scenario::KltRc,
    }
}

fn edge_error(e: wit::EdgeError) -> anyhow::Error {
    let (kind, msg) = match e {
        wit::EdgeError::BadModel(m) => ("bad model", m),
        wit::EdgeError::BadArtifact(m) => ("bad artifact", m),
        wit::EdgeError::BadConfig(m) => ("bad configuration", m),
        wit::EdgeError::BadFrame(m) => ("bad frame", m),
        wit::EdgeError::Failed(m) => ("failed", m),
    };
    anyhow::anyhow!("component: {kind}: {msg}")
}

impl ComponentHost {
    /// An engine with SIMD (the components are built with simd128). `cache` is a folder for
    /// compiled native code, keyed by the component's hash.
    ///
    /// # Errors
    /// If the engine or the WASI linker cannot be set up.
    pub fn new(cache: Option<PathBuf>) -> Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .wasm_simd(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Ok(ComponentHost { engine, linker, cache })
    }

    /// Compiles a component, or loads its native code from the cache.
    ///
    /// # Errors
    /// Bytes that are not a valid component.
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled> {
        let sha256 = crate::backbones::sha256_hex(wasm);
        let cached = self.cache.as_ref().map(|dir| dir.join(format!("{sha256}.cwasm")));
        if let Some(path) = &cached
            && path.is_file()
        {
            // SAFETY: the file was written below by `precompile_component` of an engine of
            // this build, into a folder keyed by the source's hash; wasmtime checks its
            // header (version, target, configuration) and refuses a mismatch with an error.
            let loaded = unsafe { Component::deserialize_file(&self.engine, path) };
            if let Ok(component) = loaded {
                return Ok(Compiled { component, sha256 });
            }
        }
        let native =
            wt(self.engine.precompile_component(wasm)).context("compiling the component")?;
        if let Some(path) = &cached {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, &native).is_ok() {
                std::fs::rename(&tmp, path).ok();
            }
        }
        // SAFETY: `native` was produced just above by this engine.
        let component = unsafe { Component::deserialize(&self.engine, &native) }?;
        Ok(Compiled { component, sha256 })
    }

    /// Instantiates a compiled component and creates an edge in it.
    ///
    /// # Errors
    /// A component that does not implement the world, or refuses the setup.
    pub fn instantiate(&self, compiled: &Compiled, setup: &EdgeSetup) -> Result<EdgeInstance> {
        let state = HostState { ctx: WasiCtx::builder().build(), table: ResourceTable::new() };
        let mut store = Store::new(&self.engine, state);
        let bindings =
            wt(EdgeComponent::instantiate(&mut store, &compiled.component, &self.linker))
                .context("the component does not implement patchwire:edge/edge-component")?;
        let stage = bindings.patchwire_edge_stage();
        let version = stage.call_version(&mut store)?;
        let config = wit::Config {
            scenario: wit_scenario(setup.scenario),
            webp_quality: setup.encode.webp_quality,
            tile_quality: setup.encode.tile_quality,
        };
        let edge = stage
            .edge()
            .call_create(&mut store, config, setup.model.as_deref(), setup.artifact.as_deref())?
            .map_err(edge_error)?;
        Ok(EdgeInstance { store, bindings, edge, version, sha256: compiled.sha256.clone() })
    }
}

/// One live edge inside a component instance.
pub struct EdgeInstance {
    store: Store<HostState>,
    bindings: EdgeComponent,
    edge: ResourceAny,
    version: String,
    /// SHA-256 of the component it runs in.
    pub sha256: String,
}

impl EdgeInstance {
    /// The component's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Encodes an RGB frame as frame number `sequence`.
    ///
    /// # Errors
    /// A trap, or the component's domain error.
    pub fn process(&mut self, rgb: &[u8], width: u32, height: u32, sequence: u32) -> Result<Frame> {
        let out = self
            .bindings
            .patchwire_edge_stage()
            .edge()
            .call_process_numbered(&mut self.store, self.edge, rgb, width, height, sequence)?
            .map_err(edge_error)?;
        Ok(Frame {
            payload: out.payload,
            sequence: out.sequence,
            resize_ms: out.timings.resize_ms,
            extract_ms: out.timings.extract_ms,
            encode_ms: out.timings.encode_ms,
        })
    }

    /// The edge model id the component reports.
    ///
    /// # Errors
    /// A trap.
    pub fn model_id(&mut self) -> Result<u32> {
        wt(self.bindings.patchwire_edge_stage().edge().call_model_id(&mut self.store, self.edge))
    }
}

/// A new component that passed validation and is ready to take over.
pub struct Candidate {
    /// The live edge in it.
    pub instance: EdgeInstance,
    /// Where it came from (a path or "http push").
    pub source: String,
}

/// Compiles a new component and checks that it can take over: it instantiates, accepts the
/// setup, and turns a probe frame into a payload for the same scenario and edge model as the
/// running one. All of this runs off the hot path.
///
/// # Errors
/// Why the component was refused.
pub fn validate(
    host: &ComponentHost,
    wasm: &[u8],
    setup: &EdgeSetup,
    expect_model_id: Option<u32>,
    source: &str,
) -> Result<Candidate> {
    let compiled = host.compile(wasm)?;
    let mut instance = host.instantiate(&compiled, setup)?;
    let probe = vec![128u8; 64 * 48 * 3];
    let frame =
        instance.process(&probe, 64, 48, 0).context("the component failed a probe frame")?;
    let (header, _) = patchwire_codec::wire::decode(&frame.payload)
        .context("the component's probe payload is malformed")?;
    ensure!(
        header.scenario == setup.scenario,
        "the component encoded scenario {}, not {}",
        header.scenario,
        setup.scenario
    );
    ensure!(
        header.edge_version == instance.version(),
        "the component's payload says version {:?}, it reports {:?}",
        header.edge_version,
        instance.version()
    );
    if let Some(id) = expect_model_id {
        ensure!(
            header.model_id == id,
            "the component runs edge model {:08x}, not {id:08x}",
            header.model_id
        );
    }
    Ok(Candidate { instance, source: source.to_string() })
}

/// Stamps a version into a built component's version slot (see `edge-wasm/src/component.rs`),
/// in place and without changing its length.
///
/// # Errors
/// A version that does not fit, or a file without exactly one version slot.
pub fn stamp(wasm: &mut [u8], version: &str) -> Result<()> {
    const MARKER: &[u8] = b"PATCHWIRE-COMPONENT-VERSION:";
    const CAPACITY: usize = 36;
    ensure!(
        !version.is_empty() && version.len() <= CAPACITY && !version.contains('\0'),
        "version {version:?} must be 1 to {CAPACITY} bytes without NUL"
    );
    let hits: Vec<usize> = wasm
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == MARKER)
        .map(|(i, _)| i)
        .collect();
    let [at] = hits[..] else {
        bail!("expected one version slot in the component, found {}", hits.len());
    };
    let slot = &mut wasm[at + MARKER.len()..at + MARKER.len() + CAPACITY];
    slot.fill(0);
    slot[..version.len()].copy_from_slice(version.as_bytes());
    Ok(())
}

/// The frames a gateway feeds: every image in a folder (sorted by name), or a sequence of
/// numbered files given as a pattern with `{}` (as a camera writing `frame-0001.png`...).
///
/// # Errors
/// A folder without images, or a pattern that names no file.
pub fn frame_files(source: &Path) -> Result<Vec<PathBuf>> {
    let text = source.to_string_lossy();
    if text.contains("{}") {
        let mut files = Vec::new();
        for n in 0.. {
            let path = PathBuf::from(text.replace("{}", &n.to_string()));
            let padded = (1..=8).map(|w| PathBuf::from(text.replace("{}", &format!("{n:0w$}"))));
            match std::iter::once(path).chain(padded).find(|p| p.is_file()) {
                Some(p) => files.push(p),
                None if n == 0 => continue,
                None => break,
            }
        }
        ensure!(!files.is_empty(), "no frames match {}", source.display());
        return Ok(files);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(source)
        .with_context(|| format!("listing frames in {}", source.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext =
                p.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
            ["png", "jpg", "jpeg", "bmp"].contains(&ext.as_str())
        })
        .collect();
    files.sort();
    ensure!(!files.is_empty(), "no images in {}", source.display());
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_rewrites_the_slot_in_place() {
        let mut wasm = b"\0asm....PATCHWIRE-COMPONENT-VERSION:patchwire-edge 0.1.0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0tail".to_vec();
        let len = wasm.len();
        stamp(&mut wasm, "0.2.0-test").unwrap();
        assert_eq!(wasm.len(), len);
        let text = String::from_utf8_lossy(&wasm);
        assert!(text.contains("VERSION:0.2.0-test\0"), "{text}");
        assert!(text.ends_with("tail"));
        assert!(stamp(&mut wasm, &"x".repeat(37)).is_err());
        assert!(stamp(&mut b"no slot here".to_vec(), "1").is_err());
    }
}

/// What happened while a gateway ran, one JSON line each in its log.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A frame was encoded (and sent, when a server is configured).
    Frame {
        /// Frame number.
        sequence: u32,
        /// The image it came from.
        file: String,
        /// Version of the component that encoded it.
        version: String,
        /// Payload bytes.
        payload_bytes: usize,
        /// Milliseconds inside the component: resize, extract, encode.
        resize_ms: f64,
        /// See `resize_ms`.
        extract_ms: f64,
        /// See `resize_ms`.
        encode_ms: f64,
        /// What the server answered (score, verdict, timings, map link), if a server is
        /// configured.
        server: Option<serde_json::Value>,
    },
    /// A frame failed (unreadable image, component error, server refusal); the gateway goes
    /// on with the next one.
    FrameFailed {
        /// Frame number.
        sequence: u32,
        /// The image.
        file: String,
        /// Why.
        error: String,
    },
    /// A new component took over between two frames.
    Swapped {
        /// The first frame it encodes.
        at_sequence: u32,
        /// Version before.
        from: String,
        /// Version after.
        to: String,
        /// Where it came from.
        source: String,
    },
    /// A new component failed validation; the running one stays.
    Refused {
        /// Where it came from.
        source: String,
        /// Why.
        error: String,
    },
}

/// Sends a frame's payload to the server; returns its answer.
pub type Sink = Box<dyn FnMut(&Frame) -> Result<serde_json::Value> + Send>;

/// A sink posting to a Patchwire server's `POST /v1/inspect` with a device token, the
/// component's own timings in `x-patchwire-edge-ms`. Its answer, without the inline map, is
/// the frame's `server` field; a refusal fails the frame with the server's error kind and
/// message.
pub fn http_sink(server: &str, token: &str) -> Sink {
    let url = format!("{}/v1/inspect", server.trim_end_matches('/'));
    let auth = format!("Bearer {token}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    Box::new(move |frame: &Frame| {
        let timings =
            format!("{:.3},{:.3},{:.3}", frame.resize_ms, frame.extract_ms, frame.encode_ms);
        let mut res = agent
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/octet-stream")
            .header("x-patchwire-edge-ms", &timings)
            .send(&frame.payload[..])
            .with_context(|| format!("sending frame {} to {url}", frame.sequence))?;
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let mut body: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!("{url} answered {status} with something not JSON: {text:.200}")
        })?;
        if status != 200 {
            let e = &body["error"];
            bail!(
                "the server refused frame {} ({status} {}): {}",
                frame.sequence,
                e["kind"],
                e["message"]
            );
        }
        if let Some(o) = body.as_object_mut() {
            o.remove("map_png_base64");
        }
        Ok(body)
    })
}

/// The most bytes a pushed component may have (the release component is about 20 MB).
pub const MAX_PUSH: usize = 128 << 20;

struct PushState {
    host: std::sync::Arc<ComponentHost>,
    setup: EdgeSetup,
    model_id: u32,
    token: String,
    tx: CandidateSender,
}

/// Serves `PUT /v1/component` on `listen`: the body is a component, the bearer token must be
/// `token`. The component is compiled and validated on a worker thread, off the frame loop,
/// then queued to take over at the next frame (answer 200 with its version) or refused (422
/// with the reason; the running component stays). Both outcomes also go to the gateway's log.
/// Returns the bound address.
///
/// # Errors
/// If `listen` cannot be bound.
pub fn spawn_push_endpoint(
    listen: std::net::SocketAddr,
    token: String,
    host: std::sync::Arc<ComponentHost>,
    setup: EdgeSetup,
    model_id: u32,
    tx: CandidateSender,
) -> Result<std::net::SocketAddr> {
    use axum::routing::put;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("binding the push endpoint to {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = std::sync::Arc::new(PushState { host, setup, model_id, token, tx });
    let app = axum::Router::new()
        .route("/v1/component", put(push))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PUSH))
        .with_state(state);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => {
                    if let Err(e) = axum::serve(l, app).await {
                        tracing::error!("push endpoint stopped: {e}");
                    }
                }
                Err(e) => tracing::error!("push endpoint: {e}"),
            }
        });
    });
    Ok(addr)
}

async fn push(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<PushState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<serde_json::Value>, crate::service::ApiError> {
    use crate::service::{ApiError, bearer, constant_time_eq};
    use axum::http::StatusCode;
    match bearer(&headers) {
        Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad-token",
                "the push token is wrong",
            ));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no-token",
                "send the push token as `Authorization: Bearer <token>`",
            ));
        }
    }
    let source = format!("http push ({} bytes)", body.len());
    let worker = state.clone();
    let checked = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || {
            let expect = Some(worker.model_id).filter(|&m| m != 0);
            validate(&worker.host, &body, &worker.setup, expect, &source)
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
    };
    match checked {
        Ok(candidate) => {
            let version = candidate.instance.version().to_string();
            state.tx.send(Ok(candidate)).map_err(|_| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopped", "the gateway has stopped")
            })?;
            Ok(axum::Json(
                serde_json::json!({"accepted": version, "takes_over": "at the next frame"}),
            ))
        }
        Err(e) => {
            let reason = format!("{e:#}");
            let _ = state.tx.send(Err((source, reason.clone())));
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", reason))
        }
    }
}

/// How a gateway runs.
pub struct RunOptions {
    /// The component to start with; watched for replacements when `watch` is set.
    pub component: PathBuf,
    /// Poll the component path and take over new versions.
    pub watch: bool,
    /// Frames, in order.
    pub frames: Vec<PathBuf>,
    /// Frames per second (0 = as fast as possible).
    pub rate: f64,
    /// The edge setup.
    pub setup: EdgeSetup,
    /// Where to write payloads as `NNNNNNNN.pwir`.
    pub out: Option<PathBuf>,
    /// Where to send payloads.
    pub sink: Option<Sink>,
}

/// New components arrive here from the watcher and the HTTP push endpoint.
pub type CandidateSender =
    std::sync::mpsc::Sender<std::result::Result<Candidate, (String, String)>>;

/// Watches `path` (size and modification time, every 200 ms) and validates every new file.
pub fn spawn_watcher(
    host: std::sync::Arc<ComponentHost>,
    path: PathBuf,
    setup: EdgeSetup,
    model_id: u32,
    tx: CandidateSender,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()));
        let mut last = stamp(&path);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let now = stamp(&path);
            if now == last || now.is_none() {
                continue;
            }
            // Let a writer finish: the file must look the same twice in a row.
            std::thread::sleep(std::time::Duration::from_millis(200));
            if stamp(&path) != now {
                continue;
            }
            last = now;
            let source = path.display().to_string();
            let result = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|wasm| {
                    validate(&host, &wasm, &setup, Some(model_id).filter(|&m| m != 0), &source)
                })
                .map_err(|e| (source, format!("{e:#}")));
            if tx.send(result).is_err() {
                return;
            }
        }
    })
}

/// Runs a gateway over its frames, reporting every event to `log`. New components are taken
/// from `candidates` between frames.
///
/// # Errors
/// Only when the starting component cannot run; frame failures are events.
pub fn run(
    first: EdgeInstance,
    opts: &mut RunOptions,
    candidates: &std::sync::mpsc::Receiver<std::result::Result<Candidate, (String, String)>>,
    log: &mut dyn FnMut(&Event),
) -> Result<()> {
    let mut live = first;
    if let Some(dir) = &opts.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let period = (opts.rate > 0.0).then(|| std::time::Duration::from_secs_f64(1.0 / opts.rate));
    let start = std::time::Instant::now();
    for (n, file) in opts.frames.iter().enumerate() {
        let sequence = n as u32;
        // Between frames: take over any validated component.
        while let Ok(next) = candidates.try_recv() {
            match next {
                Ok(candidate) => {
                    log(&Event::Swapped {
                        at_sequence: sequence,
                        from: live.version().to_string(),
                        to: candidate.instance.version().to_string(),
                        source: candidate.source,
                    });
                    live = candidate.instance;
                }
                Err((source, error)) => log(&Event::Refused { source, error }),
            }
        }
        if let Some(p) = period {
            let due = start + p * n as u32;
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
        }

        let name = file.display().to_string();
        let result = (|| -> Result<Event> {
            let img = image::open(file).with_context(|| format!("reading frame {name}"))?.to_rgb8();
            let frame = live.process(img.as_raw(), img.width(), img.height(), sequence)?;
            if let Some(dir) = &opts.out {
                std::fs::write(dir.join(format!("{sequence:08}.pwir")), &frame.payload)?;
            }
            let server = match &mut opts.sink {
                Some(send) => Some(send(&frame)?),
                None => None,
            };
            Ok(Event::Frame {
                sequence,
                file: name.clone(),
                version: live.version().to_string(),
                payload_bytes: frame.payload.len(),
                resize_ms: frame.resize_ms,
                extract_ms: frame.extract_ms,
                encode_ms: frame.encode_ms,
                server,
            })
        })();
        match result {
            Ok(event) => log(&event),
            Err(e) => log(&Event::FrameFailed { sequence, file: name, error: format!("{e:#}") }),
        }
    }
    Ok(())
}
