//! timm's ViT architecture names as the models they build: `vit/data/timm-architectures.json`
//! (written by `make_timm_architectures.py` from the models `timm.create_model(NAME)` builds)
//! lists every ViT timm registers in `vision_transformer.py` and `deit.py`, either as the
//! arguments of the model Vitrine builds for it or with the part Vitrine's blocks do not
//! compute. Names timm registers elsewhere are refused in one line too.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::config::{Activation, Pooling, VitConfig};

/// What Vitrine builds from the hub, said in every refusal.
pub const SUPPORTED: &str = "supported: timm's ViTs and DeiTs built of plain pre-norm blocks \
    (vit_*, deit_*, deit3_*, their _clip_, _gap_, _dinov2 and _reg{N}_ variants): a class token \
    or none, a distillation token, registers, layer scale, norm_pre, GELU or QuickGELU, \
    class-token or average pooling, any number of classes or none";

/// What stays refused, and why: each computes something Vitrine's blocks do not.
pub const REFUSED: &str = "refused: attention pooling (global_pool 'map': SigLIP, so150m-map), \
    rotary position embeddings (RoPE: EVA-02, vit_*_rope_*), gated MLPs (SwiGLU: DINOv2-giant, \
    AIMv2), RMSNorm, QK-norm and parallel blocks (vit_*_xp_*), tanh-approximated GELU \
    (SigLIP-gap), models without a final norm (RADIO, InternViT), and every architecture that is \
    not timm's VisionTransformer";

/// One architecture as `make_timm_architectures.py` read it from the model timm builds.
#[derive(Debug, Clone, Deserialize)]
struct Built {
    img_size: usize,
    patch_size: usize,
    embed_dim: usize,
    depth: usize,
    num_heads: usize,
    mlp_ratio: f64,
    qkv_bias: bool,
    class_token: bool,
    distilled: bool,
    reg_tokens: usize,
    no_embed_class: bool,
    init_values: Option<f64>,
    pre_norm: bool,
    layer_norm_eps: f64,
    act_layer: String,
    global_pool: String,
    fc_norm: bool,
    num_classes: usize,
}

#[derive(Debug, Deserialize)]
struct Table {
    timm: String,
    built: std::collections::BTreeMap<String, Built>,
    refused: std::collections::BTreeMap<String, String>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("../../data/timm-architectures.json"))
            .expect("vit/data/timm-architectures.json is the script's JSON")
    })
}

/// An architecture name read: the model timm builds for it by default (its image size that of
/// the architecture's default pretrained config, which a repo's own config overrides).
pub(super) struct Architecture {
    pub config: VitConfig,
}

