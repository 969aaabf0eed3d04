//! Training-time augmentation on 8-bit RGB images, batch assembly, and a threaded loader.
//!
//! Per image: random crop after zero padding, horizontal flip, RandAugment (timm's op set and
//! ranges). Per batch: mixup or cutmix against the reversed batch, as timm does. Everything is
//! driven by an explicit [`Rng`], so a batch depends only on (seed, epoch, batch index).

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use vit::Normalization;

use crate::data::Samples;
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Random crop after zero padding by this many pixels on each side; 0 = off.
    pub crop_padding: u32,
    pub hflip: bool,
    /// RandAugment ops per image; 0 = off.
    pub randaugment_n: u32,
    /// RandAugment magnitude on a 0..30 scale: an op reaches its full range at 30.
    pub randaugment_m: f32,
    /// Mixup's Beta(alpha, alpha); 0 = off.
    pub mixup_alpha: f32,
    /// Cutmix's Beta(alpha, alpha); 0 = off.
    pub cutmix_alpha: f32,
    /// Chance that a batch is mixed at all, when mixup or cutmix is on.
    pub mix_prob: f32,
    pub label_smoothing: f32,
}

impl Default for AugmentConfig {
    /// Training order (shuffled, last partial batch dropped) with no augmentation at all.
    fn default() -> Self {
        Self {
            crop_padding: 0,
            hflip: false,
            randaugment_n: 0,
            randaugment_m: 0.0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            mix_prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `len x 3 x S x S`, normalised.
    pub images: Vec<f32>,
    /// `len x classes` soft targets; each row sums to 1.
    pub targets: Vec<f32>,
    /// The original hard labels, for accuracy.
    pub labels: Vec<u32>,
    pub len: usize,
}

/// Builds one batch of `indices`; `aug: None` is evaluation: no augmentation, one-hot targets.
pub fn make_batch(
    samples: &Samples,
    indices: &[usize],
    num_classes: usize,
    aug: Option<&AugmentConfig>,
    norm: &Normalization,
    rng: &mut Rng,
) -> Batch {
    let side = samples.size as usize;
    let lut = NormLut::new(norm);
    let fill = norm
        .mean
        .map(|m| (m * 255.0).round().clamp(0.0, 255.0) as u8);
    let mut images = Vec::with_capacity(indices.len() * 3 * side * side);
    let mut img = vec![0u8; samples.image_len()];
    for &i in indices {
        img.copy_from_slice(samples.image(i));
        if let Some(cfg) = aug {
            augment_image(&mut img, side, cfg, fill, rng);
        }
        lut.extend_chw(&img, &mut images);
    }
    let labels: Vec<u32> = indices.iter().map(|&i| samples.labels[i] as u32).collect();
    let smoothing = aug.map_or(0.0, |a| a.label_smoothing);
    let mut targets = smoothed_one_hot(&labels, num_classes, smoothing);
    if let Some(cfg) = aug {
        mix_batch(&mut images, &mut targets, side, num_classes, cfg, rng);
    }
    Batch {
        images,
        targets,
        labels,
        len: indices.len(),
    }
}

/// `(v / 255 - mean) / std` for every byte value, computed as `vit::preprocess` does.
struct NormLut([[f32; 256]; 3]);

impl NormLut {
    fn new(norm: &Normalization) -> Self {
        let mut lut = [[0.0; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                *out = (v as f32 / 255.0 - norm.mean[c]) / norm.std[c];
            }
        }
        Self(lut)
    }

    /// Appends an HWC image as normalised CHW.
    fn extend_chw(&self, hwc: &[u8], out: &mut Vec<f32>) {
        for c in 0..3 {
            out.extend(hwc.chunks_exact(3).map(|px| self.0[c][px[c] as usize]));
        }
    }
}

fn augment_image(
    img: &mut Vec<u8>,
    side: usize,
    cfg: &AugmentConfig,
    fill: [u8; 3],
    rng: &mut Rng,
) {
    if cfg.crop_padding > 0 {
        let pad = cfg.crop_padding as usize;
        let dx = rng.below(2 * pad + 1) as isize - pad as isize;
        let dy = rng.below(2 * pad + 1) as isize - pad as isize;
        *img = shift(img, side, dx, dy);
    }
    if cfg.hflip && rng.chance(0.5) {
        hflip(img, side);
    }
    if cfg.randaugment_n > 0 {
        let level = (cfg.randaugment_m / MAX_MAGNITUDE).clamp(0.0, 1.0);
        for _ in 0..cfg.randaugment_n {
            let op = OPS[rng.below(OPS.len())];
            // timm's RandAugment applies each chosen op with probability one half.
            if rng.chance(0.5) {
                apply_op(img, side, op, level, fill, rng);
            }
        }
    }
}

/// The crop of the zero-padded image whose top-left corner is `(pad + dx, pad + dy)`.
fn shift(img: &[u8], side: usize, dx: isize, dy: isize) -> Vec<u8> {
    let mut out = vec![0u8; img.len()];
    let s = side as isize;
    for y in 0..s {
        let sy = y + dy;
        if !(0..s).contains(&sy) {
            continue;
        }
        // The overlapping run of this row, copied in one go.
        let (x0, x1) = ((-dx).max(0), (s - dx).min(s));
        if x0 >= x1 {
            continue;
        }
        let dst = ((y * s + x0) * 3) as usize;
        let src = ((sy * s + x0 + dx) * 3) as usize;
        let n = ((x1 - x0) * 3) as usize;
        out[dst..dst + n].copy_from_slice(&img[src..src + n]);
    }
    out
}

fn hflip(img: &mut [u8], side: usize) {
    for row in img.chunks_exact_mut(side * 3) {
        for x in 0..side / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (side - 1 - x) * 3 + c);
            }
        }
    }
}

