//! Teaching checked end to end on a tiny random ViT: classes, splits and views, then features,
//! steps, the taught model's own forward pass, and its pair loaded back.

use burn::prelude::*;

use super::*;
use crate::augment::hflip;
use crate::config::VitConfig;
use crate::model::VisionTransformer;
use crate::preprocess::Normalization;
use crate::rng::Rng;
use crate::weights::{Manifest, load_model, model_to_bytes};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn classes_are_checked_with_the_reason() {
    let labels = check_classes(&names(&[" cat ", "dog"]), &[3, 1]).unwrap();
    assert_eq!(labels, ["cat", "dog"]);
    for (list, counts, says) in [
        (&["cat"][..], &[3][..], "at least 2 classes"),
        (&["cat", ""], &[3, 3], "class 2 has no name"),
        (&["Cat", "cat "], &[3, 3], "both called 'cat'"),
        (&["cat", "dog"], &[3, 0], "'dog' has no photo"),
        (
            &["cat", "dog"],
            &[3, MAX_PHOTOS_PER_CLASS + 1],
            "at most 1000",
        ),
    ] {
        let e = check_classes(&names(list), counts).unwrap_err().to_string();
        assert!(e.contains(says), "{list:?} {counts:?}: {e}");
    }
    let many: Vec<String> = (0..=MAX_CLASSES).map(|i| format!("c{i}")).collect();
    let e = check_classes(&many, &vec![1; many.len()]).unwrap_err();
    assert!(e.to_string().contains("at most 20"), "{e}");
}

#[test]
fn a_share_of_every_class_is_held_out_when_each_has_enough() {
    let split = Split::new(&[10, 5, 7], 0.2, 3);
    assert_eq!(split.held_per_class(3), [2, 1, 1]);
    assert_eq!(split.train.len() + split.held.len(), 22);
    for pair in &split.held {
        assert!(
            !split.train.contains(pair),
            "{pair:?} both trains and is held out"
        );
    }
    assert_eq!(
        split,
        Split::new(&[10, 5, 7], 0.2, 3),
        "the same seed, the same split"
    );
    assert_ne!(split.held, Split::new(&[10, 5, 7], 0.2, 4).held);
    // One class short of photos: every photo trains.
    let all = Split::new(&[10, MIN_PHOTOS_FOR_HOLDOUT - 1], 0.2, 3);
    assert!(all.held.is_empty());
    assert_eq!(all.train.len(), 10 + MIN_PHOTOS_FOR_HOLDOUT - 1);
}

#[test]
fn views_are_the_photo_its_mirror_and_shifted_crops() {
    let side = 6;
    let square: Vec<u8> = (0..side * side * 3).map(|i| (i % 250 + 1) as u8).collect();
    let v = views(&square, side, 5, 1, &mut Rng::new(1));
    assert_eq!(v.len(), 5);
    assert_eq!(v[0], square);
    let mut mirror = square.clone();
    hflip(&mut mirror, side);
    assert_eq!(v[1], mirror);
    for crop in &v[2..] {
        // A one-pixel shift keeps at least (side - 1)^2 of the photo's pixels.
        let kept = crop.chunks(3).filter(|p| p.iter().any(|&c| c != 0)).count();
        assert!(kept >= (side - 1) * (side - 1), "{kept}");
    }
}

/// A random tiny ViT and photos of three classes it can tell apart from their colour: red,
/// green or blue squares with noise.
/// Photos as the page gives them: class, id, RGB square.
type Photos = Vec<(usize, u64, Vec<u8>)>;

/// The tiny base model's config: 8 px, patch 4, 16 wide, 10 classes.
fn tiny() -> VitConfig {
    VitConfig::new()
        .with_image_size(8)
        .with_patch_size(4)
        .with_embed_dim(16)
        .with_depth(2)
        .with_num_heads(2)
        .with_num_classes(10)
}

fn tiny_setup(mode: Mode) -> (VisionTransformer, TeachConfig, Photos) {
    tiny_setup_with(mode, &tiny())
}

fn tiny_setup_with(mode: Mode, base: &VitConfig) -> (VisionTransformer, TeachConfig, Photos) {
    let device = Device::flex();
    device.seed(11);
    let model = base.init(&device).unwrap();
    let mut rng = Rng::new(5);
    let photos = (0..30u64)
        .map(|i| {
            let class = (i % 3) as usize;
            let square = (0..64 * 3)
                .map(|k| {
                    let base = if k % 3 == class { 200 } else { 40 };
                    (base + rng.below(40)) as u8
                })
                .collect();
            (class, i, square)
        })
        .collect();
    let mut config = TeachConfig::new(mode);
    config.steps = 60;
    config.learning_rate = 1e-2;
    (model, config, photos)
}

