//! End-to-end tests of the `trainer` binary: predict, patches, timm exchange, train, resume,
//! publish, eval, and clear errors on bad input. Every fixture is made here or by the committed
//! script in tests/fixtures.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/close.rs"]
mod close;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/skips.rs"]
mod skips;
#[path = "support/trainer.rs"]
mod trainer_bin;
use close::{Tolerance, assert_close, assert_differ};
use fixtures::fixture;
use skips::skip;
use trainer_bin::{run, succeeds, text, trainer};

/// The tiny timm fixture as a model pair in `dir`; returns its manifest path.
fn tiny_model(dir: &Path) -> String {
    let out = dir.display().to_string();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "ant\nbee\ncat\ndog\neel\n").unwrap();
    succeeds(&[
        "import-timm",
        &fixture("timm_tiny_token.safetensors"),
        "--heads",
        "2",
        "--name",
        "tiny",
        "--out",
        &out,
        "--labels",
        labels.to_str().unwrap(),
    ]);
    dir.join("tiny.json").display().to_string()
}

/// A fresh folder holding the tiny timm fixture as a model pair: the folder and its manifest.
fn tiny_model_in_tempdir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    (dir, model)
}

/// `tiny_model_in_tempdir` with a `w` x `h` image named `name` beside the model.
fn tiny_model_and_image(name: &str, w: u32, h: u32) -> (tempfile::TempDir, String, PathBuf) {
    let (dir, model) = tiny_model_in_tempdir();
    let image = image_in(dir.path(), name, w, h);
    (dir, model, image)
}

/// `dir/name`, a `w` x `h` pattern (`write_image`).
fn image_in(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let path = dir.join(name);
    write_image(&path, w, h);
    path
}

/// A `w` x `h` pattern in the format `path`'s extension names.
fn write_image(path: &Path, w: u32, h: u32) {
    let format = image::ImageFormat::from_path(path).unwrap();
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut bytes = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut bytes, format)
        .unwrap();
    std::fs::write(path, bytes.into_inner()).unwrap();
}

