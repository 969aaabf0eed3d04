//! `trainer train`, and the training loop that `finetune` runs too. The run folder it reads and
//! writes (recipe, checkpoints, state) is run.rs's; the record of each epoch is metrics.rs's.
//!
//! The loop, one function per step: [`run_with`] opens the devices ([`open_devices`]), loads
//! the data ([`load_data`]) and builds or restores the model and optimizer ([`Trainer::start`]);
//! then each epoch trains on every batch ([`Trainer::train_epoch`], [`Trainer::train_batch`])
//! and ends with a test pass, a row of metrics and a checkpoint ([`Trainer::end_epoch`]); the
//! last one also writes the run's evaluation and pictures ([`finish`]).
//! One job, the loop and the `train` command that starts it, a little over 500 lines.
//!
//! Randomness is a function of (seed, epoch, batch): the data order and augmentation come from
//! the loader's derived streams, and burn's RNG (dropout, drop path) is re-seeded before every
//! batch. A run resumed from an epoch's end (after a kill or a crash) therefore computes
//! exactly what the unbroken run would have, since both reload that checkpoint (see
//! [`Trainer::end_epoch`]). One resumed from a Ctrl-C mid-epoch sees the same batches and
//! random numbers, but its reload changes Flex's tensor layouts part-way through the epoch, so
//! its figures agree with the unbroken run's closely, not to the last bit.
//!
//! The loop is written by hand rather than with burn-train's `SupervisedTraining`: that learner
//! checkpoints only at epoch ends, replays its shuffle from the start on resume, feeds workers
//! nondeterministically and has no plain-line metric logging, and this recipe needs soft-target
//! losses and global-norm clipping as well.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::prelude::*;
use vit::VisionTransformer;
use vit::rng::Rng;

use crate::data::{self, Dataset, DatasetKind, Samples};
use crate::device::{DeviceArg, resolve, resolve_many};
use crate::eval::{Evaluation, evaluate};
use crate::interrupt;
use crate::loader::Loader;
use crate::metrics::{self, EpochMetrics};
use crate::optim::{clip_global_norm, optimizer};
use crate::parallel::{self, Replicas};
use crate::plots;
use crate::progress::{LossWatch, Progress, clock};
use crate::recipe::{Preset, Recipe, RecipeFlags};
use crate::run::{
    RunInfo, State, create_run, load_checkpoint, refuse_existing_run, resume_files,
    save_checkpoint, write_json,
};

/// `trainer train`'s arguments.
#[derive(clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub folders: RunFolders,
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    #[command(flatten)]
    pub recipe: RecipeFlags,
    #[command(flatten)]
    pub session: SessionFlags,
}

