//! The GPU path against Flex, with the same weights and inputs: forward logits (both forward
//! paths), one training step's loss and gradients, the same for models with every kind of
//! prefix token and the parts timm's ViT family adds, and half precision. It runs on whatever
//! Vulkan adapter is here; on a machine without a GPU that is SwiftShader's CPU driver, which
//! Debian's Chromium installs (`scripts/install-web-tools`). With no Vulkan driver at all each
//! test says so and is counted as skipped (tests/support/skips.rs); so is the half-precision test
//! on an adapter with neither f16 nor bf16 (SwiftShader). Every comparison is
//! tests/support/close.rs's: the same length, all finite, within the tolerance.

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::Gradients;
use burn::tensor::wgpu::{WgpuBackend, wgpu};
use burn::tensor::{FloatDType, TensorData};
use vit::preprocess::{batch_tensor, prepare};
use vit::weights::load_pair;

#[path = "support/close.rs"]
mod close;
#[path = "support/skips.rs"]
mod skips;
use close::{Tolerance, assert_close};
use skips::skip;

/// SwiftShader's Vulkan driver, from Debian's `chromium-common`.
const SWIFTSHADER_ICD: &str = "/usr/lib/chromium/vk_swiftshader_icd.json";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The Vulkan device all tests share, or why there is none.
fn gpu() -> Result<&'static Device, &'static str> {
    static GPU: OnceLock<Result<Device, String>> = OnceLock::new();
    GPU.get_or_init(|| {
        if std::env::var_os("VK_ICD_FILENAMES").is_none()
            && std::path::Path::new(SWIFTSHADER_ICD).exists()
        {
            // SAFETY: set once, inside the OnceLock every test waits on, before any Vulkan
            // loader or other thread of this binary reads the environment for it.
            unsafe { std::env::set_var("VK_ICD_FILENAMES", SWIFTSHADER_ICD) };
        }
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        if !(set("WAYLAND_DISPLAY") || set("DISPLAY") || set("MESA_VK_DEVICE_SELECT")) {
            // As the trainer does (trainer/src/device.rs, quiet_vulkan_loader): with no display,
            // Mesa's device-selection layer has nothing to choose and only prints Wayland's
            // "XDG_RUNTIME_DIR is invalid" error. SAFETY: as above.
            unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
        }
        // Fusion and autotune are on, as in the trainer, which starts a software adapter (the
        // SwiftShader here) the way vit::gpu_settings does, and a real GPU the usual way.
        let swiftshader = std::env::var("VK_ICD_FILENAMES")
            .is_ok_and(|icd| icd.to_lowercase().contains("swiftshader"));
        if swiftshader {
            return vit::gpu_settings::start_software_adapter(wgpu::Backends::VULKAN)
                .map_err(|e| format!("no Vulkan adapter: {e}"));
        }
        vit::gpu_settings::configure(false);
        Device::wgpu_options()
            .graphics_api(WgpuBackend::Vulkan)
            .init()
            .map_err(|e| format!("no Vulkan adapter: {e}"))
    })
    .as_ref()
    .map_err(String::as_str)
}

macro_rules! gpu_or_skip {
    ($test:literal) => {
        match gpu() {
            Ok(d) => d.clone(),
            Err(why) => return skip($test, why),
        }
    };
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// GPU and Flex agree within this, value by value.
const SAME: Tolerance = Tolerance::abs(1e-4);

/// Two of the shipped samples, preprocessed as `predict` does, as a batch on `device`.
fn samples(image_size: usize, norm: &vit::Normalization, device: &Device) -> Tensor<4> {
    let chw: Vec<Vec<f32>> = ["cat.png", "ship.png"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(repo("www/samples").join(f)).unwrap();
            let pre = vit::preprocess::Preprocess::new(image_size as u32, *norm);
            prepare(&bytes, &pre).unwrap().chw
        })
        .collect();
    let refs: Vec<&[f32]> = chw.iter().map(Vec::as_slice).collect();
    batch_tensor(&refs, image_size, device)
}

