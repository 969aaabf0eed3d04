//! Teaching new classes in the engine: the burn half of the Teach panel.
//!
//! `vit::teach` does the work (features once per view, then AdamW steps on them); this module
//! runs it on the device the page uses for inference, reports its progress
//! (`protocol::TeachEvent`) and gets figures and weights back the browser's way. Nothing here reads a tensor synchronously: on WebGPU in wasm that panics and
//! traps the module, so figures come through `Transaction::execute_async`, and the taught
//! model is copied to the CPU through one asynchronous read of all its parameters before
//! `vit::weights::model_to_bytes` (which reads synchronously) sees it.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Transaction;
use vit::VisionTransformer;
use vit::teach::{Extractor, Mode, TeachConfig, Teacher};
use vit::weights::model_to_bytes;

use crate::engine::devices::{Devices, Model};
use crate::protocol::Backend;

/// One photo for the extractor: its class, a stable id (which picks its crops) and its RGB
/// square at the model's size.
pub type Photo<'a> = (usize, u64, &'a [u8]);

/// Bytes of features `views` views of photos take in `mode` on `model` (see
/// `vit::teach::MAX_FEATURE_BYTES`).
pub fn feature_bytes(model: &Model, mode: Mode, views: usize) -> usize {
    model
        .on(Backend::Cpu)
        .map_or(0, |m| vit::teach::feature_bytes(m, mode, views))
}

/// The frozen part's features of the training and held-out photos, computed a batch at a time.
pub struct Extraction {
    base: VisionTransformer,
    device: Device,
    backend: Backend,
    train: Extractor,
    held: Extractor,
}

impl Extraction {
    /// Starts with `model`'s copy on `backend`: training photos get `config.views` views,
    /// held-out photos one.
    pub fn new(
        model: &Model,
        devices: &Devices,
        backend: Backend,
        config: &TeachConfig,
    ) -> Result<Self, String> {
        let (Some(base), Some(device)) = (model.on(backend), devices.device(backend)) else {
            return Err(format!(
                "{} is not available in this browser",
                backend.label()
            ));
        };
        let side = model.image_size();
        let norm = model.manifest.normalization;
        Ok(Self {
            base: base.clone(),
            device: device.clone(),
            backend,
            train: Extractor::new(config, side, config.views, norm),
            held: Extractor::new(config, side, 1, norm),
        })
    }

    /// Adds a batch of training photos (`held`: held-out photos). On the CPU this computes
    /// their features before it returns; on WebGPU it queues the work ([`Self::settle`]).
    pub fn add(&mut self, photos: &[Photo<'_>], held: bool) {
        let extractor = if held {
            &mut self.held
        } else {
            &mut self.train
        };
        extractor.add(&self.base, photos, &self.device);
    }

    /// Waits, without blocking the page, until the device has run what was queued: progress
    /// and timings then say what was computed, not what was queued.
    pub async fn settle(&self) -> Result<(), String> {
        settle(&self.device, self.backend).await
    }

    /// The teacher for `classes` classes, on the features' device.
    pub fn teach(self, classes: usize, config: TeachConfig) -> Result<Training, String> {
        let train = self
            .train
            .finish()
            .ok_or("there is no photo to learn from")?;
        let held = self.held.finish();
        let batch = config.batch_size.min(train.photos()).max(1);
        let teacher =
            Teacher::new(&self.base, classes, config, train, held).map_err(|e| e.to_string())?;
        Ok(Training {
            teacher,
            backend: self.backend,
            last: None,
            batch,
        })
    }
}

/// A tiny read on `device`: it resolves once the work queued before it has run.
async fn settle(device: &Device, backend: Backend) -> Result<(), String> {
    Tensor::<1>::zeros([1], device)
        .into_data_async()
        .await
        .map(|_| ())
        .map_err(|e| format!("{} failed while computing: {e:?}", backend.label()))
}

/// The figures of the last step, read back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub step: usize,
    /// The last step's batch loss and the share of its batch the model got right.
    pub loss: f32,
    pub train_acc: f32,
    /// The held-out photos' loss and accuracy now, when some are held out.
    pub held: Option<(f32, f32)>,
}