#[test]
fn predict_reports_each_file_and_fails_only_the_bad_ones() {
    let (dir, model) = tiny_model_in_tempdir();
    let png = dir.path().join("wide.png");
    let jpg = dir.path().join("tall.jpg");
    let bad = dir.path().join("notes.jpg");
    write_image(&png, 300, 120);
    write_image(&jpg, 50, 200);
    std::fs::write(&bad, "this is text, not a photo").unwrap();

    let o = run(&[
        "predict",
        "--model",
        &model,
        "--json",
        "--top",
        "3",
        png.to_str().unwrap(),
        bad.to_str().unwrap(),
        jpg.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success(),
        "a bad file must fail the run: {}",
        text(&o)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", text(&o));
    let good: Vec<_> = lines.iter().filter(|l| l.get("error").is_none()).collect();
    assert_eq!(good.len(), 2);
    for answer in good {
        let probs = answer["probs"].as_array().unwrap();
        assert_eq!(probs.len(), 5);
        assert_eq!(answer["logits"].as_array().unwrap().len(), 5);
        let sum: f64 = probs.iter().map(|p| p.as_f64().unwrap()).sum();
        assert_close(
            "the probabilities' sum",
            &[1.0],
            &[sum],
            Tolerance::abs(1e-4),
        );
        let top = answer["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert!(top[0]["prob"].as_f64() >= top[1]["prob"].as_f64());
        let label = top[0]["label"].as_str().unwrap();
        assert!(["ant", "bee", "cat", "dog", "eel"].contains(&label));
    }
    let failure = lines.iter().find(|l| l.get("error").is_some()).unwrap();
    assert!(failure["file"].as_str().unwrap().ends_with("notes.jpg"));
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains("not a supported image"),
        "{failure}"
    );

    let o = succeeds(&["predict", "--model", &model, png.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1. "),
        "{}",
        text(&o)
    );
}

/// A CPU run says nothing that reads like a failure: no Vulkan loader or Wayland noise
/// ("error: XDG_RUNTIME_DIR is invalid or not set") on a machine without a display, from
/// `--device cpu` or from `--device auto` (the default) listing adapters before it settles.
#[test]
fn a_cpu_run_prints_no_graphics_noise() {
    let (_dir, model, png) = tiny_model_and_image("photo.png", 40, 30);
    for device in ["cpu", "auto"] {
        let o = trainer()
            .args(["predict", "--model", &model, "--device", device])
            .arg(&png)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .env_remove("NODEVICE_SELECT")
            .output()
            .unwrap();
        assert!(o.status.success(), "{device}: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        let noise: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("XDG_RUNTIME_DIR") || l.to_lowercase().contains("error"))
            .collect();
        assert!(
            noise.is_empty(),
            "--device {device}: {noise:?}\n{}",
            text(&o)
        );
    }
}

/// `--crop x,y,size` picks the square the model sees: a square of the image alone gives what
/// that square cut out as its own file gives, and a square that does not fit is refused.
#[test]
fn predict_and_patches_take_the_square_to_look_at() {
    let (dir, model, wide) = tiny_model_and_image("wide.png", 300, 120);
    let (x, y, side) = (170, 10, 96);
    let part = dir.path().join("part.png");
    image::open(&wide)
        .unwrap()
        .crop_imm(x, y, side, side)
        .save(&part)
        .unwrap();
    let probs = |args: &[&str]| -> Vec<f64> {
        let mut all = vec!["predict", "--model", &model, "--json", "--device", "cpu"];
        all.extend(args);
        let o = succeeds(&all);
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap())
                .unwrap();
        v["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect()
    };
    let crop = format!("{x},{y},{side}");
    let cropped = probs(&["--crop", &crop, wide.to_str().unwrap()]);
    let cut_out = probs(&[part.to_str().unwrap()]);
    let centre = probs(&[wide.to_str().unwrap()]);
    assert_close(
        "the square against it cut out",
        &cut_out,
        &cropped,
        Tolerance::abs(1e-6),
    );
    assert_differ(
        "the square against the centre (it must change the answer)",
        &centre,
        &cropped,
        Tolerance::abs(1e-6),
    );

    let sheet = dir.path().join("sheet.png");
    succeeds(&[
        "patches",
        wide.to_str().unwrap(),
        "--model",
        &model,
        "--out",
        sheet.to_str().unwrap(),
        "--crop",
        &crop,
    ]);

    for (bad, says) in [
        ("250,0,96", "300 pixels wide"),
        ("0,30,96", "120 pixels tall"),
        ("0,0,0", "size 0"),
        ("10,10", "x,y,size"),
    ] {
        let o = run(&[
            "predict",
            "--model",
            &model,
            "--crop",
            bad,
            wide.to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "--crop {bad} was taken: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "--crop {bad}: {err}"
        );
    }
}

#[test]
fn predict_says_when_an_image_was_cut_off() {
    let (dir, model, whole) = tiny_model_and_image("whole.jpg", 64, 48);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    for (file, damaged) in [(&whole, false), (&cut, true)] {
        let o = succeeds(&["predict", "--model", &model, file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.contains("warning:") && err.contains("the part that could be read"),
            damaged,
            "{}",
            text(&o)
        );
    }
}

#[test]
fn predict_refuses_a_model_whose_checksum_does_not_match() {
    let (dir, model) = tiny_model_in_tempdir();
    let bpk = dir.path().join("tiny.bpk");
    let mut bytes = std::fs::read(&bpk).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&bpk, bytes).unwrap();
    let png = image_in(dir.path(), "a.png", 16, 16);
    let o = run(&["predict", "--model", &model, png.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("checksum mismatch"), "{}", text(&o));
}

#[test]
fn patches_draws_the_sheet() {
    let (dir, model, photo) = tiny_model_and_image("photo.jpg", 640, 480);
    let out = dir.path().join("sheet.png");
    let o = succeeds(&[
        "patches",
        photo.to_str().unwrap(),
        "--model",
        &model,
        "--out",
        out.to_str().unwrap(),
    ]);
    let sheet = image::open(&out).unwrap().to_rgb8();
    assert!(
        sheet.width() > 2 * sheet.height(),
        "three panels side by side"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("16 patches of 4x4"));
}

#[test]
fn export_timm_writes_timm_names() {
    let (dir, model) = tiny_model_in_tempdir();
    let out = dir.path().join("back.safetensors");
    succeeds(&[
        "export-timm",
        "--model",
        &model,
        "--out",
        out.to_str().unwrap(),
    ]);
    let original = std::fs::read(fixture("timm_tiny_token.safetensors")).unwrap();
    let exported = std::fs::read(&out).unwrap();
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&original).unwrap(),
        safetensors::SafeTensors::deserialize(&exported).unwrap(),
    );
    for name in a.names() {
        assert_eq!(
            a.tensor(name).unwrap().data(),
            b.tensor(name).unwrap().data(),
            "{name}"
        );
    }
    assert_eq!(a.len(), b.len());
}

// ---------------------------------------------------------------------------------------------
// Training on a small synthetic CIFAR-format dataset the test draws: ten classes, five colours
// times two shapes, on noisy backgrounds at random places.

const CLASSES: [&str; 10] = [
    "red-square",
    "red-disk",
    "green-square",
    "green-disk",
    "blue-square",
    "blue-disk",
    "yellow-square",
    "yellow-disk",
    "white-square",
    "white-disk",
];
const COLOURS: [[u8; 3]; 5] = [
    [220, 40, 40],
    [40, 200, 60],
    [50, 80, 230],
    [230, 210, 40],
    [240, 240, 240],
];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// One CIFAR record: label byte, then R, G and B planes of 32x32.
fn record(label: usize, rng: &mut Lcg) -> Vec<u8> {
    let colour = COLOURS[label / 2];
    let disk = label % 2 == 1;
    let (cx, cy, r) = (8 + rng.next() % 16, 8 + rng.next() % 16, 5 + rng.next() % 3);
    let mut planes = vec![0u8; 3072];
    for y in 0..32u32 {
        for x in 0..32u32 {
            let (dx, dy) = (x as i32 - cx as i32, y as i32 - cy as i32);
            let inside = if disk {
                dx * dx + dy * dy <= (r * r) as i32
            } else {
                dx.abs() <= r as i32 && dy.abs() <= r as i32
            };
            for c in 0..3 {
                let noise = (rng.next() % 60) as u8;
                planes[c * 1024 + (y * 32 + x) as usize] = if inside {
                    colour[c].saturating_sub(noise / 3)
                } else {
                    40 + noise
                };
            }
        }
    }
    let mut rec = vec![label as u8];
    rec.extend(planes);
    rec
}

/// A synthetic CIFAR-10 in `parent/data` (per class: `per_class_train` training images,
/// `per_class_test` test images); returns the folder.
fn synthetic_cifar(parent: &Path, per_class_train: usize, per_class_test: usize) -> PathBuf {
    let dir = parent.join("data");
    let dir = dir.as_path();
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Lcg(7);
    let batch = |n: usize, rng: &mut Lcg| -> Vec<u8> {
        (0..n * 10).flat_map(|i| record(i % 10, rng)).collect()
    };
    for k in 1..=5 {
        std::fs::write(
            dir.join(format!("data_batch_{k}.bin")),
            batch(per_class_train / 5, &mut rng),
        )
        .unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), batch(per_class_test, &mut rng)).unwrap();
    std::fs::write(dir.join("batches.meta.txt"), CLASSES.join("\n") + "\n").unwrap();
    dir.to_path_buf()
}

/// Two data-parallel replicas whatever the machine's core count, so that these runs go through
/// the multi-device path (`--devices`) and its gradient merge.
fn train_args<'a>(data: &'a str, run: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data-dir",
        data,
        "--run",
        run,
        "--preset",
        "quick",
        "--epochs",
        epochs,
        "--device",
        "cpu",
        "--plain",
        "--seed",
        "3",
        "--devices",
        "2",
    ]
}

/// `train --resume` of the run in `run`, as `train_args` started it; it must succeed.
fn resume(run: &str) -> Output {
    succeeds(&[
        "train",
        "--resume",
        "--run",
        run,
        "--device",
        "cpu",
        "--plain",
        "--devices",
        "2",
    ])
}

/// metrics.csv without the timing columns (images/s, seconds), which differ run to run.
fn metrics_without_timing(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn train_publish_predict_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_cifar(dir.path(), 100, 20);
    let run_dir = dir.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run_dir.to_str().unwrap());
    let o = succeeds(&train_args(d, r, "4"));
    for f in [
        "metrics.csv",
        "curves.png",
        "confusion.png",
        "eval.json",
        "recipe.json",
    ] {
        assert!(run_dir.join(f).exists(), "{f} missing: {}", text(&o));
    }
    let rows = metrics_without_timing(&run_dir);
    assert_eq!(rows.len(), 5, "header + 4 epochs");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("eval.json")).unwrap()).unwrap();
    let top1 = eval["top1"].as_f64().unwrap();
    assert!(top1 > 0.4, "ten classes, chance is 10%; got {top1}");

    let models = dir.path().join("models");
    let m = models.to_str().unwrap();
    succeeds(&[
        "publish",
        "--run",
        r,
        "--name",
        "shapes",
        "--out",
        m,
        "--default",
    ]);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["default"], "shapes");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models.join("shapes.json")).unwrap())
            .unwrap();
    assert_close(
        "the manifest's top-1",
        &[top1],
        &[manifest["metrics"]["top1"].as_f64().unwrap()],
        Tolerance::abs(1e-12),
    );
    assert_eq!(manifest["labels"][3], "green-disk");
    // What the page shows every visitor names no place on this machine's disk: the data and
    // the run appear by their folders' names.
    let tmp = dir.path().display().to_string();
    for file in ["shapes.json", "index.json"] {
        let published = std::fs::read_to_string(models.join(file)).unwrap();
        assert!(
            !published.contains(&tmp),
            "{file} names {tmp}:\n{published}"
        );
    }
    assert!(
        manifest["metrics"]["dataset"]
            .as_str()
            .unwrap()
            .contains("from data:"),
        "{}",
        manifest["metrics"]["dataset"]
    );
    // A description that would name one is refused, and nothing is written.
    let o = run(&[
        "publish",
        "--run",
        r,
        "--name",
        "leaky",
        "--out",
        m,
        "--description",
        &format!("shapes from {d}"),
    ]);
    assert!(
        !o.status.success(),
        "publish wrote a machine path: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("refusing to publish leaky") && text(&o).contains(d),
        "{}",
        text(&o)
    );
    assert!(!models.join("leaky.json").exists() && !models.join("leaky.bpk").exists());

    // `eval` on the published pair measures what the run recorded, and lists each test
    // image's prediction...
    let preds = dir.path().join("preds.csv");
    let o = succeeds(&[
        "eval",
        "--model",
        models.join("shapes.json").to_str().unwrap(),
        "--data-dir",
        d,
        "--device",
        "cpu",
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("top-1 {:.2}%", 100.0 * top1)),
        "{out}"
    );
    assert!(out.contains("green-disk"), "{out}");

    // ...with which `predict` on the same test images, written as PNG, agrees.
    let test = std::fs::read(data.join("test_batch.bin")).unwrap();
    let mut files = Vec::new();
    for (i, rec) in test.chunks(3073).take(20).enumerate() {
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            let p = (y * 32 + x) as usize;
            image::Rgb([rec[1 + p], rec[1 + 1024 + p], rec[1 + 2048 + p]])
        });
        let path = dir.path().join(format!("test{i}.png"));
        img.save(&path).unwrap();
        files.push(path.display().to_string());
    }
    let recorded: Vec<String> = std::fs::read_to_string(&preds)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().to_string())
        .collect();
    let manifest_path = models.join("shapes.json").display().to_string();
    let mut args = vec!["predict", "--model", &manifest_path, "--json", "--top", "1"];
    args.extend(files.iter().map(String::as_str));
    let o = succeeds(&args);
    for (i, line) in String::from_utf8_lossy(&o.stdout).lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["top"][0]["label"].as_str().unwrap(),
            recorded[i],
            "image {i}"
        );
    }

    // A second model published without --default joins the index and leaves the default be.
    succeeds(&["publish", "--run", r, "--name", "shapes-2", "--out", m]);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["default"], "shapes");
    let names: Vec<&str> = index["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shapes", "shapes-2"]);
    // An index that cannot be read is named, and left exactly as it was; no temporary file
    // stays behind.
    std::fs::write(models.join("index.json"), "{ not an index").unwrap();
    let o = run(&["publish", "--run", r, "--name", "shapes-3", "--out", m]);
    assert!(!o.status.success());
    assert!(text(&o).contains("index.json"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(models.join("index.json")).unwrap(),
        "{ not an index"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Evaluated against a dataset whose class names differ, the model is refused, and the
    // message says which.
    let mut swapped = CLASSES;
    swapped.swap(0, 1);
    std::fs::write(data.join("batches.meta.txt"), swapped.join("\n") + "\n").unwrap();
    let o = run(&[
        "eval",
        "--model",
        &manifest_path,
        "--data-dir",
        d,
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(
            "2 of the class names differ between the model and the dataset:\n  class 0: the model says 'red-square', the dataset 'red-disk'"
        ),
        "{}",
        text(&o)
    );
}

#[test]
fn a_bf16_run_learns_and_publishes_f32_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_cifar(dir.path(), 60, 10);
    let run_dir = dir.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run_dir.to_str().unwrap());
    let mut args = train_args(d, r, "3");
    args.extend(["--precision", "bf16"]);
    succeeds(&args);
    let recipe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("recipe.json")).unwrap())
            .unwrap();
    assert_eq!(recipe["precision"], "bf16");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("eval.json")).unwrap()).unwrap();
    let top1 = eval["top1"].as_f64().unwrap();
    assert!(top1 > 0.25, "ten classes, chance is 10%; got {top1}");

    // The published pair is plain f32, so `eval` (in f32) measures nearly what bf16 did.
    let models = dir.path().join("models");
    succeeds(&[
        "publish",
        "--run",
        r,
        "--name",
        "half",
        "--out",
        models.to_str().unwrap(),
    ]);
    let o = succeeds(&[
        "eval",
        "--model",
        models.join("half.json").to_str().unwrap(),
        "--data-dir",
        d,
        "--device",
        "cpu",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let measured: f64 = out
        .split("top-1 ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no top-1 in {out}"));
    assert_close(
        "eval's top-1 against the manifest's",
        &[top1],
        &[measured / 100.0],
        Tolerance::abs(0.1),
    );
}

