//! The photos a person gave: their classes checked ([`check_classes`]) and split into those
//! that train and those held out to measure accuracy ([`Split`]).

use super::config::{
    MAX_CLASSES, MAX_PHOTOS_PER_CLASS, MIN_CLASSES, MIN_PHOTOS_FOR_HOLDOUT, refuse,
};
use crate::error::Result;
use crate::rng::Rng;

/// Checks the classes as the person gave them (names, and photos in each) and returns the
/// names as labels: trimmed, 2 to 20 of them, none empty or repeated (ignoring case), each
/// with at least one photo and at most [`MAX_PHOTOS_PER_CLASS`].
pub fn check_classes(names: &[String], counts: &[usize]) -> Result<Vec<String>> {
    let n = names.len();
    if n < MIN_CLASSES {
        return Err(refuse(format!(
            "teaching needs at least {MIN_CLASSES} classes to tell apart; there {}",
            if n == 1 { "is 1" } else { "are none" }
        )));
    }
    if n > MAX_CLASSES {
        return Err(refuse(format!(
            "at most {MAX_CLASSES} classes can be taught, not {n}"
        )));
    }
    if counts.len() != n {
        return Err(refuse(format!(
            "{n} class names for {} photo counts",
            counts.len()
        )));
    }
    let labels: Vec<String> = names.iter().map(|s| s.trim().to_string()).collect();
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Err(refuse(format!("class {} has no name", i + 1)));
        }
        if let Some(j) = labels[..i]
            .iter()
            .position(|l| l.to_lowercase() == label.to_lowercase())
        {
            return Err(refuse(format!(
                "classes {} and {} are both called '{label}': give each class its own name",
                j + 1,
                i + 1
            )));
        }
    }
    for (label, &count) in labels.iter().zip(counts) {
        if count == 0 {
            return Err(refuse(format!(
                "class '{label}' has no photo yet: give every class at least one"
            )));
        }
        if count > MAX_PHOTOS_PER_CLASS {
            return Err(refuse(format!(
                "class '{label}' has {count} photos; at most {MAX_PHOTOS_PER_CLASS} are taken"
            )));
        }
    }
    Ok(labels)
}

/// Which photos train and which are held out: `(class, photo)` pairs, in class order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    pub train: Vec<(usize, usize)>,
    pub held: Vec<(usize, usize)>,
}

impl Split {
    /// Holds out `holdout` of each class (at least one photo), chosen at random from `seed`,
    /// when every class has [`MIN_PHOTOS_FOR_HOLDOUT`] photos; otherwise every photo trains.
    pub fn new(counts: &[usize], holdout: f64, seed: u64) -> Self {
        let hold = holdout > 0.0 && counts.iter().all(|&c| c >= MIN_PHOTOS_FOR_HOLDOUT);
        let mut split = Split::default();
        for (class, &count) in counts.iter().enumerate() {
            let mut order: Vec<usize> = (0..count).collect();
            let held = if hold {
                Rng::derive(seed, &[class as u64]).shuffle(&mut order);
                ((count as f64 * holdout).round() as usize).clamp(1, count - 1)
            } else {
                0
            };
            let (out, keep) = order.split_at(held);
            let mut out = out.to_vec();
            let mut keep = keep.to_vec();
            out.sort_unstable();
            keep.sort_unstable();
            split.held.extend(out.into_iter().map(|p| (class, p)));
            split.train.extend(keep.into_iter().map(|p| (class, p)));
        }
        split
    }

    /// Held-out photos per class.
    pub fn held_per_class(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        self.held.iter().for_each(|&(c, _)| counts[c] += 1);
        counts
    }
}
