//! The linker's flags for the threaded build (wasm32 with `+atomics`, scripts/build-page): a
//! shared, imported memory, on which every thread of rayon's pool instantiates the module, up
//! to 4 GiB; and the thread-local storage's symbols exported, which wasm-bindgen's thread
//! support sets up for each thread. rustc passes none of them by itself.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    let atomics = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|f| f == "atomics"));
    if wasm && atomics {
        for arg in [
            "--shared-memory",
            "--import-memory",
            "--max-memory=4294967296",
            "--export=__wasm_init_tls",
            "--export=__tls_size",
            "--export=__tls_align",
            "--export=__tls_base",
        ] {
            println!("cargo::rustc-link-arg-cdylib={arg}");
        }
    }
}
