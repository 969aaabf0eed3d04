//! `trainer`: Vitrine's native command line. Every model it touches is the `vit` crate's.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod augment;
mod batch;
mod bench;
mod data;
mod device;
mod download;
mod draw;
mod eval;
mod explain;
mod finetune;
mod http;
mod hub;
mod interrupt;
mod kernel_launches;
mod loader;
mod metrics;
mod model_arg;
#[cfg(feature = "llvm-without-nvptx")]
mod nvptx;
mod optim;
mod parallel;
mod plots;
mod predict;
mod progress;
mod publish;
mod randaugment;
mod recipe;
mod run;
mod timm;
mod training;

use data::DatasetKind;
use device::DeviceArg;
use model_arg::ModelArg;
use vit::preprocess::Crop;

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Train, evaluate and run Vitrine's Vision Transformer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify images with a published model.
    Predict {
        /// The model's manifest (NAME.json, with NAME.bpk beside it), or a timm model on the
        /// Hugging Face hub: hf-hub:ORG/NAME[@REVISION], e.g.
        /// hf-hub:timm/deit_tiny_patch16_224.fb_in1k (downloaded once into the hub cache).
        #[arg(long)]
        model: ModelArg,
        /// Image files: JPEG, PNG, WebP, GIF or BMP, any size.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// How many classes to list per image.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// One JSON object per image (file, logits, probs, top) instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
        device: DeviceArg,
        /// The square the model sees, as x,y,size in the image's pixels (default: the centre
        /// square); the page's draggable square reports the same numbers.
        #[arg(long)]
        crop: Option<Crop>,
        /// Run the model at this input size, a multiple of its patch size (default: its own);
        /// its position embeddings are resampled as timm does (bicubic), e.g. a DINOv2 made
        /// for 518 px at 224.
        #[arg(long)]
        image_size: Option<usize>,
    },
    /// Ask the model about one image: any token's attention at any layer and head (or fused
    /// heads), either way, attention rollout, or the relevance for a class (Chefer et al.).
    Explain(Box<explain::ExplainArgs>),
    /// Draw an image beside its patch grid and its patches in token order.
    Patches {
        image: PathBuf,
        /// A model pair's manifest, or hf-hub:ORG/NAME[@REVISION].
        #[arg(long)]
        model: ModelArg,
        #[arg(long)]
        out: PathBuf,
        /// The square the model sees, as x,y,size in the image's pixels (as for predict).
        #[arg(long)]
        crop: Option<Crop>,
    },
    /// Turn a timm VisionTransformer into a model pair: a state dict (safetensors), or a timm
    /// model on the Hugging Face hub (hf-hub:ORG/NAME[@REVISION]) with its labels and
    /// preprocessing.
    ImportTimm {
        /// A .safetensors file, or hf-hub:ORG/NAME[@REVISION].
        source: String,
        /// Attention heads: the one number a state dict does not record (a hub model's
        /// architecture name says it).
        #[arg(long)]
        heads: Option<usize>,
        /// The model pair's name (default for a hub model: the repo's name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// Class names, one per line (default: "class 0", "class 1", ...; a hub model's own).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Normalisation mean, as r,g,b (default: timm's 0.5,0.5,0.5; a hub model's own).
        #[arg(long, value_parser = timm::parse_rgb)]
        mean: Option<[f32; 3]>,
        /// Normalisation std, as r,g,b (default: 0.5,0.5,0.5; a hub model's own).
        #[arg(long, value_parser = timm::parse_rgb)]
        std: Option<[f32; 3]>,
    },
    /// Write a model pair as a timm state dict (safetensors, timm's names and layouts).
    ExportTimm {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Train a ViT on a dataset; writes checkpoints, metrics.csv and plots into the run folder.
    Train(Box<training::TrainArgs>),
    /// Fine-tune a published (or imported) model on new classes: a new head, optionally frozen
    /// layers and another image size; the run folder is as for train, publish it the same way.
    Finetune(Box<finetune::FinetuneArgs>),
    /// Measure a published model on a dataset's test split: top-1, top-5, per class.
    Eval {
        /// A model pair's manifest, or hf-hub:ORG/NAME[@REVISION].
        #[arg(long)]
        model: ModelArg,
        #[arg(long)]
        data_dir: PathBuf,
        /// What --data-dir holds (default: detected, CIFAR-10 or CIFAR-100 binaries or class
        /// folders).
        #[arg(long, value_enum)]
        dataset: Option<DatasetKind>,
        #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
        device: DeviceArg,
        /// Also draw the confusion matrix to this PNG.
        #[arg(long)]
        confusion: Option<PathBuf>,
        /// Also write each test image's true and predicted class to this CSV.
        #[arg(long)]
        predictions: Option<PathBuf>,
    },
    /// Turn a finished run into a model pair in OUT and list it in OUT/index.json.
    Publish {
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        out: PathBuf,
        /// Make it the model the page loads first.
        #[arg(long)]
        default: bool,
        /// One line shown in the page's model list.
        #[arg(long)]
        description: Option<String>,
    },
    /// Fetch the official CIFAR archive, check its MD5 and unpack it.
    Download {
        #[arg(value_parser = ["cifar10", "cifar100"])]
        which: String,
        #[arg(long)]
        to: PathBuf,
        /// A mirror to use instead of the official address.
        #[arg(long)]
        url: Option<String>,
        /// The MD5 the mirror's archive must have.
        #[arg(long)]
        md5: Option<String>,
    },
    /// Print training and inference throughput and peak memory for a model shape.
    Bench(bench::BenchArgs),
}

