//! The CLI with models from the Hugging Face hub (`--model hf-hub:ORG/NAME`), against a
//! stand-in hub on 127.0.0.1 (`support/hub.rs`) that answers as the real hub does, serving
//! the fixture repos that `tests/fixtures/make_hub_reference.py` writes with timm's own
//! `save_for_hf`: fetched once into huggingface_hub's cache layout (as `hf cache scan` reads
//! it, with the umask's permissions), then used with the server gone or down; a cache written
//! by Python's huggingface_hub used without a request; downloads through a proxy from the
//! environment, a mirror, and the hub's own redirects, the token never leaving the hub; every
//! refusal and bad download said in one line with nothing left in the cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
use hub::{CountingProxy, Fault, HubServer, Repo, TlsFront};
use trainer_bin::text;

const DEIT: &str = "timm/deit_tiny_patch16_224.fb_in1k";
const DEIT_ARG: &str = "hf-hub:timm/deit_tiny_patch16_224.fb_in1k";

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
    trainer_bin::with_hub(home, endpoint, args)
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
    // A token pasted with its newline, as huggingface_hub cleans it.
    let o = trainer(home.path(), &hub.url, &args)
        .env("HF_TOKEN", "hf_test_token\r\n")
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

/// `trainer predict --model hf-hub:REPO` on the cat photo, with the hub at `endpoint`.
fn predict(home: &Path, endpoint: &str, repo: &str) -> Command {
    let model = format!("hf-hub:{repo}");
    let mut c = trainer(
        home,
        endpoint,
        &["predict", "--model", &model, "--device", "cpu", "--json"],
    );
    c.arg(photo("chelsea"));
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that `o` failed with one line naming `repo` and holding each of `says`.
fn assert_refused(o: &Output, repo: &str, says: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "{repo}: {}", text(o));
    assert_eq!(err.trim().lines().count(), 1, "{repo}: one line: {err}");
    assert!(
        err.contains(repo),
        "{repo}: the message names the model: {err}"
    );
    for s in says {
        assert!(err.contains(s), "{repo}: expected '{s}': {err}");
    }
}

/// A header of a raw answer.
fn header<'a>(r: &'a ureq::Response, name: &str) -> Option<&'a str> {
    r.header(name)
}

