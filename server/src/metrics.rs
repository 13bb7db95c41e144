//! Evaluation metrics for anomaly scores: ROC AUC, F1-max and AUPRO.
//!
//! Convention throughout: a higher score means "more anomalous", and a threshold `t` predicts
//! every sample with `score >= t` as anomalous (positive). Each metric sweeps `t` down the
//! distinct scores, so samples that share a score cross the threshold together: a tie group is
//! one step of a curve and is never split in whatever order the sort left it.
//!
//! - **AUROC** is the area under the ROC curve (true-positive rate against false-positive rate),
//!   with straight segments between tie steps. That area equals the Mann-Whitney statistic
//!   `U / (P * N)`: the chance that a random positive scores above a random negative, a tie
//!   counting one half. It is computed from integer counts, exact up to the final division.
//! - **F1-max** is the best `F1 = 2 TP / (2 TP + FP + FN)` over the thresholds at distinct
//!   scores, i.e. the best point of the precision-recall curve. This is the paper's "F1 (pxl)"
//!   when applied to every test pixel of a category.
//! - **AUPRO** follows the MVTec AD definition (Bergmann et al., "The MVTec Anomaly Detection
//!   Dataset", IJCV 2021, and the evaluation scripts published with the dataset). Ground-truth
//!   masks are split into 8-connected components, one image at a time. At a threshold, the
//!   per-region overlap (PRO) is the mean, over all components of all images, of the fraction
//!   of the component predicted anomalous; the false-positive rate (FPR) is the fraction of
//!   normal pixels predicted anomalous, over every image, defect-free ones included. The PRO
//!   curve, starting at (0, 0), is integrated over FPR in `[0, limit]` with the trapezoid rule
//!   (interpolating linearly at `FPR = limit`) and divided by `limit`, so a perfect map scores
//!   1. The usual limit is 0.3.
//!
//! The MoViAD fork behind the reference paper reports a variant that rescales both axes of the
//! PRO curve before integrating. It reads higher than the MVTec number and is deliberately not
//! implemented: our AUPRO is the standard one (see the reference notes, section "Metrics").
//!
//! Pixel metrics run over millions of pixels (83 images of 224 x 224 are 4.2 million). Every
//! function here sorts its scores once, O(n log n), then makes a single pass over them; counts
//! are integers and sums are `f64`.

use thiserror::Error;

/// Why a metric could not be computed. Variants carry the offending sizes, indices or values.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricError {
    /// There is nothing to evaluate: no samples, no images, or images of zero pixels.
    #[error("no samples to evaluate")]
    Empty,
    /// `scores` and `labels` differ in length.
    #[error("{scores} scores but {labels} labels")]
    LengthMismatch { scores: usize, labels: usize },
    /// A score is NaN and has no place in a ranking.
    #[error("score {index} is NaN")]
    NanScore { index: usize },
    /// The labels hold a single class. AUROC is undefined then; F1 is undefined without
    /// positives and trivially 1 without negatives, which says nothing about the scores.
    #[error(
        "labels hold {positives} positive and {negatives} negative samples; both classes are needed"
    )]
    SingleClass { positives: usize, negatives: usize },
    /// There are not as many masks as anomaly maps.
    #[error("{maps} anomaly maps but {masks} masks")]
    ImageCountMismatch { maps: usize, masks: usize },
    /// `width * height` does not fit in `usize`.
    #[error("image size {width} x {height} overflows usize")]
    ImageTooLarge { width: usize, height: usize },
    /// An anomaly map does not hold `width * height` pixels.
    #[error("anomaly map {image} has {len} pixels, expected {expected}")]
    MapSize { image: usize, len: usize, expected: usize },
    /// A mask does not hold `width * height` pixels.
    #[error("mask {image} has {len} pixels, expected {expected}")]
    MaskSize { image: usize, len: usize, expected: usize },
    /// An anomaly map holds a NaN.
    #[error("anomaly map {image} is NaN at pixel {pixel}")]
    NanPixel { image: usize, pixel: usize },
    /// No mask marks any pixel, so there is no region to overlap.
    #[error("the masks hold no ground-truth region")]
    NoRegion,
    /// Every pixel lies in a ground-truth region, so the false-positive rate is undefined.
    #[error("every pixel lies in a ground-truth region; no normal pixel for the FPR")]
    NoNormalPixel,
    /// The masks hold more connected components than `u32` can number.
    #[error("{count} ground-truth regions are more than u32 can number")]
    TooManyRegions { count: usize },
    /// The FPR integration limit is not in `(0, 1]`.
    #[error("FPR integration limit {limit} is outside (0, 1]")]
    InvalidLimit { limit: f64 },
}