/// The model `timm.create_model(arch)` builds, or why Vitrine does not build it.
pub(super) fn architecture(arch: &str) -> Result<Architecture, String> {
    let t = table();
    if let Some(why) = t.refused.get(arch) {
        return Err(format!(
            "architecture '{arch}' has {why}, which Vitrine's ViT does not build"
        ));
    }
    let Some(b) = t.built.get(arch) else {
        let family = arch.split('_').next().unwrap_or(arch);
        return Err(if arch.contains("rope") || family.starts_with("eva") {
            format!(
                "architecture '{arch}' has rotary position embeddings (RoPE), which Vitrine's ViT does not build"
            )
        } else if ["vit", "deit", "beit", "flexivit", "aimv2", "naflexvit"]
            .iter()
            .any(|f| family.starts_with(f))
        {
            format!(
                "architecture '{arch}' is a ViT variant Vitrine does not build (not one of the {} timm {} registers in vision_transformer.py and deit.py that it does)",
                t.built.len(),
                t.timm
            )
        } else {
            format!("architecture '{arch}' is not a ViT (Vitrine runs Vision Transformers only)")
        });
    };
    let pooling = match b.global_pool.as_str() {
        "token" => Pooling::Token,
        _ => Pooling::Mean,
    };
    let config = VitConfig::new()
        .with_image_size(b.img_size)
        .with_patch_size(b.patch_size)
        .with_embed_dim(b.embed_dim)
        .with_depth(b.depth)
        .with_num_heads(b.num_heads)
        .with_mlp_ratio(b.mlp_ratio)
        .with_qkv_bias(b.qkv_bias)
        .with_pooling(pooling)
        .with_num_classes(b.num_classes)
        .with_layer_norm_eps(b.layer_norm_eps)
        // Only what differs from the original ViT is set, as a manifest of one would read.
        .with_class_token((!b.class_token).then_some(false))
        .with_distilled(b.distilled.then_some(true))
        .with_reg_tokens((b.reg_tokens > 0).then_some(b.reg_tokens))
        .with_no_embed_class(b.no_embed_class.then_some(true))
        .with_init_values(b.init_values)
        .with_pre_norm(b.pre_norm.then_some(true))
        .with_fc_norm((b.fc_norm != (pooling == Pooling::Mean)).then_some(b.fc_norm))
        .with_act_layer((b.act_layer == "quick_gelu").then_some(Activation::QuickGelu));
    Ok(Architecture { config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issues_five_are_read_as_timm_builds_them() {
        let distilled = architecture("deit_tiny_distilled_patch16_224")
            .unwrap()
            .config;
        assert_eq!(distilled.prefix_tokens().count(), 2);
        assert_eq!(distilled.embed_dim, 192);
        let deit3 = architecture("deit3_small_patch16_224").unwrap().config;
        assert_eq!(
            (deit3.init_values, deit3.no_embed_class),
            (Some(1e-6), Some(true))
        );
        let dino = architecture("vit_small_patch14_reg4_dinov2")
            .unwrap()
            .config;
        let p = dino.prefix_tokens();
        assert_eq!((p.count(), p.embedded), (5, false));
        assert_eq!((dino.image_size, dino.num_classes), (518, 0));
        let clip = architecture("vit_base_patch16_clip_224").unwrap().config;
        assert_eq!(
            (clip.has_norm_pre(), clip.layer_norm_eps, clip.activation()),
            (true, 1e-5, Activation::Gelu)
        );
        let quick = architecture("vit_base_patch16_clip_quickgelu_224")
            .unwrap()
            .config;
        assert_eq!(quick.activation(), Activation::QuickGelu);
        let gap = architecture("vit_medium_patch16_gap_256").unwrap().config;
        assert_eq!(
            (
                gap.prefix_tokens().count(),
                gap.uses_fc_norm(),
                gap.qkv_bias
            ),
            (0, false, false)
        );
        assert_eq!(gap.init_values, Some(1e-6));
        // The original ViT reads as a manifest written before the prefix tokens existed.
        let plain = architecture("vit_base_patch16_224").unwrap().config;
        assert_eq!(
            plain,
            VitConfig::new()
                .with_image_size(224)
                .with_patch_size(16)
                .with_embed_dim(768)
                .with_depth(12)
                .with_num_heads(12)
                .with_mlp_ratio(4.0)
                .with_num_classes(1000)
        );
    }

    #[test]
    fn every_architecture_in_the_table_builds_or_says_why_not() {
        let t = table();
        assert!(t.built.len() >= 100, "{}", t.built.len());
        for name in t.built.keys() {
            let config = architecture(name).unwrap().config;
            config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for (arch, says) in [
            ("vit_base_patch16_siglip_224", "attention pooling"),
            ("vit_so150m_patch16_reg4_map_256", "attention pooling"),
            ("vit_base_patch16_rope_reg1_gap_256", "RoPE"),
            ("eva02_base_patch14_224", "RoPE"),
            ("vit_giant_patch14_reg4_dinov2", "SwiGLU"),
            ("vit_base_patch16_xp_224", "blocks of another kind"),
            ("vit_so400m_patch16_siglip_gap_256", "tanh"),
            ("vit_small_patch16_18x2_224", "blocks of another kind"),
            ("vit_tiny_patch4_32", "variant"),
            ("resnet50", "not a ViT"),
        ] {
            let e = architecture(arch).err().unwrap_or_else(|| panic!("{arch}"));
            assert!(e.contains(says), "{arch}: {e}");
        }
    }
}