/// The base, the taught model, the held-out photos (as the model's input) and their classes.
type Taught = (
    VisionTransformer,
    VisionTransformer,
    Vec<Vec<f32>>,
    Vec<usize>,
);

fn teach(mode: Mode) -> Taught {
    teach_with(mode, &tiny(), 60)
}

fn teach_with(mode: Mode, base_config: &VitConfig, steps: usize) -> Taught {
    let (base, mut config, photos) = tiny_setup_with(mode, base_config);
    config.steps = steps;
    let device = Device::flex();
    let counts = [10, 10, 10];
    let split = Split::new(&counts, config.holdout, config.seed);
    let of = |class: usize, p: usize| &photos[p * 3 + class];
    let mut train = Extractor::new(&config, 8, config.views, Normalization::CIFAR10);
    for chunk in split.train.chunks(7) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&(c, p)| {
                let (class, id, square) = of(c, p);
                (*class, *id, square.as_slice())
            })
            .collect();
        train.add(&base, &batch, &device);
    }
    let mut held = Extractor::new(&config, 8, 1, Normalization::CIFAR10);
    let held_photos: Vec<_> = split
        .held
        .iter()
        .map(|&(c, p)| {
            let (class, id, square) = of(c, p);
            (*class, *id, square.as_slice())
        })
        .collect();
    held.add(&base, &held_photos, &device);
    let mut teacher =
        Teacher::new(&base, 3, config, train.finish().unwrap(), held.finish()).unwrap();
    assert_eq!(teacher.held_photos(), 6);
    let first = teacher.step().into_data().try_to_vec::<f32>().unwrap();
    while !teacher.finished() {
        teacher.step();
    }
    let last = teacher.step().into_data().try_to_vec::<f32>().unwrap();
    assert!(
        last[0] < first[0] * 0.7,
        "{mode:?} {:?}: loss {} -> {}",
        base.prefix,
        first[0],
        last[0]
    );
    let eval = teacher
        .evaluate()
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(
        eval[1] >= 5.0 / 6.0,
        "{mode:?} {:?}: held-out accuracy {}",
        base.prefix,
        eval[1]
    );
    // The held-out photos through the whole taught model, as the page and the CLI run it.
    let chw: Vec<Vec<f32>> = held_photos
        .iter()
        .map(|(_, _, square)| {
            let img = image::RgbImage::from_raw(8, 8, square.to_vec()).unwrap();
            let mut out = Vec::new();
            Normalization::CIFAR10.extend_chw(&img, &mut out);
            out
        })
        .collect();
    let labels = held_photos.iter().map(|(c, _, _)| *c).collect();
    (base, teacher.finish(), chw, labels)
}

fn logits(model: &VisionTransformer, chw: &[Vec<f32>]) -> Vec<f32> {
    let images: Vec<&[f32]> = chw.iter().map(Vec::as_slice).collect();
    let x = crate::preprocess::batch_tensor(&images, 8, &Device::flex());
    model.forward(x).into_data().try_to_vec::<f32>().unwrap()
}

/// Every parameter's values by path.
fn params(model: &VisionTransformer) -> Vec<(String, Vec<f32>)> {
    struct Collect(Vec<(String, Vec<f32>)>, Vec<String>);
    impl burn::module::ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.1.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.1.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            let v = p.val().into_data().try_to_vec::<f32>().unwrap();
            self.0.push((self.1.join("."), v));
        }
    }
    let mut c = Collect(Vec::new(), Vec::new());
    model.visit(&mut c);
    c.0
}

#[test]
fn teaching_learns_new_classes_and_leaves_the_frozen_part_alone() {
    for (mode, learning) in [
        (Mode::Head, &["head."][..]),
        (Mode::LastBlock, &["head.", "blocks.1.", "norm."][..]),
    ] {
        let (base, taught, chw, labels) = teach(mode);
        // The taught model's own forward pass gets the held-out photos right, as the
        // teacher's features did.
        let l = logits(&taught, &chw);
        let right = labels
            .iter()
            .enumerate()
            .filter(|&(i, &c)| {
                let row = &l[i * 3..i * 3 + 3];
                (0..3).all(|k| row[c] >= row[k])
            })
            .count();
        assert!(
            right >= 5,
            "{mode:?}: {right} of 6 right through the whole model"
        );
        let before = params(&base);
        for (path, value) in params(&taught) {
            if path.starts_with("head.") {
                assert_eq!(value.len() % 3, 0, "{path}: 3 classes");
                continue;
            }
            let old = &before.iter().find(|(p, _)| *p == path).unwrap().1;
            let moved = learning.iter().any(|prefix| path.starts_with(prefix));
            assert_eq!(
                value != *old,
                moved,
                "{mode:?}: {path} moved: {}",
                value != *old
            );
        }
    }
}

