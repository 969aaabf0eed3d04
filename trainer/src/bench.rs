//! `trainer bench`: figures, not pass/fail. Training images/s (forward, backward, optimizer
//! step, in steady state), inference images/s at batch 1 and 64 with and without attention
//! maps, and peak memory; on a GPU also the kernels a training step and an inference batch
//! launch, and the first step's compiling and autotuning.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use vit::VitConfig;

use crate::device::{DeviceArg, resolve_many};
use crate::parallel::{Batch, Replicas};
use crate::recipe::{ModelFlags, Precision, Preset};

/// `trainer bench`'s arguments.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The preset whose model shape to measure (overridable below); the default model's.
    #[arg(long, value_enum, default_value_t = Preset::Cifar10Cpu52Epochs)]
    pub preset: Preset,
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Timed training steps.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Training replicas, as in `train --devices` (default: one per core on the CPU).
    #[arg(long)]
    pub devices: Option<usize>,
    /// Compute in this float type, as `train --precision`.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// The larger inference batch (batch 1 is always measured).
    #[arg(long, default_value_t = 64)]
    pub infer_batch: usize,
    /// Timed inference runs per batch size (default: 50 at batch 1, 5 at the larger batch).
    #[arg(long)]
    pub infer_runs: Option<usize>,
    /// Also list the kernels one training step launches, by name (GPU devices).
    #[arg(long)]
    pub list_kernels: bool,
    #[command(flatten)]
    pub model: ModelFlags,
}

fn config(args: &BenchArgs) -> VitConfig {
    let mut c = args.preset.recipe(10).model;
    args.model.apply(&mut c);
    c
}

fn images(batch: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::random(
        [batch, 3, size, size],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    )
}

/// Runs `f` `warmup` times untimed, then `runs` times; returns the mean seconds per run.
fn time(warmup: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    (0..warmup).for_each(|_| f());
    let start = Instant::now();
    (0..runs).for_each(|_| f());
    start.elapsed().as_secs_f64() / runs as f64
}

