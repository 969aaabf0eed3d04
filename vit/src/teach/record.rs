//! What a taught model records: how it was taught ([`TeachRecord`]) and the manifest of its
//! model pair ([`taught_manifest`]).

use serde::{Deserialize, Serialize};

use super::config::{Mode, TeachConfig, refuse};
use crate::error::Result;
use crate::weights::{Manifest, WeightsFile, check_model_name, sha256_hex};

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
