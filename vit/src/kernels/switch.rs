//! Which kernels run: on or off (burn's ops instead), and which vector unit they are compiled
//! for. Both are read from the environment once, so that benchmarks can compare paths without
//! a rebuild, and can be overridden on one thread, so that tests can compare them in one
//! process without racing each other.

use std::cell::Cell;
use std::sync::OnceLock;

/// The vector units the kernels are compiled for, from the least to the best.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// The crate's own target: SSE2 on x86-64, SIMD128 in the browser (enabled module-wide).
    Baseline,
    /// 8 lanes of f32, chosen at run time.
    Avx2,
    /// 16 lanes of f32, chosen at run time.
    Avx512,
}

impl Simd {
    /// Every level, best first.
    pub const ALL: [Simd; 3] = [Simd::Avx512, Simd::Avx2, Simd::Baseline];

    /// The name `VIT_SIMD` takes and benchmarks print.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Avx512 => "avx512",
            Simd::Avx2 => "avx2",
            Simd::Baseline if cfg!(target_arch = "wasm32") => "simd128",
            Simd::Baseline => "baseline",
        }
    }

    /// Whether this CPU can run the level.
    pub fn available(self) -> bool {
        match self {
            Simd::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best level this CPU has, at most `self`.
    fn at_most(self) -> Simd {
        Simd::ALL
            .into_iter()
            .find(|level| *level <= self && level.available())
            .unwrap_or(Simd::Baseline)
    }
}

thread_local! {
    static FORCED_SIMD: Cell<Option<Simd>> = const { Cell::new(None) };
    static FORCED_ON: Cell<Option<bool>> = const { Cell::new(None) };
}

/// The level the kernels run at on this thread: the best the CPU has, capped by `VIT_SIMD`
/// (`avx512`, `avx2` or `baseline`) or by [`with_simd`].
pub fn simd() -> Simd {
    static DEFAULT: OnceLock<Simd> = OnceLock::new();
    FORCED_SIMD.get().unwrap_or_else(|| {
        *DEFAULT.get_or_init(|| {
            let cap = std::env::var("VIT_SIMD")
                .ok()
                .and_then(|name| Simd::ALL.into_iter().find(|l| l.name() == name.trim()))
                .unwrap_or(Simd::Avx512);
            cap.at_most()
        })
    })
}

/// Whether the kernels stand in for burn's ops where they apply: yes unless `VIT_KERNELS=off`
/// or [`with_kernels`] says otherwise.
pub fn enabled() -> bool {
    static DEFAULT: OnceLock<bool> = OnceLock::new();
    FORCED_ON.get().unwrap_or_else(|| {
        *DEFAULT.get_or_init(|| {
            std::env::var("VIT_KERNELS")
                .ok()
                .is_none_or(|v| v.trim() != "off")
        })
    })
}

/// Runs `f` with the kernels at `level` (or the best below it this CPU has) on this thread.
pub fn with_simd<R>(level: Simd, f: impl FnOnce() -> R) -> R {
    scoped(&FORCED_SIMD, level.at_most(), f)
}

/// Runs `f` with the kernels on or off on this thread.
pub fn with_kernels<R>(on: bool, f: impl FnOnce() -> R) -> R {
    scoped(&FORCED_ON, on, f)
}

fn scoped<T: Copy + 'static, R>(
    key: &'static std::thread::LocalKey<Cell<Option<T>>>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    /// Restores the previous value even if `f` panics, so a failing test does not leak its
    /// setting into the next test on the same thread.
    struct Restore<T: Copy + 'static>(&'static std::thread::LocalKey<Cell<Option<T>>>, Option<T>);
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            self.0.set(self.1);
        }
    }
    let _restore = Restore(key, key.replace(Some(value)));
    f()
}

/// Defines `pub fn $name` that runs `$body` compiled for the vector unit [`simd`] picks.
///
/// The body is written once, `#[inline(always)]`, and compiled again inside functions that
/// enable AVX-512 or AVX2: the crate itself is built for baseline x86-64 (SSE2), where the same
/// loops get only 4 lanes. In wasm, `simd128` is on for the whole module (.cargo/config.toml),
/// so the plain body is already vectorised.
macro_rules! vectorised {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $body:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                match $crate::kernels::simd() {
                    // SAFETY: `simd()` only returns levels this CPU has (`Simd::at_most`).
                    $crate::kernels::Simd::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::Simd::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::Simd::Baseline => {}
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use vectorised;