/// The kernels the `gemm` crate picks at run time for Flex's (and our kernels') products. It
/// has no switch of its own: its AVX-512 kernels exist only in a build with the `avx512`
/// feature (burn's `x86-v4`), so a build without it is how a CPU without AVX-512 is stood in
/// for (`bench/compare --isa avx2`).
fn gemm_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        if cfg!(feature = "avx512") && avx512 {
            return "avx512f kernels";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return if avx512 {
                "avx2+fma kernels (this build has no avx512 feature)"
            } else {
                "avx2+fma kernels (this CPU has no AVX-512)"
            };
        }
        "scalar kernels"
    }
    #[cfg(not(target_arch = "x86_64"))]
    "the target's own kernels"
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let (mut devices, device_name, cpu) = resolve_many(args.device, args.devices)?;
    crate::parallel::set_precision(&mut devices, args.precision, &device_name)?;
    crate::device::check(&devices, &device_name)?;
    let device = devices[0].clone();
    let c = config(&args);
    c.validate()?;
    let (b, size, classes) = (args.batch_size, c.image_size, c.num_classes);
    println!(
        "config: {}px, patch {}, {} tokens, dim {}, depth {}, {} heads, MLP {}, {} parameters",
        size,
        c.patch_size,
        c.num_tokens(),
        c.embed_dim,
        c.depth,
        c.num_heads,
        c.mlp_hidden(),
        c.num_params()
    );
    // The shape in pytorch_bench.py's flags: bench/compare builds timm's model from this line,
    // so the presets' shapes live in trainer/src/recipe/presets.rs alone.
    println!(
        "shape: --image-size {size} --patch-size {} --embed-dim {} --depth {} --heads {} \
         --mlp-ratio {} --pool {} --drop-path {}",
        c.patch_size,
        c.embed_dim,
        c.depth,
        c.num_heads,
        c.mlp_ratio,
        match c.pooling {
            vit::Pooling::Token => "token",
            vit::Pooling::Mean => "avg",
        },
        c.drop_path_rate
    );
    println!("device: {device_name}");
    println!("precision: {:?}", args.precision);
    println!(
        "CPU kernels: {} (VIT_KERNELS), SIMD {} (VIT_SIMD)",
        if vit::kernels::enabled() { "on" } else { "off" },
        vit::kernels::simd().name()
    );
    println!("matrix products: gemm, {}", gemm_kernels());

    // Training: the trainer's own step (replicas, soft-target loss), then AdamW.
    let replicas = Replicas::new(devices, cpu)?;
    let ad = replicas.main().clone();
    let mut model = Some(c.init(&ad)?);
    let mut optim = AdamWConfig::new().with_weight_decay(0.05).init();
    let pixels: Vec<f32> = images(b, size, &device)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let targets = vec![1.0 / classes as f32; b * classes];
    let batch = Batch {
        images: &pixels,
        targets: &targets,
        len: b,
        size,
        classes,
    };
    let mut failure = None;
    let mut step = || {
        let m = model.take().expect("model is put back every step");
        match replicas.step(&m, &batch) {
            // Reading the loss, as the step does, forces the step to finish.
            Ok(step) => model = Some(optim.step(1e-4, m, step.grads)),
            Err(e) => {
                failure.get_or_insert(e);
                model = Some(m);
            }
        }
    };
    // The first step compiles every kernel and, on a GPU, autotunes every new shape.
    let first_s = time(0, 1, &mut step);
    let step_s = time(1, args.steps, &mut step);
    let launches = crate::kernel_launches::count(&mut step);
    if let Some(e) = failure {
        return Err(e);
    }
    println!(
        "train     batch {b:>3}: {:8.1} images/s ({:.1} ms/step)",
        b as f64 / step_s,
        step_s * 1e3
    );
    if let Some(l) = &launches {
        println!(
            "gpu       first step {:.2} s, of which compiling and autotuning about {:.2} s; {} kernels per training step",
            first_s,
            (first_s - step_s).max(0.0),
            l.total()
        );
        if args.list_kernels {
            for (kernel, n) in &l.by_kernel {
                println!("  {n:>6} x {kernel}");
            }
        }
    }
    // The matrix products alone (`VitConfig::forward_flops`), three times the forward's for a
    // training step: what bench/README.md divides by the CPU's peak (`--example peak`).
    let train_flops = 3.0 * c.forward_flops();
    println!(
        "compute: {:.1} MFLOP per image forward, {:.1} per training image: {:.1} GFLOP/s in training",
        c.forward_flops() / 1e6,
        train_flops / 1e6,
        train_flops * b as f64 / step_s / 1e9
    );

    // Inference as `trainer eval` runs it: a batch is split across the replicas.
    let model = model.take().expect("model").valid();
    for batch in [1, args.infer_batch.max(1)] {
        let x = images(batch, size, &device);
        let shard = |range: std::ops::Range<usize>| x.clone().narrow(0, range.start, range.len());
        let runs = args
            .infer_runs
            .unwrap_or(if batch == 1 { 50 } else { 5 })
            .max(1);
        let fused = time(3, runs, || {
            replicas.map_shards(batch, |_, range| {
                let _ = model.forward(shard(range)).into_data();
            });
        });
        let maps = time(3, runs, || {
            replicas.map_shards(batch, |_, range| {
                let (logits, attn) = model.forward_with_attention(shard(range));
                let _ = logits.into_data();
                let _ = vit::inference::stack_attention(attn).into_data();
            });
        });
        println!(
            "infer     batch {batch:>3}: {:8.1} images/s ({:.2} ms/batch) | with attention maps {:8.1} images/s ({:.2} ms, {:.2}x)",
            batch as f64 / fused,
            fused * 1e3,
            batch as f64 / maps,
            maps * 1e3,
            maps / fused
        );
        let count = crate::kernel_launches::count(|| {
            replicas.map_shards(batch, |_, range| {
                let _ = model.forward(shard(range)).into_data();
            });
        });
        if let Some(l) = count {
            println!(
                "gpu       {} kernels per inference batch of {batch}",
                l.total()
            );
        }
    }
    if let Some(kb) = peak_rss_kb() {
        println!("peak memory (RSS): {:.0} MiB", kb as f64 / 1024.0);
    }
    Ok(ExitCode::SUCCESS)
}

/// Peak resident memory of this process, from Linux's /proc (None elsewhere).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
