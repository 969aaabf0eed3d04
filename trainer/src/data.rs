//! Datasets held in memory as 8-bit RGB: the CIFAR-10/100 binaries and folders of images.
//!
//! Everything is decoded once, up front, into `size x size x 3` bytes per image: CIFAR-10 at
//! 32x32 is 150 MB, and augmentation then works on plain bytes with no file access per epoch.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use vit::preprocess::{decode_image, fit_square};

use vit::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    #[value(name = "cifar10")]
    Cifar10,
    #[value(name = "cifar100")]
    Cifar100,
    Folder,
}

/// Images of one split, `size x size` RGB, row-major HWC, one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub size: u32,
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        (self.size * self.size * 3) as usize
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    pub fn subset(&self, indices: &[usize]) -> Samples {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Samples {
            size: self.size,
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

pub struct Dataset {
    pub classes: Vec<String>,
    pub train: Samples,
    pub test: Samples,
    /// Images that could not be decoded and were left out (folder datasets).
    pub skipped: usize,
    /// One line for logs, e.g. "CIFAR-10 from data/: 50000 train, 10000 test, 10 classes, 32x32".
    pub description: String,
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
        DatasetKind::Cifar10 => load_cifar(&CIFAR10, dir, image_size, split_seed, limit),
        DatasetKind::Cifar100 => load_cifar(&CIFAR100, dir, image_size, split_seed, limit),
        DatasetKind::Folder => load_folder(dir, image_size, split_seed, limit),
    }
}

/// The class names of a dataset, without reading its images (a new run sizes its model head
/// from them before loading anything).
pub fn class_names(kind: DatasetKind, dir: &Path) -> Result<Vec<String>> {
    match kind {
        DatasetKind::Cifar10 => cifar_class_names(&CIFAR10, &cifar_root(&CIFAR10, dir)?),
        DatasetKind::Cifar100 => cifar_class_names(&CIFAR100, &cifar_root(&CIFAR100, dir)?),
        DatasetKind::Folder if dir.join("train").is_dir() => class_folders(&dir.join("train")),
        DatasetKind::Folder => class_folders(dir),
    }
}

/// Where a CIFAR variant keeps what, as unpacked from the official archive.
pub struct CifarFormat {
    pub name: &'static str,
    /// The folder the official archive unpacks to.
    pub folder: &'static str,
    pub train_files: &'static [&'static str],
    pub test_file: &'static str,
    pub names_file: &'static str,
    /// Label bytes before the pixels; the class is the last of them (CIFAR-100's fine label).
    pub label_bytes: usize,
    pub num_classes: usize,
    default_names: &'static str,
}

const CIFAR_SIDE: u32 = 32;
const CIFAR_PIXELS: usize = 3 * 32 * 32;

impl CifarFormat {
    pub fn record_len(&self) -> usize {
        self.label_bytes + CIFAR_PIXELS
    }
}

pub const CIFAR10: CifarFormat = CifarFormat {
    name: "CIFAR-10",
    folder: "cifar-10-batches-bin",
    train_files: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test_file: "test_batch.bin",
    names_file: "batches.meta.txt",
    label_bytes: 1,
    num_classes: 10,
    default_names: "airplane automobile bird cat deer dog frog horse ship truck",
};

pub const CIFAR100: CifarFormat = CifarFormat {
    name: "CIFAR-100",
    folder: "cifar-100-binary",
    train_files: &["train.bin"],
    test_file: "test.bin",
    names_file: "fine_label_names.txt",
    label_bytes: 2,
    num_classes: 100,
    default_names: "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy \
        bridge bus butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud \
        cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl \
        hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man \
        maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree \
        pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road \
        rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar \
        sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip \
        turtle wardrobe whale willow_tree wolf woman worm",
};

fn load_cifar(
    fmt: &CifarFormat,
    dir: &Path,
    image_size: u32,
    seed: u64,
    limit: Option<usize>,
) -> Result<Dataset> {
    let root = cifar_root(fmt, dir)?;
    let classes = cifar_class_names(fmt, &root)?;
    let mut train = empty_samples(CIFAR_SIDE);
    for file in fmt.train_files {
        append_cifar_file(fmt, &root.join(file), &mut train)?;
    }
    let mut test = empty_samples(CIFAR_SIDE);
    append_cifar_file(fmt, &root.join(fmt.test_file), &mut test)?;
    // Subset before resizing: a quick run should not pay for resizing all 60000 images.
    let (train, test) = apply_limit(train, test, fmt.num_classes, seed, limit);
    let (train, test) = (resize(train, image_size), resize(test, image_size));
    let size = if image_size == CIFAR_SIDE {
        format!("{CIFAR_SIDE}x{CIFAR_SIDE}")
    } else {
        format!("{CIFAR_SIDE}x{CIFAR_SIDE} resized to {image_size}x{image_size}")
    };
    let description = format!(
        "{} from {}: {} train, {} test, {} classes, {size}",
        fmt.name,
        root.display(),
        train.len(),
        test.len(),
        classes.len()
    );
    Ok(Dataset {
        classes,
        train,
        test,
        skipped: 0,
        description,
    })
}

