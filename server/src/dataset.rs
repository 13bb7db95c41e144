//! Datasets on disk: the MVTec AD layout, and a generic folder layout with a seeded split.
//!
//! MVTec AD: `CATEGORY/train/good/*.png`, `CATEGORY/test/<kind>/*.png`, masks in
//! `CATEGORY/ground_truth/<kind>/<stem>_mask.png`.
//!
//! Folders (for example the magnetic tile set as it is distributed): `CATEGORY/<class>/**`,
//! one class of good images (`--good`, default `good`), every other class defective. A mask is
//! the PNG that shares an image's stem (`x.jpg` + `x.png`), or `<stem>_mask.png`. There is no
//! split on disk, so the good images are shuffled with a seed and divided: a `train_ratio`
//! share trains, the rest are tested with every defective image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use image::RgbImage;
use patchwire_edge::preprocess::{self, INPUT_SIZE};

use patchwire_codec::rng::SplitMix64;

/// One image and, for a defective one, its ground-truth mask.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The image file.
    pub path: PathBuf,
    /// The mask file; `None` means an all-good mask.
    pub mask: Option<PathBuf>,
    /// Whether the image shows a defect.
    pub anomalous: bool,
    /// Defect kind (the folder name), `good` for good images.
    pub kind: String,
}

/// A category split into training (good only) and test images.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Category name.
    pub name: String,
    /// Good images to build the memory bank from.
    pub train: Vec<Sample>,
    /// Good and defective images to evaluate on.
    pub test: Vec<Sample>,
}

/// How to read a folder-layout category.
#[derive(Clone, Debug)]
pub struct FolderOptions {
    /// Name of the class folder holding good images.
    pub good: String,
    /// Share of good images used for training.
    pub train_ratio: f64,
    /// Seed of the split.
    pub seed: u64,
    /// Cap on training images (after the split), for quick runs.
    pub max_train: Option<usize>,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions { good: "good".into(), train_ratio: 0.5, seed: 0, max_train: None }
    }
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp"];

