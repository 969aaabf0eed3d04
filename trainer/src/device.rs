//! `--device`: which backend runs the model, and for `auto`, which one is best here.

use anyhow::{Result, bail};
use burn::prelude::Device;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArg {
    /// The best device there is: CUDA (when built with it and a driver answers), else a real
    /// GPU through wgpu (when built with `wgpu` or `vulkan`), else the CPU. Software GPUs
    /// (SwiftShader, llvmpipe) are slower than the CPU path and only used when named.
    Auto,
    /// burn's Flex backend: pure Rust, multi-threaded, SIMD.
    Cpu,
    /// wgpu pinned to Vulkan (needs the `vulkan` or `wgpu` feature).
    Vulkan,
    /// CUDA (needs the `cuda` feature).
    Cuda,
    /// wgpu on whichever graphics API the machine offers (needs the `wgpu` or `vulkan` feature).
    Wgpu,
}

/// The chosen device and a name for logs and manifests.
pub fn resolve(arg: DeviceArg) -> Result<(Device, String)> {
    resolve_kind(arg).map(|(_, device, name)| (device, name))
}

/// As `resolve`, with the kind `auto` settled on (the argument itself otherwise).
fn resolve_kind(arg: DeviceArg) -> Result<(DeviceArg, Device, String)> {
    match arg {
        DeviceArg::Auto => {
            let (choice, why) = auto_choice();
            report_auto_once(choice, &why);
            // Runs and manifests record the choice with its reason.
            let (device, name) = resolve(choice)?;
            Ok((choice, device, format!("{name} [--device auto: {why}]")))
        }
        DeviceArg::Cpu => Ok((
            arg,
            Device::flex(),
            format!("cpu (flex, {} threads)", threads()),
        )),
        DeviceArg::Cuda => {
            #[cfg(feature = "cuda")]
            {
                // Without a driver cubecl panics on a thread of its own, past any catch: ask first.
                if let Err(why) = cuda_answers() {
                    bail!("--device cuda: {why}");
                }
                vit::gpu_runtime::configure(false);
                GPU_STARTED.store(true, std::sync::atomic::Ordering::SeqCst);
                return Ok((arg, Device::cuda(0), "cuda:0".into()));
            }
            #[allow(unreachable_code)]
            {
                bail!("this trainer was built without CUDA: rebuild with `--features cuda`")
            }
        }
        DeviceArg::Vulkan | DeviceArg::Wgpu => {
            gpu::device(arg, 0).map(|(device, name)| (arg, device, name))
        }
    }
}

/// `n` devices of one kind for data-parallel training (`--devices`): GPUs `0..n` of the kind,
/// or, on the CPU, the one Flex device `n` times (each replica then computes on its own thread).
/// Without `n`: one replica per core on the CPU, one device otherwise. The flag is whether they
/// are CPU replicas.
pub fn resolve_many(arg: DeviceArg, n: Option<usize>) -> Result<(Vec<Device>, String, bool)> {
    let (arg, first, name) = resolve_kind(arg)?;
    let cpu = arg == DeviceArg::Cpu;
    let n = n.unwrap_or(if cpu { threads() } else { 1 });
    if n == 0 {
        bail!("--devices must be at least 1");
    }
    if n == 1 {
        return Ok((vec![first], name, cpu));
    }
    let devices: Vec<Device> = match arg {
        DeviceArg::Cpu => vec![first; n],
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => (0..n).map(Device::cuda).collect(),
        DeviceArg::Vulkan | DeviceArg::Wgpu => (0..n)
            .map(|i| gpu::device(arg, i).map(|(d, _)| d))
            .collect::<Result<_>>()?,
        _ => bail!("--devices {n} needs {n} devices of the kind {name}"),
    };
    let name = if cpu {
        format!("cpu (flex, {n} replicas of 1 thread)")
    } else {
        format!("{n} x {name}")
    };
    Ok((devices, name, cpu))
}

