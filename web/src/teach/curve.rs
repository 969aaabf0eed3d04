//! The Teach panel's training curve: the batch loss on the left axis and the accuracies (the
//! batch's, and the held-out photos' when some are held out) on the right, 0 to 100%, against
//! the steps. Redrawn after each reading of the figures (every few steps), so it grows live.
//!
//! The scales are pure ([`Frame`], [`nice_ceiling`]) and tested natively; [`draw`] paints them.

use serde::Serialize;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use crate::pictures::draw::{self, font, palette, text};

/// The curve's canvas height in CSS pixels.
pub const HEIGHT: f64 = 220.0;

/// One reading of the training figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Steps done when it was read.
    pub step: usize,
    /// The last step's batch loss (before that step's update).
    pub loss: f32,
    /// Share of that batch the model got right.
    pub train_acc: f32,
    /// Accuracy on the held-out photos, when some are held out.
    pub held_acc: Option<f32>,
}

/// The smallest of 1, 2, 2.5 and 5 times a power of ten that is at least `v`: the loss axis
/// ends on a round number. Anything not above zero (or not finite) gives 1.
pub fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let decade = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&c| c >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * decade)
}

/// Where the plot sits in the canvas (CSS pixels) and how steps, losses and accuracies map
/// onto it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    /// The x axis runs from step 0 to this.
    pub steps: usize,
    /// The loss axis runs from 0 to this.
    pub loss_max: f64,
}

/// Room for the axes' numbers and the legend.
const MARGIN_LEFT: f64 = 44.0;
const MARGIN_RIGHT: f64 = 44.0;
const MARGIN_TOP: f64 = 12.0;
const MARGIN_BOTTOM: f64 = 44.0;

impl Frame {
    /// The frame for a canvas of `width` x `height` showing `points` of a run of `steps`.
    pub fn new(width: f64, height: f64, steps: usize, points: &[Point]) -> Self {
        let top_loss = points
            .iter()
            .map(|p| p.loss as f64)
            .filter(|l| l.is_finite())
            .fold(0.0, f64::max);
        Self {
            left: MARGIN_LEFT,
            top: MARGIN_TOP,
            width: (width - MARGIN_LEFT - MARGIN_RIGHT).max(10.0),
            height: (height - MARGIN_TOP - MARGIN_BOTTOM).max(10.0),
            steps: steps.max(1),
            loss_max: nice_ceiling(top_loss),
        }
    }

    pub fn x(&self, step: usize) -> f64 {
        self.left + self.width * (step.min(self.steps) as f64 / self.steps as f64)
    }

