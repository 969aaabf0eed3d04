//! Bad input gets a clear error, never a panic.

use std::io::Cursor;

use burn::prelude::*;
use vit::weights::{Manifest, load_pair, save_pair};
use vit::{Normalization, VitConfig, VitError};

fn jpeg_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 99]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG header that declares `w` x `h` pixels, followed by a tiny IDAT.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn valid_jpeg_decodes() {
    let img = vit::preprocess::decode_image(&jpeg_bytes()).unwrap();
    assert_eq!(img.dimensions(), (64, 48));
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let bytes = jpeg_bytes();
    let e = vit::preprocess::decode_image(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(e, VitError::CorruptImage(_)), "{e}");
    assert!(e.to_string().contains("truncated or corrupt"), "{e}");
}

#[test]
fn zero_bytes_are_empty() {
    let e = vit::preprocess::decode_image(&[]).unwrap_err();
    assert_eq!(e.to_string(), "the image is empty (0 bytes)");
}

#[test]
fn text_named_jpg_is_not_an_image() {
    let e = vit::preprocess::decode_image(b"just some notes, saved as photo.jpg\n").unwrap_err();
    assert!(matches!(e, VitError::UnsupportedImage(_)), "{e}");
    assert!(e.to_string().contains("JPEG, PNG, WebP, GIF, BMP"), "{e}");
}

#[test]
fn decompression_bomb_is_refused_before_allocating() {
    let e = vit::preprocess::decode_image(&png_declaring(100_000, 100_000)).unwrap_err();
    assert!(matches!(e, VitError::ImageTooLarge(_)), "{e}");
    assert!(e.to_string().contains("16384x16384"), "{e}");
}

fn saved_pair(dir: &std::path::Path) -> std::path::PathBuf {
    let config = VitConfig::new()
        .with_image_size(8)
        .with_patch_size(4)
        .with_embed_dim(8)
        .with_depth(1)
        .with_num_heads(2)
        .with_num_classes(2);
    let model = config.init(&Device::flex()).unwrap();
    let mut manifest = Manifest::new(
        "m",
        config,
        vec!["a".into(), "b".into()],
        Normalization::CIFAR10,
    );
    save_pair(dir, &mut manifest, &model).unwrap()
}

#[test]
fn saved_pair_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_pair(dir.path());
    let (manifest, _) = load_pair(&path, &Device::flex()).unwrap();
    assert_eq!(manifest.labels, vec!["a", "b"]);
    assert_eq!(manifest.weights.sha256.len(), 64);
}

#[test]
fn checksum_mismatch_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_pair(dir.path());
    let bpk = dir.path().join("m.bpk");
    let mut bytes = std::fs::read(&bpk).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&bpk, bytes).unwrap();
    let e = load_pair(&path, &Device::flex()).unwrap_err();
    assert!(matches!(e, VitError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains("m.bpk"), "{e}");
}

#[test]
fn shapes_that_do_not_fit_the_config_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_pair(dir.path());
    // Claim a wider model than the weights hold; the checksum still matches.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut manifest = Manifest::from_json(&text, "m.json").unwrap();
    let saved = manifest.config.num_params();
    manifest.config.embed_dim = 16;
    std::fs::write(&path, manifest.to_json()).unwrap();
    let e = load_pair(&path, &Device::flex()).unwrap_err();
    assert!(matches!(e, VitError::WeightsMismatch(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(
            "'cls_token' has shape [1, 1, 8] in the weights, the config implies [1, 1, 16]"
        ),
        "{msg}"
    );
    let summary = format!(
        "implies 20 tensors and {} parameters; the weights hold 20 tensors and {saved} parameters",
        manifest.config.num_params()
    );
    assert!(msg.contains(&summary), "{msg}");
    // Every tensor of the block differs: 12 are listed, the rest counted.
    assert!(msg.ends_with("\n  ... and 7 more"), "{msg}");
}

/// Rewrites the saved pair's manifest config with `edit`, keeping the weights (and so the
/// checksum) as they are.
fn with_config(path: &std::path::Path, edit: impl FnOnce(&mut VitConfig)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut manifest = Manifest::from_json(&text, "m.json").unwrap();
    edit(&mut manifest.config);
    manifest.labels = (0..manifest.config.num_classes)
        .map(|i| format!("c{i}"))
        .collect();
    std::fs::write(path, manifest.to_json()).unwrap();
}

#[test]
fn an_absurd_config_is_refused_quickly_in_a_few_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_pair(dir.path());
    with_config(&path, |c| {
        c.depth = 1_000_000;
        c.image_size = 4096;
        c.embed_dim = 4096;
        c.num_heads = 64;
    });
    let start = std::time::Instant::now();
    let e = load_pair(&path, &Device::flex()).unwrap_err();
    assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
    let msg = e.to_string();
    assert!(matches!(e, VitError::WeightsMismatch(_)), "{msg}");
    assert!(
        msg.contains("implies 12000008 tensors") && msg.contains("the weights hold 20 tensors"),
        "{msg}"
    );
    assert!(msg.lines().count() <= 3, "{msg}");
}

