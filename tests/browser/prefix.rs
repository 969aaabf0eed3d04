//! Timm's ViTs with other tokens in front of the patches than one class token, in headless
//! Chromium against the stand-in hub (`tests/support/hub.rs`) serving the committed fixture
//! repos (`tests/fixtures/make_hub_reference.py`: timm's configs and layouts at small random
//! weights): DINOv2 with 4 registers and no classifier, from the page's hub list, run at 224 px
//! as its entry asks (its position embeddings resampled from 518's), and a ViT without a class
//! token, fetched by name.
//!
//! The explorer's strip shows every prefix token by its kind and its maps are `trainer
//! explain`'s, token for token (rollout from the class token, a register's attention, and
//! rollout from the mean of the patches where there is no class token); the caption says what
//! the registers hold and where a model without a class token starts; a model without classes
//! says so instead of a top-5, and the samples are photos, not CIFAR's 32 px images; classes
//! taught on DINOv2's features keep its registers.
//! Screenshots: `prefix-01-registers.png`, `prefix-02-sequence.png` (the animation's end),
//! `prefix-03-no-class-token.png`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::hub::hub_command;
use super::hub_support::{HubServer, Repo};
use super::teach::{CLASSES, add_photos, classify, name_class, teach, write_photos};
use super::webdriver::Session;
use super::{
    Shots, assert_same_map, click_explorer, explain_tokens, first_result, in_browser, probs_of,
    root, run_id, select_backend, select_model, wait_explorer, wait_result,
};

/// DINOv2-S/14 with 4 registers and no classifier; the page's hub list runs it at 224 px.
const DINO: &str = "timm/vit_small_patch14_reg4_dinov2.lvd142m";
/// A ViT without a class token (mean pooling); fetched by name, at its own 256 px.
const GAP: &str = "timm/vit_medium_patch16_gap_256.sw_in12k_ft_in1k";

fn repos() -> BTreeMap<String, Repo> {
    [DINO, GAP]
        .into_iter()
        .map(|r| {
            let repo = Repo::from_folder(&root().join("tests/fixtures/hub").join(r));
            (r.to_string(), repo)
        })
        .collect()
}

/// The manifest's name for a hub repo: the repo's name.
fn model_name(repo: &str) -> &str {
    repo.rsplit('/').next().unwrap_or(repo)
}

/// `trainer explain --json` of `repo` from the stand-in hub on `image`: every token's value.
fn cli_explain(hub: &HubServer, home: &Path, repo: &str, image: &Path, args: &[&str]) -> Vec<f64> {
    explain_tokens(
        hub_command(hub, home, &["explain", "--json"], repo),
        image,
        args,
    )
}

fn text_of(s: &Session, id: &str) -> String {
    s.eval(
        "return document.getElementById(arguments[0]).textContent;",
        json!([id]),
    )
    .unwrap()
    .as_str()
    .unwrap_or("")
    .to_string()
}

#[test]
fn page_shows_the_prefix_tokens_of_timms_other_vits() {
    let work = tempfile::tempdir().expect("temp dir");
    let hub = HubServer::start(repos());
    in_browser(
        "prefix-failure",
        |args| args,
        || eprintln!("--- hub requests ---\n{:#?}", hub.requests()),
        |s, shots, base| steps(s, shots, base, &hub, work.path()),
    );
}

