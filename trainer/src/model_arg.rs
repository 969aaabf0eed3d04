//! `--model` (and `finetune --from`): a model pair's manifest, or a timm model on the Hugging Face
//! hub as timm names it, `hf-hub:ORG/NAME[@REVISION]` (fetched once into the hub cache).

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use vit::VisionTransformer;
use vit::hub::HubName;
use vit::pos_embed::Resample;
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

    /// As [`Self::load`], the model run at `image_size` pixels when given: its position
    /// embeddings resampled to the new patch grid as timm does when it loads a checkpoint at
    /// another size (bicubic, antialiased), and the manifest's preprocessing to that size. A
    /// DINOv2 made for 518 px runs at 224 so.
    pub fn load_at(
        &self,
        device: &Device,
        image_size: Option<usize>,
    ) -> Result<(Manifest, VisionTransformer)> {
        let (mut manifest, model) = self.load(device)?;
        let Some(size) = image_size.filter(|&s| s != manifest.config.image_size) else {
            return Ok((manifest, model));
        };
        let from = manifest.config.clone();
        let to = from.clone().with_image_size(size);
        if let Err(e) = to.validate() {
            bail!("--image-size {size} for {self}: {e}");
        }
        let model = model.resized(&from, &to, Resample::BicubicAntialias)?;
        manifest.config = to;
        Ok((manifest, model))
    }

    /// Refuses a model without a classifier (timm's `num_classes=0`, a feature model such as
    /// DINOv2) for `what` (predict, eval), saying in one line what it can do instead. Asked
    /// once the model is loaded: a hub model's files enter the cache only together, and the
    /// ones fetched serve `explain` and `finetune` next.
    pub fn needs_classes(&self, manifest: &Manifest, what: &str) -> Result<()> {
        if manifest.config.num_classes > 0 {
            return Ok(());
        }
        bail!(
            "{self} has no classes (num_classes 0: a feature model without a classifier), so it \
             cannot {what}; it can explain a photo (trainer explain --model {self} IMAGE, \
             attention or rollout), be fine-tuned on classes of your own (trainer finetune \
             --from {self} --data-dir FOLDER --run RUN, one folder per class), or be taught \
             classes in the page's Teach panel"
        )
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
