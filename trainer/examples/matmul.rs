//! Flex's matmul alone, in GFLOP/s, on the shapes of a ViT's linear layers at batch 128
//! (65 tokens per image): the figure behind "gemm runs at half of MKL's speed" in
//! bench/README.md. Compare with PyTorch by timing `a @ b` on the same shapes.
//!
//!     cargo run --release -p trainer --example matmul
//!     RAYON_NUM_THREADS=1 cargo run --release -p trainer --example matmul

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

fn main() {
    let device = Device::flex();
    // [rows, in] x [in, out]: qkv and fc1 at dim 192, fc2, and fc1 at dim 128.
    for (m, k, n) in [
        (8320, 192, 576),
        (8320, 192, 384),
        (8320, 384, 192),
        (8320, 128, 384),
    ] {
        let a = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
        let run = || drop(a.clone().matmul(b.clone()).into_data());
        (0..3).for_each(|_| run());
        let runs = 20;
        let start = Instant::now();
        (0..runs).for_each(|_| run());
        let seconds = start.elapsed().as_secs_f64() / runs as f64;
        let gflops = 2.0 * (m * k * n) as f64 / seconds / 1e9;
        println!("[{m}, {k}] x [{k}, {n}]: {gflops:6.1} GFLOP/s");
    }
}
