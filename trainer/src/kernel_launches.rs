//! The kernels a piece of work launches on a GPU (`trainer bench`), counted by a launch observer
//! on cubecl, the runtime under the GPU backends. Its settings are `vit::gpu_settings`'s, shared
//! with the page.

#[cfg(feature = "gpu-runtime")]
pub use cubecl::Counting;

/// What a [`Counting`] saw.
pub struct Launches {
    /// Kernel names with their counts, the most launched first.
    pub by_kernel: Vec<(String, usize)>,
}

impl Launches {
    pub fn total(&self) -> usize {
        self.by_kernel.iter().map(|(_, n)| n).sum()
    }
}

/// The kernels `f` launches on a GPU device; None when it launched none (the CPU) or in a
/// build without a GPU.
pub fn count(f: impl FnOnce()) -> Option<Launches> {
    #[cfg(feature = "gpu-runtime")]
    {
        let counting = Counting::start();
        f();
        Some(counting.finish()).filter(|l| l.total() > 0)
    }
    #[cfg(not(feature = "gpu-runtime"))]
    {
        f();
        None
    }
}

#[cfg(feature = "gpu-runtime")]
mod cubecl {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use burn::cubecl::config::{TypeNameFormatLevel, type_name_format};
    use burn::cubecl::logging::{LaunchObservation, LaunchObserver};

    use super::Launches;

    /// Kernels launched, by name, while a [`Counting`] was alive.
    #[derive(Default)]
    struct Counter(Mutex<HashMap<&'static str, usize>>);

    impl LaunchObserver for Counter {
        fn launched(&self, kernel: &'static str) {
            *self
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(kernel)
                .or_default() += 1;
        }
    }

    /// Counts every kernel the process launches from `start` until `finish`.
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

        pub fn finish(self) -> Launches {
            let counts =
                std::mem::take(&mut *self.counter.0.lock().unwrap_or_else(|e| e.into_inner()));
            // One line per kernel name: the short form drops the generics that tell variants
            // of one kernel (per op, per element type) apart.
            let mut short = HashMap::<String, usize>::new();
            for (kernel, n) in counts {
                *short
                    .entry(type_name_format(kernel, TypeNameFormatLevel::Short))
                    .or_default() += n;
            }
            let mut by_kernel: Vec<(String, usize)> = short.into_iter().collect();
            by_kernel.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Launches { by_kernel }
        }
    }
}