/// Set once a GPU device (wgpu or CUDA) has started (see [`leave_after_gpu`]).
static GPU_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The process's exit, once its work is done and written. After a GPU device has run, the
/// driver's threads are still alive when `exit` runs the C libraries' destructors; for wgpu
/// on SwiftShader that crashed in about one exit in twenty on a loaded machine (SIGSEGV after the
/// last line was printed, so a finished run reported failure). Nothing is left to write or
/// clean up by then (files are written atomically and closed), so such a process leaves with
/// `_exit`, which runs no destructors, after flushing its output.
pub fn leave_after_gpu(code: std::process::ExitCode) -> std::process::ExitCode {
    if !GPU_STARTED.load(std::sync::atomic::Ordering::SeqCst) {
        return code;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let status = match code {
        c if c == std::process::ExitCode::SUCCESS => 0,
        c if c == std::process::ExitCode::from(130) => 130,
        _ => 1,
    };
    // SAFETY: ends the process at once; every buffer that matters was flushed above.
    unsafe { libc::_exit(status) }
}

/// Threads Flex computes with: rayon's global pool, sized by `RAYON_NUM_THREADS` or the cores.
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// What `--device auto` settles on, and why, in the order the flag's help gives.
fn auto_choice() -> (DeviceArg, String) {
    let mut why = Vec::new();
    if cfg!(feature = "cuda") {
        match cuda_answers() {
            Ok(()) => return (DeviceArg::Cuda, "CUDA answered".into()),
            Err(e) => why.push(format!("no CUDA ({e})")),
        }
    } else {
        why.push("built without CUDA".into());
    }
    match gpu::best_adapter() {
        Ok(adapter) => {
            return (
                adapter.arg(),
                format!("{}; {}", why.join("; "), adapter.describe()),
            );
        }
        Err(e) => why.push(e),
    }
    (DeviceArg::Cpu, format!("{}: the CPU", why.join("; ")))
}

fn report_auto_once(choice: DeviceArg, why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| eprintln!("--device auto: {choice:?} ({why})"));
}

/// Whether a CUDA driver and device answer, without letting a missing driver panic the run.
fn cuda_answers() -> Result<(), String> {
    #[cfg(feature = "cuda")]
    {
        if !std::path::Path::new("/dev/nvidiactl").exists() {
            return Err("/dev/nvidiactl is missing".into());
        }
        // cubecl panics when the driver library or the device is missing: ask in a way that
        // turns that into an answer, with the panic's message kept out of the user's terminal.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        // No tensor is made: a device's float type can only be set before its first one.
        let probe = std::panic::catch_unwind(|| {
            Device::enumerate(burn::tensor::DeviceType::Cuda)
                .into_iter()
                .count()
        });
        std::panic::set_hook(hook);
        return match probe {
            Ok(0) => Err("no CUDA device".into()),
            Ok(_) => Ok(()),
            Err(_) => Err("the driver did not answer".into()),
        };
    }
    #[allow(unreachable_code)]
    Err("built without CUDA".into())
}

/// Keeps Mesa's Vulkan device-selection layer (an implicit layer of Debian's and others'
/// `mesa-vulkan-drivers`) out of a process that has no display. That layer exists to put the
/// GPU driving the display first; with no display it has nothing to choose, but it still asks
/// Wayland, whose library then prints "error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment." on every run that lists adapters (each `--device auto` run included, even
/// when it settles on the CPU), which reads like a failure. Our own ranking picks the adapter,
/// so the layer's order does not matter here. A user's own `NODEVICE_SELECT` or
/// `MESA_VK_DEVICE_SELECT`, or a display, leaves the layer as it is.
#[cfg_attr(not(feature = "wgpu"), allow(dead_code))]
fn quiet_vulkan_loader() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        let display = set("WAYLAND_DISPLAY") || set("DISPLAY");
        let chosen = set("NODEVICE_SELECT") || set("MESA_VK_DEVICE_SELECT");
        if !display && !chosen {
            // SAFETY: before this process's first Vulkan instance (every wgpu instance here
            // is made after this call); the threads that may exist by now (Ctrl-C's handler,
            // rayon's workers) do not read the environment, and Rust's own readers take the
            // lock `set_var` takes.
            unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
        }
    });
}