#[test]
fn the_default_model_gives_flex_logits_on_both_forward_paths() {
    let gpu = gpu_or_skip!("the_default_model_gives_flex_logits_on_both_forward_paths");
    let manifest = repo("www/models/vitrine-cifar10.json");
    let (m, cpu_model) = load_pair(&manifest, &Device::flex()).unwrap();
    let (_, gpu_model) = load_pair(&manifest, &gpu).unwrap();
    let size = m.config.image_size;
    let x_cpu = samples(size, &m.normalization, &Device::flex());
    let x_gpu = samples(size, &m.normalization, &gpu);

    let want = values(cpu_model.forward(x_cpu.clone()));
    let got = values(gpu_model.forward(x_gpu.clone()));
    // A kernel that computes nothing useful shows as near-equal logits: rule that out first.
    let spread = want.iter().cloned().fold(f32::MIN, f32::max)
        - want.iter().cloned().fold(f32::MAX, f32::min);
    assert!(
        spread > 1.0,
        "the CPU logits are too flat to tell: {want:?}"
    );
    assert_close(
        &format!("fused path's logits (flex {want:?}, gpu {got:?})"),
        &want,
        &got,
        SAME,
    );

    let (logits_cpu, maps_cpu) = cpu_model.forward_with_attention(x_cpu);
    let (logits_gpu, maps_gpu) = gpu_model.forward_with_attention(x_gpu);
    assert_close(
        "maps path's logits",
        &values(logits_cpu),
        &values(logits_gpu),
        SAME,
    );
    assert_eq!(maps_cpu.len(), maps_gpu.len());
    for (layer, (a, b)) in maps_cpu.into_iter().zip(maps_gpu).enumerate() {
        assert_close(
            &format!("layer {layer}'s attention probabilities"),
            &values(a),
            &values(b),
            SAME,
        );
    }
}

/// Every parameter's gradient, by its path in the model.
fn gradients(model: &vit::VisionTransformer, grads: &Gradients) -> Vec<(String, Vec<f32>)> {
    struct Collect<'a> {
        grads: &'a Gradients,
        path: Vec<String>,
        out: Vec<(String, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                self.out.push((self.path.join("."), values(g)));
            }
        }
    }
    let mut c = Collect {
        grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut c);
    c.out
}

/// Loss and gradients of one cross-entropy step on a fixed random batch.
fn one_step(manifest: &std::path::Path, device: &Device) -> (f32, Vec<(String, Vec<f32>)>) {
    let device = device.clone().autodiff();
    let (m, model) = load_pair(manifest, &device).unwrap();
    let s = m.config.image_size;
    let n = 4;
    // A fixed batch, not a random one: building the model draws from the device's own RNG.
    let pixels: Vec<f32> = (0..n * 3 * s * s)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, s, s]), &device);
    let y = Tensor::<1, Int>::from_ints([3, 8, 0, 5], &device);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(model.forward(x), y);
    let value = values(loss.clone())[0];
    let grads = loss.backward();
    (value, gradients(&model, &grads))
}

#[test]
fn one_training_step_gives_flex_loss_and_gradients() {
    let gpu = gpu_or_skip!("one_training_step_gives_flex_loss_and_gradients");
    let manifest = repo("www/models/vitrine-cifar10.json");
    let (loss_cpu, grads_cpu) = one_step(&manifest, &Device::flex());
    let (loss_gpu, grads_gpu) = one_step(&manifest, &gpu);
    assert_close("loss", &[loss_cpu], &[loss_gpu], SAME);
    assert_eq!(grads_cpu.len(), grads_gpu.len());
    assert!(grads_cpu.len() > 50, "only {} gradients", grads_cpu.len());
    for ((name, a), (name_gpu, b)) in grads_cpu.iter().zip(&grads_gpu) {
        assert_eq!(name, name_gpu);
        // The difference's norm within 1e-4 of the gradient's (1e-4 x max(norm, 1e-6)): ten
        // times tighter than issue 14 asked. burn's GPU GELU gradient (the tanh
        // approximation's derivative) passed 1e-3 with one model and failed it with the next
        // (1.3e-3); with the exact one every tensor agrees within 3e-6.
        assert_close(
            &format!("{name}'s gradient"),
            a,
            b,
            Tolerance::norm(1e-4 * 1e-6, 1e-4),
        );
    }
}

