//! What a timm repo's `config.json` says (architecture, `model_args`, `pretrained_cfg`,
//! labels), read as Vitrine's [`VitConfig`], timm's eval preprocessing and class names; or a
//! one-line refusal naming what is supported, before any weights are fetched. The architecture
//! names themselves are [`super::architecture`]'s.

use serde_json::{Map, Value};

use crate::config::{Activation, Pooling, VitConfig};
use crate::error::{Result, VitError};
use crate::preprocess::{CropMode, Normalization, Resize};
use crate::resample::Interpolation;

use super::architecture::{SUPPORTED, architecture};
use super::model::{HubModel, LabelSource};

/// ImageNet-1k's class names in timm's order, short and readable (`vit/data/imagenet-1k.txt`,
/// made by `vit/data/make_imagenet_classes.py`).
pub fn imagenet_1k() -> Vec<String> {
    include_str!("../../data/imagenet-1k.txt")
        .lines()
        .map(str::to_owned)
        .collect()
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

/// Applies `model_args` (timm's `VisionTransformer` keyword arguments) to `config`; says
/// whether they set the input size.
fn apply_model_args(
    config: &mut VitConfig,
    args: &Map<String, Value>,
) -> std::result::Result<bool, String> {
    let mut sized = false;
    for (key, v) in args {
        let bad = || format!("model_args has {key} = {v}, which Vitrine's ViT cannot build");
        let int = || as_usize(v).ok_or_else(bad);
        let flag = || v.as_bool().ok_or_else(bad);
        match key.as_str() {
            "img_size" => {
                config.image_size = square_side(v).ok_or_else(bad)?;
                sized = true;
            }
            "patch_size" => config.patch_size = square_side(v).ok_or_else(bad)?,
            "embed_dim" => config.embed_dim = int()?,
            "depth" => config.depth = int()?,
            "num_heads" => config.num_heads = int()?,
            "num_classes" => config.num_classes = int()?,
            "mlp_ratio" => config.mlp_ratio = v.as_f64().ok_or_else(bad)?,
            "qkv_bias" => config.qkv_bias = flag()?,
            "global_pool" => {
                config.pooling = match v.as_str() {
                    Some("token") => Pooling::Token,
                    Some("avg") => Pooling::Mean,
                    Some("map") => {
                        return Err(format!(
                            "model_args has global_pool = {v}: attention pooling, which Vitrine's ViT does not build"
                        ));
                    }
                    _ => return Err(bad()),
                }
            }
            "fc_norm" => config.fc_norm = if v.is_null() { None } else { Some(flag()?) },
            "class_token" => config.class_token = Some(flag()?),
            "reg_tokens" => config.reg_tokens = Some(int()?),
            "no_embed_class" => config.no_embed_class = Some(flag()?),
            "pre_norm" => config.pre_norm = Some(flag()?),
            "init_values" if v.is_null() => config.init_values = None,
            "init_values" => config.init_values = Some(v.as_f64().ok_or_else(bad)?),
            "act_layer" if v.is_null() => {}
            "act_layer" => {
                config.act_layer = match v.as_str() {
                    Some("gelu") => Some(Activation::Gelu),
                    Some("quick_gelu") => Some(Activation::QuickGelu),
                    _ => return Err(bad()),
                }
            }
            "in_chans" if as_usize(v) == Some(3) => {}
            "qk_norm"
            | "dynamic_img_pad"
            | "scale_attn_norm"
            | "scale_mlp_norm"
            | "pool_include_prefix"
                if v.as_bool() == Some(false) => {}
            "norm_layer" | "embed_layer" | "embed_norm_layer" | "block_fn" | "mlp_layer"
            | "attn_layer"
                if v.is_null() => {}
            "proj_bias" | "strict_img_size" | "final_norm" if v.as_bool() == Some(true) => {}
            "pos_embed" if v.as_str() == Some("learn") => {}
            // Only how the model adapts to other sizes or trains; the weights are the same.
            "dynamic_img_size" | "drop_rate" | "pos_drop_rate" | "patch_drop_rate"
            | "proj_drop_rate" | "attn_drop_rate" | "drop_path_rate" | "weight_init"
            | "fix_init" => {}
            _ => return Err(bad()),
        }
    }
    Ok(sized)
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
    let Some(architecture_name) = root.get("architecture").and_then(Value::as_str) else {
        return Err(fail(format!(
            "it has no \"architecture\": not a timm model's config.json ({SUPPORTED})"
        )));
    };
    let refuse = |why: String| fail(format!("{why}; {SUPPORTED}"));
    let named = architecture(architecture_name).map_err(refuse)?;
    let mut config = named.config;
    let empty = Map::new();
    let args = match root.get("model_args") {
        Some(Value::Object(a)) => a,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(fail("model_args is not an object".into())),
    };
    let sized = apply_model_args(&mut config, args).map_err(refuse)?;
    let num_classes = root
        .get("num_classes")
        .or_else(|| pretrained.get("num_classes"))
        .or_else(|| args.get("num_classes"));
    if let Some(n) = num_classes {
        config.num_classes = as_usize(n)
            .filter(|&n| n <= 1_000_000)
            .ok_or_else(|| fail(format!("num_classes {n} is not a number of classes")))?;
    }
    // Preprocessing: timm's resolve_data_config defaults where the config is silent.
    let input = match pretrained.get("input_size") {
        Some(v) => Some(
            square_side(v)
                .ok_or_else(|| fail(format!("input_size {v} is not a square RGB input")))?,
        ),
        None => None,
    };
    // The size timm builds at: model_args' img_size, else (for a fixed input size, timm's
    // default) the pretrained config's input_size, else the architecture's default.
    if !sized {
        let fixed = pretrained.get("fixed_input_size").and_then(Value::as_bool);
        if let Some(input) = input.filter(|_| fixed != Some(false)) {
            config.image_size = input;
        }
    }
    config
        .validate()
        .map_err(|e| fail(format!("{architecture_name}: {e}")))?;
    let input = input.unwrap_or(config.image_size);
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
        architecture: architecture_name.into(),
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

    /// Every architecture timm registers that Vitrine does not build is refused from its
    /// config.json alone, in one line saying what it has that Vitrine's blocks do not compute;
    /// every one it builds is read.
    #[test]
    fn every_architecture_of_timms_is_read_or_refused_in_one_line() {
        let table: Value =
            serde_json::from_str(include_str!("../../data/timm-architectures.json")).unwrap();
        let config = |arch: &str| serde_json::json!({ "architecture": arch }).to_string();
        let refused = table["refused"].as_object().unwrap();
        assert!(refused.len() >= 50, "{}", refused.len());
        for (arch, why) in refused {
            let e = read_config(&config(arch), "timm/x")
                .unwrap_err()
                .to_string();
            let why = why.as_str().unwrap();
            assert!(
                e.contains(why) && e.contains("supported:") && !e.contains('\n'),
                "{arch}: {e}"
            );
        }
        for (arch, built) in table["built"].as_object().unwrap() {
            let m = read_config(&config(arch), "timm/x").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                m.config.image_size as u64,
                built["img_size"].as_u64().unwrap()
            );
            assert_eq!(
                m.config.num_heads as u64,
                built["num_heads"].as_u64().unwrap()
            );
            assert_eq!(
                m.config.prefix_tokens().count() as u64,
                built["class_token"].as_bool().unwrap() as u64
                    + built["distilled"].as_bool().unwrap() as u64
                    + built["reg_tokens"].as_u64().unwrap(),
                "{arch}"
            );
        }
    }

    /// DINOv2 with registers as its hub repo describes it: no size in its name, 518 px from
    /// its pretrained config, no classifier.
    #[test]
    fn a_feature_model_has_no_classes_and_the_size_of_its_pretrained_config() {
        let text = serde_json::json!({
            "architecture": "vit_small_patch14_reg4_dinov2",
            "num_classes": 0,
            "pretrained_cfg": {"input_size": [3, 518, 518], "crop_pct": 1.0, "num_classes": 0}
        })
        .to_string();
        let m = read_config(&text, "c").unwrap();
        assert_eq!((m.config.image_size, m.config.grid_size()), (518, 37));
        assert_eq!(m.config.num_classes, 0);
        assert!(m.labels.is_empty());
        assert_eq!(m.config.num_tokens(), 5 + 37 * 37);
        assert_eq!(m.config.pos_embed_len(), 37 * 37);
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
                with("vit_base_patch16_siglip_224", Value::Null),
                "attention pooling",
            ),
            (
                with("vit_base_patch16_rope_reg1_gap_256", Value::Null),
                "RoPE",
            ),
            (with("vit_giant_patch14_reg4_dinov2", Value::Null), "SwiGLU"),
            (
                with(
                    "vit_tiny_patch16_224",
                    serde_json::json!({"global_pool": "map"}),
                ),
                "attention pooling",
            ),
            (
                with("vit_tiny_patch16_224", serde_json::json!({"qk_norm": true})),
                "qk_norm",
            ),
            (
                with(
                    "vit_tiny_patch16_224",
                    serde_json::json!({"act_layer": "gelu_tanh"}),
                ),
                "act_layer",
            ),
            (with("resnet50", Value::Null), "not a ViT"),
            (
                with("vit_small_patch16_18x2_224", Value::Null),
                "blocks of another kind",
            ),
        ] {
            let e = read_config(&text, "timm/x").unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
            assert!(e.contains("supported:"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // Arguments that contradict each other are refused by the model's own rules.
        let e = read_config(
            &with(
                "vit_tiny_patch16_224",
                serde_json::json!({"class_token": false}),
            ),
            "timm/x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("class-token pooling needs a class token"), "{e}");
        let html = "<!DOCTYPE html><html><body>Not found</body></html>";
        let e = read_config(html, "timm/x").unwrap_err().to_string();
        assert!(e.contains("HTML page"), "{e}");
        let e = read_config("{\"a\": 1}", "timm/x").unwrap_err().to_string();
        assert!(e.contains("no \"architecture\""), "{e}");
    }
}
