//! A run folder and everything in it but the metrics and pictures: what a run is (its recipe,
//! data and command), how far it got, and its checkpoints. `train` and `finetune` create and
//! resume runs here, and `publish` reads the trained model from them.
//!
//! A run folder holds:
//! - `recipe.json` (the resolved hyperparameters) and `run.json` ([`RunInfo`]: data, device,
//!   command);
//! - `checkpoint/` (`model.bpk`, `optim.bpk`, `state.json` with the [`State`]), replaced whole
//!   after every epoch and on Ctrl-C, so `--resume` always finds a consistent set;
//! - `metrics.csv` (metrics.rs), one row per epoch, and at the end `eval.json`, `curves.png` and
//!   `confusion.png` (plots/).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use vit::VisionTransformer;
use vit::weights::{apply_burnpack, model_to_bytes, write_atomic};

use crate::data::DatasetKind;
use crate::recipe::Recipe;

/// Where the data is and what ran it; kept beside the recipe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub data_dir: PathBuf,
    pub dataset: DatasetKind,
    pub dataset_description: String,
    pub classes: Vec<String>,
    pub train_images: usize,
    pub test_images: usize,
    pub command: String,
    pub device: String,
    /// A fine-tuning run's base model manifest (`trainer finetune --from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<PathBuf>,
}

/// Progress through the run, saved with every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// The epoch in progress (0-based); equals `epochs` when the run is complete.
    pub epoch: usize,
    /// The next batch of `epoch` to train on.
    pub next_batch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Running sums over the epoch so far.
    pub loss_sum: f64,
    pub correct: f64,
    pub seen: usize,
    /// Training time over every session of the run, evaluation excluded.
    pub train_seconds: f64,
}

/// A new run needs a folder that holds none yet.
pub(crate) fn refuse_existing_run(run: &Path) -> Result<()> {
    if run.join("recipe.json").exists() {
        bail!(
            "{} already holds a run: pass --resume to continue it, or choose another --run",
            run.display()
        );
    }
    Ok(())
}

impl RunInfo {
    /// A new run's: the sizes and the dataset's description are filled in once it is loaded.
    pub(crate) fn new(
        data_dir: &Path,
        dataset: DatasetKind,
        classes: Vec<String>,
        device_name: &str,
        base_model: Option<&Path>,
    ) -> Result<Self> {
        Ok(RunInfo {
            data_dir: std::path::absolute(data_dir)?,
            dataset,
            dataset_description: String::new(),
            classes,
            train_images: 0,
            test_images: 0,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            device: device_name.into(),
            base_model: base_model.map(std::path::absolute).transpose()?,
        })
    }
}

/// The run folder with the recipe and run.json a new run starts from.
pub(crate) fn create_run(run: &Path, recipe: &Recipe, info: &RunInfo) -> Result<()> {
    std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
    write_json(&run.join("recipe.json"), recipe)?;
    write_json(&run.join("run.json"), info)
}

pub(crate) fn resume_files(run_dir: &Path) -> Result<(Recipe, RunInfo, State)> {
    let recipe: Recipe = read_json(&run_dir.join("recipe.json"))?;
    let info: RunInfo = read_json(&run_dir.join("run.json"))?;
    let state = match checkpoint_dir(run_dir) {
        Some(dir) => read_json(&dir.join("state.json"))?,
        None => State::default(),
    };
    Ok((recipe, info, state))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    Ok(write_atomic(
        path,
        serde_json::to_string_pretty(value)?.as_bytes(),
    )?)
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The current checkpoint folder: `checkpoint/`, or `checkpoint.old/` if a crash came between
/// the two renames that replace it.
fn checkpoint_dir(run_dir: &Path) -> Option<PathBuf> {
    ["checkpoint", "checkpoint.old"]
        .iter()
        .map(|d| run_dir.join(d))
        .find(|d| d.join("state.json").exists())
}

/// Writes a complete checkpoint beside the old one, then swaps the folders.
pub(crate) fn save_checkpoint(
    run_dir: &Path,
    model: &VisionTransformer,
    optim: &ModuleOptimizer,
    state: &State,
) -> Result<()> {
    let tmp = run_dir.join("checkpoint.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    write_atomic(&tmp.join("model.bpk"), &model_to_bytes(model)?)?;
    let optim_bytes = optim
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("saving optimizer state: {e:?}"))?;
    write_atomic(&tmp.join("optim.bpk"), &optim_bytes)?;
    write_json(&tmp.join("state.json"), state)?;
    let (current, old) = (run_dir.join("checkpoint"), run_dir.join("checkpoint.old"));
    let _ = std::fs::remove_dir_all(&old);
    if current.exists() {
        std::fs::rename(&current, &old)?;
    }
    std::fs::rename(&tmp, &current)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Loads the run's last checkpoint into `model` and `optim`; a run with none yet keeps them.
pub(crate) fn load_checkpoint(
    run_dir: &Path,
    mut model: VisionTransformer,
    optim: ModuleOptimizer,
) -> Result<(VisionTransformer, ModuleOptimizer)> {
    let Some(dir) = checkpoint_dir(run_dir) else {
        return Ok((model, optim));
    };
    let weights = std::fs::read(dir.join("model.bpk"))
        .with_context(|| format!("reading {}", dir.display()))?;
    apply_burnpack(&mut model, &weights)
        .with_context(|| format!("loading {}/model.bpk", dir.display()))?;
    let bytes = std::fs::read(dir.join("optim.bpk"))?;
    let optim = optim
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("loading {}/optim.bpk: {e:?}", dir.display()))?;
    Ok((model, optim))
}

/// The trained weights of a finished (or interrupted) run, for `publish`.
pub fn load_run_model(
    run_dir: &Path,
    device: &Device,
) -> Result<(Recipe, RunInfo, State, VisionTransformer)> {
    let (recipe, info, state) = resume_files(run_dir)?;
    let Some(dir) = checkpoint_dir(run_dir) else {
        bail!("{} has no checkpoint yet", run_dir.display());
    };
    let mut model = recipe.model.init(device)?;
    let weights = std::fs::read(dir.join("model.bpk"))?;
    apply_burnpack(&mut model, &weights)?;
    Ok((recipe, info, state, model))
}