/// Every tensor op allocates its output, mostly a few MB. glibc hands blocks that large back to
/// the kernel on free, so each op paid page faults to zero fresh pages: a quarter of a training
/// step went to the kernel. Keeping freed memory in the process cut that time by four fifths
/// (bench/README.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread allocates.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    // Behave like other command-line tools when the reader goes away (`trainer ... | head`):
    // end quietly instead of panicking on the next write to stdout.
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    // burn materialises a loaded optimizer state on `Device::default()` and moves it to each
    // parameter's device at the next step. In a build with a GPU feature that default is a
    // wgpu or CUDA device: a CPU run's `--resume` would start a GPU runtime (or fail without
    // one) and bring the state back in f32 beside bf16 weights. The CPU is the default here.
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: the first thing main does after the signal set-up: no other thread exists.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict {
            model,
            images,
            top,
            json,
            device,
            crop,
            image_size,
        } => predict::run(
            &model,
            &images,
            &predict::PredictOptions {
                top,
                json,
                device,
                crop,
                image_size,
            },
        ),
        Command::Explain(args) => explain::run(*args),
        Command::Patches {
            image,
            model,
            out,
            crop,
        } => predict::patches(&image, &model, &out, crop),
        Command::ImportTimm {
            source,
            heads,
            name,
            out,
            labels,
            mean,
            std,
        } => timm::import(
            &source,
            &timm::ImportOptions {
                heads,
                name,
                labels,
                mean,
                std,
            },
            &out,
        ),
        Command::ExportTimm { model, out } => timm::export(&model, &out),
        Command::Train(args) => training::run(*args),
        Command::Finetune(args) => finetune::run(*args),
        Command::Eval {
            model,
            data_dir,
            dataset,
            device,
            confusion,
            predictions,
        } => eval::run(
            &model,
            &data_dir,
            dataset,
            device,
            confusion.as_deref(),
            predictions.as_deref(),
        ),
        Command::Publish {
            run,
            name,
            out,
            default,
            description,
        } => publish::run(&run, &name, &out, default, description.as_deref()),
        Command::Download {
            which,
            to,
            url,
            md5,
        } => download::run(&which, &to, url.as_deref(), md5.as_deref()).map(|dir| {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }),
        Command::Bench(args) => bench::run(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    device::leave_after_gpu(code)
}
