//! Models on the Hugging Face hub, named as timm names them: `hf-hub:ORG/NAME[@REVISION]`.
//!
//! - [`HubName`]: the name, its files' URLs (`{endpoint}/{org}/{name}/resolve/{revision}/{file}`)
//!   and the model pair name it becomes.
//! - [`read_config`]: what a timm repo's `config.json` says (architecture, `model_args`,
//!   `pretrained_cfg`, labels) as Vitrine's [`VitConfig`], timm's eval preprocessing and class
//!   names; or a one-line refusal naming what is supported, before any weights are fetched.
//! - [`check_checkpoint`]: the weights' shapes against that config.
//!
//! No I/O here: the trainer downloads natively, the page with fetch; both read the same answer.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::{Pooling, VitConfig};
use crate::error::{Result, VitError};
use crate::preprocess::{CropMode, Normalization, Resize};
use crate::resample::Interpolation;

/// timm's prefix for a hub model (`timm.create_model('hf-hub:timm/...')`).
pub const PREFIX: &str = "hf-hub:";
/// The hub everyone means; `HF_ENDPOINT` replaces it.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
pub const DEFAULT_REVISION: &str = "main";
/// The two files of a timm hub repo (`timm.models.push_to_hf_hub` writes exactly these).
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// A config.json larger than this is not a timm config (the largest, with 21k label names,
/// is about 1 MB).
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// What Vitrine builds from the hub, said in every refusal.
pub const SUPPORTED: &str = "supported: timm's vit_{tiny,small,base,large}_patch{8,14,16,32}_{SIZE} and deit_{tiny,small,base}_patch16_{SIZE} (one class token, class-token or average pooling, any number of classes)";