/// The wgpu devices: Vulkan pinned, or wgpu's own choice of graphics API.
#[cfg(feature = "wgpu")]
mod gpu {
    use super::DeviceArg;
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
                super::quiet_vulkan_loader();
                // Only CPU adapters here, so `DefaultDevice` is one of them (SwiftShader,
                // llvmpipe): started with smaller buffers and a short autotune (vit::gpu_runtime).
                // cubecl's SPIR-V compiler needs the device it asks for itself.
                let software = matches!(kind, DeviceKind::DefaultDevice)
                    && adapters
                        .iter()
                        .all(|a| a.device_type == wgpu::DeviceType::Cpu)
                    && !cfg!(feature = "vulkan-spirv");
                let d = if software {
                    vit::gpu_runtime::start_software_adapter(backends(arg))
                        .map_err(anyhow::Error::msg)
                } else {
                    vit::gpu_runtime::configure(false);
                    Device::wgpu_options()
                        .device_kind(kind)
                        .graphics_api(api)
                        .init()
                        .map_err(anyhow::Error::from)
                }
                .with_context(|| format!("starting the {label} {arg:?} adapter"))?;
                started.push(((arg, index), d.clone()));
                super::GPU_STARTED.store(true, std::sync::atomic::Ordering::SeqCst);
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
        super::quiet_vulkan_loader();
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

#[cfg(not(feature = "wgpu"))]
mod gpu {
    use super::DeviceArg;
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

/// Refuses GPU devices that compute a small matrix product wrongly, before they train or predict
/// on garbage: a driver or shader-compiler fault shows here as a clear error. Call it after
/// `--precision` has configured the devices (that must come before their first tensor).
pub fn check(devices: &[Device], name: &str) -> Result<()> {
    let flex = Device::flex();
    for (i, device) in devices.iter().enumerate() {
        if *device != flex && !devices[..i].contains(device) {
            self_check(device, name)?;
        }
    }
    Ok(())
}

fn self_check(device: &Device, name: &str) -> Result<()> {
    self_check_with(device, name, probe)
}

/// How close a device's answer to the probe must be to the CPU's: 1e-3 relative (absolute
/// below 1), by `vit::close`'s rule, so a NaN, an infinity or a short or long answer fails.
const SELF_CHECK: vit::close::Tolerance = vit::close::Tolerance::rel(1e-3);

/// The self-check with the device's answer from `answer` (the probe, except in tests, which
/// put a faulty device's answers here).
fn self_check_with(
    device: &Device,
    name: &str,
    answer: impl Fn(&Device, &str) -> Result<Vec<f32>>,
) -> Result<()> {
    let want = probe(&Device::flex(), "the CPU")?;
    let got = answer(device, name)?;
    if let Err(e) = vit::close::check(&want, &got, SELF_CHECK) {
        bail!(
            "{name} computes wrong results (a matmul + GELU against the CPU's: {e}): its \
             driver or shader compiler is at fault; use --device cpu, or the `wgpu` build (see \
             docs/gpu.md)"
        );
    }
    Ok(())
}

/// A small matrix product through GELU, summed by rows, as `device` computes it.
fn probe(device: &Device, name: &str) -> Result<Vec<f32>> {
    use burn::tensor::{Tensor, TensorData};
    let (m, k, n) = (33, 70, 17);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0)
        .collect();
    let a = Tensor::<2>::from_data(TensorData::new(a, [m, k]), device);
    let b = Tensor::<2>::from_data(TensorData::new(b, [k, n]), device);
    (burn::tensor::activation::gelu(a.matmul(b)).sum_dim(1) + 0.5)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading back from {name}: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that answers the probe as the CPU does, then spoils the answer with `fault`.
    fn faulty(fault: fn(&mut Vec<f32>)) -> impl Fn(&Device, &str) -> Result<Vec<f32>> {
        move |device, name| {
            let mut answer = probe(device, name)?;
            fault(&mut answer);
            Ok(answer)
        }
    }

    fn refused(fault: fn(&mut Vec<f32>)) -> String {
        match self_check_with(&Device::flex(), "the faulty GPU", faulty(fault)) {
            Ok(()) => panic!("a faulty answer passed the self-check"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_right_answer_passes() {
        self_check_with(&Device::flex(), "a good GPU", probe).unwrap();
        self_check_with(
            &Device::flex(),
            "a GPU off by a little",
            faulty(|a| a[3] += 1e-4),
        )
        .unwrap();
        check(&[Device::flex()], "the CPU").unwrap();
    }

    #[test]
    fn a_nan_answer_is_refused() {
        let e = refused(|a| a[5] = f32::NAN);
        assert!(e.contains("the faulty GPU computes wrong results"), "{e}");
        assert!(e.contains("index 5") && e.contains("got NaN"), "{e}");
        let e = refused(|a| a.iter_mut().for_each(|v| *v = f32::NAN));
        assert!(e.contains("33 of 33"), "{e}");
    }

    #[test]
    fn an_infinite_answer_is_refused() {
        let e = refused(|a| a[0] = f32::INFINITY);
        assert!(e.contains("got inf"), "{e}");
        let e = refused(|a| a[32] = f32::NEG_INFINITY);
        assert!(e.contains("got -inf"), "{e}");
    }

    #[test]
    fn a_short_or_long_answer_is_refused() {
        let e = refused(|a| {
            a.pop();
        });
        assert!(e.contains("32 values where 33 were expected"), "{e}");
        assert!(refused(|a| a.push(0.0)).contains("34 values where 33"));
        assert!(refused(Vec::clear).contains("0 values where 33"));
    }

    #[test]
    fn a_wrong_answer_names_the_worst_value() {
        let e = refused(|a| {
            // Ten times its bound at 9; hundreds of times at 7.
            a[9] += 0.01 * a[9].abs().max(1.0);
            a[7] += 1000.0;
        });
        assert!(e.contains("2 of 33") && e.contains("index 7"), "{e}");
    }
}
