//! Test-set evaluation, shared by the training loop and `trainer eval`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};
use vit::VisionTransformer;
use vit::weights::{Metrics, load_pair};

use crate::augment::Loader;
use crate::data::{self, DatasetKind, Samples};
use crate::device::{DeviceArg, resolve_many};
use crate::parallel::Replicas;

/// What one pass over a test set measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub images: usize,
    pub loss: f64,
    pub top1: f64,
    pub top5: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
    /// Each test image's (true, predicted) class, in dataset order.
    #[serde(skip)]
    pub predictions: Vec<(usize, usize)>,
}

impl Evaluation {
    /// Top-1 accuracy of each class (0 for a class with no test images).
    pub fn per_class(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let n: u64 = row.iter().sum();
                if n == 0 {
                    0.0
                } else {
                    row[i] as f64 / n as f64
                }
            })
            .collect()
    }

    pub fn to_metrics(&self, dataset: &str) -> Metrics {
        Metrics {
            dataset: dataset.into(),
            images: self.images,
            top1: self.top1,
            top5: self.top5,
            loss: Some(self.loss),
            per_class: self.per_class(),
        }
    }
}

/// Runs the model (in inference mode) over every test image, in order.
pub fn evaluate(
    model: &VisionTransformer,
    samples: Arc<Samples>,
    num_classes: usize,
    norm: vit::Normalization,
    replicas: &Replicas,
) -> Result<Evaluation> {
    let size = samples.size as usize;
    let total = samples.len();
    let loader = Loader::new(samples, num_classes, 256, None, norm, 0, 2, 2);
    let mut confusion = vec![vec![0u64; num_classes]; num_classes];
    let mut predictions = Vec::with_capacity(total);
    let (mut images, mut loss_sum, mut top1, mut top5) = (0usize, 0f64, 0usize, 0usize);
    // One copy of the model per replica, moved to its device once.
    let models: Vec<_> = (0..replicas.count())
        .map(|i| model.clone().fork(&replicas.inference_device(i)))
        .collect();
    for batch in loader.epoch(0, 0) {
        let b = batch.len;
        let pixels = 3 * size * size;
        // Each replica classifies its share of the batch.
        let shards = replicas.map_shards(b, |i, range| {
            let device = replicas.inference_device(i);
            let images = batch.images[range.start * pixels..range.end * pixels].to_vec();
            let x = Tensor::<4>::from_data(
                TensorData::new(images, [range.len(), 3, size, size]),
                &device,
            );
            log_softmax(models[i].forward(x), 1)
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
        });
        let mut flat = Vec::with_capacity(b * num_classes);
        for shard in shards {
            flat.extend(shard.map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?);
        }
        for (row, &label) in flat.chunks(num_classes).zip(&batch.labels) {
            let label = label as usize;
            loss_sum -= row[label] as f64;
            let mut order: Vec<usize> = (0..num_classes).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            confusion[label][order[0]] += 1;
            predictions.push((label, order[0]));
            top1 += (order[0] == label) as usize;
            top5 += order.iter().take(5).any(|&c| c == label) as usize;
        }
        images += b;
    }
    if images == 0 {
        bail!("the test set is empty");
    }
    let n = images as f64;
    Ok(Evaluation {
        images,
        loss: loss_sum / n,
        top1: top1 as f64 / n,
        top5: top5 as f64 / n,
        confusion,
        predictions,
    })
}

/// `trainer eval`: a published model on a dataset's test split.
pub fn run(
    model_path: &Path,
    data_dir: &Path,
    kind: DatasetKind,
    device: DeviceArg,
    confusion_png: Option<&Path>,
    predictions_csv: Option<&Path>,
) -> Result<ExitCode> {
    let (devices, device_name, cpu) = resolve_many(device, None)?;
    let device = devices[0].clone();
    let replicas = Replicas::new(devices, cpu)?;
    let (manifest, model) = load_pair(model_path, &device)
        .with_context(|| format!("loading model {}", model_path.display()))?;
    let data = data::load(kind, data_dir, manifest.config.image_size as u32, 0, None)?;
    if data.classes.len() != manifest.config.num_classes {
        bail!(
            "the dataset has {} classes, the model {}",
            data.classes.len(),
            manifest.config.num_classes
        );
    }
    let start = std::time::Instant::now();
    let eval = evaluate(
        &model,
        Arc::new(data.test),
        manifest.config.num_classes,
        manifest.normalization,
        &replicas,
    )?;
    println!(
        "{}: {} test images of {} on {device_name} in {:.1}s",
        manifest.name,
        eval.images,
        data.description,
        start.elapsed().as_secs_f64()
    );
    println!(
        "top-1 {:.2}%  top-5 {:.2}%  loss {:.4}",
        100.0 * eval.top1,
        100.0 * eval.top5,
        eval.loss
    );
    if let Some(recorded) = &manifest.metrics {
        println!(
            "recorded in the manifest: top-1 {:.2}%  top-5 {:.2}%",
            100.0 * recorded.top1,
            100.0 * recorded.top5
        );
    }
    println!("per-class top-1:");
    for (label, acc) in manifest.labels.iter().zip(eval.per_class()) {
        println!("  {label:<16} {:6.2}%", 100.0 * acc);
    }
    if let Some(out) = predictions_csv {
        let mut csv = String::from("index,true,predicted\n");
        for (i, (t, p)) in eval.predictions.iter().enumerate() {
            csv += &format!("{i},{},{}\n", manifest.labels[*t], manifest.labels[*p]);
        }
        vit::weights::write_atomic(out, csv.as_bytes())?;
        println!("wrote {}", out.display());
    }
    if let Some(out) = confusion_png {
        crate::plots::confusion_png(&eval.confusion, &manifest.labels, &manifest.name, out)?;
        println!("wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