/// A synthetic CIFAR-10 trained for `epochs` into `whole/`, then the same run started into
/// `broken/` (its stderr to `stderr`), for a test to break and resume: the folder and the run.
fn whole_run_then_another(epochs: &str, stderr: Stdio) -> (tempfile::TempDir, std::process::Child) {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_cifar(dir.path(), 60, 10);
    let d = data.to_str().unwrap();
    let whole = dir.path().join("whole");
    succeeds(&train_args(d, whole.to_str().unwrap(), epochs));
    let broken = dir.path().join("broken");
    let child = trainer()
        .args(train_args(d, broken.to_str().unwrap(), epochs))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    (dir, child)
}

/// Kills the run `child` trains into `run` hard once its first epoch is checkpointed (within
/// five minutes, and before it ends by itself).
fn kill_after_first_checkpoint(child: &mut std::process::Child, run: &Path) {
    let state = run.join("checkpoint/state.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let epoch = std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["epoch"].as_u64());
        if epoch.is_some_and(|e| e >= 1) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no checkpoint within 5 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_run_resumes_to_the_same_metrics() {
    let (dir, mut child) = whole_run_then_another("3", Stdio::null());
    let (whole, broken) = (dir.path().join("whole"), dir.path().join("broken"));
    let b = broken.to_str().unwrap();

    // Kill the second run hard once its first epoch is checkpointed.
    kill_after_first_checkpoint(&mut child, &broken);
    assert!(!broken.join("eval.json").exists(), "killed before the end");

    let o = resume(b);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("resuming"),
        "{}",
        text(&o)
    );
    assert_eq!(
        metrics_without_timing(&broken),
        metrics_without_timing(&whole)
    );
}

/// Ctrl-C in the middle of an epoch saves a checkpoint there; `--resume` carries on from that
/// batch. The resumed run replays the same batches and random numbers, but reloading the
/// checkpoint changes Flex's tensor layouts, so its figures match the unbroken run's closely
/// rather than bit for bit (training.rs).
#[test]
fn ctrl_c_mid_epoch_then_resume_finishes_the_run() {
    use std::io::BufRead;
    let (dir, mut child) = whole_run_then_another("2", Stdio::piped());
    let (whole, broken) = (dir.path().join("whole"), dir.path().join("broken"));
    let b = broken.to_str().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // --plain prints the first batch of each epoch at once: interrupt there.
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the run ended before it could be interrupted:\n{seen}"
        );
        seen += &line;
        if line.starts_with("epoch 1/2 [") {
            break;
        }
    }
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted: saved epoch 1 batch"), "{seen}");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(broken.join("checkpoint/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["epoch"], 0, "{state}");
    let next = state["next_batch"].as_u64().unwrap();
    assert!(next >= 1, "{state}");

    let o = resume(b);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("at epoch 1 batch {next}")),
        "{}",
        text(&o)
    );
    let (a, b) = (
        plots_rows(&whole.join("metrics.csv")),
        plots_rows(&broken.join("metrics.csv")),
    );
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        // epoch, train_loss, train_acc, test_loss, top1, top5, lr
        assert_eq!(x[0], y[0]);
        assert_eq!(x[6], y[6], "the schedule is the same");
        assert_close(
            &format!("columns 1-5 (train loss to top-5): {x:?} vs {y:?}"),
            &x[1..6],
            &y[1..6],
            Tolerance::abs(0.02),
        );
    }
}

