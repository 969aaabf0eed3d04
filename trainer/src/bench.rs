//! `trainer bench`: figures, not pass/fail. Training images/s (forward, backward, optimizer
//! step, in steady state), inference images/s at batch 1 and 64 with and without attention
//! maps, and peak memory.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use vit::VitConfig;

use crate::device::{DeviceArg, resolve};
use crate::recipe::{ModelFlags, Preset};

pub struct BenchArgs {
    pub preset: Preset,
    pub device: DeviceArg,
    pub batch_size: usize,
    pub steps: usize,
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

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let (device, device_name) = resolve(args.device)?;
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
    println!("device: {device_name}");

    // Training: the same step as the trainer (soft-target loss, AdamW).
    let ad = device.clone().autodiff();
    let mut model = Some(c.init(&ad)?);
    let mut optim = AdamWConfig::new().with_weight_decay(0.05).init();
    let x = images(b, size, &ad);
    let targets = Tensor::<2>::zeros([b, classes], &ad).add_scalar(1.0 / classes as f64);
    let step_s = time(2, args.steps, || {
        let m = model.take().expect("model is put back every step");
        let loss = (log_softmax(m.forward(x.clone()), 1) * targets.clone())
            .sum_dim(1)
            .mean()
            .neg();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = optim.step(1e-4, m, grads);
        // Reading one value forces the step to finish, as the trainer's loss logging does.
        let _ = m
            .head
            .bias
            .as_ref()
            .map(|p| p.val().narrow(0, 0, 1).into_scalar::<f32>());
        model = Some(m);
    });
    println!(
        "train     batch {b:>3}: {:8.1} images/s ({:.1} ms/step)",
        b as f64 / step_s,
        step_s * 1e3
    );

    let model = model.take().expect("model").valid();
    for batch in [1, 64] {
        let x = images(batch, size, &device);
        let runs = if batch == 1 { 50 } else { 5 };
        let fused = time(3, runs, || {
            let _ = model.forward(x.clone()).into_data();
        });
        let maps = time(3, runs, || {
            let (logits, attn) = model.forward_with_attention(x.clone());
            let _ = logits.into_data();
            let _ = vit::inference::stack_attention(attn).into_data();
        });
        println!(
            "infer     batch {batch:>3}: {:8.1} images/s ({:.2} ms/batch) | with attention maps {:8.1} images/s ({:.2} ms, {:.2}x)",
            batch as f64 / fused,
            fused * 1e3,
            batch as f64 / maps,
            maps * 1e3,
            maps / fused
        );
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
