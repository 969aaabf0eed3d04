//! `trainer publish`: a finished run becomes a model pair the page lists.
//!
//! A published manifest is read by every visitor of the page, so it names no place on the
//! disk of the machine that trained it: the dataset appears by its folder's name, the command
//! with each path cut to its last part, and a manifest that would still carry an absolute path
//! (a `--description` naming one, say) is refused rather than written.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use vit::index::ModelIndex;
use vit::weights::{Manifest, save_pair, write_atomic};

use crate::eval::Evaluation;
use crate::run::{load_run_model, read_json};

pub fn run(
    run_dir: &Path,
    name: &str,
    out: &Path,
    make_default: bool,
    description: Option<&str>,
) -> Result<ExitCode> {
    vit::weights::check_model_name(name)?;
    let (recipe, info, state, model) = load_run_model(run_dir, &Device::flex())?;
    let verb = if recipe.finetune.is_some() {
        "finetune"
    } else {
        "train"
    };
    if state.epoch < recipe.epochs {
        bail!(
            "{} is not finished ({} of {} epochs); resume it with `trainer {verb} --resume --run {0}`",
            run_dir.display(),
            state.epoch,
            recipe.epochs
        );
    }
    let eval: Evaluation = read_json(&run_dir.join("eval.json"))?;
    let mut manifest = Manifest::new(
        name,
        recipe.model.clone(),
        info.classes.clone(),
        recipe.normalization,
    );
    let c = &recipe.model;
    let dataset = portable(&info.dataset_description, &info.data_dir);
    let command = portable(&info.command, &info.data_dir);
    let base = recipe
        .finetune
        .as_ref()
        .map(|f| format!(", fine-tuned from {}", f.base))
        .unwrap_or_default();
    manifest.description = description.map(String::from).unwrap_or_else(|| {
        format!(
            "ViT {}px/patch {}, dim {}, depth {}, {} heads{base} — {:.1}% top-1 on {}",
            c.image_size,
            c.patch_size,
            c.embed_dim,
            c.depth,
            c.num_heads,
            100.0 * eval.top1,
            dataset
        )
    });
    // A fine-tuned model names its base (and the base's checksum, under training.base).
    manifest.source = match &recipe.finetune {
        Some(f) => format!("trainer finetune of {} ({command})", f.base),
        None => format!("trainer train ({command})"),
    };
    manifest.metrics = Some(eval.to_metrics(&dataset));
    manifest.training = Some(serde_json::json!({
        "command": command,
        "recipe": recipe,
        "device": info.device,
        "train_seconds": state.train_seconds,
        "epochs": recipe.epochs,
        "train_images": info.train_images,
        "run": last_part(&run_dir.display().to_string()),
    }));
    if let (Some(f), Some(training)) = (&recipe.finetune, manifest.training.as_mut()) {
        training["base"] = serde_json::json!({ "name": f.base, "sha256": f.base_sha256 });
    }
    let json: serde_json::Value = serde_json::from_str(&manifest.to_json())?;
    if let Some((field, path)) = machine_path(&json, "") {
        bail!(
            "refusing to publish {name}: its manifest would show every visitor the path {path:?} \
             of this machine (in {field}); describe the model without it"
        );
    }

    // Model pair first (each file atomic, weights before manifest), then the index the page
    // reads: until the index names it, the page cannot pick a half-published model.
    let manifest_path = save_pair(out, &mut manifest, &model)?;
    let index = list(out, &manifest, make_default)?;
    println!(
        "published {} ({} params, {:.1} KB weights, top-1 {:.2}%, top-5 {:.2}%){}",
        manifest_path.display(),
        c.num_params(),
        manifest.weights.bytes as f64 / 1024.0,
        100.0 * eval.top1,
        100.0 * eval.top5,
        if index.default.as_deref() == Some(name) {
            " as the default"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Lists a model pair written in `out` in `out/index.json`, the page's model list; returns it.
pub(crate) fn list(out: &Path, manifest: &Manifest, make_default: bool) -> Result<ModelIndex> {
    let index_path = out.join("index.json");
    let mut index = match std::fs::read_to_string(&index_path) {
        Ok(text) => ModelIndex::from_json(&text, &index_path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModelIndex::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", index_path.display())),
    };
    index.upsert(manifest, make_default);
    write_atomic(
        &index_path,
        serde_json::to_string_pretty(&index)?.as_bytes(),
    )?;
    Ok(index)
}

/// `text` with every path in it cut to its last part (the data folder, wherever it appears, to
/// its own name): `--data-dir /home/me/cifar` becomes `--data-dir cifar`, and
/// `CIFAR-10 from /home/me/cifar/batches: ...` becomes `CIFAR-10 from cifar/batches: ...`.
fn portable(text: &str, data_dir: &Path) -> String {
    let data_dir = data_dir.display().to_string();
    let data_name = last_part(&data_dir);
    text.split(' ')
        .map(|word| {
            // A path may be glued to a flag (`--run=/x`) or followed by punctuation (`/x:`).
            let (flag, rest) = match word.split_once('=') {
                Some((flag, rest)) if flag.starts_with('-') => (format!("{flag}="), rest),
                _ => (String::new(), word),
            };
            let body = rest.trim_end_matches([':', ',', ';', ')']);
            let tail = &rest[body.len()..];
            if !body.contains('/') && !body.contains('\\') {
                return word.to_string();
            }
            let short = match body.strip_prefix(data_dir.as_str()) {
                Some(under) if !data_dir.is_empty() => format!("{data_name}{under}"),
                _ => last_part(body),
            };
            format!("{flag}{short}{tail}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last non-empty part of a path, `/` or `\` separated.
fn last_part(path: &str) -> String {
    path.rsplit(['/', '\\'])
        .find(|p| !p.is_empty())
        .unwrap_or(path)
        .to_string()
}

/// The first string in a manifest (with where it is, as `field.sub[2]`) holding an absolute
/// path: `/...`, `~/...`, `C:\...`, `\\server\...` or a `file:` URL.
fn machine_path(value: &serde_json::Value, at: &str) -> Option<(String, String)> {
    use serde_json::Value;
    match value {
        Value::String(s) => s
            .split(|c: char| c.is_whitespace() || "\"'()=,;`".contains(c))
            .find(|w| is_absolute_path(w))
            .map(|w| (at.to_string(), w.trim_end_matches(':').to_string())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| machine_path(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let at = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            machine_path(v, &at)
        }),
        _ => None,
    }
}

fn is_absolute_path(word: &str) -> bool {
    let b = word.as_bytes();
    let unix =
        b.len() > 1 && b[0] == b'/' && (b[1].is_ascii_alphanumeric() || b"._~-".contains(&b[1]));
    let home = word.starts_with("~/");
    let drive = b.len() > 2
        && b[0].is_ascii_alphabetic()
        && b[1] == b':'
        && (b[2] == b'\\' || b[2] == b'/');
    let unc = word.starts_with("\\\\");
    unix || home || drive || unc || word.starts_with("file:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_names() {
        let data = Path::new("/work/shared/data/cifar-bin");
        assert_eq!(
            portable(
                "./trainer train --data-dir /work/shared/data/cifar-bin --run=/work/runs/img48 --epochs 10",
                data
            ),
            "trainer train --data-dir cifar-bin --run=img48 --epochs 10"
        );
        assert_eq!(
            portable(
                "CIFAR-10 from /work/shared/data/cifar-bin/batches: 50000 train, 32x32",
                data
            ),
            "CIFAR-10 from cifar-bin/batches: 50000 train, 32x32"
        );
        assert_eq!(
            portable(
                "folder C:\\Users\\me\\pets: 10 train",
                Path::new("C:\\Users\\me\\pets")
            ),
            "folder pets: 10 train"
        );
    }

    #[test]
    fn machine_paths_are_found_wherever_they_are() {
        let clean = serde_json::json!({
            "description": "ViT 48px/patch 4 — 72.7% top-1 on CIFAR-10 from cifar-bin: 32x32 / 48x48",
            "training": { "command": "trainer train --data-dir cifar-bin --run img48" },
        });
        assert_eq!(machine_path(&clean, ""), None);
        for (value, field, path) in [
            (
                serde_json::json!({"a": {"b": ["x", "data at /home/me/x: 3"]}}),
                "a.b[1]",
                "/home/me/x",
            ),
            (serde_json::json!({"run": "--run=/tmp/r"}), "run", "/tmp/r"),
            (serde_json::json!({"d": "from ~/data"}), "d", "~/data"),
            (
                serde_json::json!({"d": "(C:\\data\\cifar)"}),
                "d",
                "C:\\data\\cifar",
            ),
        ] {
            assert_eq!(
                machine_path(&value, ""),
                Some((field.into(), path.into())),
                "{value}"
            );
        }
    }

    /// What the repository publishes: the default model's manifest and the page's list.
    #[test]
    fn shipped_models_carry_no_machine_path() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/models");
        let mut checked = 0;
        for entry in std::fs::read_dir(&models).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let value: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                assert_eq!(machine_path(&value, ""), None, "{}", path.display());
                checked += 1;
            }
        }
        assert!(checked >= 2, "index.json and a manifest");
    }
}