/// `dir` may be the folder holding the files or the one the archive was unpacked into.
pub fn cifar_root(fmt: &CifarFormat, dir: &Path) -> Result<PathBuf> {
    if dir.join(fmt.test_file).is_file() {
        return Ok(dir.to_path_buf());
    }
    let inner = dir.join(fmt.folder);
    if inner.join(fmt.test_file).is_file() {
        return Ok(inner);
    }
    if !dir.is_dir() {
        bail!("{}: no such folder", dir.display());
    }
    bail!(
        "{}: no {} files here ({} and {}, or a {}/ folder holding them); \
         `trainer download` fetches them",
        dir.display(),
        fmt.name,
        fmt.train_files.join(", "),
        fmt.test_file,
        fmt.folder
    )
}

/// Class names from a text file, one per line (blank lines skipped).
pub fn read_names(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn cifar_class_names(fmt: &CifarFormat, root: &Path) -> Result<Vec<String>> {
    let path = root.join(fmt.names_file);
    if !path.is_file() {
        return Ok(fmt
            .default_names
            .split_whitespace()
            .map(String::from)
            .collect());
    }
    let names = read_names(&path)?;
    if names.len() != fmt.num_classes {
        bail!(
            "{}: {} class names, but {} has {} classes",
            path.display(),
            names.len(),
            fmt.name,
            fmt.num_classes
        );
    }
    Ok(names)
}

fn empty_samples(size: u32) -> Samples {
    Samples {
        size,
        pixels: Vec::new(),
        labels: Vec::new(),
    }
}

/// Appends a CIFAR batch file's records, turning each planar RGB record into HWC.
fn append_cifar_file(fmt: &CifarFormat, path: &Path, out: &mut Samples) -> Result<()> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let record = fmt.record_len();
    if bytes.is_empty() || bytes.len() % record != 0 {
        bail!(
            "{}: {} bytes is not a whole number of {record}-byte records (truncated?)",
            path.display(),
            bytes.len()
        );
    }
    out.pixels.reserve(bytes.len() / record * CIFAR_PIXELS);
    let plane = CIFAR_PIXELS / 3;
    for (r, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[fmt.label_bytes - 1];
        if label as usize >= fmt.num_classes {
            bail!(
                "{} record {r}: label {label}, but {} has {} classes",
                path.display(),
                fmt.name,
                fmt.num_classes
            );
        }
        out.labels.push(label as u16);
        let px = &rec[fmt.label_bytes..];
        for p in 0..plane {
            out.pixels
                .extend_from_slice(&[px[p], px[plane + p], px[2 * plane + p]]);
        }
    }
    Ok(())
}

fn apply_limit(
    train: Samples,
    test: Samples,
    num_classes: usize,
    seed: u64,
    limit: Option<usize>,
) -> (Samples, Samples) {
    let Some(n) = limit else { return (train, test) };
    let keep_train = balanced_subset(&train.labels, num_classes, n, &mut Rng::derive(seed, &[0]));
    let keep_test = balanced_subset(
        &test.labels,
        num_classes,
        (n / 5).max(1),
        &mut Rng::derive(seed, &[1]),
    );
    (train.subset(&keep_train), test.subset(&keep_test))
}

/// At most `n` indices, spread as evenly over the classes as the data allow; sorted.
pub fn balanced_subset(labels: &[u16], num_classes: usize, n: usize, rng: &mut Rng) -> Vec<usize> {
    if n >= labels.len() {
        return (0..labels.len()).collect();
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (i, &label) in labels.iter().enumerate() {
        by_class[label as usize].push(i);
    }
    by_class.iter_mut().for_each(|c| rng.shuffle(c));
    // A random class order, so the classes that get one extra image are not always the first.
    let mut order: Vec<usize> = (0..num_classes).collect();
    rng.shuffle(&mut order);
    let mut chosen = Vec::with_capacity(n);
    'rounds: for round in 0.. {
        for &c in &order {
            if let Some(&i) = by_class[c].get(round) {
                chosen.push(i);
                if chosen.len() == n {
                    break 'rounds;
                }
            }
        }
    }
    chosen.sort_unstable();
    chosen
}