/// metrics.csv's rows as numbers.
fn plots_rows(path: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

/// `trainer bench` of the quick preset's shape (with `extra` flags) on `device`, quickly:
/// batches of 4, `runs` timed training steps and as many timed inference runs a batch size.
fn quick_bench<'a>(device: &'a str, runs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "bench",
        "--preset",
        "quick",
        "--device",
        device,
        "--batch-size",
        "4",
        "--steps",
        runs,
        "--infer-batch",
        "4",
        "--infer-runs",
        runs,
    ];
    args.extend(extra);
    args
}

#[test]
fn bench_prints_the_shape_it_ran() {
    // bench/compare builds timm's model from this line: the preset's shape with the overrides.
    let o = succeeds(&quick_bench(
        "cpu",
        "1",
        &[
            "--devices",
            "1",
            "--embed-dim",
            "16",
            "--depth",
            "1",
            "--heads",
            "2",
        ],
    ));
    let out = String::from_utf8_lossy(&o.stdout);
    let shape = out.lines().find_map(|l| l.strip_prefix("shape: "));
    assert_eq!(
        shape,
        Some(
            "--image-size 32 --patch-size 8 --embed-dim 16 --depth 1 --heads 2 --mlp-ratio 2 \
             --pool token --drop-path 0"
        ),
        "{out}"
    );
}

#[test]
fn broken_data_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_cifar(dir.path(), 10, 2);
    let run_dir = dir.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run_dir.to_str().unwrap());

    let batch = data.join("data_batch_3.bin");
    let bytes = std::fs::read(&batch).unwrap();
    std::fs::write(&batch, &bytes[..bytes.len() - 10]).unwrap();
    let o = run(&train_args(d, r, "1"));
    assert!(!o.status.success());
    assert!(text(&o).contains("data_batch_3.bin"), "{}", text(&o));
    std::fs::write(&batch, &bytes).unwrap();

    let test = data.join("test_batch.bin");
    let mut bytes = std::fs::read(&test).unwrap();
    bytes[3073 * 5] = 12;
    std::fs::write(&test, &bytes).unwrap();
    let _ = std::fs::remove_dir_all(&run_dir);
    let o = run(&train_args(d, r, "1"));
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("test_batch.bin") && t.contains("record 5") && t.contains("12"),
        "{t}"
    );
}

