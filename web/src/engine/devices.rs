//! The engine's devices and models: WebGPU and Flex, a model on each, one forward pass read
//! back, a class's relevance, and the timing of both backends (with WebGPU's kernels per pass
//! and what autotune did).
//!
//! The model, its weights format and its preprocessing are the `vit` crate's; this module only
//! decides where they run and reads results back the browser's way (`into_data_async`, since a
//! synchronous read panics on WebGPU in wasm and traps the whole module).

use std::cell::RefCell;

use burn::module::Module;
use burn::prelude::*;
use vit::VisionTransformer;
use vit::explain::{Relevance, gradient_weighted_attention};
use vit::inference::{softmax, split_attention_for, stack_attention};
use vit::preprocess::batch_tensor;
use vit::rollout::AttentionMaps;
use vit::weights::{Manifest, load_model};

use crate::platform::dom::{now, yield_now};
use crate::protocol::{Backend, Timings};

/// The devices this browser offers: Flex always, WebGPU when an adapter is available.
pub struct Devices {
    pub cpu: Device,
    pub gpu: Option<Device>,
    /// Why WebGPU is missing, for the backend select's tooltip.
    pub gpu_problem: Option<String>,
    /// WebGPU refused a shader: it is not used again, and this says why in one line.
    gpu_fault: RefCell<Option<String>>,
}

impl Devices {
    /// Initialises WebGPU asynchronously (the browser hands out adapters through promises);
    /// a browser without WebGPU, or without an adapter, leaves the CPU.
    pub async fn init() -> Self {
        let cpu = Device::flex();
        match webgpu().await {
            Ok(gpu) => Self {
                cpu,
                gpu: Some(gpu),
                gpu_problem: None,
                gpu_fault: RefCell::new(None),
            },
            Err(problem) => Self {
                cpu,
                gpu: None,
                gpu_problem: Some(problem),
                gpu_fault: RefCell::new(None),
            },
        }
    }

    pub fn device(&self, backend: Backend) -> Option<&Device> {
        match backend {
            Backend::Cpu => Some(&self.cpu),
            Backend::WebGpu => self.gpu.as_ref(),
        }
    }

    /// The refusal that put WebGPU out of use, if one did.
    pub fn gpu_fault(&self) -> Option<String> {
        self.gpu_fault.borrow().clone()
    }

    /// Fails WebGPU's work when its device refused a shader since the last check: results read
    /// back after a refusal may be garbage, so WebGPU is not used again.
    fn check_gpu(&self, backend: Backend) -> Result<(), String> {
        if backend != Backend::WebGpu {
            return Ok(());
        }
        #[cfg(feature = "webgpu")]
        if let Some(fault) = crate::engine::webgpu::take_fault() {
            self.gpu_fault
                .borrow_mut()
                .get_or_insert_with(|| format!("WebGPU refused a shader ({fault})"));
        }
        match self.gpu_fault() {
            Some(fault) => Err(fault),
            None => Ok(()),
        }
    }
}

/// WebGPU's device, or why there is none.
#[cfg(feature = "webgpu")]
async fn webgpu() -> Result<Device, String> {
    if !crate::platform::scope::scope().has_webgpu() {
        return Err("this browser has no WebGPU".into());
    }
    crate::engine::webgpu::start()
        .await
        .map(|(device, _)| device)
}

/// A build without WebGPU (the threaded one) has the CPU alone: `engine::gpu` then lends it
/// the default build's WebGPU.
#[cfg(not(feature = "webgpu"))]
async fn webgpu() -> Result<Device, String> {
    Err("this build has no WebGPU".into())
}

/// A model ready on every available device.
pub struct Model {
    pub manifest: Manifest,
    cpu: VisionTransformer,
    gpu: Option<VisionTransformer>,
}

impl Model {
    /// Checks the weights against the manifest (size, SHA-256, every tensor's shape) and
    /// copies the model to WebGPU when there is one.
    pub fn new(manifest: Manifest, weights: &[u8], devices: &Devices) -> Result<Self, String> {
        if manifest.weights.bytes != 0 && manifest.weights.bytes != weights.len() as u64 {
            return Err(format!(
                "the weights file {} has {} bytes but the manifest {} says {}: they do not belong together",
                manifest.weights.file,
                weights.len(),
                manifest.name,
                manifest.weights.bytes
            ));
        }
        // Loading on Flex first means one checksum and one parse; the WebGPU copy is the
        // same numbers moved over.
        let cpu = load_model(&manifest, weights, &devices.cpu).map_err(|e| e.to_string())?;
        Ok(Self::from_model(manifest, cpu, devices))
    }

    /// A model from burnpack bytes that another engine checked already: no checksum.
    pub fn checked(manifest: Manifest, weights: &[u8], devices: &Devices) -> Result<Self, String> {
        let mut cpu = manifest
            .config
            .init(&devices.cpu)
            .map_err(|e| e.to_string())?;
        vit::weights::apply_burnpack(&mut cpu, weights).map_err(|e| e.to_string())?;
        Ok(Self::from_model(manifest, cpu, devices))
    }

    /// A model read elsewhere (a hub checkpoint) on Flex, copied to WebGPU when there is one.
    pub fn from_model(manifest: Manifest, cpu: VisionTransformer, devices: &Devices) -> Self {
        let gpu = devices.gpu.as_ref().map(|g| cpu.clone().to_device(g));
        Self { manifest, cpu, gpu }
    }

