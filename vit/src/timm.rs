//! timm state dicts (safetensors) in and out: their config worked out from the shapes, and the
//! weights read from a file or from bytes (the page's download), or written.
//!
//! burn-store's PyTorch adapters transpose linear weights and rename LayerNorm `weight`/`bias`
//! to `gamma`/`beta`. Our names are timm's, except that timm calls the final norm `fc_norm`
//! when it comes after pooling. A checkpoint whose patch grid differs from the config's has its
//! `pos_embed` resampled as timm's `checkpoint_filter_fn` does (bicubic, antialiased).

use std::path::Path;

use burn::prelude::*;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;

use crate::config::{Pooling, VitConfig};
use crate::error::{Result, VitError};
use crate::model::VisionTransformer;
use crate::pos_embed::Resample;
use crate::prefix::{PrefixKind, PrefixTokens, square_side};
use crate::weights::{Shapes, check_applied, shapes_in, write_atomic};

/// Tensor names and shapes of a safetensors file.
pub fn safetensors_shapes(path: &Path) -> Result<Shapes> {
    shapes_in(
        &mut SafetensorsStore::from_file(path),
        &path.display().to_string(),
    )
}

/// Tensor names and shapes of a safetensors file held in memory (`origin` names it in
/// messages): the page's download from the hub.
pub fn safetensors_shapes_from_bytes(bytes: &[u8], origin: &str) -> Result<Shapes> {
    shapes_in(
        &mut SafetensorsStore::from_bytes(Some(bytes.to_vec())),
        origin,
    )
}

/// Works out a timm `VisionTransformer`'s config from its state-dict shapes: the prefix tokens
/// from `cls_token`, `dist_token` and `reg_token`, whether `pos_embed` covers them from its
/// length, layer scale, `norm_pre`, `fc_norm` and the heads from their tensors. The number of
/// heads is not recorded in any shape, so the caller gives it; nor are the activation and the
/// LayerNorm epsilon (a hub model's config.json says them), or layer scale's starting value.
pub fn infer_timm_config(shapes: &Shapes, num_heads: usize) -> Result<VitConfig> {
    let get = |name: &str, rank: usize| -> Result<&Vec<usize>> {
        let s = shapes.get(name).ok_or_else(|| {
            VitError::WeightsMismatch(format!(
                "  '{name}' is missing: not a timm VisionTransformer state dict (or one with a learned position embedding)"
            ))
        })?;
        if s.len() != rank {
            return Err(VitError::WeightsMismatch(format!(
                "  '{name}' has shape {s:?}, expected rank {rank}"
            )));
        }
        Ok(s)
    };
    let proj = get("patch_embed.proj.weight", 4)?; // [D, C, p, p]
    let (embed_dim, in_chans, patch_size) = (proj[0], proj[1], proj[2]);
    if proj[3] != patch_size {
        return Err(VitError::WeightsMismatch(format!(
            "  non-square patches {}x{} are not supported",
            proj[2], proj[3]
        )));
    }
    let count = |kind: PrefixKind| -> Result<usize> {
        match shapes.contains_key(kind.param()) {
            true => Ok(get(kind.param(), 3)?[1]),
            false => Ok(0),
        }
    };
    let mut prefix = PrefixTokens {
        class: count(PrefixKind::Class)? > 0,
        distillation: count(PrefixKind::Distillation)? > 0,
        registers: count(PrefixKind::Register)?,
        embedded: true,
    };
    let rows = get("pos_embed", 3)?[1];
    // pos_embed covers the prefix tokens and the patches, or (no_embed_class) the patches.
    let grid = match rows.checked_sub(prefix.count()).and_then(square_side) {
        Some(g) => g,
        None => {
            prefix.embedded = false;
            square_side(rows).ok_or_else(|| {
                VitError::WeightsMismatch(format!(
                    "  pos_embed covers {rows} tokens, which is neither {} + a square patch grid nor a square grid alone",
                    prefix.summary()
                ))
            })?
        }
    };
    let depth = (0..)
        .take_while(|i| shapes.contains_key(&format!("blocks.{i}.norm1.weight")))
        .count();
    let hidden = get("blocks.0.mlp.fc1.weight", 2)?[0];
    let num_classes = match shapes.contains_key("head.weight") {
        true => get("head.weight", 2)?[0],
        false => 0,
    };
    // timm's rule: norm after pooling (fc_norm) for mean pooling; no class token, no
    // class-token pooling.
    let fc_norm = shapes.contains_key("fc_norm.weight");
    let pooling = if fc_norm || !prefix.class {
        Pooling::Mean
    } else {
        Pooling::Token
    };
    let config = VitConfig::new()
        .with_image_size(grid * patch_size)
        .with_patch_size(patch_size)
        .with_in_chans(in_chans)
        .with_num_classes(num_classes)
        .with_embed_dim(embed_dim)
        .with_depth(depth)
        .with_num_heads(num_heads)
        .with_mlp_ratio(hidden as f64 / embed_dim as f64)
        .with_qkv_bias(shapes.contains_key("blocks.0.attn.qkv.bias"))
        .with_pooling(pooling)
        .with_fc_norm((pooling == Pooling::Mean && !fc_norm).then_some(false))
        .with_class_token((!prefix.class).then_some(false))
        .with_distilled(prefix.distillation.then_some(true))
        .with_reg_tokens((prefix.registers > 0).then_some(prefix.registers))
        .with_no_embed_class((!prefix.embedded).then_some(true))
        .with_init_values(shapes.contains_key("blocks.0.ls1.gamma").then_some(1e-5))
        .with_pre_norm(shapes.contains_key("norm_pre.weight").then_some(true));
    config.validate()?;
    Ok(config)
}