/// Every part timm's ViT family adds, in two small random models made on Flex and read on the
/// GPU: a distilled model with registers, positions for the patches only, layer scale,
/// norm_pre and QuickGELU; and one without a class token, averaged after the final norm. The
/// logits of both forward paths, the attention maps, and one step's gradients agree.
#[test]
fn every_kind_of_prefix_token_gives_flex_logits_and_gradients() {
    let gpu = gpu_or_skip!("every_kind_of_prefix_token_gives_flex_logits_and_gradients");
    let base = vit::VitConfig::new()
        .with_image_size(16)
        .with_patch_size(4)
        .with_embed_dim(32)
        .with_num_heads(2)
        .with_depth(2)
        .with_num_classes(5);
    let distilled = base
        .clone()
        .with_distilled(Some(true))
        .with_reg_tokens(Some(3))
        .with_no_embed_class(Some(true))
        .with_init_values(Some(0.5))
        .with_pre_norm(Some(true))
        .with_act_layer(Some(vit::Activation::QuickGelu));
    let gap = base
        .with_class_token(Some(false))
        .with_reg_tokens(Some(1))
        .with_pooling(vit::Pooling::Mean)
        .with_fc_norm(Some(false));
    for config in [distilled, gap] {
        let flex = Device::flex();
        flex.seed(3);
        let bytes = vit::weights::model_to_bytes(&config.init(&flex).unwrap()).unwrap();
        let on = |device: &Device| {
            let mut model = config.init(device).unwrap();
            vit::weights::apply_burnpack(&mut model, &bytes).unwrap();
            model
        };
        let pixels: Vec<f32> = (0..2 * 3 * 16 * 16)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let x = |device: &Device| {
            Tensor::<4>::from_data(TensorData::new(pixels.clone(), [2, 3, 16, 16]), device)
        };
        let what = format!("{:?}", config.prefix_tokens());
        let (cpu, gpu_model) = (on(&flex), on(&gpu));
        let want = values(cpu.forward(x(&flex)));
        assert_close(
            &format!("{what}: logits"),
            &want,
            &values(gpu_model.forward(x(&gpu))),
            SAME,
        );
        let (logits_cpu, maps_cpu) = cpu.forward_with_attention(x(&flex));
        let (logits_gpu, maps_gpu) = gpu_model.forward_with_attention(x(&gpu));
        assert_close(
            &format!("{what}: maps path's logits"),
            &values(logits_cpu),
            &values(logits_gpu),
            SAME,
        );
        for (a, b) in maps_cpu.into_iter().zip(maps_gpu) {
            assert_close(&format!("{what}: attention"), &values(a), &values(b), SAME);
        }
        let step = |device: &Device| {
            let device = device.clone().autodiff();
            let model = on(&device);
            let loss = model.forward(x(&device)).square().mean();
            let grads = loss.backward();
            gradients(&model, &grads)
        };
        let (grads_cpu, grads_gpu) = (step(&flex), step(&gpu));
        assert_eq!(grads_cpu.len(), grads_gpu.len());
        for ((name, a), (_, b)) in grads_cpu.iter().zip(&grads_gpu) {
            assert_close(
                &format!("{what}: {name}'s gradient"),
                a,
                b,
                Tolerance::norm(1e-4 * 1e-6, 1e-4),
            );
        }
        for param in ["dist_token", "reg_token", "ls1", "norm_pre"] {
            let present = grads_cpu.iter().any(|(n, _)| n.contains(param));
            let expected = match param {
                "reg_token" => true,
                _ => config.prefix_tokens().distillation,
            };
            assert_eq!(present, expected, "{what}: a gradient for {param}");
        }
    }
}

#[test]
fn half_precision_runs_or_says_what_the_adapter_lacks() {
    let test = "half_precision_runs_or_says_what_the_adapter_lacks";
    let gpu = gpu_or_skip!("half_precision_runs_or_says_what_the_adapter_lacks");
    let mut ran = 0;
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        if !gpu.supports_dtype(dtype) {
            // What `trainer train --precision` then says is checked in tests/cli.rs.
            eprintln!("{dtype:?}: not supported by this adapter");
            continue;
        }
        let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &gpu).cast(dtype);
        let b = values(a.clone().matmul(a));
        assert_eq!(b, [7.0, 10.0, 15.0, 22.0], "{dtype:?}");
        ran += 1;
    }
    if ran == 0 {
        // SwiftShader has neither: nothing half-precision ran, so this is no pass.
        skip(test, "the adapter supports neither f16 nor bf16");
    }
}