/// timm's smoothing: `smoothing / classes` everywhere, the rest on the true class.
fn smoothed_one_hot(labels: &[u32], classes: usize, smoothing: f32) -> Vec<f32> {
    let off = smoothing / classes as f32;
    let mut out = vec![off; labels.len() * classes];
    for (row, &label) in out.chunks_exact_mut(classes).zip(labels) {
        if let Some(t) = row.get_mut(label as usize) {
            *t = 1.0 - smoothing + off;
        }
    }
    out
}

/// Mixup or cutmix of each image with its mirror in the batch (image i with image len-1-i).
fn mix_batch(
    images: &mut [f32],
    targets: &mut [f32],
    side: usize,
    classes: usize,
    cfg: &AugmentConfig,
    rng: &mut Rng,
) {
    let (mixup, cutmix) = (cfg.mixup_alpha > 0.0, cfg.cutmix_alpha > 0.0);
    if !(mixup || cutmix) || !rng.chance(cfg.mix_prob) {
        return;
    }
    let use_cutmix = if mixup && cutmix {
        rng.chance(0.5)
    } else {
        cutmix
    };
    let image_len = 3 * side * side;
    let original = images.to_vec();
    let partner = |i: usize| {
        let j = original.len() / image_len - 1 - i;
        &original[j * image_len..(j + 1) * image_len]
    };
    let lam = if use_cutmix {
        let (y0, y1, x0, x1) = cut_box(side, rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha), rng);
        for (i, img) in images.chunks_exact_mut(image_len).enumerate() {
            let other = partner(i);
            for c in 0..3 {
                for y in y0..y1 {
                    let at = c * side * side + y * side;
                    img[at + x0..at + x1].copy_from_slice(&other[at + x0..at + x1]);
                }
            }
        }
        // The box was clipped at the borders, so lambda is the area really kept.
        1.0 - ((y1 - y0) * (x1 - x0)) as f32 / (side * side) as f32
    } else {
        let lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha);
        for (i, img) in images.chunks_exact_mut(image_len).enumerate() {
            for (v, &o) in img.iter_mut().zip(partner(i)) {
                *v = lam * *v + (1.0 - lam) * o;
            }
        }
        lam
    };
    let original = targets.to_vec();
    let rows = original.len() / classes;
    for (i, row) in targets.chunks_exact_mut(classes).enumerate() {
        let other = &original[(rows - 1 - i) * classes..(rows - i) * classes];
        for (t, &o) in row.iter_mut().zip(other) {
            *t = lam * *t + (1.0 - lam) * o;
        }
    }
}

