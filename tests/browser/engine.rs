//! The page's engine in its Web Worker (web/src/worker, web/src/engine), in headless Chromium.
//!
//! In one cross-origin isolated session without WebGPU (so every pass is Flex's):
//! 1. the engine is the threaded build, on as many threads as the browser reports cores, and
//!    the page says so beside the CPU's timing;
//! 2. during a pass of a ViT-S/16-shaped model (random weights: 22 M parameters, 197 tokens)
//!    the page goes on: its animation frames advance while the engine is busy, and the square
//!    the model sees, moved by a key press in the middle of the pass, moves at once; the model
//!    then answers the moved square, with `trainer predict --crop`'s answer. Asserted by the
//!    order of events the page records, not by time;
//! 3. an engine that panics, and one whose worker is killed in the middle of a pass: the page
//!    says so in one line, starts a new engine, and answers the next photo with the CLI's
//!    answer.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::webdriver::Session;
use super::{
    Answer, Shots, assert_same_answer, cli_predict, cli_predict_with, first_result, in_browser,
    predictions, run_id, select_backend, status, wait_result, without_webgpu, write_fixture_image,
};

/// A ViT-S/16's shape (timm's `vit_small_patch16_224`, 10 classes) with random weights.
fn write_vit_s(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = vit::VitConfig::new()
        .with_image_size(224)
        .with_patch_size(16)
        .with_embed_dim(384)
        .with_depth(12)
        .with_num_heads(6)
        .with_num_classes(10);
    let model = config
        .init(&burn::prelude::Device::flex())
        .expect("a ViT-S/16");
    let labels = (0..10).map(|i| format!("class {i}")).collect();
    let mut manifest =
        vit::weights::Manifest::new("vit-s16", config, labels, vit::Normalization::IMAGENET);
    vit::weights::save_pair(dir, &mut manifest, &model).expect("saving the ViT-S/16 pair");
    dir.join("vit-s16.json")
}

