// The first script of the page's engine, a dedicated module worker (web/src/worker/client.rs
// starts it; trunk copies it beside index.html, so relative URLs resolve here as in the page).
//
// The page's first message names the module to run: `glue`, the wasm-bindgen JavaScript of
// either the threaded build (engine-mt/web.js, which fetches its own wasm and needs a
// cross-origin isolated page) or the page's own build (whose compiled module comes along as
// `module`, so it is not compiled twice), and `threads`, the size of rayon's pool. This script
// imports it, starts the pool, and hands the worker to the engine (`start_engine`), which then
// takes every message. `gpu`, for the threaded build, names the module its WebGPU lane runs in
// a worker of its own (web/src/engine/gpu.rs), started from this same script. Anything that
// fails here is sent back as `bootError`, and the page falls back to one thread.
self.addEventListener(
  "message",
  async (event) => {
    const init = event.data && event.data.init;
    if (!init) {
      self.postMessage({ bootError: "the engine's first message did not say what to run" });
      return;
    }
    try {
      const wasm = await import(init.glue);
      await wasm.default(init.module ? { module_or_path: init.module } : undefined);
      if (typeof wasm.initThreadPool === "function") {
        await wasm.initThreadPool(init.threads);
      }
      wasm.start_engine(init.threads, init.gpu ?? null);
    } catch (e) {
      self.postMessage({ bootError: String((e && e.message) || e) });
    }
  },
  { once: true },
);
