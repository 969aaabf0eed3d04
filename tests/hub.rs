//! The CLI with models from the Hugging Face hub (`--model hf-hub:ORG/NAME`), against a
//! stand-in hub on 127.0.0.1 (`support/hub.rs`) serving the fixture repos that
//! `tests/fixtures/make_hub_reference.py` writes with timm's own `save_for_hf`: fetched once
//! into huggingface_hub's cache layout, then used with the server gone; and every bad download
//! refused in one line with nothing left in the cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/close.rs"]
mod close;
#[path = "support/hub.rs"]
mod hub;
#[path = "support/trainer.rs"]
mod trainer_bin;
use close::{Tolerance, assert_close};
use hub::{Fault, HubServer, Repo};
use trainer_bin::text;

const DEIT: &str = "timm/deit_tiny_patch16_224.fb_in1k";
const DEIT_ARG: &str = "hf-hub:timm/deit_tiny_patch16_224.fb_in1k";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn photo(name: &str) -> String {
    fixtures()
        .join("photos")
        .join(format!("{name}.png"))
        .display()
        .to_string()
}

fn deit_repo() -> Repo {
    Repo::from_folder(&fixtures().join("hub").join(DEIT))
}

/// The DeiT fixture repo with its config.json changed by `edit`.
fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Repo {
    let mut repo = deit_repo();
    let mut config: serde_json::Value = serde_json::from_slice(&repo.files["config.json"]).unwrap();
    edit(&mut config);
    repo.files
        .insert("config.json".into(), config.to_string().into_bytes());
    Repo::with_files(repo.files)
}

