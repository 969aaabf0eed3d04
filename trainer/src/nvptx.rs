//! LLVM's NVPTX initialisers, for a CUDA build linked against an LLVM without that target.
//!
//! cubecl-llvm refers to these four functions whatever compiles the CUDA kernels. This crate's
//! `cuda` feature selects cubecl-cuda's NVRTC compiler, so they are never called; but the LLVM
//! 23.1 wheels from PyPI that `scripts/provision-llvm` installs are built for X86 alone, and
//! without definitions the binary does not link. Reaching one would mean that LLVM's NVPTX
//! path was taken after all, which this LLVM cannot run: the process stops, saying so.

fn no_nvptx(function: &str) -> ! {
    eprintln!(
        "error: {function} was called, but this trainer was linked against an LLVM without the \
         NVPTX target (feature `llvm-without-nvptx`); CUDA kernels must go through NVRTC"
    );
    std::process::abort()
}

#[unsafe(no_mangle)]
extern "C" fn LLVMInitializeNVPTXTargetInfo() {
    no_nvptx("LLVMInitializeNVPTXTargetInfo")
}

#[unsafe(no_mangle)]
extern "C" fn LLVMInitializeNVPTXTarget() {
    no_nvptx("LLVMInitializeNVPTXTarget")
}

#[unsafe(no_mangle)]
extern "C" fn LLVMInitializeNVPTXTargetMC() {
    no_nvptx("LLVMInitializeNVPTXTargetMC")
}

#[unsafe(no_mangle)]
extern "C" fn LLVMInitializeNVPTXAsmPrinter() {
    no_nvptx("LLVMInitializeNVPTXAsmPrinter")
}
