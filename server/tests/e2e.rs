//! End to end in real headless Chromium: `patchwire serve` with a model trained on bottle, the
//! camera page fed a fake camera (a Y4M file made from bottle test images) through Chromium's
//! `--use-file-for-fake-video-capture`, the wasm edge on every frame, heatmaps on the page,
//! and the results in SQLite. Screenshots land in `target/e2e/`.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use patchwire_server::repo_dir;
use patchwire_server::store::Store;

mod common;

/// Writes frames as a YUV4MPEG2 file (4:2:0, full-range BT.601, what Chromium's fake capture
/// reads), each image resized to `side` x `side`.
fn write_y4m(path: &Path, images: &[image::RgbImage], side: u32) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "YUV4MPEG2 W{side} H{side} F2:1 Ip A1:1 C420jpeg").unwrap();
    for img in images {
        let img = image::imageops::resize(img, side, side, image::imageops::FilterType::Triangle);
        let px = |x: u32, y: u32| {
            let p = img.get_pixel(x, y);
            (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]))
        };
        let mut y_plane = Vec::with_capacity((side * side) as usize);
        for y in 0..side {
            for x in 0..side {
                let (r, g, b) = px(x, y);
                y_plane.push((0.299 * r + 0.587 * g + 0.114 * b).round().clamp(0.0, 255.0) as u8);
            }
        }
        let (mut u_plane, mut v_plane) = (Vec::new(), Vec::new());
        for y in (0..side).step_by(2) {
            for x in (0..side).step_by(2) {
                let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (pr, pg, pb) = px(x + dx, y + dy);
                    (r, g, b) = (r + pr / 4.0, g + pg / 4.0, b + pb / 4.0);
                }
                u_plane.push(
                    (128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b).round().clamp(0.0, 255.0)
                        as u8,
                );
                v_plane.push(
                    (128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b).round().clamp(0.0, 255.0)
                        as u8,
                );
            }
        }
        out.write_all(b"FRAME\n").unwrap();
        out.write_all(&y_plane).unwrap();
        out.write_all(&u_plane).unwrap();
        out.write_all(&v_plane).unwrap();
    }
}

#[test]
fn e2e_camera_page_in_headless_chromium_inspects_frames_and_stores_them() {
    let work = std::env::temp_dir().join(format!("pw-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();

    // A model trained on real bottle images (a small bank, to keep the test short).
    let data = common::bottle();
    let model = common::features_model(&data, &work);

    // The fake camera: good and defective bottles.
    let frames: Vec<image::RgbImage> = ["good", "broken_large", "contamination", "broken_small"]
        .iter()
        .map(|k| {
            image::open(&data.test.iter().find(|s| &s.kind == k).unwrap().path).unwrap().to_rgb8()
        })
        .collect();
    let y4m = work.join("camera.y4m");
    write_y4m(&y4m, &frames, 448);

    let db = work.join("store.sqlite");
    let (guard, url) = common::serve(&model, &db, "e2e-cam");

    let shots = repo_dir().join("target/e2e");
    let out = Command::new("node")
        .arg(repo_dir().join("tests/browser/e2e.mjs"))
        .args(["--url", &url, "--frames", "3"])
        .arg("--y4m")
        .arg(&y4m)
        .arg("--shots")
        .arg(&shots)
        .output()
        .expect("node runs (scripts/setup.sh --browser installs the browser test tools)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "browser: {}{}", report, String::from_utf8_lossy(&out.stderr));
    eprintln!("browser: {report}");
    assert!(shots.join("camera.png").is_file() && shots.join("fleet.png").is_file());
    drop(guard);

    // The results landed in SQLite, with the edge's own timings and version.
    let store = Store::open(&db).unwrap();
    let rows = store.recent(Some("e2e-cam"), 100).unwrap();
    assert!(rows.len() >= 3, "{} rows stored", rows.len());
    for r in &rows {
        assert_eq!(r.scenario, "features");
        assert!(r.edge_version.starts_with("patchwire-edge"), "{}", r.edge_version);
        assert!(r.edge.extract_ms.is_some_and(|t| t > 0.0), "edge timings reported: {:?}", r.edge);
        assert!(r.payload_bytes > 380_000);
        assert!(store.map_png(r.id).unwrap().is_some_and(|png| png.len() > 100));
    }
    std::fs::remove_dir_all(work).ok();
}