/// ImageNet-1k's class names in timm's order, short and readable (`vit/data/imagenet-1k.txt`,
/// made by `vit/data/make_imagenet_classes.py`).
pub fn imagenet_1k() -> Vec<String> {
    include_str!("../data/imagenet-1k.txt")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `ORG/NAME` at a revision (a branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubName {
    pub org: String,
    pub name: String,
    pub revision: String,
}

fn hub_error(message: String) -> VitError {
    VitError::Hub(message)
}

impl HubName {
    /// `hf-hub:ORG/NAME[@REVISION]` when `text` starts with the prefix, else `None` (a path).
    pub fn from_model_arg(text: &str) -> Option<Result<Self>> {
        text.strip_prefix(PREFIX).map(Self::parse)
    }

    /// `ORG/NAME[@REVISION]`, with or without the `hf-hub:` prefix.
    pub fn parse(text: &str) -> Result<Self> {
        let bare = text.strip_prefix(PREFIX).unwrap_or(text).trim();
        let bad = |why: &str| {
            hub_error(format!(
                "'{text}' is not a hub model name: {why}; write it as hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION, e.g. hf-hub:timm/deit_tiny_patch16_224.fb_in1k"
            ))
        };
        let (repo, revision) = match bare.split_once('@') {
            Some((repo, rev)) => (repo, rev),
            None => (bare, DEFAULT_REVISION),
        };
        let Some((org, name)) = repo.split_once('/') else {
            return Err(bad("it has no '/' between the organisation and the model"));
        };
        // The hub's own rule for repo ids: letters, digits, '-', '_', '.', no '--' or '..'.
        let part_ok = |p: &str| {
            (1..=96).contains(&p.len())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !p.starts_with(['-', '.'])
                && !p.contains("--")
                && !p.contains("..")
        };
        if !part_ok(org) || !part_ok(name) {
            return Err(bad(
                "each part is 1 to 96 letters, digits, '-', '_' or '.', not starting with '-' or '.'",
            ));
        }
        let rev_ok = (1..=256).contains(&revision.len())
            && revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            && !revision.contains("..");
        if !rev_ok {
            return Err(bad("the revision is a branch, tag or commit name"));
        }
        Ok(Self {
            org: org.into(),
            name: name.into(),
            revision: revision.into(),
        })
    }

    /// `ORG/NAME`, the hub's repo id.
    pub fn repo_id(&self) -> String {
        format!("{}/{}", self.org, self.name)
    }

    /// Where the hub serves `file` of this revision (a branch with '/' in it is escaped).
    pub fn file_url(&self, endpoint: &str, file: &str) -> String {
        format!(
            "{}/{}/{}/resolve/{}/{file}",
            endpoint.trim_end_matches('/'),
            self.org,
            self.name,
            self.revision.replace('/', "%2F")
        )
    }

    /// The model pair it becomes by default: the repo's name (timm's names are valid ones).
    pub fn pair_name(&self) -> String {
        self.name.clone()
    }
}

impl std::fmt::Display for HubName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}/{}", self.org, self.name)?;
        if self.revision != DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

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

/// The widths timm's ViT names stand for: (embed_dim, depth, num_heads).
fn size_table(size: &str) -> Option<(usize, usize, usize)> {
    Some(match size {
        "tiny" => (192, 12, 3),
        "small" => (384, 12, 6),
        "base" => (768, 12, 12),
        "large" => (1024, 24, 16),
        _ => return None,
    })
}

/// The model an architecture name builds, or why it is refused.
fn architecture_defaults(arch: &str) -> std::result::Result<VitConfig, String> {
    let parts: Vec<&str> = arch.split('_').collect();
    let family = parts[0];
    if !matches!(family, "vit" | "deit") {
        return Err(if family.starts_with("vit") || family.starts_with("deit") {
            format!("architecture '{arch}' is a ViT variant Vitrine does not build")
        } else {
            format!("architecture '{arch}' is not a ViT (Vitrine runs Vision Transformers only)")
        });
    }
    if arch.contains("distilled") {
        return Err(format!(
            "architecture '{arch}' is a distilled DeiT, whose extra distillation token Vitrine's ViT does not have"
        ));
    }
    if parts.iter().any(|p| {
        p.strip_prefix("reg")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    }) {
        return Err(format!(
            "architecture '{arch}' has register tokens, which Vitrine's ViT does not have"
        ));
    }
    if parts.iter().any(|p| matches!(*p, "gap" | "map" | "siglip")) {
        return Err(format!(
            "architecture '{arch}' has no class token (it pools the patches otherwise), which Vitrine's ViT needs"
        ));
    }
    let parsed = match parts.as_slice() {
        [_, size, patch, img] => size_table(size).and_then(|dims| {
            let patch: usize = patch.strip_prefix("patch")?.parse().ok()?;
            let img: usize = img.parse().ok()?;
            let patch_ok = if family == "deit" {
                patch == 16 && size != &"large"
            } else {
                matches!(patch, 8 | 14 | 16 | 32)
            };
            patch_ok.then_some((dims, patch, img))
        }),
        _ => None,
    };
    let Some(((embed_dim, depth, num_heads), patch, img)) = parsed else {
        return Err(format!(
            "architecture '{arch}' is a ViT variant Vitrine does not build"
        ));
    };
    Ok(VitConfig::new()
        .with_image_size(img)
        .with_patch_size(patch)
        .with_embed_dim(embed_dim)
        .with_depth(depth)
        .with_num_heads(num_heads)
        .with_mlp_ratio(4.0)
        .with_qkv_bias(true)
        .with_pooling(Pooling::Token)
        .with_num_classes(1000))
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// One side of a square size given as `224` or `[224, 224]` (or `[3, 224, 224]`).
fn square_side(v: &Value) -> Option<usize> {
    if let Some(n) = as_usize(v) {
        return Some(n);
    }
    let sides: Vec<usize> = v.as_array()?.iter().map(as_usize).collect::<Option<_>>()?;
    match sides.as_slice() {
        [h, w] | [3, h, w] if h == w => Some(*h),
        _ => None,
    }
}

fn rgb(v: &Value) -> Option<[f32; 3]> {
    let values: Vec<f32> = v
        .as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect::<Option<_>>()?;
    let values: [f32; 3] = values.try_into().ok()?;
    values.iter().all(|v| v.is_finite()).then_some(values)
}

/// Applies `model_args` (timm's `VisionTransformer` keyword arguments) to `config`.
fn apply_model_args(
    config: &mut VitConfig,
    args: &Map<String, Value>,
) -> std::result::Result<Option<bool>, String> {
    let mut fc_norm = None;
    for (key, v) in args {
        let bad = || format!("model_args has {key} = {v}, which Vitrine's ViT cannot build");
        let int = || as_usize(v).ok_or_else(bad);
        match key.as_str() {
            "img_size" => config.image_size = square_side(v).ok_or_else(bad)?,
            "patch_size" => config.patch_size = square_side(v).ok_or_else(bad)?,
            "embed_dim" => config.embed_dim = int()?,
            "depth" => config.depth = int()?,
            "num_heads" => config.num_heads = int()?,
            "num_classes" => config.num_classes = int()?,
            "mlp_ratio" => config.mlp_ratio = v.as_f64().ok_or_else(bad)?,
            "qkv_bias" => config.qkv_bias = v.as_bool().ok_or_else(bad)?,
            "global_pool" => {
                config.pooling = match v.as_str() {
                    Some("token") => Pooling::Token,
                    Some("avg") => Pooling::Mean,
                    _ => return Err(bad()),
                }
            }
            "fc_norm" => {
                fc_norm = if v.is_null() {
                    None
                } else {
                    Some(v.as_bool().ok_or_else(bad)?)
                }
            }
            "in_chans" if as_usize(v) == Some(3) => {}
            "class_token" if v.as_bool() == Some(true) => {}
            "class_token" => {
                return Err(
                    "model_args has class_token = false: no class token, which Vitrine's ViT needs"
                        .into(),
                );
            }
            "reg_tokens" if as_usize(v) == Some(0) => {}
            "reg_tokens" => {
                return Err(format!(
                    "model_args has reg_tokens = {v}: register tokens, which Vitrine's ViT does not have"
                ));
            }
            "no_embed_class" | "pre_norm" | "qk_norm" | "dynamic_img_pad"
                if v.as_bool() == Some(false) => {}
            "init_values" | "norm_layer" | "act_layer" | "embed_layer" if v.is_null() => {}
            "act_layer" if v.as_str() == Some("gelu") => {}
            "proj_bias" | "strict_img_size" if v.as_bool() == Some(true) => {}
            // Only how the model adapts to other sizes or trains; the weights are the same.
            "dynamic_img_size" | "drop_rate" | "pos_drop_rate" | "patch_drop_rate"
            | "proj_drop_rate" | "attn_drop_rate" | "drop_path_rate" | "weight_init"
            | "fix_init" => {}
            _ => return Err(bad()),
        }
    }
    Ok(fc_norm)
}

/// Reads a timm hub repo's `config.json` (`origin` names it in messages): the model Vitrine
/// builds for it, timm's eval preprocessing for it, and its class names. Anything Vitrine
/// cannot run exactly as timm does is refused here, in one line.
pub fn read_config(text: &str, origin: &str) -> Result<HubModel> {
    let fail = |why: String| hub_error(format!("{origin}: {why}"));
    let root: Value = serde_json::from_str(text).map_err(|e| {
        let start = text.trim_start();
        if start.starts_with('<') {
            fail(
                "it is an HTML page, not a model's config.json (an error page or a login page?)"
                    .into(),
            )
        } else {
            fail(format!("it is not JSON ({e})"))
        }
    })?;
    let Some(root) = root.as_object() else {
        return Err(fail("it is not a JSON object".into()));
    };
    // timm's old single-dict form keeps the pretrained config at the top level.
    let pretrained = match root.get("pretrained_cfg") {
        Some(Value::Object(p)) => p,
        Some(_) => return Err(fail("pretrained_cfg is not an object".into())),
        None => root,
    };
    let Some(architecture) = root.get("architecture").and_then(Value::as_str) else {
        return Err(fail(format!(
            "it has no \"architecture\": not a timm model's config.json ({SUPPORTED})"
        )));
    };
    let refuse = |why: String| fail(format!("{why}; {SUPPORTED}"));
    let mut config = architecture_defaults(architecture).map_err(refuse)?;
    let empty = Map::new();
    let args = match root.get("model_args") {
        Some(Value::Object(a)) => a,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(fail("model_args is not an object".into())),
    };
    let fc_norm = apply_model_args(&mut config, args).map_err(refuse)?;
    // timm's rule: a mean-pooled ViT normalises after pooling (fc_norm), a class-token one
    // before; the other two combinations are different models.
    match (config.pooling, fc_norm) {
        (Pooling::Token, Some(true)) => {
            return Err(refuse(
                "class-token pooling with fc_norm is a variant Vitrine does not build".into(),
            ));
        }
        (Pooling::Mean, Some(false)) => {
            return Err(refuse(
                "average pooling without fc_norm is a variant Vitrine does not build".into(),
            ));
        }
        _ => {}
    }
    let num_classes = root
        .get("num_classes")
        .or_else(|| pretrained.get("num_classes"))
        .or_else(|| args.get("num_classes"));
    if let Some(n) = num_classes {
        config.num_classes = as_usize(n)
            .filter(|&n| (1..=1_000_000).contains(&n))
            .ok_or_else(|| fail(format!("num_classes {n} is not a number of classes")))?;
    }
    config
        .validate()
        .map_err(|e| fail(format!("{architecture}: {e}")))?;

    // Preprocessing: timm's resolve_data_config defaults where the config is silent.
    let input = match pretrained.get("input_size") {
        Some(v) => square_side(v)
            .ok_or_else(|| fail(format!("input_size {v} is not a square RGB input")))?,
        None => config.image_size,
    };
    if input != config.image_size {
        return Err(fail(format!(
            "input_size is {input} px but the model is built for {} px; Vitrine runs a ViT at its own size",
            config.image_size
        )));
    }
    let mean = match pretrained.get("mean") {
        Some(v) => rgb(v).ok_or_else(|| fail(format!("mean {v} is not 3 numbers")))?,
        None => Normalization::IMAGENET.mean,
    };
    let std = match pretrained.get("std") {
        Some(v) => rgb(v)
            .filter(|s| s.iter().all(|&s| s > 0.0))
            .ok_or_else(|| fail(format!("std {v} is not 3 positive numbers")))?,
        None => Normalization::IMAGENET.std,
    };
    let interpolation = match pretrained.get("interpolation") {
        None | Some(Value::Null) => Interpolation::Bicubic,
        Some(v) => v
            .as_str()
            .and_then(Interpolation::from_timm)
            .ok_or_else(|| fail(format!("interpolation {v} is not one of Pillow's filters")))?,
    };
    let crop_pct = match pretrained.get("crop_pct") {
        None | Some(Value::Null) => 0.875,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| fail(format!("crop_pct {v} is not a number")))?,
    };
    let crop_mode = match pretrained.get("crop_mode") {
        None | Some(Value::Null) => CropMode::Center,
        Some(v) => v.as_str().and_then(CropMode::from_timm).ok_or_else(|| {
            fail(format!(
                "crop_mode {v} is not one Vitrine does (center or squash)"
            ))
        })?,
    };
    let resize = Resize {
        crop_pct,
        crop_mode,
        interpolation,
    };
    resize.validate().map_err(|e| fail(e.to_string()))?;

    let (labels, label_source) = labels(root, pretrained, config.num_classes);
    Ok(HubModel {
        architecture: architecture.into(),
        config,
        resize,
        norm: Normalization { mean, std },
        labels,
        label_source,
    })
}

/// Class names: the config's (descriptions before bare synset ids), else ImageNet-1k's for
/// 1000 classes, else indices.
fn labels(
    root: &Map<String, Value>,
    pretrained: &Map<String, Value>,
    classes: usize,
) -> (Vec<String>, LabelSource) {
    let field = |key: &str| root.get(key).or_else(|| pretrained.get(key));
    let names: Option<Vec<String>> = field("label_names")
        .or_else(|| field("labels"))
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect());
    // label_descriptions: a list in class order, or a map from each label name.
    let described: Option<Vec<String>> = match field("label_descriptions") {
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(short)).collect(),
        Some(Value::Object(m)) => names
            .as_ref()
            .and_then(|n| n.iter().map(|k| m.get(k)?.as_str().map(short)).collect()),
        _ => None,
    };
    for found in [described, names].into_iter().flatten() {
        if found.len() == classes && found.iter().all(|n| !n.trim().is_empty()) {
            return (found, LabelSource::Config);
        }
    }
    if classes == 1000 {
        return (imagenet_1k(), LabelSource::ImageNet1k);
    }
    (
        (0..classes).map(|i| format!("class {i}")).collect(),
        LabelSource::Indices,
    )
}

