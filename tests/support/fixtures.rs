//! Where the committed fixtures are (`tests/fixtures`, written by its scripts), for the test
//! binaries that read them. Include it with `#[path = "support/fixtures.rs"] mod fixtures;`.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;

/// The fixtures' folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// A fixture's path, as an argument.
pub fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// One of the photos in `tests/fixtures/photos`, by name without `.png`.
pub fn photo(name: &str) -> String {
    fixture(&format!("photos/{name}.png"))
}
