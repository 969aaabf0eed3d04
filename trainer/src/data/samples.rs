//! A dataset in memory: each split's images as 8-bit RGB bytes with their labels, and the
//! class-balanced subsets `--limit` takes. The CIFAR and folder readers both fill these.

use vit::rng::Rng;

/// Images of one split, `size x size` RGB, row-major HWC, one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub size: u32,
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
}

impl Samples {
    pub fn empty(size: u32) -> Samples {
        Samples {
            size,
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }

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
