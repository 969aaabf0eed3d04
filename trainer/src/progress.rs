//! Training progress for people: indicatif's live bar on a terminal, plain lines in logs (CI,
//! `--plain`), where a redrawn line would fill the log with escape codes.

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
}