/// ROC AUC of `scores` against binary `labels` (true = anomalous/positive).
///
/// Equal to the Mann-Whitney statistic: the fraction of (positive, negative) pairs in which
/// the positive scores higher, a tie counting one half. 1 is a perfect ranking, 0.5 chance,
/// 0 a perfectly inverted ranking. Infinite scores are allowed.
///
/// # Errors
///
/// [`MetricError::LengthMismatch`] if the slices differ in length, [`MetricError::Empty`] if
/// they are empty, [`MetricError::NanScore`] for the first NaN score, and
/// [`MetricError::SingleClass`] unless both labels occur.
pub fn auroc(scores: &[f32], labels: &[bool]) -> Result<f64, MetricError> {
    let (positives, negatives) = ranked_classes(scores, labels)?;

    // Twice U: each negative earns 2 per positive strictly above it and 1 per positive tied
    // with it. u128 cannot overflow for slices that fit in memory.
    let mut twice_u: u128 = 0;
    let mut positives_above: u128 = 0;
    for (pos, neg) in TieGroups::new(&positives, &negatives) {
        let tied = pos.len() as u128;
        twice_u += neg.len() as u128 * (2 * positives_above + tied);
        positives_above += tied;
    }

    let pairs = positives.len() as f64 * negatives.len() as f64;
    Ok(twice_u as f64 / (2.0 * pairs))
}

/// Maximum F1 over all thresholds (the precision-recall curve's best point).
///
/// Thresholds are tried between distinct scores only: the samples of a tie group are all
/// predicted positive or all negative. A threshold above every score predicts nothing and
/// counts as F1 = 0.
///
/// # Errors
///
/// [`MetricError::LengthMismatch`] if the slices differ in length, [`MetricError::Empty`] if
/// they are empty, [`MetricError::NanScore`] for the first NaN score, and
/// [`MetricError::SingleClass`] unless both labels occur.
pub fn f1_max(scores: &[f32], labels: &[bool]) -> Result<f64, MetricError> {
    let (positives, negatives) = ranked_classes(scores, labels)?;

    let total_positives = positives.len();
    let (mut true_pos, mut false_pos) = (0_usize, 0_usize);
    let mut best = 0.0_f64;
    for (pos, neg) in TieGroups::new(&positives, &negatives) {
        true_pos += pos.len();
        false_pos += neg.len();
        // TP + FN is every positive, so 2TP + FP + FN = TP + FP + P.
        let f1 = 2.0 * true_pos as f64 / (true_pos + false_pos + total_positives) as f64;
        best = best.max(f1);
    }
    Ok(best)
}

/// Standard MVTec AUPRO: per-region overlap averaged over all ground-truth connected
/// components (8-connectivity) of all images, integrated over FPR in [0, limit] with the
/// trapezoid rule and divided by `limit` (0.3 by convention).
///
/// `maps[i]` and `masks[i]` are the anomaly map and ground truth of image `i`, both row-major
/// `width` x `height`. Defect-free images belong in the input: their pixels count towards the
/// false-positive rate. Components are found per image, so none spans two images. Each
/// ground-truth pixel of a component of `s` pixels adds `1 / (s * R)` to the PRO when the
/// threshold passes it (`R` components in all); each normal pixel adds `1 / N_normal` to the
/// FPR. The result lies in `[0, 1]`.
///
/// # Errors
///
/// - [`MetricError::ImageCountMismatch`] if `maps` and `masks` differ in length;
/// - [`MetricError::Empty`] if there is no image or `width * height` is 0;
/// - [`MetricError::ImageTooLarge`] if `width * height` overflows;
/// - [`MetricError::InvalidLimit`] unless `0 < limit <= 1`;
/// - [`MetricError::MapSize`] or [`MetricError::MaskSize`] for the first map or mask that
///   does not hold `width * height` pixels;
/// - [`MetricError::NanPixel`] for the first NaN in the maps;
/// - [`MetricError::NoRegion`] if no mask marks a pixel, [`MetricError::NoNormalPixel`] if
///   the masks mark every pixel;
/// - [`MetricError::TooManyRegions`] past `u32::MAX` components in all.
pub fn aupro(
    maps: &[&[f32]],
    masks: &[&[bool]],
    width: usize,
    height: usize,
    limit: f64,
) -> Result<f64, MetricError> {
    // Shapes and values.
    if maps.len() != masks.len() {
        return Err(MetricError::ImageCountMismatch { maps: maps.len(), masks: masks.len() });
    }
    let area = width.checked_mul(height).ok_or(MetricError::ImageTooLarge { width, height })?;
    if maps.is_empty() || area == 0 {
        return Err(MetricError::Empty);
    }
    if !(limit > 0.0 && limit <= 1.0) {
        return Err(MetricError::InvalidLimit { limit });
    }
    for (image, (map, mask)) in maps.iter().zip(masks).enumerate() {
        if map.len() != area {
            let len = map.len();
            return Err(MetricError::MapSize { image, len, expected: area });
        }
        if mask.len() != area {
            let len = mask.len();
            return Err(MetricError::MaskSize { image, len, expected: area });
        }
        if let Some(pixel) = map.iter().position(|score| score.is_nan()) {
            return Err(MetricError::NanPixel { image, pixel });
        }
    }

    // Normal pixels keep their score only; ground-truth pixels also keep their region, numbered
    // across all images.
    let mut normal: Vec<f32> = Vec::new();
    let mut anomalous: Vec<(f32, u32)> = Vec::new();
    let mut region_sizes: Vec<usize> = Vec::new();
    for (map, mask) in maps.iter().zip(masks) {
        let (labels, count) = connected_components(mask, width, height);
        let total = region_sizes.len() + count;
        if u32::try_from(total).is_err() {
            return Err(MetricError::TooManyRegions { count: total });
        }
        // Fits: it is below `total`, which fits.
        let offset = region_sizes.len() as u32;
        region_sizes.resize(total, 0);

        for (&score, &label) in map.iter().zip(&labels) {
            if label == 0 {
                normal.push(score);
            } else {
                let region = offset + (label - 1);
                region_sizes[region as usize] += 1;
                anomalous.push((score, region));
            }
        }
    }
    if region_sizes.is_empty() {
        return Err(MetricError::NoRegion);
    }
    if normal.is_empty() {
        return Err(MetricError::NoNormalPixel);
    }

    // What one pixel of each region adds to the PRO.
    let regions = region_sizes.len() as f64;
    let weights: Vec<f64> =
        region_sizes.iter().map(|&size| 1.0 / (size as f64 * regions)).collect();

    // One sweep down the scores, one curve point per distinct score.
    sort_descending(&mut normal);
    sort_descending(&mut anomalous);
    let normal_count = normal.len() as f64;
    let mut normal_passed = 0_usize;
    let mut pro = 0.0_f64;
    let curve = TieGroups::new(&anomalous, &normal).map(|(gt, norm)| {
        normal_passed += norm.len();
        pro += gt.iter().map(|&(_, region)| weights[region as usize]).sum::<f64>();
        (normal_passed as f64 / normal_count, pro)
    });
    Ok(area_up_to(curve, limit) / limit)
}