fn engine(s: &Session) -> Value {
    let text = s
        .eval("return window.vitrine.engine();", json!([]))
        .expect("reading the engine");
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Records, on every animation frame from now on, whether the engine is busy, what the status
/// line says and where the square is; the first frame that finds a pass on the fixture under
/// way ("Running on …") presses the right arrow on the square, as a person would in the middle
/// of it.
fn watch_a_pass(s: &Session) {
    s.eval(
        "const w = window.__watch = { frames: [], pressed: null };
         const tick = () => {
           const e = JSON.parse(window.vitrine.engine());
           const f = { frame: window.vitrine.frames(), busy: e.busy_since !== null,
             status: document.getElementById('status').textContent,
             square: document.getElementById('crop-where').textContent };
           w.frames.push(f);
           const photo = document.getElementById('current').textContent;
           if (w.pressed === null && f.busy && f.status.startsWith('Running on')
               && photo.includes('fixture.png')) {
             const sq = document.getElementById('crop-square');
             sq.dispatchEvent(new KeyboardEvent('keydown',
               { key: 'ArrowRight', bubbles: true, cancelable: true }));
             w.pressed = { at: w.frames.length - 1,
               square: document.getElementById('crop-where').textContent };
           }
           if (w.frames.length < 3000) requestAnimationFrame(tick);
         };
         requestAnimationFrame(tick);",
        json!([]),
    )
    .unwrap();
}

/// `[x, y, size]` of the square the page reports with its last result.
fn crop_of(p: &Value) -> Option<String> {
    let c = p["crop"].as_array()?;
    Some(
        c.iter()
            .map(|v| v.as_u64().map_or("?".into(), |n| n.to_string()))
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[test]
fn page_goes_on_while_its_engine_works_and_outlives_it() {
    let work = tempfile::tempdir().expect("temp dir");
    let image = work.path().join("fixture.png");
    write_fixture_image(&image);
    let vit_s = write_vit_s(&work.path().join("vit-s"));
    let expected: Answer = cli_predict(&vit_s, &image);
    in_browser(
        "engine-failure",
        without_webgpu,
        || {},
        |s, shots, base| steps(s, shots, base, &image, &vit_s, &expected),
    );
}

fn steps(s: &Session, shots: &Shots, base: &str, image: &Path, vit_s: &Path, expected: &Answer) {
    // 1. The threaded engine, on every core the browser reports.
    let first = first_result(s, &format!("{base}/"), "isolated session");
    assert_eq!(first.prediction["backend"], "cpu");
    let e = engine(s);
    let cores = s
        .eval("return navigator.hardwareConcurrency;", json!([]))
        .unwrap()
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        e["build"], "threads",
        "an isolated page runs the threaded engine: {e}"
    );
    assert_eq!(e["threads"].as_u64(), Some(cores), "{e}");
    assert_eq!(
        s.eval("return crossOriginIsolated;", json!([])).unwrap(),
        true
    );
    let label = s
        .eval(
            "return document.getElementById('time-cpu').previousElementSibling.textContent;",
            json!([]),
        )
        .unwrap();
    assert_eq!(
        label.as_str(),
        Some(format!("CPU (Flex, {cores} threads)").as_str()),
        "the page says how many threads its CPU path uses"
    );
    println!("engine: {e}");

    // 2. The ViT-S/16 from disk; then a pass watched from the page.
    let mut run = run_id(&first.prediction);
    let bpk = vit_s.with_extension("bpk");
    s.upload("#model-files", &[vit_s, &bpk]).unwrap();
    let p = wait_result(s, "the ViT-S/16 from disk", run, "p.model === 'vit-s16'").unwrap();
    run = run_id(&p);
    select_backend(s, "cpu");
    let p = wait_result(s, "the CPU chosen", run, "p.backend === 'cpu'").unwrap();
    run = run_id(&p);
    watch_a_pass(s);
    s.upload("#file-input", &[image]).unwrap();
    let p = wait_result(
        s,
        "the moved square's result",
        run,
        "p.image === 'fixture.png' && p.crop !== null && !window.vitrine.following()",
    );
    let watch = s
        .eval("return window.__watch;", json!([]))
        .expect("the page's record of the pass");
    let p = p.unwrap_or_else(|e| {
        let busy: Vec<&Value> = watch["frames"]
            .as_array()
            .map(|f| f.iter().filter(|f| f["busy"] == true).take(40).collect())
            .unwrap_or_default();
        panic!(
            "{e}; key pressed: {}; busy frames: {busy:?}",
            watch["pressed"]
        )
    });
    let frames = watch["frames"].as_array().expect("frames");
    let pressed = &watch["pressed"];
    let at = pressed["at"]
        .as_u64()
        .unwrap_or_else(|| panic!("no frame found the pass under way: {watch}"))
        as usize;
    let before = frames.get(at.wrapping_sub(1)).map(|f| f["square"].clone());
    // The square moved at once, in the frame of the key press, while the engine was busy.
    assert!(frames[at]["busy"] == true, "{}", frames[at]);
    assert_ne!(
        Some(pressed["square"].clone()),
        before,
        "the square moved when the key was pressed, in the middle of the pass"
    );
    // The page drew more frames before the engine answered.
    let busy_after = frames[at + 1..]
        .iter()
        .take_while(|f| f["busy"] == true)
        .count();
    assert!(
        busy_after >= 1,
        "the page drew frames while the engine computed: {busy_after} after the key press"
    );
    let first_frame = frames[0]["frame"].as_u64().unwrap_or(0);
    let last_frame = frames
        .last()
        .map_or(0, |f| f["frame"].as_u64().unwrap_or(0));
    println!(
        "during the ViT-S/16 pass the page drew {busy_after} more frames after the key press \
         (frames {first_frame} to {last_frame} in all); the square went from {} to {}",
        before.unwrap_or(Value::Null),
        pressed["square"]
    );
    let crop = crop_of(&p).expect("the result of a chosen square");
    let cli = cli_predict_with(vit_s, image, &["--crop", &crop]);
    assert_same_answer(&p, &cli, "the ViT-S/16 on the moved square");
    run = run_id(&p);
    shots.take(s, "engine-01-vit-s");

    // 3. The engine panics: one line, a new engine, the next photo answered.
    s.eval("window.vitrine.engineFault('panic');", json!([]))
        .unwrap();
    let line = s
        .wait_for(
            "the page saying its engine stopped",
            "const e = JSON.parse(window.vitrine.engine());
             const t = document.getElementById('status').textContent;
             return e.generation === 2 && t.includes('engine stopped') ? t : null;",
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    println!("after a panic: {line}");
    assert!(
        engine(s)["stopped"]
            .as_str()
            .unwrap_or("")
            .contains("asked the engine to fail"),
        "{}",
        engine(s)
    );
    let p = wait_result(
        s,
        "the answer after the panic",
        run,
        "p.model === 'vit-s16' && !window.vitrine.following()",
    )
    .unwrap();
    run = run_id(&p);
    select_backend(s, "cpu");
    s.upload("#file-input", &[image]).unwrap();
    let p = wait_result(
        s,
        "the next photo after the panic",
        run,
        "p.image === 'fixture.png'",
    )
    .unwrap();
    run = run_id(&p);
    let cli = match crop_of(&p) {
        Some(c) => cli_predict_with(vit_s, image, &["--crop", &c]),
        None => expected.clone(),
    };
    assert_same_answer(&p, &cli, "the ViT-S/16 after the engine's panic");
    let alerts = alert(s);
    assert!(
        alerts.is_empty(),
        "the panic is said once, in the status line, not also as an error: {alerts}"
    );
    shots.take(s, "engine-02-after-panic");

    // 4. The worker killed in the middle of a pass: the same.
    s.eval(
        "const tick = () => {
           const t = document.getElementById('status').textContent;
           if (t.startsWith('Running on')) window.vitrine.engineFault('kill');
           else requestAnimationFrame(tick);
         };
         requestAnimationFrame(tick);
         document.querySelector('#samples button.sample').click();",
        json!([]),
    )
    .unwrap();
    s.wait_for(
        "a third engine",
        "return JSON.parse(window.vitrine.engine()).generation === 3;",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    let p = wait_result(
        s,
        "the answer after the kill",
        run,
        "p.model === 'vit-s16' && !window.vitrine.following()",
    )
    .unwrap();
    run = run_id(&p);
    println!(
        "after the kill: {} · engine {}",
        status(s),
        engine(s)["stopped"]
    );
    s.upload("#file-input", &[image]).unwrap();
    let p = wait_result(
        s,
        "the next photo after the kill",
        run,
        "p.image === 'fixture.png'",
    )
    .unwrap();
    let cli = match crop_of(&p) {
        Some(c) => cli_predict_with(vit_s, image, &["--crop", &c]),
        None => expected.clone(),
    };
    assert_same_answer(&p, &cli, "the ViT-S/16 after its worker was killed");
    assert!(alert(s).is_empty(), "no error after the kill: {}", alert(s));
    assert_eq!(
        predictions(s)["backend"],
        "cpu",
        "the new engine answers on the CPU"
    );
    shots.take(s, "engine-03-after-kill");
}

/// The alert's text when it is shown, else "".
fn alert(s: &Session) -> String {
    s.eval(
        "const a = document.getElementById('alert');
         return a.hidden ? '' : document.getElementById('alert-text').textContent;",
        json!([]),
    )
    .unwrap()
    .as_str()
    .unwrap_or("")
    .to_string()
}