/// The training under way.
pub struct Training {
    teacher: Teacher,
    backend: Backend,
    /// The last step's `[loss, correct]`, still on the device.
    last: Option<Tensor<1>>,
    /// Photos in each step's batch.
    batch: usize,
}

impl Training {
    /// One AdamW step (queued on WebGPU; its figures are read by [`Self::figures`]).
    pub fn step(&mut self) {
        self.last = Some(self.teacher.step());
    }

    pub fn steps_done(&self) -> usize {
        self.teacher.steps_done()
    }

    pub fn held_photos(&self) -> usize {
        self.teacher.held_photos()
    }

    /// The last step's figures and the held-out evaluation, in one asynchronous read (which
    /// also waits for the steps queued before it).
    pub async fn figures(&self) -> Result<Figures, String> {
        let last = self
            .last
            .clone()
            .ok_or("no step has run yet, so there are no figures")?;
        let mut read = Transaction::default().register(last);
        let held = self.teacher.evaluate();
        let has_held = held.is_some();
        if let Some(h) = held {
            read = read.register(h);
        }
        let data = read
            .execute_async()
            .await
            .map_err(|e| format!("{} failed while training: {e:?}", self.backend.label()))?;
        let pair = |i: usize| -> Result<(f32, f32), String> {
            let v = data
                .get(i)
                .ok_or("a figure is missing")?
                .try_to_vec_as::<f32>()
                .map_err(|e| format!("unexpected figures: {e:?}"))?;
            match v.as_slice() {
                [a, b, ..] => Ok((*a, *b)),
                _ => Err("a figure is missing".into()),
            }
        };
        let (loss, hits) = pair(0)?;
        let held = if has_held { Some(pair(1)?) } else { None };
        Ok(Figures {
            step: self.steps_done(),
            loss,
            train_acc: hits / self.batch as f32,
            held,
        })
    }

    /// The taught model's weights as burnpack bytes (always from the CPU copy).
    pub async fn finish(self, base: &Model) -> Result<Vec<u8>, String> {
        let classes = self.teacher.classes();
        let backend = self.backend;
        let model = self.teacher.finish();
        let model = match backend {
            Backend::Cpu => model,
            Backend::WebGpu => {
                let template = base
                    .on(Backend::Cpu)
                    .ok_or("the CPU copy of the model is missing")?
                    .clone()
                    .with_new_head(classes);
                to_cpu(&model, template).await?
            }
        };
        model_to_bytes(&model).map_err(|e| format!("the taught model could not be saved: {e}"))
    }
}

/// `model`'s parameters, read in one asynchronous transfer, put into `template` (a CPU model
/// of the same structure): `Module::to_device` from WebGPU to the CPU reads synchronously.
async fn to_cpu(
    model: &VisionTransformer,
    template: VisionTransformer,
) -> Result<VisionTransformer, String> {
    #[derive(Default)]
    struct Collect {
        read: Option<Transaction>,
        shapes: Vec<Vec<usize>>,
    }
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            self.shapes.push(value.dims().to_vec());
            let read = self.read.take().unwrap_or_default();
            self.read = Some(read.register(value));
        }
    }
    struct Fill {
        data: std::vec::IntoIter<TensorData>,
        device: Device,
        problem: Option<String>,
    }
    impl ModuleMapper for Fill {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(data) = self.data.next() else {
                self.problem = Some("the taught model has fewer parameters than expected".into());
                return param;
            };
            let dims = param.val().dims();
            if data.shape().as_slice() != dims.as_slice() {
                self.problem = Some(format!(
                    "a taught parameter has shape {:?} where {dims:?} was expected",
                    data.shape().as_slice()
                ));
                return param;
            }
            let device = self.device.clone();
            param.map(|_| Tensor::<D>::from_data(data, &device))
        }
    }

    let mut collect = Collect::default();
    model.visit(&mut collect);
    let read = collect.read.ok_or("the taught model has no parameters")?;
    let data = read
        .execute_async()
        .await
        .map_err(|e| format!("WebGPU failed while reading the taught model: {e:?}"))?;
    if data.len() != collect.shapes.len() {
        return Err("the taught model could not be read back whole".into());
    }
    let mut fill = Fill {
        data: data.into_iter(),
        device: Device::flex(),
        problem: None,
    };
    let model = template.map(&mut fill);
    if fill.data.next().is_some() {
        fill.problem = Some("the taught model has more parameters than expected".into());
    }
    match fill.problem {
        Some(p) => Err(p),
        None => Ok(model),
    }
}

