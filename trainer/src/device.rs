//! `--device`: which backend runs the model.

use anyhow::{Result, bail};
use burn::prelude::Device;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArg {
    /// CUDA when built with it and an NVIDIA driver is present, else the CPU.
    Auto,
    /// burn's Flex backend: pure Rust, multi-threaded, SIMD.
    Cpu,
    /// wgpu pinned to Vulkan (needs the `vulkan` feature).
    Vulkan,
    /// CUDA (needs the `cuda` feature).
    Cuda,
    /// wgpu on whichever graphics API the machine offers (needs the `wgpu` feature).
    Wgpu,
}

/// The chosen device and a name for logs and manifests.
pub fn resolve(arg: DeviceArg) -> Result<(Device, String)> {
    match arg {
        DeviceArg::Auto => {
            #[cfg(feature = "cuda")]
            if std::path::Path::new("/dev/nvidiactl").exists() {
                return resolve(DeviceArg::Cuda);
            }
            resolve(DeviceArg::Cpu)
        }
        DeviceArg::Cpu => Ok((Device::flex(), format!("cpu (flex, {} threads)", threads()))),
        DeviceArg::Cuda => {
            #[cfg(feature = "cuda")]
            return Ok((Device::cuda(0), "cuda:0".into()));
            #[allow(unreachable_code)]
            {
                bail!("this trainer was built without CUDA: rebuild with `--features cuda`")
            }
        }
        DeviceArg::Vulkan => {
            #[cfg(feature = "vulkan")]
            return Ok((
                Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
                "vulkan".into(),
            ));
            #[allow(unreachable_code)]
            {
                bail!("this trainer was built without Vulkan: rebuild with `--features vulkan`")
            }
        }
        DeviceArg::Wgpu => {
            #[cfg(feature = "wgpu")]
            return Ok((
                Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
                "wgpu".into(),
            ));
            #[allow(unreachable_code)]
            {
                bail!("this trainer was built without wgpu: rebuild with `--features wgpu`")
            }
        }
    }
}

/// `n` devices of one kind for data-parallel training (`--devices`): GPUs `0..n` of the kind,
/// or, on the CPU, the one Flex device `n` times (each replica then computes on its own thread).
/// Without `n`: one replica per core on the CPU, one device otherwise. The flag is whether they
/// are CPU replicas.
pub fn resolve_many(arg: DeviceArg, n: Option<usize>) -> Result<(Vec<Device>, String, bool)> {
    let (first, name) = resolve(arg)?;
    let cpu = name.starts_with("cpu");
    let n = n.unwrap_or(if cpu { threads() } else { 1 });
    if n == 0 {
        bail!("--devices must be at least 1");
    }
    if n == 1 {
        return Ok((vec![first], name, cpu));
    }
    let devices: Vec<Device> = match arg {
        _ if cpu => vec![first; n],
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda | DeviceArg::Auto => (0..n).map(Device::cuda).collect(),
        #[cfg(feature = "vulkan")]
        DeviceArg::Vulkan => (0..n)
            .map(|i| Device::vulkan(burn::tensor::DeviceKind::DiscreteGpu(i)))
            .collect(),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => (0..n)
            .map(|i| Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)))
            .collect(),
        _ => bail!("--devices {n} needs {n} devices of the kind {name}"),
    };
    let name = if cpu {
        format!("cpu (flex, {n} replicas of 1 thread)")
    } else {
        format!("{n} x {name}")
    };
    Ok((devices, name, cpu))
}

/// Threads Flex computes with: rayon's global pool, sized by `RAYON_NUM_THREADS` or the cores.
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
