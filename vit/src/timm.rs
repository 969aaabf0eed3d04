//! timm state dicts (safetensors) in and out: their config worked out from the shapes, and the
//! weights read from a file or from bytes (the page's download), or written.
//!
//! burn-store's PyTorch adapters transpose linear weights and rename LayerNorm `weight`/`bias`
//! to `gamma`/`beta`. Our names are timm's, except that timm calls the final norm `fc_norm`
//! under mean pooling.

use std::collections::BTreeMap;
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
use crate::weights::{check_applied, write_atomic};

/// Tensor names and shapes of a safetensors file.
pub fn safetensors_shapes(path: &Path) -> Result<BTreeMap<String, Vec<usize>>> {
    shapes_of(
        SafetensorsStore::from_file(path),
        &path.display().to_string(),
    )
}

/// Tensor names and shapes of a safetensors file held in memory (`origin` names it in
/// messages): the page's download from the hub.
pub fn safetensors_shapes_from_bytes(
    bytes: &[u8],
    origin: &str,
) -> Result<BTreeMap<String, Vec<usize>>> {
    shapes_of(SafetensorsStore::from_bytes(Some(bytes.to_vec())), origin)
}

fn shapes_of(mut store: SafetensorsStore, origin: &str) -> Result<BTreeMap<String, Vec<usize>>> {
    let tensors = store
        .get_all_tensors()
        .map_err(|e| VitError::Weights(format!("{origin}: {e}")))?;
    Ok(tensors
        .iter()
        .map(|(name, t)| (name.clone(), t.shape.to_vec()))
        .collect())
}

/// Works out a timm `VisionTransformer`'s config from its state-dict shapes. The number of
/// heads is not recorded in any shape, so the caller gives it.
pub fn infer_timm_config(
    shapes: &BTreeMap<String, Vec<usize>>,
    num_heads: usize,
) -> Result<VitConfig> {
    let get = |name: &str, rank: usize| -> Result<&Vec<usize>> {
        let s = shapes.get(name).ok_or_else(|| {
            VitError::WeightsMismatch(format!(
                "  '{name}' is missing: not a timm VisionTransformer state dict (or one with a class token and learned position embedding)"
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
    get("cls_token", 3)?;
    let tokens = get("pos_embed", 3)?[1];
    let grid = crate::patches::grid_side(tokens).ok_or_else(|| {
        VitError::WeightsMismatch(format!(
            "  pos_embed covers {tokens} tokens, which is not 1 class token + a square patch grid"
        ))
    })?;
    let depth = (0..)
        .take_while(|i| shapes.contains_key(&format!("blocks.{i}.norm1.weight")))
        .count();
    let hidden = get("blocks.0.mlp.fc1.weight", 2)?[0];
    let num_classes = get("head.weight", 2)?[0];
    let pooling = if shapes.contains_key("fc_norm.weight") {
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
        .with_pooling(pooling);
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
    let mut model = config.init(device)?;
    let mut store = store
        // timm checkpoints are often f16/bf16; the model computes in f32.
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .with_key_remapping(r"^fc_norm\.", "norm.")
        .validate(false)
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| VitError::Weights(format!("{origin}: {e}")))?;
    check_applied(&result)?;
    Ok(model)
}

/// Writes the model as a timm state dict: timm's names, PyTorch layouts.
pub fn export_timm(model: &VisionTransformer, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    if model.pooling == Pooling::Mean {
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