/// timm's `rand_bbox`: a box of side `sqrt(1 - lam)` of the image, centred anywhere, clipped.
fn cut_box(side: usize, lam: f32, rng: &mut Rng) -> (usize, usize, usize, usize) {
    let cut = (side as f32 * (1.0 - lam).max(0.0).sqrt()) as usize;
    let (cy, cx) = (rng.below(side), rng.below(side));
    let lo = |c: usize| c.saturating_sub(cut / 2);
    let hi = |c: usize| (c + cut / 2).min(side);
    (lo(cy), hi(cy), lo(cx), hi(cx))
}

// ---------------------------------------------------------------------------------------------
// RandAugment

/// Magnitude at which every op reaches the end of its range. timm divides by 10 instead
/// (`rand-m9` is 0.9 of the range), so timm's `m9` is `randaugment_m = 27` here.
pub const MAX_MAGNITUDE: f32 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Identity,
    AutoContrast,
    Equalize,
    Rotate,
    Solarize,
    Color,
    Posterize,
    Contrast,
    Brightness,
    Sharpness,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
}

const OPS: [Op; 14] = [
    Op::Identity,
    Op::AutoContrast,
    Op::Equalize,
    Op::Rotate,
    Op::Solarize,
    Op::Color,
    Op::Posterize,
    Op::Contrast,
    Op::Brightness,
    Op::Sharpness,
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
];

/// Applies `op` at `level` in [0, 1]; the ranges are timm's "increasing" variants, so that
/// level 0 leaves the image alone and larger levels are always stronger.
fn apply_op(img: &mut [u8], side: usize, op: Op, level: f32, fill: [u8; 3], rng: &mut Rng) {
    let mut signed = |x: f32| if rng.chance(0.5) { -x } else { x };
    match op {
        Op::Identity => {}
        Op::AutoContrast => auto_contrast(img),
        Op::Equalize => equalize(img),
        Op::Rotate => {
            let (sin, cos) = signed(30.0 * level).to_radians().sin_cos();
            affine(img, side, [cos, sin, -sin, cos], [0.0, 0.0], fill);
        }
        // Pixels at or above the threshold are inverted; the threshold falls from 256 to 0.
        Op::Solarize => {
            let threshold = 256.0 - 256.0 * level;
            img.iter_mut()
                .filter(|v| **v as f32 >= threshold)
                .for_each(|v| *v = 255 - *v);
        }
        Op::Posterize => {
            let bits = 8 - (4.0 * level).round() as u32;
            let mask = (0xffu32 << (8 - bits)) as u8;
            img.iter_mut().for_each(|v| *v &= mask);
        }
        Op::Color => {
            let f = enhance_factor(signed(0.9 * level));
            let gray = img
                .chunks_exact(3)
                .flat_map(|p| [luma(p); 3])
                .collect::<Vec<_>>();
            blend_with(img, &gray, f);
        }
        Op::Contrast => {
            let f = enhance_factor(signed(0.9 * level));
            let n = (img.len() / 3).max(1) as f32;
            let mean = img.chunks_exact(3).map(|p| luma(p) as f32).sum::<f32>() / n;
            let base = vec![mean.round() as u8; img.len()];
            blend_with(img, &base, f);
        }
        Op::Brightness => {
            let f = enhance_factor(signed(0.9 * level));
            blend_with(img, &vec![0; img.len()], f);
        }
        Op::Sharpness => {
            let f = enhance_factor(signed(0.9 * level));
            let smooth = smoothed(img, side);
            blend_with(img, &smooth, f);
        }
        Op::ShearX => affine(
            img,
            side,
            [1.0, signed(0.3 * level), 0.0, 1.0],
            [0.0, 0.0],
            fill,
        ),
        Op::ShearY => affine(
            img,
            side,
            [1.0, 0.0, signed(0.3 * level), 1.0],
            [0.0, 0.0],
            fill,
        ),
        Op::TranslateX => {
            let t = signed(0.45 * level) * side as f32;
            affine(img, side, [1.0, 0.0, 0.0, 1.0], [t, 0.0], fill);
        }
        Op::TranslateY => {
            let t = signed(0.45 * level) * side as f32;
            affine(img, side, [1.0, 0.0, 0.0, 1.0], [0.0, t], fill);
        }
    }
}

