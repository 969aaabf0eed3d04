//! The page in a real headless Chromium, compared with `trainer predict --json`.
//!
//! Needs the built page in dist/ (`scripts/build-page`), Chromium and chromedriver
//! (`scripts/install-web-tools`). Run with
//! `cargo test --workspace --features trainer/wgpu --locked --test browser -- --nocapture`
//! to see timings. Screenshots land in target/browser-screenshots/.
//!
//! What it checks, in one browser session (starting Chromium and compiling WebGPU kernels on a
//! software adapter cost seconds, so the steps share them):
//! 1. the page loads the default model and shows its first result from the CPU while WebGPU
//!    is still being timed (the time to it is printed), says which classes it knows, and
//!    logs no error in the console (its icon included);
//! 2. an uploaded image gets the same top-5 and probabilities (within 1e-3) as the CLI, on
//!    WebGPU and on the CPU;
//! 3. the square the model sees, dragged, resized and moved by keys on a wide photo, gives
//!    what `trainer predict --crop` gives for the square the page reports, on both backends;
//! 4. a photo of nothing it knows (flat grey, noise) says no class fits; a JPEG cut off
//!    mid-scan is said to be damaged, with the CLI's answer for the part that could be read;
//! 5. the patch animation changes the canvas over time;
//! 6. a corrupt file shows a message and keeps the last result;
//! 7. a model pair loaded from disk replaces the model and matches the CLI; a mismatched pair
//!    is refused; switching back to the published model works;
//! 8. the page served by `scripts/serve` lists a model published while it runs, after a
//!    reload;
//! 9. the page served without cross-origin isolation (a plain static host), in a Chromium
//!    without WebGPU: its engine runs on one thread (the page says so), answers as fast, and
//!    its top-5, explorer maps and relevance are the CLI's, as with threads.
//! 10. the token explorer's maps (a clicked patch at a chosen layer and head, the next patch by
//!     arrow key, reversed, rollout from the class token picked in the strip, and the
//!     relevance of the second class after a click on its bar, which is then marked, pressed,
//!     until a patch is clicked) are `trainer explain --json`'s within 1e-5, on WebGPU and on
//!     the CPU; on the CPU, the map follows the pointer over a patch and goes back to the
//!     clicked one when it leaves.
//! 11. a model of ImageNet's geometry (224 px, patch 16, 197 tokens; the committed fixture)
//!     loads from disk with the CLI's top-5 and explorer maps on WebGPU and on the CPU, and is
//!     photographed, its animation once every patch has reached its slot.
//!
//! Every other step runs cross-origin isolated, as `scripts/serve` serves the page: its engine
//! is the threaded build, in a Web Worker, on every core.
//!
//! `page_autotunes_webgpu_remembers_it_and_survives_a_refused_shader`
//! (tests/browser/autotune.rs) checks WebGPU's autotune in a session of its own.
//!
//! `page_teaches_new_classes_in_headless_chromium` (tests/browser/teach.rs) checks the Teach
//! panel in a session of its own, `page_fetches_a_hub_model_keeps_it_and_teaches_on_it`
//! (tests/browser/hub.rs) a model from a stand-in Hugging Face hub in another, and
//! `page_goes_on_while_its_engine_works_and_outlives_it` (tests/browser/engine.rs) the engine's
//! worker: the page going on during a long pass, and a new engine after one dies.

#[path = "browser/autotune.rs"]
mod autotune;
#[path = "support/close.rs"]
mod close;
#[path = "browser/engine.rs"]
mod engine;
#[path = "browser/hub.rs"]
mod hub;
#[path = "support/hub.rs"]
mod hub_support;
#[path = "browser/prefix.rs"]
mod prefix;
#[path = "browser/server.rs"]
mod server;
#[path = "browser/teach.rs"]
mod teach;
#[path = "support/trainer.rs"]
mod trainer_bin;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use close::{Tolerance, assert_close};
use serde_json::{Value, json};
use trainer_bin::{succeeded, trainer};
use webdriver::{Driver, Session};

/// Loading includes WebGPU kernel compilation on SwiftShader: seconds, not milliseconds.
const LOAD_TIMEOUT: Duration = Duration::from_secs(240);
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
const TOLERANCE: f64 = 1e-3;
/// One Chromium at a time: the tests of this file share 2 cores with software WebGPU.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the trainer crate sits in the workspace")
        .to_path_buf()
}

fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

type Answer = (Vec<(String, u64, f64)>, Vec<f64>);

/// `trainer predict --json` on one image: (top-5 as (label, index, prob), all probs).
fn cli_predict(model: &Path, image: &Path) -> Answer {
    cli_predict_with(model, image, &[])
}

/// The same with more flags (`--crop x,y,size`).
fn cli_predict_with(model: &Path, image: &Path, extra: &[&str]) -> Answer {
    let v = cli_json(model, image, extra);
    (top_of(&v), probs_of(&v))
}

/// `trainer predict --json` as parsed JSON, for the fields beyond the probabilities.
fn cli_json(model: &Path, image: &Path, extra: &[&str]) -> Value {
    let out = succeeded(
        trainer()
            .args(["predict", "--json", "--device", "cpu", "--model"])
            .arg(model)
            .args(extra)
            .arg(image),
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().next().unwrap_or("")).expect("predict JSON")
}

