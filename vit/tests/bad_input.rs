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
    manifest.config.embed_dim = 16;
    std::fs::write(&path, manifest.to_json()).unwrap();
    let e = load_pair(&path, &Device::flex()).unwrap_err();
    assert!(matches!(e, VitError::WeightsMismatch(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("cls_token"), "{msg}");
    assert!(msg.contains("[1, 1, 16]") || msg.contains("16"), "{msg}");
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
    let e = vit::weights::infer_timm_config(&shapes, 2).unwrap_err();
    assert!(e.to_string().contains("in_chans is 1"), "{e}");
    shapes.insert("patch_embed.proj.weight".into(), vec![8, 3, 4, 4]);
    vit::weights::infer_timm_config(&shapes, 2).unwrap();
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
