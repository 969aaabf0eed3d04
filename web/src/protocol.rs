//! What the page and its engine say to each other: one enum each way ([`Request`] from the
//! page, [`Reply`] and [`Event`] from the engine), serialised by serde as JSON, with the large
//! buffers (photos, weights, squares, the taught pair) and files travelling beside the text as
//! [`Attached`] transferables (`worker::envelope`), moved rather than copied.
//!
//! The engine (`engine`, in a dedicated Web Worker) owns everything that touches the model:
//! devices, models, photos decoded and prepared, the last answers' attention maps, teaching.
//! The page holds handles to them ([`ModelId`], [`PictureId`], [`AnswerId`]) and what it draws.

use serde::{Deserialize, Serialize};
use vit::inference::Verdict;
use vit::preprocess::{Crop, CropBox};
use vit::rollout::HeadFusion;
use vit::teach::{TeachConfig, TeachRecord};
use vit::weights::Manifest;

/// A model the engine holds.
pub type ModelId = u32;
/// A photo the engine holds (decoded), for one model at a time.
pub type PictureId = u32;
/// One answer's attention maps, kept by the engine for the explorer and the heat maps.
pub type AnswerId = u64;

/// Where a forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    WebGpu,
    Cpu,
}

impl Backend {
    /// The name tests and `window.vitrine` use.
    pub fn id(self) -> &'static str {
        match self {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Backend::WebGpu => "WebGPU",
            Backend::Cpu => "CPU (Flex)",
        }
    }
}

/// The index of a buffer or file travelling beside a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached(pub u32);

/// An explorer question, in the words `trainer explain` takes (`vit::explain`'s `Query`
/// written out, since a question crosses as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// `attention`, `rollout` or `relevance`.
    pub method: String,
    pub layer: Option<usize>,
    /// `mean`, `max`, `min` or a head's number from 1.
    pub heads: String,
    /// A token's number, or `output`.
    pub token: String,
    pub reverse: bool,
    /// The class a relevance is of.
    pub class: Option<usize>,
}

/// From the page to the engine. Each gets one [`Reply`] (the same id); some send [`Event`]s
/// before it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// A published model: the manifest at `manifest_url`, its weights beside it.
    LoadPublished { manifest_url: String },
    /// A pair picked from disk: two `File`s.
    LoadFiles {
        manifest: Attached,
        manifest_name: String,
        weights: Attached,
        weights_name: String,
    },
    /// A pair whose manifest and weights the page already has (a taught model, loaded again
    /// after the engine restarted).
    LoadPair { manifest: String, weights: Attached },
    /// A hub model by name, fetched or found kept.
    /// A hub model by name; `image_size`: run it at that size, not its checkpoint's.
    LoadHub {
        name: String,
        endpoint: String,
        image_size: Option<usize>,
    },
    /// A model whose weights another engine checked already (the threaded engine giving its
    /// WebGPU lane a model): burnpack bytes, no checksum asked.
    LoadChecked {
        manifest: Box<Manifest>,
        weights: Attached,
    },
    /// Drops a model.
    Unload { model: ModelId },
    /// Photo bytes: decoded and kept (the last one replaces the one before).
    Picture {
        picture: PictureId,
        name: String,
        bytes: Attached,
    },
    /// The kept photo prepared for `model`, on `crop` (`None`: the centre square).
    Prepare {
        picture: PictureId,
        model: ModelId,
        crop: Option<Crop>,
        /// Whether the page needs the photo for drawing again (a new photo).
        photo: bool,
    },
    /// One forward pass on the last prepared square, attention kept; the rollout and the last
    /// layer's maps come with the answer.
    Infer {
        picture: PictureId,
        model: ModelId,
        backend: Backend,
        fusion: HeadFusion,
        discard: f32,
    },
    /// The rollout of an answer again, with other settings.
    Heat {
        answer: AnswerId,
        fusion: HeadFusion,
        discard: f32,
    },
    /// An explorer map of an answer (a relevance is computed once per answer and class).
    Explain {
        answer: AnswerId,
        question: Question,
    },
    /// Times the backends on `model` (`only`: one of them).
    Time {
        model: ModelId,
        only: Option<Backend>,
    },
    /// A photo for the Teach panel, cut to `model`'s square: a `File`, or a webcam frame.
    Square {
        model: ModelId,
        source: SquareSource,
    },
    /// Teaches new classes on `model` (events: [`Event::Teach`]).
    Teach(Box<TeachPlan>),
    /// Ends the teaching under way after its current step.
    StopTeaching,
    /// The hub models kept for offline visits, by URL and size.
    Kept,
    /// Drops every kept hub model.
    ForgetKept,
    /// A test hook (`window.vitrine.engineFault`): the engine panics, or blocks for this many
    /// milliseconds, as a crashed or a busy engine would.
    Fault(Fault),
    /// From the threaded engine to its WebGPU lane (`engine::gpu`), which holds no photo: one
    /// forward pass of `model` on WebGPU on a normalised `[3, S, S]` input (f32 bytes),
    /// attention kept.
    Forward { model: ModelId, input: Attached },
    /// As [`Request::Forward`], for Chefer et al.'s relevance of `class`.
    Relevance {
        model: ModelId,
        input: Attached,
        class: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    Panic,
    Busy(u32),
    /// Hand WebGPU's device a shader it refuses (`engine::webgpu::inject_refused_shader`).
    Shader,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SquareSource {
    File {
        file: Attached,
        name: String,
    },
    /// RGB, `side` x `side` (the webcam's centre square).
    Frame {
        rgb: Attached,
        side: u32,
    },
}

/// One photo for teaching: its class, its stable id (which picks its crops), its square.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeachPhoto {
    pub class: usize,
    pub id: u64,
    /// `side` x `side` x 3 bytes.
    pub side: u32,
    pub rgb: Attached,
    pub held: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeachPlan {
    pub model: ModelId,
    pub backend: Backend,
    pub config: TeachConfig,
    pub name: String,
    pub labels: Vec<String>,
    pub counts: Vec<usize>,
    pub held_per_class: Vec<usize>,
    /// Training photos first, then the held-out ones.
    pub photos: Vec<TeachPhoto>,
}

/// A model the engine loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loaded {
    pub model: ModelId,
    pub manifest: Manifest,
    /// Where a hub model's load spent its time (ms), for `window.vitrine.hub()`.
    pub steps: Vec<(String, f64)>,
    /// A hub model whose files were kept for offline visits.
    pub kept: bool,
}

