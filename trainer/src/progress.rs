//! Training progress for people: indicatif's live bar on a terminal, plain lines in logs (CI,
//! `--plain`), where a redrawn line would fill the log with escape codes; and the watch on the
//! loss that warns when a run is blowing up.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    /// The live bar of the current epoch; `None` in plain mode.
    bar: Option<ProgressBar>,
    live: bool,
    epoch: usize,
    epochs: usize,
    batches: usize,
    started: Instant,
    last_print: Instant,
    /// Images seen in this session of the epoch (for images/s).
    images: usize,
    first_batch: usize,
}

/// Plain mode prints a line at most this often (and after an epoch's last batch).
const PLAIN_INTERVAL: Duration = Duration::from_secs(30);

impl Progress {
    pub fn new(plain: bool) -> Self {
        Self {
            bar: None,
            live: !plain && std::io::stderr().is_terminal(),
            epoch: 0,
            epochs: 0,
            batches: 0,
            started: Instant::now(),
            last_print: Instant::now(),
            images: 0,
            first_batch: 0,
        }
    }

    pub fn start_epoch(&mut self, epoch: usize, epochs: usize, batches: usize, first_batch: usize) {
        (self.epoch, self.epochs, self.batches, self.first_batch) =
            (epoch, epochs, batches, first_batch);
        self.images = 0;
        self.started = Instant::now();
        self.last_print = Instant::now() - 2 * PLAIN_INTERVAL;
        if self.live {
            let bar = ProgressBar::with_draw_target(
                Some(batches as u64),
                ProgressDrawTarget::stderr_with_hz(5),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:20}] {percent:>3}% {pos}/{len} | {msg} | ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("#>."),
            );
            bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
            bar.set_position(first_batch as u64);
            // The ETA counts from here, not from the epoch's start, after a resume.
            bar.reset_eta();
            self.bar = Some(bar);
        }
    }

    pub fn images_per_sec(&self) -> f64 {
        self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// After batch `done` (1-based) with `images` more images and the epoch's running means.
    pub fn batch(&mut self, done: usize, images: usize, loss: f64, acc: f64, lr: f64) {
        self.images += images;
        let rate = self.images_per_sec();
        let stats = format!(
            "loss {loss:.4} acc {:5.1}% | lr {lr:.2e} | {rate:.0} img/s",
            100.0 * acc
        );
        let last = done == self.batches;
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(stats);
            if last {
                bar.finish();
            }
            return;
        }
        if !last && self.last_print.elapsed() < PLAIN_INTERVAL {
            return;
        }
        self.last_print = Instant::now();
        let per_batch =
            self.started.elapsed().as_secs_f64() / (done - self.first_batch).max(1) as f64;
        eprintln!(
            "epoch {}/{} [{}] {:>3}% {done}/{} | {stats} | ETA {}",
            self.epoch + 1,
            self.epochs,
            bar(done, self.batches, 20),
            100 * done / self.batches.max(1),
            self.batches,
            clock(per_batch * (self.batches - done) as f64),
        );
    }

    /// A line of its own, above the live bar while there is one.
    pub fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_finished() => bar.suspend(|| eprintln!("{text}")),
            _ => eprintln!("{text}"),
        }
    }
}

fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (width * done / total.max(1)).min(width);
    format!("{}{}", "#".repeat(filled), ".".repeat(width - filled))
}

/// Seconds as h:mm:ss or m:ss.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Watches the training loss for a run that blows up without reaching NaN (which stops the
/// run at once): a learning rate far too high can leave the loss in the thousands and the
/// model at chance while every epoch still finishes.
///
/// The rule: the batch loss has been above [`Self::FACTOR`] times the first batch's loss of
/// this session (or times 1, if that was lower) for [`Self::PATIENCE`] batches in a row. A
/// fresh model's first loss is about ln(classes), what guessing costs, and a healthy run's
/// falls from there; a noisy one spikes for a batch or two, not ten. The floor of 1 keeps a
/// run resumed near zero loss from warning at ordinary noise. It warns once per session.
#[derive(Default)]
pub struct LossWatch {
    first: Option<f64>,
    /// Batches in a row above the threshold.
    above: usize,
    warned: bool,
}

impl LossWatch {
    pub const FACTOR: f64 = 4.0;
    pub const PATIENCE: usize = 10;

    /// Records one batch's loss; returns the first loss the one time the rule is met.
    pub fn exploded(&mut self, loss: f64) -> Option<f64> {
        let first = *self.first.get_or_insert(loss);
        if loss > Self::FACTOR * first.max(1.0) {
            self.above += 1;
        } else {
            self.above = 0;
        }
        if self.above >= Self::PATIENCE && !self.warned {
            self.warned = true;
            return Some(first);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bar_and_clock() {
        assert_eq!(bar(5, 20, 10), "##........");
        assert_eq!(bar(25, 20, 4), "####");
        assert_eq!(clock(59.6), "1:00");
        assert_eq!(clock(3725.0), "1:02:05");
    }

    #[test]
    fn the_loss_watch_warns_once_after_ten_batches_far_above_the_first() {
        let mut watch = LossWatch::default();
        // The first loss is the reference; 4x it is the threshold (9.2 here).
        assert_eq!(watch.exploded(2.3), None);
        // Spikes shorter than ten batches, and a value at the threshold, do not count.
        for _ in 0..9 {
            assert_eq!(watch.exploded(50.0), None);
        }
        assert_eq!(watch.exploded(4.0 * 2.3), None);
        for _ in 0..9 {
            assert_eq!(watch.exploded(1e5), None);
        }
        assert_eq!(watch.exploded(1e5), Some(2.3), "the tenth in a row");
        for _ in 0..100 {
            assert_eq!(watch.exploded(1e6), None, "once only");
        }
        // A first loss under 1 counts as 1: a resumed run near zero loss is not flagged for
        // losses under 4.
        let mut watch = LossWatch::default();
        assert_eq!(watch.exploded(0.05), None);
        for _ in 0..20 {
            assert_eq!(watch.exploded(3.9), None);
        }
    }
}
