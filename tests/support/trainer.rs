//! The `trainer` binary as the end-to-end tests run it, and its output as text for their
//! failure messages. Include it with `#[path = "support/trainer.rs"] mod trainer_bin;`.

#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::process::{Command, Output};

/// `trainer`, with short panics.
pub fn trainer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer"));
    c.env("RUST_BACKTRACE", "0");
    c
}

pub fn run(args: &[&str]) -> Output {
    trainer().args(args).output().expect("trainer runs")
}

/// `run`, which must succeed: its output, or a failure that shows it.
pub fn succeeds(args: &[&str]) -> Output {
    succeeded(trainer().args(args))
}

/// `command` (a `trainer` command) run, which must succeed: its output, or a failure that
/// shows it.
pub fn succeeded(command: &mut Command) -> Output {
    let o = command.output().expect("trainer runs");
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// Status, stdout and stderr, for an assertion's message.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The variables of huggingface_hub and of proxies that the machine running the tests may
/// have set: none reaches the trainer unless a test sets it.
pub const HUB_AMBIENT: [&str; 20] = [
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_PROGRESS_BARS",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "HF_HUB_ETAG_TIMEOUT",
    "HF_HUB_DOWNLOAD_TIMEOUT",
    "XDG_CACHE_HOME",
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// `trainer ARGS` with the hub at `endpoint` and its cache under `home`, and none of the
/// machine's own hub settings or proxies ([`HUB_AMBIENT`]).
pub fn with_hub(home: &Path, endpoint: &str, args: &[&str]) -> Command {
    let mut c = trainer();
    c.args(args)
        .env("HF_HOME", home)
        .env("HF_ENDPOINT", endpoint);
    for var in HUB_AMBIENT {
        c.env_remove(var);
    }
    c
}
