//! `trainer import-timm` / `export-timm`: weights to and from timm's `VisionTransformer`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use vit::Normalization;
use vit::weights::{
    Manifest, export_timm, import_timm, infer_timm_config, load_pair, safetensors_shapes, save_pair,
};

pub fn parse_rgb(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("'{p}': {e}")))
        .collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|v: Vec<f32>| format!("expected 3 comma-separated numbers, got {}", v.len()))
}

pub fn import(
    path: &Path,
    heads: usize,
    name: &str,
    out: &Path,
    labels: Option<&Path>,
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
) -> Result<ExitCode> {
    vit::weights::check_model_name(name)?;
    let shapes = safetensors_shapes(path)?;
    let config = infer_timm_config(&shapes, heads)
        .with_context(|| format!("reading {} as a timm VisionTransformer", path.display()))?;
    let labels = match labels {
        Some(file) => {
            let labels = crate::data::read_names(file)?;
            if labels.len() != config.num_classes {
                bail!(
                    "{} has {} labels but the model has {} classes",
                    file.display(),
                    labels.len(),
                    config.num_classes
                );
            }
            labels
        }
        None => (0..config.num_classes)
            .map(|i| format!("class {i}"))
            .collect(),
    };
    let norm = Normalization {
        mean: mean.unwrap_or(Normalization::INCEPTION.mean),
        std: std.unwrap_or(Normalization::INCEPTION.std),
    };
    let model = import_timm(path, &config, &Device::flex())?;
    let mut manifest = Manifest::new(name, config.clone(), labels, norm);
    manifest.source = format!("timm import of {}", path.display());
    manifest.description = format!(
        "timm ViT: {}px, patch {}, dim {}, depth {}, {} heads",
        config.image_size, config.patch_size, config.embed_dim, config.depth, config.num_heads
    );
    let written = save_pair(out, &mut manifest, &model)?;
    println!(
        "wrote {} ({} parameters, {} classes)",
        written.display(),
        config.num_params(),
        config.num_classes
    );
    Ok(ExitCode::SUCCESS)
}

pub fn export(model: &Path, out: &Path) -> Result<ExitCode> {
    let (manifest, model) = load_pair(model, &Device::flex())?;
    export_timm(&model, out)?;
    println!(
        "wrote {} (timm VisionTransformer: img_size={}, patch_size={}, embed_dim={}, depth={}, num_heads={}, mlp_ratio={}, qkv_bias={}, global_pool='{}', num_classes={})",
        out.display(),
        manifest.config.image_size,
        manifest.config.patch_size,
        manifest.config.embed_dim,
        manifest.config.depth,
        manifest.config.num_heads,
        manifest.config.mlp_ratio,
        if manifest.config.qkv_bias {
            "True"
        } else {
            "False"
        },
        match manifest.config.pooling {
            vit::Pooling::Token => "token",
            vit::Pooling::Mean => "avg",
        },
        manifest.config.num_classes
    );
    Ok(ExitCode::SUCCESS)
}