/// The stand-in's answers, read raw (no redirect followed): each as the real hub gives it.
#[test]
fn the_stand_in_answers_as_the_hub_does() {
    let mut gated = deit_repo();
    gated.fault = Fault::Gated("hf_ok");
    let mut limited = deit_repo();
    limited.fault = Fault::RateLimited(7);
    let mut down = deit_repo();
    down.fault = Fault::Down;
    let hub = server(vec![
        (DEIT, deit_repo()),
        ("timm/gated", gated),
        ("timm/limited", limited),
        ("timm/down", down),
    ]);
    let commit = deit_repo().commit;
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let ask = |method: &str, path: &str, token: Option<&str>| {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", hub.url)
        };
        let mut request = agent.request(method, &url);
        if let Some(t) = token {
            request = request.set("Authorization", &format!("Bearer {t}"));
        }
        match request.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        }
    };
    let resolve = |repo: &str, file: &str| format!("/{repo}/resolve/main/{file}");

    // Refusals, as (method, path, token, status, X-Error-Code):
    let revision = format!("/{DEIT}/resolve/v9/config.json");
    for (method, path, token, status, code) in [
        // An unknown repo: 401 without a code to an anonymous client, 404 RepoNotFound with a
        // token.
        (
            "HEAD",
            resolve("timm/no-such-model", "config.json"),
            None,
            401,
            None,
        ),
        (
            "HEAD",
            resolve("timm/no-such-model", "config.json"),
            Some("hf_x"),
            404,
            Some("RepoNotFound"),
        ),
        (
            "GET",
            "/api/models/timm/no-such-model/revision/main".to_string(),
            None,
            401,
            None,
        ),
        // Gated: 401 anonymously, 403 to a token without access, both GatedRepo.
        (
            "HEAD",
            resolve("timm/gated", "config.json"),
            None,
            401,
            Some("GatedRepo"),
        ),
        (
            "HEAD",
            resolve("timm/gated", "config.json"),
            Some("hf_other"),
            403,
            Some("GatedRepo"),
        ),
        // A missing file, with the commit (below); a missing revision.
        (
            "HEAD",
            resolve(DEIT, "pytorch_model.bin"),
            None,
            404,
            Some("EntryNotFound"),
        ),
        ("HEAD", revision, None, 404, Some("RevisionNotFound")),
    ] {
        let r = ask(method, &path, token);
        assert_eq!(
            (r.status(), header(&r, "X-Error-Code")),
            (status, code),
            "{method} {path}"
        );
        if code == Some("EntryNotFound") {
            assert_eq!(header(&r, "X-Repo-Commit"), Some(commit.as_str()));
        }
    }
    // A small file: a relative 307 to the resolve cache, whose answer carries ETag and commit.
    let r = ask("HEAD", &resolve(DEIT, "config.json"), None);
    assert_eq!(r.status(), 307);
    let to = header(&r, "Location").unwrap().to_string();
    let prefix = format!("/api/resolve-cache/models/{DEIT}/{commit}/config.json?");
    assert!(to.starts_with(&prefix) && to.contains("etag=%22"), "{to}");
    let r = ask("GET", &to, None);
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "X-Repo-Commit"), Some(commit.as_str()));
    assert!(header(&r, "ETag").unwrap().starts_with('"'));
    let config = r.into_string().unwrap();
    assert!(config.contains("deit_tiny_patch16_224"), "{config}");
    // A large file: a 302 to the CDN's own host, with its SHA-256 and size; the redirect's
    // Content-Length is its own small body's.
    let r = ask("HEAD", &resolve(DEIT, "model.safetensors"), None);
    assert_eq!(r.status(), 302);
    let weights =
        std::fs::read(fixtures().join("hub").join(DEIT).join("model.safetensors")).unwrap();
    assert_eq!(
        header(&r, "X-Linked-Size"),
        Some(weights.len().to_string().as_str())
    );
    let linked_len: usize = header(&r, "Content-Length").unwrap().parse().unwrap();
    assert!(linked_len < 1000, "{linked_len}");
    let to = header(&r, "Location").unwrap().to_string();
    assert!(
        to.starts_with(&hub.cdn_url) && hub.cdn_url != hub.url,
        "{to}"
    );
    let r = ask("GET", &to, None);
    assert_eq!(r.status(), 200);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    assert_eq!(body, weights);
    // Rate-limited, with the wait; down.
    let r = ask("HEAD", &resolve("timm/limited", "config.json"), None);
    assert_eq!((r.status(), header(&r, "Retry-After")), (429, Some("7")));
    let r = ask("HEAD", &resolve("timm/down", "config.json"), None);
    assert_eq!(r.status(), 503);
    // The mirror hands every request to the hub's absolute URL.
    let r = ask(
        "HEAD",
        &format!("/mirror{}", resolve(DEIT, "config.json")),
        None,
    );
    assert_eq!(r.status(), 308);
    assert_eq!(
        header(&r, "Location"),
        Some(format!("{}{}", hub.url, resolve(DEIT, "config.json")).as_str())
    );
}

