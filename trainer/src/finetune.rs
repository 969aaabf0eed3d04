//! `trainer finetune`: transfer learning from a published model (or one `trainer import-timm`
//! made) onto a folder of images (or CIFAR).
//!
//! The base model keeps everything it learned but its head, its prefix tokens (class,
//! distillation, registers) included: a new head is sized to the new classes (a feature model
//! without one gets its first), `pos_embed` is resampled when the image size differs (bicubic,
//! as timm's `resample_abs_pos_embed`), and `--head-only`, `--last-blocks N` or `--full` says
//! what learns. The rest is `trainer train`'s loop and run folder (training.rs, run.rs): warm-up and
//! cosine, checkpoints, `--resume`, metrics and plots, and `trainer publish` after it. On top,
//! layer-wise learning-rate decay as BEiT and timm fine-tune: the head learns at the full rate
//! and each layer below at `--layer-decay` times the one above. The recipe records the base
//! model's name and checksum, which the published manifest carries as where it came from.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::module::ParamGroup;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::prelude::Device;
use vit::VisionTransformer;
use vit::pos_embed::Resample;
use vit::transfer::{Trainable, layer_decay, stem_params, transfer_config};
use vit::weights::{Manifest, load_pair, save_pair_bytes};

use crate::data;
use crate::device::resolve;
use crate::model_arg::ModelArg;
use crate::recipe::{FinetuneRecipe, Preset, Recipe, RecipeFlags, TuningFlags};
use crate::run::{RunInfo, State, create_run, refuse_existing_run, resume_files};
use crate::training::{self, Origin, RunFolders, SessionFlags, TrainArgs};

/// `trainer finetune`'s arguments.
#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// The model to start from: a manifest (NAME.json, with NAME.bpk beside it) written by
    /// `trainer publish` or `trainer import-timm`, or a timm model on the Hugging Face hub,
    /// hf-hub:ORG/NAME[@REVISION] (kept in the run folder as base/NAME.json, so a resumed
    /// run needs no network).
    #[arg(long)]
    pub from: Option<ModelArg>,
    #[command(flatten)]
    pub folders: RunFolders,
    /// Train the new head only: a linear probe on the base model's features.
    #[arg(long, group = "trainable")]
    pub head_only: bool,
    /// Train the last N blocks, the final norm and the head.
    #[arg(long, group = "trainable", value_name = "N")]
    pub last_blocks: Option<usize>,
    /// Train every parameter (the default), with layer-wise learning-rate decay.
    #[arg(long, group = "trainable")]
    pub full: bool,
    /// Train at this image size (default: the base model's); `pos_embed` is resampled to the
    /// new patch grid.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Layer-wise learning-rate decay: each layer learns at this times the rate of the one
    /// above (1 = off).
    #[arg(long, default_value_t = 0.75, help_heading = "Recipe")]
    pub layer_decay: f64,
    #[command(flatten)]
    pub recipe: TuningFlags,
    #[command(flatten)]
    pub session: SessionFlags,
}

impl FinetuneArgs {
    fn trainable(&self) -> Trainable {
        match (self.head_only, self.last_blocks) {
            (true, _) => Trainable::Head,
            (_, Some(n)) => Trainable::LastBlocks(n),
            _ => Trainable::All,
        }
    }

    /// Whether any flag that shapes a new run was given (refused with --resume).
    fn shapes_a_run(&self) -> bool {
        self.from.is_some()
            || self.head_only
            || self.last_blocks.is_some()
            || self.full
            || self.image_size.is_some()
            || self.recipe != TuningFlags::default()
    }

    /// How the shared training loop runs this: the run folder, device and output options.
    fn session(&self) -> TrainArgs {
        TrainArgs {
            folders: self.folders.clone(),
            preset: Preset::Finetune,
            recipe: RecipeFlags::default(),
            session: self.session.clone(),
        }
    }
}

pub fn run(args: FinetuneArgs) -> Result<ExitCode> {
    let (_, device_name) = resolve(args.session.device)?;
    let (recipe, info, state) = if args.session.resume {
        if args.shapes_a_run() {
            bail!(
                "--resume continues a run with the base model and recipe in its recipe.json; \
                 drop --from and the recipe flags"
            );
        }
        resume_files(&args.folders.run)?
    } else {
        start(&args, &device_name)?
    };
    let (Some(finetune), Some(base)) = (recipe.finetune.clone(), info.base_model.clone()) else {
        bail!(
            "{} is a run from scratch: continue it with `trainer train --resume --run {0}`",
            args.folders.run.display()
        );
    };
    let origin = FromBase::new(base, finetune, recipe.model.depth)?;
    training::run_with(&args.session(), recipe, info, state, &origin)
}

