//! `patchwire serve`: the inspection service.
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `GET /fleet` | the camera page and the fleet view (`www/`) |
//! | `GET /pkg/*`, `GET /static/*` | the browser edge module and page assets |
//! | `GET /v1/models` | the models served: scenario, ids, threshold |
//! | `GET /v1/models/edge` | the edge model (MobileNetV2 ONNX) |
//! | `GET /v1/artifacts/{scenario}` | the artifact an edge encodes that scenario with |
//! | `POST /v1/devices` | register a device (admin token); returns its token once |
//! | `DELETE /v1/devices/{name}` | revoke a device's token (admin token) |
//! | `POST /v1/inspect` | a payload from a device (device token): score, verdict, timings, map |
//! | `GET /v1/results` | the latest results (`?device=&limit=`) |
//! | `GET /v1/results/{id}/map.png` | a result's heatmap |
//! | `GET /v1/fleet` | per-device latency and payload percentiles, with series |
//! | `GET /health`, `GET /metrics` | liveness, and Prometheus text metrics |
//!
//! Every error is a 4xx or 5xx with `{"error": {"kind": ..., "message": ...}}` naming the
//! problem. The CPU work of an inspection runs on the blocking pool, never on the event loop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use patchwire_codec::{CodecError, Scenario, WireError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backbones::Backbone;
use crate::patchcore::{PatchCore, embed};
use crate::pipeline::Pipeline;
use crate::store::{EdgeTimes, Inspection, ServerTimes, Store};

/// Largest payload accepted: a raw-features payload is 383 KB; 4 MiB leaves room for the
/// image scenarios at any quality.
pub const MAX_BODY: usize = 4 << 20;

/// One served model.
pub struct Served {
    /// Its pipeline (backbones, artifact, what payloads it accepts).
    pub pipeline: Pipeline<'static>,
    /// The memory bank.
    pub model: PatchCore,
    /// Threshold of the verdict.
    pub threshold: f32,
    /// The artifact file, for edges.
    pub artifact: Option<Vec<u8>>,
    /// What it was trained on, for people reading `/v1/models`.
    pub trained_on: String,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    inspections: BTreeMap<(Scenario, &'static str), AtomicU64>,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
    server_ms_total: AtomicU64,
}

impl Metrics {
    /// Counters for these scenarios.
    pub fn default_for(scenarios: impl Iterator<Item = Scenario>) -> Metrics {
        let mut inspections = BTreeMap::new();
        for s in scenarios {
            for verdict in ["good", "defective"] {
                inspections.insert((s, verdict), AtomicU64::new(0));
            }
        }
        Metrics { inspections, ..Metrics::default() }
    }

    fn error(&self, kind: &str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_string())
            .or_default() += 1;
    }
}

/// Everything the handlers share.
pub struct AppState {
    /// Models by scenario.
    pub models: BTreeMap<Scenario, Served>,
    /// The edge model's ONNX bytes.
    pub edge_model: Vec<u8>,
    /// The result store.
    pub store: Store,
    /// Token for device administration.
    pub admin_token: String,
    /// The page folder.
    pub www: PathBuf,
    /// Counters.
    pub metrics: Metrics,
}

/// An error response: a status and a JSON body naming the problem.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError { status, kind, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"kind": self.kind, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("{e:#}"))
    }
}

/// How a payload's problem maps to a status and kind.
fn payload_error(e: &anyhow::Error) -> ApiError {
    let message = format!("{e:#}");
    let Some(codec) = e.downcast_ref::<CodecError>() else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message);
    };
    let (status, kind) = match codec {
        CodecError::Wire(w) => match w {
            WireError::Magic { .. } => (StatusCode::BAD_REQUEST, "bad-magic"),
            WireError::Version { .. } => (StatusCode::BAD_REQUEST, "unsupported-version"),
            WireError::UnknownScenario { .. } => (StatusCode::BAD_REQUEST, "unknown-scenario"),
            WireError::Checksum { .. } => (StatusCode::BAD_REQUEST, "checksum"),
            WireError::Truncated { .. } | WireError::Trailing { .. } => {
                (StatusCode::BAD_REQUEST, "bad-length")
            }
            WireError::ArtifactMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "artifact-mismatch")
            }
            WireError::ModelMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "model-mismatch"),
            WireError::ShapeMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "shape-mismatch"),
            WireError::ScenarioMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "scenario-mismatch")
            }
            _ => (StatusCode::BAD_REQUEST, "malformed-payload"),
        },
        CodecError::Body { .. } | CodecError::Image(_) | CodecError::Size(_) => {
            (StatusCode::BAD_REQUEST, "malformed-body")
        }
        _ => (StatusCode::BAD_REQUEST, "malformed-payload"),
    };
    ApiError::new(status, kind, message)
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(t) if constant_time_eq(t.as_bytes(), state.admin_token.as_bytes()) => Ok(()),
        Some(_) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad-token", "the admin token is wrong"))
        }
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no-token",
            "send the admin token as `Authorization: Bearer <token>`",
        )),
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses the edge's own timings header `x-patchwire-edge-ms: resize,extract,encode[,tx]`.
fn edge_times(headers: &HeaderMap) -> Result<EdgeTimes, ApiError> {
    let Some(v) = headers.get("x-patchwire-edge-ms") else { return Ok(EdgeTimes::default()) };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-edge-timings",
            "x-patchwire-edge-ms must be `resize,extract,encode[,tx]` in milliseconds",
        )
    };
    let text = v.to_str().map_err(|_| bad())?;
    let values: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if !(3..=4).contains(&values.len()) || values.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(bad());
    }
    Ok(EdgeTimes {
        resize_ms: Some(values[0]),
        extract_ms: Some(values[1]),
        encode_ms: Some(values[2]),
        tx_ms: values.get(3).copied(),
    })
}

