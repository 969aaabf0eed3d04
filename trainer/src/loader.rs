//! Batches built on worker threads ahead of the training loop.
//!
//! Batch `b` of epoch `e` depends only on (seed, e, b): the data order comes from
//! `Rng::derive(seed, [e])` and each batch's augmentation from `Rng::derive(seed, [e, b])`. A
//! producer thread builds the next `workers` batches at a time on a rayon pool of that many
//! threads and sends them, in order, through a bounded channel, so at most `prefetch` finished
//! batches wait ahead of the consumer and the output does not depend on the thread count.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

use rayon::prelude::*;
use vit::Normalization;

use crate::augment::AugmentConfig;
use crate::batch::{Batch, make_batch};
use crate::data::Samples;
use vit::rng::Rng;

pub struct Loader {
    plan: Arc<Plan>,
    /// `None`: batches are built on the caller's thread.
    pool: Option<Arc<rayon::ThreadPool>>,
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
        make_batch(
            &self.samples,
            indices,
            self.num_classes,
            self.aug.as_ref(),
            &self.norm,
            &mut rng,
        )
    }
}

impl Loader {
    /// `aug: Some` trains (shuffled, last partial batch dropped), `None` evaluates (in order,
    /// all images). `workers: 0` builds batches on the caller's thread. At most `prefetch`
    /// finished batches wait ahead of the consumer.
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
        let plan = Plan {
            samples,
            num_classes,
            batch_size: batch_size.max(1),
            aug,
            norm,
            seed,
        };
        // A pool that cannot be made (no threads left) builds on the caller's thread instead.
        let pool = (workers > 0)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(workers)
                    .thread_name(|i| format!("loader-{i}"))
                    .build()
                    .ok()
            })
            .flatten()
            .map(Arc::new);
        Self {
            plan: Arc::new(plan),
            pool,
            workers: workers.max(1),
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
        let source = match &self.pool {
            Some(pool) if next < end => {
                let (tx, rx) = mpsc::sync_channel(self.prefetch);
                let (plan, order, pool) = (self.plan.clone(), order.clone(), pool.clone());
                let chunk = self.workers;
                let producer = std::thread::spawn(move || {
                    for start in (next..end).step_by(chunk) {
                        let batches: Vec<Batch> = pool.install(|| {
                            (start..(start + chunk).min(end))
                                .into_par_iter()
                                .map(|b| plan.build(&order, epoch, b))
                                .collect()
                        });
                        for batch in batches {
                            // The consumer went away (the epoch was dropped): stop.
                            if tx.send(batch).is_err() {
                                return;
                            }
                        }
                    }
                });
                Source::Threads {
                    rx: Some(rx),
                    producer: Some(producer),
                }
            }
            _ => Source::Inline,
        };
        Epoch {
            plan: self.plan.clone(),
            order,
            epoch,
            next,
            end,
            source,
        }
    }
}

enum Source {
    Inline,
    Threads {
        rx: Option<Receiver<Batch>>,
        producer: Option<JoinHandle<()>>,
    },
}

/// One epoch's batches; dropping it early stops and joins the producer.
pub struct Epoch {
    plan: Arc<Plan>,
    order: Arc<Vec<usize>>,
    epoch: usize,
    next: usize,
    end: usize,
    source: Source,
}

impl Iterator for Epoch {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.end {
            return None;
        }
        let b = self.next;
        self.next += 1;
        Some(match &mut self.source {
            Source::Inline => self.plan.build(&self.order, self.epoch, b),
            Source::Threads { rx, .. } => match rx.as_ref().map(Receiver::recv) {
                Some(Ok(batch)) => batch,
                _ => panic!("a data loader worker panicked while building batch {b}"),
            },
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Epoch {}

impl Drop for Epoch {
    fn drop(&mut self) {
        if let Source::Threads { rx, producer } = &mut self.source {
            // Closing the channel first makes the producer's next send fail, so it ends.
            drop(rx.take());
            if let Some(p) = producer.take() {
                // A worker's panic was already reported on stderr; do not panic again in drop.
                let _ = p.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::tests::{full_aug, samples};

    const NORM: Normalization = Normalization::INCEPTION;

    fn loader(n: usize, aug: Option<AugmentConfig>, workers: usize) -> Loader {
        Loader::new(Arc::new(samples(n)), 3, 4, aug, NORM, 11, workers, 3)
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
}
