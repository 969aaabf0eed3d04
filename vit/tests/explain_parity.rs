//! `vit::explain` against timm and PyTorch: every map of `tests/fixtures/timm_*_explain.safetensors`
//! (written by `tests/fixtures/make_timm_reference.py`), whose tensor names are the questions
//! (`attention.layer2.head1.token3.reverse`, `rollout.through2.headmean.token0.forward`,
//! `relevance.image0.class4`). The attention maps there come from timm's own probabilities, the
//! relevance from PyTorch's autograd through timm's model.

#[path = "../../tests/support/close.rs"]
mod close;

use std::path::PathBuf;

use burn::prelude::*;
use close::{Tolerance, assert_close, assert_differ};
use vit::explain::{Heads, Method, Query, Relevance, Token, explain, gradient_weighted_attention};
use vit::inference::{split_attention_for, stack_attention};
use vit::rollout::AttentionMaps;
use vit::timm::{import_timm, infer_timm_config, safetensors_shapes};
use vit::{Pooling, VisionTransformer};

const TOL: Tolerance = Tolerance::abs(1e-5);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Every tensor of a safetensors file, as f32 values with their shape, in name order.
fn tensors(name: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let t = st.tensor(&n).unwrap();
            let values = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (n, t.shape().to_vec(), values)
        })
        .collect()
}