    /// The loss's height, clamped to the plot (a loss off the axis stays on its edge).
    pub fn loss_y(&self, loss: f64) -> f64 {
        let t = if loss.is_finite() {
            (loss / self.loss_max).clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.top + self.height * (1.0 - t)
    }

    /// An accuracy's height (0 to 1, clamped).
    pub fn acc_y(&self, acc: f64) -> f64 {
        let t = if acc.is_finite() {
            acc.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.top + self.height * (1.0 - t)
    }
}

/// The curve in words, for the canvas's `aria-label`.
pub fn describe(points: &[Point], steps: usize) -> String {
    let Some(last) = points.last() else {
        return "The training curve appears here when you train".into();
    };
    let first = points[0];
    let mut s = format!(
        "Training curve: step {} of {steps}, batch loss from {:.3} to {:.3}, batch accuracy {:.0}%",
        last.step,
        first.loss,
        last.loss,
        100.0 * last.train_acc
    );
    if let Some(h) = last.held_acc {
        s += &format!(", held-out accuracy {:.0}%", 100.0 * h);
    }
    s
}

const LOSS: &str = palette::ACCENT;
const TRAIN_ACC: &str = palette::INK_3;
const HELD_ACC: &str = palette::CLS;

/// Draws the curve of a run of `steps` steps; `held` says whether photos are held out (the
/// legend names their line only then).
pub fn draw(canvas: &HtmlCanvasElement, points: &[Point], steps: usize, held: bool) {
    let width = draw::css_width(canvas);
    let ctx = draw::prepare(canvas, width, HEIGHT);
    ctx.set_fill_style_str(palette::BG);
    draw::round_rect(&ctx, 0.0, 0.0, width, HEIGHT, 10.0);
    ctx.fill();
    if points.is_empty() {
        font(&ctx, 500, 13.0);
        text(
            &ctx,
            "The training curve appears here",
            width / 2.0,
            HEIGHT / 2.0 + 4.0,
            palette::INK_3,
            "center",
        );
        return;
    }
    let f = Frame::new(width, HEIGHT, steps, points);
    axes(&ctx, &f);
    let line = |colour: &str, dash: bool, ys: &dyn Fn(&Point) -> Option<f64>| {
        ctx.set_stroke_style_str(colour);
        ctx.set_line_width(2.0);
        let pattern = js_sys::Array::new();
        if dash {
            pattern.push(&5.0.into());
            pattern.push(&4.0.into());
        }
        let _ = ctx.set_line_dash(&pattern);
        ctx.begin_path();
        let mut started = false;
        for p in points {
            let Some(y) = ys(p) else { continue };
            if started {
                ctx.line_to(f.x(p.step), y);
            } else {
                ctx.move_to(f.x(p.step), y);
                started = true;
            }
        }
        ctx.stroke();
        // A lone reading is a dot, not an invisible line.
        if let (1, Some(p)) = (points.len(), points.first())
            && let Some(y) = ys(p)
        {
            ctx.set_fill_style_str(colour);
            ctx.begin_path();
            let _ = ctx.arc(f.x(p.step), y, 3.0, 0.0, std::f64::consts::TAU);
            ctx.fill();
        }
    };
    line(TRAIN_ACC, true, &|p| Some(f.acc_y(p.train_acc as f64)));
    if held {
        line(HELD_ACC, false, &|p| p.held_acc.map(|a| f.acc_y(a as f64)));
    }
    line(LOSS, false, &|p| Some(f.loss_y(p.loss as f64)));
    let _ = ctx.set_line_dash(&js_sys::Array::new());
    legend(&ctx, &f, held);
}

fn axes(ctx: &CanvasRenderingContext2d, f: &Frame) {
    font(ctx, 500, 11.0);
    for i in 0..=4 {
        let t = i as f64 / 4.0;
        let y = f.top + f.height * (1.0 - t);
        ctx.set_stroke_style_str(palette::LINE);
        ctx.set_line_width(1.0);
        ctx.begin_path();
        ctx.move_to(f.left, y);
        ctx.line_to(f.left + f.width, y);
        ctx.stroke();
        let loss = t * f.loss_max;
        let digits = if f.loss_max < 1.0 { 2 } else { 1 };
        text(
            ctx,
            &format!("{loss:.digits$}"),
            f.left - 6.0,
            y + 4.0,
            LOSS,
            "right",
        );
        text(
            ctx,
            &format!("{:.0}%", 100.0 * t),
            f.left + f.width + 6.0,
            y + 4.0,
            palette::INK_2,
            "left",
        );
    }
    let bottom = f.top + f.height;
    for i in 0..=4 {
        let step = f.steps * i / 4;
        text(
            ctx,
            &step.to_string(),
            f.x(step),
            bottom + 14.0,
            palette::INK_3,
            "center",
        );
    }
}

fn legend(ctx: &CanvasRenderingContext2d, f: &Frame, held: bool) {
    font(ctx, 600, 11.0);
    let y = f.top + f.height + 34.0;
    let mut x = f.left;
    let mut entries = vec![
        (LOSS, false, "batch loss (left)"),
        (TRAIN_ACC, true, "batch accuracy (right)"),
    ];
    if held {
        entries.push((HELD_ACC, false, "held-out accuracy (right)"));
    }
    for (colour, dash, label) in entries {
        ctx.set_stroke_style_str(colour);
        ctx.set_line_width(2.0);
        let pattern = js_sys::Array::new();
        if dash {
            pattern.push(&4.0.into());
            pattern.push(&3.0.into());
        }
        let _ = ctx.set_line_dash(&pattern);
        ctx.begin_path();
        ctx.move_to(x, y - 4.0);
        ctx.line_to(x + 18.0, y - 4.0);
        ctx.stroke();
        let _ = ctx.set_line_dash(&js_sys::Array::new());
        text(ctx, label, x + 24.0, y, palette::INK_2, "left");
        x += 24.0 + draw::text_width(ctx, label) + 18.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(step: usize, loss: f32, train_acc: f32, held_acc: Option<f32>) -> Point {
        Point {
            step,
            loss,
            train_acc,
            held_acc,
        }
    }

    #[test]
    fn the_loss_axis_ends_on_a_round_number() {
        assert_eq!(nice_ceiling(2.3), 2.5);
        assert_eq!(nice_ceiling(0.73), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.01), 2.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert!((nice_ceiling(0.043) - 0.05).abs() < 1e-12);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }

    #[test]
    fn steps_and_values_map_into_the_plot() {
        let points = [p(10, 2.2, 0.5, Some(0.4)), p(20, 0.9, 0.9, Some(1.0))];
        let f = Frame::new(400.0, HEIGHT, 100, &points);
        assert_eq!(f.loss_max, 2.5);
        assert_eq!(f.x(0), f.left);
        assert_eq!(f.x(100), f.left + f.width);
        assert_eq!(f.x(500), f.left + f.width, "past the end stays on the edge");
        assert_eq!(f.x(50), f.left + f.width / 2.0);
        assert_eq!(f.loss_y(0.0), f.top + f.height);
        assert_eq!(f.loss_y(2.5), f.top);
        assert_eq!(f.loss_y(99.0), f.top, "clamped");
        assert_eq!(f.loss_y(f64::NAN), f.top);
        assert_eq!(f.acc_y(1.0), f.top);
        assert_eq!(f.acc_y(0.5), f.top + f.height / 2.0);
        // A tiny canvas still has a plot, and zero steps do not divide by zero.
        let tiny = Frame::new(10.0, 10.0, 0, &[]);
        assert!(tiny.width > 0.0 && tiny.height > 0.0);
        assert!(tiny.x(0).is_finite() && tiny.loss_max == 1.0);
    }

    #[test]
    fn the_curve_is_described_in_words() {
        assert!(describe(&[], 300).contains("appears here"));
        let s = describe(
            &[p(10, 2.3, 0.25, Some(0.5)), p(300, 0.41, 0.97, Some(1.0))],
            300,
        );
        assert_eq!(
            s,
            "Training curve: step 300 of 300, batch loss from 2.300 to 0.410, batch accuracy 97%, held-out accuracy 100%"
        );
        assert!(!describe(&[p(10, 1.0, 0.5, None)], 300).contains("held-out"));
    }
}
