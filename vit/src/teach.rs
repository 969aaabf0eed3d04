//! Teaching a model new classes from a few photos each: the page's Teach panel, in the
//! manner of Teachable Machine, with a Vision Transformer.
//!
//! The frozen part of the model runs once per photo: [`Extractor`] computes, for a few fixed
//! views of each photo (the photo, its mirror image, shifted crops as the trainer's random crop
//! makes them), what the trained part reads. [`Teacher`] then runs a few hundred AdamW steps on
//! those features alone, through burn's autodiff, on whatever device the features are on
//! (WebGPU or Flex in the browser). [`Mode::Head`] trains a new head on the pooled token (a
//! linear probe); [`Mode::LastBlock`] also fine-tunes the last block and the final norm.
//! [`Teacher::finish`] gives back a whole [`VisionTransformer`] for the new classes, and
//! [`taught_manifest`] the manifest of its model pair.
//!
//! Steps and evaluations return their figures as tensors still on the device: a browser must
//! read them asynchronously (`into_data_async`), and reading every step would stall WebGPU.

use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::augment::{hflip, shift};
use crate::error::{Result, VitError};
use crate::model::VisionTransformer;
use crate::preprocess::Normalization;
use crate::rng::Rng;
use crate::transfer::Trainable;
use crate::weights::{Manifest, WeightsFile, check_model_name, sha256_hex};

/// Fewest classes: teaching learns to tell classes apart.
pub const MIN_CLASSES: usize = 2;
/// Most classes the panel takes.
pub const MAX_CLASSES: usize = 20;
/// Most photos one class takes; the page keeps each as the model's small square, not decoded.
pub const MAX_PHOTOS_PER_CLASS: usize = 1000;
/// Photos a class needs before a share of each class is held out to measure accuracy.
pub const MIN_PHOTOS_FOR_HOLDOUT: usize = 5;
/// [`Mode::LastBlock`] keeps every view's tokens in memory; past this many bytes it is refused.
pub const MAX_FEATURE_BYTES: usize = 256 << 20;

/// Which part of the model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A new head on the frozen pooled token (a linear probe).
    Head,
    /// A new head, the last block and the final norm.
    LastBlock,
}

impl Mode {
    fn trainable(self) -> Trainable {
        match self {
            Mode::Head => Trainable::Head,
            Mode::LastBlock => Trainable::LastBlocks(1),
        }
    }

    /// Blocks the frozen part runs before the features are taken.
    fn frozen_blocks(self, depth: usize) -> usize {
        match self {
            Mode::Head => depth,
            Mode::LastBlock => depth.saturating_sub(1),
        }
    }
}

/// How a model is taught; [`TeachConfig::new`] gives each mode's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeachConfig {
    pub mode: Mode,
    /// AdamW steps, each on a batch of views drawn afresh.
    pub steps: usize,
    /// Peak learning rate; it falls to zero along a half cosine.
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub label_smoothing: f64,
    /// Views computed per training photo: the photo, its mirror image, then shifted crops
    /// (each mirrored or not at random).
    pub views: usize,
    /// The crops' padding in pixels at the model's size; `None`: a sixteenth of its side (3
    /// pixels at 48, as the trainer's `cifar10-cpu` recipe crops).
    pub crop_padding: Option<usize>,
    /// Share of each class held out to measure accuracy, when every class has at least
    /// [`MIN_PHOTOS_FOR_HOLDOUT`] photos.
    pub holdout: f64,
    pub seed: u64,
}

impl TeachConfig {
    pub fn new(mode: Mode) -> Self {
        // The last block's forward and backward pass cannot yield to a page midway: its
        // batches are smaller so that one step stays short.
        let (steps, learning_rate, views, batch_size) = match mode {
            Mode::Head => (300, 3e-3, 4, 64),
            Mode::LastBlock => (150, 1e-3, 2, 16),
        };
        Self {
            mode,
            steps,
            learning_rate,
            weight_decay: 1e-4,
            batch_size,
            label_smoothing: 0.1,
            views,
            crop_padding: None,
            holdout: 0.2,
            seed: 0,
        }
    }