/// A WordNet description's first lemma ("tench, Tinca tinca" -> "tench").
fn short(description: &str) -> String {
    description
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Checks a checkpoint's tensor shapes against the model its config.json describes, naming
/// every difference; the number of heads is the config's (no shape records it).
pub fn check_checkpoint(
    model: &HubModel,
    shapes: &BTreeMap<String, Vec<usize>>,
    origin: &str,
) -> Result<()> {
    let want = &model.config;
    let found = crate::weights::infer_timm_config(shapes, want.num_heads).map_err(|e| {
        hub_error(format!(
            "{origin} does not hold a {}: {}",
            model.architecture,
            e.to_string().replace('\n', " ")
        ))
    })?;
    // What a checkpoint's shapes say, against what config.json says.
    let fields: [Field; 8] = [
        ("image size", |c| c.image_size.to_string()),
        ("patch size", |c| c.patch_size.to_string()),
        ("embed_dim", |c| c.embed_dim.to_string()),
        ("depth", |c| c.depth.to_string()),
        ("MLP width", |c| c.mlp_hidden().to_string()),
        ("classes", |c| c.num_classes.to_string()),
        ("qkv bias", |c| c.qkv_bias.to_string()),
        ("pooling", |c| format!("{:?}", c.pooling).to_lowercase()),
    ];
    let mut diffs: Vec<String> = fields
        .iter()
        .filter_map(|(what, get)| {
            let (weights, config) = (get(&found), get(want));
            (weights != config).then(|| format!("{what} {weights} (config.json: {config})"))
        })
        .collect();
    let known = crate::weights::expected_tensors(want);
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
    Err(hub_error(format!(
        "{origin} contradicts config.json's {}: the weights have {}",
        model.architecture,
        diffs.join(", ")
    )))
}

/// A config field by name, as a string to compare and print.
type Field = (&'static str, fn(&VitConfig) -> String);

/// Our tensor name in timm's spelling (burn's LayerNorm says gamma/beta for weight/bias).
fn timm_name(ours: &str) -> String {
    ours.replace(".gamma", ".weight").replace(".beta", ".bias")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deit_tiny() -> String {
        serde_json::json!({
            "architecture": "deit_tiny_patch16_224",
            "num_classes": 1000,
            "num_features": 192,
            "global_pool": "token",
            "pretrained_cfg": {
                "tag": "fb_in1k", "input_size": [3, 224, 224], "fixed_input_size": true,
                "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center",
                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                "num_classes": 1000, "first_conv": "patch_embed.proj", "classifier": "head"
            }
        })
        .to_string()
    }

    #[test]
    fn names_parse_with_revision_and_print_back() {
        let n = HubName::parse("hf-hub:timm/deit_tiny_patch16_224.fb_in1k").unwrap();
        assert_eq!(n.repo_id(), "timm/deit_tiny_patch16_224.fb_in1k");
        assert_eq!(n.revision, "main");
        assert_eq!(n.to_string(), "hf-hub:timm/deit_tiny_patch16_224.fb_in1k");
        assert_eq!(
            n.file_url("http://127.0.0.1:9/", CONFIG_FILE),
            "http://127.0.0.1:9/timm/deit_tiny_patch16_224.fb_in1k/resolve/main/config.json"
        );
        let r = HubName::parse("timm/x@refs/pr/1").unwrap();
        assert_eq!(r.revision, "refs/pr/1");
        assert!(
            r.file_url("http://h", "a")
                .contains("/resolve/refs%2Fpr%2F1/a")
        );
        assert_eq!(r.to_string(), "hf-hub:timm/x@refs/pr/1");
        assert!(HubName::from_model_arg("www/models/a.json").is_none());
        for bad in [
            "timm", "/x", "timm/", "a/b/c", "a/../b", "a/b@", "a/b@x y", "a/-b",
        ] {
            let e = HubName::parse(bad).unwrap_err().to_string();
            assert!(e.contains("hf-hub:ORG/NAME"), "{bad}: {e}");
        }
    }

    #[test]
    fn deit_tiny_is_read_as_timm_builds_and_preprocesses_it() {
        let m = read_config(&deit_tiny(), "config.json").unwrap();
        let c = &m.config;
        assert_eq!(
            (
                c.image_size,
                c.patch_size,
                c.embed_dim,
                c.depth,
                c.num_heads,
                c.num_classes
            ),
            (224, 16, 192, 12, 3, 1000)
        );
        assert_eq!(c.mlp_hidden(), 768);
        assert_eq!(m.resize.crop_pct, 0.875);
        assert_eq!(m.resize.interpolation, Interpolation::Bicubic);
        assert_eq!(m.resize.scale_size(224), 256);
        assert_eq!(m.label_source, LabelSource::ImageNet1k);
        assert_eq!(m.labels.len(), 1000);
        assert_eq!(m.labels[207], "golden retriever");
    }

    #[test]
    fn model_args_and_labels_from_the_config_win() {
        let text = serde_json::json!({
            "architecture": "vit_small_patch32_384",
            "num_classes": 3,
            "label_names": ["cat", "dog", "eel"],
            "model_args": {"embed_dim": 24, "depth": 2, "global_pool": "avg", "img_size": 64},
            "pretrained_cfg": {"input_size": [3, 64, 64], "crop_pct": 0.9,
                               "interpolation": "bilinear", "crop_mode": "squash"}
        })
        .to_string();
        let m = read_config(&text, "c").unwrap();
        assert_eq!(m.config.embed_dim, 24);
        assert_eq!(m.config.num_heads, 6, "from the name: small");
        assert_eq!(m.config.pooling, Pooling::Mean);
        assert_eq!(m.labels, ["cat", "dog", "eel"]);
        assert_eq!(m.resize.crop_mode, CropMode::Squash);
        assert_eq!(m.resize.scale_size(64), 71);
        assert_eq!(m.norm, Normalization::IMAGENET, "timm's default");
    }

    #[test]
    fn what_vitrine_cannot_run_is_refused_in_one_line_naming_what_it_can() {
        let with = |arch: &str, args: Value| {
            serde_json::json!({"architecture": arch, "num_classes": 10, "model_args": args})
                .to_string()
        };
        for (text, says) in [
            (
                with("deit_tiny_distilled_patch16_224", Value::Null),
                "distill",
            ),
            (
                with("vit_base_patch16_reg4_gap_256", Value::Null),
                "register",
            ),
            (
                with("vit_base_patch16_siglip_224", Value::Null),
                "class token",
            ),
            (
                with(
                    "vit_tiny_patch16_224",
                    serde_json::json!({"class_token": false}),
                ),
                "class token",
            ),
            (
                with("vit_tiny_patch16_224", serde_json::json!({"reg_tokens": 4})),
                "register",
            ),
            (
                with(
                    "vit_tiny_patch16_224",
                    serde_json::json!({"init_values": 1e-5}),
                ),
                "init_values",
            ),
            (with("resnet50", Value::Null), "not a ViT"),
            (with("vit_base_patch16_clip_224", Value::Null), "variant"),
            (with("deit3_small_patch16_224", Value::Null), "variant"),
        ] {
            let e = read_config(&text, "timm/x").unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
            assert!(e.contains("supported:"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let html = "<!DOCTYPE html><html><body>Not found</body></html>";
        let e = read_config(html, "timm/x").unwrap_err().to_string();
        assert!(e.contains("HTML page"), "{e}");
        let e = read_config("{\"a\": 1}", "timm/x").unwrap_err().to_string();
        assert!(e.contains("no \"architecture\""), "{e}");
    }
}
