//! A checkpoint against the model its config.json describes: every tensor's shape checked,
//! each difference named, and then the weights read into a model. Only the patch grid may
//! differ: a model asked to run at another size ([`HubModel::with_image_size`]) gets the
//! checkpoint's position embeddings resampled, as timm's `checkpoint_filter_fn` does.

use crate::config::VitConfig;
use crate::error::{Result, VitError};
use crate::model::VisionTransformer;
use crate::timm::{import_timm_bytes, infer_timm_config, safetensors_shapes_from_bytes};
use crate::weights::{Shapes, expected_tensors};
use burn::prelude::Device;

use super::model::HubModel;

/// Checks a checkpoint's tensor shapes against the model its config.json describes, naming
/// every difference; the number of heads is the config's (no shape records it).
pub fn check_checkpoint(model: &HubModel, shapes: &Shapes, origin: &str) -> Result<()> {
    let want = &model.config;
    let found = infer_timm_config(shapes, want.num_heads).map_err(|e| {
        VitError::Hub(format!(
            "{origin} does not hold a {}: {}",
            model.architecture,
            e.to_string().replace('\n', " ")
        ))
    })?;
    // What a checkpoint's shapes say, against what config.json says.
    let fields: [Field; 11] = [
        ("patch size", |c| c.patch_size.to_string()),
        ("embed_dim", |c| c.embed_dim.to_string()),
        ("depth", |c| c.depth.to_string()),
        ("MLP width", |c| c.mlp_hidden().to_string()),
        ("classes", |c| c.num_classes.to_string()),
        ("qkv bias", |c| c.qkv_bias.to_string()),
        ("prefix tokens", |c| c.prefix_tokens().summary()),
        ("positions for the prefix tokens", |c| {
            let p = c.prefix_tokens();
            (p.count() > 0 && p.embedded).to_string()
        }),
        ("layer scale", |c| c.init_values.is_some().to_string()),
        ("norm_pre", |c| c.has_norm_pre().to_string()),
        ("norm after pooling (fc_norm)", |c| {
            c.uses_fc_norm().to_string()
        }),
    ];
    let mut diffs: Vec<String> = fields
        .iter()
        .filter_map(|(what, get)| {
            let (weights, config) = (get(&found), get(want));
            (weights != config).then(|| format!("{what} {weights} (config.json: {config})"))
        })
        .collect();
    let known = expected_tensors(want);
    let extra: Vec<&String> = shapes
        .keys()
        .filter(|k| {
            let ours = k.replace("fc_norm.", "norm.");
            !known.iter().any(|(name, _)| timm_name(name) == ours)
        })
        .take(3)
        .collect();
    if !extra.is_empty() {
        diffs.push(format!(
            "tensors a {} does not have: {extra:?}",
            model.architecture
        ));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(VitError::Hub(format!(
        "{origin} contradicts config.json's {}: the weights have {}",
        model.architecture,
        diffs.join(", ")
    )))
}

/// A config field by name, as a string to compare and print.
type Field = (&'static str, fn(&VitConfig) -> String);

/// Our tensor name in timm's spelling: burn's LayerNorm says gamma/beta for weight/bias (a
/// layer scale's `gamma` is timm's own name).
fn timm_name(ours: &str) -> String {
    let Some((module, param)) = ours.rsplit_once('.') else {
        return ours.to_string();
    };
    let is_norm = module
        .rsplit('.')
        .next()
        .is_some_and(|m| m.contains("norm"));
    match param {
        "gamma" if is_norm => format!("{module}.weight"),
        "beta" if is_norm => format!("{module}.bias"),
        _ => ours.to_string(),
    }
}

impl HubModel {
    /// Reads a `model.safetensors` held in memory (`origin` names it in messages) into this
    /// model, after [`check_checkpoint`]: the page's download, checked as the trainer's is.
    pub fn load_weights(
        &self,
        bytes: Vec<u8>,
        origin: &str,
        device: &Device,
    ) -> Result<VisionTransformer> {
        let shapes = safetensors_shapes_from_bytes(&bytes, origin).map_err(|e| {
            VitError::Hub(format!("{origin} is not a readable safetensors file: {e}"))
        })?;
        check_checkpoint(self, &shapes, origin)?;
        // A checkpoint for another grid (this model asked to run at another size) is
        // resampled as it is read.
        import_timm_bytes(bytes, &self.config, device, origin)
    }
}
