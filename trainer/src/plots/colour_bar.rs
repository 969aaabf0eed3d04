//! The colour scale of the confusion matrix: matplotlib's "Blues", and the bar that shows it
//! beside the grid.

use std::sync::LazyLock;

use anyhow::Result;
use plotters::prelude::*;

use super::canvas::{Area, MUTED, font};
use super::layout::{self, TicksAt};

/// matplotlib's sequential "Blues", as a plotters colour map: light enough at 0 that empty
/// cells read as background, dark enough at 1 for white text.
static BLUES: LazyLock<DerivedColorMap<RGBColor>> = LazyLock::new(|| {
    DerivedColorMap::new(&[
        RGBColor(247, 251, 255),
        RGBColor(222, 235, 247),
        RGBColor(198, 219, 239),
        RGBColor(158, 202, 225),
        RGBColor(107, 174, 214),
        RGBColor(66, 146, 198),
        RGBColor(33, 113, 181),
        RGBColor(8, 81, 156),
        RGBColor(8, 48, 107),
    ])
});

/// The colour of `v` in 0..1 on [`BLUES`]; anything else is 0.
pub(super) fn heat(v: f64) -> RGBColor {
    BLUES.get_color(if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    })
}

/// The colour scale beside the matrix, as tall as its grid, with its ticks in percent: a
/// chart whose y axis is the colour scale's position (square-root when `!linear`).
pub(super) fn colour_bar(
    root: &Area,
    (x, y): (i32, i32),
    (width, height): (i32, i32),
    label_w: i32,
    linear: bool,
) -> Result<()> {
    let scale = |v: f64| if linear { v } else { v.sqrt() };
    let ticks: &[u32] = if linear {
        &[0, 25, 50, 75, 100]
    } else {
        &[0, 1, 5, 10, 25, 50, 100]
    };
    let at: Vec<f64> = ticks.iter().map(|&p| scale(p as f64 / 100.0)).collect();
    // Room above and below for the end labels, which are centred on their ticks.
    let room = 10;
    let area = root.clone().shrink(
        (x, y - room),
        ((width + 8 + label_w) as u32, (height + 2 * room) as u32),
    );
    let mut chart = ChartBuilder::on(&area)
        .margin_top(room)
        .margin_bottom(room)
        .right_y_label_area_size(8 + label_w)
        .build_cartesian_2d(0f64..1f64, TicksAt::new(0.0..1.0, at.clone()))?;
    let percent = |t: &f64| {
        let nearest = at
            .iter()
            .zip(ticks)
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()));
        nearest.map_or(String::new(), |(_, p)| format!("{p}%"))
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .axis_style(MUTED)
        .set_all_tick_mark_size(4)
        .y_label_offset(layout::tick_label_shift(13.0))
        .y_label_formatter(&percent)
        .label_style(font(13.0))
        .draw()?;
    // One band per pixel row, from the scale's bottom colour to its top one.
    let steps = height.max(2);
    chart.draw_series((0..steps).map(|k| {
        let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
        let v = k as f64 / (steps - 1) as f64;
        Rectangle::new([(0.0, a), (1.0, b)], heat(v).filled())
    }))?;
    chart.draw_series([Rectangle::new(
        [(0.0, 0.0), (1.0, 1.0)],
        MUTED.stroke_width(1),
    )])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_scale_ends() {
        assert_eq!(heat(0.0), RGBColor(247, 251, 255));
        assert_eq!(heat(1.0), RGBColor(8, 48, 107));
        assert_eq!(heat(f64::NAN), heat(0.0));
    }
}
