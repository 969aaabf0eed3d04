//! cubecl's settings, for the GPU backends of the trainer and the page alike, settled before
//! the first GPU device starts (cubecl reads them once per process).
//!
//! Fusion and autotune are on in every GPU build, the page's included (docs/gpu.md). Autotune
//! times the candidate kernels of each new shape once per process and keeps its choice in
//! memory: burn's `persistence`, which would keep choices on disk, brings the turso database
//! crates (turso_core alone is 389,000 lines of Rust) into every GPU build, the test command's
//! included. So cubecl writes nothing anywhere natively (the page keeps its choices per adapter
//! in the browser, web/src/engine/tuning.rs):
//! not in the current directory, not in a build folder, not in the user's cache.

use burn::cubecl::config::autotune::{AutotuneLevel, AutotuneLogLevel};
use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// Settles cubecl's settings; a call after the first GPU device started changes nothing.
///
/// On a software adapter (SwiftShader, llvmpipe), each candidate kernel costs seconds to
/// compile and to time, so autotune there tries the fewest candidates and times each once; it
/// still chooses by measurement, and a new shape tunes in seconds instead of minutes.
/// `CUBECL_AUTOTUNE_LEVEL` still has the last word on native; the rest of a `cubecl.toml` and
/// the `CUBECL_*` variables are kept.
pub fn configure(software_adapter: bool) {
    let mut config = defaults();
    if software_adapter && !level_chosen() {
        config.autotune.level = AutotuneLevel::Minimal;
        config.autotune.bench.min_samples = 1;
        config.autotune.bench.max_samples = 1;
    }
    // Autotune's lines ("Fastest result ...") are for cubecl's developers, not for our users.
    if !debug_log() {
        config.autotune.logger.level = AutotuneLogLevel::Disabled;
    }
    let _ = CubeClRuntimeConfig::try_set(config);
}

/// cubecl's own settings as it would load them: a `cubecl.toml` (or `burn.toml`) here or
/// above, then the `CUBECL_*` variables.
#[cfg(not(target_family = "wasm"))]
fn defaults() -> CubeClRuntimeConfig {
    CubeClRuntimeConfig::from_current_dir().override_from_env()
}

#[cfg(target_family = "wasm")]
fn defaults() -> CubeClRuntimeConfig {
    CubeClRuntimeConfig::default()
}

fn level_chosen() -> bool {
    cfg!(not(target_family = "wasm")) && std::env::var_os("CUBECL_AUTOTUNE_LEVEL").is_some()
}

fn debug_log() -> bool {
    cfg!(not(target_family = "wasm")) && std::env::var_os("CUBECL_DEBUG_LOG").is_some()
}

/// The largest buffer a software adapter's device is asked for. Autotune judges candidates
/// against the device's peak, which cubecl measures once per process with probes whose
/// buffers are as large as the device allows: at SwiftShader's 1 GiB the process died of an
/// out-of-memory error, at 256 MiB a first `predict` took 34 s, at 64 MiB 21 s (about 18 s of
/// that is the probes' fixed time budgets, whatever the size). The largest tensors we put on
/// such a device (ViT-Ti/16 at batch 64) are under 40 MB.
pub const SOFTWARE_MAX_BUFFER: u64 = 64 << 20;

/// Starts the first software adapter (SwiftShader, llvmpipe) among `backends`, with buffers of
/// at most [`SOFTWARE_MAX_BUFFER`] and otherwise what cubecl itself asks of an adapter (all its
/// features but mappable primary buffers, all its limits), and settles cubecl's settings for it
/// ([`configure`]).
#[cfg(all(feature = "wgpu", not(target_family = "wasm")))]
pub fn start_software_adapter(
    backends: burn::tensor::wgpu::wgpu::Backends,
) -> Result<burn::prelude::Device, String> {
    use burn::tensor::wgpu::{WgpuSetup, wgpu};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = futures_lite::future::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .find(|a| a.get_info().device_type == wgpu::DeviceType::Cpu)
        .ok_or_else(|| "no software adapter".to_string())?;
    let mut limits = adapter.limits();
    limits.max_buffer_size = limits.max_buffer_size.min(SOFTWARE_MAX_BUFFER);
    limits.max_storage_buffer_binding_size = limits
        .max_storage_buffer_binding_size
        .min(SOFTWARE_MAX_BUFFER);
    let (device, queue) = futures_lite::future::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor {
            required_features: adapter
                .features()
                .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
            required_limits: limits,
            memory_hints: wgpu::MemoryHints::MemoryUsage,
            ..Default::default()
        }),
    )
    .map_err(|e| format!("{}: {e}", adapter.get_info().name))?;
    configure(true);
    let backend = adapter.get_info().backend;
    burn::prelude::Device::wgpu_options()
        .setup(WgpuSetup {
            instance,
            adapter,
            device,
            queue,
            backend,
        })
        .init()
        .map_err(|e| e.to_string())
}
