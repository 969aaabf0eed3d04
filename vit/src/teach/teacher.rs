//! The head training: [`Teacher`] runs AdamW steps on the features alone, through burn's
//! autodiff, evaluates on the held-out photos, and gives back the taught model.

use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::config::{Mode, TeachConfig, refuse};
use super::features::Examples;
use crate::error::Result;
use crate::model::VisionTransformer;
use crate::rng::Rng;

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
    /// `train`: a new head for `classes` classes (two for a distilled model), and in
    /// [`Mode::LastBlock`] the last block and final norm learning too; everything else,
    /// the prefix tokens included, frozen. `base` may have no classifier (a feature model).
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
            Mode::Head => model.heads(features),
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
