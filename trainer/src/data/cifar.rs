//! CIFAR-10 and CIFAR-100 as the official archives unpack them: binary batches of records
//! (label bytes, then 32x32 pixels in R, G and B planes), and a text file of class names.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::RgbImage;
use rayon::prelude::*;
use vit::preprocess::fit_square;
use vit::rng::Rng;

use super::samples::{Dataset, Samples, balanced_subset};

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

pub(super) fn load(
    fmt: &CifarFormat,
    dir: &Path,
    image_size: u32,
    seed: u64,
    limit: Option<usize>,
) -> Result<Dataset> {
    let root = find_root(fmt, dir)?;
    let classes = names_at(fmt, &root)?;
    let mut train = Samples::empty(CIFAR_SIDE);
    for file in fmt.train_files {
        append_cifar_file(fmt, &root.join(file), &mut train)?;
    }
    let mut test = Samples::empty(CIFAR_SIDE);
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
pub(super) fn find_root(fmt: &CifarFormat, dir: &Path) -> Result<PathBuf> {
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

/// Class names from a text file, one per line (blank lines skipped): CIFAR's names files, and
/// `import-timm --labels`.
pub fn read_names(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// The class names of the CIFAR variant in `dir` (or in the folder its archive unpacks to).
pub(super) fn class_names(fmt: &CifarFormat, dir: &Path) -> Result<Vec<String>> {
    names_at(fmt, &find_root(fmt, dir)?)
}

/// The names file's classes, or the official names where the file is missing.
fn names_at(fmt: &CifarFormat, root: &Path) -> Result<Vec<String>> {
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

// The recorder that tests/cli.rs and tests/gpu.rs share, for this crate's own skips.
#[cfg(test)]
#[path = "../../../tests/support/skips.rs"]
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

    fn error(r: Result<Dataset>) -> String {
        format!("{:#}", r.err().expect("an error"))
    }

    #[test]
    fn cifar10_records_become_hwc_from_parent_or_own_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cifar-10-batches-bin");
        fake_cifar10(&root, None);
        for dir in [tmp.path(), root.as_path()] {
            let d = load(&CIFAR10, dir, 32, 0, None).unwrap();
            assert_eq!((d.train.len(), d.test.len(), d.skipped), (50, 5, 0));
            assert_eq!(d.classes[0], "airplane");
            assert_eq!(d.test.labels, [3, 1, 4, 1, 5]);
            assert_eq!(&d.test.image(2)[..6], &[2, 102, 200, 2, 102, 200]);
        }
        fs::write(root.join("batches.meta.txt"), "a\nb\n").unwrap();
        assert!(error(load(&CIFAR10, &root, 32, 0, None)).contains("2 class names"));
    }

    #[test]
    fn cifar_names_file_resize_and_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let names: String = (0..10).map(|i| format!("c{i}\n")).collect();
        fake_cifar10(tmp.path(), Some(&names));
        let d = load(&CIFAR10, tmp.path(), 20, 9, Some(20)).unwrap();
        assert_eq!(d.classes[9], "c9");
        assert_eq!((d.train.len(), d.test.len(), d.train.size), (20, 4, 20));
        assert_eq!(d.train.pixels.len(), 20 * 20 * 20 * 3);
        let mut per_class = [0; 10];
        d.train
            .labels
            .iter()
            .for_each(|&l| per_class[l as usize] += 1);
        assert_eq!(per_class, [2; 10]);
        let again = load(&CIFAR10, tmp.path(), 20, 9, Some(20)).unwrap();
        assert_eq!(again.train, d.train);
    }

    #[test]
    fn broken_cifar_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        fake_cifar10(tmp.path(), None);
        let mut bytes = cifar10_bytes(&[0; 10]);
        bytes.pop();
        fs::write(tmp.path().join("data_batch_3.bin"), bytes).unwrap();
        let e = error(load(&CIFAR10, tmp.path(), 32, 0, None));
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
        let e = error(load(&CIFAR10, tmp.path(), 32, 0, None));
        assert!(
            e.contains("test_batch.bin record 2: label 12, but CIFAR-10 has 10 classes"),
            "{e}"
        );
        let e = error(load(&CIFAR10, &tmp.path().join("nope"), 32, 0, None));
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
        let d = load(&CIFAR100, tmp.path(), 32, 0, None).unwrap();
        assert_eq!(
            (d.train.labels.clone(), d.test.labels.clone()),
            (vec![99, 5], vec![42])
        );
        assert_eq!((d.classes.len(), d.classes[99].as_str()), (100, "worm"));
        assert_eq!(d.train.image(0)[0], 99);
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
            super::skips::skip("data::cifar::real_cifar10", &why);
            return;
        }
        let d = load(&CIFAR10, dir, 32, 0, None).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (50_000, 10_000));
        assert_eq!(d.classes[9], "truck");
        let small = load(&CIFAR10, dir, 48, 0, Some(1000)).unwrap();
        assert_eq!(
            (small.train.len(), small.test.len(), small.train.size),
            (1000, 200, 48)
        );
    }
}