    /// The learning rate at step `step`: a half cosine from the peak to zero.
    pub fn lr_at(&self, step: usize) -> f64 {
        let t = step as f64 / self.steps.max(1) as f64;
        0.5 * self.learning_rate * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }

    fn padding(&self, side: usize) -> usize {
        self.crop_padding.unwrap_or(side / 16)
    }
}

fn refuse(message: String) -> VitError {
    VitError::Teach(message)
}

/// Checks the classes as the person gave them (names, and photos in each) and returns the
/// names as labels: trimmed, 2 to 20 of them, none empty or repeated (ignoring case), each
/// with at least one photo and at most [`MAX_PHOTOS_PER_CLASS`].
pub fn check_classes(names: &[String], counts: &[usize]) -> Result<Vec<String>> {
    let n = names.len();
    if n < MIN_CLASSES {
        return Err(refuse(format!(
            "teaching needs at least {MIN_CLASSES} classes to tell apart; there {}",
            if n == 1 { "is 1" } else { "are none" }
        )));
    }
    if n > MAX_CLASSES {
        return Err(refuse(format!(
            "at most {MAX_CLASSES} classes can be taught, not {n}"
        )));
    }
    if counts.len() != n {
        return Err(refuse(format!(
            "{n} class names for {} photo counts",
            counts.len()
        )));
    }
    let labels: Vec<String> = names.iter().map(|s| s.trim().to_string()).collect();
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Err(refuse(format!("class {} has no name", i + 1)));
        }
        if let Some(j) = labels[..i]
            .iter()
            .position(|l| l.to_lowercase() == label.to_lowercase())
        {
            return Err(refuse(format!(
                "classes {} and {} are both called '{label}': give each class its own name",
                j + 1,
                i + 1
            )));
        }
    }
    for (label, &count) in labels.iter().zip(counts) {
        if count == 0 {
            return Err(refuse(format!(
                "class '{label}' has no photo yet: give every class at least one"
            )));
        }
        if count > MAX_PHOTOS_PER_CLASS {
            return Err(refuse(format!(
                "class '{label}' has {count} photos; at most {MAX_PHOTOS_PER_CLASS} are taken"
            )));
        }
    }
    Ok(labels)
}

/// Which photos train and which are held out: `(class, photo)` pairs, in class order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    pub train: Vec<(usize, usize)>,
    pub held: Vec<(usize, usize)>,
}

impl Split {
    /// Holds out `holdout` of each class (at least one photo), chosen at random from `seed`,
    /// when every class has [`MIN_PHOTOS_FOR_HOLDOUT`] photos; otherwise every photo trains.
    pub fn new(counts: &[usize], holdout: f64, seed: u64) -> Self {
        let hold = holdout > 0.0 && counts.iter().all(|&c| c >= MIN_PHOTOS_FOR_HOLDOUT);
        let mut split = Split::default();
        for (class, &count) in counts.iter().enumerate() {
            let mut order: Vec<usize> = (0..count).collect();
            let held = if hold {
                Rng::derive(seed, &[class as u64]).shuffle(&mut order);
                ((count as f64 * holdout).round() as usize).clamp(1, count - 1)
            } else {
                0
            };
            let (out, keep) = order.split_at(held);
            let mut out = out.to_vec();
            let mut keep = keep.to_vec();
            out.sort_unstable();
            keep.sort_unstable();
            split.held.extend(out.into_iter().map(|p| (class, p)));
            split.train.extend(keep.into_iter().map(|p| (class, p)));
        }
        split
    }

    /// Held-out photos per class.
    pub fn held_per_class(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        self.held.iter().for_each(|&(c, _)| counts[c] += 1);
        counts
    }
}

