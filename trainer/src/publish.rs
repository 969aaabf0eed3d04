//! `trainer publish`: a finished run becomes a model pair the page lists.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use vit::weights::{Manifest, ModelIndex, save_pair, write_atomic};

use crate::eval::Evaluation;
use crate::training::{load_run_model, read_json};

pub fn run(
    run_dir: &Path,
    name: &str,
    out: &Path,
    make_default: bool,
    description: Option<&str>,
) -> Result<ExitCode> {
    vit::weights::check_model_name(name)?;
    let (recipe, info, state, model) = load_run_model(run_dir, &Device::flex())?;
    if state.epoch < recipe.epochs {
        bail!(
            "{} is not finished ({} of {} epochs); resume it with `trainer train --resume --run {0}`",
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
    manifest.description = description.map(String::from).unwrap_or_else(|| {
        format!(
            "ViT {}px/patch {}, dim {}, depth {}, {} heads — {:.1}% top-1 on {}",
            c.image_size,
            c.patch_size,
            c.embed_dim,
            c.depth,
            c.num_heads,
            100.0 * eval.top1,
            info.dataset_description
        )
    });
    manifest.source = format!("trainer train ({})", info.command);
    manifest.metrics = Some(eval.to_metrics(&info.dataset_description));
    manifest.training = Some(serde_json::json!({
        "command": info.command,
        "recipe": recipe,
        "device": info.device,
        "train_seconds": state.train_seconds,
        "epochs": recipe.epochs,
        "train_images": info.train_images,
        "run": run_dir.display().to_string(),
    }));

    // Model pair first (each file atomic, weights before manifest), then the index the page
    // reads: until the index names it, the page cannot pick a half-published model.
    let manifest_path = save_pair(out, &mut manifest, &model)?;
    let index_path = out.join("index.json");
    let mut index = match std::fs::read_to_string(&index_path) {
        Ok(text) => ModelIndex::from_json(&text, &index_path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModelIndex::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", index_path.display())),
    };
    index.upsert(&manifest, make_default);
    write_atomic(
        &index_path,
        serde_json::to_string_pretty(&index)?.as_bytes(),
    )?;
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
