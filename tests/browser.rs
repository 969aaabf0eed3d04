//! The page in a real headless Chromium, compared with `trainer predict --json`.
//!
//! Needs the built page in dist/ (`scripts/build-page`), Chromium and chromedriver
//! (`scripts/install-web-tools`). Run with `cargo test -p trainer --test browser -- --nocapture`
//! to see timings. Screenshots land in target/browser-screenshots/.
//!
//! What it checks, in one browser session (starting Chromium and compiling WebGPU kernels on a
//! software adapter cost seconds, so the steps share them):
//! 1. the page loads the default model and shows a result;
//! 2. an uploaded image gets the same top-5 and probabilities (within 1e-3) as the CLI, on
//!    WebGPU and on the CPU;
//! 3. the patch animation changes the canvas over time;
//! 4. a corrupt file shows a message and keeps the last result;
//! 5. a model pair loaded from disk replaces the model and matches the CLI; a mismatched pair
//!    is refused; switching back to the published model works.

#[path = "browser/server.rs"]
mod server;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webdriver::{Driver, Session};

const TRAINER: &str = env!("CARGO_BIN_EXE_trainer");
/// Loading includes WebGPU kernel compilation on SwiftShader: seconds, not milliseconds.
const LOAD_TIMEOUT: Duration = Duration::from_secs(240);
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
const TOLERANCE: f64 = 1e-3;

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

/// `trainer predict --json` on one image: (top-5 as (label, index, prob), all probs).
fn cli_predict(model: &Path, image: &Path) -> (Vec<(String, u64, f64)>, Vec<f64>) {
    let out = Command::new(TRAINER)
        .args(["predict", "--json", "--device", "cpu", "--model"])
        .arg(model)
        .arg(image)
        .output()
        .expect("running trainer predict");
    assert!(
        out.status.success(),
        "trainer predict failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.lines().next().unwrap_or("")).expect("predict JSON");
    (top_of(&v), probs_of(&v))
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

fn assert_same_answer(page: &Value, cli: &(Vec<(String, u64, f64)>, Vec<f64>), what: &str) {
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
    let worst = probs
        .iter()
        .zip(&cli.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= TOLERANCE,
        "{what}: probabilities differ from trainer predict by up to {worst:.2e} (> {TOLERANCE:e})"
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
        let out = Command::new(TRAINER)
            .args(["import-timm"])
            .arg(&fixture)
            .args(["--heads", "2", "--name", "tiny", "--out"])
            .arg(dir)
            .output()
            .expect("running trainer import-timm");
        assert!(
            out.status.success(),
            "import-timm failed: {}",
            String::from_utf8_lossy(&out.stderr)
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

fn predictions(s: &Session) -> Value {
    let text = s
        .eval("return window.vitrine.predictions();", json!([]))
        .expect("reading predictions");
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Waits until the page is idle with a result newer than `after_run` matching `check`.
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

fn run_id(p: &Value) -> u64 {
    p["run"].as_u64().unwrap_or(0)
}

#[test]
fn page_matches_the_cli_in_headless_chromium() {
    let root = root();
    let dist = root.join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "dist/ has no built page: run scripts/build-page first (scripts/test does)"
    );
    let chromium = find_tool(&["chromium", "chromium-browser", "google-chrome"])
        .expect("Chromium is not installed: run scripts/install-web-tools (apt-get install chromium chromium-driver)");
    let chromedriver = find_tool(&["chromedriver"])
        .expect("chromedriver is not installed: run scripts/install-web-tools (apt-get install chromium-driver)");

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
    let args: Vec<String> = [
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
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect();
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
            &expected_default,
            &expected_tiny,
        )
    }));
    if let Err(e) = outcome {
        shots.take(&s, "failure");
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
    expected_default: &(Vec<(String, u64, f64)>, Vec<f64>),
    expected_tiny: &(Vec<(String, u64, f64)>, Vec<f64>),
) {
    // 1. Load: the default model, timing of both backends, and the first sample.
    let start = Instant::now();
    s.goto(&format!("{base}/")).unwrap();
    let first = s
        .wait_for(
            "the first result",
            "const v = window.vitrine; return v && v.state() !== 'busy' && (v.state() === 'error' ? 'error: ' + v.error() : v.predictions());",
            LOAD_TIMEOUT,
        )
        .unwrap();
    assert!(
        !first.as_str().unwrap_or("").starts_with("error"),
        "the page failed to start: {first}"
    );
    let ready_s = start.elapsed().as_secs_f64();
    let timings: Value = serde_json::from_str(
        s.eval("return window.vitrine.timings();", json!([]))
            .unwrap()
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let wasm_ms = s
        .eval(
            "const e = performance.getEntriesByType('resource').find(e => e.name.endsWith('.wasm'));
             return e ? e.duration : null;",
            json!([]),
        )
        .unwrap();
    println!(
        "page ready with a result after {ready_s:.1} s; wasm download+compile entry: {wasm_ms} ms"
    );
    println!("backend timings (ms): {timings}");
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
    assert_eq!(predictions(s)["model"], default_name);
    shots.take(s, "01-loaded");

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
        s.eval(
            "const sel = document.getElementById('backend-select');
             sel.value = arguments[0]; sel.dispatchEvent(new Event('change'));",
            json!([backend]),
        )
        .unwrap();
        let p = wait_result(
            s,
            &format!("a result on {backend}"),
            run,
            &format!("p.backend === '{backend}' && p.image === 'fixture.png'"),
        )
        .unwrap();
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
    }
    println!("all {} samples classified as their names say", names.len());

    // Back to the fixture, which the later steps compare against the CLI.
    s.upload("#file-input", &[image]).unwrap();
    let p = wait_result(s, "the fixture again", run, "p.image === 'fixture.png'").unwrap();
    run = run_id(&p);

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

    s.eval(
        "const sel = document.getElementById('model-select');
         sel.value = arguments[0]; sel.dispatchEvent(new Event('change'));",
        json!([default_name]),
    )
    .unwrap();
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
}
