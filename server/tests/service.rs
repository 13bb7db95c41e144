//! The inspection service over real HTTP, with models trained on real bottle images: the
//! happy path, device tokens, and every kind of bad input, which must get a 4xx with a JSON
//! error naming the problem and leave every stored row in place.

use std::sync::Arc;

use patchwire_codec::artifact::{Artifact, ArtifactParams};
use patchwire_codec::body::{EncodeParams, Encoder};
use patchwire_codec::{Scenario, wire};
use patchwire_edge::{EdgeConfig, EdgeStage, stage::VERSION};
use patchwire_server::backbones::{self, Backbone, BackboneConfig};
use patchwire_server::dataset::{self, FolderOptions, Sample};
use patchwire_server::patchcore::file;
use patchwire_server::patchcore::{CoresetSize, KnnMethod, PatchCoreConfig};
use patchwire_server::pipeline::Pipeline;
use patchwire_server::service::{self, AppState};
use patchwire_server::store::Store;
use patchwire_server::{eval, models_dir, repo_dir, shared_dir};

struct Server {
    base: String,
    admin: String,
    token: String,
    db: std::path::PathBuf,
    rs_artifact: Artifact,
    test: Vec<Sample>,
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// Trains `features` and `rs` models on 40 bottle training images and serves them.
fn start() -> Server {
    let dir = models_dir();
    let edge: &'static Backbone = leak(
        Backbone::load(&BackboneConfig::resolve(backbones::EDGE_BACKBONE, &dir).unwrap()).unwrap(),
    );
    let server: &'static Backbone = leak(
        Backbone::load(&BackboneConfig::resolve(backbones::DEFAULT_SERVER_BACKBONE, &dir).unwrap())
            .unwrap(),
    );
    let data =
        dataset::open(&shared_dir().join("datasets/mvtec_ad"), "bottle", &FolderOptions::default())
            .unwrap();
    let train = &data.train[..40];
    let work = std::env::temp_dir().join(format!("pw-service-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let config = PatchCoreConfig { coreset: CoresetSize::Count(2000), ..Default::default() };
    let mut paths = Vec::new();
    let mut rs_artifact = None;
    for scenario in [Scenario::Features, Scenario::Rs] {
        let artifact =
            eval::train_artifact(scenario, edge, train, &ArtifactParams::default()).unwrap();
        if scenario == Scenario::Rs {
            rs_artifact = artifact.clone();
        }
        let pipeline =
            Pipeline::new(scenario, edge, server, EncodeParams::default(), artifact).unwrap();
        let trained =
            eval::train_calibrated(&pipeline, train, &config, KnnMethod::Exact, 0.1, 1.0).unwrap();
        assert!(trained.header.threshold.is_some());
        let path = work.join(format!("{scenario}.pwcore"));
        file::save(&path, &trained.to_file()).unwrap();
        paths.push(path);
    }
    let models = service::load_models(&paths, edge, server, None, KnnMethod::Exact).unwrap();
    let db = work.join("store.sqlite");
    let store = Store::open(&db).unwrap();
    let token = store.register("cam-1").unwrap();
    let edge_model = std::fs::read(dir.join("mobilenet_v2.onnx")).unwrap();
    let metrics = service::Metrics::default_for(models.keys().copied());
    let state = Arc::new(AppState {
        models,
        edge_model,
        store,
        admin_token: "admin-secret".into(),
        www: repo_dir().join("www"),
        metrics,
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(service::serve(state, "127.0.0.1:0".parse().unwrap(), |a| tx.send(a).unwrap()))
            .unwrap();
    });
    let addr = rx.recv().unwrap();
    Server {
        base: format!("http://{addr}"),
        admin: "admin-secret".into(),
        token,
        db,
        rs_artifact: rs_artifact.unwrap(),
        test: data.test,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// Status and JSON body of a POST.
fn post(url: &str, token: Option<&str>, body: &[u8]) -> (u16, serde_json::Value) {
    let mut req = agent().post(url).header("content-type", "application/octet-stream");
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    let mut res = req.send(body).unwrap();
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

fn get(url: &str) -> (u16, String) {
    let (status, bytes) = get_bytes(url);
    (status, String::from_utf8(bytes).unwrap())
}

fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let mut res = agent().get(url).call().unwrap();
    (res.status().as_u16(), res.body_mut().read_to_vec().unwrap())
}

fn payload(s: &Server, scenario: Scenario, artifact: Option<Artifact>, sample: &Sample) -> Vec<u8> {
    let model = std::fs::read(models_dir().join("mobilenet_v2.onnx")).unwrap();
    let config = EdgeConfig { scenario, ..EdgeConfig::default() };
    let mut stage =
        EdgeStage::new(&config, Some(&model), artifact.map(|a| a.to_bytes()).as_deref()).unwrap();
    let _ = s;
    stage.process_rgb(&image::open(&sample.path).unwrap().to_rgb8()).unwrap().payload
}

fn error_kind(v: &serde_json::Value) -> &str {
    v["error"]["kind"].as_str().unwrap_or_else(|| panic!("no error kind in {v}"))
}

#[test]
fn service_scores_real_payloads_and_refuses_bad_ones_without_losing_rows() {
    let s = start();
    let inspect = format!("{}/v1/inspect", s.base);

    // A defective and a good bottle, from a real edge.
    let defect = s.test.iter().find(|x| x.anomalous).unwrap();
    let good = s.test.iter().find(|x| !x.anomalous).unwrap();
    let (status, body) = post(
        &format!("{inspect}?inline_map=true"),
        Some(&s.token),
        &payload(&s, Scenario::Features, None, defect),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scenario"], "features");
    assert_eq!(body["edge_version"], VERSION);
    assert_eq!(body["verdict"], "defective", "{body}");
    assert!(body["map_png_base64"].as_str().unwrap().len() > 100);
    let (status, map) = get_bytes(&format!("{}{}", s.base, body["map"].as_str().unwrap()));
    assert_eq!(status, 200);
    assert_eq!(image::load_from_memory(&map).unwrap().width(), 224);
    let (status, body) = post(
        &inspect,
        Some(&s.token),
        &payload(&s, Scenario::Rs, Some(s.rs_artifact.clone()), good),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "good", "{body}");
    let stored = Store::open(&s.db).unwrap().count().unwrap();
    assert_eq!(stored, 2);

    // Bad input, each named.
    let valid = payload(&s, Scenario::Features, None, good);
    let mut bad_magic = valid.clone();
    bad_magic[0] = b'X';
    let mut bad_version = valid.clone();
    bad_version[4] = 9;
    let mut corrupt = valid.clone();
    corrupt[100] ^= 0xff;
    let reseal = |mut b: Vec<u8>| {
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        b
    };
    let mut unknown_code = valid.clone();
    unknown_code[5] = 250;
    // A real rs payload, encoded with another channel subset (another seed) than the server's.
    let data_maps = vec![vec![
        patchwire_codec::FeatureMap::new(24, 56, 56, vec![0.0; 24 * 56 * 56]).unwrap(),
        patchwire_codec::FeatureMap::new(64, 14, 14, vec![0.0; 64 * 196]).unwrap(),
        patchwire_codec::FeatureMap::new(160, 7, 7, vec![0.0; 160 * 49]).unwrap(),
    ]];
    let other_subset = Artifact::train(
        Scenario::Rs,
        s.rs_artifact.model_id,
        &data_maps,
        &ArtifactParams { seed: 99, ..Default::default() },
    )
    .unwrap();
    let wrong_codebook = payload(&s, Scenario::Rs, Some(other_subset), good);
    // A webp payload: no model serves it here.
    let webp = {
        let img =
            patchwire_edge::preprocess::resize_224(&image::open(&good.path).unwrap().to_rgb8())
                .unwrap();
        Encoder::new(Scenario::Webp, 0, None, EncodeParams::default(), "test")
            .unwrap()
            .encode(0, &img, None)
            .unwrap()
    };
    // Right scenario and ids, wrong shapes.
    let (h, body_bytes) = wire::decode(&valid).unwrap();
    let wrong_shape = wire::encode(
        &wire::Header { shapes: vec![[24, 56, 56]], ..h },
        &body_bytes[..24 * 56 * 56 * 4],
    )
    .unwrap();

    // (what, token, body, expected status, expected error kind)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("no token", None, valid.clone(), 401, "no-token"),
        ("bad token", Some("deadbeef"), valid.clone(), 401, "bad-token"),
        ("wrong magic", Some(&s.token), bad_magic, 400, "bad-magic"),
        ("wrong version", Some(&s.token), bad_version, 400, "unsupported-version"),
        ("corrupt body", Some(&s.token), corrupt, 400, "checksum"),
        ("unknown scenario", Some(&s.token), reseal(unknown_code), 400, "unknown-scenario"),
        ("codebook mismatch", Some(&s.token), wrong_codebook, 422, "artifact-mismatch"),
        ("wrong shape", Some(&s.token), wrong_shape, 422, "shape-mismatch"),
        ("scenario not served", Some(&s.token), webp, 404, "no-model"),
        ("truncated", Some(&s.token), valid[..valid.len() / 2].to_vec(), 400, "bad-length"),
        ("empty", Some(&s.token), Vec::new(), 400, "bad-length"),
        ("oversize", Some(&s.token), vec![0u8; service::MAX_BODY + 1], 413, "too-large"),
    ];
    for (what, token, bytes, status, kind) in cases {
        let (got, body) = post(&inspect, token, &bytes);
        assert_eq!((got, error_kind(&body)), (status, kind), "{what}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 5, "{what}: {body}");
    }
    // Garbage edge timings are named too.
    let res = agent()
        .post(&inspect)
        .header("authorization", &format!("Bearer {}", s.token))
        .header("x-patchwire-edge-ms", "fast")
        .send(&valid[..])
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);

    // Revocation.
    let register = agent()
        .post(&format!("{}/v1/devices", s.base))
        .header("authorization", &format!("Bearer {}", s.admin))
        .send(r#"{"name": "cam-2"}"#)
        .unwrap();
    assert_eq!(register.status().as_u16(), 201);
    let token2: serde_json::Value =
        serde_json::from_str(&register.into_body().read_to_string().unwrap()).unwrap();
    let token2 = token2["token"].as_str().unwrap().to_string();
    assert_eq!(post(&inspect, Some(&token2), &valid).0, 200);
    let revoke = agent()
        .delete(&format!("{}/v1/devices/cam-2", s.base))
        .header("authorization", &format!("Bearer {}", s.admin))
        .call()
        .unwrap();
    assert_eq!(revoke.status().as_u16(), 200);
    let (status, body) = post(&inspect, Some(&token2), &valid);
    assert_eq!((status, error_kind(&body)), (401, "bad-token"));
    let no_admin =
        agent().post(&format!("{}/v1/devices", s.base)).send(r#"{"name": "x"}"#).unwrap();
    assert_eq!(no_admin.status().as_u16(), 401);

    // Nothing stored was lost, only the good requests were added; the service is alive.
    let store = Store::open(&s.db).unwrap();
    assert_eq!(store.count().unwrap(), stored + 1);
    let rows = store.recent(None, 10).unwrap();
    assert!(rows.iter().any(|r| r.device == "cam-1" && r.verdict == "defective"));
    let (status, health) = get(&format!("{}/health", s.base));
    assert_eq!(status, 200, "{health}");
    let (_, metrics) = get(&format!("{}/metrics", s.base));
    assert!(
        metrics
            .contains("patchwire_inspections_total{scenario=\"features\",verdict=\"defective\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("patchwire_inspect_errors_total{kind=\"bad-magic\"} 1"), "{metrics}");
    let (status, fleet) = get(&format!("{}/v1/fleet", s.base));
    assert_eq!(status, 200);
    assert!(fleet.contains("cam-1"));
    // Edges fetch the artifact the server encodes with.
    let (status, bytes) = get_bytes(&format!("{}/v1/artifacts/rs", s.base));
    assert_eq!(status, 200);
    assert_eq!(Artifact::from_bytes(&bytes).unwrap().id(), s.rs_artifact.id());
    let (status, _) = get_bytes(&format!("{}/v1/artifacts/features", s.base));
    assert_eq!(status, 404);
}
