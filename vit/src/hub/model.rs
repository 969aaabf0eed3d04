//! A timm hub model as Vitrine runs it: its config, timm's eval preprocessing, its class
//! names, and the model pair's manifest it becomes.

use crate::config::VitConfig;
use crate::error::{Result, VitError};
use crate::preprocess::{Normalization, Resize};
use crate::weights::Manifest;

use super::name::HubName;

/// The two files of a timm hub repo (`timm.models.push_to_hf_hub` writes exactly these).
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// A config.json larger than this is not a timm config (the largest, with 21k label names,
/// is about 1 MB).
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Where a hub model's class names came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// config.json's `label_descriptions` or `label_names`.
    Config,
    /// 1000 classes and no names: ImageNet-1k's, shipped with Vitrine.
    ImageNet1k,
    /// "class 0", "class 1", ...
    Indices,
}

/// A timm hub model as Vitrine runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct HubModel {
    /// timm's architecture name, e.g. `deit_tiny_patch16_224`.
    pub architecture: String,
    pub config: VitConfig,
    pub resize: Resize,
    pub norm: Normalization,
    pub labels: Vec<String>,
    pub label_source: LabelSource,
}

impl HubModel {
    /// The same model run at `image_size` pixels (a multiple of its patch size): the same
    /// preprocessing to that size, and its position embeddings resampled from the
    /// checkpoint's grid when the weights are read (bicubic, antialiased, as timm's
    /// `resample_abs_pos_embed` at load), so that a DINOv2 made for 518 px runs at 224.
    pub fn with_image_size(mut self, image_size: usize) -> Result<Self> {
        self.config.image_size = image_size;
        self.config
            .validate()
            .map_err(|e| VitError::Hub(format!("{} at {image_size} px: {e}", self.architecture)))?;
        Ok(self)
    }

    /// The model pair's manifest for this model of `name` at `commit` (its weights entry is
    /// filled when it is saved): the trainer's `import-timm` and the page describe it alike.
    pub fn manifest(&self, name: &HubName, commit: &str) -> Manifest {
        let c = &self.config;
        let mut manifest =
            Manifest::new(&name.pair_name(), c.clone(), self.labels.clone(), self.norm);
        manifest.resize = self.resize;
        manifest.source = format!("{}/{}@{commit} (Hugging Face hub)", name.org, name.name);
        let classes = match c.num_classes {
            0 => "no classifier".to_string(),
            n => format!("{n} classes"),
        };
        manifest.description = format!(
            "{} from the Hugging Face hub: {}px, patch {}, {}, {classes}",
            self.architecture,
            c.image_size,
            c.patch_size,
            c.prefix_tokens().summary()
        );
        manifest
    }
}