fn server(repos: Vec<(&str, Repo)>) -> HubServer {
    HubServer::start(repos.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// `trainer ARGS` with the hub at `endpoint` and its cache under `home`.
fn trainer(home: &Path, endpoint: &str, args: &[&str]) -> Command {
    let mut c = trainer_bin::trainer();
    c.args(args)
        .env("HF_HOME", home)
        .env("HF_ENDPOINT", endpoint)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE");
    c
}

/// Every file (and link) under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Asserts that a `predict --json` answer for `photo` has DeiT fixture's probabilities as timm
/// computed them (`hub_reference.safetensors`).
fn assert_like_timm(what: &str, answer: &serde_json::Value, photo: &str) {
    let bytes = std::fs::read(fixtures().join("hub_reference.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let name = DEIT.rsplit('/').next().unwrap();
    let t = tensors.tensor(&format!("{name}.{photo}.probs")).unwrap();
    let theirs: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let ours: Vec<f32> = answer["probs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_close(what, &theirs, &ours, Tolerance::abs(1e-6));
}

fn predict_json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn predict_fetches_once_then_runs_from_the_cache_offline() {
    let home = tempfile::tempdir().unwrap();
    let hub = server(vec![(DEIT, deit_repo())]);
    let args = [
        "predict",
        "--model",
        DEIT_ARG,
        "--device",
        "cpu",
        "--json",
        &photo("chelsea"),
    ];
    let first = predict_json(&trainer(home.path(), &hub.url, &args).output().unwrap());
    assert_like_timm("chelsea through the hub against timm", &first, "chelsea");
    // ImageNet's names, shipped with Vitrine, label a 1000-class model without label_names.
    let top = first["top"][0]["label"].as_str().unwrap();
    let names = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vit/data/imagenet-1k.txt"),
    )
    .unwrap();
    assert!(names.lines().any(|l| l == top), "{top}");

    // huggingface_hub's layout: refs/main names the commit; snapshots link to blobs named by
    // their etag (the weights' SHA-256).
    let repo_dir = home
        .path()
        .join("hub/models--timm--deit_tiny_patch16_224.fb_in1k");
    let commit = std::fs::read_to_string(repo_dir.join("refs/main")).unwrap();
    let weights = repo_dir
        .join("snapshots")
        .join(&commit)
        .join("model.safetensors");
    assert!(weights.is_symlink(), "{}", weights.display());
    let blob = std::fs::canonicalize(&weights).unwrap();
    let bytes = std::fs::read(&blob).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(blob.file_name().unwrap().to_str().unwrap(), sha);
    assert_eq!(blob.parent().unwrap().file_name().unwrap(), "blobs");
    assert!(
        files_under(home.path())
            .iter()
            .all(|p| !p.to_string_lossy().contains("incomplete")),
        "no partial file stays"
    );
    let fetched = |h: &HubServer| h.requests().iter().filter(|r| r.starts_with("GET")).count();
    let gets = fetched(&hub);
    assert!(gets >= 2, "{:?}", hub.requests());

    // Online again: the hub is asked which commit main is, and nothing is downloaded.
    let again = predict_json(&trainer(home.path(), &hub.url, &args).output().unwrap());
    assert_eq!(again["probs"], first["probs"]);
    assert_eq!(fetched(&hub), gets, "{:?}", hub.requests());

    // A new commit that changes config.json alone: its weights link the blob already there.
    let retagged = server(vec![(
        DEIT,
        edited(|c| c["pretrained_cfg"]["tag"] = "fb_in1k_v2".into()),
    )]);
    let moved = predict_json(&trainer(home.path(), &retagged.url, &args).output().unwrap());
    assert_eq!(moved["probs"], first["probs"]);
    assert!(
        !retagged
            .requests()
            .iter()
            .any(|r| r.starts_with("GET") && r.contains("model.safetensors")),
        "{:?}",
        retagged.requests()
    );
    let newer = std::fs::read_to_string(repo_dir.join("refs/main")).unwrap();
    assert_ne!(newer, commit);
    let relinked = repo_dir
        .join("snapshots")
        .join(&newer)
        .join("model.safetensors");
    assert_eq!(std::fs::canonicalize(&relinked).unwrap(), blob);
    drop(retagged);

    // The hub gone: HF_HUB_OFFLINE=1 reads the cache alone; without it, the unreachable hub
    // is said once and the cache serves.
    let url = hub.url.clone();
    hub.stop();
    let offline = trainer(home.path(), &url, &args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert_eq!(predict_json(&offline)["probs"], first["probs"]);
    let unreachable = trainer(home.path(), &url, &args).output().unwrap();
    assert_eq!(predict_json(&unreachable)["probs"], first["probs"]);
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("using the cached copy"),
        "{}",
        text(&unreachable)
    );

    // Explain and patches take hub names too, offline from the cache.
    let out = home.path().join("patches.png");
    let o = trainer(
        home.path(),
        &url,
        &[
            "patches",
            &photo("coffee_tall"),
            "--model",
            DEIT_ARG,
            "--out",
        ],
    )
    .arg(&out)
    .env("HF_HUB_OFFLINE", "1")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("196 patches"),
        "{}",
        text(&o)
    );
    let o = trainer(
        home.path(),
        &url,
        &[
            "explain",
            &photo("rocket_small"),
            "--model",
            DEIT_ARG,
            "--method",
            "rollout",
            "--json",
            "--device",
            "cpu",
        ],
    )
    .env("HF_HUB_OFFLINE", "1")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn import_timm_from_the_hub_writes_a_pair_that_answers_as_the_hub_model() {
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let hub = server(vec![(DEIT, deit_repo())]);
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import-timm",
            DEIT_ARG,
            "--out",
            out.path().to_str().unwrap(),
        ];
        args.extend(extra);
        trainer(home.path(), &hub.url, &args).output().unwrap()
    };
    let o = import(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest = out.path().join("deit_tiny_patch16_224.fb_in1k.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(
        json["resize"]["crop_pct"], 0.9,
        "timm's preprocessing travels with it"
    );
    assert_eq!(json["labels"].as_array().unwrap().len(), 1000);
    let text_json = json.to_string();
    for private in [home.path(), out.path()] {
        assert!(
            !text_json.contains(private.to_str().unwrap()),
            "no machine path"
        );
    }
    let args = [
        "predict",
        "--model",
        manifest.to_str().unwrap(),
        "--json",
        "--device",
        "cpu",
        &photo("astronaut_wide"),
    ];
    let pair = predict_json(&trainer(home.path(), &hub.url, &args).output().unwrap());
    assert_like_timm("the imported pair against timm", &pair, "astronaut_wide");
    // --name renames the pair; --heads is the config's business for a hub model.
    let o = import(&["--name", "deit-ti"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.path().join("deit-ti.json").is_file() && out.path().join("deit-ti.bpk").is_file());
    let o = import(&["--heads", "3"]);
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("config.json gives them"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_gated_repo_needs_a_token() {
    let home = tempfile::tempdir().unwrap();
    let mut repo = deit_repo();
    repo.fault = Fault::Gated("hf_test_token");
    let hub = server(vec![(DEIT, repo)]);
    let args = [
        "predict",
        "--model",
        DEIT_ARG,
        "--device",
        "cpu",
        &photo("chelsea"),
    ];
    let o = trainer(home.path(), &hub.url, &args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("is gated") && err.contains("HF_TOKEN"),
        "{}",
        text(&o)
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        files_under(home.path()).is_empty(),
        "{:?}",
        files_under(home.path())
    );
    let o = trainer(home.path(), &hub.url, &args)
        .env("HF_TOKEN", "hf_test_token")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// Each bad download: one clear line, a failed exit, and not a file left in the cache.
#[test]
fn bad_downloads_are_refused_in_one_line_and_leave_nothing_in_the_cache() {
    let siglip = edited(|c| c["architecture"] = "vit_base_patch16_siglip_224".into());
    let contradicting = edited(|c| {
        c.as_object_mut().unwrap().remove("model_args");
    });
    let mut html = deit_repo();
    html.files.insert(
        "config.json".into(),
        b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>oops</body></html>"
            .to_vec(),
    );
    let faulty = |fault| {
        let mut r = deit_repo();
        r.fault = fault;
        r
    };
    let hub = server(vec![
        ("timm/siglip", siglip),
        ("timm/contradicting", contradicting),
        ("timm/html", Repo::with_files(html.files)),
        ("timm/wrong-sha", faulty(Fault::WrongSha)),
        ("timm/wrong-size", faulty(Fault::WrongSize)),
        ("timm/cut", faulty(Fault::CutHalfway)),
    ]);
    for (repo, says) in [
        ("timm/nothing-here", "was not found"),
        ("timm/html", "HTML page"),
        ("timm/siglip", "attention pooling"),
        ("timm/wrong-sha", "SHA-256"),
        ("timm/wrong-size", "closed after"),
        ("timm/cut", "nothing was kept"),
        ("timm/contradicting", "contradicts config.json"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let model = format!("hf-hub:{repo}");
        let o = trainer(
            home.path(),
            &hub.url,
            &[
                "predict",
                "--model",
                &model,
                "--device",
                "cpu",
                &photo("chelsea"),
            ],
        )
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{repo}: {}", text(&o));
        assert!(
            err.contains(says),
            "{repo}: expected '{says}': {}",
            text(&o)
        );
        assert_eq!(err.trim().lines().count(), 1, "{repo}: one line: {err}");
        assert!(
            err.contains(repo),
            "{repo}: the message names the model: {err}"
        );
        let left = files_under(home.path());
        assert!(left.is_empty(), "{repo}: left in the cache: {left:?}");
    }
    // An unsupported model is refused from its config.json, before its weights are asked for.
    assert!(
        !hub.requests()
            .iter()
            .any(|r| r.contains("siglip") && r.contains("model.safetensors")),
        "{:?}",
        hub.requests()
    );
    // Offline with nothing cached: said, not attempted.
    let home = tempfile::tempdir().unwrap();
    let o = trainer(
        home.path(),
        &hub.url,
        &["predict", "--model", DEIT_ARG, &photo("chelsea")],
    )
    .env("HF_HUB_OFFLINE", "1")
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("not in the cache") && err.contains("HF_HUB_OFFLINE"),
        "{}",
        text(&o)
    );
    // A malformed name is refused by the argument parser, naming the form.
    let o = trainer(
        home.path(),
        &hub.url,
        &["predict", "--model", "hf-hub:deit", &photo("chelsea")],
    )
    .output()
    .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hf-hub:ORG/NAME"),
        "{}",
        text(&o)
    );
}

/// Ctrl-C while the weights are on their way, the network stalled: the process ends at once
/// and the half-written file goes with it.
#[cfg(unix)]
#[test]
fn ctrl_c_mid_download_leaves_nothing_in_the_cache() {
    let home = tempfile::tempdir().unwrap();
    let mut repo = deit_repo();
    repo.fault = Fault::StallHalfway;
    let hub = server(vec![(DEIT, repo)]);
    let child = trainer(
        home.path(),
        &hub.url,
        &[
            "predict",
            "--model",
            DEIT_ARG,
            "--device",
            "cpu",
            &photo("chelsea"),
        ],
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Wait until half the weights sit in a partial file beside the cache.
    let started = std::time::Instant::now();
    let partial = loop {
        let found = files_under(&home.path().join("hub")).into_iter().find(|p| {
            p.to_string_lossy().ends_with(".incomplete") && p.metadata().is_ok_and(|m| m.len() > 0)
        });
        if let Some(p) = found {
            break p;
        }
        assert!(started.elapsed().as_secs() < 20, "no download started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed().as_secs() < 25,
        "it did not wait for the stalled network"
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(!partial.exists(), "{} was left", partial.display());
    let left = files_under(home.path());
    assert!(left.is_empty(), "left in the cache: {left:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing half-downloaded was kept"));
}

#[test]
fn finetune_starts_from_a_hub_model_and_keeps_it_in_the_run() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let hub = server(vec![(DEIT, deit_repo())]);
    // Two classes of photo crops: the cat and the coffee cup, each moved and mirrored.
    let data = work.path().join("data");
    for (class, source) in [("cat", "chelsea"), ("cup", "coffee_tall")] {
        let img = image::open(photo(source)).unwrap().to_rgb8();
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..5u32 {
            let side = img.width().min(img.height()) - 10 * i;
            let mut crop = image::imageops::crop_imm(&img, 5 * i, 3 * i, side, side).to_image();
            if i % 2 == 1 {
                crop = image::imageops::flip_horizontal(&crop);
            }
            crop.save(data.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let run_dir = work.path().join("run");
    let o = trainer(
        home.path(),
        &hub.url,
        &[
            "finetune",
            "--from",
            DEIT_ARG,
            "--data-dir",
            data.to_str().unwrap(),
            "--run",
            run_dir.to_str().unwrap(),
            "--head-only",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--plain",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let base = run_dir.join("base/deit_tiny_patch16_224.fb_in1k.json");
    assert!(
        base.is_file(),
        "the hub model is kept in the run: {}",
        text(&o)
    );
    // Publishing works as for any run, and names no folder of this machine.
    let out = work.path().join("models");
    let o = trainer(
        home.path(),
        &hub.url,
        &[
            "publish",
            "--run",
            run_dir.to_str().unwrap(),
            "--name",
            "cat-or-cup",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let published = std::fs::read_to_string(out.join("cat-or-cup.json")).unwrap();
    for private in [home.path(), work.path()] {
        assert!(
            !published.contains(private.to_str().unwrap()),
            "{published}"
        );
    }
}