fn steps(s: &Session, shots: &Shots, base: &str, hub: &HubServer, work: &Path) {
    let page = format!("{base}/?hub={}", hub.url);
    first_result(s, &page, "prefix session");
    select_backend(s, "cpu");
    let mut run = run_id(&wait_result(s, "the CPU's answer", 0, "p.backend === 'cpu'").unwrap());
    let home = work.join("hf-home");
    let photo = root().join("tests/fixtures/photos/chelsea.png");

    // DINOv2 with registers, from the hub list: at 224 px, as its entry says.
    let dino = model_name(DINO);
    select_model(s, &format!("hf-hub:{DINO}"));
    let p = wait_result(s, "DINOv2's answer", run, &format!("p.model === '{dino}'")).unwrap();
    run = run_id(&p);
    assert!(
        probs_of(&p).is_empty(),
        "a model without classes answers no class: {}",
        p["top"]
    );
    let verdict = text_of(s, "verdict");
    assert!(verdict.contains("has no classes"), "{verdict}");
    let samples = s
        .eval(
            "return [...document.querySelectorAll('#samples button.sample')].map(b => b.dataset.name);",
            json!([]),
        )
        .unwrap();
    let samples: Vec<&str> = samples
        .as_array()
        .expect("sample buttons")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !samples.is_empty() && samples.iter().all(|n| n.starts_with("photos/")),
        "a 224 px model is offered photos: {samples:?}"
    );

    let p = classify(s, &photo, dino, run);
    run = run_id(&p);
    // 224 / 14 = 16: 256 patches after the class token and 4 registers.
    let e = wait_explorer(s, "DINOv2's rollout", run, "e.tokens.length === 261");
    assert_eq!(e["grid"], 16);
    assert_eq!(
        e["prefix"],
        json!(["class", "register", "register", "register", "register"])
    );
    assert_eq!(
        (e["method"].as_str(), e["selected"].as_u64()),
        (Some("rollout"), Some(0))
    );
    let at_224 = ["--image-size", "224"];
    let cli = cli_explain(
        hub,
        &home,
        DINO,
        &photo,
        &[&at_224[..], &["--method", "rollout", "--token", "cls"]].concat(),
    );
    assert_same_map(&e, &cli, "DINOv2, rollout from the class token");

    // Register 2's slot in the strip, at layer 1.
    let strip = &e["strip"];
    let (strip_y, pitch) = (strip[0].as_f64().unwrap(), strip[1].as_f64().unwrap());
    click_explorer(s, 2.5 * pitch, strip_y + pitch / 2.0);
    s.eval(
        "const l = document.getElementById('explore-layer'); l.value = 1;
         l.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .unwrap();
    let e = wait_explorer(
        s,
        "register 2 at layer 1",
        run,
        "e.selected === 2 && e.layer === 1",
    );
    let cli = cli_explain(
        hub,
        &home,
        DINO,
        &photo,
        &[&at_224[..], &["--layer", "1", "--token", "reg2"]].concat(),
    );
    assert_same_map(&e, &cli, "DINOv2, register 2 at layer 1");
    let caption = text_of(s, "explore-what");
    assert!(
        caption.contains("where register 2 attends") && caption.contains("The 4 registers hold"),
        "{caption}"
    );
    println!("caption: {caption}");
    shots.take(s, "prefix-01-registers");
    // The animation's end: the class token and the registers in front of the patches.
    s.eval(
        "document.getElementById('replay').click();
         document.getElementById('stage').scrollIntoView({block: 'start'});",
        json!([]),
    )
    .unwrap();
    s.wait_for(
        "the animation's end",
        "const a = JSON.parse(window.vitrine.animation() || 'null'); return a && a.done ? 1 : null;",
        super::STEP_TIMEOUT,
    )
    .unwrap();
    shots.take(s, "prefix-02-sequence");

    // Taught two classes on DINOv2's features: the taught model keeps its base's registers.
    s.eval(
        "document.getElementById('teach-card').scrollIntoView();",
        json!([]),
    )
    .unwrap();
    let photos = work.join("photos");
    for (c, name) in CLASSES.iter().take(2).enumerate() {
        add_photos(s, c, &write_photos(&photos, c, 0..6), 6);
        name_class(s, c, name);
    }
    let t = teach(s, None);
    println!(
        "taught 2 classes x 6 photos on DINOv2 in {:.2} s; held out: {}",
        t["ms"]["total"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        t["held_out"]
    );
    let taught = t["model"].as_str().unwrap().to_string();
    let fresh = write_photos(&photos.join("fresh"), 0, 100..101).remove(0);
    let p = classify(s, &fresh, &taught, run);
    run = run_id(&p);
    assert_eq!(
        probs_of(&p).len(),
        2,
        "the taught model knows its two classes"
    );
    let e = wait_explorer(s, "the taught model's map", run, "e.tokens.length === 261");
    assert_eq!(
        e["prefix"],
        json!(["class", "register", "register", "register", "register"]),
        "taught on DINOv2, it keeps DINOv2's class token and registers"
    );
    // Back to the photo the CLI is asked about.
    run = run_id(&classify(s, &photo, &taught, run));

    // A ViT without a class token: the explorer starts from the mean of its patches.
    let gap = model_name(GAP);
    s.eval(
        "const f = document.getElementById('hub-name'); f.value = arguments[0];
         document.getElementById('hub-form').requestSubmit();",
        json!([GAP]),
    )
    .unwrap();
    let p = wait_result(
        s,
        "the ViT without a class token",
        run,
        &format!("p.model === '{gap}'"),
    )
    .unwrap();
    run = run_id(&p);
    assert!(!probs_of(&p).is_empty(), "it has classes");
    // The question asked before (token 2, layer 1) stays, on a patch now; Home goes back to
    // where the model starts, and the slider's last step is rollout.
    s.eval(
        "const c = document.getElementById('explore');
         c.dispatchEvent(new KeyboardEvent('keydown', {key: 'Home', bubbles: true}));
         const l = document.getElementById('explore-layer'); l.value = l.max;
         l.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .unwrap();
    let e = wait_explorer(
        s,
        "its rollout from the mean of the patches",
        run,
        "e.method === 'rollout' && e.selected === null",
    );
    assert_eq!(e["prefix"], json!([]));
    assert_eq!(e["token"], "patches");
    let cli = cli_explain(
        hub,
        &home,
        GAP,
        &photo,
        &["--method", "rollout", "--token", "patches"],
    );
    assert_same_map(
        &e,
        &cli,
        "no class token, rollout from the mean of the patches",
    );
    let caption = text_of(s, "explore-what");
    assert!(
        caption.contains("the model has no class token"),
        "{caption}"
    );
    println!("caption: {caption}");
    shots.take(s, "prefix-03-no-class-token");
}