/// Each refusal of the hub: one line naming the model and saying what to do, and nothing in
/// the cache.
#[test]
fn each_refusal_says_what_to_do() {
    let mut gated = deit_repo();
    gated.fault = Fault::Gated("hf_ok");
    let mut only_bin = deit_repo();
    let weights = only_bin.files.remove("model.safetensors").unwrap();
    only_bin.files.insert("pytorch_model.bin".into(), weights);
    let mut limited = deit_repo();
    limited.fault = Fault::RateLimited(7);
    let mut down = deit_repo();
    down.fault = Fault::Down;
    let mut private = deit_repo();
    private.fault = Fault::Private("hf_owner");
    let hub = server(vec![
        ("timm/gated", gated),
        ("timm/only-bin", Repo::with_files(only_bin.files)),
        ("timm/limited", limited),
        ("timm/down", down),
        ("timm/private", private),
        (DEIT, deit_repo()),
    ]);
    let gated_page = format!("{}/timm/gated", hub.url);
    let cases: Vec<(&str, Option<&str>, Vec<&str>)> = vec![
        // A typo: the hub answers 401 without a code; a typo is not a login problem.
        (
            "timm/deit_tiny_patch16_224.fb_in1kk",
            None,
            vec![
                "was not found",
                "check the name",
                "if it is private",
                "HF_TOKEN",
            ],
        ),
        // A private repo looks the same to an anonymous client, on purpose.
        (
            "timm/private",
            None,
            vec!["was not found", "check the name"],
        ),
        (
            "timm/private",
            Some("hf_someone_else"),
            vec!["was not found", "HF_TOKEN's account can see"],
        ),
        (
            "timm/gated",
            None,
            vec!["is gated", &gated_page, "HF_TOKEN"],
        ),
        (
            "timm/gated",
            Some("hf_other"),
            vec!["no access", &gated_page],
        ),
        (
            "timm/only-bin",
            None,
            vec!["no model.safetensors", "pytorch_model.bin"],
        ),
        (
            "timm/deit_tiny_patch16_224.fb_in1k@v9",
            None,
            vec!["no revision 'v9'"],
        ),
        ("timm/limited", None, vec!["HTTP 429", "again in 7 s"]),
        ("timm/down", None, vec!["down or overloaded", "HTTP 503"]),
    ];
    for (repo, token, says) in cases {
        let home = tempfile::tempdir().unwrap();
        let mut c = predict(home.path(), &hub.url, repo);
        if let Some(token) = token {
            c.env("HF_TOKEN", token);
        }
        let o = c.output().unwrap();
        let name = repo.split('@').next().unwrap();
        assert_refused(&o, name, &says);
        assert!(
            !stderr(&o).contains("login"),
            "{repo}: never 'log in' for a missing repo: {}",
            stderr(&o)
        );
        let left = files_under(home.path());
        assert!(left.is_empty(), "{repo}: left in the cache: {left:?}");
    }
}

/// A small file through the hub's relative 307 to its resolve cache, a large one through the
/// 302 to the CDN; the token goes with every request to the hub and none to the CDN.
#[test]
fn the_token_goes_through_the_hubs_redirects_but_never_to_the_cdn() {
    let home = tempfile::tempdir().unwrap();
    let mut gated = deit_repo();
    gated.fault = Fault::Gated("hf_ok");
    let hub = server(vec![(DEIT, gated)]);
    let o = predict(home.path(), &hub.url, DEIT)
        .env("HF_TOKEN", "hf_ok")
        .output()
        .unwrap();
    predict_json(&o);
    let seen = hub.seen();
    let cache_gets: Vec<_> = seen
        .iter()
        .filter(|s| s.path.starts_with("/api/resolve-cache/models/"))
        .collect();
    assert!(
        cache_gets
            .iter()
            .any(|s| s.method == "GET" && s.path.contains("/config.json?")),
        "config.json came through the resolve cache: {seen:#?}"
    );
    for s in &seen {
        if s.cdn {
            assert_eq!(s.authorization, None, "the token went to the CDN: {s:?}");
        } else {
            assert_eq!(s.authorization.as_deref(), Some("Bearer hf_ok"), "{s:?}");
        }
    }
    assert!(seen.iter().any(|s| s.cdn && s.method == "GET"), "{seen:#?}");
}

/// An `HF_ENDPOINT` mirror that answers with an absolute redirect to the hub.
#[test]
fn a_mirror_that_hands_over_to_the_hub_is_followed() {
    let home = tempfile::tempdir().unwrap();
    let hub = server(vec![(DEIT, deit_repo())]);
    let mirror = format!("{}/mirror", hub.url);
    let answer = predict_json(&predict(home.path(), &mirror, DEIT).output().unwrap());
    assert_like_timm("through the mirror", &answer, "chelsea");
    let requests = hub.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("HEAD /mirror/")),
        "{requests:?}"
    );
}

