//! The rest of timm's ViT family through the CLI, by name, from a stand-in hub on 127.0.0.1
//! (`support/hub.rs`) serving the fixture repos `tests/fixtures/make_hub_reference.py` writes
//! with timm's own `save_for_hf` (random weights: real ones cannot be downloaded here):
//! distilled DeiT, DeiT-III, DINOv2 with registers, CLIP (with QuickGELU too) and a ViT
//! without a class token answer as timm does; the feature model says what it can do instead
//! of classifying; its registers are tokens `explain` names; it runs at 224 px; a fine-tune
//! keeps its prefix tokens; and what stays refused is refused before its weights are asked for.

use std::path::Path;
use std::process::Output;

#[path = "support/close.rs"]
mod close;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/hub.rs"]
mod hub;
#[path = "support/trainer.rs"]
mod trainer_bin;
use close::{Tolerance, assert_close};
use fixtures::{fixtures, photo};
use hub::{HubServer, Repo};
use trainer_bin::text;

const DISTILLED: &str = "timm/deit_tiny_distilled_patch16_224.fb_in1k";
const DEIT3: &str = "timm/deit3_small_patch16_224.fb_in22k_ft_in1k";
const DINO: &str = "timm/vit_small_patch14_reg4_dinov2.lvd142m";
const CLIP: &str = "timm/vit_base_patch16_clip_224.openai_ft_in1k";
const QUICK: &str = "timm/vit_base_patch16_clip_quickgelu_224.openai";
const GAP: &str = "timm/vit_medium_patch16_gap_256.sw_in12k_ft_in1k";
const DEIT: &str = "timm/deit_tiny_patch16_224.fb_in1k";

fn repo(name: &str) -> Repo {
    Repo::from_folder(&fixtures().join("hub").join(name))
}

/// The stand-in hub with every fixture repo, and `extra` ones.
fn server(extra: Vec<(&str, Repo)>) -> HubServer {
    let mut repos: std::collections::BTreeMap<String, Repo> =
        [DISTILLED, DEIT3, DINO, CLIP, QUICK, GAP, DEIT]
            .iter()
            .map(|r| (r.to_string(), repo(r)))
            .collect();
    repos.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    HubServer::start(repos)
}

/// `trainer ARGS` with the hub at `endpoint` and its cache under `home`.
fn trainer(home: &Path, endpoint: &str, args: &[&str]) -> Output {
    trainer_bin::with_hub(home, endpoint, args)
        .output()
        .unwrap()
}

fn hf(repo: &str) -> String {
    format!("hf-hub:{repo}")
}

/// `trainer COMMAND --model MODEL ARGS... --device cpu PHOTO` (a photo of the fixtures).
fn ask(
    home: &Path,
    hub: &HubServer,
    command: &str,
    model: &str,
    args: &[&str],
    photo_name: &str,
) -> Output {
    let photo = photo(photo_name);
    let mut all = vec![command, "--model", model];
    all.extend(args);
    all.extend(["--device", "cpu", &photo]);
    trainer(home, &hub.url, &all)
}

/// timm's answer (`hub_reference.safetensors`) for `key` (`<repo>.<photo>.probs`, ...).
fn reference(key: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join("hub_reference.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = tensors.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_family_answers_by_name_as_timm_does() {
    let home = tempfile::tempdir().unwrap();
    let hub = server(vec![]);
    for repo in [DISTILLED, DEIT3, CLIP, QUICK, GAP] {
        let o = ask(
            home.path(),
            &hub,
            "predict",
            &hf(repo),
            &["--json"],
            "chelsea",
        );
        let answer = json(&o);
        let name = repo.strip_prefix("timm/").unwrap();
        let theirs = reference(&format!("{name}.chelsea.probs"));
        assert_close(
            &format!("{repo} probs"),
            &theirs,
            &floats(&answer["probs"]),
            Tolerance::abs(1e-6),
        );
        let top = (0..theirs.len()).fold(0, |b, i| if theirs[i] > theirs[b] { i } else { b });
        assert_eq!(answer["top"][0]["index"], top, "{repo}: top-1");
    }
}

/// DINOv2 has no classifier: predict says so in one line, and explain shows its registers and
/// runs it at 224 px.
#[test]
fn a_feature_model_explains_and_says_why_it_cannot_classify() {
    let home = tempfile::tempdir().unwrap();
    let hub = server(vec![]);
    let dino = hf(DINO);
    let o = ask(home.path(), &hub, "predict", &dino, &[], "chelsea");
    let err = stderr(&o);
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for says in [
        "has no classes",
        "trainer explain",
        "trainer finetune",
        "Teach",
    ] {
        assert!(err.contains(says), "'{says}': {err}");
    }

    // Rollout from the class token, at 224 px: 5 prefix tokens then 16 x 16 patches.
    let args = ["--method", "rollout", "--image-size", "224", "--json"];
    let o = ask(home.path(), &hub, "explain", &dino, &args, "chelsea");
    let answer = json(&o);
    assert_eq!(
        answer["token"], "cls",
        "rollout starts from the class token"
    );
    assert_eq!(
        answer["prefix_tokens"],
        serde_json::json!(["cls", "reg1", "reg2", "reg3", "reg4"])
    );
    assert_eq!(answer["tokens"].as_array().unwrap().len(), 5 + 256);
    assert_eq!(answer["grid"].as_array().unwrap().len(), 16);
    // Where a register attends, in words, at the model's own 518 px (37 x 37 patches).
    let o = ask(
        home.path(),
        &hub,
        "explain",
        &dino,
        &["--token", "reg2"],
        "chelsea",
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("where register 2 attends"), "{out}");
    assert!(
        out.contains("register 4 "),
        "every prefix token's value: {out}"
    );
    assert!(out.contains("strongest on patch"), "{out}");
    // Relevance needs a class.
    let relevance = ["--method", "relevance"];
    let o = ask(home.path(), &hub, "explain", &dino, &relevance, "chelsea");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("relevance is for a class"),
        "{}",
        text(&o)
    );
}