fn top_of(v: &Value) -> Vec<(String, u64, f64)> {
    v["top"]
        .as_array()
        .expect("a top list")
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap_or("").to_string(),
                r["index"].as_u64().unwrap_or(u64::MAX),
                r["prob"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn probs_of(v: &Value) -> Vec<f64> {
    v["probs"]
        .as_array()
        .expect("a probs list")
        .iter()
        .map(|p| p.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn assert_same_answer(page: &Value, cli: &Answer, what: &str) {
    let (top, probs) = (top_of(page), probs_of(page));
    let order = |t: &[(String, u64, f64)]| t.iter().map(|r| r.1).collect::<Vec<_>>();
    assert_eq!(
        order(&top),
        order(&cli.0),
        "{what}: top-5 order differs from trainer predict\n page: {top:?}\n cli:  {:?}",
        cli.0
    );
    for (p, c) in top.iter().zip(&cli.0) {
        assert_eq!(p.0, c.0, "{what}: label of class {}", c.1);
    }
    assert_eq!(probs.len(), cli.1.len(), "{what}: number of classes");
    let worst = assert_close(
        &format!("{what}: the page's probabilities against trainer predict's"),
        &cli.1,
        &probs,
        Tolerance::abs(TOLERANCE),
    );
    println!("{what}: same top-5 as trainer predict, max |Δp| = {worst:.1e}");
}

/// A photo-like test image: gradients and shapes, wider than tall so the crop matters.
fn write_fixture_image(path: &Path) {
    let img = image::RgbImage::from_fn(150, 100, |x, y| {
        let (fx, fy) = (x as f32 / 150.0, y as f32 / 100.0);
        let in_disc = (x as f32 - 80.0).powi(2) + (y as f32 - 45.0).powi(2) < 500.0;
        if in_disc {
            image::Rgb([240, 200, 40])
        } else if y > 70 {
            image::Rgb([30, (80.0 + 60.0 * fx) as u8, 140])
        } else {
            image::Rgb([(200.0 * fx) as u8, (120.0 + 100.0 * fy) as u8, 220])
        }
    });
    img.save(path).expect("writing the fixture image");
}

/// The second model: timm's tiny fixture imported by the CLI, or random weights if the
/// fixture is absent (the comparison holds for any weights).
fn make_second_model(dir: &Path) -> PathBuf {
    let fixture = root().join("tests/fixtures/timm_tiny_token.safetensors");
    if fixture.is_file() {
        succeeded(
            trainer()
                .args(["import-timm"])
                .arg(&fixture)
                .args(["--heads", "2", "--name", "tiny", "--out"])
                .arg(dir),
        );
    } else {
        let config = vit::VitConfig::new()
            .with_image_size(16)
            .with_patch_size(4)
            .with_num_classes(5)
            .with_embed_dim(32)
            .with_depth(2)
            .with_num_heads(2);
        let model = config
            .init(&burn::prelude::Device::flex())
            .expect("tiny model");
        let labels = (0..5).map(|i| format!("class {i}")).collect();
        let mut manifest =
            vit::weights::Manifest::new("tiny", config, labels, vit::Normalization::INCEPTION);
        vit::weights::save_pair(dir, &mut manifest, &model).expect("saving the tiny model");
    }
    dir.join("tiny.json")
}

/// Files the page must refuse, each with a word its message must contain.
fn write_bad_files(dir: &Path, good: &Path) -> Vec<(PathBuf, &'static str)> {
    let corrupt = dir.join("corrupt.png");
    let mut bytes = std::fs::read(good).unwrap();
    bytes.truncate(60); // a PNG header, then nothing
    std::fs::write(&corrupt, bytes).unwrap();

    // A valid PNG header announcing 20000 x 20000 pixels: a decompression bomb's first bytes.
    let huge = dir.join("huge.png");
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
        out
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IEND", &[]));
    std::fs::write(&huge, png).unwrap();

    let text = dir.join("notes.txt");
    std::fs::write(&text, "these are not pixels").unwrap();
    vec![
        (corrupt, "corrupt"),
        (huge, "too large"),
        (text, "not a supported image"),
    ]
}

struct Shots {
    dir: PathBuf,
}

impl Shots {
    fn take(&self, s: &Session, name: &str) {
        match s.full_screenshot().or_else(|_| s.screenshot()) {
            Ok(png) => {
                let path = self.dir.join(format!("{name}.png"));
                std::fs::write(&path, png).expect("writing a screenshot");
                println!("screenshot: {}", path.display());
            }
            Err(e) => println!("screenshot {name} failed: {e}"),
        }
    }
}

/// The page's status line.
fn status(s: &Session) -> String {
    s.eval(
        "return document.getElementById('status').textContent;",
        json!([]),
    )
    .unwrap()
    .as_str()
    .unwrap_or("")
    .to_string()
}

fn predictions(s: &Session) -> Value {
    let text = s
        .eval("return window.vitrine.predictions();", json!([]))
        .expect("reading predictions");
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Picks `backend` in the page's backend select, as a person would; the page then runs again.
fn select_backend(s: &Session, backend: &str) {
    pick(s, "backend-select", backend);
}

/// Picks the model whose select value is `key`, as a person would.
fn select_model(s: &Session, key: &str) {
    pick(s, "model-select", key);
}

fn pick(s: &Session, select: &str, value: &str) {
    s.eval(
        "const sel = document.getElementById(arguments[0]);
         sel.value = arguments[1]; sel.dispatchEvent(new Event('change'));",
        json!([select, value]),
    )
    .unwrap();
}

fn wait_result(s: &Session, what: &str, after_run: u64, check: &str) -> Result<Value, String> {
    let script = format!(
        "const v = window.vitrine; if (!v || v.state() === 'busy') return null;
         if (v.state() === 'error') return 'error: ' + v.error();
         const p = JSON.parse(v.predictions() || 'null');
         if (!p || p.run <= {after_run}) return null;
         return ({check}) ? 'ok' : null;"
    );
    let v = s.wait_for(what, &script, STEP_TIMEOUT)?;
    match v.as_str() {
        Some("ok") => Ok(predictions(s)),
        other => Err(format!("{what}: {}", other.unwrap_or("?"))),
    }
}

/// Picks `backend` and waits for its answer after run `after` that also passes `check`
/// (JavaScript on `p`, the predictions).
fn answer_on(s: &Session, backend: &str, what: &str, after: u64, check: &str) -> Value {
    select_backend(s, backend);
    wait_result(
        s,
        &format!("{what} on {backend}"),
        after,
        &format!("p.backend === '{backend}' && {check}"),
    )
    .unwrap()
}

fn run_id(p: &Value) -> u64 {
    p["run"].as_u64().unwrap_or(0)
}

/// The page's first answer after opening `url`.
struct First {
    prediction: Value,
    timings: Value,
    /// The answer came while WebGPU was still being timed.
    while_timing: bool,
}

/// Waits until the page has timed its backends in the background; returns `timings()`.
fn wait_timed(s: &Session, what: &str) -> Value {
    s.wait_for(
        what,
        "const t = JSON.parse(window.vitrine.timings()); return t.timed_ms ? t : null;",
        LOAD_TIMEOUT,
    )
    .unwrap()
}

/// Opens `url` and waits for the first result; prints the time to it.
fn first_result(s: &Session, url: &str, what: &str) -> First {
    let start = Instant::now();
    s.goto(url).unwrap();
    let seen = s
        .wait_for(
            "the first result",
            "const v = window.vitrine; if (!v) return null;
             if (v.state() === 'error') return 'error: ' + v.error();
             const p = v.predictions(); if (!p) return null;
             return { p, t: v.timings() };",
            LOAD_TIMEOUT,
        )
        .unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(
        !seen.as_str().unwrap_or("").starts_with("error"),
        "the page failed to start: {seen}"
    );
    let parse = |v: &Value| serde_json::from_str::<Value>(v.as_str().unwrap_or("null")).unwrap();
    let (prediction, timings) = (parse(&seen["p"]), parse(&seen["t"]));
    let wasm_ms = s
        .eval(
            "const e = performance.getEntriesByType('resource').find(e => e.name.endsWith('.wasm'));
             return e ? e.duration : null;",
            json!([]),
        )
        .unwrap();
    println!(
        "{what}: first result after {:.0} ms (page's clock, from navigation; {wall:.2} s for the \
         test), on {}; wasm download+compile {wasm_ms} ms; WebGPU init {} ms; timing WebGPU \
         meanwhile: {}",
        timings["first_result_ms"].as_f64().unwrap_or(f64::NAN),
        prediction["backend"],
        timings["webgpu_init_ms"],
        timings["timing"],
    );
    let (first_ms, timed_ms) = (
        timings["first_result_ms"].as_f64(),
        timings["timed_ms"].as_f64(),
    );
    First {
        while_timing: match (first_ms, timed_ms) {
            (Some(f), Some(t)) => f < t,
            (Some(_), None) => true,
            _ => false,
        },
        prediction,
        timings,
    }
}

fn assert_clean_console(s: &Session, when: &str) {
    let errors = s.console_errors();
    assert!(
        errors.is_empty(),
        "the console has errors after {when}:\n{}",
        errors.join("\n")
    );
    println!("console clean after {when}");
}

/// The built page and the browser that the tests drive.
struct Tools {
    dist: PathBuf,
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Finds them, or stops the test saying how to get them.
/// Runs `steps` in a fresh Chromium session (its own profile, Chromium's arguments edited by
/// `flags`) on the page served from dist/ with cross-origin isolation, one browser at a time.
/// On a failure: the screenshot `failure_shot`, the browser's console, whatever `on_failure`
/// prints; then it fails as the steps did.
fn in_browser(
    failure_shot: &str,
    flags: impl FnOnce(Vec<String>) -> Vec<String>,
    on_failure: impl FnOnce(),
    steps: impl FnOnce(&Session, &Shots, &str),
) {
    in_browser_served(
        server::Isolation::Isolated,
        failure_shot,
        flags,
        on_failure,
        steps,
    )
}

/// [`in_browser`], with the page served with or without cross-origin isolation.
fn in_browser_served(
    isolation: server::Isolation,
    failure_shot: &str,
    flags: impl FnOnce(Vec<String>) -> Vec<String>,
    on_failure: impl FnOnce(),
    steps: impl FnOnce(&Session, &Shots, &str),
) {
    let _one_browser_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let Tools {
        dist,
        chromium,
        chromedriver,
    } = tools();
    let shots = Shots {
        dir: root().join("target/browser-screenshots"),
    };
    std::fs::create_dir_all(&shots.dir).unwrap();
    let base = server::serve_with(&dist, isolation);
    let profile = tempfile::tempdir().expect("profile dir");
    let driver = Driver::start(&chromedriver).expect("chromedriver");
    let s = driver
        .session(&chromium, &flags(chromium_args(profile.path())))
        .expect("a Chromium session");
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(&s, &shots, &base)));
    if let Err(e) = outcome {
        shots.take(&s, failure_shot);
        eprintln!("--- browser console ---\n{}\n---", s.console());
        on_failure();
        std::panic::resume_unwind(e);
    }
}

/// Chromium's arguments without WebGPU: a browser that offers no adapter.
fn without_webgpu(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .filter(|a| !a.contains("webgpu"))
        .chain(["--disable-features=WebGPU".to_string()])
        .collect()
}

fn tools() -> Tools {
    let dist = root().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "dist/ has no built page: run scripts/build-page first (scripts/test does)"
    );
    let chromium = find_tool(&["chromium", "chromium-browser", "google-chrome"])
        .expect("Chromium is not installed: run scripts/install-web-tools (apt-get install chromium chromium-driver)");
    let chromedriver = find_tool(&["chromedriver"])
        .expect("chromedriver is not installed: run scripts/install-web-tools (apt-get install chromium-driver)");
    Tools {
        dist,
        chromium,
        chromedriver,
    }
}

#[test]
fn page_matches_the_cli_in_headless_chromium() {
    let _one_browser_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = root();
    let Tools {
        dist,
        chromium,
        chromedriver,
    } = tools();

    let work = tempfile::tempdir().expect("temp dir");
    let image = work.path().join("fixture.png");
    write_fixture_image(&image);
    let bad = write_bad_files(work.path(), &image);
    let tiny = make_second_model(&work.path().join("tiny"));
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dist.join("models/index.json")).unwrap())
            .expect("dist/models/index.json");
    let default_name = index["default"].as_str().unwrap_or("").to_string();
    let default_manifest = index["models"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["name"] == default_name).or(m.first()))
        .and_then(|e| e["manifest"].as_str())
        .expect("a default model in models/index.json")
        .to_string();
    let default_model = dist.join("models").join(&default_manifest);
    let expected_default = cli_predict(&default_model, &image);
    let expected_tiny = cli_predict(&tiny, &image);

    let shots = Shots {
        dir: root.join("target/browser-screenshots"),
    };
    std::fs::create_dir_all(&shots.dir).unwrap();
    let base = server::serve(&dist);
    let profile = tempfile::tempdir().expect("profile dir");
    let args = chromium_args(profile.path());
    let driver = Driver::start(&chromedriver).expect("chromedriver");
    let s = driver
        .session(&chromium, &args)
        .expect("a Chromium session");

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        steps(
            &s,
            &shots,
            &base,
            &image,
            &bad,
            &tiny,
            &default_name,
            &default_model,
            &expected_default,
            &expected_tiny,
        )
    }));
    if let Err(e) = outcome {
        shots.take(&s, "failure");
        eprintln!("--- browser console ---\n{}\n---", s.console());
        std::panic::resume_unwind(e);
    }
    drop(s);

    // 9. A plain static host (no cross-origin isolation) and a browser without WebGPU: the
    // engine on one thread, the CPU path alone, its first answer as fast, the CLI's numbers.
    let plain = server::serve_with(&dist, server::Isolation::Plain);
    let no_gpu = without_webgpu(args);
    let s = driver
        .session(&chromium, &no_gpu)
        .expect("a Chromium session without WebGPU");
    let first = first_result(&s, &format!("{plain}/"), "no-WebGPU session, not isolated");
    assert_eq!(first.prediction["backend"], "cpu");
    let engine: Value = serde_json::from_str(
        s.eval("return window.vitrine.engine();", json!([]))
            .unwrap()
            .as_str()
            .unwrap_or("null"),
    )
    .unwrap_or(Value::Null);
    assert_eq!(
        (engine["build"].as_str(), engine["threads"].as_u64()),
        (Some("single"), Some(1)),
        "a page that is not cross-origin isolated runs its engine on one thread: {engine}"
    );
    assert_eq!(
        s.eval(
            "return document.getElementById('time-cpu').previousElementSibling.textContent;",
            json!([])
        )
        .unwrap(),
        "CPU (Flex, 1 thread)"
    );
    println!(
        "no-WebGPU session: WebGPU available: {} ({})",
        first.timings["webgpu_available"], first.timings["webgpu_problem"]
    );
    // Flex's figures with no software GPU sharing the cores.
    let t = wait_timed(&s, "the CPU's timing without WebGPU");
    println!(
        "no-WebGPU session: Flex first {:.1} ms, warm {:.1} ms",
        t["cpu_first"].as_f64().unwrap_or(f64::NAN),
        t["cpu"].as_f64().unwrap_or(f64::NAN)
    );
    assert_clean_console(&s, "a load without WebGPU");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let run = run_id(&predictions(&s));
        s.upload("#file-input", &[&image]).unwrap();
        let p = wait_result(
            &s,
            "the fixture on one thread",
            run,
            "p.image === 'fixture.png'",
        )
        .unwrap();
        assert_same_answer(&p, &expected_default, "default model on one thread");
        explorer_matches_the_cli(&s, &shots, &["cpu"], &image, &default_model, run_id(&p));
    }));
    if let Err(e) = outcome {
        shots.take(&s, "failure-one-thread");
        eprintln!("--- browser console ---\n{}\n---", s.console());
        std::panic::resume_unwind(e);
    }
}

