//! timm's whole eval pipeline on real photos, against `vit`'s: every hub fixture repo
//! (`tests/fixtures/hub/`, timm's own `save_for_hf` output: DeiT, distilled DeiT, DeiT-III,
//! DINOv2 with registers, CLIP with and without QuickGELU, a ViT without a class token, an
//! average-pooled ViT) read through `vit::hub`, the photos resized and cropped by
//! `vit::preprocess` as timm's `create_transform` does, and the models' answers; DINOv2 also
//! at 224 px, its position embeddings resampled as timm resamples them when it loads a
//! checkpoint at another size. Fixtures: `tests/fixtures/make_hub_reference.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use sha2::{Digest, Sha256};
use vit::VisionTransformer;
use vit::hub::{HubModel, LabelSource, read_config};
use vit::preprocess::{Preprocess, batch_tensor, prepare};

#[path = "../../tests/support/close.rs"]
mod close;
use close::{Tolerance, assert_close};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn reference() -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(fixtures().join("hub_reference.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, t.data().to_vec()))
        .collect()
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// The fixture repos, by name.
fn repos() -> Vec<String> {
    let mut repos: Vec<String> = std::fs::read_dir(fixtures().join("hub/timm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    repos.sort();
    repos
}

/// A repo's config.json read, and its weights read into the model it describes, as the page
/// reads a download (checked against the config first).
fn load(repo: &str, size: Option<usize>, device: &Device) -> (HubModel, VisionTransformer) {
    let dir = fixtures().join("hub/timm").join(repo);
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut hub = read_config(&text, repo).unwrap();
    if let Some(size) = size {
        hub = hub.with_image_size(size).unwrap();
    }
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let model = hub.load_weights(weights, repo, device).unwrap();
    (hub, model)
}

/// Every photo through `hub`'s preprocessing and `model`, against timm's answers under `key`;
/// returns how many photos were checked.
fn check_photos(key: &str, hub: &HubModel, model: &VisionTransformer, device: &Device) -> usize {
    let reference = reference();
    let pre = Preprocess {
        image_size: hub.config.image_size as u32,
        resize: hub.resize,
        norm: hub.norm,
    };
    let mut checked = 0;
    for photo in std::fs::read_dir(fixtures().join("photos")).unwrap() {
        let path = photo.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let key = format!("{key}.{name}");
        let prepared = prepare(&std::fs::read(&path).unwrap(), &pre).unwrap();
        let view_sha = Sha256::digest(prepared.model_view.as_raw()).to_vec();
        assert_eq!(
            view_sha,
            reference[&format!("{key}.view_sha256")],
            "{key}: the resized and cropped view differs from timm's by some byte"
        );
        let logits = model
            .forward(batch_tensor(
                &[&prepared.chw],
                pre.image_size as usize,
                device,
            ))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let theirs = floats(&reference[&format!("{key}.logits")]);
        assert_close(
            &format!("{key} logits"),
            &theirs,
            &logits,
            Tolerance::abs(1e-4),
        );
        let probs = vit::inference::softmax(&logits);
        let theirs_p = floats(&reference[&format!("{key}.probs")]);
        assert_close(
            &format!("{key} probs"),
            &theirs_p,
            &probs,
            Tolerance::abs(1e-6),
        );
        assert_eq!(argmax(&probs), argmax(&theirs_p), "{key}: top-1");
        checked += 1;
    }
    checked
}

#[test]
fn photos_reach_the_models_as_they_reach_timm_and_get_the_same_answers() {
    let device = Device::flex();
    let mut checked = 0;
    let repos = repos();
    for repo in &repos {
        let (hub, model) = load(repo, None, &device);
        assert_eq!(model.prefix, hub.config.prefix_tokens(), "{repo}");
        checked += check_photos(repo, &hub, &model, &device);
        match (repo.as_str(), hub.config.num_classes) {
            ("vit_small_patch32_384.augreg_in21k_ft_in1k", _) => {
                assert_eq!(hub.labels[0], "astronaut", "config.json's label_names")
            }
            (_, 1000) => assert_eq!(hub.label_source, LabelSource::ImageNet1k, "{repo}"),
            (_, 0) => assert!(hub.labels.is_empty(), "{repo}: a feature model"),
            (_, n) => assert_eq!(hub.labels.len(), n, "{repo}"),
        }
    }
    assert_eq!(repos.len(), 8, "{repos:?}");
    assert_eq!(checked, 5 * repos.len(), "five photos each");
}

/// The five repos are each the architecture they are named for.
#[test]
fn the_family_is_read_as_timm_builds_it() {
    let device = Device::flex();
    let prefix = |repo: &str| load(repo, None, &device).1.prefix;
    let distilled = prefix("deit_tiny_distilled_patch16_224.fb_in1k");
    assert_eq!(
        (distilled.class, distilled.distillation, distilled.count()),
        (true, true, 2)
    );
    let dino = prefix("vit_small_patch14_reg4_dinov2.lvd142m");
    assert_eq!((dino.count(), dino.registers, dino.embedded), (5, 4, false));
    assert!(!prefix("deit3_small_patch16_224.fb_in22k_ft_in1k").embedded);
    assert_eq!(
        prefix("vit_medium_patch16_gap_256.sw_in12k_ft_in1k").count(),
        0
    );
    let (_, clip) = load("vit_base_patch16_clip_224.openai_ft_in1k", None, &device);
    assert!(clip.norm_pre.is_some() && clip.patch_embed.proj.bias.is_none());
}

/// DINOv2 made for 518 px, run at 224 (16 x 16 patches): its position embeddings resampled
/// from 37 x 37 as timm's `checkpoint_filter_fn` resamples them, and timm's answers at 224.
#[test]
fn a_model_runs_at_another_size_as_timm_loads_it_there() {
    let device = Device::flex();
    let repo = "vit_small_patch14_reg4_dinov2.lvd142m";
    let (hub, model) = load(repo, Some(224), &device);
    assert_eq!(
        model.pos_embed.dims(),
        [1, 16 * 16, 24],
        "patches only: no_embed_class"
    );
    assert_eq!(model.num_tokens(), 5 + 16 * 16);
    assert_eq!(
        check_photos(&format!("{repo}@224"), &hub, &model, &device),
        5
    );
    let e = read_config(
        &std::fs::read_to_string(fixtures().join("hub/timm").join(repo).join("config.json"))
            .unwrap(),
        repo,
    )
    .unwrap()
    .with_image_size(225)
    .unwrap_err();
    assert!(
        e.to_string().contains("not divisible by patch_size 14"),
        "{e}"
    );
}
