//! wgpu's adapters: which one `--device vulkan` or `wgpu` starts (the `index`-th discrete GPU,
//! else integrated, else the driver's default, a software one included), and which hardware
//! adapter `--device auto` ranks best. A build without wgpu has none and says which feature
//! to add.

#[cfg(feature = "wgpu")]
pub(super) use with_wgpu::{best_adapter, device};
#[cfg(not(feature = "wgpu"))]
pub(super) use without_wgpu::{best_adapter, device};

/// The wgpu devices: Vulkan pinned, or wgpu's own choice of graphics API.
#[cfg(feature = "wgpu")]
mod with_wgpu {
    use crate::device::DeviceArg;
    use anyhow::{Context, Result};
    use burn::prelude::Device;
    use burn::tensor::DeviceKind;
    use burn::tensor::wgpu::{WgpuBackend, wgpu};
    use std::sync::Mutex;

    /// A hardware adapter that `auto` may choose.
    pub struct Adapter {
        arg: DeviceArg,
        name: String,
        kind: wgpu::DeviceType,
        api: wgpu::Backend,
    }

    impl Adapter {
        pub fn arg(&self) -> DeviceArg {
            self.arg
        }

        pub fn describe(&self) -> String {
            format!(
                "{:?} adapter \"{}\" on {:?}",
                self.kind, self.name, self.api
            )
        }
    }

    /// `CUBECL_WGPU_DEFAULT_DEVICE` style selection: the `index`-th discrete GPU, else
    /// integrated, else whatever the driver offers (a CPU adapter included: asked by name).
    pub fn device(arg: DeviceArg, index: usize) -> Result<(Device, String)> {
        let api = match arg {
            DeviceArg::Vulkan => WgpuBackend::Vulkan,
            _ => WgpuBackend::Auto,
        };
        let adapters = adapters(backends(arg));
        let count = |t| adapters.iter().filter(|a| a.device_type == t).count();
        let (kind, label) = if count(wgpu::DeviceType::DiscreteGpu) > index {
            (DeviceKind::DiscreteGpu(index), "discrete")
        } else if count(wgpu::DeviceType::IntegratedGpu) > index {
            (DeviceKind::IntegratedGpu(index), "integrated")
        } else if index == 0 && !adapters.is_empty() {
            (DeviceKind::DefaultDevice, "default")
        } else {
            anyhow::bail!(
                "{arg:?} device {index} does not exist: the adapters here are [{}]",
                adapters
                    .iter()
                    .map(|a| format!("{} ({:?}, {:?})", a.name, a.device_type, a.backend))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        // A runtime registers once per process; `train` resolves its device more than once.
        static STARTED: Mutex<Vec<((DeviceArg, usize), Device)>> = Mutex::new(Vec::new());
        let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
        let device = match started.iter().find(|(k, _)| *k == (arg, index)) {
            Some((_, d)) => d.clone(),
            None => {
                crate::device::vulkan_loader::quiet();
                // Only CPU adapters here, so `DefaultDevice` is one of them (SwiftShader,
                // llvmpipe): started with smaller buffers and a short autotune (vit::gpu_settings).
                // cubecl's SPIR-V compiler needs the device it asks for itself.
                let software = matches!(kind, DeviceKind::DefaultDevice)
                    && adapters
                        .iter()
                        .all(|a| a.device_type == wgpu::DeviceType::Cpu)
                    && !cfg!(feature = "vulkan-spirv");
                let d = if software {
                    vit::gpu_settings::start_software_adapter(backends(arg))
                        .map_err(anyhow::Error::msg)
                } else {
                    vit::gpu_settings::configure(false);
                    Device::wgpu_options()
                        .device_kind(kind)
                        .graphics_api(api)
                        .init()
                        .map_err(anyhow::Error::from)
                }
                .with_context(|| format!("starting the {label} {arg:?} adapter"))?;
                started.push(((arg, index), d.clone()));
                crate::device::GPU_STARTED.store(true, std::sync::atomic::Ordering::SeqCst);
                d
            }
        };
        drop(started);
        let name = match device.identity() {
            Some(id) => format!("{} ({})", arg_name(arg, index), id.name),
            None => arg_name(arg, index),
        };
        Ok((device, name))
    }

    fn backends(arg: DeviceArg) -> wgpu::Backends {
        match arg {
            DeviceArg::Vulkan => wgpu::Backends::VULKAN,
            _ => wgpu::Backends::all(),
        }
    }

    fn arg_name(arg: DeviceArg, index: usize) -> String {
        format!("{}:{index}", format!("{arg:?}").to_lowercase())
    }

    fn adapters(backends: wgpu::Backends) -> Vec<wgpu::AdapterInfo> {
        crate::device::vulkan_loader::quiet();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        futures_lite::future::block_on(instance.enumerate_adapters(backends))
            .iter()
            .map(wgpu::Adapter::get_info)
            .collect()
    }

    /// The best hardware adapter for `auto`: discrete before integrated, Vulkan before the
    /// others. CPU adapters (SwiftShader, llvmpipe) and GL's unnamed kinds never qualify.
    pub fn best_adapter() -> Result<Adapter, String> {
        // Vulkan, Metal, DX12: GL's adapters are the same GPUs, slower, or llvmpipe.
        let all = adapters(wgpu::Backends::PRIMARY);
        let rank = |a: &wgpu::AdapterInfo| {
            let kind = match a.device_type {
                wgpu::DeviceType::DiscreteGpu => 0,
                wgpu::DeviceType::IntegratedGpu => 1,
                _ => return None,
            };
            Some((kind, a.backend != wgpu::Backend::Vulkan))
        };
        let best = all
            .iter()
            .filter_map(|a| rank(a).map(|r| (r, a)))
            .min_by_key(|(r, _)| *r)
            .map(|(_, a)| a);
        match best {
            Some(a) => Ok(Adapter {
                arg: if a.backend == wgpu::Backend::Vulkan {
                    DeviceArg::Vulkan
                } else {
                    DeviceArg::Wgpu
                },
                name: a.name.clone(),
                kind: a.device_type,
                api: a.backend,
            }),
            None if all.is_empty() => Err("no wgpu adapter".into()),
            None => Err(format!(
                "no GPU adapter, only [{}], which the CPU path outruns",
                all.iter()
                    .map(|a| format!("{} ({:?})", a.name, a.device_type))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// A build without wgpu: no adapter, and a device of its kinds is refused with the feature to add.
#[cfg(not(feature = "wgpu"))]
mod without_wgpu {
    use crate::device::DeviceArg;
    use anyhow::{Result, bail};
    use burn::prelude::Device;

    /// Without wgpu there is no adapter to find: the type has no values.
    pub enum Adapter {}

    impl Adapter {
        pub fn arg(&self) -> DeviceArg {
            match *self {}
        }

        pub fn describe(&self) -> String {
            match *self {}
        }
    }

    pub fn device(arg: DeviceArg, _index: usize) -> Result<(Device, String)> {
        let feature = format!("{arg:?}").to_lowercase();
        bail!("this trainer was built without {arg:?}: rebuild with `--features {feature}`")
    }

    pub fn best_adapter() -> Result<Adapter, String> {
        Err("built without wgpu".into())
    }
}