/// The shipped default model measures, on the CIFAR-10 test batch, what its manifest records.
/// The data lives outside the repository (../shared, beside the checkout); without it the test
/// is recorded as skipped.
#[test]
fn default_model_measures_what_its_manifest_records() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = root.join("../shared/data/cifar-10-jpeg-approx-bin");
    if !data.join("test_batch.bin").exists() {
        let why = format!("no CIFAR-10 data at {}", data.display());
        skip("default_model_measures_what_its_manifest_records", &why);
        return;
    }
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("www/models/index.json")).unwrap())
            .unwrap();
    let name = index["default"]
        .as_str()
        .expect("index.json names a default");
    let manifest_path = root.join(format!("www/models/{name}.json"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let (top1, top5) = (
        manifest["metrics"]["top1"].as_f64().unwrap(),
        manifest["metrics"]["top5"].as_f64().unwrap(),
    );
    let o = succeeds(&[
        "eval",
        "--model",
        manifest_path.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    // The line eval measured, not its "recorded in the manifest" line, which holds the same
    // words whatever the model does.
    let line = out
        .lines()
        .find(|l| l.starts_with("top-1 "))
        .unwrap_or_else(|| panic!("no measured top-1 in:\n{out}"));
    let recorded = format!("top-1 {:.2}%  top-5 {:.2}%", 100.0 * top1, 100.0 * top5);
    assert!(
        line.starts_with(&recorded),
        "measured `{line}`, recorded `{recorded}`"
    );
    let measured: f64 = line["top-1 ".len()..]
        .split('%')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number in `{line}`"));
    assert!(
        measured > 62.62,
        "the default beats the reference demo's 62.62% top-1: measured {measured}%"
    );
}

/// The CLI on the GPU path: `train`, `eval`, `predict` and `bench` with `--device vulkan` and
/// `--device wgpu`, on SwiftShader's Vulkan driver where no GPU is present (see tests/gpu.rs
/// for the numeric parity with Flex).
#[cfg(feature = "wgpu")]
mod gpu_path {
    use super::*;

    const SWIFTSHADER_ICD: &str = "/usr/lib/chromium/vk_swiftshader_icd.json";

    /// One GPU-path test at a time: a software driver already uses every core, and several
    /// processes on SwiftShader at once only queue for them.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `trainer` with a Vulkan driver to find, or `None` (and a recorded skip) without one.
    fn on_vulkan(test: &str) -> Option<Command> {
        let mut c = trainer();
        if std::env::var_os("VK_ICD_FILENAMES").is_none() {
            if !Path::new(SWIFTSHADER_ICD).exists() {
                skip(
                    test,
                    &format!("no Vulkan driver ({SWIFTSHADER_ICD} is missing)"),
                );
                return None;
            }
            c.env("VK_ICD_FILENAMES", SWIFTSHADER_ICD);
        }
        Some(c)
    }

    /// The shipped default model's manifest and a shipped sample, as arguments.
    fn default_model() -> String {
        repo_path("www/models/vitrine-cifar10.json")
    }

    fn horse() -> String {
        repo_path("www/samples/horse.png")
    }

    fn repo_path(path: &str) -> String {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
            .display()
            .to_string()
    }

    fn run_on_vulkan(test: &str, args: &[&str]) -> Option<Output> {
        Some(on_vulkan(test)?.args(args).output().expect("trainer runs"))
    }

    #[test]
    fn a_quick_run_on_vulkan_learns_publishes_and_predicts_on_the_cpu() {
        let test = "a_quick_run_on_vulkan_learns_publishes_and_predicts_on_the_cpu";
        let _gpu = serial();
        let dir = tempfile::tempdir().unwrap();
        let data = synthetic_cifar(dir.path(), 60, 10);
        let run_dir = dir.path().join("run");
        let (d, r) = (data.to_str().unwrap(), run_dir.to_str().unwrap());
        let mut args = train_args(d, r, "2");
        let at = args.iter().position(|a| *a == "cpu").unwrap();
        args[at] = "vulkan";
        // One device: the GPU path has no CPU replicas. A software GPU spends its time
        // dispatching kernels (about 20 images/s here whatever the width): a tiny model.
        args.truncate(args.len() - 2);
        args.extend([
            "--image-size",
            "16",
            "--patch-size",
            "4",
            "--embed-dim",
            "32",
            "--depth",
            "1",
            "--heads",
            "2",
        ]);
        let Some(o) = run_on_vulkan(test, &args) else {
            return;
        };
        assert!(o.status.success(), "{}", text(&o));
        let rows = metrics_without_timing(&run_dir);
        assert_eq!(rows.len(), 3, "header + 2 epochs");
        let loss = |row: &str| row.split(',').nth(1).unwrap().parse::<f64>().unwrap();
        assert!(
            loss(&rows[2]) < loss(&rows[1]),
            "train loss did not fall: {rows:?}"
        );
        let eval: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("eval.json")).unwrap())
                .unwrap();
        let top1 = eval["top1"].as_f64().unwrap();
        assert!(top1 > 0.25, "ten classes, chance is 10%; got {top1}");
        let run_json = std::fs::read_to_string(run_dir.join("run.json")).unwrap();
        assert!(run_json.contains("vulkan"), "run.json: {run_json}");

        // Published, then measured on the CPU: the same top-1 as the GPU run's own eval.
        let models = dir.path().join("models");
        let m = models.to_str().unwrap();
        succeeds(&["publish", "--run", r, "--name", "gpu-shapes", "--out", m]);
        let manifest = models.join("gpu-shapes.json");
        let o = succeeds(&[
            "eval",
            "--model",
            manifest.to_str().unwrap(),
            "--data-dir",
            d,
            "--device",
            "cpu",
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains(&format!("top-1 {:.2}%", 100.0 * top1)),
            "{out}"
        );

        // `eval` and `predict` on the Vulkan device agree with the CPU.
        let Some(o) = run_on_vulkan(
            test,
            &[
                "eval",
                "--model",
                manifest.to_str().unwrap(),
                "--data-dir",
                d,
                "--device",
                "vulkan",
            ],
        ) else {
            return;
        };
        assert!(o.status.success(), "{}", text(&o));
        let gpu_out = String::from_utf8_lossy(&o.stdout);
        assert!(
            gpu_out.contains(&format!("top-1 {:.2}%", 100.0 * top1)),
            "{gpu_out}"
        );
    }

    #[test]
    fn predict_and_bench_run_on_vulkan_and_wgpu_with_the_cpus_answer() {
        let test = "predict_and_bench_run_on_vulkan_and_wgpu_with_the_cpus_answer";
        let _gpu = serial();
        let (model, sample) = (default_model(), horse());
        let logits = |o: &Output| -> Vec<f64> {
            let v: serde_json::Value =
                serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap())
                    .unwrap();
            v["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let o = succeeds(&[
            "predict", "--model", &model, "--json", "--device", "cpu", &sample,
        ]);
        let want = logits(&o);
        for device in ["vulkan", "wgpu"] {
            let Some(o) = run_on_vulkan(
                test,
                &[
                    "predict", "--model", &model, "--json", "--device", device, &sample,
                ],
            ) else {
                return;
            };
            assert!(o.status.success(), "{device}: {}", text(&o));
            let got = logits(&o);
            assert_close(
                &format!("{device}'s logits against the CPU's"),
                &want,
                &got,
                Tolerance::abs(1e-4),
            );
        }
        let Some(o) = run_on_vulkan(test, &quick_bench("vulkan", "2", &[])) else {
            return;
        };
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("device: vulkan"), "{out}");
        assert!(out.contains("infer     batch   4"), "{out}");
        // cubecl's count of what a step launches: a positive whole number, for training and for
        // both inference batches.
        let kernels = |what: &str| -> usize {
            let line = out
                .lines()
                .find(|l| l.contains(what))
                .unwrap_or_else(|| panic!("no `{what}` line in:\n{out}"));
            line.split_whitespace()
                .zip(line.split_whitespace().skip(1))
                .find(|(_, next)| *next == "kernels")
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or_else(|| panic!("no count in `{line}`"))
        };
        assert!(kernels("kernels per training step") > 0, "{out}");
        assert!(kernels("kernels per inference batch of 1") > 0, "{out}");
        assert!(kernels("kernels per inference batch of 4") > 0, "{out}");
        // Half precision runs, or is refused up front with the adapter's name.
        let Some(o) = run_on_vulkan(test, &quick_bench("vulkan", "1", &["--precision", "f16"]))
        else {
            return;
        };
        if o.status.success() {
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(out.contains("precision: F16"), "{out}");
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("cannot compute in F16") && err.contains("vulkan:0 ("),
                "{}",
                text(&o)
            );
        }
    }

    /// Autotune keeps what it learns in memory: a GPU run writes nothing of cubecl's, neither
    /// in the directory it runs from (a Cargo project, where cubecl would put its cache by
    /// default) nor in the user's cache folder.
    #[test]
    fn a_gpu_run_from_a_project_folder_writes_nothing_there() {
        let test = "a_gpu_run_from_a_project_folder_writes_nothing_there";
        let _gpu = serial();
        let project = tempfile::tempdir().unwrap();
        std::fs::write(
            project.path().join("Cargo.toml"),
            "[package]\nname = \"x\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        std::fs::create_dir(project.path().join("target")).unwrap();
        let home = tempfile::tempdir().unwrap();
        let listing = |dir: &Path| -> Vec<PathBuf> {
            let mut all = Vec::new();
            let mut todo = vec![dir.to_path_buf()];
            while let Some(d) = todo.pop() {
                for entry in std::fs::read_dir(&d).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        todo.push(path.clone());
                    }
                    all.push(path);
                }
            }
            all.sort();
            all
        };
        let before = listing(project.path());
        let (model, sample) = (default_model(), horse());
        let Some(mut c) = on_vulkan(test) else {
            return;
        };
        let o = c
            .current_dir(project.path())
            .env("HOME", home.path())
            .env("XDG_CACHE_HOME", home.path().join(".cache"))
            .args(["predict", "--model", &model, "--device", "vulkan", &sample])
            .output()
            .expect("trainer runs");
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(listing(project.path()), before, "{}", text(&o));
        assert_eq!(listing(home.path()), Vec::<PathBuf>::new(), "{}", text(&o));
    }

    #[test]
    fn auto_never_picks_a_software_gpu() {
        let test = "auto_never_picks_a_software_gpu";
        let _gpu = serial();
        let (model, sample) = (default_model(), horse());
        let Some(o) = run_on_vulkan(
            test,
            &["predict", "--model", &model, "--device", "auto", &sample],
        ) else {
            return;
        };
        assert!(o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--device auto: Cpu"), "{err}");
        assert!(
            err.contains("SwiftShader") && err.contains("CPU path outruns"),
            "{err}"
        );
    }

    #[test]
    fn gpu_check_prints_its_table_on_a_software_gpu() {
        let test = "gpu_check_prints_its_table_on_a_software_gpu";
        let _gpu = serial();
        let dir = tempfile::tempdir().unwrap();
        let data = synthetic_cifar(dir.path(), 10, 4);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/gpu-check");
        if on_vulkan(test).is_none() {
            return;
        }
        let mut cmd = Command::new(&script);
        if std::env::var_os("VK_ICD_FILENAMES").is_none() {
            cmd.env("VK_ICD_FILENAMES", SWIFTSHADER_ICD);
        }
        let o = cmd
            .args([
                "--tiny",
                "--trainer",
                env!("CARGO_BIN_EXE_trainer"),
                "--data",
            ])
            .arg(&data)
            .output()
            .expect("gpu-check runs");
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ")).collect();
        let has = |backend: &str, what: &str| {
            rows.iter().any(|r| {
                let cells: Vec<&str> = r.split('|').map(str::trim).collect();
                cells[1] == backend && cells[2].starts_with(what) && cells[3].parse::<f64>().is_ok()
            })
        };
        for backend in ["vulkan", "cpu"] {
            assert!(has(backend, "quick"), "no {backend} bench row:\n{out}");
            assert!(
                has(backend, "cifar10-10ep"),
                "no {backend} training row:\n{out}"
            );
        }
        assert!(out.contains("top-1 "), "{out}");
        // The GPU's bench row counts the kernels a training step launches and times the tuning.
        let vulkan = rows
            .iter()
            .map(|r| r.split('|').map(str::trim).collect::<Vec<_>>())
            .find(|c| c[1] == "vulkan" && c[2] == "quick")
            .unwrap_or_else(|| panic!("no vulkan quick row:\n{out}"));
        assert!(
            vulkan[5].parse::<usize>().is_ok_and(|k| k > 0),
            "kernels/step: {vulkan:?}"
        );
        assert!(
            vulkan[6].parse::<f64>().is_ok_and(|s| s >= 0.0),
            "tune s: {vulkan:?}"
        );
    }
}

