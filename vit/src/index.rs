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
    /// The size of its `model.safetensors`: what a first visit downloads.
    pub bytes: u64,
    /// ImageNet-1k top-1 from its model card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
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
}