/// `count` views of one `side`-square RGB photo: the photo itself, then its mirror image, then
/// crops of the photo padded by `pad` black pixels, shifted and mirrored at random.
pub fn views(square: &[u8], side: usize, count: usize, pad: usize, rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut view = square.to_vec();
            match i {
                0 => {}
                1 => hflip(&mut view, side),
                _ => {
                    let mut offset = || rng.below(2 * pad + 1) as isize - pad as isize;
                    let (dx, dy) = (offset(), offset());
                    view = shift(&view, side, dx, dy);
                    if rng.chance(0.5) {
                        hflip(&mut view, side);
                    }
                }
            }
            view
        })
        .collect()
}

/// What the trained part of `mode` reads, from the frozen part: `[B, 1, D]`, the pooled token
/// the head reads, for [`Mode::Head`]; `[B, T, D]`, the tokens entering the last block, for
/// [`Mode::LastBlock`].
pub fn features(model: &VisionTransformer, mode: Mode, images: Tensor<4>) -> Tensor<3> {
    let tokens = model.tokens(images, mode.frozen_blocks(model.blocks.len()));
    match mode {
        Mode::Head => model.pool(tokens).unsqueeze_dim(1),
        Mode::LastBlock => tokens,
    }
}

/// Bytes of features `views` views take in `mode` (f32 on the device).
pub fn feature_bytes(model: &VisionTransformer, mode: Mode, views: usize) -> usize {
    let [_, tokens, dim] = model.pos_embed.dims();
    let per_view = match mode {
        Mode::Head => dim,
        Mode::LastBlock => tokens * dim,
    };
    views * per_view * 4
}

/// Refuses features that would take more than [`MAX_FEATURE_BYTES`] (only
/// [`Mode::LastBlock`] comes near: it keeps every view's tokens), saying what to do instead.
pub fn check_feature_memory(model: &VisionTransformer, mode: Mode, views: usize) -> Result<()> {
    let bytes = feature_bytes(model, mode, views);
    if bytes <= MAX_FEATURE_BYTES {
        return Ok(());
    }
    Err(refuse(format!(
        "teaching the last block keeps every photo's tokens: {views} views would take {} MB, \
         more than the {} MB allowed; teach the new head only, or use fewer photos",
        bytes >> 20,
        MAX_FEATURE_BYTES >> 20
    )))
}

/// Features of photos computed a batch at a time, so a page can yield between batches.
pub struct Extractor {
    mode: Mode,
    views: usize,
    pad: usize,
    norm: Normalization,
    side: usize,
    seed: u64,
    parts: Vec<Tensor<3>>,
    labels: Vec<usize>,
}

/// Photos' features with their classes: rows `photo * views .. (photo + 1) * views` are one
/// photo's views.
pub struct Examples {
    pub features: Tensor<3>,
    pub labels: Vec<usize>,
    pub views: usize,
}

impl Examples {
    pub fn photos(&self) -> usize {
        self.labels.len()
    }
}

impl Extractor {
    /// For photos of `side` pixels square, `views` views each (1 for held-out photos).
    pub fn new(config: &TeachConfig, side: usize, views: usize, norm: Normalization) -> Self {
        Self {
            mode: config.mode,
            views: views.max(1),
            pad: config.padding(side),
            norm,
            side,
            seed: config.seed,
            parts: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Adds one batch of photos: `(class, photo id, RGB square)`. The id picks the photo's
    /// crops, so a photo gets the same views whatever batch it lands in.
    pub fn add(
        &mut self,
        model: &VisionTransformer,
        photos: &[(usize, u64, &[u8])],
        device: &Device,
    ) {
        if photos.is_empty() {
            return;
        }
        let plane = self.side * self.side;
        let mut data = Vec::with_capacity(photos.len() * self.views * 3 * plane);
        for &(class, id, square) in photos {
            let mut rng = Rng::derive(self.seed, &[id]);
            for view in views(square, self.side, self.views, self.pad, &mut rng) {
                let start = data.len();
                data.resize(start + 3 * plane, 0.0);
                for (i, px) in view.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        data[start + c * plane + i] =
                            (px[c] as f32 / 255.0 - self.norm.mean[c]) / self.norm.std[c];
                    }
                }
            }
            self.labels.push(class);
        }
        let b = photos.len() * self.views;
        let images =
            Tensor::<4>::from_data(TensorData::new(data, [b, 3, self.side, self.side]), device);
        self.parts.push(features(model, self.mode, images));
    }