#[allow(clippy::too_many_arguments)]
fn steps(
    s: &Session,
    shots: &Shots,
    base: &str,
    image: &Path,
    bad: &[(PathBuf, &str)],
    tiny: &Path,
    default_name: &str,
    default_model: &Path,
    expected_default: &Answer,
    expected_tiny: &Answer,
) {
    // 1. Load: the default model and the first sample, answered on the CPU at once.
    let first = first_result(s, &format!("{base}/"), "WebGPU session");
    let timings = first.timings;
    // A Chromium without a (software) WebGPU adapter cannot check that path; say so loudly,
    // and only let it pass when asked to.
    let has_webgpu = timings["webgpu_available"] == true;
    let skip_webgpu = std::env::var_os("VITRINE_BROWSER_SKIP_WEBGPU").is_some();
    assert!(
        has_webgpu || skip_webgpu,
        "Chromium offered no WebGPU adapter ({}), so the WebGPU path cannot be checked \
         (set VITRINE_BROWSER_SKIP_WEBGPU=1 to check only the CPU path)",
        timings["webgpu_problem"]
    );
    let backends: &[&str] = if has_webgpu {
        &["webgpu", "cpu"]
    } else {
        eprintln!("WARNING: no WebGPU adapter; only the CPU path is checked");
        &["cpu"]
    };
    assert_eq!(first.prediction["model"], default_name);
    assert_eq!(
        first.prediction["backend"], "cpu",
        "the first answer comes from the CPU, which needs no kernel compilation"
    );
    if has_webgpu {
        // The answer was on screen while WebGPU was still compiling its kernels.
        assert!(
            first.while_timing,
            "the first result waited for WebGPU's timing: {timings}"
        );
    }
    shots.take(s, "01-loaded");
    // It says which classes it knows: every label of the default model, by name.
    let classes = s
        .eval(
            "return document.getElementById('model-classes').textContent;",
            json!([]),
        )
        .unwrap();
    let classes = classes.as_str().unwrap_or("");
    let labels: Vec<String> = first.prediction["top"]
        .as_array()
        .map(|_| expected_default.0.iter().map(|r| r.0.clone()).collect())
        .unwrap_or_default();
    assert!(
        classes.contains(&format!("knows {} classes", expected_default.1.len()))
            && labels.iter().all(|l| classes.contains(l.as_str())),
        "the page should list the classes it knows: {classes:?}"
    );
    println!("{classes}");
    // Both backends timed in the background; the status line says which one won.
    let done = wait_timed(s, "the backends' timing");
    let status = status(s);
    println!("timings after the background run (ms): {done}\nstatus line: {status}");
    if has_webgpu {
        assert!(
            status.contains("faster here"),
            "the status line should say which backend is faster: {status}"
        );
    }
    assert_clean_console(s, "the first load and the backends' timing");

    // 2. An uploaded image, on each backend, against the CLI.
    let mut run = run_id(&predictions(s));
    s.upload("#file-input", &[image]).unwrap();
    let p = wait_result(
        s,
        "the uploaded image's result",
        run,
        "p.image === 'fixture.png'",
    )
    .unwrap();
    run = run_id(&p);
    for &backend in backends {
        // Frame gaps while the model runs: does inference stall the page?
        s.eval(
            "const g = window.__gaps = { max: 0, last: performance.now(), on: true };
             const tick = t => { if (!g.on) return; g.max = Math.max(g.max, t - g.last);
                                 g.last = t; requestAnimationFrame(tick); };
             requestAnimationFrame(tick);",
            json!([]),
        )
        .unwrap();
        let p = answer_on(s, backend, "a result", run, "p.image === 'fixture.png'");
        run = run_id(&p);
        let gap = s
            .eval(
                "window.__gaps.on = false; return window.__gaps.max;",
                json!([]),
            )
            .unwrap();
        println!(
            "{backend}: inference {:.1} ms; longest gap between animation frames meanwhile: {:.0} ms",
            p["ms"].as_f64().unwrap_or(f64::NAN),
            gap.as_f64().unwrap_or(f64::NAN)
        );
        assert_same_answer(&p, expected_default, &format!("default model on {backend}"));
        assert_eq!(
            s.eval("return document.body.dataset.backend;", json!([]))
                .unwrap(),
            backend
        );
    }
    shots.take(s, "02-fixture-cpu");

    // Drag and drop, and paste: the same path as the picker, from synthetic events carrying
    // a file (what the browser hands the page when a person drops or pastes one).
    for (event, sample) in [("drop", "ship.png"), ("paste", "horse.png")] {
        s.eval(
            "const [kind, name] = arguments;
             fetch('samples/' + name).then(r => r.blob()).then(blob => {
               const dt = new DataTransfer();
               dt.items.add(new File([blob], name, { type: 'image/png' }));
               const e = kind === 'drop'
                 ? new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true })
                 : new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true });
               window.dispatchEvent(e);
             });",
            json!([event, sample]),
        )
        .unwrap();
        let p = wait_result(
            s,
            &format!("the {event}ped image's result"),
            run,
            &format!("p.image === '{sample}'"),
        )
        .unwrap();
        run = run_id(&p);
        println!("{event}: {sample} classified as {}", p["top"][0]["label"]);
    }
    // Every shipped sample, clicked as a person would, is classified as its file name says:
    // the samples are CIFAR-10 test images the default model gets right (pick_samples.py).
    let names: Vec<String> = s
        .eval(
            "return [...document.querySelectorAll('#samples button.sample')].map(b => b.dataset.name);",
            json!([]),
        )
        .unwrap()
        .as_array()
        .expect("sample buttons")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 3, "the page offers samples: {names:?}");
    let mut fitting = 0;
    for name in &names {
        s.eval(
            "document.querySelector(`#samples button[data-name='${arguments[0]}']`).click();",
            json!([name]),
        )
        .unwrap();
        let p = wait_result(
            s,
            &format!("sample {name}"),
            run,
            &format!("p.image === '{name}'"),
        )
        .unwrap();
        run = run_id(&p);
        let stem = name
            .rsplit_once('.')
            .map_or(name.as_str(), |(stem, _)| stem);
        assert_eq!(p["top"][0]["label"], stem, "sample {name}: {}", p["top"]);
        fitting += usize::from(p["fits"] == true);
    }
    println!(
        "all {} samples classified as their names say; a class fits (top-1 >= 40%) on {fitting}",
        names.len()
    );

    let work = image.parent().expect("the fixture sits in the work folder");
    run = moved_square(s, shots, work, run, backends, default_model);
    run = nothing_it_knows(s, shots, work, run, default_model);
    run = cut_off_file(s, shots, work, run, default_model);

    // Back to the fixture, which the later steps compare against the CLI.
    s.upload("#file-input", &[image]).unwrap();
    let p = wait_result(s, "the fixture again", run, "p.image === 'fixture.png'").unwrap();
    run = run_id(&p);
    assert_eq!(
        damage_line(s),
        "",
        "a whole file after a damaged one: the damage line should go"
    );
    run = explorer_matches_the_cli(s, shots, backends, image, default_model, run);
    run = imagenet_geometry(s, shots, backends, work, image, default_name, run);

    // 3. The animation moves: two snapshots of the stage a moment apart differ.
    s.click("#replay").unwrap();
    std::thread::sleep(Duration::from_millis(900));
    let grab = "return document.getElementById('stage').toDataURL();";
    let a = s.eval(grab, json!([])).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let b = s.eval(grab, json!([])).unwrap();
    assert_ne!(
        a, b,
        "the stage canvas did not change while the animation played"
    );
    shots.take(s, "03-animating");
    std::thread::sleep(Duration::from_secs(6)); // let it finish for the next pictures

    // 4. Bad files: a clear message naming the file, and the last result stays.
    let before = predictions(s);
    for (file, says) in bad {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        s.upload("#file-input", &[file.as_path()]).unwrap();
        // Wait for this file's message (the previous bad file left the page in "error").
        s.wait_for(
            &format!("the message about {name}"),
            &format!(
                "return window.vitrine.state() === 'error' &&
                        (window.vitrine.error() || '').includes({name:?});"
            ),
            STEP_TIMEOUT,
        )
        .unwrap();
        let alert = s
            .eval(
                "const a = document.getElementById('alert'); return a.hidden ? '' : a.textContent;",
                json!([]),
            )
            .unwrap();
        let alert = alert
            .as_str()
            .unwrap_or("")
            .trim()
            .replace(['\n', '×'], " ");
        assert!(
            alert.contains(&name) && alert.contains(says),
            "the alert should name {name} and say '{says}'; it says: {alert:?}"
        );
        println!("refused {name}: {}", alert.trim());
        assert_eq!(
            predictions(s),
            before,
            "a bad file must not replace the last result"
        );
        if name == "corrupt.png" {
            shots.take(s, "04-corrupt");
        }
    }

    // 5. Another model from disk, then a mismatched pair, then back to the published one.
    let tiny_bpk = tiny.with_extension("bpk");
    s.upload("#model-files", &[tiny, &tiny_bpk]).unwrap();
    let p = wait_result(s, "the tiny model's result", run, "p.model === 'tiny'").unwrap();
    run = run_id(&p);
    assert_eq!(
        s.eval(
            "return document.getElementById('model-select').value;",
            json!([])
        )
        .unwrap(),
        "disk:tiny",
        "the model list should show the model loaded from disk"
    );
    assert_same_answer(
        &p,
        expected_tiny,
        &format!("tiny model on {}", p["backend"]),
    );
    shots.take(s, "05-tiny-model");

    // Same size as the real weights, one bit flipped: only the checksum can tell.
    let mismatched = tiny.with_file_name("mismatched.bpk");
    let mut weights = std::fs::read(&tiny_bpk).unwrap();
    *weights.last_mut().unwrap() ^= 1;
    std::fs::write(&mismatched, weights).unwrap();
    s.upload("#model-files", &[tiny, &mismatched]).unwrap();
    s.wait_for(
        "the mismatched pair's message",
        "return window.vitrine.state() === 'error';",
        STEP_TIMEOUT,
    )
    .unwrap();
    let error = s.eval("return window.vitrine.error();", json!([])).unwrap();
    println!("mismatched pair: {error}");
    assert!(
        error.as_str().unwrap_or("").contains("checksum"),
        "the message should say the checksum does not match: {error}"
    );
    assert_eq!(
        s.eval("return window.vitrine.model();", json!([])).unwrap(),
        "tiny",
        "a refused model must not replace the working one"
    );

    select_model(s, default_name);
    let p = wait_result(
        s,
        "the published model again",
        run,
        &format!("p.model === '{default_name}'"),
    )
    .unwrap();
    assert_same_answer(&p, expected_default, "default model after switching back");

    // The same page in a phone-sized window.
    s.set_window(420, 900).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    shots.take(s, "06-narrow");
    s.set_window(1280, 1000).unwrap();

    // 8. A model published while scripts/serve serves the page.
    published_live(s, image.parent().expect("the work folder"));
}

