//! The learning curves, `RUN/curves.png`: loss and accuracy against epoch, in two panels.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::canvas::{Area, GRID_BOLD, GRID_LIGHT, MUTED, font, render, save_png};
use super::layout;
use crate::metrics::EpochMetrics;

// Tableau colours: distinct, colour-blind tolerant, and familiar from matplotlib. Train is
// blue and test orange in both panels, so the two panels read together.
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(255, 127, 14);
const TOP5: RGBColor = RGBColor(44, 160, 44);

/// Size of `curves_png`'s picture.
const CURVES_SIZE: (u32, u32) = (1200, 500);

/// Two panels side by side: loss (train and test) and accuracy (train, test top-1, test
/// top-5, in percent) against epoch.
pub fn curves_png(rows: &[EpochMetrics], title: &str, out: &Path) -> Result<()> {
    let (w, h) = CURVES_SIZE;
    let png = render(w, h, |root| draw_curves(root, rows, title)).context("drawing curves")?;
    save_png(&png, out)
}

fn draw_curves(root: &Area, rows: &[EpochMetrics], title: &str) -> Result<()> {
    let subtitle = match rows.last() {
        None => "no epochs recorded yet".to_string(),
        Some(last) => {
            let best = rows
                .iter()
                .filter(|r| r.top1.is_finite())
                .max_by(|a, b| a.top1.total_cmp(&b.top1));
            let best = best.map_or(String::new(), |b| {
                format!(
                    "  ·  best top-1 {:.2}% at epoch {}",
                    b.top1 * 100.0,
                    b.epoch
                )
            });
            format!(
                "epoch {}: test top-1 {:.2}%, top-5 {:.2}%, loss {:.4}{best}",
                last.epoch,
                last.top1 * 100.0,
                last.top5 * 100.0,
                last.test_loss
            )
        }
    };
    let top = layout::heading(root, title, &subtitle)?;
    let (w, _) = root.dim_in_pixel();
    let body = root.margin(top as u32, 12, 12, 12);
    let (left, right) = body.split_horizontally((w as i32 - 24) / 2);

    let epochs = epoch_range(rows);
    // Markers show where the measurements are while there are few; a lone epoch has no
    // line at all, so its dots must be big enough to see.
    let marker = match rows.len() {
        0..=1 => 5,
        2..=40 => 3,
        _ => 0,
    };

    // Loss: from zero, so that the size of the drop is honest.
    let losses = rows.iter().flat_map(|r| [r.train_loss, r.test_loss]);
    let max_loss = losses.filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    let loss_top = if max_loss > 0.0 { max_loss * 1.08 } else { 1.0 };
    let loss_series: [Series; 2] = [
        ("train", TRAIN, points(rows, |r| r.train_loss)),
        ("test", TEST, points(rows, |r| r.test_loss)),
    ];
    panel(
        &left,
        "Loss",
        "cross-entropy",
        epochs.clone(),
        loss_top,
        &loss_series,
        marker,
        |v| format_axis(v, loss_top),
    )?;

    let acc_series: [Series; 3] = [
        ("train", TRAIN, points(rows, |r| r.train_acc * 100.0)),
        ("test top-1", TEST, points(rows, |r| r.top1 * 100.0)),
        ("test top-5", TOP5, points(rows, |r| r.top5 * 100.0)),
    ];
    panel(
        &right,
        "Accuracy",
        "accuracy (%)",
        epochs,
        100.0,
        &acc_series,
        marker,
        |v| format!("{v:.0}"),
    )?;
    Ok(())
}

/// Epochs shown on the x axis; a single epoch gets a neighbour on each side so that it
/// sits in the middle rather than on an edge (plotters needs a non-empty range anyway).
fn epoch_range(rows: &[EpochMetrics]) -> std::ops::Range<usize> {
    let lo = rows.iter().map(|r| r.epoch).min().unwrap_or(0);
    let hi = rows.iter().map(|r| r.epoch).max().unwrap_or(1);
    if hi > lo {
        lo..hi
    } else {
        lo.saturating_sub(1)..hi + 1
    }
}