    /// Every photo added; `None` when there was none.
    pub fn finish(self) -> Option<Examples> {
        (!self.parts.is_empty()).then(|| Examples {
            features: Tensor::cat(self.parts, 0),
            labels: self.labels,
            views: self.views,
        })
    }
}

/// The model being taught, with its optimizer and the examples it learns from.
pub struct Teacher {
    /// `None` only while a step swaps it through the optimizer.
    model: Option<VisionTransformer>,
    optim: ModuleOptimizer,
    config: TeachConfig,
    classes: usize,
    train: Examples,
    held: Option<Examples>,
    step: usize,
}

/// Soft-target cross-entropy of `logits` `[B, C]` against labels smoothed by `smoothing`,
/// and how many argmaxes hit the labels: `[2]` = (mean loss, correct).
fn loss_and_hits(logits: Tensor<2>, labels: &[usize], smoothing: f64) -> (Tensor<1>, Tensor<1>) {
    let [b, c] = logits.dims();
    let device = logits.device();
    let off = smoothing / c as f64;
    let mut targets = vec![off as f32; b * c];
    for (i, &l) in labels.iter().enumerate() {
        targets[i * c + l] = (1.0 - smoothing + off) as f32;
    }
    let y = Tensor::<2>::from_data(TensorData::new(targets, [b, c]), &device);
    let loss = (log_softmax(logits.clone(), 1) * y)
        .sum()
        .neg()
        .div_scalar(b as f64);
    let truth = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect(), [b]),
        &device,
    );
    let hits = logits
        .argmax(1)
        .reshape([b])
        .equal(truth)
        .int()
        .sum()
        .float();
    (loss, hits)
}

impl Teacher {
    /// Starts teaching `base` (on the features' device, without autodiff) the classes of
    /// `train`: a new head for `classes` classes, and in [`Mode::LastBlock`] the last block
    /// and final norm learning too; everything else frozen.
    pub fn new(
        base: &VisionTransformer,
        classes: usize,
        config: TeachConfig,
        train: Examples,
        held: Option<Examples>,
    ) -> Result<Self> {
        if train.photos() == 0 {
            return Err(refuse("there is no photo to learn from".into()));
        }
        if config.steps == 0 || config.batch_size == 0 {
            return Err(refuse(
                "teaching needs at least one step of one photo".into(),
            ));
        }
        let model = base
            .clone()
            .with_new_head(classes)
            .train_only(config.mode.trainable())
            .train();
        let adamw = AdamWConfig::new().with_weight_decay(config.weight_decay as f32);
        Ok(Self {
            model: Some(model),
            optim: adamw.init(),
            config,
            classes,
            train,
            held,
            step: 0,
        })
    }

    pub fn steps_done(&self) -> usize {
        self.step
    }

