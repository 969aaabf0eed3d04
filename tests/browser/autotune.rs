//! WebGPU's autotune in the page (web/src/engine/webgpu.rs, tuning.rs; patches/), in one
//! headless Chromium session on SwiftShader's WebGPU adapter, which has no `subgroups`:
//! 1. the first visit tunes: `window.vitrine.timings()` counts keys tuned and kernels per pass,
//!    the status line says WebGPU tuned, and the console stays clean (no candidate that needs
//!    `enable subgroups;` reached the device: without patches/cubecl-wgpu the engine panics);
//!    the choices are kept in the browser's Cache API for this adapter;
//! 2. a second visit tunes nothing: every key is answered from the kept choices (without
//!    patches/cubecl-runtime it tunes again), and the status line says when they were tuned;
//! 3. a shader the device refuses (`engineFault("shader")`: one with `enable subgroups;`)
//!    stops nothing: the next photo asked of WebGPU is answered on the CPU by the same engine,
//!    and the status line says why in one line.
//!
//! The page is served without cross-origin isolation, so its engine is the default build,
//! which holds WebGPU itself (the threaded build lends it from the same code).

use serde_json::{Value, json};

use super::webdriver::Session;
use super::{
    Shots, first_result, in_browser_served, predictions, run_id, select_backend, server, status,
    wait_result, wait_timed, write_fixture_image,
};

#[test]
fn page_autotunes_webgpu_remembers_it_and_survives_a_refused_shader() {
    let work = tempfile::tempdir().expect("temp dir");
    let image = work.path().join("fixture.png");
    write_fixture_image(&image);
    in_browser_served(
        server::Isolation::Plain,
        "autotune-failure",
        |args| args,
        || {},
        |s, shots, base| steps(s, shots, base, &image),
    );
}

/// The choices kept for the adapter (the one record in the tuning cache), or null.
fn kept_choices(s: &Session) -> Value {
    s.eval(
        "return caches.open('vitrine-tuning-v1')
           .then(c => c.keys().then(k => k.length ? c.match(k[0]) : null))
           .then(r => r ? r.json() : null)
           .then(j => j ? { adapter: j.adapter, choices: Object.keys(j.choices).length } : null);",
        json!([]),
    )
    .unwrap_or(Value::Null)
}

fn count(t: &Value, field: &str) -> u64 {
    t["webgpu_tuning"][field].as_u64().unwrap_or(0)
}

fn steps(s: &Session, shots: &Shots, base: &str, image: &std::path::Path) {
    let url = format!("{base}/");
    // 1. The first visit tunes, and counts its kernels.
    first_result(s, &url, "first visit");
    let t = wait_timed(s, "WebGPU timed on the first visit");
    println!("first visit: {t}");
    assert!(
        t["webgpu"].as_f64().is_some_and(|ms| ms > 0.0),
        "WebGPU ran its timed pass: {t}"
    );
    let tuned = count(&t, "tuned");
    assert!(tuned > 0, "the first visit tunes: {t}");
    assert_eq!(count(&t, "recalled"), 0, "nothing to recall yet: {t}");
    assert!(
        t["webgpu_kernels"].as_u64().is_some_and(|n| n > 0),
        "kernels per pass are counted: {t}"
    );
    let line = status(s);
    assert!(line.contains("WebGPU tuned"), "status: {line}");
    super::assert_clean_console(s, "tuning on an adapter without subgroups");
    shots.take(s, "autotune-first-visit");
    // Tuning goes on in the background; each choice measured is kept.
    let kept = s
        .wait_for(
            "every key tuned is kept",
            &format!(
                "return caches.open('vitrine-tuning-v1')
                   .then(c => c.keys().then(k => k.length ? c.match(k[0]) : null))
                   .then(r => r ? r.json() : null)
                   .then(j => j && Object.keys(j.choices).length >= {tuned} ? j.adapter : null);"
            ),
            super::STEP_TIMEOUT,
        )
        .unwrap();
    println!("kept for adapter {kept}: {}", kept_choices(s));

    // 2. A second visit tunes nothing.
    first_result(s, &url, "second visit");
    let t = wait_timed(s, "WebGPU timed on the second visit");
    println!("second visit: {t}");
    assert_eq!(count(&t, "tuned"), 0, "the second visit tunes nothing: {t}");
    assert!(
        count(&t, "recalled") > 0,
        "it recalls the kept choices: {t}"
    );
    assert!(
        t["webgpu_kernels"].as_u64().is_some_and(|n| n > 0),
        "kernels per pass are counted: {t}"
    );
    let line = status(s);
    assert!(line.contains("as tuned on"), "status: {line}");
    super::assert_clean_console(s, "a visit with kept choices");
    shots.take(s, "autotune-second-visit");

    // 3. A refused shader: the next photo asked of WebGPU is the CPU's, from the same engine.
    let engine = |s: &Session| -> Value {
        let text = s
            .eval("return window.vitrine.engine();", json!([]))
            .unwrap();
        serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
    };
    let generation = engine(s)["generation"].clone();
    let run = run_id(&predictions(s));
    select_backend(s, "webgpu");
    let p = wait_result(s, "WebGPU chosen", run, "p.backend === 'webgpu'").unwrap();
    s.eval("window.vitrine.engineFault('shader');", json!([]))
        .unwrap();
    s.upload("#file-input", &[image]).unwrap();
    let p = wait_result(
        s,
        "the photo after a refused shader",
        run_id(&p),
        "p.image === 'fixture.png'",
    )
    .unwrap();
    assert_eq!(p["backend"], "cpu", "answered on the CPU: {p}");
    let sum: f64 = p["probs"]
        .as_array()
        .expect("probabilities")
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .sum();
    assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
    assert_eq!(
        engine(s)["generation"],
        generation,
        "the same engine answered: it did not stop"
    );
    let line = status(s);
    assert_eq!(
        line.matches("WebGPU refused a shader").count(),
        1,
        "one line says why: {line}"
    );
    shots.take(s, "autotune-refused-shader");
}