fn extension(p: &Path) -> String {
    p.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase()
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(sorted_files(&path)?);
        } else if IMAGE_EXTENSIONS.contains(&extension(&path).as_str()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Opens `data/category`, detecting the layout.
///
/// # Errors
/// A missing folder, an empty split, or a defective image without a mask.
pub fn open(data: &Path, category: &str, folders: &FolderOptions) -> Result<Dataset> {
    let root = data.join(category);
    ensure!(root.is_dir(), "no dataset category at {}", root.display());
    let (train, test) = if root.join("train").is_dir() && root.join("test").is_dir() {
        open_mvtec(&root)?
    } else {
        open_folders(&root, folders)?
    };
    ensure!(!train.is_empty(), "{}: no training images", root.display());
    ensure!(test.iter().any(|s| s.anomalous), "{}: no defective test images", root.display());
    ensure!(test.iter().any(|s| !s.anomalous), "{}: no good test images", root.display());
    Ok(Dataset { name: category.to_string(), train, test })
}

fn open_mvtec(root: &Path) -> Result<(Vec<Sample>, Vec<Sample>)> {
    let good = |path| Sample { path, mask: None, anomalous: false, kind: "good".into() };
    let train: Vec<Sample> =
        sorted_files(&root.join("train/good"))?.into_iter().map(good).collect();

    let mut test = Vec::new();
    let mut kinds: Vec<PathBuf> = std::fs::read_dir(root.join("test"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    kinds.sort();
    for dir in kinds {
        let kind = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        for path in sorted_files(&dir)? {
            if kind == "good" {
                test.push(good(path));
                continue;
            }
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let mask = root.join("ground_truth").join(&kind).join(format!("{stem}_mask.png"));
            ensure!(mask.is_file(), "{} has no mask (expected {})", path.display(), mask.display());
            test.push(Sample { path, mask: Some(mask), anomalous: true, kind: kind.clone() });
        }
    }
    Ok((train, test))
}

fn open_folders(root: &Path, opts: &FolderOptions) -> Result<(Vec<Sample>, Vec<Sample>)> {
    ensure!(
        opts.train_ratio > 0.0 && opts.train_ratio < 1.0,
        "train ratio {} must be in (0, 1)",
        opts.train_ratio
    );
    let mut classes: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("listing {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let class = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let anomalous = class != opts.good;
        classes.insert(class.clone(), pair_masks(&sorted_files(&dir)?, anomalous, &class)?);
    }
    let Some(mut good) = classes.remove(&opts.good) else {
        let names: Vec<&String> = classes.keys().collect();
        bail!(
            "{}: no good-image folder {:?} (folders: {names:?}); pass --good",
            root.display(),
            opts.good
        );
    };

    SplitMix64::new(opts.seed).shuffle(&mut good);
    let n_train = ((good.len() as f64) * opts.train_ratio).round() as usize;
    let mut test = good.split_off(n_train);
    let mut train = good;
    if let Some(cap) = opts.max_train {
        train.truncate(cap);
    }
    // Good test images first, then defects, each in file order, for readable reports.
    test.sort_by(|a, b| a.path.cmp(&b.path));
    test.extend(classes.into_values().flatten());
    for s in &mut train {
        s.mask = None;
    }
    Ok((train, test))
}

/// Splits a folder's files into images and their masks.
fn pair_masks(files: &[PathBuf], anomalous: bool, class: &str) -> Result<Vec<Sample>> {
    let is_mask = |p: &PathBuf| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        extension(p) == "png"
            && (stem.ends_with("_mask")
                || files
                    .iter()
                    .any(|o| o != p && o.file_stem() == p.file_stem() && extension(o) != "png"))
    };
    let mut out = Vec::new();
    for path in files.iter().filter(|p| !is_mask(p)) {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let mask = [path.with_extension("png"), path.with_file_name(format!("{stem}_mask.png"))]
            .into_iter()
            .find(|m| m != path && m.is_file());
        if anomalous && mask.is_none() {
            bail!("defective image {} has no mask ({stem}.png or {stem}_mask.png)", path.display());
        }
        out.push(Sample { path: path.clone(), mask, anomalous, kind: class.to_string() });
    }
    Ok(out)
}

/// Reads an image file and resizes it straight to 224x224.
///
/// # Errors
/// An unreadable or undecodable file.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let img =
        preprocess::decode_rgb(&bytes).with_context(|| format!("decoding {}", path.display()))?;
    Ok(preprocess::resize_224(&img)?)
}

/// The 224x224 ground-truth mask of a sample (all false for a good one).
///
/// # Errors
/// An unreadable or undecodable mask.
pub fn load_mask(sample: &Sample) -> Result<Vec<bool>> {
    let side = INPUT_SIZE;
    let Some(path) = sample.mask.as_ref().filter(|_| sample.anomalous) else {
        return Ok(vec![false; side * side]);
    };
    let img = image::open(path).with_context(|| format!("reading mask {}", path.display()))?;
    Ok(preprocess::resize_mask(&img.to_luma8(), side))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> PathBuf {
        crate::shared_dir().join("datasets")
    }

    #[test]
    fn bottle_has_the_mvtec_counts() {
        let d = open(&shared().join("mvtec_ad"), "bottle", &FolderOptions::default()).unwrap();
        assert_eq!(d.train.len(), 209);
        assert_eq!(d.test.len(), 83);
        assert_eq!(d.test.iter().filter(|s| s.anomalous).count(), 63);
        assert!(d.test.iter().filter(|s| s.anomalous).all(|s| s.mask.as_ref().unwrap().is_file()));
    }

    #[test]
    fn magnetic_tile_loads_as_it_is_with_a_seeded_split() {
        let opts = FolderOptions { good: "MT_Free".into(), ..Default::default() };
        let a = open(&shared(), "magnetic_tile", &opts).unwrap();
        let b = open(&shared(), "magnetic_tile", &opts).unwrap();
        assert_eq!(a.train, b.train, "same seed, same split");
        assert_eq!(a.train.len(), 476);
        assert_eq!(a.test.iter().filter(|s| s.anomalous).count(), 392);
        assert!(a.train.iter().chain(&a.test).all(|s| extension(&s.path) == "jpg"));
        assert!(a.test.iter().filter(|s| s.anomalous).all(|s| s.mask.is_some()));

        let other = open(&shared(), "magnetic_tile", &FolderOptions { seed: 1, ..opts }).unwrap();
        assert_ne!(a.train, other.train, "another seed, another split");
    }

    #[test]
    fn a_missing_good_folder_is_named() {
        let err = open(&shared(), "magnetic_tile", &FolderOptions::default()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("\"good\"") && msg.contains("MT_Free"), "{msg}");
    }
}
