//! The gateway host with the real edge component in wasmtime: it refuses a component that
//! fails validation, takes over a new one between two frames while running, drops and repeats
//! no frame, and every payload carries the version of the component that encoded it.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchwire_codec::{Scenario, wire};
use patchwire_server::dataset::{self, FolderOptions};
use patchwire_server::gateway::{self, ComponentHost, EdgeSetup, Event, RunOptions};
use patchwire_server::{repo_dir, shared_dir};

mod common;

fn component() -> Vec<u8> {
    let path = repo_dir().join("target/wasm32-wasip2/release/patchwire_edge.wasm");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()))
}

fn wait_for(events: &Mutex<Vec<Event>>, what: &str, done: impl Fn(&[Event]) -> bool) {
    let start = Instant::now();
    while !done(&events.lock().unwrap()) {
        assert!(start.elapsed() < Duration::from_secs(240), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn gateway_hot_swaps_between_frames_without_dropping_or_repeating_one() {
    let dir = std::env::temp_dir().join(format!("pw-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let live = dir.join("edge.wasm");
    let v1 = component();
    std::fs::write(&live, &v1).unwrap();
    let mut v2 = v1.clone();
    gateway::stamp(&mut v2, "patchwire-edge 0.2.0-swap").unwrap();

    let host =
        Arc::new(ComponentHost::new(Some(repo_dir().join("target/component-cache"))).unwrap());
    // Compile the new version ahead, as a deployment pipeline would (wasmtime needs seconds
    // for this module); validation still runs in the watcher thread, off the frame loop.
    host.compile(&v2).unwrap();

    let model = std::fs::read(patchwire_server::models_dir().join("mobilenet_v2.onnx")).unwrap();
    let setup = EdgeSetup {
        scenario: Scenario::Features,
        encode: Default::default(),
        model: Some(model),
        artifact: None,
    };
    let first = gateway::validate(&host, &v1, &setup, None, "start").unwrap().instance;
    assert_eq!(first.version(), "patchwire-edge 0.1.0");

    let data =
        dataset::open(&shared_dir().join("datasets/mvtec_ad"), "bottle", &FolderOptions::default())
            .unwrap();
    let frames: Vec<PathBuf> = data.test.iter().take(40).map(|s| s.path.clone()).collect();
    let out = dir.join("payloads");
    let (tx, rx) = mpsc::channel();
    let mut first = first;
    let model_id = first.model_id().unwrap();
    gateway::spawn_watcher(host.clone(), live.clone(), setup.clone(), model_id, tx);

    let events = Arc::new(Mutex::new(Vec::new()));
    let runner = {
        let events = events.clone();
        let mut opts = RunOptions {
            component: live.clone(),
            watch: true,
            frames: frames.clone(),
            rate: 4.0,
            setup,
            out: Some(out.clone()),
            sink: None,
        };
        std::thread::spawn(move || {
            gateway::run(first, &mut opts, &rx, &mut |e| events.lock().unwrap().push(e.clone()))
                .unwrap();
        })
    };

    // A broken component arrives: refused, and the frames go on.
    wait_for(&events, "frame 3", |e| {
        e.iter().filter(|e| matches!(e, Event::Frame { .. })).count() > 3
    });
    std::fs::write(&live, b"\0asm\x0d\0\x01\0 not a component").unwrap();
    wait_for(&events, "the refusal", |e| e.iter().any(|e| matches!(e, Event::Refused { .. })));
    // The new version arrives and takes over.
    std::fs::write(&live, &v2).unwrap();
    runner.join().unwrap();

    let events = events.lock().unwrap();
    let frames_seen: Vec<(u32, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Frame { sequence, version, .. } => Some((*sequence, version.clone())),
            _ => None,
        })
        .collect();
    assert!(events.iter().all(|e| !matches!(e, Event::FrameFailed { .. })), "{events:?}");
    let sequences: Vec<u32> = frames_seen.iter().map(|f| f.0).collect();
    assert_eq!(
        sequences,
        (0..frames.len() as u32).collect::<Vec<_>>(),
        "every frame exactly once, in order"
    );

    let swaps: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::Swapped { .. })).collect();
    let [Event::Swapped { at_sequence, from, to, .. }] = swaps[..] else {
        panic!("one swap expected: {events:?}")
    };
    assert_eq!((from.as_str(), to.as_str()), ("patchwire-edge 0.1.0", "patchwire-edge 0.2.0-swap"));
    assert!(*at_sequence > 3 && (*at_sequence as usize) < frames.len(), "swap at {at_sequence}");
    for (sequence, version) in &frames_seen {
        let expected = if sequence < at_sequence { from } else { to };
        assert_eq!(version, expected, "frame {sequence}");
        // The payload on disk says the same.
        let payload = std::fs::read(out.join(format!("{sequence:08}.pwir"))).unwrap();
        let (header, _) = wire::decode(&payload).unwrap();
        assert_eq!((header.sequence, &header.edge_version), (*sequence, expected));
    }
    std::fs::remove_dir_all(dir).ok();
}

/// The two binaries as an operator runs them: `patchwire serve` with a model trained on real
/// bottle images, and `patchwire gateway run --server --push-listen` feeding it frames from a
/// folder. A new component arrives by HTTP push while frames flow: a broken one and one with
/// a bad token are refused, a good one takes over between two frames; every frame reaches the
/// server exactly once, and the store records which component version encoded each.
#[test]
fn gateway_sends_payloads_to_the_server_and_takes_a_pushed_component() {
    use common::Guard;
    use patchwire_server::store::Store;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let work = std::env::temp_dir().join(format!("pw-gateway-push-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let model = common::features_model(&common::bottle(), &work);
    let db = work.join("store.sqlite");
    let (_server, page) = common::serve(&model, &db, "gw-1");
    let (base, token) = page.split_once("/?device=gw-1&token=").unwrap();

    // The new version, compiled into the shared cache ahead, as a deployment pipeline would.
    let component_path = repo_dir().join("target/wasm32-wasip2/release/patchwire_edge.wasm");
    let cache = repo_dir().join("target/component-cache");
    let mut v2 = component();
    gateway::stamp(&mut v2, "patchwire-edge 0.3.0-push").unwrap();
    ComponentHost::new(Some(cache.clone())).unwrap().compile(&v2).unwrap();

    let frames_dir = shared_dir().join("datasets/mvtec_ad/bottle/train/good");
    // At 2 frames per second this leaves seconds for validating the pushed component.
    let count = 24;
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchwire"))
        .args(["gateway", "run", "--rate", "2", "--push-listen", "127.0.0.1:0"])
        .args(["--push-token", "push-secret", "--count", &count.to_string()])
        .args(["--server", base, "--token", token])
        .arg("--component")
        .arg(&component_path)
        .arg("--model")
        .arg(&model)
        .arg("--frames")
        .arg(&frames_dir)
        .arg("--cache")
        .arg(&cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut gateway_proc = Guard(child);
    let push_url = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_once("push endpoint: PUT ")
                .map(|(_, rest)| rest.split_whitespace().next().unwrap().to_string())
        })
        .expect("the gateway prints its push endpoint");

    let events = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let events = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event: Event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("gateway log line is not an event ({e}): {line}"));
                events.lock().unwrap().push(event);
            }
        })
    };
    wait_for(&events, "frame 2", |e| {
        e.iter().filter(|e| matches!(e, Event::Frame { .. })).count() > 2
    });

    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let push = |token: &str, body: &[u8]| {
        let mut res = agent
            .put(&push_url)
            .header("authorization", &format!("Bearer {token}"))
            .send(body)
            .unwrap();
        let status = res.status().as_u16();
        let body: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        (status, body)
    };
    let (status, body) = push("wrong", &v2);
    assert_eq!((status, body["error"]["kind"].as_str()), (401, Some("bad-token")), "{body}");
    let (status, body) = push("push-secret", b"\0asm\x0d\0\x01\0 not a component");
    assert_eq!((status, body["error"]["kind"].as_str()), (422, Some("refused")), "{body}");
    let (status, body) = push("push-secret", &v2);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], "patchwire-edge 0.3.0-push");

    assert!(gateway_proc.0.wait().unwrap().success());
    reader.join().unwrap();
    let events = events.lock().unwrap();
    assert!(events.iter().all(|e| !matches!(e, Event::FrameFailed { .. })), "{events:?}");
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Refused { .. })).count(), 1);
    let swaps: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::Swapped { .. })).collect();
    let [Event::Swapped { at_sequence, to, .. }] = swaps[..] else {
        panic!("one swap expected: {events:?}")
    };
    assert_eq!(to, "patchwire-edge 0.3.0-push");
    assert!(*at_sequence > 2 && *at_sequence < count, "swap at {at_sequence}");
    let mut sent = Vec::new();
    for e in events.iter() {
        if let Event::Frame { sequence, version, server, .. } = e {
            let answer = server.as_ref().expect("every frame was sent");
            assert_eq!(answer["edge_version"], version.as_str(), "{answer}");
            assert!(answer["score"].as_f64().unwrap() > 0.0, "{answer}");
            sent.push(*sequence);
        }
    }
    assert_eq!(sent, (0..count).collect::<Vec<_>>(), "every frame exactly once, in order");

    // The store agrees: one row per frame, with the version that encoded it.
    let mut rows = Store::open(&db).unwrap().recent(Some("gw-1"), 100).unwrap();
    rows.sort_by_key(|r| r.sequence);
    assert_eq!(rows.len(), count as usize);
    for r in &rows {
        let expected = if r.sequence < *at_sequence { "patchwire-edge 0.1.0" } else { to.as_str() };
        assert_eq!(r.edge_version, expected, "row for frame {}", r.sequence);
        assert!(r.edge.extract_ms.is_some_and(|ms| ms > 0.0), "edge timings stored");
    }
    std::fs::remove_dir_all(work).ok();
}
