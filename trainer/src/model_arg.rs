//! `--model` (and `finetune --from`): a model pair's manifest, or a timm model on the Hugging Face
//! hub as timm names it, `hf-hub:ORG/NAME[@REVISION]` (fetched once into the hub cache).

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result};
use burn::prelude::Device;
use vit::VisionTransformer;
use vit::hub::HubName;
use vit::weights::{Manifest, load_pair};

#[derive(Debug, Clone)]
pub enum ModelArg {
    /// `NAME.json`, with `NAME.bpk` beside it.
    Pair(PathBuf),
    Hub(HubName),
}

impl FromStr for ModelArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match HubName::from_model_arg(s) {
            Some(name) => name.map(Self::Hub).map_err(|e| e.to_string()),
            None => Ok(Self::Pair(PathBuf::from(s))),
        }
    }
}

impl std::fmt::Display for ModelArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pair(path) => write!(f, "{}", path.display()),
            Self::Hub(name) => write!(f, "{name}"),
        }
    }
}

impl ModelArg {
    /// The manifest and the model with its weights, on `device`.
    pub fn load(&self, device: &Device) -> Result<(Manifest, VisionTransformer)> {
        match self {
            Self::Pair(path) => {
                load_pair(path, device).with_context(|| format!("loading model {}", path.display()))
            }
            Self::Hub(name) => {
                let loaded = crate::hub::load(name, device)?;
                Ok((loaded.manifest, loaded.model))
            }
        }
    }

    /// The manifest alone (a hub model's config.json, without its weights).
    pub fn manifest(&self) -> Result<Manifest> {
        match self {
            Self::Pair(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok(Manifest::from_json(&text, &path.display().to_string())?)
            }
            Self::Hub(name) => crate::hub::manifest(name),
        }
    }
}