#[test]
fn a_config_one_block_too_deep_lists_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_pair(dir.path());
    with_config(&path, |c| c.depth = 2);
    let msg = load_pair(&path, &Device::flex()).unwrap_err().to_string();
    assert!(
        msg.contains("implies 32 tensors") && msg.contains("hold 20 tensors"),
        "{msg}"
    );
    assert!(
        msg.contains("'blocks.1.attn.qkv.weight' [8, 24] is missing from the weights"),
        "{msg}"
    );
    // 12 tensors are missing: all listed, nothing elided.
    assert_eq!(
        msg.matches("is missing from the weights").count(),
        12,
        "{msg}"
    );
}

#[test]
fn a_long_mismatch_list_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_pair(dir.path());
    with_config(&path, |c| c.depth = 3);
    let msg = load_pair(&path, &Device::flex()).unwrap_err().to_string();
    assert_eq!(
        msg.matches("is missing from the weights").count(),
        12,
        "{msg}"
    );
    assert!(msg.ends_with("  ... and 12 more"), "{msg}");
}

#[test]
fn expected_tensors_are_what_a_built_model_saves() {
    use vit::weights::{burnpack_shapes, expected_tensors, model_to_bytes};
    for config in [
        VitConfig::new()
            .with_image_size(8)
            .with_embed_dim(8)
            .with_depth(2)
            .with_num_heads(2),
        VitConfig::new()
            .with_image_size(12)
            .with_patch_size(3)
            .with_embed_dim(12)
            .with_depth(1)
            .with_num_heads(3)
            .with_mlp_ratio(3.0)
            .with_qkv_bias(false)
            .with_pooling(vit::Pooling::Mean)
            .with_num_classes(7),
        // A distilled DeiT with registers, layer scale and norm_pre: every optional tensor.
        VitConfig::new()
            .with_image_size(8)
            .with_embed_dim(8)
            .with_depth(2)
            .with_num_heads(2)
            .with_distilled(Some(true))
            .with_reg_tokens(Some(2))
            .with_no_embed_class(Some(true))
            .with_init_values(Some(1e-5))
            .with_pre_norm(Some(true)),
        // No class token and no classifier.
        VitConfig::new()
            .with_image_size(8)
            .with_embed_dim(8)
            .with_depth(1)
            .with_num_heads(2)
            .with_class_token(Some(false))
            .with_pooling(vit::Pooling::Mean)
            .with_num_classes(0),
    ] {
        let model = config.init(&Device::flex()).unwrap();
        let saved = burnpack_shapes(&model_to_bytes(&model).unwrap()).unwrap();
        // The counts alone (what check_fits compares first) agree with the list.
        vit::weights::check_fits(&config, &saved).unwrap();
        let expected: std::collections::BTreeMap<_, _> =
            expected_tensors(&config).into_iter().collect();
        assert_eq!(saved, expected, "{config:?}");
    }
}

#[test]
fn models_of_other_than_3_channels_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_pair(dir.path());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"in_chans\": 3", "\"in_chans\": 1");
    assert!(text.contains("\"in_chans\": 1"));
    let e = Manifest::from_json(&text, "m.json").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid manifest m.json: invalid model config: in_chans is 1, but Vitrine feeds every model 3-channel RGB images; only in_chans = 3 is supported"
    );

    // A 1-channel timm state dict, seen through its shapes.
    let mut shapes = std::collections::BTreeMap::new();
    for (name, shape) in [
        ("patch_embed.proj.weight", vec![8, 1, 4, 4]),
        ("cls_token", vec![1, 1, 8]),
        ("pos_embed", vec![1, 5, 8]),
        ("blocks.0.norm1.weight", vec![8]),
        ("blocks.0.mlp.fc1.weight", vec![16, 8]),
        ("head.weight", vec![2, 8]),
    ] {
        shapes.insert(name.to_string(), shape);
    }
    let e = vit::timm::infer_timm_config(&shapes, 2).unwrap_err();
    assert!(e.to_string().contains("in_chans is 1"), "{e}");
    shapes.insert("patch_embed.proj.weight".into(), vec![8, 3, 4, 4]);
    vit::timm::infer_timm_config(&shapes, 2).unwrap();
}

#[test]
fn one_name_rule_for_every_model() {
    use vit::weights::check_model_name;
    for good in ["vitrine-cifar10", "my_vit.v2", "A1"] {
        check_model_name(good).unwrap();
    }
    for bad in [
        "",
        ".hidden",
        "-x",
        "a/b",
        "index",
        "caf\u{e9}",
        &"x".repeat(101),
    ] {
        let e = check_model_name(bad).unwrap_err();
        assert!(
            e.to_string()
                .contains("starts with a letter or digit, and is not 'index'"),
            "{bad}: {e}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(saved_pair(dir.path()))
        .unwrap()
        .replace("\"name\": \"m\"", "\"name\": \".m\"");
    let e = Manifest::from_json(&text, "x.json").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid manifest x.json: invalid model name '.m'"),
        "{e}"
    );
}

#[test]
fn broken_manifests_say_why() {
    let e = Manifest::from_json("{ not json", "x.json").unwrap_err();
    assert!(e.to_string().starts_with("invalid manifest x.json"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(saved_pair(dir.path())).unwrap();
    let wrong_labels = text.replace("\"b\"", "\"b\", \"c\"");
    let e = Manifest::from_json(&wrong_labels, "x.json").unwrap_err();
    assert!(e.to_string().contains("3 labels for 2 classes"), "{e}");
}
