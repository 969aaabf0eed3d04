//! A model from the Hugging Face hub in headless Chromium, against a stand-in hub
//! (`tests/support/hub.rs`) serving the committed fixture repo: a DeiT-Ti of ImageNet's
//! geometry (224 px, 196 patches, 1000 classes) with narrow widths.
//!
//! In one session, on the CPU: the hub group lists the ready models with their download size
//! and top-1; a model named in the field is fetched with its progress shown (the stand-in
//! sends the weights slowly), gives `trainer predict --model hf-hub:...`'s top-5 and
//! probabilities within 1e-5 and `trainer explain`'s map for a patch; is kept, so that after a
//! reload it loads with no request to the hub at all; teaches two classes on it; refuses bad
//! downloads (a typo'd name, which the hub answers 401 without a code, gated, HTML for
//! config.json, wrong SHA-256, a cut connection, the hub rate-limiting or down) in one message
//! each, the hub's refusals with the advice `trainer predict` gives for the same answer,
//! keeping the current model and keeping nothing; and "forget downloaded models" frees what
//! was kept. Screenshots: the hub field and list, the download, the 224 px explorer, a
//! refused download, the typo's message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::hub_support::{Fault, HubServer, Repo};
use super::teach::{CLASSES, add_photos, assert_same, classify, name_class, teach, write_photos};
use super::webdriver::{Driver, Session};
use super::{
    Answer, BROWSER, STEP_TIMEOUT, Shots, Tools, assert_same_map, chromium_args, first_result,
    in_browser, patch_100_at_layer_1, probs_of, root, run_id, select_backend, select_model, server,
    tokens_of, tools, top_of, wait_explorer, wait_result, wait_timed,
};

const REPO: &str = "timm/deit_tiny_patch16_224.fb_in1k";
/// The manifest's name for it: the repo's name.
const MODEL: &str = "deit_tiny_patch16_224.fb_in1k";

fn fixture_repo() -> Repo {
    Repo::from_folder(&root().join("tests/fixtures/hub").join(REPO))
}

