//! WebGPU's device for the engine: the adapter's facts, cubecl's settings for it, autotune's
//! memory of this adapter (`tuning`), and a device whose refused shaders are faults to report,
//! not panics.
//!
//! cubecl installs a handler for the device's uncaptured errors that panics, which in wasm
//! stops the whole module. Its WGSL compiler refuses the kernels the device cannot compile
//! before the device sees them (patches/cubecl-wgpu), so none should arrive; should one
//! arrive anyway (a driver's own refusal), the handler here keeps it as a fault that the next
//! WebGPU answer reports, and the engine answers on the CPU from then on (`devices`).

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use burn::prelude::Device;
use burn::tensor::wgpu::{WgpuBackend, wgpu};
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::engine::tuning;
use crate::platform::dom::js_message;

/// What the engine knows of its WebGPU adapter.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Vendor, architecture, device and description, as the browser reports them: autotune's
    /// choices are kept under this key.
    pub key: String,
    /// A software adapter (SwiftShader, llvmpipe), where autotune times fewer candidates.
    pub software: bool,
}

/// Refusals the device reported outside any error scope, oldest first.
static FAULTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    /// The device, for [`inject_refused_shader`].
    static DEVICE: RefCell<Option<wgpu::Device>> = const { RefCell::new(None) };
}

/// Starts WebGPU: reads the adapter, settles cubecl's settings for it, starts the device, puts
/// the handler for refused shaders in place of cubecl's panicking one, and gives autotune the
/// choices remembered for this adapter.
pub async fn start() -> Result<(Device, Adapter), String> {
    let adapter = adapter().await?;
    // Before the device starts: cubecl reads its settings once.
    vit::gpu_settings::configure(adapter.software);
    let (device, setup) = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_with_setup_async()
        .await
        .map_err(|e| format!("no WebGPU adapter ({e})"))?;
    setup
        .device
        .on_uncaptured_error(Arc::new(|error: wgpu::Error| {
            let line = error.to_string();
            web_sys::console::warn_1(&format!("WebGPU refused work: {line}").into());
            FAULTS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }));
    DEVICE.with(|d| *d.borrow_mut() = Some(setup.device.clone()));
    tuning::start(&adapter.key).await;
    Ok((device, adapter))
}

/// The oldest refusal not yet reported, in one line; the others are dropped with it (one line
/// in the status is enough).
pub fn take_fault() -> Option<String> {
    let mut faults = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
    let first = faults.first().map(|f| {
        let line = f.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        line.trim().chars().take(160).collect::<String>()
    });
    faults.clear();
    first
}

/// A test hook (`window.vitrine.engineFault("shader")`): hands the device a shader that uses
/// `enable subgroups;` on a device created without `subgroups` (wgpu's WebGPU backend never asks
/// for it), as an unguarded autotune candidate would. The device refuses it asynchronously.
pub fn inject_refused_shader() -> Result<(), String> {
    DEVICE.with(|d| {
        let device = d.borrow();
        let device = device.as_ref().ok_or("this engine has no WebGPU device")?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("refused_on_purpose"),
            source: wgpu::ShaderSource::Wgsl(
                "enable subgroups;\n@compute @workgroup_size(32)\nfn main(@builtin(subgroup_size) s: u32) {}\n"
                    .into(),
            ),
        });
        let _pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("refused_on_purpose"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Ok(())
    })
}

/// The adapter the browser offers, read before the device starts.
async fn adapter() -> Result<Adapter, String> {
    let navigator =
        Reflect::get(&js_sys::global(), &"navigator".into()).map_err(|e| js_message(&e))?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).map_err(|e| js_message(&e))?;
    let request = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or("this browser has no WebGPU")?;
    let promise = request
        .call0(&gpu)
        .map_err(|e| js_message(&e))?
        .dyn_into::<js_sys::Promise>()
        .map_err(|_| "requestAdapter did not answer a promise")?;
    let found = JsFuture::from(promise)
        .await
        .map_err(|e| format!("no WebGPU adapter ({})", js_message(&e)))?;
    if found.is_null() || found.is_undefined() {
        return Err("no WebGPU adapter".into());
    }
    let info = Reflect::get(&found, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let field = |name: &str| {
        Reflect::get(&info, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let (vendor, architecture, device, description) = (
        field("vendor"),
        field("architecture"),
        field("device"),
        field("description"),
    );
    let fallback = [&info, &found].iter().any(|o| {
        Reflect::get(o, &"isFallbackAdapter".into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    });
    let software = fallback
        || [&architecture, &description].iter().any(|s| {
            let s = s.to_lowercase();
            s.contains("swiftshader") || s.contains("llvmpipe") || s.contains("lavapipe")
        });
    Ok(Adapter {
        key: format!("{vendor}/{architecture}/{device}/{description}"),
        software,
    })
}
