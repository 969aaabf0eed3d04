//! Datasets held in memory as 8-bit RGB: the CIFAR-10/100 binaries (`cifar.rs`) and folders of
//! images (`folder.rs`), and which of them a `--data-dir` holds.
//!
//! Everything is decoded once, up front, into `size x size x 3` bytes per image
//! (`samples.rs`): CIFAR-10 at 32x32 is 150 MB, and augmentation then works on plain bytes
//! with no file access per epoch.

use std::path::Path;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

mod cifar;
mod folder;
mod samples;

pub use cifar::{CIFAR10, CIFAR100, CifarFormat, read_names};
pub use samples::{Dataset, Samples};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    #[value(name = "cifar10")]
    Cifar10,
    #[value(name = "cifar100")]
    Cifar100,
    Folder,
}

impl DatasetKind {
    /// The `--dataset` value that names it.
    fn flag(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Folder => "folder",
        }
    }
}

/// Loads a dataset; `limit` keeps at most that many train images (and a fifth as many test
/// images), class-balanced and chosen by `split_seed`, for quick runs.
pub fn load(
    kind: DatasetKind,
    dir: &Path,
    image_size: u32,
    split_seed: u64,
    limit: Option<usize>,
) -> Result<Dataset> {
    if image_size == 0 {
        bail!("image size must be at least 1 pixel");
    }
    match kind {
        DatasetKind::Cifar10 => cifar::load(&CIFAR10, dir, image_size, split_seed, limit),
        DatasetKind::Cifar100 => cifar::load(&CIFAR100, dir, image_size, split_seed, limit),
        DatasetKind::Folder => folder::load(dir, image_size, split_seed, limit),
    }
}

/// The class names of a dataset, without reading its images (a new run sizes its model head
/// from them before loading anything).
pub fn class_names(kind: DatasetKind, dir: &Path) -> Result<Vec<String>> {
    match kind {
        DatasetKind::Cifar10 => cifar::class_names(&CIFAR10, dir),
        DatasetKind::Cifar100 => cifar::class_names(&CIFAR100, dir),
        DatasetKind::Folder => folder::class_names(dir),
    }
}

/// The kind of dataset in `dir`: `given` (`--dataset`) where the folder holds that, else what
/// it holds, found as [`contents`] finds it. A `given` kind the folder does not hold is an
/// error that says what it does hold; one that is not there while nothing else is either is
/// left to the loader, whose error lists the files it looked for.
pub fn resolve(given: Option<DatasetKind>, dir: &Path) -> Result<DatasetKind> {
    let found = contents(dir);
    let kinds: Vec<DatasetKind> = found.iter().map(|(k, _)| *k).collect();
    let held = || {
        let what: Vec<&str> = found.iter().map(|(_, what)| what.as_str()).collect();
        format!("{} holds {}", dir.display(), what.join(" and "))
    };
    match (given, kinds.as_slice()) {
        (Some(kind), _) if kinds.contains(&kind) || kinds.is_empty() => Ok(kind),
        (Some(kind), [other]) => bail!(
            "{}, not {}: pass --dataset {}, or leave --dataset out to have it detected",
            held(),
            describe(kind),
            other.flag()
        ),
        (Some(kind), _) => bail!(
            "{}, not {}: pass --dataset with one of them",
            held(),
            describe(kind)
        ),
        (None, [kind]) => Ok(*kind),
        (None, []) if !dir.is_dir() => bail!("{}: no such folder", dir.display()),
        (None, []) => bail!(
            "{}: neither CIFAR-10 or CIFAR-100 binaries (`trainer download` fetches them) nor \
             class folders (one sub-folder of images per class, or train/ and test/ of them)",
            dir.display()
        ),
        (None, _) => bail!("{}: choose one with --dataset", held()),
    }
}

/// What a kind of dataset is, for messages.
fn describe(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Cifar10 => "CIFAR-10's binary batches",
        DatasetKind::Cifar100 => "CIFAR-100's binary batches",
        DatasetKind::Folder => "class folders",
    }
}

/// Class names listed in a message at most.
const NAMES_SHOWN: usize = 5;

