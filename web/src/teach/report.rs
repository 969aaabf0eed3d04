//! The Teach panel's report for `window.vitrine.teach()` (its shape is a contract with the
//! browser test) and the taught pair for `window.vitrine.taughtPair()`, the weights in base64.
//! The shapes are pure and tested natively.

use base64::Engine;
use serde::Serialize;

use crate::protocol::Backend;
use crate::teach::curve::Point;
use crate::teach::state::{Teach, Times};

impl Teach {
    /// `window.vitrine.teach()`.
    pub fn json(&self) -> String {
        let r = &self.run;
        let report = Report {
            state: self.state(),
            classes: self
                .classes
                .iter()
                .map(|c| ClassReport {
                    name: c.name(),
                    photos: c.photos.len(),
                })
                .collect(),
            step: r.step,
            steps: r.steps,
            loss: r.loss,
            train_acc: r.train_acc,
            held_out: (r.held_photos > 0).then_some(HeldReport {
                photos: r.held_photos,
                accuracy: r.held_acc,
                loss: r.held_loss,
            }),
            ms: r.ms,
            backend: r.backend.map(Backend::id),
            model: self.taught.as_ref().map(|t| t.name.as_str()),
            error: self.error.as_deref(),
            curve: &r.curve,
            adding: (self.add_jobs > 0).then_some(Adding {
                done: self.adding.0,
                total: self.adding.1,
            }),
        };
        serde_json::to_string(&report).unwrap_or_else(|_| "null".into())
    }

    /// `window.vitrine.taughtPair()`: the pair Download saves, the weights in base64.
    pub fn pair_json(&self) -> Option<String> {
        let t = self.taught.as_ref()?;
        Some(
            serde_json::json!({
                "name": t.name,
                "manifest": t.manifest,
                "bpk": base64(&t.bpk.to_vec()),
            })
            .to_string(),
        )
    }
}

#[derive(Debug, Serialize)]
struct ClassReport {
    name: String,
    photos: usize,
}

#[derive(Debug, Serialize)]
struct HeldReport {
    photos: usize,
    accuracy: Option<f32>,
    loss: Option<f32>,
}

#[derive(Debug, Serialize)]
struct Adding {
    done: usize,
    total: usize,
}

/// The shape of `window.vitrine.teach()`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    state: &'static str,
    classes: Vec<ClassReport>,
    step: usize,
    steps: usize,
    loss: Option<f32>,
    train_acc: Option<f32>,
    held_out: Option<HeldReport>,
    ms: Option<Times>,
    backend: Option<&'static str>,
    model: Option<&'a str>,
    error: Option<&'a str>,
    curve: &'a [Point],
    adding: Option<Adding>,
}

/// Standard base64 with padding (RFC 4648), for `window.vitrine.taughtPair()`.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }

    #[test]
    fn the_report_has_the_contract_shape() {
        let curve = [Point {
            step: 10,
            loss: 0.5,
            train_acc: 0.75,
            held_acc: None,
        }];
        let report = Report {
            state: "training",
            classes: vec![ClassReport {
                name: "cats".into(),
                photos: 3,
            }],
            step: 10,
            steps: 300,
            loss: Some(0.5),
            train_acc: Some(0.75),
            held_out: None,
            ms: None,
            backend: Some("cpu"),
            model: None,
            error: None,
            curve: &curve,
            adding: Some(Adding { done: 1, total: 2 }),
        };
        let v: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "state": "training",
                "classes": [{"name": "cats", "photos": 3}],
                "step": 10, "steps": 300, "loss": 0.5, "train_acc": 0.75,
                "held_out": null, "ms": null, "backend": "cpu", "model": null, "error": null,
                "curve": [{"step": 10, "loss": 0.5, "train_acc": 0.75, "held_acc": null}],
                "adding": {"done": 1, "total": 2},
            })
        );
        let held = HeldReport {
            photos: 6,
            accuracy: Some(1.0),
            loss: None,
        };
        assert_eq!(
            serde_json::to_value(&held).unwrap(),
            serde_json::json!({"photos": 6, "accuracy": 1.0, "loss": null})
        );
        let t = Times {
            features: 1.0,
            training: 2.0,
            total: 3.5,
        };
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            serde_json::json!({"features": 1.0, "training": 2.0, "total": 3.5})
        );
    }
}