/// A new run: the recipe from the base model, the data's classes and the flags.
fn start(args: &FinetuneArgs, device_name: &str) -> Result<(Recipe, RunInfo, State)> {
    let Some(from) = &args.from else {
        bail!("--from is required for a new run: the model to fine-tune (NAME.json)");
    };
    let Some(data_dir) = &args.folders.data_dir else {
        bail!("--data-dir is required for a new run");
    };
    refuse_existing_run(&args.folders.run)?;
    // A hub model is fetched now and kept in the run folder once the run exists.
    // Its weights are serialised once: their SHA-256 goes into the recipe, their bytes into
    // base/ once the run folder exists.
    let (mut base, hub_weights, from) = match from {
        ModelArg::Pair(path) => (from.manifest()?, None, path.clone()),
        ModelArg::Hub(name) => {
            let loaded = crate::hub::load(name, &Device::flex())?;
            let bytes = vit::weights::model_to_bytes(&loaded.model)?;
            let path = args
                .folders
                .run
                .join("base")
                .join(format!("{}.json", loaded.manifest.name));
            (loaded.manifest, Some(bytes), path)
        }
    };
    if let Some(bytes) = &hub_weights {
        base.weights.sha256 = vit::weights::sha256_hex(bytes);
        base.weights.bytes = bytes.len() as u64;
    }
    let kind = data::resolve(args.folders.dataset, data_dir)?;
    let classes = data::class_names(kind, data_dir)?;
    if classes.len() < 2 {
        bail!(
            "{}: one class ({:?}); fine-tuning needs at least two class folders",
            data_dir.display(),
            classes[0]
        );
    }
    let depth = base.config.depth;
    let trainable = args.trainable();
    if let Trainable::LastBlocks(n) = trainable
        && !(1..=depth).contains(&n)
    {
        bail!("--last-blocks {n}: {} has {depth} blocks", base.name);
    }
    if !(args.layer_decay > 0.0 && args.layer_decay <= 1.0) {
        bail!("--layer-decay {} must be in (0, 1]", args.layer_decay);
    }
    let image_size = args.image_size.unwrap_or(base.config.image_size);
    let config = transfer_config(&base.config, classes.len(), image_size)
        .with_context(|| format!("--image-size {image_size} for {}", base.name))?;

    let mut recipe = Preset::Finetune.recipe(classes.len());
    recipe.model = config;
    // The features were learned on inputs normalised so; the new classes see them the same way.
    recipe.normalization = base.normalization;
    recipe.augment.crop_padding = (image_size / 16) as u32;
    args.recipe.apply(&mut recipe);
    if recipe.epochs == 0 || recipe.batch_size == 0 {
        bail!("--epochs and --batch-size must be positive");
    }
    recipe.finetune = Some(FinetuneRecipe {
        base: base.name.clone(),
        base_sha256: base.weights.sha256.clone(),
        base_image_size: base.config.image_size,
        resample: Resample::BicubicAntialias,
        trainable,
        layer_decay: args.layer_decay,
    });
    let info = RunInfo::new(data_dir, kind, classes, device_name, Some(&from))?;
    create_run(&args.folders.run, &recipe, &info)?;
    if let Some(bytes) = hub_weights {
        save_pair_bytes(&args.folders.run.join("base"), &mut base.clone(), &bytes)?;
    }
    eprintln!("{}", describe(&recipe, &base));
    Ok((recipe, info, State::default()))
}

/// One line on what the run does to the base model.
fn describe(recipe: &Recipe, base: &Manifest) -> String {
    let ft = recipe.finetune.as_ref().expect("a fine-tuning recipe");
    let learns = match ft.trainable {
        Trainable::Head => "the head".to_string(),
        Trainable::LastBlocks(n) => format!("the last {n} block(s), the final norm and the head"),
        Trainable::All => "every layer".to_string(),
    };
    let (old, new) = (base.config.grid_size(), recipe.model.grid_size());
    let size = if old == new {
        format!("{}px", recipe.model.image_size)
    } else {
        format!(
            "{}px (pos_embed resampled from {old}x{old} to {new}x{new})",
            recipe.model.image_size
        )
    };
    format!(
        "fine-tuning {} for {} classes at {size}: training {learns}, layer decay {}",
        base.name, recipe.model.num_classes, ft.layer_decay
    )
}

/// The base model, its new head and positions, what is frozen, and the layer-wise rates.
struct FromBase {
    manifest: PathBuf,
    finetune: FinetuneRecipe,
    /// `(group, multiplier)` for every layer whose rate is not the head's.
    layers: Vec<(ParamGroup, f64)>,
}