/// Without `X-Linked-Size`, the size is the CDN's answer's, not the redirect's own body's.
#[test]
fn a_redirect_without_x_linked_size_is_not_taken_for_the_files_size() {
    let home = tempfile::tempdir().unwrap();
    let mut repo = deit_repo();
    repo.fault = Fault::NoLinkedSize;
    let hub = server(vec![(DEIT, repo)]);
    let answer = predict_json(&predict(home.path(), &hub.url, DEIT).output().unwrap());
    assert_like_timm("without X-Linked-Size", &answer, "chelsea");
}

/// A proxy from the environment carries every request; `NO_PROXY` bypasses it; a proxy that
/// is not there is named in the message.
#[test]
fn downloads_go_through_the_proxy_unless_no_proxy_names_the_hub() {
    let hub = server(vec![(DEIT, deit_repo())]);
    let proxy = CountingProxy::start();
    for var in ["HTTPS_PROXY", "http_proxy"] {
        let home = tempfile::tempdir().unwrap();
        let before = (proxy.count(), hub.requests().len());
        let o = predict(home.path(), &hub.url, DEIT)
            .env(var, &proxy.url)
            .output()
            .unwrap();
        assert_like_timm(var, &predict_json(&o), "chelsea");
        let through = proxy.count() - before.0;
        let asked = hub.requests().len() - before.1;
        assert!(asked >= 4, "{var}: {:?}", hub.requests());
        assert!(
            through >= asked,
            "{var}: {through} through the proxy, {asked} asked"
        );
    }
    let home = tempfile::tempdir().unwrap();
    let before = proxy.count();
    let o = predict(home.path(), &hub.url, DEIT)
        .env("HTTPS_PROXY", &proxy.url)
        .env("NO_PROXY", "localhost,127.0.0.1")
        .output()
        .unwrap();
    predict_json(&o);
    assert_eq!(proxy.count(), before, "NO_PROXY bypasses the proxy");
    // A proxy that is not listening: the message says which.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let home = tempfile::tempdir().unwrap();
    let o = predict(home.path(), &hub.url, DEIT)
        .env("HTTPS_PROXY", format!("http://{dead}"))
        .output()
        .unwrap();
    assert_refused(
        &o,
        DEIT,
        &["could not be reached", &format!("proxy {dead}")],
    );
}

/// Copies `from` to `to`, links as links.
#[cfg(unix)]
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let kind = e.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A cache that Python's huggingface_hub wrote (`tests/fixtures/make_python_hub_cache.py`):
/// a commit it holds is used with no request; `main` offline from its ref; `main` online asks
/// the hub which commit that is, and downloads nothing.
#[cfg(unix)]
#[test]
fn a_cache_written_by_python_is_used_without_a_request() {
    let home = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("python-hub-cache"), home.path());
    let hub = server(vec![(DEIT, deit_repo())]);
    let commit = deit_repo().commit;
    let repo_dir = home
        .path()
        .join("hub/models--timm--deit_tiny_patch16_224.fb_in1k");
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        commit,
        "the fixture's commit is the stand-in's (remake it with make_python_hub_cache.py)"
    );
    let pinned = format!("{DEIT}@{commit}");
    let answer = predict_json(&predict(home.path(), &hub.url, &pinned).output().unwrap());
    assert_like_timm("Python's cache, pinned", &answer, "chelsea");
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    let o = predict(home.path(), &hub.url, DEIT)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert_eq!(predict_json(&o)["probs"], answer["probs"]);
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    let o = predict(home.path(), &hub.url, DEIT).output().unwrap();
    assert_eq!(predict_json(&o)["probs"], answer["probs"]);
    let requests = hub.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.starts_with("HEAD")),
        "{requests:?}"
    );
    // Python's files are left as they were.
    let before = files_under(&fixtures().join("python-hub-cache")).len();
    assert_eq!(files_under(home.path()).len(), before);
}

