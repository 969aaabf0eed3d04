//! The kernels a piece of WebGPU work launches, counted by cubecl's launch observer as the
//! trainer's `bench` counts them (trainer/src/kernel_launches.rs). A build without WebGPU (the
//! threaded one) counts nothing: its WebGPU work runs in the default build's worker.

#[cfg(not(feature = "webgpu"))]
pub struct Counting;

#[cfg(not(feature = "webgpu"))]
impl Counting {
    pub fn start() -> Self {
        Self
    }

    pub fn finish(self) -> Option<u32> {
        None
    }
}

#[cfg(feature = "webgpu")]
pub use observed::Counting;

#[cfg(feature = "webgpu")]
mod observed {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use burn::cubecl::logging::{LaunchObservation, LaunchObserver};

    #[derive(Default)]
    struct Counter(AtomicU32);

    impl LaunchObserver for Counter {
        fn launched(&self, _kernel: &'static str) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts every kernel launched from `start` until `finish`.
    pub struct Counting {
        counter: Arc<Counter>,
        _observation: LaunchObservation,
    }

    impl Counting {
        pub fn start() -> Self {
            let counter = Arc::new(Counter::default());
            let _observation = LaunchObservation::new(counter.clone());
            Self {
                counter,
                _observation,
            }
        }

        /// The kernels launched; `None` when there were none (the work ran on the CPU).
        pub fn finish(self) -> Option<u32> {
            Some(self.counter.0.load(Ordering::Relaxed)).filter(|n| *n > 0)
        }
    }
}