fn resize(samples: Samples, size: u32) -> Samples {
    if samples.size == size {
        return samples;
    }
    let images: Vec<Vec<u8>> = (0..samples.len())
        .into_par_iter()
        .map(|i| {
            let img = RgbImage::from_raw(samples.size, samples.size, samples.image(i).to_vec())
                .expect("a sample holds size x size x 3 bytes");
            fit_square(&img, size).into_raw()
        })
        .collect();
    Samples {
        size,
        pixels: images.concat(),
        labels: samples.labels,
    }
}

/// An image file and its class index.
type Labelled = (PathBuf, u16);

fn load_folder(dir: &Path, size: u32, seed: u64, limit: Option<usize>) -> Result<Dataset> {
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
    let mut samples = empty_samples(size);
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

// The recorder that tests/cli.rs and tests/gpu.rs share, for this crate's own skips.
#[cfg(test)]
#[path = "../../tests/support/skips.rs"]
mod skips;

#[cfg(test)]
mod tests {
    use super::*;

    /// A CIFAR-10-style file: record `r` has label `labels[r]` and every red byte = r,
    /// green = 100 + r, blue = 200.
    fn cifar10_bytes(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (r, &label) in labels.iter().enumerate() {
            out.push(label);
            for value in [r as u8, 100 + r as u8, 200] {
                out.extend(std::iter::repeat_n(value, 1024));
            }
        }
        out
    }

    fn fake_cifar10(root: &Path, meta: Option<&str>) {
        fs::create_dir_all(root).unwrap();
        for (k, file) in CIFAR10.train_files.iter().enumerate() {
            let labels: Vec<u8> = (0..10).map(|i| ((i + k) % 10) as u8).collect();
            fs::write(root.join(file), cifar10_bytes(&labels)).unwrap();
        }
        fs::write(root.join("test_batch.bin"), cifar10_bytes(&[3, 1, 4, 1, 5])).unwrap();
        if let Some(text) = meta {
            fs::write(root.join("batches.meta.txt"), text).unwrap();
        }
    }

    fn png(path: &Path, rgb: [u8; 3]) {
        RgbImage::from_pixel(7, 5, image::Rgb(rgb))
            .save(path)
            .unwrap();
    }

    fn error(r: Result<Dataset>) -> String {
        format!("{:#}", r.err().expect("an error"))
    }

    #[test]
    fn cifar10_records_become_hwc_from_parent_or_own_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cifar-10-batches-bin");
        fake_cifar10(&root, None);
        for dir in [tmp.path(), root.as_path()] {
            let d = load(DatasetKind::Cifar10, dir, 32, 0, None).unwrap();
            assert_eq!((d.train.len(), d.test.len(), d.skipped), (50, 5, 0));
            assert_eq!(d.classes[0], "airplane");
            assert_eq!(d.test.labels, [3, 1, 4, 1, 5]);
            assert_eq!(&d.test.image(2)[..6], &[2, 102, 200, 2, 102, 200]);
        }
        fs::write(root.join("batches.meta.txt"), "a\nb\n").unwrap();
        assert!(error(load(DatasetKind::Cifar10, &root, 32, 0, None)).contains("2 class names"));
    }

    #[test]
    fn cifar_names_file_resize_and_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let names: String = (0..10).map(|i| format!("c{i}\n")).collect();
        fake_cifar10(tmp.path(), Some(&names));
        let d = load(DatasetKind::Cifar10, tmp.path(), 20, 9, Some(20)).unwrap();
        assert_eq!(d.classes[9], "c9");
        assert_eq!((d.train.len(), d.test.len(), d.train.size), (20, 4, 20));
        assert_eq!(d.train.pixels.len(), 20 * 20 * 20 * 3);
        let mut per_class = [0; 10];
        d.train
            .labels
            .iter()
            .for_each(|&l| per_class[l as usize] += 1);
        assert_eq!(per_class, [2; 10]);
        let again = load(DatasetKind::Cifar10, tmp.path(), 20, 9, Some(20)).unwrap();
        assert_eq!(again.train, d.train);
    }

    #[test]
    fn broken_cifar_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        fake_cifar10(tmp.path(), None);
        let mut bytes = cifar10_bytes(&[0; 10]);
        bytes.pop();
        fs::write(tmp.path().join("data_batch_3.bin"), bytes).unwrap();
        let e = error(load(DatasetKind::Cifar10, tmp.path(), 32, 0, None));
        assert!(
            e.contains("data_batch_3.bin: 30729 bytes is not a whole number of 3073-byte records"),
            "{e}"
        );
        fake_cifar10(tmp.path(), None);
        fs::write(
            tmp.path().join("test_batch.bin"),
            cifar10_bytes(&[1, 2, 12]),
        )
        .unwrap();
        let e = error(load(DatasetKind::Cifar10, tmp.path(), 32, 0, None));
        assert!(
            e.contains("test_batch.bin record 2: label 12, but CIFAR-10 has 10 classes"),
            "{e}"
        );
        let e = error(load(
            DatasetKind::Cifar10,
            &tmp.path().join("nope"),
            32,
            0,
            None,
        ));
        assert!(e.contains("no such folder"), "{e}");
    }

    #[test]
    fn cifar100_uses_fine_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cifar-100-binary");
        fs::create_dir_all(&root).unwrap();
        let record = |coarse: u8, fine: u8| [vec![coarse, fine], vec![fine; 3072]].concat();
        fs::write(
            root.join("train.bin"),
            [record(1, 99), record(2, 5)].concat(),
        )
        .unwrap();
        fs::write(root.join("test.bin"), record(19, 42)).unwrap();
        let d = load(DatasetKind::Cifar100, tmp.path(), 32, 0, None).unwrap();
        assert_eq!(
            (d.train.labels.clone(), d.test.labels.clone()),
            (vec![99, 5], vec![42])
        );
        assert_eq!((d.classes.len(), d.classes[99].as_str()), (100, "worm"));
        assert_eq!(d.train.image(0)[0], 99);
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
        let d = load(DatasetKind::Folder, tmp.path(), 4, 0, None).unwrap();
        assert_eq!(d.classes, ["cat", "dog"]);
        assert_eq!((d.train.len(), d.test.len(), d.skipped), (4, 4, 1));
        assert_eq!(d.train.labels, [0, 0, 1, 1]);
        assert_eq!(&d.train.image(1)[..3], &[40, 50, 60]);
        assert!(d.description.contains("1 unreadable"), "{}", d.description);

        fs::create_dir(tmp.path().join("test/bird")).unwrap();
        let e = error(load(DatasetKind::Folder, tmp.path(), 4, 0, None));
        assert!(e.contains("only in test/: [\"bird\"]"), "{e}");
        fs::create_dir(tmp.path().join("train/bird")).unwrap();
        let e = error(load(DatasetKind::Folder, tmp.path(), 4, 0, None));
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
        let d = load(DatasetKind::Folder, tmp.path(), 4, 1, None).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (9, 3));
        assert_eq!(d.test.labels, [0, 0, 1]);
        let again = load(DatasetKind::Folder, tmp.path(), 4, 1, None).unwrap();
        assert_eq!(again.test, d.test);
        let other = (2..20).map(|s| load(DatasetKind::Folder, tmp.path(), 4, s, None).unwrap());
        assert!(
            other.into_iter().any(|o| o.test != d.test),
            "the seed changes the split"
        );

        fs::remove_file(tmp.path().join("b/1.png")).unwrap();
        assert!(error(load(DatasetKind::Folder, tmp.path(), 4, 1, None)).contains("at least 2"));
        let empty = tempfile::tempdir().unwrap();
        assert!(
            error(load(DatasetKind::Folder, empty.path(), 4, 1, None)).contains("no class folders")
        );
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
        let e = error(load(DatasetKind::Folder, tmp.path(), 4, 0, None));
        assert!(
            e.contains("no readable training images for class \"y\""),
            "{e}"
        );
    }

    /// The real (approximate) CIFAR-10 beside the checkout (../shared), where there is one;
    /// without it the test is recorded as skipped for `scripts/test`'s closing line.
    #[test]
    fn real_cifar10() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/cifar-10-jpeg-approx-bin");
        let dir = dir.as_path();
        if !dir.join("test_batch.bin").exists() {
            let why = format!("no CIFAR-10 data at {}", dir.display());
            super::skips::skip("data::real_cifar10", &why);
            return;
        }
        let d = load(DatasetKind::Cifar10, dir, 32, 0, None).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (50_000, 10_000));
        assert_eq!(d.classes[9], "truck");
        let small = load(DatasetKind::Cifar10, dir, 48, 0, Some(1000)).unwrap();
        assert_eq!(
            (small.train.len(), small.test.len(), small.train.size),
            (1000, 200, 48)
        );
    }
}
