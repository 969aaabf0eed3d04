//! `trainer import-timm` / `export-timm`: weights to and from timm's `VisionTransformer`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use vit::hub::HubName;
use vit::timm::{export_timm, import_timm, infer_timm_config, safetensors_shapes};
use vit::weights::{Manifest, load_pair, save_pair};
use vit::{Normalization, VisionTransformer};

pub fn parse_rgb(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("'{p}': {e}")))
        .collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|v: Vec<f32>| format!("expected 3 comma-separated numbers, got {}", v.len()))
}

/// `import-timm`'s options beside the source and the output folder.
pub struct ImportOptions {
    pub heads: Option<usize>,
    pub name: Option<String>,
    pub labels: Option<PathBuf>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
}

/// `source`: a timm state dict (safetensors), or `hf-hub:ORG/NAME[@REVISION]`.
pub fn import(source: &str, options: &ImportOptions, out: &Path) -> Result<ExitCode> {
    let (mut manifest, model) = match HubName::from_model_arg(source) {
        Some(name) => from_hub(&name?, options)?,
        None => from_file(Path::new(source), options)?,
    };
    if let Some(file) = &options.labels {
        manifest.labels = read_labels(file, manifest.config.num_classes)?;
    }
    let config = manifest.config.clone();
    let written = save_pair(out, &mut manifest, &model)?;
    // Listed in OUT/index.json as `publish` lists a run, so the page offers it.
    crate::publish::list(out, &manifest, false)?;
    println!(
        "wrote {} ({} parameters, {} classes), listed in {}",
        written.display(),
        config.num_params(),
        config.num_classes,
        out.join("index.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_labels(file: &Path, classes: usize) -> Result<Vec<String>> {
    let labels = crate::data::read_names(file)?;
    if labels.len() != classes {
        bail!(
            "{} has {} labels but the model has {classes} classes",
            file.display(),
            labels.len(),
        );
    }
    Ok(labels)
}

/// A hub model, with its own labels, normalisation and preprocessing.
fn from_hub(name: &HubName, options: &ImportOptions) -> Result<(Manifest, VisionTransformer)> {
    if options.heads.is_some() || options.mean.is_some() || options.std.is_some() {
        bail!(
            "{name}: --heads, --mean and --std are for a safetensors file; a hub model's config.json gives them"
        );
    }
    let loaded = crate::hub::load(name, &Device::flex())?;
    let mut manifest = loaded.manifest;
    if let Some(pair) = &options.name {
        vit::weights::check_model_name(pair)?;
        manifest.name = pair.clone();
        manifest.weights.file = format!("{pair}.bpk");
    }
    Ok((manifest, loaded.model))
}

fn from_file(path: &Path, options: &ImportOptions) -> Result<(Manifest, VisionTransformer)> {
    let (Some(heads), Some(name)) = (options.heads, options.name.as_deref()) else {
        bail!(
            "importing a safetensors file needs --heads (a state dict does not record them) and --name"
        );
    };
    vit::weights::check_model_name(name)?;
    let shapes = safetensors_shapes(path)?;
    let config = infer_timm_config(&shapes, heads)
        .with_context(|| format!("reading {} as a timm VisionTransformer", path.display()))?;
    let labels = (0..config.num_classes)
        .map(|i| format!("class {i}"))
        .collect();
    let norm = Normalization {
        mean: options.mean.unwrap_or(Normalization::INCEPTION.mean),
        std: options.std.unwrap_or(Normalization::INCEPTION.std),
    };
    let model = import_timm(path, &config, &Device::flex())?;
    let mut manifest = Manifest::new(name, config.clone(), labels, norm);
    // The file's name, not its path: a published manifest names no folder of this machine.
    let file = path.file_name().unwrap_or(path.as_os_str());
    manifest.source = format!("timm import of {}", file.to_string_lossy());
    manifest.description = format!(
        "timm ViT: {}px, patch {}, dim {}, depth {}, {} heads, {}",
        config.image_size,
        config.patch_size,
        config.embed_dim,
        config.depth,
        config.num_heads,
        config.prefix_tokens().summary()
    );
    Ok((manifest, model))
}

pub fn export(model: &Path, out: &Path) -> Result<ExitCode> {
    let (manifest, model) = load_pair(model, &Device::flex())?;
    export_timm(&model, out)?;
    let c = &manifest.config;
    let class = if c.prefix_tokens().distillation {
        "VisionTransformerDistilled"
    } else {
        "VisionTransformer"
    };
    println!("wrote {} (timm {class}: {})", out.display(), timm_args(c));
    Ok(ExitCode::SUCCESS)
}

/// The config as timm's `VisionTransformer` keyword arguments, Python's spelling; those that
/// came with the prefix tokens only where they are not timm's defaults.
fn timm_args(c: &vit::VitConfig) -> String {
    let py = |b: bool| if b { "True" } else { "False" };
    let prefix = c.prefix_tokens();
    let mut args = vec![
        format!("img_size={}", c.image_size),
        format!("patch_size={}", c.patch_size),
        format!("embed_dim={}", c.embed_dim),
        format!("depth={}", c.depth),
        format!("num_heads={}", c.num_heads),
        format!("mlp_ratio={}", c.mlp_ratio),
        format!("qkv_bias={}", py(c.qkv_bias)),
        format!(
            "global_pool='{}'",
            match c.pooling {
                vit::Pooling::Token => "token",
                vit::Pooling::Mean => "avg",
            }
        ),
        format!("num_classes={}", c.num_classes),
    ];
    let optional = [
        (!prefix.class).then(|| "class_token=False".to_string()),
        (prefix.registers > 0).then(|| format!("reg_tokens={}", prefix.registers)),
        (!prefix.embedded).then(|| "no_embed_class=True".to_string()),
        c.init_values.map(|v| format!("init_values={v}")),
        c.has_norm_pre().then(|| "pre_norm=True".to_string()),
        c.fc_norm.map(|f| format!("fc_norm={}", py(f))),
        (c.activation() == vit::Activation::QuickGelu).then(|| "act_layer='quick_gelu'".into()),
        (c.layer_norm_eps != 1e-6)
            .then(|| format!("norm_layer=partial(LayerNorm, eps={})", c.layer_norm_eps)),
    ];
    args.extend(optional.into_iter().flatten());
    args.join(", ")
}