/// timm keeps enhancement factors at or above 0.1: 0 would erase the image.
fn enhance_factor(delta: f32) -> f32 {
    (1.0 + delta).max(0.1)
}

/// ITU-R 601-2 luma, as PIL's "L" conversion.
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8
}

/// PIL's `Image.blend(base, img, f)`: `base + f * (img - base)`, clipped.
fn blend_with(img: &mut [u8], base: &[u8], f: f32) {
    for (v, &b) in img.iter_mut().zip(base) {
        let x = b as f32 + f * (*v as f32 - b as f32);
        *v = x.round().clamp(0.0, 255.0) as u8;
    }
}

/// Stretches each channel to the full 0..255 range.
fn auto_contrast(img: &mut [u8]) {
    for c in 0..3 {
        let channel = img.iter().skip(c).step_by(3);
        let (lo, hi) = channel.fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi <= lo {
            continue;
        }
        let scale = 255.0 / (hi - lo) as f32;
        for v in img.iter_mut().skip(c).step_by(3) {
            *v = ((*v - lo) as f32 * scale).round().min(255.0) as u8;
        }
    }
}

/// PIL's `ImageOps.equalize`, per channel.
fn equalize(img: &mut [u8]) {
    for c in 0..3 {
        let mut hist = [0usize; 256];
        img.iter()
            .skip(c)
            .step_by(3)
            .for_each(|&v| hist[v as usize] += 1);
        let Some(last) = hist.iter().rposition(|&n| n > 0) else {
            continue;
        };
        let step = (hist.iter().sum::<usize>() - hist[last]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut n = step / 2;
        for (entry, &count) in lut.iter_mut().zip(&hist) {
            *entry = (n / step).min(255) as u8;
            n += count;
        }
        img.iter_mut()
            .skip(c)
            .step_by(3)
            .for_each(|v| *v = lut[*v as usize]);
    }
}

/// PIL's SMOOTH filter (3x3, centre weight 5, total 13); the border keeps its pixels.
fn smoothed(img: &[u8], side: usize) -> Vec<u8> {
    let mut out = img.to_vec();
    for y in 1..side.saturating_sub(1) {
        for x in 1..side - 1 {
            for c in 0..3 {
                let mut sum = 0u32;
                for (dy, dx) in (0..3).flat_map(|dy| (0..3).map(move |dx| (dy, dx))) {
                    let v = img[((y + dy - 1) * side + x + dx - 1) * 3 + c] as u32;
                    sum += if (dy, dx) == (1, 1) { 5 * v } else { v };
                }
                out[(y * side + x) * 3 + c] = ((sum + 6) / 13) as u8;
            }
        }
    }
    out
}

/// Resamples the image through `source = m * (dest - centre) + centre + t` (bilinear), with
/// `fill` wherever the source lies outside.
fn affine(img: &mut [u8], side: usize, m: [f32; 4], t: [f32; 2], fill: [u8; 3]) {
    let src = img.to_vec();
    let centre = side as f32 / 2.0;
    let s = side as isize;
    let at = |x: isize, y: isize, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= s || y >= s {
            fill[c] as f32
        } else {
            src[(y as usize * side + x as usize) * 3 + c] as f32
        }
    };
    for y in 0..side {
        for x in 0..side {
            let (u, v) = (x as f32 + 0.5 - centre, y as f32 + 0.5 - centre);
            let sx = m[0] * u + m[1] * v + centre + t[0] - 0.5;
            let sy = m[2] * u + m[3] * v + centre + t[1] - 0.5;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            for c in 0..3 {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
                let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
                let value = top * (1.0 - fy) + bottom * fy;
                img[(y * side + x) * 3 + c] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loader

/// Builds batches on worker threads ahead of the training loop.
pub struct Loader {
    plan: Arc<Plan>,
    workers: usize,
    prefetch: usize,
}

/// Everything a worker needs to build any batch of any epoch.
struct Plan {
    samples: Arc<Samples>,
    num_classes: usize,
    batch_size: usize,
    aug: Option<AugmentConfig>,
    norm: Normalization,
    seed: u64,
}

impl Plan {
    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.samples.len()).collect();
        if self.aug.is_some() {
            Rng::derive(self.seed, &[epoch as u64]).shuffle(&mut order);
        }
        order
    }

    fn build(&self, order: &[usize], epoch: usize, b: usize) -> Batch {
        let end = ((b + 1) * self.batch_size).min(order.len());
        let indices = &order[b * self.batch_size..end];
        let mut rng = Rng::derive(self.seed, &[epoch as u64, b as u64]);
        let aug = self.aug.as_ref();
        make_batch(
            &self.samples,
            indices,
            self.num_classes,
            aug,
            &self.norm,
            &mut rng,
        )
    }
}

impl Loader {
    /// `aug: Some` trains (shuffled, last partial batch dropped), `None` evaluates (in order,
    /// all images). `workers: 0` builds batches on the caller's thread. At most `prefetch`
    /// batches are built or waiting ahead of the consumer, so give it at least `workers`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        samples: Arc<Samples>,
        num_classes: usize,
        batch_size: usize,
        aug: Option<AugmentConfig>,
        norm: Normalization,
        seed: u64,
        workers: usize,
        prefetch: usize,
    ) -> Self {
        let batch_size = batch_size.max(1);
        let plan = Plan {
            samples,
            num_classes,
            batch_size,
            aug,
            norm,
            seed,
        };
        Self {
            plan: Arc::new(plan),
            workers,
            prefetch: prefetch.max(1),
        }
    }

    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.plan.samples.len(), self.plan.batch_size);
        if self.plan.aug.is_some() {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The batches `start_batch..` of `epoch`, in order; identical whatever the thread count
    /// and wherever the epoch starts.
    pub fn epoch(&self, epoch: usize, start_batch: usize) -> Epoch {
        let order = Arc::new(self.plan.order(epoch));
        let end = self.batches_per_epoch();
        let next = start_batch.min(end);
        let threads = self.workers.min(end - next);
        let workers = (threads > 0)
            .then(|| Workers::spawn(&self.plan, &order, epoch, next, end, threads, self.prefetch));
        Epoch {
            plan: self.plan.clone(),
            order,
            epoch,
            next,
            end,
            workers,
        }
    }
}

/// One epoch's batches; dropping it early stops and joins the workers.
pub struct Epoch {
    plan: Arc<Plan>,
    order: Arc<Vec<usize>>,
    epoch: usize,
    next: usize,
    end: usize,
    workers: Option<Workers>,
}

impl Iterator for Epoch {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.end {
            return None;
        }
        let b = self.next;
        self.next += 1;
        Some(match &mut self.workers {
            None => self.plan.build(&self.order, self.epoch, b),
            Some(w) => w.take(b),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Epoch {}

/// Worker threads claim batch indices in order, never more than `window` past the one the
/// consumer waits for, and send what they build; the consumer puts them back in order.
struct Workers {
    shared: Arc<Shared>,
    rx: Receiver<(usize, Batch)>,
    ready: BTreeMap<usize, Batch>,
    handles: Vec<JoinHandle<()>>,
}

struct Shared {
    claims: Mutex<Claims>,
    changed: Condvar,
}

struct Claims {
    next: usize,
    wanted: usize,
    end: usize,
    window: usize,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Claims> {
        // A worker that panicked holds no invariant hostage: the counters stay consistent.
        self.claims.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next batch index to build, or `None` when the epoch is done or stopped.
    fn claim(&self) -> Option<usize> {
        let mut c = self.lock();
        loop {
            if c.stop || c.next >= c.end {
                return None;
            }
            if c.next < c.wanted + c.window {
                c.next += 1;
                return Some(c.next - 1);
            }
            c = self.changed.wait(c).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn update(&self, f: impl FnOnce(&mut Claims)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

/// Stops the other workers if this one panics, so the consumer sees a closed channel instead
/// of waiting forever for the batch that will never come.
struct StopOnPanic(Arc<Shared>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.update(|c| c.stop = true);
        }
    }
}

impl Workers {
    fn spawn(
        plan: &Arc<Plan>,
        order: &Arc<Vec<usize>>,
        epoch: usize,
        start: usize,
        end: usize,
        threads: usize,
        window: usize,
    ) -> Self {
        let claims = Claims {
            next: start,
            wanted: start,
            end,
            window,
            stop: false,
        };
        let shared = Arc::new(Shared {
            claims: Mutex::new(claims),
            changed: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let handles = (0..threads)
            .map(|_| {
                let (plan, order, shared, tx) =
                    (plan.clone(), order.clone(), shared.clone(), tx.clone());
                std::thread::spawn(move || work(&plan, &order, epoch, shared, tx))
            })
            .collect();
        Self {
            shared,
            rx,
            ready: BTreeMap::new(),
            handles,
        }
    }

    fn take(&mut self, b: usize) -> Batch {
        let batch = loop {
            if let Some(batch) = self.ready.remove(&b) {
                break batch;
            }
            match self.rx.recv() {
                Ok((i, batch)) => {
                    self.ready.insert(i, batch);
                }
                Err(_) => panic!("a data loader worker panicked while building batch {b}"),
            }
        };
        self.shared.update(|c| c.wanted = b + 1);
        batch
    }
}

fn work(
    plan: &Plan,
    order: &[usize],
    epoch: usize,
    shared: Arc<Shared>,
    tx: Sender<(usize, Batch)>,
) {
    let guard = StopOnPanic(shared);
    while let Some(b) = guard.0.claim() {
        if tx.send((b, plan.build(order, epoch, b))).is_err() {
            return;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.update(|c| c.stop = true);
        for handle in self.handles.drain(..) {
            // A worker's panic was already reported on stderr; do not panic again in drop.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NORM: Normalization = Normalization::INCEPTION;

    /// `n` images of side 8, every byte distinct within an image, with labels i % 3.
    fn samples(n: usize) -> Samples {
        let mut pixels = Vec::new();
        for i in 0..n {
            pixels.extend((0..192).map(|p| ((p + 7 * i) % 251) as u8 + 1));
        }
        Samples {
            size: 8,
            pixels,
            labels: (0..n).map(|i| (i % 3) as u16).collect(),
        }
    }

    fn full_aug() -> AugmentConfig {
        AugmentConfig {
            crop_padding: 2,
            hflip: true,
            randaugment_n: 2,
            randaugment_m: 15.0,
            mixup_alpha: 0.8,
            cutmix_alpha: 1.0,
            mix_prob: 1.0,
            label_smoothing: 0.1,
        }
    }

    fn loader(n: usize, aug: Option<AugmentConfig>, workers: usize) -> Loader {
        Loader::new(Arc::new(samples(n)), 3, 4, aug, NORM, 11, workers, 3)
    }

    fn sorted(v: &[u8]) -> Vec<u8> {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    }

    #[test]
    fn batches_do_not_depend_on_threads_or_resuming() {
        let reference: Vec<Batch> = loader(30, Some(full_aug()), 0).epoch(2, 0).collect();
        assert_eq!(reference.len(), 7);
        for workers in [1, 3] {
            let got: Vec<Batch> = loader(30, Some(full_aug()), workers).epoch(2, 0).collect();
            assert_eq!(got, reference, "{workers} workers");
        }
        let resumed: Vec<Batch> = loader(30, Some(full_aug()), 3).epoch(2, 4).collect();
        assert_eq!(resumed, reference[4..]);
        let other_epoch: Vec<Batch> = loader(30, Some(full_aug()), 2).epoch(3, 0).collect();
        assert_ne!(other_epoch, reference);
        // Stopping early joins the workers instead of hanging.
        let mut epoch = loader(30, Some(full_aug()), 3).epoch(0, 0);
        assert!(epoch.next().is_some());
        drop(epoch);
    }

    #[test]
    fn eval_batches_are_plain_in_order_and_keep_the_tail() {
        let l = loader(10, None, 2);
        assert_eq!(l.batches_per_epoch(), 3);
        let batches: Vec<Batch> = l.epoch(5, 0).collect();
        assert_eq!(batches.iter().map(|b| b.len).collect::<Vec<_>>(), [4, 4, 2]);
        let s = samples(10);
        let mut want = Vec::new();
        for i in 8..10 {
            let img = image::RgbImage::from_raw(8, 8, s.image(i).to_vec()).unwrap();
            NORM.extend_chw(&img, &mut want);
        }
        assert_eq!(batches[2].images, want);
        assert_eq!(batches[2].labels, [2, 0]);
        assert_eq!(batches[2].targets, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(
            loader(10, Some(AugmentConfig::default()), 1).batches_per_epoch(),
            2
        );
    }

    #[test]
    fn training_shuffles_each_epoch_once() {
        let l = loader(12, Some(AugmentConfig::default()), 2);
        let labels: Vec<u32> = l.epoch(0, 0).flat_map(|b| b.labels).collect();
        assert_eq!(labels.len(), 12);
        assert_ne!(labels, (0..12).map(|i| i % 3).collect::<Vec<u32>>());
        let mut counts = [0; 3];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [4; 3]);
    }

    #[test]
    fn flip_and_crop_move_pixels_without_inventing_any() {
        let s = samples(1);
        let img = s.image(0);
        let mut flipped = img.to_vec();
        hflip(&mut flipped, 8);
        assert_eq!(sorted(&flipped), sorted(img));
        assert_eq!(&flipped[..3], &img[7 * 3..8 * 3]);
        assert_eq!(shift(img, 8, 0, 0), img);
        let cropped = shift(img, 8, 2, -1);
        assert_eq!(cropped.len(), img.len());
        assert_eq!(cropped[8 * 3..8 * 3 + 3], img[2 * 3..3 * 3]);
        let zeros = cropped.iter().filter(|&&v| v == 0).count();
        assert_eq!(
            zeros,
            3 * (8 + 2 * 7),
            "a row and two columns come from the padding"
        );
        assert!(cropped.iter().all(|v| *v == 0 || img.contains(v)));
    }

    #[test]
    fn targets_are_distributions_and_follow_the_mix() {
        let s = samples(6);
        for (mixup, cutmix) in [(0.8, 0.0), (0.0, 1.0), (0.5, 0.5)] {
            let cfg = AugmentConfig {
                mixup_alpha: mixup,
                cutmix_alpha: cutmix,
                ..full_aug()
            };
            for seed in 0..20 {
                let b = make_batch(
                    &s,
                    &[0, 1, 2, 3, 4, 5],
                    3,
                    Some(&cfg),
                    &NORM,
                    &mut Rng::new(seed),
                );
                assert_eq!((b.images.len(), b.targets.len()), (6 * 192, 18));
                for row in b.targets.chunks(3) {
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
                    assert!(row.iter().all(|&t| t >= 0.1 / 3.0 - 1e-6));
                }
            }
        }
    }

    #[test]
    fn cutmix_lambda_is_the_pasted_area() {
        // Two flat images, black (class 0) and white (class 1): pixels say where each came from.
        let s = Samples {
            size: 16,
            pixels: [vec![0; 768], vec![255; 768]].concat(),
            labels: vec![0, 1],
        };
        let cfg = AugmentConfig {
            cutmix_alpha: 1.0,
            ..AugmentConfig::default()
        };
        for seed in 0..20 {
            let b = make_batch(&s, &[0, 1], 2, Some(&cfg), &NORM, &mut Rng::new(seed));
            let white = b.images[..256].iter().filter(|&&v| v > 0.0).count() as f32 / 256.0;
            assert!(
                (b.targets[1] - white).abs() < 1e-6,
                "{} vs {white}",
                b.targets[1]
            );
        }
        let cfg = AugmentConfig {
            mixup_alpha: 1.0,
            ..AugmentConfig::default()
        };
        let b = make_batch(&s, &[0, 1], 2, Some(&cfg), &NORM, &mut Rng::new(1));
        let lam = b.targets[0];
        assert!((b.images[0] - (-lam + (1.0 - lam))).abs() < 1e-5);
    }

    #[test]
    fn randaugment_ops_are_safe_and_level_zero_is_identity() {
        let mut rng = Rng::new(3);
        for side in [1, 2, 8] {
            let img: Vec<u8> = (0..side * side * 3).map(|i| (i * 37 % 256) as u8).collect();
            for op in OPS {
                let mut out = img.clone();
                apply_op(&mut out, side, op, 0.0, [128; 3], &mut rng);
                if !matches!(op, Op::AutoContrast | Op::Equalize) {
                    assert_eq!(out, img, "{op:?} at level 0");
                }
                // At full strength every op but Identity changes a low-contrast picture with
                // detail in it (a full-range, flat-histogram one is already auto-contrasted and
                // equalised; and like PIL's, equalize leaves fewer than 256 pixels alone).
                if side == 8 && op != Op::Identity {
                    let dull: Vec<u8> =
                        (0..32 * 32 * 3).map(|i| 90 + (i * 37 % 61) as u8).collect();
                    let mut out = dull.clone();
                    apply_op(&mut out, 32, op, 1.0, [128; 3], &mut rng);
                    assert_ne!(out, dull, "{op:?} at level 1");
                }
            }
        }
        let mut img = vec![0, 100, 200];
        apply_op(&mut img, 1, Op::Solarize, 1.0, [0; 3], &mut rng);
        assert_eq!(img, [255, 155, 55]);
        let mut img = vec![0xff, 0x1f, 0x80];
        apply_op(&mut img, 1, Op::Posterize, 1.0, [0; 3], &mut rng);
        assert_eq!(img, [0xf0, 0x10, 0x80]);
        let mut img: Vec<u8> = (0..48).map(|i| 100 + i as u8).collect();
        auto_contrast(&mut img);
        assert_eq!((img.iter().min(), img.iter().max()), (Some(&0), Some(&255)));
    }

    #[test]
    fn rotation_by_a_quarter_turn_moves_corners() {
        let mut img = vec![0u8; 4 * 4 * 3];
        img[..3].copy_from_slice(&[255, 255, 255]);
        affine(&mut img, 4, [0.0, 1.0, -1.0, 0.0], [0.0, 0.0], [0; 3]);
        assert_eq!(img.iter().filter(|&&v| v == 255).count(), 3);
        assert_eq!(&img[..3], &[0, 0, 0]);
    }
}