/// What `hf cache scan` (huggingface_hub's `scan_cache_dir`) calls corrupted, checked rule by
/// rule: every entry of the cache is a `{type}s--{org}--{name}` folder (or its `.locks` and
/// `CACHEDIR.TAG`) with a `snapshots/` folder holding only folders; every file of a snapshot
/// resolves to an existing blob; every ref names a snapshot that exists. Also no partial
/// file (`blobs/*.incomplete`), which it lists apart.
fn assert_scans_clean(cache: &Path) {
    for entry in std::fs::read_dir(cache).unwrap() {
        let repo = entry.unwrap().path();
        let name = repo.file_name().unwrap().to_string_lossy().into_owned();
        if name == ".locks" || name == "CACHEDIR.TAG" {
            continue;
        }
        assert!(repo.is_dir(), "not a folder: {}", repo.display());
        let (kind, _) = name.split_once("--").expect("type--org--name");
        assert!(["models", "datasets", "spaces"].contains(&kind), "{name}");
        let snapshots = repo.join("snapshots");
        assert!(snapshots.is_dir(), "no snapshots/ in {name}");
        for revision in std::fs::read_dir(&snapshots).unwrap() {
            let revision = revision.unwrap().path();
            assert!(
                revision.is_dir(),
                "a file in snapshots/: {}",
                revision.display()
            );
            for file in files_under(&revision) {
                assert!(file.exists(), "broken link: {}", file.display());
            }
        }
        for r in files_under(&repo.join("refs")) {
            let commit = std::fs::read_to_string(&r).unwrap();
            assert!(
                snapshots.join(&commit).is_dir(),
                "{} names {commit}, which is not in snapshots/",
                r.display()
            );
        }
        let partial: Vec<_> = files_under(&repo.join("blobs"))
            .into_iter()
            .filter(|b| b.to_string_lossy().ends_with(".incomplete"))
            .collect();
        assert!(partial.is_empty(), "{partial:?}");
    }
}

/// Under umask 022 a shared cache is readable by all (0644 files, 0755 folders); under 002 the
/// group may write too, as Python's blobs are; and what we write passes `hf cache scan`'s
/// rules, a failed download included.
#[cfg(unix)]
#[test]
fn downloads_take_the_umasks_permissions_and_pass_hf_cache_scans_rules() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mut cut = deit_repo();
    cut.fault = Fault::CutHalfway;
    let hub = server(vec![(DEIT, deit_repo()), ("timm/cut", cut)]);
    for (umask, file_mode, dir_mode) in [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)] {
        let home = tempfile::tempdir().unwrap();
        let mut c = predict(home.path(), &hub.url, DEIT);
        // SAFETY: umask is async-signal-safe, and the child sets only its own.
        unsafe {
            c.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            });
        }
        predict_json(&c.output().unwrap());
        let cache = home.path().join("hub");
        let repo = cache.join("models--timm--deit_tiny_patch16_224.fb_in1k");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let blobs = files_under(&repo.join("blobs"));
        assert_eq!(blobs.len(), 2, "{blobs:?}");
        for file in blobs.iter().chain(&files_under(&repo.join("refs"))) {
            assert_eq!(mode(file), file_mode, "{umask:o}: {}", file.display());
        }
        for dir in [
            &repo,
            &repo.join("blobs"),
            &repo.join("snapshots"),
            &repo.join("refs"),
        ] {
            assert_eq!(mode(dir), dir_mode, "{umask:o}: {}", dir.display());
        }
        assert_scans_clean(&cache);
        let o = predict(home.path(), &hub.url, "timm/cut").output().unwrap();
        assert!(!o.status.success(), "{}", text(&o));
        assert_scans_clean(&cache);
    }
}

