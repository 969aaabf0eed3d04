//! Data-parallel training steps over several devices (`--devices N`).
//!
//! This is burn-train's multi-device strategy, done inside our own loop: every replica forks the
//! model onto its device on its own thread, runs forward and backward on its shard of the batch,
//! and burn's `MultiGradientsParams` sums the replicas' gradients, each parameter on one device.
//!
//! On the CPU the replicas are workers of one thread each, all on the one Flex device. That is
//! the fastest way to train on a CPU with burn: many of Flex's element-wise kernels run on one
//! thread, so a single step left the other cores idle for about half its time, while N one-thread
//! replicas keep N cores busy (measured in bench/README.md).

use std::ops::Range;

use anyhow::{Result, anyhow, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::tensor::activation::log_softmax;
use vit::VisionTransformer;

use crate::recipe::Precision;

/// One batch, flattened: images `[B, 3, S, S]` and soft targets `[B, classes]`.
pub struct Batch<'a> {
    pub images: &'a [f32],
    pub targets: &'a [f32],
    pub len: usize,
    pub size: usize,
    pub classes: usize,
}

/// What one training step computed: the gradient of the batch's mean loss, that loss, and each
/// image's predicted class.
pub struct StepOutput {
    pub grads: GradientsParams,
    pub loss: f64,
    pub predicted: Vec<usize>,
}

/// The devices a step runs on; the first holds the optimizer and the merged gradients.
pub struct Replicas {
    devices: Vec<Device>,
    /// One single-thread pool per CPU replica, so that Flex's internal parallelism stays on the
    /// replica's own core instead of competing for one shared pool. Empty on GPUs.
    pools: Vec<rayon::ThreadPool>,
}

impl Replicas {
    /// One replica per device (from `device::resolve_many`), computing with gradients. A single
    /// replica computes on the calling thread; CPU replicas get one thread each.
    pub fn new(devices: Vec<Device>, cpu: bool) -> Result<Self> {
        let devices: Vec<Device> = devices.into_iter().map(Device::autodiff).collect();
        let n = devices.len();
        let pools = if n > 1 && cpu {
            (0..n)
                .map(|i| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .thread_name(move |_| format!("replica-{i}"))
                        .build()
                        .map_err(|e| anyhow!("starting CPU replica {i}: {e}"))
                })
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(Self { devices, pools })
    }

    /// The device that holds the model, the optimizer and the merged gradients.
    pub fn main(&self) -> &Device {
        &self.devices[0]
    }

    /// How many replicas there are.
    pub fn count(&self) -> usize {
        self.devices.len()
    }

    /// The replicas' devices without gradients, for inference.
    pub fn inference_device(&self, replica: usize) -> Device {
        self.devices[replica].clone().without_autodiff()
    }

    /// Runs `f(replica, items)` on each replica's contiguous share of `len` items, each on its
    /// own thread (and, on the CPU, its own one-thread pool); the results come in item order.
    pub fn map_shards<T: Send>(
        &self,
        len: usize,
        f: impl Fn(usize, Range<usize>) -> T + Sync,
    ) -> Vec<T> {
        let n = self.devices.len().min(len).max(1);
        if n == 1 {
            return vec![f(0, 0..len)];
        }
        let f = &f;
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let range = i * len / n..(i + 1) * len / n;
                    let pool = self.pools.get(i);
                    scope.spawn(move || match pool {
                        Some(pool) => pool.install(|| f(i, range)),
                        None => f(i, range),
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// Forward and backward of the soft-target cross-entropy, the batch split across replicas.
    pub fn step(&self, model: &VisionTransformer, batch: &Batch) -> Result<StepOutput> {
        let forked = self.devices.len() > 1;
        let outputs = self.map_shards(batch.len, |i, range| {
            let device = &self.devices[i];
            if forked {
                shard_step(&model.clone().fork(device), batch, range, device)
            } else {
                shard_step(model, batch, range, device)
            }
        });
        if outputs.len() == 1 {
            return outputs.into_iter().next().expect("one output");
        }
        let mut multi = MultiGradientsParams::default();
        let (mut loss, mut predicted) = (0.0, Vec::with_capacity(batch.len));
        for (output, device) in outputs.into_iter().zip(&self.devices) {
            let output = output?;
            loss += output.loss;
            predicted.extend(output.predicted);
            multi.grads.push((output.grads, device.clone()));
        }
        Ok(StepOutput {
            grads: merge(model, multi),
            loss,
            predicted,
        })
    }
}

/// The replicas' gradients summed per parameter (by burn's `MultiGradientsParams`) into one set
/// on the first device, where the optimizer and global-norm clipping work on them.
fn merge(model: &VisionTransformer, mut multi: MultiGradientsParams) -> GradientsParams {
    struct Merge<'a> {
        multi: &'a mut MultiGradientsParams,
        out: GradientsParams,
        device: Device,
    }
    impl ModuleVisitor for Merge<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some((grad, _)) = self.multi.remove::<D>(param.id) {
                self.out.register(param.id, grad.to_device(&self.device));
            }
        }
    }
    let device = multi.grads[0].1.clone();
    let mut visitor = Merge {
        multi: &mut multi,
        out: GradientsParams::new(),
        device,
    };
    model.visit(&mut visitor);
    visitor.out
}