/// Photos per extraction batch: on the CPU (where a batch blocks the page while it computes)
/// as many as fit in about `budget_ms` at the measured `ms_per_photo`, 1 to 16; on WebGPU
/// (where the work is only queued) 16.
pub fn batch_photos(backend: Backend, ms_per_photo: Option<f64>, budget_ms: f64) -> usize {
    match (backend, ms_per_photo) {
        (Backend::WebGpu, _) => 16,
        (Backend::Cpu, None) => 2,
        (Backend::Cpu, Some(ms)) if ms > 0.0 && ms.is_finite() => {
            ((budget_ms / ms).floor() as usize).clamp(1, 16)
        }
        (Backend::Cpu, Some(_)) => 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit::config::VitConfig;

    fn tiny() -> VisionTransformer {
        VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(8)
            .with_num_heads(2)
            .with_depth(2)
            .with_num_classes(3)
            .init(&Device::flex())
            .unwrap()
    }

    /// Every parameter's values, in visiting order (a synchronous read: fine on Flex).
    fn values(model: &VisionTransformer) -> Vec<TensorData> {
        struct Read(Vec<TensorData>);
        impl ModuleVisitor for Read {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.push(param.val().into_data());
            }
        }
        let mut read = Read(Vec::new());
        model.visit(&mut read);
        read.0
    }

    /// The WebGPU path's copy, run on the CPU: every parameter arrives, in its place.
    #[test]
    fn a_model_copies_into_a_template_through_one_read() {
        let model = tiny().with_new_head(2);
        let template = tiny().with_new_head(2);
        assert_ne!(values(&model), values(&template), "two random models");
        let copy = burn_std_block_on(to_cpu(&model, template)).unwrap();
        assert_eq!(values(&copy), values(&model));
        // The saved pair loads as the same model (burnpack keys by path, not by parameter id).
        let config = VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(8)
            .with_num_heads(2)
            .with_depth(2)
            .with_num_classes(2);
        let mut loaded = config.init(&Device::flex()).unwrap();
        vit::weights::apply_burnpack(&mut loaded, &model_to_bytes(&copy).unwrap()).unwrap();
        assert_eq!(values(&loaded), values(&model));
        // A template of another shape is refused, not filled.
        let wrong = tiny().with_new_head(5);
        let e = burn_std_block_on(to_cpu(&model, wrong)).unwrap_err();
        assert!(e.contains("shape"), "{e}");
    }

    fn burn_std_block_on<F: std::future::Future>(f: F) -> F::Output {
        // The futures here are ready at once on Flex: poll once with a no-op waker.
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a Flex read was not ready at once"),
        }
    }

    #[test]
    fn cpu_batches_fit_the_time_budget() {
        assert_eq!(batch_photos(Backend::WebGpu, None, 120.0), 16);
        assert_eq!(batch_photos(Backend::Cpu, None, 120.0), 2);
        assert_eq!(batch_photos(Backend::Cpu, Some(30.0), 120.0), 4);
        assert_eq!(batch_photos(Backend::Cpu, Some(500.0), 120.0), 1);
        assert_eq!(batch_photos(Backend::Cpu, Some(0.5), 120.0), 16);
        assert_eq!(batch_photos(Backend::Cpu, Some(0.0), 120.0), 16);
    }
}
