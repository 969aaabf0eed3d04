//! `trainer train`: the training loop, its checkpoints and its record.
//!
//! A run folder holds everything about one run:
//! - `recipe.json` (the resolved hyperparameters) and `run.json` (data, device, command);
//! - `checkpoint/` (`model.bpk`, `optim.bpk`, `state.json`), replaced whole after every epoch
//!   and on Ctrl-C, so `--resume` always finds a consistent set;
//! - `metrics.csv`, one row per epoch, and at the end `eval.json`, `curves.png`, `confusion.png`.
//!
//! Randomness is a function of (seed, epoch, batch): the data order and augmentation come from
//! the loader's derived streams, and burn's RNG (dropout, drop path) is re-seeded before every
//! batch. A run resumed from an epoch's end (after a kill or a crash) therefore computes
//! exactly what the unbroken run would have, since both reload that checkpoint (see the end of
//! the epoch loop). One resumed from a Ctrl-C mid-epoch sees the same batches and random
//! numbers, but its reload changes Flex's tensor layouts part-way through the epoch, so its
//! figures agree with the unbroken run's closely, not to the last bit.
//!
//! The loop is written by hand rather than with burn-train's `SupervisedTraining`: that learner
//! checkpoints only at epoch ends, replays its shuffle from the start on resume, feeds workers
//! nondeterministically and has no plain-line metric logging, and this recipe needs soft-target
//! losses and global-norm clipping as well.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};
use vit::VisionTransformer;
use vit::weights::{apply_burnpack, model_to_bytes, write_atomic};

use crate::data::{self, DatasetKind};
use crate::device::{DeviceArg, resolve, resolve_many};
use crate::eval::{Evaluation, evaluate};
use crate::loader::Loader;
use crate::parallel::{Batch, Replicas};
use crate::plots::{self, EpochMetrics};
use crate::progress::{Progress, clock};
use crate::recipe::{Precision, Preset, Recipe, RecipeFlags};
use vit::rng::Rng;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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

/// `trainer train`'s arguments.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The dataset folder (CIFAR binary batches, or train/<class>/ and test/<class>/).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The run folder (created; or continued with --resume).
    #[arg(long)]
    pub run: PathBuf,
    #[arg(long, value_enum, default_value_t = DatasetKind::Cifar10)]
    pub dataset: DatasetKind,
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    #[command(flatten)]
    pub recipe: RecipeFlags,
    #[command(flatten)]
    pub session: SessionFlags,
}

/// How a run is carried out, apart from what it learns: `train` and `finetune` share these.
#[derive(clap::Args, Clone)]
pub struct SessionFlags {
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Continue the run in --run from its last checkpoint, with its saved recipe.
    #[arg(long)]
    pub resume: bool,
    /// Plain progress lines instead of a live line (the default when not on a terminal).
    #[arg(long)]
    pub plain: bool,
    /// Threads that decode and augment batches ahead of the model.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// Train data-parallel on this many devices: GPUs 0..N of the --device kind, each on its
    /// own thread, gradients summed by burn's multi-device accumulation. On the CPU, N
    /// replicas of one thread each, which keeps every core busy. Default: one per core on the
    /// CPU when the recipe has no dropout or stochastic depth (several replicas draw those
    /// random numbers in no fixed order), else 1.
    #[arg(long)]
    pub devices: Option<usize>,
}

/// Where a run's model comes from, and how fast each of its parameters learns: from scratch
/// for `train`, from a published model for `finetune` (finetune.rs).
pub(crate) trait Origin {
    /// The model at step 0 on `device` (a run resumed before its first checkpoint starts here
    /// too), already through [`Origin::prepare`].
    fn initial(&self, recipe: &Recipe, device: &Device) -> Result<VisionTransformer>;
    /// Applied to every model loaded from a checkpoint: which parameters are frozen belongs
    /// to the module, not to the stored weights.
    fn prepare(&self, model: VisionTransformer) -> VisionTransformer;
    /// Each parameter's learning rate when the schedule is at `lr`.
    fn learning_rates(&self, lr: f64) -> ModuleLearningRate;
}

