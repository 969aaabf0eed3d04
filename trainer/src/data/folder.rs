//! Folders of images, one sub-folder per class: either directly in the dataset's folder (a
//! fifth of each class held out for testing, chosen by the seed) or under `train/` and `test/`.
//! Any format `vit::preprocess::decode_image` reads; unreadable files are skipped and counted.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use vit::preprocess::{decode_image, fit_square};
use vit::rng::Rng;

use super::samples::{Dataset, Samples, balanced_subset};

/// An image file and its class index.
type Labelled = (PathBuf, u16);

pub(super) fn load(dir: &Path, size: u32, seed: u64, limit: Option<usize>) -> Result<Dataset> {
    if !dir.is_dir() {
        bail!("{}: no such folder", dir.display());
    }
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    let (classes, train_files, test_files) = match (train_dir.is_dir(), test_dir.is_dir()) {
        (true, true) => {
            let classes = class_folders(&train_dir)?;
            check_same_classes(&classes, &class_folders(&test_dir)?)?;
            let train = list_labelled(&train_dir, &classes)?;
            let test = list_labelled(&test_dir, &classes)?;
            (classes, train, test)
        }
        (false, false) => {
            let classes = class_folders(dir)?;
            let (train, test) = hold_out(list_labelled(dir, &classes)?, &classes, seed)?;
            (classes, train, test)
        }
        _ => bail!(
            "{}: has one of train/ and test/ but not both; give both, or put the class \
             folders directly in it",
            dir.display()
        ),
    };
    let (train_files, test_files) =
        limit_files(train_files, test_files, classes.len(), seed, limit);
    let (train, train_skipped) = decode_all(&train_files, size);
    let (test, test_skipped) = decode_all(&test_files, size);
    check_every_class_readable(&classes, &train, dir)?;
    let skipped = train_skipped + test_skipped;
    let description = format!(
        "folder {}: {} train, {} test, {} classes, {size}x{size}{}",
        dir.display(),
        train.len(),
        test.len(),
        classes.len(),
        if skipped > 0 {
            format!(" ({skipped} unreadable images skipped)")
        } else {
            String::new()
        }
    );
    Ok(Dataset {
        classes,
        train,
        test,
        skipped,
        description,
    })
}

/// The class folders' names, from `train/` where there is one.
pub(super) fn class_names(dir: &Path) -> Result<Vec<String>> {
    if dir.join("train").is_dir() {
        class_folders(&dir.join("train"))
    } else {
        class_folders(dir)
    }
}

/// The visible sub-folders of `dir`, sorted; none where it cannot be listed.
pub(super) fn subfolders(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Sorted names of the visible sub-folders: the classes.
fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    if names.is_empty() {
        bail!(
            "{}: no class folders (expected one sub-folder of images per class)",
            dir.display()
        );
    }
    if names.len() > u16::MAX as usize {
        bail!(
            "{}: {} class folders, at most {} are supported",
            dir.display(),
            names.len(),
            u16::MAX
        );
    }
    Ok(names)
}

fn check_same_classes(train: &[String], test: &[String]) -> Result<()> {
    if train == test {
        return Ok(());
    }
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|x| !b.contains(*x)).cloned().collect()
    };
    bail!(
        "train/ and test/ must hold the same class folders; only in train/: {:?}, only in test/: {:?}",
        only(train, test),
        only(test, train)
    )
}

/// Every visible file of every class folder, sorted, with its class index.
fn list_labelled(dir: &Path, classes: &[String]) -> Result<Vec<Labelled>> {
    let mut out = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let mut files = Vec::new();
        let entries =
            fs::read_dir(&class_dir).with_context(|| format!("listing {}", class_dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("listing {}", class_dir.display()))?
                .path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            bail!("class folder {} is empty", class_dir.display());
        }
        files.sort();
        out.extend(files.into_iter().map(|p| (p, label as u16)));
    }
    Ok(out)
}

/// Holds out 20% of each class (at least one image) for testing.
fn hold_out(
    files: Vec<Labelled>,
    classes: &[String],
    seed: u64,
) -> Result<(Vec<Labelled>, Vec<Labelled>)> {
    let mut by_class: BTreeMap<u16, Vec<Labelled>> = BTreeMap::new();
    for item in files {
        by_class.entry(item.1).or_default().push(item);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (label, mut items) in by_class {
        let name = &classes[label as usize];
        if items.len() < 2 {
            bail!(
                "class folder {name} has 1 image: at least 2 are needed to hold one out for testing"
            );
        }
        // Seeded by the class's name, so adding a class leaves the other classes' splits alone.
        Rng::derive(seed, &[name_hash(name)]).shuffle(&mut items);
        let held = ((items.len() as f64 * 0.2).round() as usize).max(1);
        test.extend(items.drain(..held));
        train.extend(items);
    }
    test.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    train.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok((train, test))
}

/// FNV-1a: stable across runs and platforms, unlike `std`'s hasher.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn limit_files(
    train: Vec<Labelled>,
    test: Vec<Labelled>,
    num_classes: usize,
    seed: u64,
    limit: Option<usize>,
) -> (Vec<Labelled>, Vec<Labelled>) {
    let Some(n) = limit else { return (train, test) };
    let pick = |files: Vec<Labelled>, n: usize, stream: u64| -> Vec<Labelled> {
        let labels: Vec<u16> = files.iter().map(|f| f.1).collect();
        let keep = balanced_subset(&labels, num_classes, n, &mut Rng::derive(seed, &[stream]));
        keep.into_iter().map(|i| files[i].clone()).collect()
    };
    (pick(train, n, 0), pick(test, (n / 5).max(1), 1))
}

