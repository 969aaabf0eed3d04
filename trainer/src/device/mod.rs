//! `--device`: which backend runs the model, and for `auto`, which one is best here.
//!
//! One file a job: this one names the devices and settles `auto`; `cuda.rs` asks whether a
//! CUDA driver answers, `adapters.rs` starts and ranks wgpu's adapters, `vulkan_loader.rs`
//! keeps the Vulkan loader quiet without a display, `self_check.rs` refuses a GPU that
//! computes wrongly.

mod adapters;
mod cuda;
mod self_check;
mod vulkan_loader;

pub use self_check::check;

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
                if let Err(why) = cuda::answers() {
                    bail!("--device cuda: {why}");
                }
                vit::gpu_settings::configure(false);
                GPU_STARTED.store(true, std::sync::atomic::Ordering::SeqCst);
                return Ok((arg, Device::cuda(0), "cuda:0".into()));
            }
            #[allow(unreachable_code)]
            {
                bail!("this trainer was built without CUDA: rebuild with `--features cuda`")
            }
        }
        DeviceArg::Vulkan | DeviceArg::Wgpu => {
            adapters::device(arg, 0).map(|(device, name)| (arg, device, name))
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
            .map(|i| adapters::device(arg, i).map(|(d, _)| d))
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
        match cuda::answers() {
            Ok(()) => return (DeviceArg::Cuda, "CUDA answered".into()),
            Err(e) => why.push(format!("no CUDA ({e})")),
        }
    } else {
        why.push("built without CUDA".into());
    }
    match adapters::best_adapter() {
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
