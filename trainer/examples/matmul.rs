//! Matrix products alone, in GFLOP/s, on the default model's linear layers (dim 96, MLP 192, 65
//! tokens) at a replica's share of a batch: 32 images (2,080 rows: batch-64 inference over two
//! replicas) and 64 (4,160 rows: a training batch of 128). Each shape is timed through burn's
//! `matmul` on Flex and through the `gemm` crate called directly, which is what Flex and our
//! kernels run underneath. `bench/matmul.py` times PyTorch's `nn.Linear` and `@` on the same
//! shapes; `cargo run --release -p trainer --example peak` gives the ceiling.
//!
//!     RAYON_NUM_THREADS=1 cargo run --release -p trainer --example matmul
//!     # gemm's AVX2 kernels on an AVX-512 CPU: a build without them
//!     RAYON_NUM_THREADS=1 cargo run --release -p trainer --no-default-features \
//!         --target-dir target/no-avx512 --example matmul

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

fn main() {
    println!(
        "gemm's kernels: {}",
        if cfg!(feature = "avx512") {
            "avx512f where the CPU has it"
        } else {
            "avx2+fma (no avx512 feature)"
        }
    );
    let device = Device::flex();
    for rows in [2080, 4160] {
        // [rows, in] x [in, out]: qkv, proj, fc1, fc2.
        for (k, n) in [(96, 288), (96, 96), (96, 192), (192, 96)] {
            let flops = 2.0 * (rows * k * n) as f64;
            let a = Tensor::<2>::random([rows, k], Distribution::Normal(0.0, 1.0), &device);
            let b = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
            let burn_s = time(|| drop(a.clone().matmul(b.clone()).into_data()));

            let a: Vec<f32> = a.into_data().try_to_vec().expect("f32");
            let b: Vec<f32> = b.into_data().try_to_vec().expect("f32");
            let mut c = vec![0f32; rows * n];
            let gemm_s = time(|| {
                // SAFETY: a is [rows, k], b [k, n] and c [rows, n], all row-major and live.
                unsafe {
                    gemm::gemm(
                        rows,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(0),
                    )
                }
            });
            println!(
                "[{rows}, {k}] x [{k}, {n}]: burn {:6.1} GFLOP/s, gemm {:6.1} GFLOP/s",
                flops / burn_s / 1e9,
                flops / gemm_s / 1e9
            );
        }
    }
}

/// Seconds per run of `f`, after three untimed runs.
fn time(mut f: impl FnMut()) -> f64 {
    (0..3).for_each(|_| f());
    let runs = 50;
    let start = Instant::now();
    (0..runs).for_each(|_| f());
    start.elapsed().as_secs_f64() / runs as f64
}
