//! The Teach panel in headless Chromium: a person's own classes, taught in the page.
//!
//! In one session on top of the default model: the panel refuses what cannot be taught (no
//! photo, one class, two classes of one name, a file that is not an image) without losing what
//! it holds; takes a photo from the (fake) webcam and removes it again; teaches three classes of
//! generated photos on the CPU (Flex), with the time printed, and gets the held-out photos
//! right; its downloaded pair gives `trainer predict`'s top-5 within 1e-5 for fresh photos,
//! with the page's result, maps and relevance following the taught classes; the pair loads
//! back from disk; the last-block mode and WebGPU teach too; and 500 photos fit in one class.
//! Screenshots before, during and after teaching land in target/browser-screenshots/.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::close::{Tolerance, assert_close};
use super::webdriver::{Session, base64_decode};
use super::{
    Answer, Shots, cli_predict, first_result, in_browser, predictions, probs_of, run_id,
    select_backend, top_of, wait_explorer, wait_result,
};

/// The page's current top classes.
fn page_top(s: &Session) -> Vec<(String, u64, f64)> {
    top_of(&predictions(s))
}

/// Teaching on SwiftShader's WebGPU compiles and runs every step's kernels on the CPU.
pub(super) const TEACH_TIMEOUT: Duration = Duration::from_secs(300);
/// The page and the CLI run the same weights through the same code on the CPU.
pub(super) const SAME: f64 = 1e-5;

/// The classes the test teaches: colours and shapes the default model's features tell apart.
pub(super) const CLASSES: [&str; 3] = ["sky", "grass", "sunset"];

/// Photo `i` of `class`: a sky with clouds, a lawn with blades, or a sunset with its sun; of
/// varied size and layout.
fn photo(class: usize, i: u64) -> image::RgbImage {
    // Deterministic, so the photos are the same on every run.
    let mut rng = vit::rng::Rng::new(i * 31 + class as u64 * 1009 + 7);
    let mut r = |n: u32| rng.below(n as usize) as u32;
    let (w, h) = (64 + r(96), 48 + r(72));
    let (cx, cy, rad) = (r(w), r(h / 2 + 1), 6 + r(14));
    let tint = r(40) as f32;
    image::RgbImage::from_fn(w, h, |x, y| {
        let fy = y as f32 / h as f32;
        let noise = (r(30)) as f32;
        let (dx, dy) = (x as f32 - cx as f32, y as f32 - cy as f32);
        let inside = dx * dx / 4.0 + dy * dy < (rad * rad) as f32;
        let px = match class {
            0 if inside => [235.0, 240.0, 245.0],
            0 => [60.0 + tint, 120.0 + 60.0 * fy, 230.0 - tint],
            1 if (x + r(3)).is_multiple_of(5) => [20.0, 90.0 + noise, 20.0],
            1 => [50.0 + tint, 150.0 + noise, 40.0],
            _ if inside => [250.0, 220.0, 60.0],
            _ => [230.0 - tint, 90.0 + 70.0 * fy, 40.0 + noise],
        };
        image::Rgb(px.map(|v: f32| v.clamp(0.0, 255.0) as u8))
    })
}

pub(super) fn write_photos(dir: &Path, class: usize, range: std::ops::Range<u64>) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    range
        .map(|i| {
            let path = dir.join(format!("{}-{i}.png", CLASSES[class]));
            photo(class, i).save(&path).expect("writing a photo");
            path
        })
        .collect()
}