fn get(all: &[(String, Vec<usize>, Vec<f32>)], name: &str) -> (Vec<usize>, Vec<f32>) {
    let (_, shape, values) = all
        .iter()
        .find(|(n, ..)| n == name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    (shape.clone(), values.clone())
}

/// `attention.layer2.headmax.token3.reverse` -> its query.
fn parse(name: &str) -> Query {
    let parts: Vec<&str> = name.split('.').collect();
    let [method, layer, heads, token, direction] = parts[..] else {
        panic!("{name}: not a question");
    };
    let number = |s: &str, prefix: &str| s.strip_prefix(prefix).unwrap().to_string();
    Query {
        method: method.parse().unwrap(),
        layer: Some(
            number(
                layer,
                if method == "attention" {
                    "layer"
                } else {
                    "through"
                },
            )
            .parse()
            .unwrap(),
        ),
        heads: number(heads, "head").parse::<Heads>().unwrap(),
        token: number(token, "token").parse::<Token>().unwrap(),
        reverse: direction == "reverse",
    }
}

fn model_on(name: &str, heads: usize, device: &Device) -> VisionTransformer {
    let path = fixture(&format!("timm_{name}.safetensors"));
    let config = infer_timm_config(&safetensors_shapes(&path).unwrap(), heads).unwrap();
    import_timm(&path, &config, device).unwrap()
}

/// Our attention maps of the fixture's input, one per image, and the input itself.
fn our_attention(
    model: &VisionTransformer,
    name: &str,
    device: &Device,
) -> (Vec<AttentionMaps>, Tensor<4>) {
    let reference = tensors(&format!("timm_{name}_reference.safetensors"));
    let (shape, input) = get(&reference, "input");
    let input = Tensor::<4>::from_data(TensorData::new(input, shape), device);
    let (_, attention) = model.forward_with_attention(input.clone());
    let stacked = stack_attention(attention);
    let dims = stacked.dims();
    let flat = stacked.into_data().try_to_vec::<f32>().unwrap();
    (split_attention_for(&flat, dims, model.prefix), input)
}

fn check_maps(name: &str, heads: usize, pooling: Pooling) {
    let device = Device::flex();
    let model = model_on(name, heads, &device);
    let (maps, _) = our_attention(&model, name, &device);
    let explain_fixture = tensors(&format!("timm_{name}_explain.safetensors"));
    let mut asked = 0;
    for (tensor, shape, want) in &explain_fixture {
        if tensor.starts_with("relevance.") {
            continue;
        }
        let query = parse(tensor);
        let tokens = shape[1];
        for (b, image) in maps.iter().enumerate() {
            let ours = explain(image, None, pooling, &query).unwrap();
            let want = &want[b * tokens..(b + 1) * tokens];
            assert_close(
                &format!("{name} {tensor} image {b}"),
                want,
                &ours.values,
                TOL,
            );
        }
        asked += 1;
    }
    assert!(asked >= 9, "{name}: only {asked} questions");
}

/// Relevance for every image and class in the fixture, on `device`.
fn check_relevance(name: &str, heads: usize, pooling: Pooling, device: Device) {
    let model = model_on(name, heads, &device);
    let (maps, input) = our_attention(&model, name, &device);
    let explain_fixture = tensors(&format!("timm_{name}_explain.safetensors"));
    let mut by_image: Vec<Vec<(usize, Vec<f32>)>> = vec![Vec::new(); maps.len()];
    for (tensor, shape, want) in &explain_fixture {
        let Some(rest) = tensor.strip_prefix("relevance.image") else {
            continue;
        };
        let (image, class) = rest.split_once(".class").unwrap();
        let (b, class): (usize, usize) = (image.parse().unwrap(), class.parse().unwrap());
        let t = shape[0];
        let one = input.clone().narrow(0, b, 1);
        let cams = gradient_weighted_attention(&model, one, class).unwrap();
        let [layers, ..] = cams.dims();
        let relevance = Relevance {
            layers,
            tokens: t,
            cams: cams.into_data().try_to_vec::<f32>().unwrap(),
        };
        assert_close(
            &format!("{name} {tensor}: relevance matrix"),
            want,
            &relevance.matrix(layers),
            TOL,
        );

        // The map is the row of R - I the classifier reads.
        let query = Query {
            method: Method::Relevance,
            token: Token::Output,
            ..Query::default()
        };
        let map = explain(&maps[b], Some(&relevance), pooling, &query).unwrap();
        let rows: Vec<usize> = match pooling {
            Pooling::Token => vec![0],
            Pooling::Mean => (model.prefix.count()..t).collect(),
        };
        let want_row: Vec<f32> = (0..t)
            .map(|j| {
                let identity = |i: usize| if i == j { 1.0 } else { 0.0 };
                rows.iter()
                    .map(|&i| want[i * t + j] - identity(i))
                    .sum::<f32>()
                    / rows.len() as f32
            })
            .collect();
        assert_close(
            &format!("{name} {tensor}: relevance map"),
            &want_row,
            &map.values,
            TOL,
        );
        by_image[b].push((class, map.values));
    }
    // Two classes per image, and the maps depend on which one is asked about.
    for (b, classes) in by_image.iter().enumerate() {
        assert_eq!(classes.len(), 2, "{name} image {b}");
        assert_differ(
            &format!("{name} image {b}: relevance for two classes (it must depend on the class)"),
            &classes[0].1,
            &classes[1].1,
            Tolerance::abs(1e-3),
        );
    }
}

#[test]
fn maps_of_any_layer_head_and_token_match_timm() {
    check_maps("tiny_token", 2, Pooling::Token);
    check_maps("tiny_avg", 3, Pooling::Mean);
}

/// A class token and four registers (DINOv2's layout): the registers are tokens the maps can
/// be asked about (`reg1`), and the patches' maps leave them out.
#[test]
fn maps_of_a_model_with_registers_match_timm() {
    check_maps("tiny_reg", 2, Pooling::Token);
}

/// No class token: the maps from the patches' mean (`patches`, and `output` for its average
/// pooling) and from any token.
#[test]
fn maps_of_a_model_without_a_class_token_match_timm() {
    check_maps("tiny_gap", 3, Pooling::Mean);
}

#[test]
fn relevance_matches_pytorch_on_flex() {
    check_relevance("tiny_token", 2, Pooling::Token, Device::flex());
    check_relevance("tiny_avg", 3, Pooling::Mean, Device::flex());
    check_relevance("tiny_reg", 2, Pooling::Token, Device::flex());
    check_relevance("tiny_gap", 3, Pooling::Mean, Device::flex());
}

#[test]
fn relevance_works_with_an_autodiff_model_too() {
    // Training's model lives on an autodiff device; the probes must not mind.
    check_relevance("tiny_token", 2, Pooling::Token, Device::flex().autodiff());
}

#[test]
fn relevance_refuses_a_missing_class_and_a_batch() {
    let device = Device::flex();
    let model = model_on("tiny_token", 2, &device);
    let (_, input) = our_attention(&model, "tiny_token", &device);
    let e = gradient_weighted_attention(&model, input.clone().narrow(0, 0, 1), 5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no class 5") && e.contains("0 to 4"), "{e}");
    let e = gradient_weighted_attention(&model, input, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("one image at a time"), "{e}");
}
