//! Test-set evaluation, shared by the training loop and `trainer eval`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};
use vit::VisionTransformer;
use vit::weights::Metrics;

use crate::data::{self, DatasetKind, Samples};
use crate::device::{DeviceArg, resolve_many};
use crate::loader::Loader;
use crate::model_arg::ModelArg;
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

/// Differences listed at most, so a model of another dataset gets a short message.
const MAX_LISTED: usize = 10;

/// A model is scored by label index, so its class names must be the dataset's, in order:
/// otherwise every "correct" answer would be counted against another class's name.
fn check_same_classes(model: &[String], dataset: &[String]) -> Result<()> {
    if model == dataset {
        return Ok(());
    }
    let mut lines = Vec::new();
    if model.len() != dataset.len() {
        lines.push(format!(
            "the dataset has {} classes, the model {}",
            dataset.len(),
            model.len()
        ));
    }
    let none = String::from("(none)");
    let differing: Vec<String> = (0..model.len().max(dataset.len()))
        .filter(|&i| model.get(i) != dataset.get(i))
        .map(|i| {
            format!(
                "  class {i}: the model says '{}', the dataset '{}'",
                model.get(i).unwrap_or(&none),
                dataset.get(i).unwrap_or(&none)
            )
        })
        .collect();
    lines.push(format!(
        "{} of the class names differ between the model and the dataset:",
        differing.len()
    ));
    let more = differing.len().saturating_sub(MAX_LISTED);
    lines.extend(differing.into_iter().take(MAX_LISTED));
    if more > 0 {
        lines.push(format!("  ... and {more} more"));
    }
    bail!("{}", lines.join("\n"))
}

/// `trainer eval`: a published model on a dataset's test split.
pub fn run(
    model_arg: &ModelArg,
    data_dir: &Path,
    kind: Option<DatasetKind>,
    device: DeviceArg,
    confusion_png: Option<&Path>,
    predictions_csv: Option<&Path>,
) -> Result<ExitCode> {
    let (devices, device_name, cpu) = resolve_many(device, None)?;
    crate::device::check(&devices, &device_name)?;
    let device = devices[0].clone();
    let replicas = Replicas::new(devices, cpu)?;
    let (manifest, model) = model_arg.load(&device)?;
    model_arg.needs_classes(&manifest, "be evaluated on a dataset")?;
    let kind = data::resolve(kind, data_dir)?;
    let data = data::load(kind, data_dir, manifest.config.image_size as u32, 0, None)?;
    check_same_classes(&manifest.labels, &data.classes)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn class_names_must_match_in_order() {
        check_same_classes(&names("cat dog"), &names("cat dog")).unwrap();
        let e = check_same_classes(&names("cat dog eel"), &names("dog cat eel")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 of the class names differ between the model and the dataset:\n  class 0: the model says 'cat', the dataset 'dog'\n  class 1: the model says 'dog', the dataset 'cat'"
        );
        let e = check_same_classes(&names("cat"), &names("cat dog")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the dataset has 2 classes, the model 1\n1 of the class names differ between the model and the dataset:\n  class 1: the model says '(none)', the dataset 'dog'"
        );
    }

    #[test]
    fn a_long_list_of_differences_is_capped() {
        let model: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let data: Vec<String> = (0..100).map(|i| format!("d{i}")).collect();
        let msg = check_same_classes(&model, &data).unwrap_err().to_string();
        assert_eq!(msg.lines().count(), 12, "{msg}");
        assert!(msg.ends_with("  ... and 90 more"), "{msg}");
    }
}
