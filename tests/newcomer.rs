//! What a newcomer meets in their first minutes with the `trainer` binary: a command that takes
//! `--data-dir` sees what the folder holds without `--dataset` (and says what it holds when a
//! given `--dataset` is wrong), and a run whose loss blows up without becoming NaN says so,
//! naming its learning rate, instead of ending "done" in silence.

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "support/trainer.rs"]
mod trainer_bin;
use trainer_bin::{run, text};

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// `per_class` 16x16 PNGs in `dir/<class>/` for each class: a flat colour of its own per
/// class, a little lighter image by image.
fn class_folders(dir: &Path, classes: &[&str], per_class: u8) {
    for (c, class) in classes.iter().enumerate() {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            let shade = |v: u8| v.saturating_add(4 * i);
            let rgb = [(c * 80) as u8, 255 - (c * 80) as u8, (c * 40) as u8].map(shade);
            image::RgbImage::from_pixel(16, 16, image::Rgb(rgb))
                .save(dir.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
}

/// The tiny timm fixture as a model pair in `dir`, with `labels` as its five class names.
fn tiny_model(dir: &Path, labels: &[&str; 5]) -> PathBuf {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/timm_tiny_token.safetensors");
    let names = dir.join("labels.txt");
    std::fs::write(&names, labels.join("\n")).unwrap();
    let o = run(&[
        "import-timm",
        path(&fixture),
        "--heads",
        "2",
        "--name",
        "tiny",
        "--out",
        path(dir),
        "--labels",
        path(&names),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    dir.join("tiny.json")
}

#[test]
fn eval_sees_a_folder_of_class_folders_and_says_what_a_wrong_dataset_holds() {
    let dir = tempfile::tempdir().unwrap();
    let classes = ["ant", "bee", "cat", "dog", "eel"];
    let model = tiny_model(dir.path(), &classes);
    let data = dir.path().join("photos");
    class_folders(&data, &classes, 5);
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--model", path(&model), "--data-dir", path(&data)];
        args.extend(["--device", "cpu"]);
        args.extend(extra);
        run(&args)
    };

    // No --dataset: the class folders are seen as such (a fifth of each held out: 5 images).
    let o = eval(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("tiny: 5 test images of folder"),
        "{}",
        text(&o)
    );
    let o = eval(&["--dataset", "folder"]);
    assert!(o.status.success(), "{}", text(&o));

    // A wrong --dataset says what the folder holds and what to pass instead.
    for wrong in ["cifar10", "cifar100"] {
        let o = eval(&["--dataset", wrong]);
        assert!(!o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("holds 5 class folders (ant, bee, cat, dog, eel), not CIFAR-1")
                && err.contains("pass --dataset folder, or leave --dataset out"),
            "{}",
            text(&o)
        );
        assert!(!err.contains("no CIFAR-10 files"), "{}", text(&o));
    }

    // And the other way round: CIFAR-10's batches are not a folder of classes.
    let cifar = dir.path().join("cifar");
    std::fs::create_dir_all(cifar.join("cifar-10-batches-bin")).unwrap();
    std::fs::write(cifar.join("cifar-10-batches-bin/test_batch.bin"), b"").unwrap();
    let o = run(&[
        "eval",
        "--model",
        path(&model),
        "--data-dir",
        path(&cifar),
        "--dataset",
        "folder",
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o)
            .contains("holds CIFAR-10's binary batches, not class folders: pass --dataset cifar10"),
        "{}",
        text(&o)
    );
}

/// A tiny run on three classes of class folders (no --dataset: train detects them too): 24
/// training images in batches of 4 for two epochs, 12 steps of a one-block model at 16 px.
fn tiny_run(data: &Path, run_dir: &Path, lr: &str) -> Output {
    run(&[
        "train",
        "--data-dir",
        path(data),
        "--run",
        path(run_dir),
        "--device",
        "cpu",
        "--devices",
        "1",
        "--plain",
        "--seed",
        "1",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--warmup-epochs",
        "0",
        "--lr",
        lr,
        "--image-size",
        "16",
        "--patch-size",
        "8",
        "--embed-dim",
        "16",
        "--depth",
        "1",
        "--heads",
        "1",
    ])
}

const EXPLODED: &str = "warning: the training loss has stayed above";

#[test]
fn a_run_whose_loss_explodes_warns_once_naming_its_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("colours");
    class_folders(&data, &["one", "three", "two"], 10);

    let o = tiny_run(&data, &dir.path().join("absurd"), "50");
    // The loss stays finite (a NaN would stop the run with its own error): the run finishes,
    // but not in silence.
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches(EXPLODED).count(), 1, "{}", text(&o));
    let warning = err.lines().find(|l| l.contains(EXPLODED)).unwrap();
    assert!(
        warning.contains("--lr 50") && warning.contains("try a smaller one, such as --lr 5"),
        "{warning}"
    );

    // An ordinary learning rate on the same data gives no such warning.
    let o = tiny_run(&data, &dir.path().join("sane"), "0.001");
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(EXPLODED), "{}", text(&o));
}