impl FromBase {
    fn new(manifest: PathBuf, finetune: FinetuneRecipe, depth: usize) -> Result<Self> {
        let mut layers = Vec::new();
        if finetune.layer_decay != 1.0 {
            // BEiT's layers (vit::transfer::layer_id): the stem (patch embedding, prefix
            // tokens, positions, norm_pre) is layer 0, block i is layer i + 1; the final norm
            // and the heads are layer depth + 1, at the full rate.
            let group = |pattern: String| {
                ParamGroup::from_regex(&pattern).map_err(|e| anyhow::anyhow!("{pattern}: {e:?}"))
            };
            layers.push((
                group(format!(r"^({})(\.|$)", stem_params().join("|")))?,
                layer_decay(0, depth, finetune.layer_decay),
            ));
            for i in 0..depth {
                layers.push((
                    group(format!(r"^blocks\.{i}\."))?,
                    layer_decay(i + 1, depth, finetune.layer_decay),
                ));
            }
        }
        Ok(Self {
            manifest,
            finetune,
            layers,
        })
    }
}

impl Origin for FromBase {
    fn initial(&self, recipe: &Recipe, device: &Device) -> Result<VisionTransformer> {
        let (base, model) = load_pair(&self.manifest, device)
            .with_context(|| format!("loading the base model {}", self.manifest.display()))?;
        if base.weights.sha256 != self.finetune.base_sha256 {
            bail!(
                "the base model {} changed since the run started (its weights' SHA-256 was {}, is {})",
                self.manifest.display(),
                self.finetune.base_sha256,
                base.weights.sha256
            );
        }
        let model = model.with_new_head(recipe.model.num_classes).resized(
            &base.config,
            &recipe.model,
            self.finetune.resample,
        )?;
        Ok(self.prepare(model))
    }

    fn prepare(&self, model: VisionTransformer) -> VisionTransformer {
        model.train_only(self.finetune.trainable)
    }

    fn learning_rates(&self, lr: f64) -> ModuleLearningRate {
        let mut rates = ModuleLrScheduler::new(lr);
        for (group, scale) in &self.layers {
            rates = rates.with_group(group.clone(), lr * scale);
        }
        rates.step()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::prelude::*;
    use vit::VitConfig;

    /// Every parameter's values by path.
    fn values(model: &VisionTransformer) -> Vec<(String, Vec<f32>)> {
        struct Collect(Vec<(String, Vec<f32>)>, Vec<String>);
        impl ModuleVisitor for Collect {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.1.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.1.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let v = param.val().into_data().try_into_vec_as::<f32>().unwrap();
                self.0.push((self.1.join("."), v));
            }
        }
        let mut c = Collect(Vec::new(), Vec::new());
        model.visit(&mut c);
        c.0
    }

    /// One AdamW step moves every element by about the learning rate (its first update is
    /// the gradient's sign), so the size of each parameter's change is its learning rate.
    #[test]
    fn each_layer_learns_at_its_decayed_rate_and_frozen_ones_not_at_all() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let depth = 3;
        // Every kind of prefix token and norm_pre: each is layer 0, with the patch embedding.
        let config = VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(8)
            .with_num_heads(2)
            .with_depth(depth)
            .with_num_classes(3)
            .with_distilled(Some(true))
            .with_reg_tokens(Some(2))
            .with_pre_norm(Some(true))
            .with_init_values(Some(0.5));
        let mut recipe = Preset::Finetune.recipe(3);
        recipe.model = config.clone();
        recipe.weight_decay = 0.0;
        let decay = 0.5;
        for (trainable, frozen) in [(Trainable::All, 0), (Trainable::LastBlocks(1), 2)] {
            let finetune = FinetuneRecipe {
                base: "base".into(),
                base_sha256: String::new(),
                base_image_size: 8,
                resample: Resample::BicubicAntialias,
                trainable,
                layer_decay: decay,
            };
            let origin = FromBase::new(PathBuf::new(), finetune, depth).unwrap();
            let model = origin.prepare(config.init(&device).unwrap());
            let before = values(&model);
            let x = Tensor::<4>::random([2, 3, 8, 8], burn::tensor::Distribution::Default, &device);
            let loss = model.forward(x).square().mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = 1e-2;
            let mut optim = crate::optim::optimizer(&recipe).unwrap();
            let after = values(&optim.step(origin.learning_rates(lr), model, grads));
            assert_eq!(before.len(), after.len());
            for ((path, a), (_, b)) in before.iter().zip(&after) {
                // f32::max skips NaN: a parameter that became NaN must fail, not look still.
                assert!(
                    a.len() == b.len() && b.iter().all(|v| v.is_finite()),
                    "{trainable:?} {path}: {} values, not all finite, after a step",
                    b.len()
                );
                let moved = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0f32, f32::max);
                let layer = vit::transfer::layer_id(path, depth);
                let learning = match trainable {
                    Trainable::All => true,
                    _ => layer > frozen,
                };
                let want = if learning {
                    lr * layer_decay(layer, depth, decay)
                } else {
                    0.0
                };
                assert!(
                    (moved as f64 - want).abs() <= 0.05 * want + 1e-7,
                    "{trainable:?} {path} (layer {layer}) moved {moved}, expected {want}"
                );
            }
        }
    }
}