/// The result of `POST /v1/inspect`.
#[derive(Serialize)]
struct InspectResponse {
    id: i64,
    device: String,
    scenario: String,
    sequence: u32,
    edge_version: String,
    payload_bytes: usize,
    score: f32,
    threshold: f32,
    verdict: &'static str,
    server_ms: ServerTimes,
    map: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    map_png_base64: Option<String>,
}

#[derive(Deserialize)]
struct InspectQuery {
    #[serde(default)]
    inline_map: bool,
}

/// What the CPU half of an inspection hands back to the async half.
struct Scored {
    scenario: Scenario,
    header: patchwire_codec::Header,
    server: ServerTimes,
    score: f32,
    png: Vec<u8>,
    threshold: f32,
}

/// The CPU half of an inspection, on the blocking pool.
fn score_payload(state: &AppState, payload: &[u8]) -> Result<Scored, ApiError> {
    let start = std::time::Instant::now();
    // The scenario byte picks the model; everything else is checked by decode_payload.
    let (header, _) = patchwire_codec::wire::decode(payload)
        .map_err(|e| payload_error(&anyhow::Error::from(CodecError::from(e))))?;
    let served = state.models.get(&header.scenario).ok_or_else(|| {
        let known: Vec<&str> = state.models.keys().map(|s| s.name()).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no-model",
            format!("no model serves scenario {}; this server serves {known:?}", header.scenario),
        )
    })?;
    let out = served.pipeline.serve(payload).map_err(|e| payload_error(&e))?;
    let (scored, score_ms) = crate::pipeline::timed(|| {
        let embedded = embed::embed_with(&out.features, out.pooling);
        if embedded.ncols() != served.model.bank().ncols() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "shape-mismatch",
                "features do not fit the memory bank",
            ));
        }
        Ok(served.model.score(embedded.view()))
    });
    let scored = scored?;
    let png = crate::heatmap::png(&scored.map, served.threshold).map_err(ApiError::from)?;
    let times = ServerTimes {
        decode_ms: out.decode_ms,
        extract_ms: out.extract_ms,
        score_ms,
        total_ms: start.elapsed().as_secs_f64() * 1e3,
    };
    Ok(Scored {
        scenario: header.scenario,
        header: out.header,
        server: times,
        score: scored.image_score,
        png,
        threshold: served.threshold,
    })
}

async fn inspect(
    State(state): State<Arc<AppState>>,
    Query(query): Query<InspectQuery>,
    headers: HeaderMap,
    request: Request,
) -> Result<axum::Json<InspectResponse>, ApiError> {
    let result = inspect_inner(&state, query, &headers, request).await;
    if let Err(e) = &result {
        state.metrics.error(e.kind);
        tracing::info!(kind = e.kind, status = e.status.as_u16(), "inspect refused: {}", e.message);
    }
    result
}