    pub fn finished(&self) -> bool {
        self.step >= self.config.steps
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    fn model(&self) -> &VisionTransformer {
        self.model
            .as_ref()
            .expect("the model is back after every step")
    }

    fn logits(&self, model: &VisionTransformer, features: Tensor<3>) -> Tensor<2> {
        match self.config.mode {
            Mode::Head => {
                let [b, _, d] = features.dims();
                model.head.forward(features.reshape([b, d]))
            }
            Mode::LastBlock => model.forward_from(features, model.blocks.len() - 1),
        }
    }

    /// One AdamW step on a batch of the training photos (each in one of its views, drawn at
    /// random), at the learning rate of the schedule; returns `[2]` = (the batch's loss
    /// before the step, how many of its photos the model got right).
    pub fn step(&mut self) -> Tensor<1> {
        let mut rng = Rng::derive(self.config.seed, &[1, self.step as u64]);
        let n = self.train.photos();
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        order.truncate(self.config.batch_size.min(n));
        let views = self.train.views;
        let rows: Vec<i64> = order
            .iter()
            .map(|&p| (p * views + rng.below(views)) as i64)
            .collect();
        let labels: Vec<usize> = order.iter().map(|&p| self.train.labels[p]).collect();
        let device = self.train.features.device();
        let b = rows.len();
        let index = Tensor::<1, Int>::from_data(TensorData::new(rows, [b]), &device);
        let x = self.train.features.clone().select(0, index);

        let model = self
            .model
            .take()
            .expect("the model is back after every step");
        let logits = self.logits(&model, x);
        let (loss, hits) = loss_and_hits(logits, &labels, self.config.label_smoothing);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = self.config.lr_at(self.step);
        self.model = Some(self.optim.step(lr, model, grads));
        self.step += 1;
        Tensor::cat(vec![loss.without_autodiff(), hits.without_autodiff()], 0)
    }

    /// The held-out photos' `[2]` = (mean loss, accuracy), or `None` when none are held out.
    pub fn evaluate(&self) -> Option<Tensor<1>> {
        let held = self.held.as_ref()?;
        let model = self.model().valid();
        let logits = self.logits(&model, held.features.clone());
        let (loss, hits) = loss_and_hits(logits, &held.labels, 0.0);
        Some(Tensor::cat(
            vec![loss, hits.div_scalar(held.photos() as f64)],
            0,
        ))
    }

    /// Held-out photos, 0 when none are.
    pub fn held_photos(&self) -> usize {
        self.held.as_ref().map_or(0, Examples::photos)
    }

    /// The taught model, without autodiff: the base with its new head (and last block).
    pub fn finish(self) -> VisionTransformer {
        self.model().valid()
    }
}

/// How a model was taught, recorded in its manifest's `training`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeachRecord {
    /// The base model's name and weights' SHA-256.
    pub base: String,
    pub base_sha256: String,
    pub photos_per_class: Vec<usize>,
    pub held_out_per_class: Vec<usize>,
    /// Accuracy on the held-out photos at the end, when some were held out.
    pub held_out_accuracy: Option<f64>,
    /// Steps run (fewer than `config.steps` when stopped early).
    pub steps_run: usize,
    pub config: TeachConfig,
    /// Where it learned: "WebGPU", "CPU (Flex)", ...
    pub device: String,
    pub seconds: f64,
}