fn repos() -> BTreeMap<String, Repo> {
    let faulty = |fault| {
        let mut repo = fixture_repo();
        repo.fault = fault;
        repo
    };
    let mut html = fixture_repo();
    html.files.insert(
        "config.json".into(),
        b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Sign in</body></html>"
            .to_vec(),
    );
    [
        (REPO, faulty(Fault::Slow)),
        ("timm/gated", faulty(Fault::Gated("hf_token"))),
        ("timm/html", Repo::with_files(html.files)),
        ("timm/wrong-sha", faulty(Fault::WrongSha)),
        ("timm/cut", faulty(Fault::CutHalfway)),
        ("timm/down", faulty(Fault::Down)),
        ("timm/limited", faulty(Fault::RateLimited(5))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `trainer ARGS --device cpu --model hf-hub:REPO` against the stand-in hub, with a cache of
/// its own and no token.
pub(super) fn hub_command(hub: &HubServer, home: &Path, args: &[&str], repo: &str) -> Command {
    let mut c = super::trainer();
    c.args(args)
        .args(["--device", "cpu", "--model"])
        .arg(format!("hf-hub:{repo}"))
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN");
    c
}

/// The trainer's JSON answer for the fixture repo.
fn trainer(hub: &HubServer, home: &Path, args: &[&str], image: &Path) -> Value {
    let out = hub_command(hub, home, args, REPO)
        .arg("--json")
        .arg(image)
        .output()
        .expect("running the trainer");
    assert!(
        out.status.success(),
        "trainer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().next().unwrap_or("")).expect("the trainer's JSON")
}

/// What `trainer predict` says of `repo` on the stand-in hub, without a token: the advice,
/// up to where the trainer's and the page's differ (what to do with a token, and which
/// copies still serve).
fn trainer_advice(hub: &HubServer, home: &Path, repo: &str) -> String {
    let out = hub_command(hub, home, &["predict"], repo)
        .arg(root().join("tests/fixtures/photos/chelsea.png"))
        .output()
        .expect("running the trainer");
    assert!(!out.status.success(), "the trainer refuses {repo}");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.trim().trim_start_matches("error: ");
    let end = [line.find(';'), line.find(", then")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(line.len());
    line[..end].to_string()
}

fn hub_state(s: &Session) -> Value {
    let raw = s.eval("return window.vitrine.hub();", json!([])).unwrap();
    serde_json::from_str(raw.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Types `name` into the hub field and presses Fetch.
fn fetch_by_name(s: &Session, name: &str) {
    s.eval(
        "const f = document.getElementById('hub-name'); f.value = arguments[0];
         document.getElementById('hub-form').requestSubmit();",
        json!([name]),
    )
    .unwrap();
}

/// The URLs the page keeps in its Cache API store.
fn kept_urls(s: &Session) -> Vec<String> {
    s.eval(
        "window.__kept = null;
         caches.open('vitrine-hub-v1').then(c => c.keys())
           .then(k => { window.__kept = k.map(r => r.url); });",
        json!([]),
    )
    .unwrap();
    let v = s
        .wait_for(
            "the kept files",
            "return window.__kept;",
            Duration::from_secs(30),
        )
        .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn page_fetches_a_hub_model_keeps_it_and_teaches_on_it() {
    let work = tempfile::tempdir().expect("temp dir");
    let hub = HubServer::start(repos());
    in_browser(
        "hub-failure",
        |args| args,
        || eprintln!("--- hub requests ---\n{:#?}", hub.requests()),
        |s, shots, base| steps(s, shots, base, &hub, work.path()),
    );
}

fn steps(s: &Session, shots: &Shots, base: &str, hub: &HubServer, work: &Path) {
    let page = format!("{base}/?hub={}", hub.url);
    let first = first_result(s, &page, "hub session");
    let base_model = first.prediction["model"].as_str().unwrap().to_string();
    select_backend(s, "cpu");
    let mut run = run_id(&wait_result(s, "the CPU's answer", 0, "p.backend === 'cpu'").unwrap());

    // The hub group: the ready models, each with its size and top-1.
    let listed = s
        .eval(
            "return [...document.querySelectorAll('#model-select optgroup')]
               .filter(g => g.label.startsWith('From the Hugging Face hub'))
               .flatMap(g => [...g.querySelectorAll('option')].map(o => [o.value, o.text]));",
            json!([]),
        )
        .unwrap();
    let listed = listed.as_array().expect("the hub group");
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("www/models/index.json")).unwrap(),
    )
    .unwrap();
    let entries = index["hub"]["models"]
        .as_array()
        .expect("index.json's hub list");
    assert_eq!(
        listed.len(),
        entries.len(),
        "every ready hub model: {listed:?}"
    );
    for (entry, listed) in entries.iter().zip(listed) {
        let (value, text) = (listed[0].as_str().unwrap(), listed[1].as_str().unwrap());
        assert_eq!(value, format!("hf-hub:{}", entry["repo"].as_str().unwrap()));
        assert!(text.contains(" MB"), "its download size: {text}");
        // Its top-1, or what stands for it (a model without classes has none).
        match (entry["top1"].as_f64(), entry["note"].as_str()) {
            (Some(_), _) => assert!(text.contains("% top-1"), "{text}"),
            (None, Some(note)) => assert!(text.contains(note), "{text}"),
            (None, None) => panic!("{value}: neither a top-1 nor a note in index.json"),
        }
    }
    assert_eq!(hub_state(s)["endpoint"], hub.url.as_str());
    s.eval(
        "document.getElementById('hub-form').scrollIntoView({block: 'center'});",
        json!([]),
    )
    .unwrap();
    shots.take(s, "hub-01-field");

    // Fetched by name, with its progress on screen while the weights arrive.
    fetch_by_name(s, REPO);
    let seen = s
        .wait_for(
            "the download's progress bar",
            "const p = document.getElementById('progress');
             const v = Number(p.getAttribute('aria-valuenow'));
             return !p.hidden && v > 0 && v < 100 ? v : null;",
            STEP_TIMEOUT,
        )
        .unwrap();
    println!("progress seen at {seen}%");
    shots.take(s, "hub-02-download");
    let p = wait_result(
        s,
        "the hub model's answer",
        run,
        &format!("p.model === '{MODEL}'"),
    )
    .unwrap();
    run = run_id(&p);
    let download = &hub_state(s)["download"];
    assert_eq!(download["received"], download["total"], "{download}");
    assert!(
        download["updates"].as_u64().unwrap_or(0) >= 10,
        "the bar moved as the bytes came: {download}"
    );
    let key = format!("hf-hub:{REPO}");
    let value = s
        .eval("return window.vitrine.modelKey();", json!([]))
        .unwrap();
    assert_eq!(value, key.as_str());
    assert_eq!(probs_of(&p).len(), 1000, "ImageNet's 1000 classes");

    // Its top-5 and a patch's map are the trainer's, on a real photo.
    let home = work.join("hf-home");
    let photo = root().join("tests/fixtures/photos/chelsea.png");
    let cli = trainer(hub, &home, &["predict"], &photo);
    let cli: Answer = (top_of(&cli), probs_of(&cli));
    let p = classify(s, &photo, MODEL, run);
    run = run_id(&p);
    assert_same(&p, &cli, "the hub model on chelsea.png");
    let names: Vec<String> = top_of(&p).into_iter().map(|t| t.0).collect();
    println!("top-5 names: {names:?}");
    assert!(
        names.iter().all(|n| !n.starts_with("class ")),
        "ImageNet's names, not indices: {names:?}"
    );
    let explain = trainer(
        hub,
        &home,
        &["explain", "--layer", "1", "--token", "100"],
        &photo,
    );
    let cli_map = tokens_of(&explain);
    let e = wait_explorer(
        s,
        "the hub model's explorer",
        run,
        "e.tokens.length === 197",
    );
    assert_eq!(e["grid"], 14);
    patch_100_at_layer_1(s, &e);
    let e = wait_explorer(
        s,
        "a patch of the hub model",
        run,
        "e.selected === 100 && e.layer === 1",
    );
    assert_same_map(&e, &cli_map, "hub model, patch 100, layer 1");
    shots.take(s, "hub-03-explorer-224");
    // The second class's relevance, from a click on its button.
    let second = p["top"][1]["index"].as_u64().unwrap();
    s.eval(
        "document.querySelector(`#pred-list button[data-class='${arguments[0]}']`).click();",
        json!([second]),
    )
    .unwrap();
    let e = wait_explorer(
        s,
        "the second class's relevance",
        run,
        &format!("e.method === 'relevance' && e.class === {second}"),
    );
    let class = second.to_string();
    let relevance = trainer(
        hub,
        &home,
        &["explain", "--method", "relevance", "--class", &class],
        &photo,
    );
    let cli_relevance = tokens_of(&relevance);
    assert_same_map(
        &e,
        &cli_relevance,
        "hub model, relevance of the second class",
    );
    // A photo of nothing: no class fits, as for any model.
    let grey = work.join("grey.png");
    image::RgbImage::from_pixel(300, 200, image::Rgb([128, 128, 128]))
        .save(&grey)
        .unwrap();
    let p = classify(s, &grey, MODEL, run);
    assert_eq!(p["fits"], false, "a flat grey photo fits no class: {p}");

    // Bad downloads: one message each; the model stays; nothing is kept.
    let kept_before = kept_urls(s);
    assert_eq!(
        kept_before.len(),
        3,
        "config, revision and weights: {kept_before:?}"
    );
    for (name, says) in [
        ("timm/no-such-model", "was not found"),
        ("timm/gated", "is gated"),
        ("timm/html", "HTML page"),
        ("timm/wrong-sha", "SHA-256"),
        ("timm/cut", "broke off"),
        ("timm/down", "down or overloaded (HTTP 503)"),
        ("timm/limited", "HTTP 429"),
        ("not a name", "not a hub model name"),
    ] {
        fetch_by_name(s, name);
        // The refusal of this name, not the one before it.
        let v = s
            .wait_for(
                &format!("the refusal of {name}"),
                &format!(
                    "const v = window.vitrine;
                     return v.state() === 'error' && v.error().includes({name:?}) ? v.error() : null;"
                ),
                STEP_TIMEOUT,
            )
            .unwrap();
        let message = v.as_str().unwrap_or("");
        println!("{name}: {message}");
        assert!(message.contains(says), "{name}: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
        // The hub's own refusals: the trainer's advice for the same answer.
        if [
            "timm/no-such-model",
            "timm/gated",
            "timm/down",
            "timm/limited",
        ]
        .contains(&name)
        {
            let advice = trainer_advice(hub, &work.join("refusals"), name);
            assert!(
                message.contains(&advice),
                "{name}: the page says '{message}', the trainer '{advice}'"
            );
        }
        let model = s.eval("return window.vitrine.model();", json!([])).unwrap();
        assert_eq!(model, MODEL, "the current model stays after {name}");
        match name {
            "timm/wrong-sha" => shots.take(s, "hub-04-refused"),
            "timm/no-such-model" => shots.take(s, "hub-05-typo"),
            _ => {}
        }
        s.click("#alert-close").unwrap();
    }
    assert_eq!(
        kept_urls(s),
        kept_before,
        "nothing of a bad download is kept"
    );

    // After a reload it is listed as kept and loads without asking the hub anything.
    let asked = hub.requests().len();
    first_result(s, &page, "hub session, reloaded");
    select_backend(s, "cpu");
    let p = wait_result(s, "the CPU's answer", 0, "p.backend === 'cpu'").unwrap();
    run = run_id(&p);
    assert!(
        hub_state(s)["kept"]
            .as_array()
            .unwrap()
            .contains(&json!(key))
    );
    let start = std::time::Instant::now();
    select_model(s, &key);
    let p = wait_result(
        s,
        "the kept hub model",
        run,
        &format!("p.model === '{MODEL}'"),
    )
    .unwrap();
    run = run_id(&p);
    println!(
        "the kept hub model answered {:.2} s after it was picked (WebDriver's polling included)",
        start.elapsed().as_secs_f64()
    );
    let later = &hub.requests()[asked..];
    assert!(later.is_empty(), "the reload asked the hub: {later:?}");

    // Teaching on it: the taught model is built on the hub model's features.
    let photos = work.join("photos");
    s.eval(
        "document.getElementById('teach-card').scrollIntoView();",
        json!([]),
    )
    .unwrap();
    for (c, name) in CLASSES.iter().take(2).enumerate() {
        add_photos(s, c, &write_photos(&photos, c, 0..6), 6);
        name_class(s, c, name);
    }
    let t = teach(s, None);
    println!(
        "taught 2 classes x 6 photos on the hub model in {:.2} s; held out: {}",
        t["ms"]["total"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        t["held_out"]
    );
    let fresh: PathBuf = write_photos(&photos.join("fresh"), 0, 100..101).remove(0);
    let taught = t["model"].as_str().unwrap().to_string();
    let p = classify(s, &fresh, &taught, run);
    let labels: Vec<String> = top_of(&p).into_iter().map(|t| t.0).collect();
    assert_eq!(
        labels.len(),
        2,
        "the taught model knows two classes: {labels:?}"
    );
    let pair = s
        .eval("return window.vitrine.taughtPair();", json!([]))
        .unwrap();
    let pair: Value = serde_json::from_str(pair.as_str().unwrap()).unwrap();
    let manifest: Value = serde_json::from_str(pair["manifest"].as_str().unwrap()).unwrap();
    assert_eq!(
        manifest["training"]["base"], MODEL,
        "taught on the hub model"
    );
    assert_eq!(manifest["config"]["image_size"], 224);
    assert_ne!(base_model, MODEL);

    // Forgetting frees what was kept, and says how much.
    s.click("#hub-forget").unwrap();
    let status = s
        .wait_for(
            "forgetting",
            "const t = document.getElementById('status').textContent;
             return t.includes('freed') ? t : null;",
            STEP_TIMEOUT,
        )
        .unwrap();
    println!("forget: {status}");
    assert!(kept_urls(s).is_empty(), "everything forgotten");
    assert_eq!(hub_state(s)["kept"], json!([]));
}

/// A benchmark, not a check: `bench/page-hub-vit-ti16` writes timm's ViT-Ti/16 (random weights,
/// full size) as a hub repo and runs this with `VITRINE_BENCH_HUB` (its folder). The page
/// fetches it from a stand-in hub at loopback speed, then reloads and loads it kept; both times
/// to the first result are printed, three times over.
#[test]
#[ignore = "a benchmark: bench/page-hub-vit-ti16 runs it"]
fn page_times_a_hub_model() {
    let Some(folder) = std::env::var_os("VITRINE_BENCH_HUB") else {
        panic!("set VITRINE_BENCH_HUB to a hub repo folder (bench/page-hub-vit-ti16 does)");
    };
    let _one_browser_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let Tools {
        dist,
        chromium,
        chromedriver,
    } = tools();
    let repo = "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k";
    let hub = HubServer::start(BTreeMap::from([(
        repo.to_string(),
        Repo::from_folder(Path::new(&folder)),
    )]));
    let base = server::serve(&dist);
    let page = format!("{base}/?hub={}", hub.url);
    let driver = Driver::start(&chromedriver).expect("chromedriver");
    for round in 1..=3 {
        // A new profile each round: an empty Cache API store.
        let profile = tempfile::tempdir().expect("profile dir");
        let s = driver
            .session(&chromium, &chromium_args(profile.path()))
            .expect("a Chromium session");
        let mut times = Vec::new();
        for visit in ["first visit (download)", "after a reload (kept)"] {
            first_result(&s, &page, visit);
            // Not while SwiftShader times WebGPU in the background: it takes both cores.
            wait_timed(&s, visit);
            select_backend(&s, "cpu");
            let run = run_id(&wait_result(&s, "the CPU", 0, "p.backend === 'cpu'").unwrap());
            let start = std::time::Instant::now();
            select_model(&s, &format!("hf-hub:{repo}"));
            let p = wait_result(
                &s,
                visit,
                run,
                "p.model === 'vit_tiny_patch16_224.augreg_in21k_ft_in1k'",
            )
            .unwrap();
            times.push(format!(
                "{visit}: first result {:.2} s after the pick (inference {:.0} ms; the page's steps, ms: {})",
                start.elapsed().as_secs_f64(),
                p["ms"].as_f64().unwrap_or(f64::NAN),
                hub_state(&s)["steps"]
            ));
        }
        println!("round {round}: {}", times.join("; "));
    }
}
