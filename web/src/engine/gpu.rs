//! WebGPU for the threaded engine, lent by the default build in a worker of its own.
//!
//! With shared memory (wasm threads) wgpu's WebGPU objects cannot be `Send`, which cubecl
//! needs, so the threaded build has no WebGPU of its own. Where the browser offers WebGPU to
//! workers, the threaded engine starts the page's default build in a nested worker, its WebGPU
//! lane, and hands it the work that runs on WebGPU: forward passes, relevances, the backends'
//! timing and teaching, each with the model it needs (its weights sent once per model and
//! lane) and the photo's normalised input. The photo, the answers' maps and everything else
//! stay in the threaded engine, which answers the page as if WebGPU were its own.

use std::cell::RefCell;
use std::rc::Rc;

use vit::explain::Relevance;
use vit::rollout::AttentionMaps;
use vit::weights::model_to_bytes;

use crate::engine::devices::{Model, Output};
use crate::protocol::{Backend, Event, ModelId, Ready, Reply, Request, Taught, TeachPlan, Timings};
use crate::worker::client::{Boot, Engine};
use crate::worker::envelope::{Attachments, Received};

/// The lane's name in messages.
const NAME: &str = "WebGPU's worker";

pub struct GpuLane {
    engine: Rc<Engine>,
    /// The models the lane holds: the threaded engine's id, the lane's generation when it was
    /// given, and the lane's own id.
    models: RefCell<Vec<(ModelId, u32, ModelId)>>,
}

impl GpuLane {
    /// Starts the lane's worker on `boot` (the default build).
    pub fn start(boot: Boot) -> Self {
        Self {
            engine: Engine::start(NAME, boot),
            models: RefCell::new(Vec::new()),
        }
    }

    /// What the lane said when it started: whether it has WebGPU, and why not.
    pub async fn ready(&self) -> Result<Ready, String> {
        self.engine.ready().await
    }

    /// The lane's id of `model`, given to it first if it does not hold it (or a lane started
    /// since it was given).
    async fn model(&self, id: ModelId, model: &Model) -> Result<ModelId, String> {
        let generation = self.engine.generation();
        let held = self
            .models
            .borrow()
            .iter()
            .find(|(m, g, _)| *m == id && *g == generation)
            .map(|(_, _, lane)| *lane);
        if let Some(lane) = held {
            return Ok(lane);
        }
        let cpu = model.on(Backend::Cpu).ok_or("the model has no CPU copy")?;
        let bytes = model_to_bytes(cpu).map_err(|e| e.to_string())?;
        let mut out = Attachments::default();
        let request = Request::LoadChecked {
            manifest: Box::new(model.manifest.clone()),
            weights: out.bytes(&bytes),
        };
        let lane = match self.engine.call(request, out).await? {
            (Reply::Loaded(loaded), _) => loaded.model,
            (other, _) => return Err(format!("{NAME} answered {other:?} to a model")),
        };
        self.adopt(id, lane);
        Ok(lane)
    }

    /// Records that the lane holds `model` under `lane` (a model it taught).
    fn adopt(&self, model: ModelId, lane: ModelId) {
        let generation = self.engine.generation();
        let mut models = self.models.borrow_mut();
        models.retain(|(m, _, _)| *m != model);
        models.push((model, generation, lane));
    }

    /// Forgets `model`.
    pub async fn unload(&self, model: ModelId) {
        let lane = {
            let mut models = self.models.borrow_mut();
            let lane = models
                .iter()
                .find(|(m, _, _)| *m == model)
                .map(|(_, _, l)| *l);
            models.retain(|(m, _, _)| *m != model);
            lane
        };
        if let Some(lane) = lane {
            let _ = self
                .engine
                .call(Request::Unload { model: lane }, Attachments::default())
                .await;
        }
    }

    /// One forward pass of `model` on WebGPU, attention kept.
    pub async fn forward(&self, id: ModelId, model: &Model, chw: &[f32]) -> Result<Output, String> {
        let lane = self.model(id, model).await?;
        let mut out = Attachments::default();
        let request = Request::Forward {
            model: lane,
            input: out.floats(chw),
        };
        let (reply, received) = self.engine.call(request, out).await?;
        let Reply::Forward {
            logits,
            dims,
            attention,
            ms,
        } = reply
        else {
            return Err(format!("{NAME} answered {reply:?} to a pass"));
        };
        let [_, layers, heads, tokens, _] = dims;
        let data = received.floats(attention)?;
        if data.len() != layers * heads * tokens * tokens {
            return Err(format!("{NAME} sent attention maps of the wrong size"));
        }
        Ok(Output {
            probs: crate::engine::devices::probabilities(&logits, model),
            logits,
            attention: AttentionMaps {
                layers,
                heads,
                tokens,
                prefix: model.manifest.config.prefix_tokens(),
                data,
            },
            ms,
            backend: Backend::WebGpu,
        })
    }

    /// Chefer et al.'s relevance of `class` on WebGPU.
    pub async fn relevance(
        &self,
        id: ModelId,
        model: &Model,
        chw: &[f32],
        class: usize,
    ) -> Result<Relevance, String> {
        let lane = self.model(id, model).await?;
        let mut out = Attachments::default();
        let request = Request::Relevance {
            model: lane,
            input: out.floats(chw),
            class,
        };
        let (reply, received) = self.engine.call(request, out).await?;
        let Reply::Relevance {
            layers,
            tokens,
            cams,
        } = reply
        else {
            return Err(format!("{NAME} answered {reply:?} to a relevance"));
        };
        Ok(Relevance {
            layers,
            tokens,
            cams: received.floats(cams)?,
        })
    }

    /// WebGPU's timing on `model` (the first run and a warm one).
    pub async fn time(&self, id: ModelId, model: &Model) -> Result<Timings, String> {
        let lane = self.model(id, model).await?;
        let request = Request::Time {
            model: lane,
            only: Some(Backend::WebGpu),
        };
        match self.engine.call(request, Attachments::default()).await? {
            (Reply::Timings(t), _) => Ok(t),
            (other, _) => Err(format!("{NAME} answered {other:?} to a timing")),
        }
    }

    /// Teaching on WebGPU: the plan (its model the threaded engine's `id`) and its squares go to
    /// the lane, whose events `say` relays. The taught pair comes back as the lane sent it,
    /// with the lane's model recorded for `taught_id` once the caller has its own id for it.
    pub async fn teach(
        &self,
        id: ModelId,
        model: &Model,
        mut plan: TeachPlan,
        squares: Vec<Vec<u8>>,
        say: Rc<dyn Fn(Event)>,
    ) -> Result<(Reply, Received), String> {
        plan.model = self.model(id, model).await?;
        let mut out = Attachments::default();
        for (photo, rgb) in plan.photos.iter_mut().zip(&squares) {
            photo.rgb = out.bytes(rgb);
        }
        self.engine
            .call_with(Request::Teach(Box::new(plan)), out, Some(say))
            .await
    }

    /// The model the lane taught, kept by the threaded engine as `model`.
    pub fn taught(&self, model: ModelId, taught: &Taught) {
        self.adopt(model, taught.loaded.model);
    }

    /// The test hook that hands the lane's device a shader it refuses.
    pub async fn refuse_shader(&self) -> Result<Reply, String> {
        let request = Request::Fault(crate::protocol::Fault::Shader);
        self.engine
            .call(request, Attachments::default())
            .await
            .map(|(reply, _)| reply)
    }

    /// Stop, for a teaching run on the lane.
    pub async fn stop_teaching(&self) {
        let _ = self
            .engine
            .call(Request::StopTeaching, Attachments::default())
            .await;
    }
}