fn teach_state(s: &Session) -> Value {
    let text = s
        .eval(
            "return window.vitrine.teach ? window.vitrine.teach() : null;",
            json!([]),
        )
        .expect("reading the teach state");
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Waits until the panel's state satisfies `check` (a JS expression over `t`, the parsed
/// `window.vitrine.teach()`).
pub(super) fn wait_teach(s: &Session, what: &str, check: &str, timeout: Duration) -> Value {
    let script = format!(
        "const raw = window.vitrine && window.vitrine.teach && window.vitrine.teach();
         if (!raw) return null; const t = JSON.parse(raw);
         return ({check}) ? raw : null;"
    );
    match s.wait_for(what, &script, timeout) {
        Ok(v) => serde_json::from_str(v.as_str().unwrap_or("null")).unwrap(),
        Err(e) => panic!("{e}; the panel says {}", teach_state(s)),
    }
}

fn counts(t: &Value) -> Vec<u64> {
    t["classes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["photos"].as_u64().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets class `i`'s name as typing would.
pub(super) fn name_class(s: &Session, i: usize, name: &str) {
    s.eval(
        "const el = document.querySelector(`.teach-class[data-class='${arguments[0]}'] .teach-name`);
         el.value = arguments[1];
         el.dispatchEvent(new Event('input', { bubbles: true }));
         el.dispatchEvent(new Event('change', { bubbles: true }));",
        json!([i, name]),
    )
    .unwrap();
}

fn set_input(s: &Session, css: &str, value: &str) {
    s.eval(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1];
         el.dispatchEvent(new Event('input', { bubbles: true }));
         el.dispatchEvent(new Event('change', { bubbles: true }));",
        json!([css, value]),
    )
    .unwrap();
}

/// Adds `files` to class `i` through its file picker and waits until they are in.
pub(super) fn add_photos(s: &Session, i: usize, files: &[PathBuf], expect: u64) -> Value {
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    s.upload(&format!("#teach-files-{i}"), &refs).unwrap();
    wait_teach(
        s,
        &format!("{expect} photos in class {i}"),
        &format!(
            "t.state !== 'adding' && t.classes.length > {i} && t.classes[{i}].photos === {expect}"
        ),
        Duration::from_secs(240),
    )
}

/// Clicks Train and returns the refusal the panel gives, its photos unchanged.
fn refused(s: &Session, says: &str) {
    let before = counts(&teach_state(s));
    s.click("#teach-train").unwrap();
    let t = wait_teach(
        s,
        &format!("a refusal saying '{says}'"),
        "t.error && t.state !== 'extracting' && t.state !== 'training'",
        Duration::from_secs(30),
    );
    let error = t["error"].as_str().unwrap_or("");
    assert!(
        error.contains(says),
        "Train should have been refused with '{says}', got: {error}"
    );
    assert_eq!(counts(&t), before, "a refusal loses no photo");
    println!("refused: {error}");
}

/// Teaches what the panel holds and waits for the result.
pub(super) fn teach(s: &Session, shots: Option<(&Shots, &str)>) -> Value {
    s.click("#teach-train").unwrap();
    if let Some((shots, name)) = shots {
        wait_teach(
            s,
            "training under way",
            "t.state === 'training' && t.step >= 10",
            TEACH_TIMEOUT,
        );
        shots.take(s, name);
    }
    let t = wait_teach(
        s,
        "teaching to finish",
        "t.state === 'done' || t.state === 'error'",
        TEACH_TIMEOUT,
    );
    assert_eq!(t["state"], "done", "teaching failed: {}", t["error"]);
    t
}

/// The taught pair as Download saves it, written into `dir`; returns the manifest's path.
fn save_pair(s: &Session, dir: &Path) -> (PathBuf, Value) {
    let raw = s
        .eval("return window.vitrine.taughtPair();", json!([]))
        .unwrap();
    let pair: Value = serde_json::from_str(raw.as_str().expect("a taught pair")).unwrap();
    let name = pair["name"].as_str().unwrap().to_string();
    std::fs::create_dir_all(dir).unwrap();
    let manifest_text = pair["manifest"].as_str().unwrap();
    std::fs::write(dir.join(format!("{name}.json")), manifest_text).unwrap();
    let bpk = base64_decode(pair["bpk"].as_str().unwrap()).unwrap();
    std::fs::write(dir.join(format!("{name}.bpk")), bpk).unwrap();
    let manifest: Value = serde_json::from_str(manifest_text).unwrap();
    (dir.join(format!("{name}.json")), manifest)
}

/// The page's answer equals `trainer predict`'s: same top classes, probabilities within `SAME`.
pub(super) fn assert_same(page: &Value, cli: &Answer, what: &str) {
    let order = |t: &[(String, u64, f64)]| t.iter().map(|r| r.1).collect::<Vec<_>>();
    assert_eq!(order(&top_of(page)), order(&cli.0), "{what}: top classes");
    assert_eq!(probs_of(page).len(), cli.1.len(), "{what}: classes");
    let worst = assert_close(
        &format!("{what}: the page's probabilities against trainer predict's"),
        &cli.1,
        &probs_of(page),
        Tolerance::abs(SAME),
    );
    println!("{what}: trainer predict's top-5, max |Δp| = {worst:.1e}");
}

/// Gives the page `image` as its photo and waits for the answer of the model `model`.
pub(super) fn classify(s: &Session, image: &Path, model: &str, after: u64) -> Value {
    s.upload("#file-input", &[image]).unwrap();
    let name = image.file_name().unwrap().to_string_lossy().to_string();
    wait_result(
        s,
        &format!("the answer for {name}"),
        after,
        &format!("p.image === {name:?} && p.model === {model:?}"),
    )
    .unwrap()
}

#[test]
fn page_teaches_new_classes_in_headless_chromium() {
    let work = tempfile::tempdir().expect("temp dir");
    let photos = work.path().join("photos");
    let train: Vec<Vec<PathBuf>> = (0..3).map(|c| write_photos(&photos, c, 0..10)).collect();
    let fresh: Vec<PathBuf> = (0..3)
        .map(|c| write_photos(&photos.join("fresh"), c, 100..101).remove(0))
        .collect();
    let not_image = work.path().join("notes.txt");
    std::fs::write(&not_image, "these are not pixels").unwrap();

    // A fake camera and no permission prompt: the webcam button gets a test pattern.
    let fake_camera = |mut args: Vec<String>| {
        args.extend([
            "--use-fake-device-for-media-stream".to_string(),
            "--use-fake-ui-for-media-stream".to_string(),
        ]);
        args
    };
    in_browser(
        "teach-failure",
        fake_camera,
        || {},
        |s, shots, base| steps(s, shots, base, work.path(), &train, &fresh, &not_image),
    );
}

fn steps(
    s: &Session,
    shots: &Shots,
    base: &str,
    work: &Path,
    train: &[Vec<PathBuf>],
    fresh: &[PathBuf],
    not_image: &Path,
) {
    let first = first_result(s, &format!("{base}/"), "teach session");
    let base_model = first.prediction["model"].as_str().unwrap().to_string();
    let has_webgpu = first.timings["webgpu_available"] == true;
    select_backend(s, "cpu");
    let mut run = run_id(&wait_result(s, "the CPU's answer", 0, "p.backend === 'cpu'").unwrap());
    s.eval(
        "document.getElementById('teach-card').scrollIntoView();",
        json!([]),
    )
    .unwrap();
    let t = wait_teach(
        s,
        "the panel",
        "t.state === 'idle'",
        Duration::from_secs(30),
    );
    assert_eq!(
        counts(&t),
        [0, 0],
        "the panel starts with two empty classes"
    );
    shots.take(s, "teach-01-empty");

    // What cannot be taught is refused, and nothing held is lost.
    refused(s, "no photo");
    add_photos(s, 0, &train[0], 10);
    s.upload("#teach-files-0", &[not_image]).unwrap();
    let t = wait_teach(
        s,
        "the refusal of a text file",
        "t.state !== 'adding' && t.error",
        Duration::from_secs(30),
    );
    assert!(
        t["error"].as_str().unwrap_or("").contains("notes.txt"),
        "the message names the file: {}",
        t["error"]
    );
    assert_eq!(
        counts(&t),
        [10, 0],
        "the text file is not added, the photos stay"
    );
    s.click(".teach-class[data-class='1'] .teach-remove-class")
        .unwrap();
    wait_teach(
        s,
        "one class left",
        "t.classes.length === 1",
        Duration::from_secs(10),
    );
    refused(s, "at least 2 classes");
    for (c, photos) in train.iter().enumerate().skip(1) {
        s.click("#teach-add-class").unwrap();
        wait_teach(
            s,
            "a new class",
            &format!("t.classes.length === {}", c + 1),
            Duration::from_secs(10),
        );
        add_photos(s, c, photos, 10);
    }
    for (i, name) in CLASSES.iter().enumerate() {
        name_class(s, i, name);
    }
    name_class(s, 2, " Sky");
    refused(s, "both called");
    name_class(s, 2, CLASSES[2]);

    // The webcam adds a frame to its class, and a photo can be removed again.
    s.click(".teach-class[data-class='0'] .teach-webcam")
        .unwrap();
    s.wait_for(
        "the webcam's preview",
        "const v = document.getElementById('teach-video');
         return v && !v.hidden && v.readyState >= 2 && v.videoWidth > 0;",
        Duration::from_secs(30),
    )
    .unwrap();
    s.click("#teach-snap").unwrap();
    wait_teach(
        s,
        "the webcam's photo",
        "t.classes[0].photos === 11",
        Duration::from_secs(30),
    );
    shots.take(s, "teach-02-webcam");
    s.click("#teach-camera-close").unwrap();
    s.click(".teach-class[data-class='0'] .teach-thumb:last-child .teach-remove-photo")
        .unwrap();
    let t = wait_teach(
        s,
        "the photo removed",
        "t.classes[0].photos === 10",
        Duration::from_secs(10),
    );
    assert_eq!(counts(&t), [10, 10, 10]);

    // Teach on the CPU: 3 classes of 10 photos, 2 of each held out.
    set_input(s, "#teach-name-input", "my-scenes");
    let t = teach(s, Some((shots, "teach-03-training")));
    shots.take(s, "teach-04-taught");
    println!(
        "taught 3 classes x 10 photos on {} in {:.2} s (features {:.2} s, {} steps {:.2} s); held out: {}",
        t["backend"],
        t["ms"]["total"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        t["ms"]["features"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        t["step"],
        t["ms"]["training"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        t["held_out"],
    );
    assert_eq!(t["backend"], "cpu");
    assert_eq!(t["model"], "my-scenes");
    assert_eq!(t["held_out"]["photos"], 6);
    let held = t["held_out"]["accuracy"].as_f64().unwrap_or(0.0);
    assert!(held >= 5.0 / 6.0, "held-out accuracy {held}");
    let curve = t["curve"].as_array().expect("a curve");
    assert!(curve.len() >= 10, "the curve has {} points", curve.len());
    let (l0, l1) = (
        curve[0]["loss"].as_f64().unwrap(),
        curve.last().unwrap()["loss"].as_f64().unwrap(),
    );
    assert!(l1 < l0, "the loss fell: {l0} -> {l1}");

    // The downloaded pair is an ordinary model: trainer predict agrees with the page.
    let (manifest_path, manifest) = save_pair(s, &work.join("pair"));
    assert_eq!(manifest["labels"], json!(CLASSES));
    assert_eq!(manifest["config"]["num_classes"], 3);
    assert_eq!(manifest["training"]["base"], base_model.as_str());
    assert_eq!(
        manifest["training"]["photos_per_class"],
        json!([10, 10, 10])
    );
    for (class, image) in fresh.iter().enumerate() {
        let page = classify(s, image, "my-scenes", run);
        run = run_id(&page);
        let cli = cli_predict(&manifest_path, image);
        assert_same(
            &page,
            &cli,
            &format!("taught model, fresh {}", CLASSES[class]),
        );
        assert_eq!(
            top_of(&page)[0].0,
            CLASSES[class],
            "a fresh photo of {} is called that",
            CLASSES[class]
        );
    }
    // The rest of the page follows the taught classes: the explorer's map, and the relevance
    // of the second taught class after a click on its bar.
    let e = wait_explorer(
        s,
        "the explorer's map",
        run,
        "e.tokens && e.tokens.length > 0",
    );
    assert_eq!(e["backend"], "cpu");
    let second = page_top(s)[1].1;
    s.eval(
        "document.querySelector(`#pred-list button[data-class='${arguments[0]}']`).click();",
        json!([second]),
    )
    .unwrap();
    let e = wait_explorer(
        s,
        "the second taught class's relevance",
        run,
        &format!("e.method === 'relevance' && e.class === {second}"),
    );
    assert_eq!(e["explaining"], second);
    println!(
        "relevance of the taught class {} shown",
        CLASSES[second as usize]
    );
    shots.take(s, "teach-05-explained");

    // Loaded back from disk, the pair is the same model.
    s.upload(
        "#model-files",
        &[
            manifest_path.as_path(),
            &manifest_path.with_extension("bpk"),
        ],
    )
    .unwrap();
    let page = wait_result(
        s,
        "the pair loaded from disk",
        run,
        "p.model === 'my-scenes'",
    )
    .unwrap();
    run = run_id(&page);
    assert_same(
        &page,
        &cli_predict(&manifest_path, fresh.last().unwrap()),
        "the pair loaded back from disk",
    );

    // The last block can learn too.
    set_input(s, "#teach-mode", "last-block");
    set_input(s, "#teach-steps", "40");
    set_input(s, "#teach-name-input", "my-scenes-block");
    let t = teach(s, None);
    println!(
        "last-block mode: {} steps in {:.2} s, held-out accuracy {}",
        t["step"],
        t["ms"]["total"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        t["held_out"]["accuracy"]
    );
    let (block_path, _) = save_pair(s, &work.join("block"));
    let page = wait_result(
        s,
        "the last-block model's answer",
        run,
        "p.model === 'my-scenes-block'",
    )
    .unwrap();
    run = run_id(&page);
    let image = page["image"].as_str().unwrap().to_string();
    let image = fresh
        .iter()
        .find(|p| p.file_name().unwrap().to_string_lossy() == image)
        .expect("the page's photo is one of the fresh ones");
    assert_same(&page, &cli_predict(&block_path, image), "last-block model");

    // WebGPU teaches the same way, on 5 photos a class and a few steps: SwiftShader runs
    // every kernel on the CPU, about a second per view (the half of each class that goes is
    // removed with its buttons, as a person would).
    if has_webgpu {
        for class in 0..3 {
            for _ in 0..5 {
                s.click(&format!(
                    ".teach-class[data-class='{class}'] .teach-thumb:last-child .teach-remove-photo"
                ))
                .unwrap();
            }
        }
        let t = wait_teach(
            s,
            "5 photos a class",
            "t.classes.every(c => c.photos === 5)",
            Duration::from_secs(10),
        );
        assert_eq!(counts(&t), [5, 5, 5]);
        select_backend(s, "webgpu");
        run = run_id(&wait_result(s, "WebGPU's answer", run, "p.backend === 'webgpu'").unwrap());
        set_input(s, "#teach-mode", "head");
        set_input(s, "#teach-steps", "30");
        set_input(s, "#teach-name-input", "my-scenes-gpu");
        let t = teach(s, None);
        assert_eq!(t["backend"], "webgpu");
        assert_eq!(t["held_out"]["photos"], 3);
        let held = t["held_out"]["accuracy"].as_f64().unwrap_or(0.0);
        assert!(held >= 2.0 / 3.0, "WebGPU: held-out accuracy {held}");
        println!(
            "WebGPU: taught in {:.2} s (features {:.2} s, {} steps {:.2} s), held-out accuracy {}",
            t["ms"]["total"].as_f64().unwrap_or(f64::NAN) / 1000.0,
            t["ms"]["features"].as_f64().unwrap_or(f64::NAN) / 1000.0,
            t["step"],
            t["ms"]["training"].as_f64().unwrap_or(f64::NAN) / 1000.0,
            t["held_out"]["accuracy"]
        );
        let (gpu_path, _) = save_pair(s, &work.join("gpu"));
        let page = wait_result(
            s,
            "the WebGPU-taught model",
            run,
            "p.model === 'my-scenes-gpu'",
        )
        .unwrap();
        let image = fresh
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy() == page["image"].as_str().unwrap())
            .unwrap();
        assert_same(&page, &cli_predict(&gpu_path, image), "WebGPU-taught model");
        select_backend(s, "cpu");
    } else {
        assert!(
            std::env::var_os("VITRINE_ALLOW_NO_WEBGPU").is_some(),
            "this Chromium offers no WebGPU adapter, so teaching on WebGPU cannot be checked"
        );
    }

    // 500 photos in one class: taken, and the page answers.
    let many: Vec<PathBuf> = (0..500u64)
        .map(|i| {
            let path = work.join("many").join(format!("p{i}.png"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            image::RgbImage::from_fn(24, 24, |x, y| {
                image::Rgb([(x * 10) as u8, (y * 10) as u8, (i % 256) as u8])
            })
            .save(&path)
            .unwrap();
            path
        })
        .collect();
    s.click("#teach-add-class").unwrap();
    let t = add_photos(s, 3, &many, 500);
    let before = if has_webgpu { 5 } else { 10 };
    assert_eq!(counts(&t), [before, before, before, 500]);
    let heap = s
        .eval(
            "return performance.memory ? performance.memory.usedJSHeapSize : null;",
            json!([]),
        )
        .unwrap();
    println!("500 photos in one class; JS heap {heap} bytes");
    shots.take(s, "teach-06-many");
}
