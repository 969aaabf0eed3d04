//! This CPU's peak f32 arithmetic, in GFLOP/s: fused multiply-adds on registers only, no memory
//! traffic, on one core and on every core. The ceiling that bench/README.md divides the
//! training figures by ("what fraction of this machine's peak each side reaches").
//!
//!     cargo run --release -p trainer --example peak
//!
//! Each thread runs 12 independent accumulator chains: enough to cover the FMA units' latency
//! (4 cycles) times their count (2 on most AVX-512 server cores), so the loop is bound by
//! throughput alone.

use std::time::Instant;

const CHAINS: usize = 12;
const ITERATIONS: usize = 50_000_000;

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (name, lanes, run) in kernels() {
        let one = gflops(lanes, 1, run);
        let all = gflops(lanes, threads, run);
        println!("{name:8} ({lanes:2} lanes): {one:6.1} GFLOP/s on 1 core, {all:6.1} on {threads}");
    }
}

type Kernel = fn(usize) -> f32;

/// The FMA loops this CPU can run: AVX-512 and AVX2 where present, else a plain loop.
fn kernels() -> Vec<(&'static str, usize, Kernel)> {
    let mut found: Vec<(&'static str, usize, Kernel)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            found.push(("avx512f", 16, x86::avx512));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            found.push(("avx2+fma", 8, x86::avx2));
        }
    }
    if found.is_empty() {
        found.push(("scalar", 1, scalar));
    }
    found
}

fn gflops(lanes: usize, threads: usize, run: Kernel) -> f64 {
    run(ITERATIONS / 10); // warm up: clocks, page faults
    let start = Instant::now();
    let sums: f32 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(move || run(ITERATIONS)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    // The sum keeps the compiler from deleting the loops.
    assert!(sums.is_finite(), "the accumulators overflowed");
    let flops = 2.0 * (CHAINS * lanes * ITERATIONS * threads) as f64;
    flops / seconds / 1e9
}

fn scalar(iterations: usize) -> f32 {
    let mut acc = [0f32; CHAINS];
    let (a, b) = (
        std::hint::black_box(0.999f32),
        std::hint::black_box(1e-3f32),
    );
    for _ in 0..iterations {
        for x in &mut acc {
            *x = x.mul_add(a, b);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    pub fn avx512(iterations: usize) -> f32 {
        // SAFETY: only listed by `kernels` when the CPU reports avx512f.
        unsafe { avx512_fma(iterations) }
    }

    pub fn avx2(iterations: usize) -> f32 {
        // SAFETY: only listed by `kernels` when the CPU reports avx2 and fma.
        unsafe { avx2_fma(iterations) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_fma(iterations: usize) -> f32 {
        let a = _mm512_set1_ps(std::hint::black_box(0.999));
        let b = _mm512_set1_ps(std::hint::black_box(1e-3));
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..iterations {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_fma(iterations: usize) -> f32 {
        let a = _mm256_set1_ps(std::hint::black_box(0.999));
        let b = _mm256_set1_ps(std::hint::black_box(1e-3));
        let mut acc = [_mm256_setzero_ps(); CHAINS];
        for _ in 0..iterations {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut lanes = [0f32; 8];
        acc.iter()
            .map(|&x| {
                // SAFETY: `lanes` holds the 8 floats the store writes.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), x) };
                lanes.iter().sum::<f32>()
            })
            .sum()
    }
}