/// A wide photo with two different things side by side: a yellow disc on the left, blue and
/// white stripes on the right, on a green ground.
fn write_wide_photo(path: &Path) {
    let img = image::RgbImage::from_fn(360, 120, |x, y| {
        let disc = (x as f32 - 60.0).powi(2) + (y as f32 - 60.0).powi(2) < 1600.0;
        if disc {
            image::Rgb([240, 200, 40])
        } else if x > 230 && (y / 10) % 2 == 0 {
            image::Rgb([30, 60, 200])
        } else if x > 230 {
            image::Rgb([235, 235, 240])
        } else {
            image::Rgb([60, (110 + x / 4) as u8, 50])
        }
    });
    img.save(path).expect("writing the wide photo");
}

/// The square the page shows now, as the page states it (`x,y,size`).
fn square_on_page(s: &Session) -> Option<[u64; 3]> {
    let text = s
        .eval(
            "return document.getElementById('crop-where').textContent;",
            json!([]),
        )
        .ok()?;
    let text = text.as_str()?;
    let numbers = text.split("--crop ").nth(1)?.trim_end_matches(['`', ')']);
    let v: Vec<u64> = numbers
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

/// The square, moved by a drag, resized from its corner and nudged by keys, on each backend:
/// what the page answers for the square it reports is what `trainer predict --crop` answers.
fn moved_square(
    s: &Session,
    shots: &Shots,
    work: &Path,
    mut run: u64,
    backends: &[&str],
    model: &Path,
) -> u64 {
    let wide = work.join("wide.png");
    write_wide_photo(&wide);
    s.upload("#file-input", &[&wide]).unwrap();
    let p = wait_result(
        s,
        "the wide photo",
        run,
        "p.image === 'wide.png' && !p.crop",
    )
    .unwrap();
    run = run_id(&p);
    assert_eq!(
        square_on_page(s),
        Some([120, 0, 120]),
        "the centre square first"
    );
    // Drag it onto the stripes (to the right), then make it smaller from its corner, then
    // three key presses right and one Shift+up: what a person would do with mouse and keys.
    s.drag("#crop-square", 400, 40, 8).unwrap();
    s.drag("#crop-handle", -60, -60, 4).unwrap();
    s.eval("document.getElementById('crop-square').focus();", json!([]))
        .unwrap();
    s.keys(&["\u{E014}", "\u{E014}", "\u{E014}"], false)
        .unwrap();
    s.keys(&["\u{E013}"], true).unwrap();
    let p = wait_result(
        s,
        "the moved square's result",
        run,
        "p.image === 'wide.png' && p.crop && !window.vitrine.following()",
    )
    .unwrap();
    run = run_id(&p);
    let crop: Vec<u64> = p["crop"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        square_on_page(s).map(|c| c.to_vec()),
        Some(crop.clone()),
        "the result is for the square shown"
    );
    let (x, y, size) = (crop[0], crop[1], crop[2]);
    assert!(x + size == 360 || x > 200, "dragged to the right: {crop:?}");
    assert!((8..120).contains(&size), "resized smaller: {crop:?}");
    println!("moved square: {x},{y},{size} on the 360x120 photo");
    shots.take(s, "03-moved-square");
    let flag = format!("{x},{y},{size}");
    let expected = cli_predict_with(model, &wide, &["--crop", &flag]);
    let centre = cli_predict(model, &wide);
    assert_ne!(
        expected.1, centre.1,
        "the square changes what the model sees"
    );
    for &backend in backends {
        let p = answer_on(
            s,
            backend,
            "the moved square",
            run,
            &format!("p.crop && p.crop.join(',') === '{flag}'"),
        );
        run = run_id(&p);
        assert_same_answer(
            &p,
            &expected,
            &format!("square {flag} on {backend} against predict --crop"),
        );
    }
    // Home puts it back: the centre square, the same answer as without --crop.
    s.eval("document.getElementById('crop-square').focus();", json!([]))
        .unwrap();
    s.keys(&["\u{E011}"], false).unwrap();
    let p = wait_result(
        s,
        "the centre square again",
        run,
        "p.image === 'wide.png' && !p.crop",
    )
    .unwrap();
    assert_same_answer(&p, &centre, "the centre square again");
    run_id(&p)
}

/// Photos of nothing the model knows, made here: a flat grey (blank: nothing to recognise)
/// and a red and blue checkerboard (no class gets 40%). The page says no class fits, in
/// words, instead of presenting a wrong class as the answer, and `trainer predict` agrees.
/// Uniform noise is printed, not asserted: this model takes it for a deer or a frog at 60-77%,
/// which softmax confidence cannot catch (web/README.md).
fn nothing_it_knows(s: &Session, shots: &Shots, work: &Path, mut run: u64, model: &Path) -> u64 {
    let grey = work.join("grey.png");
    image::RgbImage::from_pixel(200, 150, image::Rgb([128, 128, 128]))
        .save(&grey)
        .unwrap();
    let checker = work.join("checker.png");
    image::RgbImage::from_fn(96, 96, |x, y| {
        image::Rgb(if (x / 12 + y / 12) % 2 == 1 {
            [255, 0, 0]
        } else {
            [0, 0, 255]
        })
    })
    .save(&checker)
    .unwrap();
    let noise = work.join("noise.png");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    image::RgbImage::from_fn(96, 96, |_, _| {
        let mut channel = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        };
        image::Rgb([channel(), channel(), channel()])
    })
    .save(&noise)
    .unwrap();
    for (file, expect_fit, shot) in [
        (&grey, Some(false), "04-no-class-fits"),
        (&checker, Some(false), ""),
        (&noise, None, ""),
    ] {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        s.upload("#file-input", &[file.as_path()]).unwrap();
        let p = wait_result(
            s,
            &format!("{name}'s result"),
            run,
            &format!("p.image === '{name}'"),
        )
        .unwrap();
        run = run_id(&p);
        let cli = cli_json(model, file, &[]);
        assert_eq!(
            p["fits"], cli["fits"],
            "{name}: the page and trainer predict disagree on fitting"
        );
        let verdict = s
            .eval(
                "const v = document.getElementById('verdict'); return v.hidden ? '' : v.textContent;",
                json!([]),
            )
            .unwrap();
        let verdict = verdict.as_str().unwrap_or("").to_string();
        println!(
            "{name}: fits {} ({}), top-1 {} {:.3}; the page says {verdict:?}",
            p["fits"],
            cli["why_not"],
            p["top"][0]["label"],
            p["top"][0]["prob"].as_f64().unwrap_or(0.0)
        );
        if let Some(fit) = expect_fit {
            assert_eq!(
                p["fits"], fit,
                "{name} is none of the classes, yet: {}",
                p["top"]
            );
            assert!(
                verdict.contains("none of the 10 classes"),
                "{name}: the page says {verdict:?}"
            );
        }
        if !shot.is_empty() {
            shots.take(s, shot);
        }
    }
    run
}

