//! Quiets the Vulkan loader in a process without a display: Mesa's device-selection layer
//! would otherwise have Wayland print an error on every run that lists adapters.

/// Keeps Mesa's Vulkan device-selection layer (an implicit layer of Debian's and others'
/// `mesa-vulkan-drivers`) out of a process that has no display. That layer exists to put the
/// GPU driving the display first; with no display it has nothing to choose, but it still asks
/// Wayland, whose library then prints "error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment." on every run that lists adapters (each `--device auto` run included, even
/// when it settles on the CPU), which reads like a failure. Our own ranking picks the adapter,
/// so the layer's order does not matter here. A user's own `NODEVICE_SELECT` or
/// `MESA_VK_DEVICE_SELECT`, or a display, leaves the layer as it is.
#[cfg_attr(not(feature = "wgpu"), allow(dead_code))]
pub(super) fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        let display = set("WAYLAND_DISPLAY") || set("DISPLAY");
        let chosen = set("NODEVICE_SELECT") || set("MESA_VK_DEVICE_SELECT");
        if !display && !chosen {
            // SAFETY: before this process's first Vulkan instance (every wgpu instance here
            // is made after this call); the threads that may exist by now (Ctrl-C's handler,
            // rayon's workers) do not read the environment, and Rust's own readers take the
            // lock `set_var` takes.
            unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
        }
    });
}
