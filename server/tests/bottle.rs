//! End to end on real images: MVTec AD bottle, both scenarios, against the targets.
//!
//! The published MobileNetV2 PatchCore on bottle gives 1.000 / 0.983 / 0.706 (image AUROC /
//! pixel AUROC / pixel F1, NOTES.md); these tests hold the reproduction to slightly looser
//! bounds so that a real regression fails them.

use patchwire_edge::Scenario;
use patchwire_server::backbones::{self, Backbone, BackboneConfig};
use patchwire_server::dataset::{self, FolderOptions};
use patchwire_server::eval;
use patchwire_server::patchcore::{KnnMethod, PatchCoreConfig, file};
use patchwire_server::pipeline::Pipeline;
use patchwire_server::{models_dir, shared_dir};

fn backbones() -> (Backbone, Backbone) {
    let dir = models_dir();
    let edge =
        Backbone::load(&BackboneConfig::resolve(backbones::EDGE_BACKBONE, &dir).unwrap()).unwrap();
    let server =
        Backbone::load(&BackboneConfig::resolve(backbones::DEFAULT_SERVER_BACKBONE, &dir).unwrap())
            .unwrap();
    (edge, server)
}

fn bottle() -> dataset::Dataset {
    dataset::open(
        &shared_dir().join("datasets/mvtec_ad"),
        "bottle",
        &FolderOptions::default(),
    )
    .unwrap()
}

#[test]
fn features_scenario_reaches_the_published_accuracy_and_survives_a_save() {
    let (edge, server) = backbones();
    let data = bottle();
    let pipeline = Pipeline::new(Scenario::Features, &edge, &server).unwrap();
    let trained = eval::train(
        &pipeline,
        &data.train,
        &PatchCoreConfig::default(),
        KnnMethod::Exact,
    )
    .unwrap();
    let run = eval::test(&pipeline, &trained.model, &data.test).unwrap();
    let acc = eval::accuracy(&run).unwrap();
    eprintln!("features on bottle: {acc:?}");
    assert!(acc.image_auroc >= 0.99, "{acc:?}");
    assert!(acc.pixel_auroc >= 0.97, "{acc:?}");
    assert!(acc.pixel_f1 >= 0.65, "{acc:?}");
    assert_eq!(run.payload_bytes, 382_592.0);

    // The saved model scores exactly as the trained one.
    let path = std::env::temp_dir().join(format!("pw-bottle-{}.pwcore", std::process::id()));
    file::save(&path, &trained.header, &trained.model.bank().to_owned()).unwrap();
    let loaded = eval::load(&path, &pipeline, KnnMethod::Exact).unwrap();
    let some = &data.test[..5];
    let again = eval::test(&pipeline, &loaded.model, some).unwrap();
    assert_eq!(again.scores, run.scores[..5]);

    // It refuses to serve another scenario.
    let other = Pipeline::new(Scenario::Original, &edge, &server).unwrap();
    let err = format!(
        "{:#}",
        eval::load(&path, &other, KnnMethod::Exact).err().unwrap()
    );
    assert!(err.contains("scenario features"), "{err}");
    std::fs::remove_file(path).ok();
}

#[test]
fn original_scenario_with_the_default_server_backbone_localizes_well() {
    let (edge, server) = backbones();
    let data = bottle();
    let pipeline = Pipeline::new(Scenario::Original, &edge, &server).unwrap();
    let trained = eval::train(
        &pipeline,
        &data.train,
        &PatchCoreConfig::default(),
        KnnMethod::Exact,
    )
    .unwrap();
    let run = eval::test(&pipeline, &trained.model, &data.test).unwrap();
    let acc = eval::accuracy(&run).unwrap();
    eprintln!(
        "original on bottle: {acc:?}, payload {} B",
        run.payload_bytes
    );
    assert!(acc.image_auroc >= 0.99, "{acc:?}");
    assert!(acc.pixel_f1 >= 0.70, "{acc:?}");
    // A 224x224 PNG of a photo is tens of kilobytes (the paper's "about 60 KB").
    assert!(run.payload_bytes > 20_000.0 && run.payload_bytes < 150_000.0);
}