/// The damage line above the result, or "" while it is hidden.
fn damage_line(s: &Session) -> String {
    let v = s
        .eval(
            "const d = document.getElementById('damage'); return d.hidden ? '' : d.textContent;",
            json!([]),
        )
        .unwrap();
    v.as_str().unwrap_or("").to_string()
}

/// A JPEG cut at three quarters of its bytes (it ends mid-scan): the page shows what could be
/// read, as browsers do, says the file is damaged, and its answer is `trainer predict`'s for
/// the same bytes.
fn cut_off_file(s: &Session, shots: &Shots, work: &Path, run: u64, model: &Path) -> u64 {
    let whole = work.join("whole.jpg");
    write_fixture_image(&whole);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = work.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    s.upload("#file-input", &[cut.as_path()]).unwrap();
    let p = wait_result(s, "the cut-off JPEG's result", run, "p.image === 'cut.jpg'").unwrap();
    let line = damage_line(s);
    println!("cut.jpg: the page says {line:?}");
    assert!(
        line.contains("damaged") && line.contains("the prediction is of that part"),
        "a JPEG cut at three quarters: the page should say it is damaged; it says {line:?}"
    );
    shots.take(s, "04-damaged");
    assert_same_answer(&p, &cli_predict(model, &cut), "the cut-off JPEG");
    run_id(&p)
}

