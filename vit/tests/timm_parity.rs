//! Parity with timm itself: the fixtures are a tiny random timm ViT, an input, and timm's
//! logits and attention probabilities, all written by `tests/fixtures/make_timm_reference.py`.

#[path = "../../tests/support/close.rs"]
mod close;

use std::path::PathBuf;

use burn::prelude::*;
use close::Tolerance;
use vit::inference::split_attention_for;
use vit::rollout::HeadFusion;
use vit::timm::{export_timm, import_timm, infer_timm_config, safetensors_shapes};
use vit::weights::model_to_bytes;
use vit::{Pooling, VisionTransformer};

const TOL: Tolerance = Tolerance::abs(1e-4);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

struct Reference {
    bytes: Vec<u8>,
}

impl Reference {
    fn load(model: &str) -> Self {
        let path = fixture(&format!("timm_{model}_reference.safetensors"));
        Self {
            bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }

    fn get(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let values = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (t.shape().to_vec(), values)
    }
}

/// Ours against timm's, within [`TOL`].
fn assert_close(what: &str, ours: &[f32], theirs: &[f32]) {
    close::assert_close(what, theirs, ours, TOL);
}

fn read(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn import(model: &str, heads: usize) -> VisionTransformer {
    import_on(model, heads, &Device::flex())
}

fn import_on(model: &str, heads: usize, device: &Device) -> VisionTransformer {
    let path = fixture(&format!("timm_{model}.safetensors"));
    let config = infer_timm_config(&safetensors_shapes(&path).unwrap(), heads).unwrap();
    import_timm(&path, &config, device).unwrap()
}

/// `device`: plain Flex runs inference through our kernels (vit::kernels); Flex with autodiff
/// keeps burn's own ops, the path training and WebGPU take.
fn check_model(model_name: &str, heads: usize, device: Device) {
    let model = import_on(model_name, heads, &device);
    let reference = Reference::load(model_name);
    let (shape, input) = reference.get("input");
    let input = Tensor::<4>::from_data(TensorData::new(input, shape.clone()), &device);
    let (_, want_logits) = reference.get("logits");

    assert_close(
        "fused logits",
        &read(model.forward(input.clone())),
        &want_logits,
    );

    let (logits, attention) = model.forward_with_attention(input);
    assert_close("explicit logits", &read(logits), &want_logits);
    let (attn_shape, want_attn) = reference.get("attention");
    let stacked = vit::inference::stack_attention(attention);
    assert_eq!(stacked.dims().to_vec(), attn_shape);
    let ours = stacked.into_data().try_to_vec::<f32>().unwrap();
    assert_close("attention probabilities", &ours, &want_attn);

    let dims: [usize; 5] = attn_shape.try_into().unwrap();
    let maps = split_attention_for(&ours, dims, model.prefix);
    for (fusion, name) in [
        (HeadFusion::Mean, "mean"),
        (HeadFusion::Max, "max"),
        (HeadFusion::Min, "min"),
    ] {
        for discard in [0u32, 50] {
            let (_, want) = reference.get(&format!("rollout_{name}_{discard}"));
            let ours: Vec<f32> = maps
                .iter()
                .flat_map(|m| m.rollout(fusion, discard as f32 / 100.0).values)
                .collect();
            assert_close(&format!("rollout {name} discard {discard}%"), &ours, &want);
        }
    }
}

#[test]
fn token_pooling_model_matches_timm() {
    check_model("tiny_token", 2, Device::flex());
}

#[test]
fn mean_pooling_model_without_qkv_bias_matches_timm() {
    check_model("tiny_avg", 3, Device::flex());
}

/// A class token and four registers, layer scale, positions for the patches only (DINOv2's
/// layout): rollout from the class token over the patches, the registers left out.
#[test]
fn register_model_matches_timm() {
    check_model("tiny_reg", 2, Device::flex());
}

/// No class token, one register, average pooling after the final norm (timm's `_reg1_gap`):
/// rollout from the patches' mean.
#[test]
fn model_without_a_class_token_matches_timm() {
    check_model("tiny_gap", 3, Device::flex());
}

#[test]
fn burns_own_attention_matches_timm_too() {
    for (name, heads) in [
        ("tiny_token", 2),
        ("tiny_avg", 3),
        ("tiny_reg", 2),
        ("tiny_gap", 3),
    ] {
        check_model(name, heads, Device::flex().autodiff());
    }
}

#[test]
fn config_is_inferred_from_shapes() {
    let shapes = safetensors_shapes(&fixture("timm_tiny_token.safetensors")).unwrap();
    let c = infer_timm_config(&shapes, 2).unwrap();
    assert_eq!(
        (
            c.image_size,
            c.patch_size,
            c.embed_dim,
            c.depth,
            c.num_classes
        ),
        (16, 4, 32, 2, 5)
    );
    assert_eq!(
        (c.mlp_ratio, c.qkv_bias, c.pooling),
        (2.0, true, Pooling::Token)
    );
    let shapes = safetensors_shapes(&fixture("timm_tiny_avg.safetensors")).unwrap();
    let c = infer_timm_config(&shapes, 3).unwrap();
    assert_eq!((c.image_size, c.patch_size, c.depth), (24, 8, 3));
    assert_eq!(
        (c.mlp_ratio, c.qkv_bias, c.pooling),
        (3.0, false, Pooling::Mean)
    );
    let e = infer_timm_config(&shapes, 5).unwrap_err();
    assert!(e.to_string().contains("num_heads 5"), "{e}");
    // The prefix tokens and where the positions are, from the shapes alone.
    let shapes = safetensors_shapes(&fixture("timm_tiny_reg.safetensors")).unwrap();
    let c = infer_timm_config(&shapes, 2).unwrap();
    let p = c.prefix_tokens();
    assert_eq!((p.class, p.registers, p.embedded), (true, 4, false));
    assert_eq!((c.image_size, c.init_values.is_some()), (16, true));
    let shapes = safetensors_shapes(&fixture("timm_tiny_gap.safetensors")).unwrap();
    let c = infer_timm_config(&shapes, 3).unwrap();
    let p = c.prefix_tokens();
    assert_eq!((p.class, p.registers, p.embedded), (false, 1, true));
    assert_eq!((c.pooling, c.uses_fc_norm()), (Pooling::Mean, false));
}

#[test]
fn export_then_import_round_trips_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (name, heads) in [
        ("tiny_token", 2),
        ("tiny_avg", 3),
        ("tiny_reg", 2),
        ("tiny_gap", 3),
    ] {
        let original_path = fixture(&format!("timm_{name}.safetensors"));
        let model = import(name, heads);
        let out = dir.path().join(format!("{name}.safetensors"));
        export_timm(&model, &out).unwrap();

        // Same names, shapes and bytes as timm's own state dict.
        let exported = std::fs::read(&out).unwrap();
        assert_same_tensors(name, &std::fs::read(&original_path).unwrap(), &exported);

        // And back again: the re-imported model exports the same tensors, bit for bit.
        let config = infer_timm_config(&safetensors_shapes(&out).unwrap(), heads).unwrap();
        let again = import_timm(&out, &config, &Device::flex()).unwrap();
        let out2 = dir.path().join(format!("{name}-again.safetensors"));
        export_timm(&again, &out2).unwrap();
        assert_same_tensors(name, &exported, &std::fs::read(&out2).unwrap());
        assert_eq!(
            model_to_bytes(&again).unwrap().len(),
            model_to_bytes(&model).unwrap().len()
        );
    }
}

/// Two safetensors files hold the same tensor names, shapes and bytes (metadata may differ).
fn assert_same_tensors(what: &str, a: &[u8], b: &[u8]) {
    let (a, b) = (
        safetensors::SafeTensors::deserialize(a).unwrap(),
        safetensors::SafeTensors::deserialize(b).unwrap(),
    );
    let mut names: Vec<String> = a.names().into_iter().map(str::to_string).collect();
    let mut names_b: Vec<String> = b.names().into_iter().map(str::to_string).collect();
    names.sort();
    names_b.sort();
    assert_eq!(names, names_b, "{what}: tensor names");
    for n in &names {
        let (ta, tb) = (a.tensor(n).unwrap(), b.tensor(n).unwrap());
        assert_eq!(ta.shape(), tb.shape(), "{what}: {n} shape");
        assert!(ta.data() == tb.data(), "{what}: {n} bytes differ");
    }
}
