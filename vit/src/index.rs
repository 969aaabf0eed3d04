//! `www/models/index.json`, the only list the trainer and the page share: the published models
//! (`trainer publish` writes them) and the hub models the page offers.

use serde::{Deserialize, Serialize};

use crate::error::{Result, VitError};
use crate::weights::Manifest;

/// `www/models/index.json`: the models the page lists, written by `trainer publish`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelIndex {
    /// The `name` of the model the page loads first.
    #[serde(default)]
    pub default: Option<String>,
    pub models: Vec<IndexEntry>,
    /// The page's "From the Hugging Face hub" group (written by hand; `publish` keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubList>,
}

/// Hub models the page offers ready to fetch, and the hub it fetches them from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HubList {
    /// The hub's base URL; huggingface.co when absent. The page's `?hub=URL`
    /// replaces it (tests point it at a local stand-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub models: Vec<HubEntry>,
}

/// A hub model as the page lists it before anything is fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HubEntry {
    /// `ORG/NAME[@REVISION]`, as a hub name is written.
    pub repo: String,
    /// A short name for the list, e.g. "DeiT-Ti/16".
    pub title: String,
    pub params: usize,
    /// The size of its `model.safetensors`: what a first visit downloads. The file's, as timm
    /// writes it (an 8-byte length, the JSON header, then the f32 data), not `params * 4`;
    /// a test holds each entry to the size computed for its architecture.
    pub bytes: u64,
    /// ImageNet-1k top-1 from its model card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
    /// The input size the page runs it at, when smaller than its checkpoint's (a DINOv2 made
    /// for 518 px runs at 224: its position embeddings resampled as the weights are read, as
    /// `trainer --image-size` does). Absent: its checkpoint's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// A few words the list shows after the title, for a model whose top-1 says nothing
    /// (one without classes, kept as a backbone to teach on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub name: String,
    /// The manifest's file name, beside `index.json`.
    pub manifest: String,
    #[serde(default)]
    pub description: String,
    pub params: usize,
    /// Size of the weights file.
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
}

impl ModelIndex {
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| VitError::Manifest {
            path: origin.into(),
            message: e.to_string(),
        })
    }

    /// Adds or replaces the entry for `manifest`, optionally making it the default.
    pub fn upsert(&mut self, manifest: &Manifest, make_default: bool) {
        let entry = IndexEntry {
            name: manifest.name.clone(),
            manifest: format!("{}.json", manifest.name),
            description: manifest.description.clone(),
            params: manifest.config.num_params(),
            bytes: manifest.weights.bytes,
            top1: manifest.metrics.as_ref().map(|m| m.top1),
        };
        match self.models.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) => *existing = entry,
            None => self.models.push(entry),
        }
        if make_default || self.default.is_none() {
            self.default = Some(manifest.name.clone());
        }
    }

    /// The default entry, or the first one.
    pub fn default_entry(&self) -> Option<&IndexEntry> {
        self.default
            .as_ref()
            .and_then(|d| self.models.iter().find(|e| &e.name == d))
            .or(self.models.first())
    }

    /// The hub list's entry for the hub model `name` (`ORG/NAME[@REVISION]`, with or without
    /// `hf-hub:`).
    pub fn hub_entry(&self, name: &str) -> Option<&HubEntry> {
        let bare = name.strip_prefix(crate::hub::PREFIX).unwrap_or(name);
        self.hub.as_ref()?.models.iter().find(|e| e.repo == bare)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::VitConfig;
    use crate::weights::expected_tensors;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The size of the `model.safetensors` that timm's `save_for_hf` writes for `config`: an
    /// 8-byte header length, the header (each tensor in name order, with its dtype, shape and
    /// byte range, as compact JSON padded with spaces to 8 bytes), then the f32 data in the
    /// same order.
    fn timm_file_size(config: &VitConfig) -> u64 {
        let mut tensors: Vec<(String, Vec<usize>)> = expected_tensors(config)
            .into_iter()
            .map(|(name, shape)| {
                // A LayerNorm's gamma and beta are timm's weight and bias; layer scale's
                // `ls1.gamma` keeps its name.
                let name = match name.rsplit_once('.') {
                    Some((module, "gamma"))
                        if !module.ends_with(".ls1") && !module.ends_with(".ls2") =>
                    {
                        format!("{module}.weight")
                    }
                    Some((module, "beta")) => format!("{module}.bias"),
                    _ => name,
                };
                let name = match (config.uses_fc_norm(), name.strip_prefix("norm.")) {
                    (true, Some(rest)) => format!("fc_norm.{rest}"),
                    _ => name,
                };
                (name, shape)
            })
            .collect();
        tensors.sort();
        let mut header = serde_json::Map::new();
        let mut offset = 0u64;
        for (name, shape) in tensors {
            let bytes = 4 * shape.iter().product::<usize>() as u64;
            header.insert(
                name,
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
            );
            offset += bytes;
        }
        let header = serde_json::Value::Object(header).to_string();
        8 + header.len().next_multiple_of(8) as u64 + offset
    }

    /// `architecture` as config.json describes it, with timm's default classes (1000, or none
    /// for a DINOv2).
    fn config_of(architecture: &str) -> VitConfig {
        let text = serde_json::json!({"architecture": architecture});
        crate::hub::read_config(&text.to_string(), architecture)
            .unwrap()
            .config
    }

    #[test]
    fn the_size_computed_is_the_size_of_the_files_timm_wrote() {
        // The fixture repos, written by timm's save_for_hf (tests/fixtures/make_hub_reference.py).
        let hub = root().join("tests/fixtures/hub/timm");
        for repo in [
            "deit_tiny_patch16_224.fb_in1k",
            "vit_small_patch32_384.augreg_in21k_ft_in1k",
            "deit3_small_patch16_224.fb_in22k_ft_in1k",
            "vit_small_patch14_reg4_dinov2.lvd142m",
            "deit_tiny_distilled_patch16_224.fb_in1k",
            "vit_medium_patch16_gap_256.sw_in12k_ft_in1k",
        ] {
            let dir = hub.join(repo);
            let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
            let model = crate::hub::read_config(&config, repo).unwrap();
            let file = std::fs::metadata(dir.join("model.safetensors"))
                .unwrap()
                .len();
            assert_eq!(timm_file_size(&model.config), file, "{repo}");
        }
    }

    #[test]
    fn hub_entries_carry_the_size_of_their_weights_file() {
        let text = std::fs::read_to_string(root().join("www/models/index.json")).unwrap();
        let index = ModelIndex::from_json(&text, "index.json").unwrap();
        let hub = index.hub.expect("the page's hub list");
        assert!(!hub.models.is_empty());
        for entry in &hub.models {
            let name = entry.repo.split('@').next().unwrap();
            let architecture = name.rsplit('/').next().unwrap().split('.').next().unwrap();
            let config = config_of(architecture);
            assert_eq!(entry.params, config.num_params(), "{}", entry.repo);
            assert_eq!(entry.bytes, timm_file_size(&config), "{}", entry.repo);
        }
    }
}
