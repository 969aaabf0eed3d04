//! Training progress for people: one live line on a terminal, plain lines in logs (CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    live: bool,
    epoch: usize,
    epochs: usize,
    batches: usize,
    started: Instant,
    last_print: Instant,
    /// Images seen and time spent in this session of the epoch (for images/s and ETA).
    images: usize,
    first_batch: usize,
}

impl Progress {
    pub fn new(plain: bool) -> Self {
        Self {
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
        self.last_print = Instant::now() - Duration::from_secs(3600);
    }

    pub fn images_per_sec(&self) -> f64 {
        self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// After batch `done` (1-based) with `images` more images and the epoch's running means.
    pub fn batch(&mut self, done: usize, images: usize, loss: f64, acc: f64, lr: f64) {
        self.images += images;
        let interval = if self.live {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(30)
        };
        let last = done == self.batches;
        if !last && self.last_print.elapsed() < interval {
            return;
        }
        self.last_print = Instant::now();
        let rate = self.images_per_sec();
        let left = self.batches - done;
        let per_batch =
            self.started.elapsed().as_secs_f64() / (done - self.first_batch).max(1) as f64;
        let line = format!(
            "epoch {}/{} [{}] {:>3}% {done}/{} | loss {loss:.4} acc {:5.1}% | lr {lr:.2e} | {rate:.0} img/s | ETA {}",
            self.epoch + 1,
            self.epochs,
            bar(done, self.batches, 20),
            100 * done / self.batches.max(1),
            self.batches,
            100.0 * acc,
            clock(per_batch * left as f64),
        );
        let mut err = std::io::stderr().lock();
        if self.live {
            let _ = write!(err, "\r\x1b[2K{line}");
            if last {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    pub fn message(&self, text: &str) {
        eprintln!("{text}");
    }
}

fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = width * done / total.max(1);
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