/// The manifest of a taught model's pair `NAME.json` + `NAME.bpk`, `weights` being its
/// burnpack bytes: the base's config and normalisation with the new classes, and where it came
/// from.
pub fn taught_manifest(
    base: &Manifest,
    name: &str,
    labels: Vec<String>,
    record: &TeachRecord,
    weights: &[u8],
) -> Result<Manifest> {
    check_model_name(name)?;
    let photos: usize = record.photos_per_class.iter().sum();
    let config = base.config.clone().with_num_classes(labels.len());
    config.validate()?;
    let mut manifest = Manifest::new(name, config, labels, base.normalization);
    manifest.description = format!(
        "{name}: {} classes taught in the page on top of {} from {photos} photos",
        manifest.labels.len(),
        base.name
    );
    manifest.source = format!(
        "taught in the page from {} ({} photos per class, {} mode, {} steps)",
        base.name,
        record
            .photos_per_class
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        match record.config.mode {
            Mode::Head => "head",
            Mode::LastBlock => "last-block",
        },
        record.steps_run
    );
    manifest.training = Some(serde_json::to_value(record).map_err(|e| refuse(e.to_string()))?);
    manifest.weights = WeightsFile {
        file: format!("{name}.bpk"),
        sha256: sha256_hex(weights),
        bytes: weights.len() as u64,
    };
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VitConfig;
    use crate::weights::{load_model, model_to_bytes};

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classes_are_checked_with_the_reason() {
        let labels = check_classes(&names(&[" cat ", "dog"]), &[3, 1]).unwrap();
        assert_eq!(labels, ["cat", "dog"]);
        for (list, counts, says) in [
            (&["cat"][..], &[3][..], "at least 2 classes"),
            (&["cat", ""], &[3, 3], "class 2 has no name"),
            (&["Cat", "cat "], &[3, 3], "both called 'cat'"),
            (&["cat", "dog"], &[3, 0], "'dog' has no photo"),
            (
                &["cat", "dog"],
                &[3, MAX_PHOTOS_PER_CLASS + 1],
                "at most 1000",
            ),
        ] {
            let e = check_classes(&names(list), counts).unwrap_err().to_string();
            assert!(e.contains(says), "{list:?} {counts:?}: {e}");
        }
        let many: Vec<String> = (0..=MAX_CLASSES).map(|i| format!("c{i}")).collect();
        let e = check_classes(&many, &vec![1; many.len()]).unwrap_err();
        assert!(e.to_string().contains("at most 20"), "{e}");
    }

    #[test]
    fn a_share_of_every_class_is_held_out_when_each_has_enough() {
        let split = Split::new(&[10, 5, 7], 0.2, 3);
        assert_eq!(split.held_per_class(3), [2, 1, 1]);
        assert_eq!(split.train.len() + split.held.len(), 22);
        for pair in &split.held {
            assert!(
                !split.train.contains(pair),
                "{pair:?} both trains and is held out"
            );
        }
        assert_eq!(
            split,
            Split::new(&[10, 5, 7], 0.2, 3),
            "the same seed, the same split"
        );
        assert_ne!(split.held, Split::new(&[10, 5, 7], 0.2, 4).held);
        // One class short of photos: every photo trains.
        let all = Split::new(&[10, MIN_PHOTOS_FOR_HOLDOUT - 1], 0.2, 3);
        assert!(all.held.is_empty());
        assert_eq!(all.train.len(), 10 + MIN_PHOTOS_FOR_HOLDOUT - 1);
    }

    #[test]
    fn views_are_the_photo_its_mirror_and_shifted_crops() {
        let side = 6;
        let square: Vec<u8> = (0..side * side * 3).map(|i| (i % 250 + 1) as u8).collect();
        let v = views(&square, side, 5, 1, &mut Rng::new(1));
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], square);
        let mut mirror = square.clone();
        hflip(&mut mirror, side);
        assert_eq!(v[1], mirror);
        for crop in &v[2..] {
            // A one-pixel shift keeps at least (side - 1)^2 of the photo's pixels.
            let kept = crop.chunks(3).filter(|p| p.iter().any(|&c| c != 0)).count();
            assert!(kept >= (side - 1) * (side - 1), "{kept}");
        }
    }

    /// A random tiny ViT and photos of three classes it can tell apart from their colour: red,
    /// green or blue squares with noise.
    /// Photos as the page gives them: class, id, RGB square.
    type Photos = Vec<(usize, u64, Vec<u8>)>;

    fn tiny_setup(mode: Mode) -> (VisionTransformer, TeachConfig, Photos) {
        let device = Device::flex();
        device.seed(11);
        let model = VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(16)
            .with_depth(2)
            .with_num_heads(2)
            .with_num_classes(10)
            .init(&device)
            .unwrap();
        let mut rng = Rng::new(5);
        let photos = (0..30u64)
            .map(|i| {
                let class = (i % 3) as usize;
                let square = (0..64 * 3)
                    .map(|k| {
                        let base = if k % 3 == class { 200 } else { 40 };
                        (base + rng.below(40)) as u8
                    })
                    .collect();
                (class, i, square)
            })
            .collect();
        let mut config = TeachConfig::new(mode);
        config.steps = 60;
        config.learning_rate = 1e-2;
        (model, config, photos)
    }

    fn teach(
        mode: Mode,
    ) -> (
        VisionTransformer,
        VisionTransformer,
        Vec<Vec<f32>>,
        Vec<usize>,
    ) {
        let (base, config, photos) = tiny_setup(mode);
        let device = Device::flex();
        let counts = [10, 10, 10];
        let split = Split::new(&counts, config.holdout, config.seed);
        let of = |class: usize, p: usize| &photos[p * 3 + class];
        let mut train = Extractor::new(&config, 8, config.views, Normalization::CIFAR10);
        for chunk in split.train.chunks(7) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|&(c, p)| {
                    let (class, id, square) = of(c, p);
                    (*class, *id, square.as_slice())
                })
                .collect();
            train.add(&base, &batch, &device);
        }
        let mut held = Extractor::new(&config, 8, 1, Normalization::CIFAR10);
        let held_photos: Vec<_> = split
            .held
            .iter()
            .map(|&(c, p)| {
                let (class, id, square) = of(c, p);
                (*class, *id, square.as_slice())
            })
            .collect();
        held.add(&base, &held_photos, &device);
        let mut teacher =
            Teacher::new(&base, 3, config, train.finish().unwrap(), held.finish()).unwrap();
        assert_eq!(teacher.held_photos(), 6);
        let first = teacher.step().into_data().try_to_vec::<f32>().unwrap();
        while !teacher.finished() {
            teacher.step();
        }
        let last = teacher.step().into_data().try_to_vec::<f32>().unwrap();
        assert!(
            last[0] < first[0] * 0.7,
            "{mode:?}: loss {} -> {}",
            first[0],
            last[0]
        );
        let eval = teacher
            .evaluate()
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            eval[1] >= 5.0 / 6.0,
            "{mode:?}: held-out accuracy {}",
            eval[1]
        );
        // The held-out photos through the whole taught model, as the page and the CLI run it.
        let chw: Vec<Vec<f32>> = held_photos
            .iter()
            .map(|(_, _, square)| {
                let img = image::RgbImage::from_raw(8, 8, square.to_vec()).unwrap();
                let mut out = Vec::new();
                Normalization::CIFAR10.extend_chw(&img, &mut out);
                out
            })
            .collect();
        let labels = held_photos.iter().map(|(c, _, _)| *c).collect();
        (base, teacher.finish(), chw, labels)
    }

    fn logits(model: &VisionTransformer, chw: &[Vec<f32>]) -> Vec<f32> {
        let images: Vec<&[f32]> = chw.iter().map(Vec::as_slice).collect();
        let x = crate::preprocess::batch_tensor(&images, 8, &Device::flex());
        model.forward(x).into_data().try_to_vec::<f32>().unwrap()
    }

    /// Every parameter's values by path.
    fn params(model: &VisionTransformer) -> Vec<(String, Vec<f32>)> {
        struct Collect(Vec<(String, Vec<f32>)>, Vec<String>);
        impl burn::module::ModuleVisitor for Collect {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.1.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.1.pop();
            }
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                let v = p.val().into_data().try_to_vec::<f32>().unwrap();
                self.0.push((self.1.join("."), v));
            }
        }
        let mut c = Collect(Vec::new(), Vec::new());
        model.visit(&mut c);
        c.0
    }

    #[test]
    fn teaching_learns_new_classes_and_leaves_the_frozen_part_alone() {
        for (mode, learning) in [
            (Mode::Head, &["head."][..]),
            (Mode::LastBlock, &["head.", "blocks.1.", "norm."][..]),
        ] {
            let (base, taught, chw, labels) = teach(mode);
            // The taught model's own forward pass gets the held-out photos right, as the
            // teacher's features did.
            let l = logits(&taught, &chw);
            let right = labels
                .iter()
                .enumerate()
                .filter(|&(i, &c)| {
                    let row = &l[i * 3..i * 3 + 3];
                    (0..3).all(|k| row[c] >= row[k])
                })
                .count();
            assert!(
                right >= 5,
                "{mode:?}: {right} of 6 right through the whole model"
            );
            let before = params(&base);
            for (path, value) in params(&taught) {
                if path.starts_with("head.") {
                    assert_eq!(value.len() % 3, 0, "{path}: 3 classes");
                    continue;
                }
                let old = &before.iter().find(|(p, _)| *p == path).unwrap().1;
                let moved = learning.iter().any(|prefix| path.starts_with(prefix));
                assert_eq!(
                    value != *old,
                    moved,
                    "{mode:?}: {path} moved: {}",
                    value != *old
                );
            }
        }
    }

    #[test]
    fn tokens_past_the_memory_budget_are_refused_with_what_to_do() {
        let (model, _, _) = tiny_setup(Mode::LastBlock);
        // 5 tokens of 16 floats per view at this size.
        assert_eq!(feature_bytes(&model, Mode::LastBlock, 1), 5 * 16 * 4);
        let fits = MAX_FEATURE_BYTES / (5 * 16 * 4);
        check_feature_memory(&model, Mode::LastBlock, fits).unwrap();
        let e = check_feature_memory(&model, Mode::LastBlock, fits + 1).unwrap_err();
        assert!(e.to_string().contains("teach the new head only"), "{e}");
        check_feature_memory(&model, Mode::Head, fits + 1).unwrap();
    }

    #[test]
    fn the_taught_pair_loads_back_with_its_classes() {
        let (base, taught, chw, _) = teach(Mode::Head);
        let base_manifest = Manifest::new(
            "base",
            VitConfig::new()
                .with_image_size(8)
                .with_patch_size(4)
                .with_embed_dim(16)
                .with_depth(2)
                .with_num_heads(2)
                .with_num_classes(10),
            (0..10).map(|i| format!("c{i}")).collect(),
            Normalization::CIFAR10,
        );
        let record = TeachRecord {
            base: "base".into(),
            base_sha256: "00".into(),
            photos_per_class: vec![10, 10, 10],
            held_out_per_class: vec![2, 2, 2],
            held_out_accuracy: Some(1.0),
            steps_run: 60,
            config: TeachConfig::new(Mode::Head),
            device: "CPU (Flex)".into(),
            seconds: 1.0,
        };
        let bytes = model_to_bytes(&taught).unwrap();
        let labels = names(&["red", "green", "blue"]);
        let manifest =
            taught_manifest(&base_manifest, "my-colours", labels, &record, &bytes).unwrap();
        assert_eq!(manifest.config.num_classes, 3);
        assert_eq!(manifest.weights.file, "my-colours.bpk");
        assert!(
            manifest.source.contains("from base (10/10/10 photos"),
            "{}",
            manifest.source
        );
        let again = Manifest::from_json(&manifest.to_json(), "my-colours.json").unwrap();
        assert_eq!(
            again.training.unwrap()["held_out_per_class"],
            serde_json::json!([2, 2, 2])
        );
        let loaded = load_model(&manifest, &bytes, &Device::flex()).unwrap();
        assert_eq!(logits(&loaded, &chw), logits(&taught, &chw));
        assert_ne!(logits(&base, &chw).len(), logits(&taught, &chw).len());
        let e = taught_manifest(&base_manifest, "index", names(&["a", "b"]), &record, &bytes);
        assert!(e.unwrap_err().to_string().contains("invalid model name"));
    }
}