/// `trainer finetune` from the shipped default model onto a folder of images this test draws:
/// a new head for new classes, frozen layers, another image size, resume, publish, predict.
mod finetune {
    use super::*;

    /// Three classes the CIFAR-10 model has never seen as classes, but whose colours and
    /// shapes its features tell apart: a red disk, a blue square, green stripes, each on grey
    /// noise at a random place and size.
    const CLASSES: [&str; 3] = ["blue-square", "green-stripes", "red-disk"];

    fn draw(class: usize, size: u32, rng: &mut Lcg) -> image::RgbImage {
        let (cx, cy) = (
            (size / 3 + rng.next() % (size / 3)) as i32,
            (size / 3 + rng.next() % (size / 3)) as i32,
        );
        let r = (size / 6 + rng.next() % (size / 8)) as i32;
        let phase = rng.next() % 8;
        image::RgbImage::from_fn(size, size, |x, y| {
            let (dx, dy) = (x as i32 - cx, y as i32 - cy);
            let noise = (rng.next() % 50) as u8;
            let grey = image::Rgb([90 + noise, 90 + noise, 90 + noise]);
            let ink = |c: [u8; 3]| image::Rgb(c.map(|v| v.saturating_sub(noise / 2)));
            match class {
                0 if dx.abs() <= r && dy.abs() <= r => ink([40, 70, 230]),
                1 if (y + phase) % 8 < 4 => ink([40, 200, 60]),
                2 if dx * dx + dy * dy <= r * r => ink([230, 40, 40]),
                _ => grey,
            }
        })
    }

    /// `per_class` images of each class in `dir/<class>/`.
    fn folder(dir: &Path, per_class: usize, seed: u64) {
        let mut rng = Lcg(seed);
        for (c, name) in CLASSES.iter().enumerate() {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            for i in 0..per_class {
                draw(c, 48, &mut rng)
                    .save(dir.join(name).join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }

    fn default_model() -> String {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../www/models/vitrine-cifar10.json")
            .display()
            .to_string()
    }

    fn finetune(data: &str, run_dir: &str, extra: &[&str]) -> Output {
        let from = default_model();
        let mut args = vec![
            "finetune",
            "--from",
            &from,
            "--data-dir",
            data,
            "--run",
            run_dir,
            "--device",
            "cpu",
            "--plain",
            "--seed",
            "3",
        ];
        args.extend(extra);
        run(&args)
    }

    fn json(path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A parameter's values in a model pair.
    fn tensor(manifest: &Path, name: &str) -> Vec<f32> {
        use burn::module::{Module, ModuleVisitor, Param};
        use burn::prelude::*;
        struct Find<'a>(&'a str, Vec<String>, Option<Vec<f32>>);
        impl ModuleVisitor for Find<'_> {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.1.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.1.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if self.1.join(".") == self.0 {
                    self.2 = Some(param.val().into_data().try_into_vec_as::<f32>().unwrap());
                }
            }
        }
        let (_, model) = vit::weights::load_pair(manifest, &Device::flex()).unwrap();
        let mut find = Find(name, Vec::new(), None);
        model.visit(&mut find);
        find.2
            .unwrap_or_else(|| panic!("no {name} in {}", manifest.display()))
    }