/// Reads a timm state dict into a model of `config` (see [`infer_timm_config`]).
pub fn import_timm(path: &Path, config: &VitConfig, device: &Device) -> Result<VisionTransformer> {
    let store = SafetensorsStore::from_file(path);
    import_timm_from(store, config, device, &path.display().to_string())
}

/// The same from a safetensors file held in memory (`origin` names it in messages).
pub fn import_timm_bytes(
    bytes: Vec<u8>,
    config: &VitConfig,
    device: &Device,
    origin: &str,
) -> Result<VisionTransformer> {
    import_timm_from(
        SafetensorsStore::from_bytes(Some(bytes)),
        config,
        device,
        origin,
    )
}

fn import_timm_from(
    store: SafetensorsStore,
    config: &VitConfig,
    device: &Device,
    origin: &str,
) -> Result<VisionTransformer> {
    let failed = |e: &dyn std::fmt::Display| VitError::Weights(format!("{origin}: {e}"));
    let mut store = store
        // timm checkpoints are often f16/bf16; the model computes in f32.
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .with_key_remapping(r"^fc_norm\.", "norm.")
        .validate(false)
        .allow_partial(true);
    // A checkpoint for another patch grid is read at its own size, then resampled.
    let rows = store
        .get_all_tensors()
        .map_err(|e| failed(&e))?
        .get("pos_embed")
        .and_then(|t| t.shape.get(1).copied());
    let stored = rows
        .and_then(|r| r.checked_sub(config.prefix_tokens().with_positions()))
        .and_then(square_side)
        .filter(|&grid| grid != config.grid_size() && grid > 0)
        .map(|grid| config.clone().with_image_size(grid * config.patch_size));
    let at = stored.as_ref().unwrap_or(config);
    let mut model = at.init(device)?;
    let result = model.load_from(&mut store).map_err(|e| failed(&e))?;
    check_applied(&result)?;
    match stored {
        Some(at) => model.resized(&at, config, Resample::BicubicAntialias),
        None => Ok(model),
    }
}

/// Writes the model as a timm state dict: timm's names, PyTorch layouts.
pub fn export_timm(model: &VisionTransformer, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    if model.fc_norm {
        store = store.with_key_remapping(r"^norm\.", "fc_norm.");
    }
    model
        .save_into(&mut store)
        .map_err(|e| VitError::Weights(e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| VitError::Weights(e.to_string()))?;
    write_atomic(path, &bytes)
}
