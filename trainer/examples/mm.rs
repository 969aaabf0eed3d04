use burn::prelude::*;
use std::time::Instant;
fn main() {
    let dev = Device::flex();
    for (m, k, n) in [
        (8320, 192, 576),
        (8320, 192, 384),
        (8320, 384, 192),
        (4160, 192, 576),
        (8320, 128, 384),
    ] {
        let a = Tensor::<2>::random([m, k], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let b = Tensor::<2>::random([k, n], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        for _ in 0..3 {
            let _ = a.clone().matmul(b.clone()).into_data();
        }
        let r = 20;
        let t = Instant::now();
        for _ in 0..r {
            let _ = a.clone().matmul(b.clone()).into_data();
        }
        let dt = t.elapsed().as_secs_f64() / r as f64;
        println!(
            "{m} {k} {n} {:.1} GFLOP/s",
            2.0 * (m * k * n) as f64 / dt / 1e9
        );
    }
}
