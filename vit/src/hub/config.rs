//! What a timm repo's `config.json` says (architecture, `model_args`, `pretrained_cfg`,
//! labels), read as Vitrine's [`VitConfig`], timm's eval preprocessing and class names; or a
//! one-line refusal naming what is supported, before any weights are fetched.

use serde_json::{Map, Value};

use crate::config::{Pooling, VitConfig};
use crate::error::{Result, VitError};
use crate::preprocess::{CropMode, Normalization, Resize};
use crate::resample::Interpolation;

use super::model::{HubModel, LabelSource};

/// What Vitrine builds from the hub, said in every refusal.
pub const SUPPORTED: &str = "supported: timm's vit_{tiny,small,base,large}_patch{8,14,16,32}_{SIZE} and deit_{tiny,small,base}_patch16_{SIZE} (one class token, class-token or average pooling, any number of classes)";

/// ImageNet-1k's class names in timm's order, short and readable (`vit/data/imagenet-1k.txt`,
/// made by `vit/data/make_imagenet_classes.py`).
pub fn imagenet_1k() -> Vec<String> {
    include_str!("../../data/imagenet-1k.txt")
        .lines()
        .map(str::to_owned)
        .collect()
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
    let fail = |why: String| VitError::Hub(format!("{origin}: {why}"));
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