    /// The model's copy on `backend` (`None`: WebGPU is missing); `engine::teach` trains from it.
    pub fn on(&self, backend: Backend) -> Option<&VisionTransformer> {
        match backend {
            Backend::Cpu => Some(&self.cpu),
            Backend::WebGpu => self.gpu.as_ref(),
        }
    }

    pub fn image_size(&self) -> usize {
        self.manifest.config.image_size
    }
}

/// One forward pass, read back.
pub struct Output {
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    pub attention: AttentionMaps,
    /// From the input upload to the last byte read back, in milliseconds.
    pub ms: f64,
    pub backend: Backend,
}

/// The classes' probabilities from a pass's logits; none for a model without classes (a
/// feature model such as DINOv2 answers its features, which are no classes).
pub fn probabilities(logits: &[f32], model: &Model) -> Vec<f32> {
    if model.manifest.config.num_classes == 0 {
        Vec::new()
    } else {
        softmax(logits)
    }
}

/// Runs the model on one normalised `[3, S, S]` image with attention kept, and reads logits
/// and the stacked attention back asynchronously (one transfer each).
pub async fn infer(
    model: &Model,
    devices: &Devices,
    backend: Backend,
    chw: &[f32],
) -> Result<Output, String> {
    let (Some(vit), Some(device)) = (model.on(backend), devices.device(backend)) else {
        return Err(format!(
            "{} is not available in this browser",
            backend.label()
        ));
    };
    devices.check_gpu(backend)?;
    let size = model.image_size();
    let start = now();
    let input = batch_tensor(&[chw], size, device);
    let (logits, layers) = vit.forward_with_attention(input);
    let stacked = stack_attention(layers);
    let dims = stacked.dims();
    let logits = read(logits, backend).await?;
    let flat = read(stacked, backend).await?;
    let ms = now() - start;
    devices.check_gpu(backend)?;
    let attention = split_attention_for(&flat, dims, vit.prefix)
        .into_iter()
        .next()
        .ok_or("the model returned no attention")?;
    Ok(Output {
        probs: probabilities(&logits, model),
        logits,
        attention,
        ms,
        backend,
    })
}

/// Chefer et al.'s relevance for `class` on one normalised `[3, S, S]` image: one forward and
/// one backward pass through burn's autodiff on `backend`, read back asynchronously.
pub async fn relevance(
    model: &Model,
    devices: &Devices,
    backend: Backend,
    chw: &[f32],
    class: usize,
) -> Result<Relevance, String> {
    let (Some(vit), Some(device)) = (model.on(backend), devices.device(backend)) else {
        return Err(format!(
            "{} is not available in this browser",
            backend.label()
        ));
    };
    devices.check_gpu(backend)?;
    let input = batch_tensor(&[chw], model.image_size(), device);
    let cams = gradient_weighted_attention(vit, input, class).map_err(|e| e.to_string())?;
    let [layers, tokens, _] = cams.dims();
    let cams = read(cams, backend).await?;
    devices.check_gpu(backend)?;
    Ok(Relevance {
        layers,
        tokens,
        cams,
    })
}

async fn read<const D: usize>(t: Tensor<D>, backend: Backend) -> Result<Vec<f32>, String> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| format!("{} failed while reading results: {e:?}", backend.label()))?;
    data.try_to_vec::<f32>()
        .map_err(|e| format!("unexpected result type: {e:?}"))
}

/// Warm-up and timed run of each backend on a blank image (`only`: of one); `None` where one
/// is unavailable or failed.
pub async fn measure(model: &Model, devices: &Devices, only: Option<Backend>) -> Timings {
    let size = model.image_size();
    let blank = vec![0.0f32; 3 * size * size];
    let mut timings = Timings::default();
    for backend in [Backend::Cpu, Backend::WebGpu] {
        if devices.device(backend).is_none() || only.is_some_and(|o| o != backend) {
            continue;
        }
        // The first run compiles kernels (seconds on a software GPU); the second is the one
        // a person waits for on every later image.
        // The second run's kernels are those of every later pass: autotune's choices made.
        let mut runs = [None, None];
        let mut kernels = None;
        for (i, run) in runs.iter_mut().enumerate() {
            yield_now().await;
            let counting = (i == 1).then(crate::engine::launches::Counting::start);
            *run = infer(model, devices, backend, &blank)
                .await
                .ok()
                .map(|o| o.ms);
            kernels = counting.and_then(|c| c.finish());
            if run.is_none() {
                break;
            }
        }
        match backend {
            Backend::Cpu => (timings.cpu_first, timings.cpu) = (runs[0], runs[1]),
            Backend::WebGpu => {
                (timings.gpu_first, timings.gpu) = (runs[0], runs[1]);
                timings.gpu_kernels = kernels;
                timings.gpu_tuning = tuning();
            }
        }
    }
    timings
}

#[cfg(feature = "webgpu")]
fn tuning() -> Option<crate::protocol::Tuning> {
    crate::engine::tuning::tuning()
}

#[cfg(not(feature = "webgpu"))]
fn tuning() -> Option<crate::protocol::Tuning> {
    None
}