    #[test]
    fn a_linear_probe_learns_new_classes_publishes_and_predicts() {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("shapes");
        folder(&data, 20, 11);
        let run_dir = dir.path().join("probe");
        let (d, r) = (data.to_str().unwrap(), run_dir.to_str().unwrap());
        let o = finetune(
            d,
            r,
            &[
                "--head-only",
                "--epochs",
                "4",
                "--batch-size",
                "8",
                "--lr",
                "5e-3",
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("fine-tuning vitrine-cifar10 for 3 classes at 32px: training the head"),
            "{stderr}"
        );
        let top1 = json(&run_dir.join("eval.json"))["top1"].as_f64().unwrap();
        assert!(top1 >= 0.8, "three classes, chance is 33%; got {top1}");

        let models = dir.path().join("models");
        succeeds(&[
            "publish",
            "--run",
            r,
            "--name",
            "shapes",
            "--out",
            models.to_str().unwrap(),
        ]);
        let manifest = json(&models.join("shapes.json"));
        let base = json(Path::new(&default_model()));
        assert_eq!(manifest["labels"], serde_json::json!(CLASSES));
        assert_eq!(manifest["config"]["num_classes"], 3);
        assert_eq!(manifest["normalization"], base["normalization"]);
        let source = manifest["source"].as_str().unwrap();
        assert!(
            source.starts_with("trainer finetune of vitrine-cifar10 (")
                && source.contains("--from vitrine-cifar10.json"),
            "{source}"
        );
        assert_eq!(
            manifest["training"]["base"]["sha256"],
            base["weights"]["sha256"]
        );
        assert_eq!(
            manifest["training"]["recipe"]["finetune"]["trainable"],
            "head"
        );
        assert!(
            !std::fs::read_to_string(models.join("shapes.json"))
                .unwrap()
                .contains(&dir.path().display().to_string()),
            "the manifest names a path of this machine"
        );

        // Only the head learned: the base model's layers come back unchanged.
        let (published, shipped) = (models.join("shapes.json"), PathBuf::from(default_model()));
        for name in [
            "patch_embed.proj.weight",
            "pos_embed",
            "blocks.5.mlp.fc2.weight",
            "norm.gamma",
        ] {
            assert_eq!(
                tensor(&published, name),
                tensor(&shipped, name),
                "{name} changed"
            );
        }

        // `predict` on photos drawn afresh names their classes.
        let fresh = dir.path().join("fresh");
        folder(&fresh, 3, 99);
        let mut files = Vec::new();
        for class in CLASSES {
            for i in 0..3 {
                files.push(
                    fresh
                        .join(class)
                        .join(format!("{i}.png"))
                        .display()
                        .to_string(),
                );
            }
        }
        let manifest_path = published.display().to_string();
        let mut args = vec!["predict", "--model", &manifest_path, "--json", "--top", "1"];
        args.extend(files.iter().map(String::as_str));
        let o = succeeds(&args);
        let right = String::from_utf8_lossy(&o.stdout)
            .lines()
            .zip(&files)
            .filter(|(line, file)| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                file.contains(&format!("/{}/", v["top"][0]["label"].as_str().unwrap()))
            })
            .count();
        assert!(
            right >= 8,
            "{right} of 9 fresh photos named right:\n{}",
            text(&o)
        );
        eprintln!(
            "linear probe: top-1 {top1:.3}, {right}/9 fresh, {:.1?}",
            started.elapsed()
        );
    }

    /// The last block learns at 64px (pos_embed resampled from 8x8 to 16x16); a kill after
    /// the first epoch and `--resume` end where the unbroken run ends.
    #[test]
    fn last_blocks_at_another_size_resume_to_the_same_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("shapes");
        folder(&data, 16, 5);
        let d = data.to_str().unwrap();
        let args = [
            "--last-blocks",
            "1",
            "--image-size",
            "64",
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
        ];
        let whole = dir.path().join("whole");
        let o = finetune(d, whole.to_str().unwrap(), &args);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(
                "at 64px (pos_embed resampled from 8x8 to 16x16): training the last 1 block(s)"
            ),
            "{}",
            text(&o)
        );
        let top1 = json(&whole.join("eval.json"))["top1"].as_f64().unwrap();
        assert!(top1 > 0.6, "three classes, chance is 33%; got {top1}");

        // The same run killed once its first epoch is checkpointed, then resumed.
        let broken = dir.path().join("broken");
        let b = broken.to_str().unwrap();
        let from = default_model();
        let mut child = trainer()
            .args([
                "finetune",
                "--from",
                &from,
                "--data-dir",
                d,
                "--run",
                b,
                "--device",
                "cpu",
                "--plain",
                "--seed",
                "3",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        kill_after_first_checkpoint(&mut child, &broken);
        succeeds(&[
            "finetune", "--resume", "--run", b, "--device", "cpu", "--plain",
        ]);
        assert_eq!(
            metrics_without_timing(&broken),
            metrics_without_timing(&whole)
        );

        // `train --resume` points to `finetune --resume`; a finished run says so.
        let o = run(&["train", "--resume", "--run", b, "--device", "cpu"]);
        assert!(!o.status.success());
        assert!(
            text(&o).contains("is a fine-tuning run: continue it with `trainer finetune --resume"),
            "{}",
            text(&o)
        );
        let o = run(&[
            "finetune", "--resume", "--run", b, "--device", "cpu", "--epochs", "9",
        ]);
        assert!(!o.status.success());
        assert!(
            text(&o).contains("drop --from and the recipe flags"),
            "{}",
            text(&o)
        );
    }

    #[test]
    fn bad_requests_are_refused_before_training() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("shapes");
        folder(&data, 2, 1);
        let d = data.to_str().unwrap();
        let run_dir = |n: &str| dir.path().join(n).display().to_string();
        for (extra, want) in [
            (
                vec!["--last-blocks", "7"],
                "--last-blocks 7: vitrine-cifar10 has 6 blocks",
            ),
            (
                vec!["--image-size", "50"],
                "image_size 50 is not divisible by patch_size 4",
            ),
            (vec!["--head-only", "--full"], "cannot be used with"),
            (
                vec!["--layer-decay", "1.5"],
                "--layer-decay 1.5 must be in (0, 1]",
            ),
        ] {
            let o = finetune(d, &run_dir("r"), &extra);
            assert!(!o.status.success(), "{extra:?}: {}", text(&o));
            assert!(text(&o).contains(want), "{extra:?}: {}", text(&o));
        }
        // One class is not a classification problem; an empty class folder is named.
        let one = dir.path().join("one");
        std::fs::create_dir_all(one.join("only")).unwrap();
        write_image(&one.join("only/a.png"), 8, 8);
        let o = finetune(one.to_str().unwrap(), &run_dir("r1"), &[]);
        assert!(
            text(&o).contains("one class (\"only\"); fine-tuning needs at least two"),
            "{}",
            text(&o)
        );
        std::fs::create_dir_all(one.join("empty")).unwrap();
        let o = finetune(one.to_str().unwrap(), &run_dir("r2"), &[]);
        assert!(text(&o).contains("empty is empty"), "{}", text(&o));
        // A base that is not a model pair is named.
        let o = run(&[
            "finetune",
            "--from",
            d,
            "--data-dir",
            d,
            "--run",
            &run_dir("r3"),
            "--device",
            "cpu",
        ]);
        assert!(!o.status.success());
        assert!(text(&o).contains(&format!("reading {d}")), "{}", text(&o));
    }
}

/// `trainer explain` on the tiny timm model (16 px, patch 4: 16 patches and 17 tokens, 2
/// layers, 2 heads). Its maps are checked against timm and PyTorch in vit/tests/explain_parity.rs;
/// here the command's own promises: rows of probabilities, the reverse reading the columns,
/// rollout built from the attention, relevance for the class asked, the picture, and errors.
mod explain {
    use super::*;