/// `trainer train`: the recipe's initialisation, one learning rate for all.
struct Scratch;

impl Origin for Scratch {
    fn initial(&self, recipe: &Recipe, device: &Device) -> Result<VisionTransformer> {
        Ok(recipe.init_model(device)?)
    }

    fn prepare(&self, model: VisionTransformer) -> VisionTransformer {
        model
    }

    fn learning_rates(&self, lr: f64) -> ModuleLearningRate {
        lr.into()
    }
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let (_, device_name) = resolve(args.session.device)?;
    let run_dir = &args.run;
    let (recipe, info, state) = if args.session.resume {
        if args.recipe != RecipeFlags::default() {
            bail!(
                "--resume continues a run with the recipe in its recipe.json; drop the recipe flags"
            );
        }
        resume_files(run_dir)?
    } else {
        start_files(&args, &device_name)?
    };
    if recipe.finetune.is_some() {
        bail!(
            "{} is a fine-tuning run: continue it with `trainer finetune --resume --run {0}`",
            run_dir.display()
        );
    }
    run_with(&args, recipe, info, state, &Scratch)
}

/// The training loop, for `train` and `finetune` alike. `args` gives the run folder and how to
/// run (device, replicas, resume, workers, output); the recipe flags and data folder in it are
/// already resolved into `recipe` and `info`.
pub(crate) fn run_with(
    args: &TrainArgs,
    recipe: Recipe,
    info: RunInfo,
    state: State,
    origin: &dyn Origin,
) -> Result<ExitCode> {
    let run_dir = &args.run;
    // One replica per core by default on the CPU, unless dropout or stochastic depth draw random
    // numbers: replicas draw them from burn's one RNG in no fixed order, and a run must repeat.
    let m = &recipe.model;
    let deterministic = m.drop_rate == 0.0 && m.attn_drop_rate == 0.0 && m.drop_path_rate == 0.0;
    let n = if deterministic {
        args.session.devices
    } else {
        Some(args.session.devices.unwrap_or(1))
    };
    let (mut devices, device_name, cpu) = resolve_many(args.session.device, n)?;
    set_precision(&mut devices, recipe.precision, &device_name)?;
    crate::device::check(&devices, &device_name)?;
    let device = devices[0].clone();
    let replicas = Replicas::new(devices, cpu)?;
    let mut progress = Progress::new(args.session.plain);
    if state.epoch >= recipe.epochs {
        progress.message(&format!(
            "{} is already complete ({} epochs)",
            run_dir.display(),
            recipe.epochs
        ));
        return Ok(ExitCode::SUCCESS);
    }

    let data = data::load(
        info.dataset,
        &info.data_dir,
        recipe.model.image_size as u32,
        recipe.seed,
        recipe.limit,
    )?;
    if data.classes != info.classes {
        bail!(
            "the classes in {} changed since the run started",
            info.data_dir.display()
        );
    }
    let num_classes = data.classes.len();
    let train = Arc::new(data.train);
    let test = Arc::new(data.test);
    let info = RunInfo {
        dataset_description: data.description.clone(),
        train_images: train.len(),
        test_images: test.len(),
        // A new run records its replicas too; a resumed one keeps the device it started on.
        device: if args.session.resume {
            info.device
        } else {
            device_name.clone()
        },
        ..info
    };
    write_json(&run_dir.join("run.json"), &info)?;
    progress.message(&format!(
        "{}{}; model {} parameters; {device_name}",
        data.description,
        if data.skipped > 0 {
            format!(" ({} unreadable files skipped)", data.skipped)
        } else {
            String::new()
        },
        recipe.model.num_params(),
    ));
    if let Some(ra) = recipe.augment.timm_randaugment() {
        progress.message(&format!("RandAugment: timm's {ra}"));
    }

    let ad = replicas.main().clone();
    // burn creates parameters lazily from one global RNG: seed before the model exists.
    device.seed(recipe.seed);
    let mut model = origin.initial(&recipe, &ad)?;
    let mut optim = optimizer(&recipe)?;
    if args.session.resume {
        (model, optim) = load_checkpoint(run_dir, model, optim)?;
        model = origin.prepare(model);
        progress.message(&format!(
            "resuming {} at epoch {} batch {}",
            run_dir.display(),
            state.epoch + 1,
            state.next_batch
        ));
    }
    install_ctrlc();

    let loader = Loader::new(
        train.clone(),
        num_classes,
        recipe.batch_size,
        Some(recipe.augment.clone()),
        recipe.normalization,
        recipe.seed,
        args.session.workers as usize,
        4,
    );
    let steps_per_epoch = loader.batches_per_epoch();
    if steps_per_epoch == 0 {
        bail!(
            "{} training images are fewer than one batch of {}",
            train.len(),
            recipe.batch_size
        );
    }
    let mut rows = plots::read_csv(&run_dir.join("metrics.csv"))?;
    rows.truncate(state.epoch);
    let mut state = state;
    let size = recipe.model.image_size;

    while state.epoch < recipe.epochs {
        progress.start_epoch(
            state.epoch,
            recipe.epochs,
            steps_per_epoch,
            state.next_batch,
        );
        let session = Instant::now();
        for batch in loader.epoch(state.epoch, state.next_batch) {
            device.seed(
                Rng::derive(
                    recipe.seed,
                    &[state.epoch as u64, state.next_batch as u64, 7],
                )
                .next_u64(),
            );
            let b = batch.len;
            let lr = recipe.lr_at(state.step, steps_per_epoch);
            let step = replicas.step(
                &model,
                &Batch {
                    images: &batch.images,
                    targets: &batch.targets,
                    len: b,
                    size,
                    classes: num_classes,
                },
            )?;
            let loss_value = step.loss;
            if !loss_value.is_finite() {
                bail!(
                    "the loss became {loss_value} at epoch {} batch {} (lr {lr:.2e}); try a lower --lr",
                    state.epoch + 1,
                    state.next_batch
                );
            }
            let mut grads = step.grads;
            if recipe.grad_clip > 0.0 {
                clip_global_norm(&model, &mut grads, recipe.grad_clip);
            }
            model = optim.step(origin.learning_rates(lr), model, grads);

            state.loss_sum += loss_value * b as f64;
            state.correct += step
                .predicted
                .iter()
                .zip(&batch.labels)
                .filter(|(p, l)| **p == **l as usize)
                .count() as f64;
            state.seen += b;
            state.step += 1;
            state.next_batch += 1;
            progress.batch(
                state.next_batch,
                b,
                state.loss_sum / state.seen as f64,
                state.correct / state.seen as f64,
                lr,
            );
            if INTERRUPTED.load(Ordering::SeqCst) {
                state.train_seconds += session.elapsed().as_secs_f64();
                save_checkpoint(run_dir, &model, &optim, &state)?;
                progress.message(&format!(
                    "\ninterrupted: saved epoch {} batch {}; continue with `trainer train --resume --run {}`",
                    state.epoch + 1,
                    state.next_batch,
                    run_dir.display()
                ));
                return Ok(ExitCode::from(130));
            }
        }
        let epoch_seconds = session.elapsed().as_secs_f64();
        state.train_seconds += epoch_seconds;
        let images_per_sec = progress.images_per_sec();

        let eval = evaluate(
            &model.valid(),
            test.clone(),
            num_classes,
            recipe.normalization,
            &replicas,
        )?;
        rows.push(EpochMetrics {
            epoch: state.epoch + 1,
            train_loss: state.loss_sum / state.seen.max(1) as f64,
            train_acc: state.correct / state.seen.max(1) as f64,
            test_loss: eval.loss,
            top1: eval.top1,
            top5: eval.top5,
            lr: recipe.lr_at(state.step.saturating_sub(1), steps_per_epoch),
            images_per_sec,
            seconds: state.train_seconds,
        });
        progress.message(&format!(
            "epoch {}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} top-1 {:.2}% top-5 {:.2}% | {:.0} img/s, {} elapsed",
            state.epoch + 1,
            recipe.epochs,
            rows.last().unwrap().train_loss,
            100.0 * rows.last().unwrap().train_acc,
            eval.loss,
            100.0 * eval.top1,
            100.0 * eval.top5,
            images_per_sec,
            clock(state.train_seconds)
        ));
        state = State {
            epoch: state.epoch + 1,
            step: state.step,
            train_seconds: state.train_seconds,
            ..State::default()
        };
        plots::write_csv(&rows, &run_dir.join("metrics.csv"))?;
        save_checkpoint(run_dir, &model, &optim, &state)?;
        // Continue from the checkpoint just written, exactly as a resumed run would: Flex's
        // results depend on tensor layouts, which a reload changes, so an unbroken run and a
        // resumed one only agree to the last bit if both pass through the same reload. The
        // checkpoint replaces every weight, so a plain init gives the shape without redoing the
        // recipe's attention and position inits (burn's RNG is re-seeded before each batch
        // either way).
        (model, optim) = load_checkpoint(run_dir, recipe.model.init(&ad)?, optimizer(&recipe)?)?;
        model = origin.prepare(model);
        if state.epoch == recipe.epochs {
            finish(run_dir, &rows, &eval, &info, &progress)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes `precision` the devices' default float type. It must come before any tensor exists on
/// them: burn fixes a device's defaults at its first tensor.
pub(crate) fn set_precision(
    devices: &mut [Device],
    precision: Precision,
    name: &str,
) -> Result<()> {
    let dtype = match precision {
        Precision::F32 => return Ok(()),
        Precision::Bf16 => FloatDType::BF16,
        Precision::F16 => FloatDType::F16,
    };
    for i in 0..devices.len() {
        // CPU replicas are one device: configure it once.
        if devices[..i].contains(&devices[i]) {
            continue;
        }
        if !devices[i].supports_dtype(dtype) {
            bail!("{name} cannot compute in {precision:?}; use --precision f32");
        }
        devices[i]
            .configure(dtype)
            .map_err(|e| anyhow::anyhow!("setting {name} to {precision:?}: {e:?}"))?;
    }
    // A resumed optimizer state is loaded on the default device (Flex, see main) before it
    // moves to the parameters' device: in their type too. This comes before the GPU
    // self-check (device::check), whose tensors on Flex would fix its type at f32.
    let mut flex = Device::flex();
    if !devices.contains(&flex) && flex.supports_dtype(dtype) {
        let _ = flex.configure(dtype);
    }
    Ok(())
}

fn start_files(args: &TrainArgs, device_name: &str) -> Result<(Recipe, RunInfo, State)> {
    let Some(data_dir) = args.data_dir.clone() else {
        bail!("--data-dir is required for a new run");
    };
    refuse_existing_run(&args.run)?;
    let classes = data::class_names(args.dataset, &data_dir)?;
    let mut recipe = args.preset.recipe(classes.len());
    args.recipe.apply(&mut recipe);
    if recipe.epochs == 0 || recipe.batch_size == 0 {
        bail!("--epochs and --batch-size must be positive");
    }
    recipe.model.validate()?;
    let info = RunInfo::new(&data_dir, args.dataset, classes, device_name, None)?;
    create_run(&args.run, &recipe, &info)?;
    Ok((recipe, info, State::default()))
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

/// AdamW with weight decay off for biases, norms and the two token embeddings, as in timm.
pub(crate) fn optimizer(recipe: &Recipe) -> Result<ModuleOptimizer> {
    let adamw = AdamWConfig::new()
        .with_beta_1(recipe.beta1 as f32)
        .with_beta_2(recipe.beta2 as f32)
        .with_epsilon(recipe.eps as f32)
        .with_weight_decay(recipe.weight_decay as f32);
    let no_decay = ParamGroup::from_regex(r"(\.bias$|\.gamma$|\.beta$|^pos_embed$|^cls_token$)")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(adamw
        .init()
        .with_group(no_decay, adamw.clone().with_weight_decay(0.0).build(), None))
}

/// Scales all gradients together so their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`); burn's own clipping works per tensor.
fn clip_global_norm(model: &VisionTransformer, grads: &mut GradientsParams, max_norm: f64) {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g * self.factor);
            }
        }
    }
    let mut sum = SumSquares { grads, total: None };
    model.visit(&mut sum);
    let Some(total) = sum.total else { return };
    let norm = (total.into_scalar::<f32>() as f64).sqrt();
    if norm > max_norm {
        model.visit(&mut Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        });
    }
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
fn save_checkpoint(
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

fn load_checkpoint(
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

fn finish(
    run_dir: &Path,
    rows: &[EpochMetrics],
    eval: &Evaluation,
    info: &RunInfo,
    progress: &Progress,
) -> Result<()> {
    write_json(&run_dir.join("eval.json"), eval)?;
    let title = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    plots::curves_png(rows, &title, &run_dir.join("curves.png"))?;
    plots::confusion_png(
        &eval.confusion,
        &info.classes,
        &format!("{title}: test set"),
        &run_dir.join("confusion.png"),
    )?;
    let (dir, top1, top5) = (run_dir.display(), 100.0 * eval.top1, 100.0 * eval.top5);
    progress.message(&format!(
        "done: top-1 {top1:.2}% top-5 {top5:.2}%; wrote {dir}/metrics.csv, curves.png, confusion.png; \
         publish with `trainer publish --run {dir} --name NAME --out www/models`"
    ));
    Ok(())
}

fn install_ctrlc() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: stopping without saving");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: saving a checkpoint after this batch (press again to stop at once)");
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit::VitConfig;

    /// A model with 4-wide embeddings, 4 patches and 6 classes, and gradients for three of its
    /// parameters whose squares sum to 36 by hand: the class token [1, 2, 2, 4] (1 + 4 + 4 + 16
    /// = 25), the position embedding's 5 x 4 entries at 0.5 (20 x 0.25 = 5) and the head's 6
    /// biases at 1 (6). The global norm is 6; the other parameters have no gradient.
    fn model_and_grads() -> (VisionTransformer, GradientsParams) {
        let device = Device::flex();
        let model = VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(4)
            .with_depth(1)
            .with_num_heads(1)
            .with_num_classes(6)
            .init(&device)
            .unwrap();
        let mut grads = GradientsParams::new();
        grads.register(
            model.cls_token.id,
            Tensor::<1>::from_floats([1.0, 2.0, 2.0, 4.0], &device).reshape([1, 1, 4]),
        );
        grads.register(
            model.pos_embed.id,
            Tensor::<3>::full([1, 5, 4], 0.5, &device),
        );
        let bias = model.head.bias.as_ref().expect("the head has a bias");
        grads.register(bias.id, Tensor::<1>::ones([6], &device));
        (model, grads)
    }

    fn values(model: &VisionTransformer, grads: &GradientsParams) -> Vec<Vec<f32>> {
        let bias = model.head.bias.as_ref().unwrap();
        let read = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        vec![
            read(grads.get::<3>(model.cls_token.id).unwrap().flatten(0, 2)),
            read(grads.get::<3>(model.pos_embed.id).unwrap().flatten(0, 2)),
            read(grads.get::<1>(bias.id).unwrap()),
        ]
    }

    #[test]
    fn clip_global_norm_scales_all_gradients_together_by_the_hand_computed_norm() {
        let (model, grads) = model_and_grads();
        let before = values(&model, &grads);
        // At or above the norm: nothing changes, not even by rounding.
        for max_norm in [6.0, 10.0] {
            let (model, mut grads) = model_and_grads();
            clip_global_norm(&model, &mut grads, max_norm);
            assert_eq!(values(&model, &grads), before, "max_norm {max_norm}");
        }
        // Below it: every gradient is scaled by 3 / 6, so the new global norm is 3.
        let (model, mut grads) = model_and_grads();
        clip_global_norm(&model, &mut grads, 3.0);
        let after = values(&model, &grads);
        for (a, b) in after.iter().flatten().zip(before.iter().flatten()) {
            assert!((a - b * 0.5).abs() < 1e-6, "{a} vs {b} / 2");
        }
        let norm = after.iter().flatten().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 3.0).abs() < 1e-5, "{norm}");
    }
}
