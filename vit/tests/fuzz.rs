//! Fuzzing what users hand us: image bytes, manifest JSON, and weights (burnpack and timm
//! safetensors). Each target mutates valid seeds (overwrite, insert and delete bytes, then maybe
//! cut the end) with proptest and feeds the result to the code the CLI and the page run. The
//! property is the house rule: an error or a result, never a panic, and bounded work.
//!
//! In the test command each target runs for `VITRINE_FUZZ_SECS` seconds (default 5); a long run
//! (`VITRINE_FUZZ_SECS=600 cargo test ... --test fuzz -- --nocapture`) prints how many inputs
//! each target tried.

use std::io::Cursor;
use std::time::{Duration, Instant};

use burn::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use vit::preprocess::Preprocess;
use vit::weights::{Manifest, load_model, model_to_bytes, sha256_hex};
use vit::{Normalization, VitConfig};

/// Byte edits: (position, value, kind), kind 0 overwrite, 1 insert, 2 delete.
type Edits = Vec<(usize, u8, u8)>;

fn mutate(seed: &[u8], edits: &Edits, cut: Option<usize>) -> Vec<u8> {
    let mut out = seed.to_vec();
    for &(at, value, kind) in edits {
        let len = out.len();
        match kind {
            0 if len > 0 => out[at % len] = value,
            1 => out.insert(at % (len + 1), value),
            2 if len > 0 => {
                out.remove(at % len);
            }
            _ => {}
        }
    }
    if let Some(cut) = cut {
        let len = out.len();
        out.truncate(cut % (len + 1));
    }
    out
}

fn edits() -> impl Strategy<Value = (Edits, Option<usize>)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..12),
        prop::option::weighted(0.3, any::<usize>()),
    )
}

fn budget() -> Duration {
    let secs = std::env::var("VITRINE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    Duration::from_secs_f64(secs)
}

/// Runs `check` on mutations of `seeds` until the time budget is spent, in rounds of fresh
/// random seeds; a panic or a returned failure fails the test with the input that caused it.
fn fuzz(name: &str, seeds: &[Vec<u8>], check: impl Fn(&[u8]) -> Result<(), TestCaseError>) {
    let start = Instant::now();
    let (mut cases, mut round) = (0u64, 0u64);
    let strategy = (0..seeds.len(), edits());
    while start.elapsed() < budget() || round == 0 {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        let config = Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        let result = runner.run(&strategy, |(which, (edits, cut))| {
            check(&mutate(&seeds[which], &edits, cut))
        });
        if let Err(e) = result {
            panic!("{name}, round {round}: {e}");
        }
        cases += 64;
        round += 1;
    }
    eprintln!(
        "fuzz {name}: {cases} inputs in {:.0} s, no failure",
        start.elapsed().as_secs_f64()
    );
}

fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(20, 12, |x, y| {
        image::Rgb([(x * 12) as u8, (y * 20) as u8, (x * y) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

#[test]
fn image_bytes_to_preprocess() {
    let seeds: Vec<Vec<u8>> = [
        image::ImageFormat::Jpeg,
        image::ImageFormat::Png,
        image::ImageFormat::WebP,
        image::ImageFormat::Gif,
        image::ImageFormat::Bmp,
    ]
    .map(encoded)
    .to_vec();
    fuzz("image bytes -> preprocess", &seeds, |bytes| {
        // Vitrine's own preprocessing, and timm's with a crop and another filter.
        let own = Preprocess::new(16, Normalization::CIFAR10);
        let mut timm = own;
        timm.resize.crop_pct = 0.875;
        timm.resize.interpolation = vit::resample::Interpolation::Lanczos;
        for pre in [own, timm] {
            if let Ok(p) = vit::preprocess::prepare(bytes, &pre) {
                prop_assert_eq!(p.chw.len(), 3 * 16 * 16);
                prop_assert!(p.chw.iter().all(|v| v.is_finite()));
            }
        }
        let _ = vit::damage::truncation(bytes);
        Ok(())
    });
}

fn tiny() -> (Manifest, Vec<u8>) {
    let config = VitConfig::new()
        .with_image_size(8)
        .with_patch_size(4)
        .with_embed_dim(8)
        .with_depth(1)
        .with_num_heads(2)
        .with_num_classes(2);
    let model = config.init(&Device::flex()).unwrap();
    let bytes = model_to_bytes(&model).unwrap();
    let mut manifest = Manifest::new(
        "m",
        config,
        vec!["a".into(), "b".into()],
        Normalization::CIFAR10,
    );
    manifest.weights.sha256 = sha256_hex(&bytes);
    manifest.weights.bytes = bytes.len() as u64;
    (manifest, bytes)
}

#[test]
fn manifest_json_to_model() {
    let (manifest, weights) = tiny();
    let json = manifest.to_json();
    // Seeds whose numbers are already far off, so mutations reach the fit check too.
    let seeds = vec![
        json.clone().into_bytes(),
        json.replace("\"depth\": 1", "\"depth\": 9000000")
            .into_bytes(),
        json.replace("\"embed_dim\": 8", "\"embed_dim\": 4000000000")
            .into_bytes(),
        json.replace("\"image_size\": 8", "\"image_size\": 16000")
            .into_bytes(),
    ];
    fuzz(
        "manifest JSON -> Manifest::from_json + load_model",
        &seeds,
        |bytes| {
            let text = String::from_utf8_lossy(bytes);
            if let Ok(m) = Manifest::from_json(&text, "fuzz.json") {
                let _ = load_model(&m, &weights, &Device::flex());
            }
            Ok(())
        },
    );
}

#[test]
fn burnpack_bytes_to_model() {
    let (manifest, weights) = tiny();
    fuzz("burnpack bytes -> load_model", &[weights], |bytes| {
        let mut m = manifest.clone();
        // The checksum is right, so the bytes themselves are what is tested.
        m.weights.sha256 = sha256_hex(bytes);
        let _ = load_model(&m, bytes, &Device::flex());
        Ok(())
    });
}

#[test]
fn safetensors_bytes_to_timm_import() {
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/timm_tiny_token.safetensors");
    let seed = std::fs::read(&fixture).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.safetensors");
    fuzz("safetensors bytes -> timm import", &[seed], |bytes| {
        std::fs::write(&path, bytes).unwrap();
        if let Ok(shapes) = vit::timm::safetensors_shapes(&path)
            && let Ok(config) = vit::timm::infer_timm_config(&shapes, 2)
        {
            let _ = vit::timm::import_timm(&path, &config, &Device::flex());
        }
        Ok(())
    });
}