/// Decodes and fits every file on all cores; unreadable ones are reported and left out.
fn decode_all(files: &[Labelled], size: u32) -> (Samples, usize) {
    let decoded: Vec<_> = files
        .par_iter()
        .map(|(path, _)| decode_file(path, size))
        .collect();
    let mut samples = Samples::empty(size);
    let mut skipped = 0;
    for ((path, label), result) in files.iter().zip(decoded) {
        match result {
            Ok(pixels) => {
                samples.pixels.extend_from_slice(&pixels);
                samples.labels.push(*label);
            }
            Err(e) => {
                eprintln!("warning: skipping {}: {e:#}", path.display());
                skipped += 1;
            }
        }
    }
    (samples, skipped)
}

fn decode_file(path: &Path, size: u32) -> Result<Vec<u8>> {
    let bytes = fs::read(path).context("cannot read the file")?;
    let img = decode_image(&bytes)?;
    Ok(fit_square(&img, size).into_raw())
}

fn check_every_class_readable(classes: &[String], train: &Samples, dir: &Path) -> Result<()> {
    let mut counts = vec![0usize; classes.len()];
    train.labels.iter().for_each(|&l| counts[l as usize] += 1);
    if let Some(c) = counts.iter().position(|&n| n == 0) {
        bail!(
            "{}: no readable training images for class {:?}",
            dir.display(),
            classes[c]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    fn png(path: &Path, rgb: [u8; 3]) {
        RgbImage::from_pixel(7, 5, image::Rgb(rgb))
            .save(path)
            .unwrap();
    }

    fn error(r: Result<Dataset>) -> String {
        format!("{:#}", r.err().expect("an error"))
    }

    #[test]
    fn folder_with_train_and_test_skips_unreadable_files() {
        let tmp = tempfile::tempdir().unwrap();
        for split in ["train", "test"] {
            for class in ["cat", "dog"] {
                let d = tmp.path().join(split).join(class);
                fs::create_dir_all(&d).unwrap();
                png(&d.join("a.png"), [10, 20, 30]);
                png(&d.join("b.png"), [40, 50, 60]);
            }
        }
        fs::write(tmp.path().join("train/dog/broken.jpg"), b"not a jpeg").unwrap();
        fs::write(tmp.path().join("train/dog/.DS_Store"), b"hidden").unwrap();
        let d = load(tmp.path(), 4, 0, None).unwrap();
        assert_eq!(d.classes, ["cat", "dog"]);
        assert_eq!((d.train.len(), d.test.len(), d.skipped), (4, 4, 1));
        assert_eq!(d.train.labels, [0, 0, 1, 1]);
        assert_eq!(&d.train.image(1)[..3], &[40, 50, 60]);
        assert!(d.description.contains("1 unreadable"), "{}", d.description);

        fs::create_dir(tmp.path().join("test/bird")).unwrap();
        let e = error(load(tmp.path(), 4, 0, None));
        assert!(e.contains("only in test/: [\"bird\"]"), "{e}");
        fs::create_dir(tmp.path().join("train/bird")).unwrap();
        let e = error(load(tmp.path(), 4, 0, None));
        assert!(e.contains("bird is empty"), "{e}");
    }

    #[test]
    fn flat_folder_holds_out_a_fifth_per_class_by_seed() {
        let tmp = tempfile::tempdir().unwrap();
        for (class, n) in [("a", 10), ("b", 2)] {
            let d = tmp.path().join(class);
            fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                png(&d.join(format!("{i}.png")), [i as u8, 0, 0]);
            }
        }
        let d = load(tmp.path(), 4, 1, None).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (9, 3));
        assert_eq!(d.test.labels, [0, 0, 1]);
        let again = load(tmp.path(), 4, 1, None).unwrap();
        assert_eq!(again.test, d.test);
        let other = (2..20).map(|s| load(tmp.path(), 4, s, None).unwrap());
        assert!(
            other.into_iter().any(|o| o.test != d.test),
            "the seed changes the split"
        );

        fs::remove_file(tmp.path().join("b/1.png")).unwrap();
        assert!(error(load(tmp.path(), 4, 1, None)).contains("at least 2"));
        let empty = tempfile::tempdir().unwrap();
        assert!(error(load(empty.path(), 4, 1, None)).contains("no class folders"));
    }

    #[test]
    fn all_unreadable_class_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        for class in ["x", "y"] {
            fs::create_dir_all(tmp.path().join(class)).unwrap();
        }
        for i in 0..3 {
            png(&tmp.path().join(format!("x/{i}.png")), [1, 2, 3]);
            fs::write(tmp.path().join(format!("y/{i}.png")), b"junk").unwrap();
        }
        let e = error(load(tmp.path(), 4, 0, None));
        assert!(
            e.contains("no readable training images for class \"y\""),
            "{e}"
        );
    }
}
