//! The Patchwire server: backbones, PatchCore, datasets, metrics and evaluation.
//!
//! ```text
//! payload -> pipeline (decode, [server backbone]) -> patchcore (embed, bank, kNN)
//!         -> score + anomaly map -> metrics / report
//! ```
//!
//! The `patchwire` binary (`src/main.rs`) is a thin command-line layer over these modules.

pub mod backbones;
pub mod bench;
pub mod dataset;
pub mod eval;
pub mod figures;
pub mod gateway;
pub mod heatmap;
pub mod metrics;
pub mod npy;
pub mod patchcore;
pub mod pipeline;
pub mod report;
pub mod service;
pub mod store;

use std::path::PathBuf;

/// The repository root (where the workspace `Cargo.toml` is).
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// `../shared` beside the repository, or `$PATCHWIRE_SHARED`.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("PATCHWIRE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("../shared"))
}

/// `models/build` in the repository, or `$PATCHWIRE_MODELS`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("PATCHWIRE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("models/build"))
}
