//! The kernels' parallel loop, whose helper threads spin between jobs instead of sleeping.
//!
//! Why not rayon's own loops: a pass is dozens of 1–2 ms matrix products with serial work in
//! between (layer norms, residual adds). rayon's workers fall asleep in those gaps, and waking
//! them (`Atomics.wait`/`notify` in the page's threaded engine, a futex natively) took about as
//! long as splitting a product saved: the page's threaded engine on two threads was no faster
//! than on one (web/README.md, "How fast"). Here `threads - 1` helpers, each a job on rayon's
//! pool, spin on one job slot while work keeps coming, and go back to rayon (which parks them)
//! after [`IDLE`] without a job, so they cost a core only during a pass and just after it. The
//! calling thread is the last one: it takes chunks too, and runs the serial work between jobs
//! while the helpers wait. So a pass needs one wake-up per helper, not one per product.
//!
//! One job is on offer at a time. A second caller meanwhile (another thread), and a loop inside
//! a chunk, run their chunks serially on their own thread.

#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(super) use pool::{for_each, threads};

/// The page's single-thread build (no pool, no atomics): one thread.
#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn threads() -> usize {
    1
}

/// The page's single-thread build: the chunks in order, on this thread.
#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn for_each(chunks: usize, body: impl Fn(usize) + Sync) {
    (0..chunks).for_each(body);
}

/// `data` cut into pieces of at least `min` elements (the last may be shorter), at most one a
/// thread, and `body` run on each piece, in parallel as [`for_each`] runs chunks.
pub(super) fn for_pieces(data: &mut [f32], min: usize, body: impl Fn(&mut [f32]) + Sync) {
    let len = data.len();
    let pieces = threads().min(len / min.max(1)).max(1);
    let size = len.div_ceil(pieces);
    let start = Shared(data.as_mut_ptr());
    for_each(pieces, |i| {
        let from = (i * size).min(len);
        let to = ((i + 1) * size).min(len);
        if from == to {
            return;
        }
        // SAFETY: the pieces `from..to` are disjoint and inside `data`, which stays borrowed
        // mutably for the whole loop.
        body(unsafe { std::slice::from_raw_parts_mut(start.get().add(from), to - from) });
    });
}

/// A pointer that chunks on other threads may write through, each to its own elements.
#[derive(Clone, Copy)]
pub(super) struct Shared<T>(*mut T);

// SAFETY: it is only a pointer; whoever writes through it keeps the chunks' elements disjoint.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    pub(super) fn new(ptr: *mut T) -> Self {
        Shared(ptr)
    }

    pub(super) fn get(self) -> *mut T {
        self.0
    }
}

