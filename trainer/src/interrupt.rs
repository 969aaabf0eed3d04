//! Ctrl-C for the whole CLI: one handler (a process can have only one), whose meaning depends on
//! what is running when it comes:
//! - a download ends the process at once, after removing its partial files
//!   ([`during_download`], [`remove_on_interrupt`]), even while a read is waiting on the network;
//! - training saves a checkpoint after the current batch, and a second Ctrl-C stops at once
//!   ([`during_training`], [`requested`]);
//! - anything else ends the process at once, as Ctrl-C does by default.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, Once};

const IDLE: u8 = 0;
const DOWNLOAD: u8 = 1;
const TRAINING: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(IDLE);
static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
/// Files that must not outlive an interrupted download.
static DOOMED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn install() {
    INSTALL.call_once(|| {
        // ctrlc runs this on a thread of its own, not in the signal handler: locking is fine.
        let _ = ctrlc::set_handler(|| match MODE.load(Ordering::SeqCst) {
            DOWNLOAD => {
                for path in DOOMED.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    let _ = std::fs::remove_file(path);
                }
                eprintln!("\ninterrupted: nothing half-downloaded was kept");
                std::process::exit(130);
            }
            TRAINING => {
                if REQUESTED.swap(true, Ordering::SeqCst) {
                    eprintln!("\nsecond Ctrl-C: stopping without saving");
                    std::process::exit(130);
                }
                eprintln!(
                    "\nCtrl-C: saving a checkpoint after this batch (press again to stop at once)"
                );
            }
            _ => std::process::exit(130),
        });
    });
}

/// Whether Ctrl-C asked the running training to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Ctrl-C means "drop the partial files and stop" until the guard is dropped.
pub fn during_download() -> Guard {
    install();
    Guard {
        previous: MODE.swap(DOWNLOAD, Ordering::SeqCst),
    }
}

/// Ctrl-C means "checkpoint and stop" from now on.
pub fn during_training() {
    install();
    MODE.store(TRAINING, Ordering::SeqCst);
}

/// Gives Ctrl-C back the meaning it had before.
pub struct Guard {
    previous: u8,
}

impl Drop for Guard {
    fn drop(&mut self) {
        MODE.store(self.previous, Ordering::SeqCst);
    }
}

/// `path` is removed if Ctrl-C comes while a download runs, until the returned value is dropped.
pub fn remove_on_interrupt(path: &Path) -> Doomed {
    DOOMED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_owned());
    Doomed(path.to_owned())
}

pub struct Doomed(PathBuf);

impl Drop for Doomed {
    fn drop(&mut self) {
        let mut doomed = DOOMED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = doomed.iter().position(|p| p == &self.0) {
            doomed.swap_remove(i);
        }
    }
}
