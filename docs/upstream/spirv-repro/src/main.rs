//! Runs a handful of tensor ops on Flex and on `Device::vulkan` and prints the largest
//! difference of each. Select the Vulkan driver with `VK_ICD_FILENAMES`.

use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::{attention, conv2d};
use burn::tensor::ops::{AttentionModuleOptions, ConvOptions};
use burn::tensor::{Distribution, TensorData};

fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> (f32, f32) {
    let a = a.into_data().try_to_vec::<f32>().unwrap();
    let b = b.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let m = a.iter().map(|x| x.abs()).fold(0.0, f32::max);
    (d, m)
}

fn to<const D: usize>(t: &Tensor<D>, device: &Device) -> Tensor<D> {
    Tensor::from_data(t.to_data(), device)
}

fn report<const D: usize>(name: &str, cpu: Tensor<D>, gpu: Tensor<D>) {
    let (d, m) = max_diff(cpu, gpu);
    let verdict = if d <= 1e-3 * m.max(1.0) { "ok" } else { "WRONG" };
    println!("{name:<28} max |flex - vulkan| = {d:<12.3e} (max |flex| = {m:.3e})  {verdict}");
}

fn main() {
    let cpu = Device::flex();
    let gpu = Device::vulkan(burn::tensor::DeviceKind::DefaultDevice);
    let sz = |n: usize| std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(n);
    let (b, t, d) = (2, sz(17), 96);

    let x = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.0), &cpu);
    let w = Tensor::<2>::random([d, 3 * d], Distribution::Normal(0.0, 0.1), &cpu);
    let xg = to(&x, &gpu);
    let wg = to(&w, &gpu);

    report("upload + read back", x.clone(), xg.clone());
    report("add", x.clone() + 1.5, xg.clone() + 1.5);
    report("exp", x.clone().exp(), xg.clone().exp());
    report("sum_dim", x.clone().sum_dim(2), xg.clone().sum_dim(2));
    report("mean_dim", x.clone().mean_dim(2), xg.clone().mean_dim(2));
    report("var", x.clone().var(2), xg.clone().var(2));
    report("erf", x.clone().erf(), xg.clone().erf());
    report("gelu", gelu(x.clone()), gelu(xg.clone()));
    report("softmax", softmax(x.clone(), 2), softmax(xg.clone(), 2));
    let y = x.clone().matmul(w.clone().unsqueeze());
    let yg = xg.clone().matmul(wg.clone().unsqueeze());
    report("matmul [B,T,D]x[1,D,3D]", y.clone(), yg.clone());
    report(
        "matmul 2-D",
        x.clone().reshape([b * t, d]).matmul(w.clone()),
        xg.clone().reshape([b * t, d]).matmul(wg.clone()),
    );
    let h = 3;
    let split = |y: Tensor<3>| {
        let q = y.reshape([b, t, 3, h, d / h]).permute([2, 0, 3, 1, 4]);
        let mut p = q.chunk(3, 0).into_iter().map(|p| p.reshape([b, h, t, d / h]));
        (p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
    };
    let (q, k, v) = split(y);
    let (qg, kg, vg) = split(yg);
    report("permute + chunk (q)", q.clone(), qg.clone());
    let scores = q.clone().matmul(k.clone().swap_dims(2, 3));
    let scores_g = qg.clone().matmul(kg.clone().swap_dims(2, 3));
    report("q k^T (4-D matmul)", scores.clone(), scores_g.clone());
    let opts = AttentionModuleOptions::default();
    report(
        "module::attention",
        attention(q.clone(), k.clone(), v.clone(), None, None, opts),
        attention(qg.clone(), kg.clone(), vg.clone(), None, None, opts),
    );
    let img = Tensor::<4>::random([b, 3, 32, 32], Distribution::Normal(0.0, 1.0), &cpu);
    let kern = Tensor::<4>::random([d, 3, 4, 4], Distribution::Normal(0.0, 0.1), &cpu);
    let bias = Tensor::<1>::random([d], Distribution::Normal(0.0, 0.1), &cpu);
    let conv = ConvOptions::new([4, 4], [0, 0], [1, 1], 1);
    report(
        "conv2d (patch embed)",
        conv2d(img.clone(), kern.clone(), Some(bias.clone()), conv.clone()),
        conv2d(to(&img, &gpu), to(&kern, &gpu), Some(to(&bias, &gpu)), conv),
    );
    let big = TensorData::new((0..1_000_000).map(|i| (i % 97) as f32).collect::<Vec<_>>(), [1000, 1000]);
    report(
        "upload 4 MB",
        Tensor::<2>::from_data(big.clone(), &cpu),
        Tensor::<2>::from_data(big, &gpu),
    );
}
