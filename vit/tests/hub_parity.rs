//! timm's whole eval pipeline on real photos, against `vit`'s: the two hub fixture repos
//! (`tests/fixtures/hub/`, timm's own `save_for_hf` output) read through `vit::hub`, the photos
//! resized and cropped by `vit::preprocess` as timm's `create_transform` does, and the models'
//! answers. Fixtures: `tests/fixtures/make_hub_reference.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use sha2::{Digest, Sha256};
use vit::hub::{LabelSource, read_config};
use vit::preprocess::{Preprocess, batch_tensor, prepare};
use vit::timm::{import_timm, safetensors_shapes};

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

#[test]
fn photos_reach_the_models_as_they_reach_timm_and_get_the_same_answers() {
    let reference = reference();
    let device = Device::flex();
    let mut checked = 0;
    for repo in [
        "deit_tiny_patch16_224.fb_in1k",
        "vit_small_patch32_384.augreg_in21k_ft_in1k",
    ] {
        let dir = fixtures().join("hub/timm").join(repo);
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let hub = read_config(&text, repo).unwrap();
        let weights = dir.join("model.safetensors");
        vit::hub::check_checkpoint(&hub, &safetensors_shapes(&weights).unwrap(), repo).unwrap();
        let model = import_timm(&weights, &hub.config, &device).unwrap();
        let pre = Preprocess {
            image_size: hub.config.image_size as u32,
            resize: hub.resize,
            norm: hub.norm,
        };
        for photo in std::fs::read_dir(fixtures().join("photos")).unwrap() {
            let path = photo.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let key = format!("{repo}.{name}");
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
                    &device,
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
        match hub.config.num_classes {
            1000 => assert_eq!(hub.label_source, LabelSource::ImageNet1k),
            _ => assert_eq!(hub.labels[0], "astronaut", "config.json's label_names"),
        }
    }
    assert_eq!(checked, 10, "two models, five photos");
}
