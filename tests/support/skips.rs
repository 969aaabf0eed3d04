//! Skips that the test command counts: a test that cannot run here appends a line to the file
//! named by `VITRINE_SKIPS` (set by `scripts/test`), so the closing line reports it as skipped
//! rather than passed, and says why on stderr.

pub fn skip(test: &str, why: &str) {
    eprintln!("skipped {test}: {why}");
    if let Some(path) = std::env::var_os("VITRINE_SKIPS") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{}::{test}: {why}", env!("CARGO_CRATE_NAME")).unwrap();
    }
}
