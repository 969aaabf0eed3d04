//! The `trainer` binary as the end-to-end tests run it, and its output as text for their
//! failure messages. Include it with `#[path = "support/trainer.rs"] mod trainer_bin;`.

#![allow(dead_code)] // each test binary uses its own part

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

/// Status, stdout and stderr, for an assertion's message.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