async fn inspect_inner(
    state: &Arc<AppState>,
    query: InspectQuery,
    headers: &HeaderMap,
    request: Request,
) -> Result<axum::Json<InspectResponse>, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no-token",
            "send the device token as `Authorization: Bearer <token>`",
        )
    })?;
    let device = state.store.authenticate(token)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad-token",
            "the device token is unknown or revoked",
        )
    })?;
    let edge = edge_times(headers)?;
    let payload: Bytes =
        axum::body::to_bytes(request.into_body(), MAX_BODY).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("payloads are limited to {MAX_BODY} bytes"),
            )
        })?;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());

    let worker = state.clone();
    let bytes = payload.clone();
    let Scored { scenario, header, server, score, png, threshold } =
        tokio::task::spawn_blocking(move || score_payload(&worker, &bytes)).await.map_err(
            |e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        )??;

    let verdict = if score > threshold { "defective" } else { "good" };
    let row = Inspection {
        id: 0,
        time,
        device: device.name.clone(),
        scenario: scenario.to_string(),
        edge_version: header.edge_version.clone(),
        sequence: header.sequence,
        payload_bytes: payload.len(),
        edge,
        server,
        score,
        threshold,
        verdict: verdict.to_string(),
    };
    let id = state.store.insert(&row, &png)?;
    if let Some(c) = state.metrics.inspections.get(&(scenario, verdict)) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    state.metrics.server_ms_total.fetch_add((server.total_ms * 1000.0) as u64, Ordering::Relaxed);
    tracing::info!(device = %device.name, %scenario, sequence = header.sequence, score, verdict, total_ms = server.total_ms, "inspected");
    Ok(axum::Json(InspectResponse {
        id,
        device: device.name,
        scenario: scenario.to_string(),
        sequence: header.sequence,
        edge_version: header.edge_version,
        payload_bytes: payload.len(),
        score,
        threshold,
        verdict,
        server_ms: server,
        map: format!("/v1/results/{id}/map.png"),
        map_png_base64: query.inline_map.then(|| crate::heatmap::base64(&png)),
    }))
}

#[derive(Deserialize)]
struct NewDevice {
    name: String,
}

async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let req: NewDevice = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("expected {{\"name\": ...}}: {e}"),
        )
    })?;
    let token = state
        .store
        .register(&req.name)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-device", format!("{e:#}")))?;
    Ok((StatusCode::CREATED, axum::Json(json!({"name": req.name, "token": token}))).into_response())
}

async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    if !state.store.revoke(&name)? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown-device",
            format!("no device named {name:?}"),
        ));
    }
    Ok(axum::Json(json!({"name": name, "revoked": true})).into_response())
}

async fn models(State(state): State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    let list: Vec<serde_json::Value> = state
        .models
        .iter()
        .map(|(s, m)| {
            let e = m.pipeline.expected();
            json!({
                "scenario": s.name(),
                "trained_on": m.trained_on,
                "edge_model_id": e.model_id,
                "artifact_id": e.artifact_id,
                "artifact": m.artifact.as_ref().map(|_| format!("/v1/artifacts/{}", s.name())),
                "shapes": e.shapes,
                "threshold": m.threshold,
                "encode": m.pipeline.encode_params(),
                "bank_rows": m.model.bank().nrows(),
            })
        })
        .collect();
    axum::Json(json!({"models": list, "edge_model": "/v1/models/edge"}))
}

fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

async fn edge_model(State(state): State<Arc<AppState>>) -> Response {
    octets(state.edge_model.clone())
}

async fn artifact(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    let scenario: Scenario = name.parse().map_err(|e: CodecError| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown-scenario", e.to_string())
    })?;
    let served = state.models.get(&scenario).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no-model",
            format!("no model serves scenario {scenario}"),
        )
    })?;
    let bytes = served.artifact.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no-artifact",
            format!("scenario {scenario} needs no artifact"),
        )
    })?;
    Ok(octets(bytes))
}

#[derive(Deserialize)]
struct ResultsQuery {
    device: Option<String>,
    limit: Option<usize>,
}

async fn results(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ResultsQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let rows = state.store.recent(q.device.as_deref(), q.limit.unwrap_or(50))?;
    Ok(axum::Json(json!({"results": rows})))
}

async fn map_png(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<i64>,
) -> Result<Response, ApiError> {
    let png = state.store.map_png(id)?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown-result", format!("no result {id}"))
    })?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

async fn fleet(
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(json!({"devices": state.store.fleet(500)?})))
}