/// The pool: rayon's threads, natively and in the page's threaded engine.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
mod pool {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};

    #[cfg(not(target_arch = "wasm32"))]
    use std::time::{Duration, Instant};
    // `std::time::Instant` panics on wasm32-unknown-unknown; this one reads `performance.now()`.
    #[cfg(target_arch = "wasm32")]
    use web_time::{Duration, Instant};

    use crate::kernels::switch::{simd, with_simd};

    /// How long a helper waits for a new job before it goes back to rayon's pool: longer than
    /// the serial gaps inside a pass (at most a few milliseconds), short enough that an idle page
    /// does not keep a core busy.
    const IDLE: Duration = Duration::from_millis(10);

    /// Threads a loop may use: rayon's (the pool a caller runs in, or the global one).
    pub fn threads() -> usize {
        rayon::current_num_threads()
    }

    /// Runs `body(i)` for every `i` in `0..chunks`, each once, on up to [`threads`] threads, and
    /// returns when all have run. Chunks run at the caller's vector unit ([`simd`]) on every thread.
    pub fn for_each(chunks: usize, body: impl Fn(usize) + Sync) {
        let threads = threads();
        if chunks <= 1 || threads <= 1 || IN_CHUNK.get() || OFFERING.swap(true, Acquire) {
            (0..chunks).for_each(body);
            return;
        }
        wake_helpers(threads - 1);
        let level = simd();
        let body = |i: usize| with_simd(level, || body(i));
        let job = Job {
            body: &body,
            chunks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        };
        // The job's lifetime is erased for the slot: it is cleared, and every helper that took the
        // job has left it (`ACTIVE` is 0), before this function returns and `job` is dropped.
        let offered = &job as *const Job<'_> as *mut Job<'static>;
        GENERATION.fetch_add(1, SeqCst);
        SLOT.store(offered, SeqCst);
        job.work();
        while job.done.load(Acquire) < chunks {
            std::hint::spin_loop();
        }
        SLOT.store(std::ptr::null_mut(), SeqCst);
        while ACTIVE.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        OFFERING.store(false, Release);
    }

    /// A loop on offer: its chunks are taken one at a time by whoever comes.
    struct Job<'a> {
        body: &'a (dyn Fn(usize) + Sync),
        chunks: usize,
        next: AtomicUsize,
        done: AtomicUsize,
    }

    impl Job<'_> {
        /// Takes chunks until none is left.
        fn work(&self) {
            let outer = IN_CHUNK.replace(true);
            loop {
                let i = self.next.fetch_add(1, Relaxed);
                if i >= self.chunks {
                    break;
                }
                (self.body)(i);
                self.done.fetch_add(1, Release);
            }
            IN_CHUNK.set(outer);
        }
    }

    /// The job on offer, or null.
    static SLOT: AtomicPtr<Job<'static>> = AtomicPtr::new(std::ptr::null_mut());
    /// Bumped for each job, so that a helper tells a new job from a finished one at the same
    /// address (the caller's stack frame is often the same from one job to the next).
    static GENERATION: AtomicUsize = AtomicUsize::new(0);
    /// Helpers inside a job they took from the slot: its owner waits for them to leave.
    static ACTIVE: AtomicUsize = AtomicUsize::new(0);
    /// Helpers alive, spinning or working.
    static HELPERS: AtomicUsize = AtomicUsize::new(0);
    /// Held by the thread whose job is on offer.
    static OFFERING: AtomicBool = AtomicBool::new(false);

    thread_local! {
        /// Inside a chunk: a loop there runs serially on this thread.
        static IN_CHUNK: Cell<bool> = const { Cell::new(false) };
    }

    /// Starts helpers until `wanted` are alive (the first loop of a pass; later ones find them
    /// spinning).
    fn wake_helpers(wanted: usize) {
        let mut alive = HELPERS.load(Acquire);
        while alive < wanted {
            match HELPERS.compare_exchange(alive, alive + 1, AcqRel, Acquire) {
                Ok(_) => {
                    rayon::spawn(help);
                    alive += 1;
                }
                Err(now) => alive = now,
            }
        }
    }

    /// A helper: takes each new job from the slot, until none has come for [`IDLE`].
    fn help() {
        let mut seen = usize::MAX;
        let mut looks = 0u32;
        let mut since = Instant::now();
        loop {
            let generation = GENERATION.load(SeqCst);
            let offered = SLOT.load(SeqCst);
            if generation == seen || offered.is_null() {
                looks = looks.wrapping_add(1);
                // The clock is a call into JavaScript in the page: look at it now and then.
                if looks.is_multiple_of(1024) && since.elapsed() > IDLE {
                    break;
                }
                std::hint::spin_loop();
                continue;
            }
            seen = generation;
            ACTIVE.fetch_add(1, SeqCst);
            // Still on offer after we announced ourselves: its owner now waits for us to leave
            // before it clears the job (it clears the slot first, then reads `ACTIVE`).
            if SLOT.load(SeqCst) == offered {
                // SAFETY: the job stays alive while `ACTIVE` counts us, as above.
                unsafe { &*offered }.work();
            }
            ACTIVE.fetch_sub(1, SeqCst);
            since = Instant::now();
        }
        HELPERS.fetch_sub(1, AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    use super::*;
    use crate::kernels::{Simd, simd, with_simd};

    #[test]
    fn every_chunk_runs_once() {
        for chunks in [0, 1, 2, 3, 17, 1000] {
            let counts: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
            for_each(chunks, |i| {
                counts[i].fetch_add(1, Relaxed);
            });
            assert!(
                counts.iter().all(|c| c.load(Relaxed) == 1),
                "{chunks} chunks"
            );
        }
    }

    #[test]
    fn loops_from_many_threads_and_inside_chunks_all_finish() {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let total = AtomicUsize::new(0);
                        for_each(8, |_| {
                            for_each(3, |_| {
                                total.fetch_add(1, Relaxed);
                            });
                        });
                        assert_eq!(total.load(Relaxed), 24);
                    }
                });
            }
        });
    }

    #[test]
    fn pieces_cover_the_slice_once() {
        for (len, min) in [(0, 4), (1, 4), (10, 4), (1000, 7), (1000, 5000)] {
            let mut data = vec![0f32; len];
            for_pieces(&mut data, min, |piece| {
                assert!(!piece.is_empty());
                piece.iter_mut().for_each(|v| *v += 1.0);
            });
            assert!(data.iter().all(|&v| v == 1.0), "len {len}, min {min}");
        }
    }

    #[test]
    fn chunks_run_at_the_callers_vector_unit() {
        let levels = std::sync::Mutex::new(Vec::new());
        with_simd(Simd::Baseline, || {
            for_each(64, |_| levels.lock().unwrap().push(simd()));
        });
        let levels = levels.into_inner().unwrap();
        assert_eq!(levels.len(), 64);
        assert!(levels.iter().all(|&l| l == Simd::Baseline), "{levels:?}");
    }
}
