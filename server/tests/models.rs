//! The prepared models, run through tract: ImageNet top-1 on real photos, agreement with
//! onnxruntime (an independent implementation, run from `models/.venv`), and a
//! WideResNet-50-shaped export accepted as it is.

use std::path::{Path, PathBuf};
use std::process::Command;

use patchwire_edge::{InputScaling, TapModel, preprocess};
use patchwire_server::backbones::{Backbone, BackboneConfig};
use patchwire_server::{models_dir, npy, repo_dir, shared_dir};

fn photos() -> PathBuf {
    shared_dir().join("models/mobilenet_v2")
}

fn labels() -> Vec<String> {
    std::fs::read_to_string(photos().join("imagenet_labels.txt"))
        .expect("labels file")
        .lines()
        .map(str::to_string)
        .collect()
}

fn photo_input(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(photos().join(name)).unwrap();
    let img = preprocess::resize_224(&preprocess::decode_rgb(&bytes).unwrap()).unwrap();
    preprocess::to_nchw(&img, InputScaling::TF).unwrap()
}

fn model_file(file: &str) -> Vec<u8> {
    let path = models_dir().join(file);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run models/prepare.sh", path.display()))
}

/// Top-1 label of each photo; MobileNetV2 has 1001 classes with background first,
/// EfficientNet-Lite 1000 without.
fn top1(file: &str, classes_offset: usize) -> Vec<(String, String)> {
    let model = TapModel::from_onnx(&model_file(file), &["logits".to_string()]).unwrap();
    let labels = labels();
    ["parrot.jpg", "grace_hopper.bmp", "cat.bmp"]
        .iter()
        .map(|photo| {
            let logits = &model.run(&photo_input(photo)).unwrap()[0].data;
            let best = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
            (photo.to_string(), labels[best + classes_offset].clone())
        })
        .collect()
}

fn assert_imagenet_top1(file: &str, classes_offset: usize) {
    let got = top1(file, classes_offset);
    let expect = [
        ("parrot.jpg", &["macaw"][..]),
        ("grace_hopper.bmp", &["military uniform"]),
        ("cat.bmp", &["tabby", "tiger cat", "Egyptian cat"]),
    ];
    for ((photo, label), (_, ok)) in got.iter().zip(expect) {
        assert!(
            ok.iter().any(|o| label.starts_with(o)),
            "{file}: {photo} classified as {label:?}, expected one of {ok:?}"
        );
    }
}

#[test]
fn mobilenet_v2_top1_on_photos() {
    assert_imagenet_top1("mobilenet_v2.onnx", 0);
}

#[test]
fn efficientnet_lite0_top1_on_photos() {
    assert_imagenet_top1("efficientnet_lite0.onnx", 1);
}

#[test]
fn efficientnet_lite2_top1_on_photos() {
    assert_imagenet_top1("efficientnet_lite2.onnx", 1);
}

/// Runs `models/ort_run.py` on `input` and returns the named outputs.
fn onnxruntime(model: &Path, input: &[f32], outputs: &[&str], scratch: &Path) -> Vec<Vec<f32>> {
    std::fs::create_dir_all(scratch).unwrap();
    let input_path = scratch.join("input.npy");
    npy::write_f32(&input_path, &[1, 3, 224, 224], input).unwrap();
    let python = repo_dir().join("models/.venv/bin/python");
    let status = Command::new(&python)
        .arg(repo_dir().join("models/ort_run.py"))
        .arg(model)
        .arg(&input_path)
        .arg(scratch)
        .arg("--outputs")
        .arg(outputs.join(","))
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}; run models/prepare.sh", python.display()));
    assert!(status.success(), "ort_run.py failed");
    outputs.iter().map(|o| npy::read_f32(&scratch.join(format!("{o}.npy"))).unwrap().1).collect()
}