/// A model without a class token: rollout starts from the patches' mean, and says so.
#[test]
fn without_a_class_token_rollout_starts_from_the_patches() {
    let home = tempfile::tempdir().unwrap();
    let hub = server(vec![]);
    let gap = hf(GAP);
    let o = ask(
        home.path(),
        &hub,
        "explain",
        &gap,
        &["--method", "rollout"],
        "chelsea",
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("where the mean of the patch tokens attends")
            && out.contains("no class token"),
        "{out}"
    );
    let o = ask(
        home.path(),
        &hub,
        "explain",
        &gap,
        &["--token", "cls"],
        "chelsea",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no token cls"), "{}", text(&o));
}

/// Fine-tuning DINOv2 with its registers at 56 px: the published model keeps the class token,
/// the four registers and positions for the patches only, and answers.
#[test]
fn finetune_keeps_the_base_models_prefix_tokens() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let hub = server(vec![]);
    let run_dir = work.path().join("run");
    let realish = fixtures().join("realish");
    let o = trainer(
        home.path(),
        &hub.url,
        &[
            "finetune",
            "--from",
            &hf(DINO),
            "--data-dir",
            realish.to_str().unwrap(),
            "--run",
            run_dir.to_str().unwrap(),
            "--image-size",
            "56",
            "--last-blocks",
            "1",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--plain",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("pos_embed resampled from 37x37 to 4x4"),
        "{}",
        text(&o)
    );
    let out = work.path().join("models");
    let o = trainer(
        home.path(),
        &hub.url,
        &[
            "publish",
            "--run",
            run_dir.to_str().unwrap(),
            "--name",
            "dino-realish",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("dino-realish.json")).unwrap()).unwrap();
    let config = &manifest["config"];
    assert_eq!(
        (
            &config["reg_tokens"],
            &config["no_embed_class"],
            &config["num_classes"],
            &config["image_size"]
        ),
        (
            &serde_json::json!(4),
            &serde_json::json!(true),
            &serde_json::json!(5),
            &serde_json::json!(56)
        )
    );
    let model = out.join("dino-realish.json");
    let model = model.to_str().unwrap();
    let args = ["--token", "reg4", "--json"];
    let o = ask(home.path(), &hub, "explain", model, &args, "coffee_tall");
    let answer = json(&o);
    assert_eq!(answer["tokens"].as_array().unwrap().len(), 5 + 16);
    let o = ask(
        home.path(),
        &hub,
        "predict",
        model,
        &["--json"],
        "coffee_tall",
    );
    assert_eq!(json(&o)["probs"].as_array().unwrap().len(), 5);
}

/// What timm's ViTs have that Vitrine's blocks do not compute is refused from config.json in
/// one line saying what, and the weights are never asked for.
#[test]
fn what_stays_refused_is_refused_before_the_weights() {
    let with_architecture = |arch: &str| {
        let mut r = repo(DEIT);
        let mut config: serde_json::Value =
            serde_json::from_slice(&r.files["config.json"]).unwrap();
        config["architecture"] = arch.into();
        r.files
            .insert("config.json".into(), config.to_string().into_bytes());
        Repo::with_files(r.files)
    };
    let refused = [
        (
            "timm/siglip",
            "vit_base_patch16_siglip_224",
            "attention pooling",
        ),
        ("timm/rope", "vit_base_patch16_rope_reg1_gap_256", "RoPE"),
        ("timm/giant", "vit_giant_patch14_reg4_dinov2", "SwiGLU"),
    ];
    let hub = server(
        refused
            .iter()
            .map(|(repo, arch, _)| (*repo, with_architecture(arch)))
            .collect(),
    );
    for (repo, _, says) in refused {
        let home = tempfile::tempdir().unwrap();
        let o = ask(home.path(), &hub, "predict", &hf(repo), &[], "chelsea");
        let err = stderr(&o);
        assert!(!o.status.success(), "{repo}: {}", text(&o));
        assert!(err.contains(says) && err.contains(repo), "{repo}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{repo}: one line: {err}");
    }
    assert!(
        !hub.requests()
            .iter()
            .any(|r| r.contains("model.safetensors")),
        "{:?}",
        hub.requests()
    );
}