/// Teaching on each kind of prefix token: a distilled model (both heads taught), registers with
/// positions for the patches only and layer scale, no class token (the patches averaged), and
/// a feature model without a classifier. The taught model keeps its base's prefix tokens and
/// tells the held-out photos apart through its own forward pass.
#[test]
fn teaching_works_on_every_kind_of_prefix_token() {
    let distilled = tiny().with_distilled(Some(true));
    let registers = tiny()
        .with_reg_tokens(Some(4))
        .with_no_embed_class(Some(true))
        .with_init_values(Some(0.5));
    let no_class = tiny()
        .with_class_token(Some(false))
        .with_reg_tokens(Some(1))
        .with_pooling(crate::config::Pooling::Mean)
        .with_fc_norm(Some(false));
    let features = registers.clone().with_num_classes(0);
    for config in [distilled, registers, no_class, features] {
        for mode in [Mode::Head, Mode::LastBlock] {
            // The random features of these tiny models tell the colours apart less plainly
            // than the plain ViT's: more steps.
            let (base, taught, chw, labels) = teach_with(mode, &config, 150);
            assert_eq!(taught.prefix, config.prefix_tokens());
            assert_eq!(taught.num_classes(), 3);
            assert_eq!(
                taught.head_dist.is_some(),
                config.prefix_tokens().distillation
            );
            let l = logits(&taught, &chw);
            let right = labels
                .iter()
                .enumerate()
                .filter(|&(i, &c)| (0..3).all(|k| l[i * 3 + c] >= l[i * 3 + k]))
                .count();
            assert!(right >= 5, "{mode:?} {config:?}: {right} of 6 right");
            for kind in crate::prefix::PrefixKind::ALL {
                let value = |m: &VisionTransformer| {
                    m.prefix_param(kind)
                        .map(|t| t.val().into_data().try_to_vec::<f32>().unwrap())
                };
                assert_eq!(value(&taught), value(&base), "{kind:?} stays frozen");
            }
        }
    }
}

#[test]
fn tokens_past_the_memory_budget_are_refused_with_what_to_do() {
    let (model, _, _) = tiny_setup(Mode::LastBlock);
    // 5 tokens of 16 floats per view at this size.
    assert_eq!(feature_bytes(&model, Mode::LastBlock, 1), 5 * 16 * 4);
    let fits = MAX_FEATURE_BYTES / (5 * 16 * 4);
    check_feature_memory(&model, Mode::LastBlock, fits).unwrap();
    let e = check_feature_memory(&model, Mode::LastBlock, fits + 1).unwrap_err();
    assert!(e.to_string().contains("teach the new head only"), "{e}");
    check_feature_memory(&model, Mode::Head, fits + 1).unwrap();
}

#[test]
fn the_taught_pair_loads_back_with_its_classes() {
    let (base, taught, chw, _) = teach(Mode::Head);
    let base_manifest = Manifest::new(
        "base",
        VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(16)
            .with_depth(2)
            .with_num_heads(2)
            .with_num_classes(10),
        (0..10).map(|i| format!("c{i}")).collect(),
        Normalization::CIFAR10,
    );
    let record = TeachRecord {
        base: "base".into(),
        base_sha256: "00".into(),
        photos_per_class: vec![10, 10, 10],
        held_out_per_class: vec![2, 2, 2],
        held_out_accuracy: Some(1.0),
        steps_run: 60,
        config: TeachConfig::new(Mode::Head),
        device: "CPU (Flex)".into(),
        seconds: 1.0,
    };
    let bytes = model_to_bytes(&taught).unwrap();
    let labels = names(&["red", "green", "blue"]);
    let manifest = taught_manifest(&base_manifest, "my-colours", labels, &record, &bytes).unwrap();
    assert_eq!(manifest.config.num_classes, 3);
    assert_eq!(manifest.weights.file, "my-colours.bpk");
    assert!(
        manifest.source.contains("from base (10/10/10 photos"),
        "{}",
        manifest.source
    );
    let again = Manifest::from_json(&manifest.to_json(), "my-colours.json").unwrap();
    assert_eq!(
        again.training.unwrap()["held_out_per_class"],
        serde_json::json!([2, 2, 2])
    );
    let loaded = load_model(&manifest, &bytes, &Device::flex()).unwrap();
    assert_eq!(logits(&loaded, &chw), logits(&taught, &chw));
    assert_ne!(logits(&base, &chw).len(), logits(&taught, &chw).len());
    let e = taught_manifest(&base_manifest, "index", names(&["a", "b"]), &record, &bytes);
    assert!(e.unwrap_err().to_string().contains("invalid model name"));
}