/// 8-connected component labelling of a binary mask; returns labels (0 = background,
/// 1..=n) and n.
///
/// `mask` is row-major, `width` x `height`. Two foreground pixels are connected when they share
/// an edge or a corner. Components are numbered in the raster order of their first pixel.
///
/// `mask` should hold `width * height` pixels. A mismatch does not panic: the labels always
/// have `mask.len()` entries, a short mask reads as if padded with background, and pixels
/// past `width * height` are labelled 0.
///
/// # Panics
///
/// If the mask holds more than `u32::MAX` components, which takes some 17 billion pixels
/// (8-connected components need a background gap between them).
pub fn connected_components(mask: &[bool], width: usize, height: usize) -> (Vec<u32>, usize) {
    let area = width.saturating_mul(height).min(mask.len());
    let mut labels = vec![0_u32; mask.len()];
    let mut count = 0_usize;
    let mut stack = Vec::new();

    for seed in 0..area {
        if !mask[seed] || labels[seed] != 0 {
            continue;
        }
        count += 1;
        let label = u32::try_from(count).expect("more than u32::MAX components");

        // Flood fill from the seed; a pixel is labelled when pushed, so it is pushed once.
        labels[seed] = label;
        stack.push(seed);
        while let Some(pixel) = stack.pop() {
            let (x, y) = (pixel % width, pixel / width);
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let next = ny * width + nx;
                    if next < area && mask[next] && labels[next] == 0 {
                        labels[next] = label;
                        stack.push(next);
                    }
                }
            }
        }
    }
    (labels, count)
}

/// Checks `scores` against `labels` and splits the scores by class, each sorted descending.
fn ranked_classes(scores: &[f32], labels: &[bool]) -> Result<(Vec<f32>, Vec<f32>), MetricError> {
    if scores.len() != labels.len() {
        return Err(MetricError::LengthMismatch { scores: scores.len(), labels: labels.len() });
    }
    if scores.is_empty() {
        return Err(MetricError::Empty);
    }
    if let Some(index) = scores.iter().position(|score| score.is_nan()) {
        return Err(MetricError::NanScore { index });
    }
    let positives = labels.iter().filter(|&&label| label).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(MetricError::SingleClass { positives, negatives });
    }

    let mut pos = Vec::with_capacity(positives);
    let mut neg = Vec::with_capacity(negatives);
    for (&score, &label) in scores.iter().zip(labels) {
        if label {
            pos.push(score);
        } else {
            neg.push(score);
        }
    }
    sort_descending(&mut pos);
    sort_descending(&mut neg);
    Ok((pos, neg))
}

/// Something ranked by an anomaly score.
trait Scored {
    fn score(&self) -> f32;
}

impl Scored for f32 {
    fn score(&self) -> f32 {
        *self
    }
}

impl Scored for (f32, u32) {
    fn score(&self) -> f32 {
        self.0
    }
}

/// Sorts by descending score. The caller has ruled out NaN, so `total_cmp` agrees with `>`
/// except that it puts 0.0 before -0.0; the two stay adjacent, and [`TieGroups`] joins them.
fn sort_descending<T: Scored>(items: &mut [T]) {
    items.sort_unstable_by(|a, b| b.score().total_cmp(&a.score()));
}

/// Walks two lists sorted by descending score (no NaN) in step, yielding for each distinct
/// score, highest first, the items of either list that hold it. One of the two is never empty.
struct TieGroups<'a, A, B> {
    a: &'a [A],
    b: &'a [B],
}

impl<'a, A, B> TieGroups<'a, A, B> {
    fn new(a: &'a [A], b: &'a [B]) -> Self {
        Self { a, b }
    }
}

impl<'a, A: Scored, B: Scored> Iterator for TieGroups<'a, A, B> {
    type Item = (&'a [A], &'a [B]);