/// `scripts/serve --no-build` on a copy of the models, stopped when dropped.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Served {
    fn start(models: &Path) -> Self {
        let port = webdriver::free_port();
        let child = Command::new(root().join("scripts/serve"))
            .arg("--no-build")
            .env("PORT", port.to_string())
            .env("VITRINE_MODELS", models)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting scripts/serve");
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{url}models/index.json"))
            .call()
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "scripts/serve did not answer on {url}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished run on a two-class folder of flat red and blue squares (seconds to train).
fn train_small_run(work: &Path) -> PathBuf {
    let data = work.join("colours");
    for (class, rgb) in [("red", [220, 40, 40]), ("blue", [40, 60, 220])] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..5u8 {
            let shade = |c: u8| c.saturating_add(i * 6);
            image::RgbImage::from_pixel(32, 32, image::Rgb(rgb.map(shade)))
                .save(data.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let run = work.join("run");
    succeeded(
        trainer()
            .args([
                "train",
                "--dataset",
                "folder",
                "--preset",
                "quick",
                "--epochs",
                "1",
                "--batch-size",
                "4",
            ])
            .args(["--device", "cpu", "--devices", "1", "--plain", "--data-dir"])
            .arg(&data)
            .arg("--run")
            .arg(&run),
    );
    run
}

fn model_options(s: &Session) -> Vec<String> {
    s.eval(
        "return [...document.querySelectorAll('#model-select option')].map(o => o.value);",
        json!([]),
    )
    .unwrap()
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap_or("").to_string())
    .collect()
}

/// The page as `scripts/serve` serves it: a model published meanwhile is listed after a reload.
fn published_live(s: &Session, work: &Path) {
    let models = work.join("served-models");
    std::fs::create_dir_all(&models).unwrap();
    for entry in std::fs::read_dir(root().join("www/models")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, models.join(path.file_name().unwrap())).unwrap();
    }
    let served = Served::start(&models);
    let first = first_result(s, &served.url, "scripts/serve");
    assert!(!model_options(s).contains(&"fresh".to_string()));
    assert_clean_console(s, "loading the page from scripts/serve");

    let run = train_small_run(work);
    succeeded(
        trainer()
            .args(["publish", "--name", "fresh", "--run"])
            .arg(&run)
            .arg("--out")
            .arg(&models),
    );

    // `location.reload()` returns before the old document goes: mark it, so that its answer
    // and its model list are not mistaken for the reloaded page's.
    s.eval(
        "window.vitrineBeforeReload = true; location.reload();",
        json!([]),
    )
    .unwrap();
    let p = wait_result(s, "the reloaded page", 0, "!window.vitrineBeforeReload").unwrap();
    let options = model_options(s);
    assert!(
        options.contains(&"fresh".to_string()),
        "the published model is missing from {options:?}"
    );
    select_model(s, "fresh");
    let p = wait_result(
        s,
        "the freshly published model",
        run_id(&p),
        "p.model === 'fresh'",
    )
    .unwrap();
    println!(
        "published while served, listed after a reload: {options:?}; fresh says {} (the first load answered in {} ms)",
        p["top"][0]["label"], first.timings["first_result_ms"]
    );
    assert_clean_console(s, "the reload and the new model");
}
/// `trainer explain --json` on one image: every token's value.
fn cli_explain(model: &Path, image: &Path, args: &[&str]) -> Vec<f64> {
    let mut explain = trainer();
    explain
        .args(["explain", "--json", "--device", "cpu", "--model"])
        .arg(model);
    explain_tokens(explain, image, args)
}

/// `explain` (a `trainer explain --json` command up to its model) run on `image` with `args`:
/// every token's value.
fn explain_tokens(mut explain: Command, image: &Path, args: &[&str]) -> Vec<f64> {
    let out = explain
        .arg(image)
        .args(args)
        .output()
        .expect("running trainer explain");
    assert!(
        out.status.success(),
        "trainer explain {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("explain JSON");
    tokens_of(&v)
}

/// A map's `tokens` (`trainer explain --json`'s, or the explorer's), a missing value as NaN.
fn tokens_of(v: &Value) -> Vec<f64> {
    v["tokens"]
        .as_array()
        .expect("a map's tokens")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn explorer(s: &Session) -> Value {
    let text = s
        .eval("return window.vitrine.explorer();", json!([]))
        .expect("reading the explorer");
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Waits until the explorer shows a map for result `run` that passes `check` (JavaScript on
/// `e`, the explorer's JSON).
fn wait_explorer(s: &Session, what: &str, run: u64, check: &str) -> Value {
    let script = format!(
        "const v = window.vitrine; if (v.state() === 'error') return 'error: ' + v.error();
         const e = JSON.parse(v.explorer() || 'null');
         return e && e.run === {run} && ({check}) ? 'ok' : null;"
    );
    let v = s.wait_for(what, &script, STEP_TIMEOUT).unwrap();
    assert_eq!(v.as_str(), Some("ok"), "{what}: {v}");
    explorer(s)
}

/// The page's map equals the CLI's, token for token.
fn assert_same_map(page: &Value, cli: &[f64], what: &str) {
    let ours = tokens_of(page);
    assert_eq!(ours.len(), cli.len(), "{what}: number of tokens");
    let worst = assert_close(
        &format!("{what}: the page's map against trainer explain --json's"),
        cli,
        &ours,
        Tolerance::abs(1e-5),
    );
    println!("{what}: the page's map is trainer explain's, max |Δ| = {worst:.1e}");
}

/// The classes (`data-class`) of the bars' buttons that are pressed (`aria-pressed`), after
/// checking that there is one button per bar.
fn pressed_bars(s: &Session) -> Vec<String> {
    let v = s
        .eval(
            "const b = [...document.querySelectorAll('#pred-list button[data-class]')];
             if (b.length !== JSON.parse(window.vitrine.predictions()).top.length) return null;
             return b.filter(x => x.getAttribute('aria-pressed') === 'true')
                     .map(x => x.dataset.class);",
            json!([]),
        )
        .unwrap();
    v.as_array()
        .unwrap_or_else(|| panic!("one button per bar: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_string())
        .collect()
}

/// A pointer event (`pointermove`, `pointerleave`) at (x, y) of the explorer's canvas, in its
/// CSS pixels.
fn pointer_on_explorer(s: &Session, kind: &str, x: f64, y: f64) {
    s.eval(
        "const c = document.getElementById('explore'); c.scrollIntoView({block: 'center'});
         const r = c.getBoundingClientRect();
         c.dispatchEvent(new PointerEvent(arguments[0], { clientX: r.left + arguments[1],
           clientY: r.top + arguments[2], bubbles: true, pointerType: 'mouse' }));",
        json!([kind, x, y]),
    )
    .unwrap();
}

/// A click at (x, y) of the explorer's canvas, in its CSS pixels.
fn click_explorer(s: &Session, x: f64, y: f64) {
    s.eval(
        "const c = document.getElementById('explore'); c.scrollIntoView({block: 'center'});
         const r = c.getBoundingClientRect();
         c.dispatchEvent(new MouseEvent('click', { clientX: r.left + arguments[0],
           clientY: r.top + arguments[1], bubbles: true }));",
        json!([x, y]),
    )
    .unwrap();
}

/// Clicks patch 100 of a 14 × 14 grid (row 8, column 2 from 1) on the explorer's photo, whose
/// place `e` (the explorer's JSON) gives, and moves the layer slider to 1.
fn patch_100_at_layer_1(s: &Session, e: &Value) {
    let photo = &e["photo"];
    let step = photo[2].as_f64().unwrap() / 14.0;
    click_explorer(
        s,
        photo[0].as_f64().unwrap() + 1.5 * step,
        photo[1].as_f64().unwrap() + 7.5 * step,
    );
    s.eval(
        "const l = document.getElementById('explore-layer'); l.value = 1;
         l.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .unwrap();
}

/// The token explorer on the fixture, on each backend, against `trainer explain --json`: a
/// clicked patch at a chosen layer and head, the arrow key and the reverse, rollout from the
/// class token picked in the strip, and the relevance of a class that is not the top-1.
fn explorer_matches_the_cli(
    s: &Session,
    shots: &Shots,
    backends: &[&str],
    image: &Path,
    model: &Path,
    mut run: u64,
) -> u64 {
    for &backend in backends {
        let p = answer_on(s, backend, "the fixture", run, "p.image === 'fixture.png'");
        run = run_id(&p);
        let e = wait_explorer(s, "the explorer's first map", run, "true");
        let (grid, photo) = (e["grid"].as_u64().unwrap() as usize, &e["photo"]);
        let (px, py, side) = (
            photo[0].as_f64().unwrap(),
            photo[1].as_f64().unwrap(),
            photo[2].as_f64().unwrap(),
        );
        let depth: usize = s
            .eval(
                "return +document.getElementById('explore-layer').max - 1;",
                json!([]),
            )
            .unwrap()
            .as_u64()
            .unwrap() as usize;

        // A patch clicked on the photo, layer 2, head 1.
        let (row, col) = (grid / 3, grid / 2);
        let token = 1 + row * grid + col;
        let step = side / grid as f64;
        click_explorer(
            s,
            px + (col as f64 + 0.5) * step,
            py + (row as f64 + 0.5) * step,
        );
        s.eval(
            "const l = document.getElementById('explore-layer'); l.value = 2;
             l.dispatchEvent(new Event('input'));
             const h = document.getElementById('explore-heads'); h.value = '1';
             h.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .unwrap();
        let e = wait_explorer(
            s,
            "a clicked patch at layer 2, head 1",
            run,
            &format!("e.selected === {token} && e.layer === 2 && e.heads === 1"),
        );
        assert_eq!(e["backend"], backend);
        let t = token.to_string();
        let cli = cli_explain(
            model,
            image,
            &["--layer", "2", "--head", "1", "--token", &t],
        );
        assert_same_map(
            &e,
            &cli,
            &format!("{backend}: patch {token}, layer 2, head 1"),
        );
        shots.take(s, &format!("07-explorer-patch-{backend}"));

        // The pointer over the patch below it (on the model's input this time): the map follows
        // it while it is there, and goes back to the clicked patch when it leaves. One backend
        // is enough: hovering is the page's, not the backend's.
        if backend == "cpu" {
            let input = &e["input"];
            let (ix, iy, iside) = (
                input[0].as_f64().unwrap(),
                input[1].as_f64().unwrap(),
                input[2].as_f64().unwrap(),
            );
            let below = token + grid;
            let istep = iside / grid as f64;
            pointer_on_explorer(
                s,
                "pointermove",
                ix + (col as f64 + 0.5) * istep,
                iy + (row as f64 + 1.5) * istep,
            );
            let e = wait_explorer(
                s,
                "the map under the pointer",
                run,
                &format!("e.selected === {below} && e.layer === 2 && e.heads === 1"),
            );
            let t = below.to_string();
            let cli = cli_explain(
                model,
                image,
                &["--layer", "2", "--head", "1", "--token", &t],
            );
            assert_same_map(
                &e,
                &cli,
                &format!("{backend}: patch {below} under the pointer, layer 2, head 1"),
            );
            pointer_on_explorer(s, "pointerleave", 0.0, 0.0);
            wait_explorer(
                s,
                "the clicked patch once the pointer left",
                run,
                &format!("e.selected === {token} && e.layer === 2"),
            );
        }

        // The right arrow moves to the next patch; reverse, with the heads' maximum.
        s.eval(
            "const c = document.getElementById('explore');
             c.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight', bubbles: true }));
             document.getElementById('explore-reverse').click();
             const h = document.getElementById('explore-heads'); h.value = 'max';
             h.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .unwrap();
        let next = token + 1;
        let e = wait_explorer(
            s,
            "the next patch, reversed, max of heads",
            run,
            &format!("e.selected === {next} && e.reverse && e.heads === 'max'"),
        );
        let t = next.to_string();
        let cli = cli_explain(
            model,
            image,
            &["--layer", "2", "--head", "max", "--token", &t, "--reverse"],
        );
        assert_same_map(
            &e,
            &cli,
            &format!("{backend}: which tokens attend to patch {next}"),
        );

        // The slider's last step is rollout; the class token picked in the strip.
        let strip_y = e["strip"][0].as_f64().unwrap();
        s.eval(
            "document.getElementById('explore-reverse').click();
             const l = document.getElementById('explore-layer'); l.value = l.max;
             l.dispatchEvent(new Event('input'));
             const h = document.getElementById('explore-heads'); h.value = 'mean';
             h.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .unwrap();
        click_explorer(s, 4.0, strip_y + 4.0);
        let e = wait_explorer(
            s,
            "rollout from the class token",
            run,
            "e.selected === 0 && e.method === 'rollout' && !e.reverse && e.heads === 'mean'",
        );
        let cli = cli_explain(model, image, &["--method", "rollout"]);
        assert_same_map(
            &e,
            &cli,
            &format!("{backend}: rollout through {depth} layers"),
        );

        // A click on the second bar: the relevance of a class that is not the top-1. What is
        // under the pointer there is that bar's button.
        let second = p["top"][1]["index"].as_u64().unwrap();
        assert_eq!(
            explorer(s)["explaining"],
            Value::Null,
            "{backend}: no bar marked yet"
        );
        let clicked = s
            .eval(
                "const b = document.getElementById('bars'); b.scrollIntoView({block: 'center'});
                 const r = b.getBoundingClientRect();
                 const el = document.elementFromPoint(r.left + 20, r.top + 46 + 20);
                 el.click(); return el.dataset.class || el.tagName;",
                json!([]),
            )
            .unwrap();
        assert_eq!(
            clicked,
            second.to_string(),
            "{backend}: the second bar's button is where the bar is drawn"
        );
        let e = wait_explorer(
            s,
            "the second class's relevance",
            run,
            &format!("e.method === 'relevance' && e.class === {second}"),
        );
        // Its bar is marked: window.vitrine says which, and only its button is pressed.
        assert_eq!(e["explaining"], second, "{backend}: the explained class");
        assert_eq!(
            pressed_bars(s),
            vec![second.to_string()],
            "{backend}: the pressed bars"
        );
        let c = second.to_string();
        let cli = cli_explain(model, image, &["--method", "relevance", "--class", &c]);
        assert_same_map(
            &e,
            &cli,
            &format!(
                "{backend}: relevance for {} (class {second})",
                p["top"][1]["label"]
            ),
        );
        println!(
            "{backend}: relevance (forward + backward + read-back) took {:.0} ms",
            e["relevance_ms"].as_f64().unwrap_or(f64::NAN)
        );
        s.eval(
            "document.getElementById('explore').scrollIntoView({block: 'center'});",
            json!([]),
        )
        .unwrap();
        shots.take(s, &format!("08-relevance-{backend}"));
        // Back to attention for the next backend: a click on a patch leaves relevance, and
        // the bar is no longer marked.
        click_explorer(s, px + step / 2.0, py + step / 2.0);
        let e = wait_explorer(
            s,
            "back to rollout",
            run,
            "e.method === 'rollout' && e.selected === 1",
        );
        assert_eq!(e["explaining"], Value::Null, "{backend}: back to a token");
        assert!(
            pressed_bars(s).is_empty(),
            "{backend}: no bar pressed after a patch was clicked"
        );
    }
    run
}
/// ImageNet's geometry in the page: the committed 224 px fixture (patch 16, 196 patches and
/// 197 tokens, narrow and two layers deep), imported by the CLI and loaded from disk. On each
/// backend the page's top-5 is `trainer predict`'s and its explorer's map for a patch is
/// `trainer explain`'s; the explorer, and the animation once every patch has reached its
/// slot, are photographed with 196 patches. Ends back on the default model.
fn imagenet_geometry(
    s: &Session,
    shots: &Shots,
    backends: &[&str],
    work: &Path,
    image: &Path,
    default_name: &str,
    mut run: u64,
) -> u64 {
    let dir = work.join("vit224");
    succeeded(
        trainer()
            .args(["import-timm"])
            .arg(root().join("tests/fixtures/timm_vit224_narrow.safetensors"))
            .args(["--heads", "2", "--name", "vit224", "--out"])
            .arg(&dir),
    );
    let manifest = dir.join("vit224.json");
    let expected = cli_predict(&manifest, image);
    let cli = cli_explain(&manifest, image, &["--layer", "1", "--token", "100"]);
    s.upload("#model-files", &[&manifest, &dir.join("vit224.bpk")])
        .unwrap();
    let p = wait_result(s, "the 224 px model's result", run, "p.model === 'vit224'").unwrap();
    run = run_id(&p);
    for &backend in backends {
        let p = answer_on(s, backend, "the 224 px model", run, "p.model === 'vit224'");
        run = run_id(&p);
        println!(
            "224 px model on {backend}: inference {:.1} ms",
            p["ms"].as_f64().unwrap_or(f64::NAN)
        );
        assert_same_answer(&p, &expected, &format!("224 px model on {backend}"));
        let e = wait_explorer(
            s,
            &format!("the 224 px model's explorer on {backend}"),
            run,
            "e.tokens.length === 197",
        );
        assert_eq!(e["grid"], 14);
        assert_eq!(e["backend"], backend);
        patch_100_at_layer_1(s, &e);
        let e = wait_explorer(
            s,
            &format!("a patch of the 224 px model on {backend}"),
            run,
            "e.selected === 100 && e.layer === 1",
        );
        assert_eq!(e["backend"], backend);
        assert_same_map(
            &e,
            &cli,
            &format!("{backend}: 224 px model, patch 100, layer 1"),
        );
        shots.take(s, &format!("09-vit224-explorer-{backend}"));
    }
    // The animation of 196 patches into 197 slots, photographed once it has finished.
    s.click("#replay").unwrap();
    let a = s
        .wait_for(
            "the 224 px model's animation to finish",
            "const a = JSON.parse(window.vitrine.animation() || 'null');
             return a && a.done ? a : null;",
            STEP_TIMEOUT,
        )
        .unwrap();
    println!("224 px animation finished: {a}");
    s.eval(
        "document.getElementById('stage').scrollIntoView({block: 'center'});",
        json!([]),
    )
    .unwrap();
    shots.take(s, "10-vit224-animation");

    select_model(s, default_name);
    let p = wait_result(
        s,
        "the published model after the 224 px one",
        run,
        &format!("p.model === '{default_name}'"),
    )
    .unwrap();
    run_id(&p)
}
/// A benchmark, not a check: `bench/page-vit-ti16` makes timm's ViT-Ti/16 with random weights
/// and runs this with `VITRINE_BENCH_TIMM` (its safetensors) and `VITRINE_BENCH_HEADS`. It
/// loads the model from disk into the page and prints the first and warm runs on Flex and
/// WebGPU (the page's own background timing), then asks the explorer about a patch and a
/// class's relevance.
#[test]
#[ignore = "a benchmark: bench/page-vit-ti16 runs it"]
fn page_times_a_timm_model() {
    let Some(weights) = std::env::var_os("VITRINE_BENCH_TIMM") else {
        panic!("set VITRINE_BENCH_TIMM to a timm state dict (bench/page-vit-ti16 does)");
    };
    let heads = std::env::var("VITRINE_BENCH_HEADS").unwrap_or_else(|_| "3".into());
    let work = tempfile::tempdir().expect("temp dir");
    succeeded(
        trainer()
            .arg("import-timm")
            .arg(&weights)
            .args(["--heads", &heads, "--name", "bench", "--out"])
            .arg(work.path()),
    );
    let manifest = work.path().join("bench.json");
    let image = work.path().join("fixture.png");
    write_fixture_image(&image);
    let Tools {
        dist,
        chromium,
        chromedriver,
    } = tools();
    let base = server::serve(&dist);
    let profile = tempfile::tempdir().expect("profile dir");
    let args = chromium_args(profile.path());
    let driver = Driver::start(&chromedriver).expect("chromedriver");
    let s = driver
        .session(&chromium, &args)
        .expect("a Chromium session");
    let first = first_result(&s, &format!("{base}/"), "bench session");
    wait_timed(&s, "the default model's timing");
    let run = run_id(&first.prediction);
    s.upload("#file-input", &[&image]).unwrap();
    let p = wait_result(&s, "the fixture", run, "p.image === 'fixture.png'").unwrap();
    let run = run_id(&p);
    let start = Instant::now();
    s.upload(
        "#model-files",
        &[&manifest, &manifest.with_extension("bpk")],
    )
    .unwrap();
    let p = wait_result(
        &s,
        "the timm model's first answer",
        run,
        "p.model === 'bench'",
    )
    .unwrap();
    println!(
        "load from disk + first answer: {:.2} s; first answer on {} in {:.0} ms",
        start.elapsed().as_secs_f64(),
        p["backend"],
        p["ms"].as_f64().unwrap_or(f64::NAN)
    );
    let t = s
        .wait_for(
            "the timm model's timing",
            "const t = JSON.parse(window.vitrine.timings());
             return !t.timing && t.cpu ? t : null;",
            Duration::from_secs(900),
        )
        .unwrap();
    println!(
        "ViT timings (ms): Flex first {} warm {}; WebGPU first {} warm {}",
        t["cpu_first"], t["cpu"], t["webgpu_first"], t["webgpu"]
    );
    let run = run_id(&predictions(&s));
    let e = wait_explorer(&s, "the explorer", run, "true");
    let photo = &e["photo"];
    let step = photo[2].as_f64().unwrap() / e["grid"].as_f64().unwrap();
    let start = Instant::now();
    click_explorer(
        &s,
        photo[0].as_f64().unwrap() + 3.5 * step,
        photo[1].as_f64().unwrap() + 3.5 * step,
    );
    wait_explorer(&s, "a patch's map", run, "e.selected > 0");
    println!(
        "a patch's map: {:.0} ms from the click",
        start.elapsed().as_secs_f64() * 1e3
    );
    // The top bar's button, where the bar is drawn (as the page test clicks the second).
    s.eval(
        "const b = document.getElementById('bars'); b.scrollIntoView({block: 'center'});
         const r = b.getBoundingClientRect();
         document.elementFromPoint(r.left + 20, r.top + 20).click();",
        json!([]),
    )
    .unwrap();
    let e = wait_explorer(
        &s,
        "the top class's relevance",
        run,
        "e.method === 'relevance'",
    );
    println!(
        "relevance on {}: {:.0} ms",
        e["backend"],
        e["relevance_ms"].as_f64().unwrap_or(f64::NAN)
    );
}

/// Headless Chromium with WebGPU on SwiftShader, a fresh profile in `profile`, and no calls
/// to the outside (this machine's closed network refuses them, many at a time).
fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu-sandbox",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--enable-unsafe-webgpu",
        "--window-size=1280,1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}