/// Finite points only: a NaN loss (a diverged epoch) leaves a gap rather than breaking the
/// plot.
fn points(rows: &[EpochMetrics], f: impl Fn(&EpochMetrics) -> f64) -> Vec<(usize, f64)> {
    rows.iter()
        .map(|r| (r.epoch, f(r)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

fn format_axis(v: f64, top: f64) -> String {
    if top >= 10.0 {
        format!("{v:.0}")
    } else if top >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One line of a panel: legend label, colour, (epoch, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(usize, f64)>);

#[allow(clippy::too_many_arguments)]
fn panel(
    area: &Area,
    caption: &str,
    y_desc: &str,
    epochs: std::ops::Range<usize>,
    y_top: f64,
    series: &[Series],
    marker: u32,
    y_fmt: impl Fn(f64) -> String,
) -> Result<()> {
    let x_span = (epochs.start as f64, epochs.end as f64);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, font(17.0))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(48)
        .y_label_area_size(62)
        .build_cartesian_2d(epochs, 0f64..y_top)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(10)
        .y_labels(6)
        .y_label_formatter(&|v| y_fmt(*v))
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .axis_style(MUTED)
        .draw()?;
    for (label, colour, pts) in series {
        let colour = *colour;
        chart.draw_series(
            pts.iter()
                .filter(|_| marker > 0)
                .map(|&p| Circle::new(p, marker, colour.filled())),
        )?;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(3))
            });
    }
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|&(e, v)| (e as f64, v)))
        .collect();
    chart
        .configure_series_labels()
        .position(emptiest_corner(&all, x_span, (0.0, y_top)))
        .margin(12)
        .label_font(font(14.0))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID_BOLD)
        .draw()?;
    Ok(())
}

/// The corner of the plot with the fewest data points near it, for the legend: losses fall
/// and accuracies rise, but a diverged or one-epoch run does neither.
fn emptiest_corner(pts: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let in_band = |v: f64, (lo, hi): (f64, f64), high: bool| {
        let t = (v - lo) / (hi - lo).max(f64::MIN_POSITIVE);
        if high { t >= 0.55 } else { t <= 0.45 }
    };
    let count = |right: bool, upper: bool| {
        pts.iter()
            .filter(|&&(px, py)| in_band(px, x, right) && in_band(py, y, upper))
            .count()
    };
    [
        (SeriesLabelPosition::UpperRight, count(true, true)),
        (SeriesLabelPosition::LowerRight, count(true, false)),
        (SeriesLabelPosition::UpperLeft, count(false, true)),
        (SeriesLabelPosition::LowerLeft, count(false, false)),
    ]
    .into_iter()
    .min_by_key(|(_, n)| *n)
    .map(|(p, _)| p)
    .unwrap_or(SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::super::canvas::checks::{check_png, median, pixels_of};
    use super::*;
    use crate::metrics::fake_rows;

    #[test]
    fn curves_png_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        for epochs in [1, 10, 300] {
            let path = dir.path().join(format!("curves-{epochs}.png"));
            curves_png(&fake_rows(epochs), "vit-tiny on CIFAR-10", &path).unwrap();
            check_png(&path, CURVES_SIZE);
        }
        // No epochs yet still gives a picture (empty axes), not an error.
        let path = dir.path().join("curves-0.png");
        curves_png(&[], "nothing yet", &path).unwrap();
        assert_eq!(image::open(&path).unwrap().width(), CURVES_SIZE.0);
    }

    #[test]
    fn curves_show_each_series_falling_or_rising_as_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        curves_png(&fake_rows(10), "t", &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let half = CURVES_SIZE.0 / 2;
        // Median height of a colour's pixels in the first and last fifth of a panel's plot.
        let heights = |c: RGBColor, panel: u32| {
            let px: Vec<_> = pixels_of(&img, c)
                .into_iter()
                .filter(|&(x, _)| x / half == panel)
                .collect();
            assert!(
                px.len() > 100,
                "{c:?} in panel {panel}: {} pixels",
                px.len()
            );
            let (lo, hi) = (
                px.iter().map(|p| p.0).min().unwrap(),
                px.iter().map(|p| p.0).max().unwrap(),
            );
            let fifth = (hi - lo) / 5;
            let band = |from: u32, to: u32| {
                median(
                    px.iter()
                        .filter(|p| p.0 >= from && p.0 <= to)
                        .map(|p| p.1)
                        .collect(),
                )
            };
            (band(lo, lo + fifth), band(hi - fifth, hi))
        };
        // Losses fall (pixels go down the picture, y grows) ...
        for c in [TRAIN, TEST] {
            let (start, end) = heights(c, 0);
            assert!(start < end, "loss {c:?}: {start} -> {end}");
        }
        // ... accuracies rise.
        for c in [TRAIN, TEST, TOP5] {
            let (start, end) = heights(c, 1);
            assert!(start > end, "accuracy {c:?}: {start} -> {end}");
        }
    }
}