    fn next(&mut self) -> Option<Self::Item> {
        let score = match (self.a.first(), self.b.first()) {
            (None, None) => return None,
            (Some(a), None) => a.score(),
            (None, Some(b)) => b.score(),
            (Some(a), Some(b)) => a.score().max(b.score()),
        };
        let (group_a, rest_a) = self.a.split_at(tied_prefix(self.a, score));
        let (group_b, rest_b) = self.b.split_at(tied_prefix(self.b, score));
        (self.a, self.b) = (rest_a, rest_b);
        Some((group_a, group_b))
    }
}

/// How many leading items of a descending list hold `score`.
fn tied_prefix<T: Scored>(sorted: &[T], score: f32) -> usize {
    sorted.iter().take_while(|item| item.score() == score).count()
}

/// Area under a piecewise-linear curve from x = 0 to x = `limit` (> 0), the curve given by its
/// points in non-decreasing x after an implied first point (0, 0). The segment that reaches
/// `limit` is cut there by linear interpolation; a curve that ends short of `limit` adds
/// nothing past its last point.
fn area_up_to(points: impl IntoIterator<Item = (f64, f64)>, limit: f64) -> f64 {
    let (mut x0, mut y0) = (0.0_f64, 0.0_f64);
    let mut area = 0.0;
    for (x1, y1) in points {
        if x1 >= limit {
            // x0 < limit <= x1, so the segment has width.
            let y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
            return area + (limit - x0) * (y0 + y_limit) / 2.0;
        }
        area += (x1 - x0) * (y0 + y1) / 2.0;
        (x0, y0) = (x1, y1);
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const T: bool = true;
    const F: bool = false;

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "got {actual}, expected {expected}");
    }

    // ---- AUROC ----

    #[test]
    fn auroc_of_a_perfect_ranking_is_one() {
        assert_close(auroc(&[0.1, 0.2, 0.8, 0.9], &[F, F, T, T]).unwrap(), 1.0);
        assert_close(auroc(&[f32::NEG_INFINITY, f32::INFINITY], &[F, T]).unwrap(), 1.0);
    }

    #[test]
    fn auroc_of_an_inverted_ranking_is_zero() {
        assert_close(auroc(&[0.9, 0.8, 0.2, 0.1], &[F, F, T, T]).unwrap(), 0.0);
    }

    #[test]
    fn auroc_counts_ordered_pairs() {
        // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 loses to 0.4 only,
        // so 3 of 4 pairs are ordered.
        assert_close(auroc(&[0.1, 0.4, 0.35, 0.8], &[F, F, T, T]).unwrap(), 0.75);
    }

    #[test]
    fn auroc_counts_ties_as_one_half() {
        // Positives {0.5, 0.9}, negatives {0.5, 0.5, 0.2}. The 0.5 positive ties twice (1/2
        // each) and beats 0.2 (1); 0.9 beats all three. U = 1 + 1 + 3 = 5 of 6 pairs.
        let scores = [0.5, 0.5, 0.5, 0.2, 0.9];
        assert_close(auroc(&scores, &[T, F, F, F, T]).unwrap(), 5.0 / 6.0);
        // The same with the tied positive listed last, so input order cannot matter.
        let scores = [0.5, 0.5, 0.2, 0.9, 0.5];
        assert_close(auroc(&scores, &[F, F, F, T, T]).unwrap(), 5.0 / 6.0);
    }

    #[test]
    fn auroc_of_all_tied_scores_is_one_half() {
        assert_close(auroc(&[0.3; 5], &[T, F, F, T, F]).unwrap(), 0.5);
    }

    #[test]
    fn auroc_treats_signed_zeros_as_a_tie() {
        // total_cmp orders -0.0 below 0.0, but as scores they are equal.
        assert_close(auroc(&[0.0, -0.0], &[T, F]).unwrap(), 0.5);
        assert_close(auroc(&[-0.0, 0.0], &[T, F]).unwrap(), 0.5);
    }

    #[test]
    fn auroc_rejects_bad_input() {
        assert_eq!(auroc(&[], &[]), Err(MetricError::Empty));
        assert_eq!(
            auroc(&[0.1, 0.2], &[T]),
            Err(MetricError::LengthMismatch { scores: 2, labels: 1 })
        );
        assert_eq!(
            auroc(&[0.1, f32::NAN, 0.3], &[T, F, T]),
            Err(MetricError::NanScore { index: 1 })
        );
        assert_eq!(
            auroc(&[0.1, 0.2], &[T, T]),
            Err(MetricError::SingleClass { positives: 2, negatives: 0 })
        );
        assert_eq!(
            auroc(&[0.1, 0.2, 0.3], &[F, F, F]),
            Err(MetricError::SingleClass { positives: 0, negatives: 3 })
        );
    }

    // ---- F1-max ----

    #[test]
    fn f1_max_of_a_perfect_ranking_is_one() {
        assert_close(f1_max(&[0.1, 0.2, 0.8, 0.9], &[F, F, T, T]).unwrap(), 1.0);
    }

    #[test]
    fn f1_max_picks_the_best_threshold() {
        // P = 2. t = 0.8: TP 1, FP 0 -> 2/3. t = 0.4: TP 1, FP 1 -> 1/2.
        // t = 0.35: TP 2, FP 1 -> 4/5. t = 0.1: TP 2, FP 2 -> 2/3.
        assert_close(f1_max(&[0.1, 0.4, 0.35, 0.8], &[F, F, T, T]).unwrap(), 0.8);
    }

    #[test]
    fn f1_max_keeps_tie_groups_whole() {
        // P = 2. t = 0.9: TP 1, FP 0 -> 2/3. t = 0.5: TP 2, FP 2 -> 2/3.
        // t = 0.1: TP 2, FP 3 -> 4/7. Splitting the 0.5 group with its positive first would
        // reach TP 2, FP 0 and F1 = 1, which no threshold gives.
        let scores = [0.5, 0.9, 0.5, 0.5, 0.1];
        assert_close(f1_max(&scores, &[T, T, F, F, F]).unwrap(), 2.0 / 3.0);
    }

    #[test]
    fn f1_max_of_all_tied_scores_predicts_everything() {
        // The only threshold predicts all three: TP 1, FP 2, FN 0 -> 2 / 4.
        assert_close(f1_max(&[0.5; 3], &[F, T, F]).unwrap(), 0.5);
    }

    #[test]
    fn f1_max_rejects_bad_input() {
        assert_eq!(f1_max(&[], &[]), Err(MetricError::Empty));
        assert_eq!(
            f1_max(&[0.1], &[T, F]),
            Err(MetricError::LengthMismatch { scores: 1, labels: 2 })
        );
        assert_eq!(f1_max(&[f32::NAN, 0.1], &[T, F]), Err(MetricError::NanScore { index: 0 }));
        assert_eq!(
            f1_max(&[0.1, 0.2], &[F, F]),
            Err(MetricError::SingleClass { positives: 0, negatives: 2 })
        );
        assert_eq!(
            f1_max(&[0.1, 0.2], &[T, T]),
            Err(MetricError::SingleClass { positives: 2, negatives: 0 })
        );
    }

    // ---- connected components ----

    #[test]
    fn diagonal_neighbours_are_connected() {
        #[rustfmt::skip]
        let mask = [
            T, F, F,
            F, T, F,
            F, F, T,
        ];
        let (labels, n) = connected_components(&mask, 3, 3);
        assert_eq!(n, 1);
        assert_eq!(labels, [1, 0, 0, 0, 1, 0, 0, 0, 1]);

        #[rustfmt::skip]
        let anti = [
            F, F, T,
            F, T, F,
            T, F, F,
        ];
        let (labels, n) = connected_components(&anti, 3, 3);
        assert_eq!(n, 1);
        assert_eq!(labels, [0, 0, 1, 0, 1, 0, 1, 0, 0]);
    }

    #[test]
    fn separate_blobs_get_labels_in_raster_order() {
        #[rustfmt::skip]
        let mask = [
            F, F, F, T, T,
            T, T, F, F, T,
            T, F, F, F, F,
        ];
        let (labels, n) = connected_components(&mask, 5, 3);
        assert_eq!(n, 2);
        #[rustfmt::skip]
        let expected = [
            0, 0, 0, 1, 1,
            2, 2, 0, 0, 1,
            2, 0, 0, 0, 0,
        ];
        assert_eq!(labels, expected);
    }

    #[test]
    fn arms_joined_further_down_form_one_component() {
        // A raster scan meets the two arms before the row that joins them.
        #[rustfmt::skip]
        let mask = [
            T, F, T,
            T, F, T,
            F, T, F,
        ];
        let (labels, n) = connected_components(&mask, 3, 3);
        assert_eq!(n, 1);
        assert_eq!(labels, [1, 0, 1, 1, 0, 1, 0, 1, 0]);
    }

    #[test]
    fn rows_do_not_wrap_around() {
        // The end of row 0 and the start of row 1 are consecutive in memory, not neighbours.
        #[rustfmt::skip]
        let mask = [
            F, F, T,
            T, F, F,
        ];
        let (labels, n) = connected_components(&mask, 3, 2);
        assert_eq!(n, 2);
        assert_eq!(labels, [0, 0, 1, 2, 0, 0]);
    }

    #[test]
    fn empty_masks_have_no_component() {
        assert_eq!(connected_components(&[F; 6], 3, 2), (vec![0; 6], 0));
        assert_eq!(connected_components(&[], 0, 0), (vec![], 0));
        assert_eq!(connected_components(&[], 0, 5), (vec![], 0));
    }

    #[test]
    fn mismatched_mask_length_does_not_panic() {
        // Short: two rows of three with the last pixel missing.
        let (labels, n) = connected_components(&[T, F, F, F, F], 3, 2);
        assert_eq!((labels, n), (vec![1, 0, 0, 0, 0], 1));
        // Long: the pixel past width * height stays background.
        let (labels, n) = connected_components(&[F, T, T], 2, 1);
        assert_eq!((labels, n), (vec![0, 1, 0], 1));
        // A zero width with pixels present labels none of them.
        assert_eq!(connected_components(&[T, T], 0, 2), (vec![0, 0], 0));
    }

    // ---- AUPRO ----

    #[test]
    fn area_up_to_cuts_the_crossing_segment() {
        // Rising from (0, 0) to (0.5, 1): at 0.25 the height is 0.5, the area 0.0625.
        assert_close(area_up_to([(0.5, 1.0), (1.0, 1.0)], 0.25), 0.0625);
        // Exactly at a point: 0.25 + 0.25 * 1.
        assert_close(area_up_to([(0.5, 1.0), (1.0, 1.0)], 0.75), 0.5);
        // Vertical steps add nothing; the curve ends short of the limit.
        assert_close(area_up_to([(0.0, 1.0), (0.2, 1.0)], 0.5), 0.2);
    }

    #[test]
    fn aupro_of_one_region_by_hand() {
        // 4 x 4 image, one region of pixels 5 and 6, 14 normal pixels.
        let mut mask = [F; 16];
        mask[5] = T;
        mask[6] = T;
        let mut map = [0.0_f32; 16];
        map[5] = 0.9;
        map[6] = 0.4;
        map[0] = 0.6;
        map[15] = 0.4;
        // Curve: (0, 0) -> t 0.9 (0, 1/2) -> t 0.6 (1/14, 1/2) -> t 0.4, pixel 6 and pixel 15
        // together, (2/14, 1) -> t 0 (1, 1). Area to 0.3: 1/28 + 3/56 + (0.3 - 1/7)
        // = 0.3 - 3/56; over 0.3 that is 1 - 10/56 = 23/28.
        let got = aupro(&[&map], &[&mask], 4, 4, 0.3).unwrap();
        assert_close(got, 23.0 / 28.0);
    }

    #[test]
    fn aupro_of_two_regions_interpolates_at_the_limit() {
        // 3 x 2 image; pixels 0 and 2 are two regions (not touching), 4 normal pixels.
        let mask = [T, F, T, F, F, F];
        let map = [0.8, 0.6, 0.4, 0.4, 0.2, 0.2];
        // Curve: (0, 1/2) at 0.8, (1/4, 1/2) at 0.6, (1/2, 1) at 0.4, (1, 1) at 0.2.
        // Area to 0.4: 1/4 * 1/2 = 0.125, then from 0.25 to 0.4 the PRO rises 0.5 -> 0.8:
        // 0.15 * 1.3 / 2 = 0.0975. (0.125 + 0.0975) / 0.4 = 0.55625.
        let got = aupro(&[&map], &[&mask], 3, 2, 0.4).unwrap();
        assert_close(got, 0.55625);
    }

    #[test]
    fn aupro_labels_regions_per_image() {
        // Two 2 x 1 images. Stacked into one 2 x 2 image the three marked pixels would form a
        // single region of 3 (weight 1/3 each); per image they are regions of 2 (weight 1/4
        // each) and 1 (weight 1/2). One normal pixel, the second pixel of image 1.
        let masks: [&[bool]; 2] = [&[T, T], &[T, F]];
        let maps: [&[f32]; 2] = [&[0.9, 0.1], &[0.5, 0.3]];
        // Curve: (0, 1/4), (0, 3/4), (1, 3/4) at the normal 0.3, then (1, 1).
        // With limit 1 the area is 3/4 (stacked it would be 2/3).
        let got = aupro(&maps, &masks, 2, 1, 1.0).unwrap();
        assert_close(got, 0.75);
    }

    #[test]
    fn aupro_of_perfect_and_reversed_maps() {
        // Image 0: a 2 x 2 region and a lone pixel; image 1 is defect-free.
        #[rustfmt::skip]
        let mask0 = [
            T, T, F, F,
            T, T, F, T,
            F, F, F, F,
        ];
        let mask1 = [F; 12];
        let score = |marked: bool, i: usize| {
            if marked { 0.6 + 0.1 * (i % 3) as f32 } else { 0.1 * (i % 4) as f32 }
        };
        let map0: Vec<f32> = mask0.iter().enumerate().map(|(i, &m)| score(m, i)).collect();
        let map1: Vec<f32> = mask1.iter().enumerate().map(|(i, &m)| score(m, i)).collect();
        let maps: [&[f32]; 2] = [&map0, &map1];
        let masks: [&[bool]; 2] = [&mask0, &mask1];
        for limit in [0.3, 1.0] {
            assert_close(aupro(&maps, &masks, 4, 3, limit).unwrap(), 1.0);
        }

        // Negated, every normal pixel outranks every region pixel: PRO stays 0 until FPR 1.
        let neg0: Vec<f32> = map0.iter().map(|s| -s).collect();
        let neg1: Vec<f32> = map1.iter().map(|s| -s).collect();
        let maps: [&[f32]; 2] = [&neg0, &neg1];
        assert_close(aupro(&maps, &masks, 4, 3, 0.3).unwrap(), 0.0);
    }

    #[test]
    fn aupro_rejects_bad_input() {
        let map = [0.1_f32, 0.2, 0.3, 0.4];
        let mask = [T, F, F, F];
        assert_eq!(
            aupro(&[&map, &map], &[&mask], 2, 2, 0.3),
            Err(MetricError::ImageCountMismatch { maps: 2, masks: 1 })
        );
        assert_eq!(aupro(&[], &[], 2, 2, 0.3), Err(MetricError::Empty));
        assert_eq!(aupro(&[&[]], &[&[]], 0, 2, 0.3), Err(MetricError::Empty));
        assert_eq!(
            aupro(&[&map], &[&mask], usize::MAX, 2, 0.3),
            Err(MetricError::ImageTooLarge { width: usize::MAX, height: 2 })
        );
        for limit in [0.0, -0.1, 1.5, f64::INFINITY] {
            assert_eq!(
                aupro(&[&map], &[&mask], 2, 2, limit),
                Err(MetricError::InvalidLimit { limit })
            );
        }
        assert!(matches!(
            aupro(&[&map], &[&mask], 2, 2, f64::NAN),
            Err(MetricError::InvalidLimit { limit }) if limit.is_nan()
        ));
        assert_eq!(
            aupro(&[&map, &map[..3]], &[&mask, &mask], 2, 2, 0.3),
            Err(MetricError::MapSize { image: 1, len: 3, expected: 4 })
        );
        assert_eq!(
            aupro(&[&map, &map], &[&mask, &[T; 5]], 2, 2, 0.3),
            Err(MetricError::MaskSize { image: 1, len: 5, expected: 4 })
        );
        assert_eq!(
            aupro(&[&map, &[0.0, 0.0, f32::NAN, 0.0]], &[&mask, &mask], 2, 2, 0.3),
            Err(MetricError::NanPixel { image: 1, pixel: 2 })
        );
        assert_eq!(
            aupro(&[&map, &map], &[&[F; 4], &[F; 4]], 2, 2, 0.3),
            Err(MetricError::NoRegion)
        );
        assert_eq!(
            aupro(&[&map, &map], &[&[T; 4], &[T; 4]], 2, 2, 0.3),
            Err(MetricError::NoNormalPixel)
        );
    }

    #[test]
    fn errors_name_the_offending_value() {
        let message = MetricError::NanPixel { image: 7, pixel: 42 }.to_string();
        assert_eq!(message, "anomaly map 7 is NaN at pixel 42");
    }

    // ---- cross-checks against brute force ----

    /// A small linear congruential generator (Knuth's MMIX constants), enough for test data.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }

        /// A score from few levels, so that ties are common; zero comes with either sign.
        fn score(&mut self, levels: u64) -> f32 {
            match self.below(levels) {
                0 if self.below(2) == 0 => -0.0,
                level => level as f32 * 0.25,
            }
        }
    }

    fn pairwise_auroc(scores: &[f32], labels: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (&p, _) in scores.iter().zip(labels).filter(|(_, l)| **l) {
            for (&n, _) in scores.iter().zip(labels).filter(|(_, l)| !**l) {
                pairs += 1.0;
                if p > n {
                    wins += 1.0;
                } else if p == n {
                    wins += 0.5;
                }
            }
        }
        wins / pairs
    }

    fn every_threshold_f1(scores: &[f32], labels: &[bool]) -> f64 {
        let mut best = 0.0_f64;
        for &t in scores {
            let count = |want: bool, above: bool| {
                (scores.iter().zip(labels))
                    .filter(|&(&s, &l)| l == want && (s >= t) == above)
                    .count() as f64
            };
            let (tp, fp, fn_) = (count(T, T), count(F, T), count(T, F));
            best = best.max(2.0 * tp / (2.0 * tp + fp + fn_));
        }
        best
    }

    #[test]
    fn auroc_and_f1_max_match_brute_force() {
        let mut rng = Lcg(7);
        for case in 0..400 {
            let n = 1 + rng.below(40) as usize;
            let levels = 2 + rng.below(8);
            let scores: Vec<f32> = (0..n).map(|_| rng.score(levels)).collect();
            // Positives lean towards higher scores, so AUROC is not always near 1/2.
            let labels: Vec<bool> = scores.iter().map(|&s| rng.below(8) < 2 + s as u64).collect();

            let positives = labels.iter().filter(|&&l| l).count();
            if positives == 0 || positives == n {
                let single = MetricError::SingleClass { positives, negatives: n - positives };
                assert_eq!(auroc(&scores, &labels), Err(single.clone()), "case {case}");
                assert_eq!(f1_max(&scores, &labels), Err(single), "case {case}");
                continue;
            }
            let got = auroc(&scores, &labels).unwrap();
            let want = pairwise_auroc(&scores, &labels);
            assert!((got - want).abs() < 1e-12, "case {case}: auroc {got} vs {want}");
            let got = f1_max(&scores, &labels).unwrap();
            let want = every_threshold_f1(&scores, &labels);
            assert!((got - want).abs() < 1e-12, "case {case}: f1 {got} vs {want}");
        }
    }

    /// Labels by repeated relaxation: every marked pixel starts with its own label and takes
    /// the smallest label among its marked 8-neighbours until nothing changes.
    fn relaxation_labels(mask: &[bool], width: usize, height: usize) -> Vec<usize> {
        let mut labels: Vec<usize> =
            (0..mask.len()).map(|i| if mask[i] { i + 1 } else { 0 }).collect();
        let mut changed = true;
        while changed {
            changed = false;
            for y in 0..height {
                for x in 0..width {
                    if !mask[y * width + x] {
                        continue;
                    }
                    for (dx, dy) in (-1..=1).flat_map(|dx| (-1..=1).map(move |dy| (dx, dy))) {
                        let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                        if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                            continue;
                        }
                        let neighbour = ny as usize * width + nx as usize;
                        let here = y * width + x;
                        if mask[neighbour] && labels[neighbour] < labels[here] {
                            labels[here] = labels[neighbour];
                            changed = true;
                        }
                    }
                }
            }
        }
        labels
    }

    fn random_mask(rng: &mut Lcg, area: usize, density: u64) -> Vec<bool> {
        (0..area).map(|_| rng.below(10) < density).collect()
    }

    #[test]
    fn connected_components_match_relaxation() {
        let mut rng = Lcg(11);
        for case in 0..200 {
            let (width, height) = (1 + rng.below(9) as usize, 1 + rng.below(9) as usize);
            let density = rng.below(8);
            let mask = random_mask(&mut rng, width * height, density);
            let (labels, n) = connected_components(&mask, width, height);
            let slow = relaxation_labels(&mask, width, height);

            // Same partition of the marked pixels, same background.
            for i in 0..mask.len() {
                assert_eq!(labels[i] == 0, !mask[i], "case {case}, pixel {i}");
                for j in 0..mask.len() {
                    if mask[i] && mask[j] {
                        let same = labels[i] == labels[j];
                        assert_eq!(same, slow[i] == slow[j], "case {case}, pixels {i} {j}");
                    }
                }
            }
            // Labels 1..=n, each first met in increasing raster order.
            let mut next = 1;
            for &label in &labels {
                assert!(label as usize <= n, "case {case}");
                if label == next {
                    next += 1;
                } else {
                    assert!(label < next, "case {case}: label {label} before {next}");
                }
            }
            assert_eq!(next as usize, n + 1, "case {case}");
        }
    }

    /// AUPRO from scratch at every distinct threshold, then a separate trapezoid integration.
    fn slow_aupro(
        maps: &[&[f32]],
        masks: &[&[bool]],
        width: usize,
        height: usize,
        limit: f64,
    ) -> f64 {
        let mut regions: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut normal: Vec<(usize, usize)> = Vec::new();
        for (image, mask) in masks.iter().enumerate() {
            let labels = relaxation_labels(mask, width, height);
            let mut by_label: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
            for (pixel, &label) in labels.iter().enumerate() {
                if label == 0 {
                    normal.push((image, pixel));
                } else {
                    by_label.entry(label).or_default().push((image, pixel));
                }
            }
            regions.extend(by_label.into_values());
        }

        let mut thresholds: Vec<f32> = maps.iter().flat_map(|m| m.iter().copied()).collect();
        thresholds.sort_by(|a, b| b.partial_cmp(a).unwrap());
        thresholds.dedup_by(|a, b| a == b);

        let passed = |pixels: &[(usize, usize)], t: f32| {
            pixels.iter().filter(|&&(i, p)| maps[i][p] >= t).count() as f64 / pixels.len() as f64
        };
        let mut points = vec![(0.0, 0.0)];
        for t in thresholds {
            let pro = regions.iter().map(|r| passed(r, t)).sum::<f64>() / regions.len() as f64;
            points.push((passed(&normal, t), pro));
        }

        let mut area = 0.0;
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            if x1 <= limit {
                area += (x1 - x0) * (y0 + y1) / 2.0;
            } else {
                let y = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
                area += (limit - x0) * (y0 + y) / 2.0;
                break;
            }
        }
        area / limit
    }

    #[test]
    fn aupro_matches_brute_force() {
        let mut rng = Lcg(3);
        let mut compared = 0;
        for case in 0..300 {
            let (width, height) = (1 + rng.below(7) as usize, 1 + rng.below(6) as usize);
            let images = 1 + rng.below(4) as usize;
            let density = rng.below(6);
            let levels = 2 + rng.below(10);
            let masks: Vec<Vec<bool>> =
                (0..images).map(|_| random_mask(&mut rng, width * height, density)).collect();
            // Marked pixels lean higher, so curves are neither flat nor trivial.
            let maps: Vec<Vec<f32>> = masks
                .iter()
                .map(|mask| {
                    mask.iter()
                        .map(|&m| {
                            rng.score(levels) + if m { rng.below(3) as f32 * 0.25 } else { 0.0 }
                        })
                        .collect()
                })
                .collect();
            let maps: Vec<&[f32]> = maps.iter().map(Vec::as_slice).collect();
            let masks: Vec<&[bool]> = masks.iter().map(Vec::as_slice).collect();
            let limit = [0.3, 0.05, 0.5, 1.0][case % 4];

            let marked = masks.iter().flat_map(|m| m.iter()).filter(|&&m| m).count();
            let got = aupro(&maps, &masks, width, height, limit);
            if marked == 0 {
                assert_eq!(got, Err(MetricError::NoRegion), "case {case}");
            } else if marked == images * width * height {
                assert_eq!(got, Err(MetricError::NoNormalPixel), "case {case}");
            } else {
                let got = got.unwrap();
                let want = slow_aupro(&maps, &masks, width, height, limit);
                assert!((got - want).abs() < 1e-9, "case {case}: aupro {got} vs {want}");
                assert!((0.0..=1.0 + 1e-12).contains(&got), "case {case}: {got}");
                compared += 1;
            }
        }
        assert!(compared > 200, "only {compared} cases compared");
    }
}