    fn setup() -> (tempfile::TempDir, String, String) {
        let (dir, model, photo) = tiny_model_and_image("photo.png", 40, 30);
        let photo = photo.display().to_string();
        (dir, model, photo)
    }

    /// `trainer explain PHOTO --model M --json ARGS...`: the map's tokens and the whole answer.
    fn ask(model: &str, photo: &str, args: &[&str]) -> (Vec<f64>, serde_json::Value) {
        let mut all = vec![
            "explain", photo, "--model", model, "--json", "--device", "cpu",
        ];
        all.extend(args);
        let o = run(&all);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let tokens = v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        (tokens, v)
    }

    #[test]
    fn attention_rows_columns_and_rollout() {
        let (_dir, model, photo) = setup();
        let (row, v) = ask(
            &model,
            &photo,
            &["--layer", "2", "--head", "1", "--token", "5"],
        );
        assert_eq!(row.len(), 17);
        assert_close(
            &format!("the row's sum {row:?}"),
            &[1.0],
            &[row.iter().sum::<f64>()],
            Tolerance::abs(1e-5),
        );
        let grid = v["grid"].as_array().unwrap();
        assert_eq!(grid.len(), 4);
        assert_eq!(
            grid[1][0].as_f64().unwrap(),
            row[5],
            "patch 5 is row 2, column 1"
        );
        assert_eq!(
            (
                v["method"].as_str(),
                v["layer"].as_u64(),
                v["heads"].as_u64()
            ),
            (Some("attention"), Some(2), Some(1))
        );

        // The reverse map of token 5 is column 5: entry q is token q's row at 5.
        let (column, _) = ask(
            &model,
            &photo,
            &["--layer", "2", "--head", "1", "--token", "5", "--reverse"],
        );
        for q in [0usize, 3, 16] {
            let (row_q, _) = ask(
                &model,
                &photo,
                &["--layer", "2", "--head", "1", "--token", &q.to_string()],
            );
            assert_eq!(column[q], row_q[5], "token {q}");
        }

        // Max-fused heads are at least each head, the mean between them.
        let (h2, _) = ask(
            &model,
            &photo,
            &["--layer", "2", "--head", "2", "--token", "5"],
        );
        let (max, _) = ask(
            &model,
            &photo,
            &["--layer", "2", "--head", "max", "--token", "5"],
        );
        let (mean, _) = ask(&model, &photo, &["--layer", "2", "--token", "5"]);
        assert_eq!((max.len(), mean.len(), h2.len()), (17, 17, 17));
        let (most, middle): (Vec<f64>, Vec<f64>) = (0..17)
            .map(|j| (row[j].max(h2[j]), (row[j] + h2[j]) / 2.0))
            .unzip();
        assert_close("max-fused heads", &most, &max, Tolerance::abs(1e-7));
        assert_close("mean-fused heads", &middle, &mean, Tolerance::abs(1e-6));

        // Rollout through layer 1 from the class token is (A + I) / 2's first row, A the mean
        // of the heads (each row of A + I sums to 2).
        let (a, _) = ask(&model, &photo, &["--layer", "1"]);
        let (r, _) = ask(&model, &photo, &["--method", "rollout", "--layer", "1"]);
        let want: Vec<f64> = (0..17)
            .map(|j| (a[j] + if j == 0 { 1.0 } else { 0.0 }) / 2.0)
            .collect();
        assert_close("rollout through layer 1", &want, &r, Tolerance::abs(1e-6));
    }

    #[test]
    fn relevance_is_for_the_class_asked_and_defaults_to_the_top_one() {
        let (dir, model, photo) = setup();
        let o = succeeds(&[
            "predict", "--model", &model, "--json", "--device", "cpu", &photo,
        ]);
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let top = p["top"][0]["index"].as_u64().unwrap();
        let last = p["top"][4]["index"].as_u64().unwrap();

        let (default, v) = ask(&model, &photo, &["--method", "relevance"]);
        assert_eq!(v["class"]["index"].as_u64(), Some(top), "{v}");
        assert_eq!(v["token"].as_str(), Some("output"));
        let (by_index, _) = ask(
            &model,
            &photo,
            &["--method", "relevance", "--class", &top.to_string()],
        );
        assert_eq!(default, by_index);
        // By label, and another class gives another map. R - I only grows from zero, and
        // some patch matters.
        let label = p["top"][4]["label"].as_str().unwrap();
        let (other, v) = ask(&model, &photo, &["--method", "relevance", "--class", label]);
        assert_eq!(v["class"]["index"].as_u64(), Some(last));
        assert_differ(
            "the top class's relevance against the fifth's",
            &default,
            &other,
            Tolerance::abs(1e-4),
        );
        assert!(
            default.iter().all(|&x| x >= 0.0) && default[1..].iter().any(|&x| x > 0.0),
            "{default:?}"
        );

        // The picture: the square under the map, beside the model's view; text without --json.
        let png = dir.path().join("heat.png");
        let o = succeeds(&[
            "explain",
            &photo,
            "--model",
            &model,
            "--device",
            "cpu",
            "--method",
            "relevance",
            "--class",
            label,
            "--out",
            png.to_str().unwrap(),
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!("Relevance for {label}")), "{out}");
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (676, 344));
    }

    #[test]
    fn bad_questions_are_refused_clearly() {
        let (_dir, model, photo) = setup();
        for (args, want) in [
            (
                vec!["--layer", "3"],
                "there is no layer 3: the model has layers 1 to 2",
            ),
            (vec!["--layer", "0"], "there is no layer 0"),
            (
                vec!["--head", "3"],
                "there is no head 3: the model has heads 1 to 2",
            ),
            (vec!["--head", "median"], "unknown head 'median'"),
            (
                vec!["--token", "17"],
                "there is no token 17: the model has tokens 0 (the class token), 1 to 16 (patches 1 to 16)",
            ),
            (vec!["--token=-2"], "unknown token '-2'"),
            (vec!["--method", "gradcam"], "unknown method 'gradcam'"),
            (vec!["--class", "bee"], "--class is for --method relevance"),
            (
                vec!["--method", "relevance", "--class", "zebra"],
                "no class 'zebra'; give an index or one of: ant, bee",
            ),
            (
                vec!["--method", "relevance", "--class", "5"],
                "there is no class 5: the model has classes 0 to 4",
            ),
            (
                vec!["--method", "relevance", "--head", "1"],
                "relevance averages the heads",
            ),
        ] {
            let mut all = vec![
                "explain",
                photo.as_str(),
                "--model",
                &model,
                "--device",
                "cpu",
            ];
            all.extend(&args);
            let o = run(&all);
            assert!(!o.status.success(), "{args:?}: {}", text(&o));
            let t = text(&o);
            assert!(t.contains(want), "{args:?}: {t}");
            assert!(!t.contains("panicked"), "{args:?}: {t}");
        }
    }
}