/// A photo as the page draws it, and the square the model sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepared {
    /// The photo for drawing (RGBA, at most 1280 px a side), when asked for.
    pub photo: Option<Attached>,
    pub photo_size: (u32, u32),
    /// The original's size.
    pub original: (u32, u32),
    /// The square the model sees, in the original's pixels.
    pub crop: CropBox,
    /// The model's view (RGB, `side` x `side`).
    pub view: Attached,
    pub side: u32,
    /// One flat colour: nothing to recognise.
    pub blank: bool,
    /// Why the file looks cut off (`vit::damage::truncation`).
    pub damage: Option<String>,
}

/// A heat map over the patch grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Map {
    pub grid: usize,
    pub values: Vec<f32>,
}

/// One forward pass, read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub answer: AnswerId,
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    pub verdict: Verdict,
    pub layers: usize,
    pub heads: usize,
    pub tokens: usize,
    /// Rollout with the settings asked for, and the last layer's class-token map per head.
    pub rollout: Map,
    pub head_maps: Vec<Map>,
    /// From the input upload to the last byte read back, in milliseconds.
    pub ms: f64,
    pub backend: Backend,
    /// Why the answer is the CPU's when WebGPU was asked (WebGPU refused a shader), in one line.
    pub fell_back: Option<String>,
}

/// An explorer map: one value per token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenValues {
    pub values: Vec<f32>,
    /// The relevance's backward pass and read-back, when this question needed one.
    pub relevance_ms: Option<f64>,
    pub backend: Backend,
}

/// Warm-up and timed run of each backend; `None` where one is unavailable or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub cpu: Option<f64>,
    pub gpu: Option<f64>,
    /// The warm-up runs (kernel compilation included), reported for the curious.
    pub cpu_first: Option<f64>,
    pub gpu_first: Option<f64>,
    /// Kernels WebGPU launched in its timed pass (cubecl's launch observer).
    pub gpu_kernels: Option<u32>,
    /// Autotune on WebGPU, once timed.
    pub gpu_tuning: Option<Tuning>,
}

/// What autotune did on WebGPU in this engine, and what it remembers of the adapter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// Keys (an operation at a shape) tuned, and answered from the adapter's remembered choices.
    pub tuned: u32,
    pub recalled: u32,
    /// From the first tune to the last choice measured, in this engine.
    pub tuning_ms: Option<f64>,
    /// Choices remembered for the adapter, when the last was measured (ms since the epoch),
    /// and how long the visit that measured them tuned.
    pub remembered: u32,
    pub tuned_at: Option<f64>,
    pub remembered_ms: Option<f64>,
}

