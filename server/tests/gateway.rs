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