/// The hub down (503), rate-limiting (429) or refusing the credentials (401): a model already
/// in the cache still runs, after one line of warning; one that is not is refused in the
/// hub's words.
#[test]
fn a_cached_model_runs_while_the_hub_is_down() {
    let home = tempfile::tempdir().unwrap();
    let hub = server(vec![(DEIT, deit_repo())]);
    let first = predict_json(&predict(home.path(), &hub.url, DEIT).output().unwrap());
    for (fault, says) in [
        (Fault::Down, "HTTP 503"),
        (Fault::RateLimited(30), "HTTP 429"),
        (Fault::Gated("hf_new_terms"), "HTTP 401 (GatedRepo)"),
    ] {
        hub.set_fault(DEIT, fault);
        let asked = hub.requests().len();
        let o = predict(home.path(), &hub.url, DEIT).output().unwrap();
        assert_eq!(predict_json(&o)["probs"], first["probs"], "{fault:?}");
        let err = stderr(&o);
        let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
        assert_eq!(warnings.len(), 1, "{fault:?}: one warning: {err}");
        assert!(
            warnings[0].contains(says) && warnings[0].contains("using the cached copy"),
            "{fault:?}: {err}"
        );
        // The hub is asked once: the weights are not asked for after config.json failed.
        assert_eq!(
            hub.requests().len() - asked,
            1,
            "{:?}",
            &hub.requests()[asked..]
        );
    }
    hub.set_fault(DEIT, Fault::Down);
    let empty = tempfile::tempdir().unwrap();
    let o = predict(empty.path(), &hub.url, DEIT).output().unwrap();
    assert_refused(&o, DEIT, &["down or overloaded", "HTTP 503"]);
}

/// A download that stalls fails after `HF_HUB_DOWNLOAD_TIMEOUT`, saying so.
#[test]
fn a_stalled_download_times_out_with_a_clear_message() {
    let home = tempfile::tempdir().unwrap();
    let mut repo = deit_repo();
    repo.fault = Fault::StallHalfway;
    let hub = server(vec![(DEIT, repo)]);
    let start = Instant::now();
    let o = predict(home.path(), &hub.url, DEIT)
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_refused(
        &o,
        DEIT,
        &["sent nothing for 1 s", "HF_HUB_DOWNLOAD_TIMEOUT"],
    );
    let left = files_under(home.path());
    assert!(left.is_empty(), "{left:?}");
}

/// In a log a download of a megabyte or more ends with one line; `HF_HUB_DISABLE_PROGRESS_BARS`
/// drops it.
#[test]
fn progress_lines_follow_hf_hub_disable_progress_bars() {
    // Weights of 2 MB that are no safetensors file: downloaded in full, then refused.
    let mut big = deit_repo();
    let garbage: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    big.files.insert("model.safetensors".into(), garbage);
    let hub = server(vec![(DEIT, Repo::with_files(big.files))]);
    for (disable, line) in [(None, true), (Some("1"), false)] {
        let home = tempfile::tempdir().unwrap();
        let mut c = predict(home.path(), &hub.url, DEIT);
        if let Some(v) = disable {
            c.env("HF_HUB_DISABLE_PROGRESS_BARS", v);
        }
        let o = c.output().unwrap();
        let err = stderr(&o);
        assert!(err.contains("not a readable safetensors file"), "{err}");
        let said = err.lines().any(|l| l.contains("model.safetensors: 2.0 MB"));
        assert_eq!(said, line, "{disable:?}: {err}");
    }
}

/// A hub behind HTTPS whose certificate only the system's store trusts (here `SSL_CERT_FILE`,
/// as an administrator adds a TLS-inspecting firewall's): accepted through the system's
/// store; without it, refused in one line that says where a certificate goes.
#[test]
fn the_systems_certificates_are_trusted_besides_the_bundled_ones() {
    let hub = server(vec![(DEIT, deit_repo())]);
    let tls = fixtures().join("tls");
    let front = TlsFront::start(&hub.url, &tls);
    let home = tempfile::tempdir().unwrap();
    let o = predict(home.path(), &front.url, DEIT)
        .env("SSL_CERT_FILE", tls.join("ca.pem"))
        .output()
        .unwrap();
    assert_like_timm("over TLS", &predict_json(&o), "chelsea");
    assert!(
        hub.requests()
            .iter()
            .any(|r| r.starts_with("HEAD /api/resolve-cache/")),
        "{:?}",
        hub.requests()
    );
    let home = tempfile::tempdir().unwrap();
    let o = predict(home.path(), &front.url, DEIT)
        .env(
            "SSL_CERT_FILE",
            fixtures().join("tls/server.pem").with_file_name("none.pem"),
        )
        .output()
        .unwrap();
    assert_refused(&o, DEIT, &["TLS failed", "SSL_CERT_FILE"]);
}