fn assert_tract_matches_onnxruntime(file: &str, taps: &[&str]) {
    let taps_owned: Vec<String> = taps.iter().map(|t| t.to_string()).collect();
    let model = TapModel::from_onnx(&model_file(file), &taps_owned).unwrap();
    let input = photo_input("parrot.jpg");
    let ours = model.run(&input).unwrap();
    let scratch = std::env::temp_dir().join(format!("pw-ort-{file}-{}", std::process::id()));
    let theirs = onnxruntime(&models_dir().join(file), &input, taps, &scratch);
    for ((tap, a), b) in taps.iter().zip(&ours).zip(&theirs) {
        assert_eq!(a.data.len(), b.len(), "{file}:{tap} sizes");
        // Relative to the tensor's own scale: elementwise relative error is meaningless for
        // activations at or near zero.
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a.data.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= 1e-4 * scale, "{file}:{tap}: max |tract - ort| = {worst}, scale {scale}");
    }
    std::fs::remove_dir_all(scratch).ok();
}

#[test]
fn mobilenet_v2_tract_matches_onnxruntime() {
    assert_tract_matches_onnxruntime(
        "mobilenet_v2.onnx",
        &["features.3", "features.8", "features.14", "logits"],
    );
}

#[test]
fn efficientnet_lite0_tract_matches_onnxruntime() {
    let taps = ["stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "logits"];
    assert_tract_matches_onnxruntime("efficientnet_lite0.onnx", &taps);
}

#[test]
fn efficientnet_lite2_tract_matches_onnxruntime() {
    let taps = ["stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "logits"];
    assert_tract_matches_onnxruntime("efficientnet_lite2.onnx", &taps);
}

#[test]
fn mobilenet_v2_taps_have_the_paper_shapes() {
    let taps: Vec<String> = ["features.3", "features.8", "features.14"].map(String::from).to_vec();
    let model = TapModel::from_onnx(&model_file("mobilenet_v2.onnx"), &taps).unwrap();
    let shapes: Vec<[usize; 3]> =
        model.run(&photo_input("cat.bmp")).unwrap().iter().map(|m| m.shape()).collect();
    assert_eq!(shapes, [[24, 56, 56], [64, 14, 14], [160, 7, 7]]);
    // 95,648 floats per image: the paper's "Raw features 382 KB" (NOTES.md).
    assert_eq!(shapes.iter().map(|s| s[0] * s[1] * s[2]).sum::<usize>(), 95_648);
}

#[test]
fn a_wide_resnet_shaped_export_is_accepted_as_it_is() {
    let dir = std::env::temp_dir().join(format!("pw-wrn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new(repo_dir().join("models/.venv/bin/python"))
        .arg(repo_dir().join("models/tiny_wrn50_like.py"))
        .arg(dir.join("wide_resnet50_2.onnx"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        dir.join("wrn50.json"),
        r#"{"name": "wrn50", "onnx": "wide_resnet50_2.onnx", "taps": ["layer1", "layer2", "layer3"],
            "scaling": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}"#,
    )
    .unwrap();

    let config =
        BackboneConfig::resolve(dir.join("wrn50.json").to_str().unwrap(), &models_dir()).unwrap();
    assert_eq!(config.scaling, InputScaling::IMAGENET);
    let backbone = Backbone::load(&config).unwrap();
    let img = preprocess::resize_224(&image::RgbImage::new(300, 200)).unwrap();
    let shapes: Vec<[usize; 3]> =
        backbone.extract(&img).unwrap().iter().map(|m| m.shape()).collect();
    assert_eq!(shapes, [[16, 56, 56], [32, 28, 28], [64, 14, 14]]);

    // A tap the export lacks is named in the error.
    let bad = BackboneConfig { taps: vec!["layer4".into()], ..config };
    let err = format!("{:#}", Backbone::load(&bad).unwrap_err());
    assert!(err.contains("layer4"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_corrupt_model_file_is_refused_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("pw-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = model_file("mobilenet_v2.onnx");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(dir.join("mobilenet_v2.onnx"), &bytes).unwrap();
    let config = BackboneConfig::resolve("mobilenet-v2", &dir).unwrap();
    let err = format!("{:#}", Backbone::load(&config).unwrap_err());
    assert!(err.contains("mobilenet") && err.contains("model error"), "{err}");

    // With the manifest beside it, the checksum names the damage before tract even parses.
    std::fs::copy(models_dir().join("manifest.json"), dir.join("manifest.json")).unwrap();
    let err = format!("{:#}", Backbone::load(&config).unwrap_err());
    assert!(err.contains("damaged"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