async fn health(
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let stored = state.store.count()?;
    let scenarios: Vec<&str> = state.models.keys().map(|s| s.name()).collect();
    Ok(axum::Json(json!({"status": "ok", "scenarios": scenarios, "inspections": stored})))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    use std::fmt::Write;
    let m = &state.metrics;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP patchwire_inspections_total Payloads scored, by scenario and verdict."
    );
    let _ = writeln!(out, "# TYPE patchwire_inspections_total counter");
    for ((s, v), c) in &m.inspections {
        let _ = writeln!(
            out,
            "patchwire_inspections_total{{scenario=\"{s}\",verdict=\"{v}\"}} {}",
            c.load(Ordering::Relaxed)
        );
    }
    let _ =
        writeln!(out, "# HELP patchwire_inspect_errors_total Refused inspect requests, by kind.");
    let _ = writeln!(out, "# TYPE patchwire_inspect_errors_total counter");
    for (kind, n) in m.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "patchwire_inspect_errors_total{{kind=\"{kind}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP patchwire_server_seconds_total Server time spent on scored payloads."
    );
    let _ = writeln!(out, "# TYPE patchwire_server_seconds_total counter");
    let _ = writeln!(
        out,
        "patchwire_server_seconds_total {}",
        m.server_ms_total.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "# HELP patchwire_stored_inspections Inspections in the store.");
    let _ = writeln!(out, "# TYPE patchwire_stored_inspections gauge");
    let _ = writeln!(out, "patchwire_stored_inspections {}", state.store.count()?);
    let _ = writeln!(out, "# HELP patchwire_devices Registered devices.");
    let _ = writeln!(out, "# TYPE patchwire_devices gauge");
    let _ = writeln!(out, "patchwire_devices {}", state.store.devices()?.len());
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], out)
        .into_response())
}

/// Serves a file under `www/` (no `..`), with its content type.
async fn file(state: &AppState, rel: &str) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("no file {rel}"));
    if rel.split('/').any(|p| p == ".." || p.is_empty()) {
        return Err(not_found());
    }
    let path = state.www.join(rel);
    let bytes = tokio::fs::read(&path).await.map_err(|_| not_found())?;
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, kind)], Body::from(bytes)).into_response())
}

async fn page(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    file(&state, "index.html").await
}

async fn fleet_page(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    file(&state, "fleet.html").await
}

async fn pkg(
    State(state): State<Arc<AppState>>,
    UrlPath(rest): UrlPath<String>,
) -> Result<Response, ApiError> {
    file(&state, &format!("pkg/{rest}")).await
}

async fn asset(
    State(state): State<Arc<AppState>>,
    UrlPath(rest): UrlPath<String>,
) -> Result<Response, ApiError> {
    file(&state, &format!("static/{rest}")).await
}

async fn fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route; see GET /v1/models")
}

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/fleet", get(fleet_page))
        .route("/pkg/{*rest}", get(pkg))
        .route("/static/{*rest}", get(asset))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/models/edge", get(edge_model))
        .route("/v1/artifacts/{scenario}", get(artifact))
        .route("/v1/devices", post(register))
        .route("/v1/devices/{name}", delete(revoke))
        .route("/v1/inspect", post(inspect))
        .route("/v1/results", get(results))
        .route("/v1/results/{id}/map.png", get(map_png))
        .route("/v1/fleet", get(fleet))
        .fallback(fallback)
        // The inspect handler enforces its own limit with a JSON error.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Loads models for serving: each file's scenario, its pipeline built with the file's artifact
/// and encoder settings, and its threshold (`threshold` overrides every file's).
///
/// Backbones live for the whole process, so they are leaked once here.
///
/// # Errors
/// A damaged model, two models for one scenario, or a model with no threshold when none is
/// given.
pub fn load_models(
    paths: &[PathBuf],
    edge: &'static Backbone,
    server: &'static Backbone,
    threshold: Option<f32>,
    knn: crate::patchcore::KnnMethod,
) -> Result<BTreeMap<Scenario, Served>> {
    let mut out = BTreeMap::new();
    for path in paths {
        let file = crate::eval::read_model(path)?;
        let scenario = file.header.scenario;
        if out.contains_key(&scenario) {
            anyhow::bail!("two models for scenario {scenario} ({})", path.display());
        }
        let pipeline =
            Pipeline::new(scenario, edge, server, file.header.encode, file.artifact.clone())?;
        let trained_on = format!("{} good images", file.header.train_images);
        let artifact = file.artifact.as_ref().map(patchwire_codec::Artifact::to_bytes);
        let thr = threshold.or(file.header.threshold).with_context(|| {
            format!("{} has no calibrated threshold (train it with `patchwire train`) and none was given with --threshold", path.display())
        })?;
        let trained = crate::eval::load(path, file, &pipeline, knn)?;
        out.insert(
            scenario,
            Served { pipeline, model: trained.model, threshold: thr, artifact, trained_on },
        );
    }
    Ok(out)
}

/// Binds `listen` and serves until the process ends; `ready` gets the bound address.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    state: Arc<AppState>,
    listen: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    ready(listener.local_addr()?);
    axum::serve(listener, router(state)).await.context("serving")
}
