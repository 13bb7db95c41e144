//! What the tests that run the `patchwire` binary share: a small model trained on real bottle
//! images, and `patchwire serve` as a child process.
// Each test crate that includes this module uses its own subset of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use patchwire_codec::Scenario;
use patchwire_codec::body::EncodeParams;
use patchwire_server::backbones::{self, Backbone, BackboneConfig};
use patchwire_server::dataset::{self, Dataset, FolderOptions};
use patchwire_server::patchcore::{CoresetSize, KnnMethod, PatchCoreConfig, file};
use patchwire_server::pipeline::Pipeline;
use patchwire_server::{eval, models_dir, shared_dir};

/// Kills a child process when the test ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// MVTec AD bottle from `shared/`.
pub fn bottle() -> Dataset {
    dataset::open(&shared_dir().join("datasets/mvtec_ad"), "bottle", &FolderOptions::default())
        .unwrap()
}

/// A calibrated `features` model on 40 bottle training images with a 2,000-row bank (small, to
/// keep the tests short), saved as `dir/features.pwcore`.
pub fn features_model(data: &Dataset, dir: &Path) -> PathBuf {
    let edge =
        Backbone::load(&BackboneConfig::resolve(backbones::EDGE_BACKBONE, &models_dir()).unwrap())
            .unwrap();
    // `features` never runs the server backbone.
    let pipeline =
        Pipeline::new(Scenario::Features, &edge, &edge, EncodeParams::default(), None).unwrap();
    let config = PatchCoreConfig { coreset: CoresetSize::Count(2000), ..Default::default() };
    let trained =
        eval::train_calibrated(&pipeline, &data.train[..40], &config, KnnMethod::Exact, 0.1, 1.0)
            .unwrap();
    let model = dir.join("features.pwcore");
    file::save(&model, &trained.to_file()).unwrap();
    model
}

/// Starts `patchwire serve` on a free port with one model, a store at `db` and a registered
/// `device`; returns the process and the device's camera-page URL as printed.
pub fn serve(model: &Path, db: &Path, device: &str) -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchwire"))
        .args(["serve", "--listen", "127.0.0.1:0", "--device", device])
        .arg("--model")
        .arg(model)
        .arg("--db")
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child);
    let marker = format!("camera page for device {device}: ");
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once(&marker).map(|(_, u)| u.to_string()))
        .expect("the server prints the device's page URL");
    (guard, url)
}