impl Timings {
    /// The faster backend; the CPU when nothing was measured.
    pub fn fastest(&self) -> Backend {
        match (self.gpu, self.cpu) {
            (Some(g), Some(c)) if g < c => Backend::WebGpu,
            (Some(_), None) => Backend::WebGpu,
            _ => Backend::Cpu,
        }
    }
}

/// The taught pair: exactly what Download saves, and the model loaded from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Taught {
    pub name: String,
    pub manifest: String,
    pub bpk: Attached,
    pub loaded: Loaded,
    pub record: TeachRecord,
    pub stopped: bool,
    pub features_ms: f64,
    pub training_ms: f64,
    pub total_ms: f64,
}

/// The engine's answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    Done,
    Loaded(Box<Loaded>),
    Prepared(Prepared),
    Answer(Box<Answer>),
    Heat(Map),
    Map(TokenValues),
    Timings(Timings),
    Square {
        rgb: Attached,
        side: u32,
    },
    /// Teaching ended: `None` when it was stopped before training began.
    Taught(Option<Box<Taught>>),
    Kept(Vec<(String, u64)>),
    /// A forward pass: its logits, and its attention maps `[1, layers, heads, tokens, tokens]`
    /// (f32 bytes).
    Forward {
        logits: Vec<f32>,
        dims: [usize; 5],
        attention: Attached,
        ms: f64,
    },
    /// A relevance's gradient-weighted maps `[layers, tokens, tokens]` (f32 bytes).
    Relevance {
        layers: usize,
        tokens: usize,
        cams: Attached,
    },
    Forgot {
        files: usize,
        bytes: u64,
        /// Adapters whose autotune choices were dropped.
        tunings: usize,
    },
    /// The request was refused before it began: one sentence for the person.
    Refused(String),
    /// The request failed: one line for the page.
    Failed(String),
}

/// What the engine says about itself when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    /// WebGPU's device started.
    pub webgpu: bool,
    /// Why WebGPU is missing.
    pub webgpu_problem: Option<String>,
    /// How long WebGPU took to start, in ms.
    pub webgpu_init_ms: f64,
    /// The threads Flex runs on (1: this build has none).
    pub threads: usize,
}

/// A teaching run's progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TeachEvent {
    /// Photos whose features are computed.
    Reading { done: usize, total: usize },
    /// The steps begin.
    Training { held_photos: usize },
    Figures {
        step: usize,
        loss: f32,
        train_acc: f32,
        held: Option<(f32, f32)>,
    },
    /// The steps are done; the pair is being put together.
    Finishing,
}

/// What the engine says while a request runs, or on its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    /// The engine is up.
    Ready(Ready),
    /// What a long request is doing now, for the status line.
    Step(String),
    /// Bytes of a download.
    Progress {
        received: u64,
        total: u64,
    },
    Teach(TeachEvent),
}

/// A message from the engine: an event of a request (`id`), or its reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromEngine {
    Event { id: u64, event: Event },
    Reply { id: u64, reply: Reply },
}

/// A message to the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToEngine {
    pub id: u64,
    pub request: Request,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faster_backend_wins_and_the_cpu_until_measured() {
        let none = Timings::default();
        assert_eq!(none.fastest(), Backend::Cpu);
        let t = Timings {
            cpu: Some(30.0),
            gpu: Some(900.0),
            ..none
        };
        assert_eq!(t.fastest(), Backend::Cpu);
        assert_eq!(
            Timings {
                gpu: Some(3.0),
                ..t
            }
            .fastest(),
            Backend::WebGpu
        );
        // WebGPU measured, the CPU failed: the one that works.
        assert_eq!(Timings { cpu: None, ..t }.fastest(), Backend::WebGpu);
    }

    #[test]
    fn messages_survive_their_text() {
        let m = ToEngine {
            id: 7,
            request: Request::Explain {
                answer: 3,
                question: Question {
                    method: "attention".into(),
                    layer: Some(2),
                    heads: "mean".into(),
                    token: "5".into(),
                    reverse: true,
                    class: None,
                },
            },
        };
        let text = serde_json::to_string(&m).unwrap();
        let back: ToEngine = serde_json::from_str(&text).unwrap();
        assert_eq!(back.id, 7);
        match back.request {
            Request::Explain { answer, question } => {
                assert_eq!(answer, 3);
                assert_eq!(question.token, "5");
                assert!(question.reverse);
            }
            other => panic!("{other:?}"),
        }
    }
}