/// Where a run's data and its own files are: `train` and `finetune` share these, one help text
/// each.
#[derive(clap::Args, Clone)]
pub struct RunFolders {
    /// The dataset folder: CIFAR-10's or CIFAR-100's binaries (`trainer download` fetches
    /// them), train/<class>/ and test/<class>/ of images, or one sub-folder of images per class
    /// (a fifth of each held out for testing).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The run folder (created; or continued with --resume).
    #[arg(long)]
    pub run: PathBuf,
    /// What --data-dir holds (default: detected, CIFAR-10 or CIFAR-100 binaries or class
    /// folders).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
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
    let run_dir = &args.folders.run;
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
    let (replicas, device, device_name) = open_devices(&args.session, &recipe)?;
    let progress = Progress::new(args.session.plain);
    if state.epoch >= recipe.epochs {
        progress.message(&format!(
            "{} is already complete ({} epochs)",
            args.folders.run.display(),
            recipe.epochs
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let (data, info) = load_data(args, &recipe, info, &device_name, &progress)?;
    let (run, opened) = ((recipe, info, state), (replicas, device));
    let (mut trainer, mut model) = Trainer::start(args, run, origin, opened, data, progress)?;
    while trainer.state.epoch < trainer.recipe.epochs {
        let Some(trained) = trainer.train_epoch(model)? else {
            return Ok(ExitCode::from(130));
        };
        model = trainer.end_epoch(trained)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The devices the run trains on, in the recipe's precision and self-checked, as replicas;
/// the first of them, whose RNG the run seeds; and their name.
fn open_devices(session: &SessionFlags, recipe: &Recipe) -> Result<(Replicas, Device, String)> {
    // One replica per core by default on the CPU, unless dropout or stochastic depth draw random
    // numbers: replicas draw them from burn's one RNG in no fixed order, and a run must repeat.
    let m = &recipe.model;
    let deterministic = m.drop_rate == 0.0 && m.attn_drop_rate == 0.0 && m.drop_path_rate == 0.0;
    let n = if deterministic {
        session.devices
    } else {
        Some(session.devices.unwrap_or(1))
    };
    let (mut devices, device_name, cpu) = resolve_many(session.device, n)?;
    parallel::set_precision(&mut devices, recipe.precision, &device_name)?;
    crate::device::check(&devices, &device_name)?;
    let device = devices[0].clone();
    Ok((Replicas::new(devices, cpu)?, device, device_name))
}

/// The run's data, which must still have the classes the run started with; `run.json` is
/// rewritten with what was found.
fn load_data(
    args: &TrainArgs,
    recipe: &Recipe,
    info: RunInfo,
    device_name: &str,
    progress: &Progress,
) -> Result<(Dataset, RunInfo)> {
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
    let info = RunInfo {
        dataset_description: data.description.clone(),
        train_images: data.train.len(),
        test_images: data.test.len(),
        // A new run records its replicas too; a resumed one keeps the device it started on.
        device: if args.session.resume {
            info.device
        } else {
            device_name.to_string()
        },
        ..info
    };
    write_json(&args.folders.run.join("run.json"), &info)?;
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
    Ok((data, info))
}

/// A run in progress: the optimizer, where the run stands, and what it reads. The model goes
/// through each step by value, as burn's optimizer takes it.
struct Trainer<'a> {
    run_dir: &'a Path,
    recipe: Recipe,
    info: RunInfo,
    state: State,
    origin: &'a dyn Origin,
    replicas: Replicas,
    /// The first device, whose RNG is seeded before each batch.
    device: Device,
    optim: ModuleOptimizer,
    loader: Loader,
    steps_per_epoch: usize,
    test: Arc<Samples>,
    classes: usize,
    /// metrics.csv's rows so far.
    rows: Vec<EpochMetrics>,
    progress: Progress,
    watch: LossWatch,
}

impl<'a> Trainer<'a> {
    /// The optimizer and the loader of the training images, and the model: at step 0, or as
    /// the last checkpoint left them when resuming.
    fn start(
        args: &'a TrainArgs,
        (recipe, info, state): (Recipe, RunInfo, State),
        origin: &'a dyn Origin,
        (replicas, device): (Replicas, Device),
        data: Dataset,
        progress: Progress,
    ) -> Result<(Self, VisionTransformer)> {
        let run_dir = args.folders.run.as_path();
        // burn creates parameters lazily from one global RNG: seed before the model exists.
        device.seed(recipe.seed);
        let mut model = origin.initial(&recipe, replicas.main())?;
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
        interrupt::during_training();

        let classes = data.classes.len();
        let train_images = data.train.len();
        let loader = Loader::new(
            Arc::new(data.train),
            classes,
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
                "{train_images} training images are fewer than one batch of {}",
                recipe.batch_size
            );
        }
        let mut rows = metrics::read_csv(&run_dir.join("metrics.csv"))?;
        rows.truncate(state.epoch);
        let trainer = Self {
            run_dir,
            recipe,
            info,
            state,
            origin,
            replicas,
            device,
            optim,
            loader,
            steps_per_epoch,
            test: Arc::new(data.test),
            classes,
            rows,
            progress,
            watch: LossWatch::default(),
        };
        Ok((trainer, model))
    }

    /// The rest of the current epoch's batches; `None` when Ctrl-C asked to stop, after saving
    /// a checkpoint.
    fn train_epoch(&mut self, mut model: VisionTransformer) -> Result<Option<VisionTransformer>> {
        let (epochs, steps) = (self.recipe.epochs, self.steps_per_epoch);
        let state = &self.state;
        self.progress
            .start_epoch(state.epoch, epochs, steps, state.next_batch);
        let session = Instant::now();
        for batch in self.loader.epoch(self.state.epoch, self.state.next_batch) {
            model = self.train_batch(model, &batch)?;
            if interrupt::requested() {
                self.state.train_seconds += session.elapsed().as_secs_f64();
                save_checkpoint(self.run_dir, &model, &self.optim, &self.state)?;
                self.progress.message(&format!(
                    "\ninterrupted: saved epoch {} batch {}; continue with `trainer train --resume --run {}`",
                    self.state.epoch + 1,
                    self.state.next_batch,
                    self.run_dir.display()
                ));
                return Ok(None);
            }
        }
        self.state.train_seconds += session.elapsed().as_secs_f64();
        Ok(Some(model))
    }

    /// One optimizer step on `batch`, with burn's RNG seeded for it, and its figures added to
    /// the epoch's running sums.
    fn train_batch(
        &mut self,
        model: VisionTransformer,
        batch: &crate::batch::Batch,
    ) -> Result<VisionTransformer> {
        let (recipe, state) = (&self.recipe, &mut self.state);
        let mut seed = Rng::derive(
            recipe.seed,
            &[state.epoch as u64, state.next_batch as u64, 7],
        );
        self.device.seed(seed.next_u64());
        let b = batch.len;
        let lr = recipe.lr_at(state.step, self.steps_per_epoch);
        let step = self.replicas.step(
            &model,
            &parallel::Batch {
                images: &batch.images,
                targets: &batch.targets,
                len: b,
                size: recipe.model.image_size,
                classes: self.classes,
            },
        )?;
        let loss = step.loss;
        if !loss.is_finite() {
            bail!(
                "the loss became {loss} at epoch {} batch {} (lr {lr:.2e}); try a lower --lr",
                state.epoch + 1,
                state.next_batch
            );
        }
        if let Some(first) = self.watch.exploded(loss) {
            self.progress.message(&format!(
                "warning: the training loss has stayed above {}x its first value ({first:.4}) for \
                 {} batches in a row: {loss:.4} at epoch {} batch {}. The learning rate (--lr {}, {lr:.2e} \
                 at this step) is probably too high for this model and data: try a smaller one, \
                 such as --lr {}",
                LossWatch::FACTOR,
                LossWatch::PATIENCE,
                state.epoch + 1,
                state.next_batch + 1,
                recipe.lr,
                recipe.lr / 10.0,
            ));
        }
        let mut grads = step.grads;
        if recipe.grad_clip > 0.0 {
            clip_global_norm(&model, &mut grads, recipe.grad_clip);
        }
        let model = self
            .optim
            .step(self.origin.learning_rates(lr), model, grads);

        state.loss_sum += loss * b as f64;
        state.correct += step
            .predicted
            .iter()
            .zip(&batch.labels)
            .filter(|(p, l)| **p == **l as usize)
            .count() as f64;
        state.seen += b;
        state.step += 1;
        state.next_batch += 1;
        self.progress.batch(
            state.next_batch,
            b,
            state.loss_sum / state.seen as f64,
            state.correct / state.seen as f64,
            lr,
        );
        Ok(model)
    }

    /// After an epoch's last batch: the test set, a row of metrics.csv, and a checkpoint,
    /// whose model is returned to go on with; after the run's last epoch, its evaluation and
    /// pictures too.
    fn end_epoch(&mut self, model: VisionTransformer) -> Result<VisionTransformer> {
        let images_per_sec = self.progress.images_per_sec();
        let recipe = &self.recipe;
        let eval = evaluate(
            &model.valid(),
            self.test.clone(),
            self.classes,
            recipe.normalization,
            &self.replicas,
        )?;
        let state = &self.state;
        let row = EpochMetrics {
            epoch: state.epoch + 1,
            train_loss: state.loss_sum / state.seen.max(1) as f64,
            train_acc: state.correct / state.seen.max(1) as f64,
            test_loss: eval.loss,
            top1: eval.top1,
            top5: eval.top5,
            lr: recipe.lr_at(state.step.saturating_sub(1), self.steps_per_epoch),
            images_per_sec,
            seconds: state.train_seconds,
        };
        self.progress.message(&format!(
            "epoch {}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} top-1 {:.2}% top-5 {:.2}% | {:.0} img/s, {} elapsed",
            row.epoch,
            recipe.epochs,
            row.train_loss,
            100.0 * row.train_acc,
            eval.loss,
            100.0 * eval.top1,
            100.0 * eval.top5,
            images_per_sec,
            clock(state.train_seconds)
        ));
        self.rows.push(row);
        self.state = State {
            epoch: state.epoch + 1,
            step: state.step,
            train_seconds: state.train_seconds,
            ..State::default()
        };
        metrics::write_csv(&self.rows, &self.run_dir.join("metrics.csv"))?;
        save_checkpoint(self.run_dir, &model, &self.optim, &self.state)?;
        // Continue from the checkpoint just written, exactly as a resumed run would: Flex's
        // results depend on tensor layouts, which a reload changes, so an unbroken run and a
        // resumed one only agree to the last bit if both pass through the same reload. The
        // checkpoint replaces every weight, so a plain init gives the shape without redoing the
        // recipe's attention and position inits (burn's RNG is re-seeded before each batch
        // either way).
        let shape = recipe.model.init(self.replicas.main())?;
        let (model, optim) = load_checkpoint(self.run_dir, shape, optimizer(recipe)?)?;
        self.optim = optim;
        if self.state.epoch == self.recipe.epochs {
            let info = &self.info;
            finish(self.run_dir, &self.rows, &eval, info, &self.progress)?;
        }
        Ok(self.origin.prepare(model))
    }
}

fn start_files(args: &TrainArgs, device_name: &str) -> Result<(Recipe, RunInfo, State)> {
    let Some(data_dir) = args.folders.data_dir.clone() else {
        bail!("--data-dir is required for a new run");
    };
    refuse_existing_run(&args.folders.run)?;
    let kind = data::resolve(args.folders.dataset, &data_dir)?;
    let classes = data::class_names(kind, &data_dir)?;
    let mut recipe = args.preset.recipe(classes.len());
    args.recipe.apply(&mut recipe);
    if recipe.epochs == 0 || recipe.batch_size == 0 {
        bail!("--epochs and --batch-size must be positive");
    }
    recipe.model.validate()?;
    let info = RunInfo::new(&data_dir, kind, classes, device_name, None)?;
    create_run(&args.folders.run, &recipe, &info)?;
    Ok((recipe, info, State::default()))
}

/// The end of a run: `eval.json` (the last test pass), the curves and the confusion matrix.
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
