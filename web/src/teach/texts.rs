//! The Teach panel's texts: the steps asked for, durations, progress, a run's step and its
//! summary, and why files were refused. Pure, tested natively.

use crate::protocol::Backend;
use crate::teach::state::{MAX_STEPS, MIN_STEPS, Run};

/// The steps typed, if a whole number from [`MIN_STEPS`] to [`MAX_STEPS`].
pub fn parse_steps(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|s| (MIN_STEPS..=MAX_STEPS).contains(s))
        .ok_or_else(|| {
            format!(
                "Steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, not '{}'.",
                text.trim()
            )
        })
}

/// A duration as the summary says it: "3.2 s", "0.4 s", "40 ms".
pub fn seconds(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.0} ms", ms.max(0.0))
    }
}

/// "Adding photos… 3/10".
pub fn adding_text(done: usize, total: usize) -> String {
    format!("Adding photos… {done}/{total}")
}

/// "Reading your photos… 16/40".
pub fn reading_text(done: usize, total: usize) -> String {
    format!("Reading your photos… {done}/{total}")
}

/// "Step 120/300", with the figures read at that step.
pub fn step_text(run: &Run) -> String {
    let mut s = format!("Step {}/{}", run.step, run.steps);
    if let Some(loss) = run.loss {
        s += &format!(" · loss {loss:.3}");
    }
    if let Some(acc) = run.train_acc {
        s += &format!(" · batch accuracy {:.0}%", 100.0 * acc);
    }
    if let Some(acc) = run.held_acc {
        s += &format!(" · held-out accuracy {:.0}%", 100.0 * acc);
    }
    s
}

/// The sentence after a run: where and how fast it learned, and how well it does on photos
/// it never trained on.
pub fn summary(run: &Run, stopped: bool) -> String {
    let Some(ms) = run.ms else {
        return String::new();
    };
    let backend = run.backend.map_or("?", Backend::label);
    let mut s = if stopped {
        format!("Stopped after {} of {} steps. ", run.step, run.steps)
    } else {
        String::new()
    };
    s += &format!(
        "Taught in {} on {backend}: features {}, {} {} {}",
        seconds(ms.total),
        seconds(ms.features),
        run.step,
        if run.step == 1 { "step" } else { "steps" },
        seconds(ms.training)
    );
    match (run.held_photos, run.held_acc) {
        (0, _) => s += "; no photos held out (a class needs 5 photos for that)",
        (n, Some(acc)) => {
            s += &format!(
                "; held-out accuracy {:.0}% ({n} {})",
                100.0 * acc,
                if n == 1 { "photo" } else { "photos" }
            )
        }
        (_, None) => {}
    }
    s + "."
}

/// Why some files of a pick were not added: the refused ones by name, and those past a full
/// class.
pub fn refusals_text(refused: &[String], taken: usize, offered: usize, full: bool) -> String {
    let mut parts: Vec<String> = refused.to_vec();
    if full {
        parts.push(format!(
            "Took {taken} of {offered} photos: a class holds at most {}.",
            vit::teach::MAX_PHOTOS_PER_CLASS
        ));
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teach::state::Times;

    #[test]
    fn steps_are_checked() {
        assert_eq!(parse_steps(" 300 "), Ok(300));
        assert_eq!(parse_steps("10"), Ok(10));
        assert_eq!(parse_steps("2000"), Ok(2000));
        for bad in ["9", "2001", "", "abc", "1.5", "-5"] {
            let e = parse_steps(bad).unwrap_err();
            assert!(e.contains("from 10 to 2000"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_and_progress_read_well() {
        assert_eq!(seconds(3210.0), "3.2 s");
        assert_eq!(seconds(400.0), "0.4 s");
        assert_eq!(seconds(40.4), "40 ms");
        assert_eq!(adding_text(3, 10), "Adding photos… 3/10");
        assert_eq!(reading_text(16, 40), "Reading your photos… 16/40");
        let mut run = Run {
            step: 120,
            steps: 300,
            ..Run::default()
        };
        assert_eq!(step_text(&run), "Step 120/300");
        run.loss = Some(0.4123);
        run.train_acc = Some(0.9375);
        run.held_acc = Some(1.0);
        assert_eq!(
            step_text(&run),
            "Step 120/300 · loss 0.412 · batch accuracy 94% · held-out accuracy 100%"
        );
    }

    #[test]
    fn the_summary_says_where_how_fast_and_how_well() {
        let mut run = Run {
            step: 300,
            steps: 300,
            held_photos: 6,
            held_acc: Some(1.0),
            ms: Some(Times {
                features: 1100.0,
                training: 2100.0,
                total: 3240.0,
            }),
            backend: Some(Backend::Cpu),
            ..Run::default()
        };
        assert_eq!(
            summary(&run, false),
            "Taught in 3.2 s on CPU (Flex): features 1.1 s, 300 steps 2.1 s; held-out accuracy 100% (6 photos)."
        );
        run.step = 120;
        run.held_photos = 0;
        run.held_acc = None;
        run.backend = Some(Backend::WebGpu);
        assert_eq!(
            summary(&run, true),
            "Stopped after 120 of 300 steps. Taught in 3.2 s on WebGPU: features 1.1 s, 120 steps 2.1 s; no photos held out (a class needs 5 photos for that)."
        );
        assert_eq!(summary(&Run::default(), false), "");
    }

    #[test]
    fn refusals_name_the_files_and_the_limit() {
        let refused = vec!["notes.txt is not an image: unrecognised content".to_string()];
        assert_eq!(refusals_text(&refused, 3, 4, false), refused[0]);
        let s = refusals_text(&[], 1000, 1200, true);
        assert_eq!(
            s,
            format!(
                "Took 1000 of 1200 photos: a class holds at most {}.",
                vit::teach::MAX_PHOTOS_PER_CLASS
            )
        );
    }
}