/// One replica's share: its loss is weighted by its share of the batch, so that the replicas'
/// gradients add up to the gradient of the whole batch's mean loss.
fn shard_step(
    model: &VisionTransformer,
    batch: &Batch,
    range: Range<usize>,
    device: &Device,
) -> Result<StepOutput> {
    let (b, s, c) = (range.len(), batch.size, batch.classes);
    let pixels = 3 * s * s;
    let images = batch.images[range.start * pixels..range.end * pixels].to_vec();
    let targets = batch.targets[range.start * c..range.end * c].to_vec();
    let x = Tensor::<4>::from_data(TensorData::new(images, [b, 3, s, s]), device);
    let y = Tensor::<2>::from_data(TensorData::new(targets, [b, c]), device);
    let logits = model.forward(x);
    // Soft-target cross-entropy: covers label smoothing, mixup and cutmix alike.
    let loss = (log_softmax(logits.clone(), 1) * y)
        .sum_dim(1)
        .sum()
        .neg()
        .div_scalar(batch.len as f64);
    let loss_value = loss.clone().into_scalar::<f32>() as f64;
    let predicted = logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| anyhow!("reading predictions: {e:?}"))?
        .into_iter()
        .map(|p| p as usize)
        .collect();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    Ok(StepOutput {
        grads,
        loss: loss_value,
        predicted,
    })
}

/// Makes `precision` the devices' default float type. It must come before any tensor exists on
/// them: burn fixes a device's defaults at its first tensor.
pub(crate) fn set_precision(
    devices: &mut [Device],
    precision: Precision,
    name: &str,
) -> Result<()> {
    let dtype = match precision {
        Precision::F32 => return Ok(()),
        Precision::Bf16 => FloatDType::BF16,
        Precision::F16 => FloatDType::F16,
    };
    for i in 0..devices.len() {
        // CPU replicas are one device: configure it once.
        if devices[..i].contains(&devices[i]) {
            continue;
        }
        if !devices[i].supports_dtype(dtype) {
            bail!("{name} cannot compute in {precision:?}; use --precision f32");
        }
        devices[i]
            .configure(dtype)
            .map_err(|e| anyhow::anyhow!("setting {name} to {precision:?}: {e:?}"))?;
    }
    // A resumed optimizer state is loaded on the default device (Flex, see main) before it
    // moves to the parameters' device: in their type too. This comes before the GPU
    // self-check (device::check), whose tensors on Flex would fix its type at f32.
    let mut flex = Device::flex();
    if !devices.contains(&flex) && flex.supports_dtype(dtype) {
        let _ = flex.configure(dtype);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit::VitConfig;

    /// Every parameter's gradient, flattened, in the model's visiting order.
    fn flat_grads(model: &VisionTransformer, grads: &GradientsParams) -> Vec<Vec<f32>> {
        struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let g = self.0.get::<D>(param.id).unwrap_or_else(|| {
                    panic!(
                        "no gradient for a parameter of shape {:?}",
                        param.val().dims()
                    )
                });
                self.1.push(g.into_data().try_to_vec::<f32>().unwrap());
            }
        }
        let mut c = Collect(grads, Vec::new());
        model.visit(&mut c);
        c.1
    }

    #[test]
    fn two_cpu_replicas_compute_the_gradient_of_the_whole_batch() {
        let device = Device::flex();
        device.seed(3);
        let config = VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(16)
            .with_depth(2)
            .with_num_heads(2)
            .with_num_classes(3);
        // Mimetic init replaces the attention weights: they must stay trainable parameters.
        let model = config
            .init(&device.clone().autodiff())
            .unwrap()
            .mimetic_attention();
        let (len, size, classes) = (5, 8, 3);
        let images: Vec<f32> = (0..len * 3 * size * size)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let targets: Vec<f32> = (0..len * classes)
            .map(|i| {
                if i % classes == (i / classes) % classes {
                    0.9
                } else {
                    0.05
                }
            })
            .collect();
        let batch = Batch {
            images: &images,
            targets: &targets,
            len,
            size,
            classes,
        };
        let one = Replicas::new(vec![device.clone()], true).unwrap();
        let two = Replicas::new(vec![device.clone(), device], true).unwrap();
        let (a, b) = (
            one.step(&model, &batch).unwrap(),
            two.step(&model, &batch).unwrap(),
        );

        assert!((a.loss - b.loss).abs() < 1e-5, "{} vs {}", a.loss, b.loss);
        assert_eq!(a.predicted, b.predicted);
        let (ga, gb) = (flat_grads(&model, &a.grads), flat_grads(&model, &b.grads));
        assert_eq!(ga.len(), gb.len());
        for (x, y) in ga.iter().zip(&gb) {
            let scale = x.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            for (p, q) in x.iter().zip(y) {
                assert!((p - q).abs() <= 1e-4 * scale, "{p} vs {q}");
            }
        }
    }
}