/// Each kind of dataset `dir` holds, with a phrase saying what was found: CIFAR-10's or
/// CIFAR-100's test batch in it (or in the folder its archive unpacks to), and class folders,
/// which are its visible sub-folders other than those archive folders (or train/ and test/).
/// Only names are looked at, no file is read.
pub fn contents(dir: &Path) -> Vec<(DatasetKind, String)> {
    let mut found = Vec::new();
    for (kind, fmt) in [
        (DatasetKind::Cifar10, &CIFAR10),
        (DatasetKind::Cifar100, &CIFAR100),
    ] {
        if cifar::find_root(fmt, dir).is_ok() {
            found.push((kind, describe(kind).to_string()));
        }
    }
    let archives = [CIFAR10.folder, CIFAR100.folder];
    let subfolders: Vec<String> = folder::subfolders(dir)
        .into_iter()
        .filter(|name| !archives.contains(&name.as_str()))
        .collect();
    let split = ["test", "train"]
        .iter()
        .all(|s| subfolders.contains(&s.to_string()));
    let classes = if split {
        folder::subfolders(&dir.join("train"))
    } else {
        subfolders
    };
    if !classes.is_empty() {
        let mut shown = classes[..classes.len().min(NAMES_SHOWN)].join(", ");
        if classes.len() > NAMES_SHOWN {
            shown += ", ...";
        }
        let s = if classes.len() == 1 { "" } else { "s" };
        let under = if split { " under train/ and test/" } else { "" };
        found.push((
            DatasetKind::Folder,
            format!("{} class folder{s}{under} ({shown})", classes.len()),
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn folders(dir: &Path, names: &[&str]) {
        for name in names {
            fs::create_dir_all(dir.join(name)).unwrap();
        }
    }

    fn error(r: Result<DatasetKind>) -> String {
        format!("{:#}", r.expect_err("an error"))
    }

    #[test]
    fn each_kind_is_detected_and_a_wrong_one_is_refused_saying_what_is_there() {
        let tmp = tempfile::tempdir().unwrap();
        let classes = tmp.path().join("shapes");
        folders(&classes, &["disk", "square", ".hidden"]);
        assert_eq!(resolve(None, &classes).unwrap(), DatasetKind::Folder);
        let given = Some(DatasetKind::Folder);
        assert_eq!(resolve(given, &classes).unwrap(), DatasetKind::Folder);
        let e = error(resolve(Some(DatasetKind::Cifar10), &classes));
        assert!(
            e.contains("holds 2 class folders (disk, square), not CIFAR-10's binary batches")
                && e.contains("--dataset folder"),
            "{e}"
        );

        let split = tmp.path().join("split");
        folders(
            &split,
            &[
                "train/a", "train/b", "train/c", "test/a", "test/b", "test/c",
            ],
        );
        assert_eq!(resolve(None, &split).unwrap(), DatasetKind::Folder);
        let e = error(resolve(Some(DatasetKind::Cifar100), &split));
        assert!(
            e.contains("3 class folders under train/ and test/ (a, b, c)"),
            "{e}"
        );

        // CIFAR-10 in the folder itself, or in the one its archive unpacks to.
        let cifar = tmp.path().join("cifar");
        let inner = cifar.join(CIFAR10.folder);
        fs::create_dir_all(&inner).unwrap();
        fs::write(inner.join(CIFAR10.test_file), b"").unwrap();
        for dir in [&cifar, &inner] {
            assert_eq!(resolve(None, dir).unwrap(), DatasetKind::Cifar10);
            let e = error(resolve(Some(DatasetKind::Folder), dir));
            assert!(
                e.contains("holds CIFAR-10's binary batches, not class folders")
                    && e.contains("--dataset cifar10"),
                "{e}"
            );
        }
        // Both CIFARs downloaded into one folder: either may be asked for, neither guessed.
        let both = cifar.join(CIFAR100.folder);
        fs::create_dir_all(&both).unwrap();
        fs::write(both.join(CIFAR100.test_file), b"").unwrap();
        assert_eq!(
            resolve(Some(DatasetKind::Cifar100), &cifar).unwrap(),
            DatasetKind::Cifar100
        );
        let e = error(resolve(None, &cifar));
        assert!(
            e.contains("CIFAR-10's binary batches and CIFAR-100's binary batches")
                && e.contains("choose one with --dataset"),
            "{e}"
        );

        // Nothing recognisable: without --dataset, say what was looked for; with it, the
        // loader names the files it expected.
        let empty = tmp.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        assert!(error(resolve(None, &empty)).contains("neither CIFAR-10"));
        let given = Some(DatasetKind::Cifar10);
        assert_eq!(resolve(given, &empty).unwrap(), DatasetKind::Cifar10);
        assert!(error(resolve(None, &tmp.path().join("nope"))).contains("no such folder"));
    }
}
