//! Training records and the pictures made from them: `RUN/metrics.csv` (one row per
//! epoch), learning curves and confusion matrices as PNG.
//!
//! Plotters draws into an in-memory RGB buffer with an embedded font (DejaVu Sans), so the
//! pictures look the same on every machine and need no system fonts; the `image` crate
//! encodes the PNG and `vit::weights::write_atomic` puts it in place, so a reader never
//! sees a half-written file while a run is still training.

use std::io::Cursor;
use std::path::Path;
use std::sync::{LazyLock, Once};

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

mod layout;

/// One row of RUN/metrics.csv.
///
/// Accuracies (`train_acc`, `top1`, `top5`) are fractions in [0, 1]; the plots show them in
/// percent. Losses are mean cross-entropy per image.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub top1: f64,
    pub top5: f64,
    pub lr: f64,
    pub images_per_sec: f64,
    pub seconds: f64,
}

/// Columns metrics.csv must have (the fields of [`EpochMetrics`], in their order): a file
/// written by a later version with extra columns still reads.
const COLUMNS: [&str; 9] = [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "top1",
    "top5",
    "lr",
    "images_per_sec",
    "seconds",
];

/// Size of `curves_png`'s picture.
pub const CURVES_SIZE: (u32, u32) = (1200, 500);

/// Size of `confusion_png`'s picture for `classes` classes: 800 px square while cells can
/// carry text, then growing so that each of many classes still gets a cell of ~12 px.
pub fn confusion_size(classes: usize) -> (u32, u32) {
    let side = (400 + 12 * classes as u32).clamp(800, 2400);
    // A little wider than tall: the accuracy column and colour bar sit beside the square.
    (side + 60, side)
}

// ---------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------

/// Writes `rows` as metrics.csv: a header, then one line per epoch. Floats are written in
/// their shortest round-trip form, so reading the file back gives exactly the same numbers.
pub fn write_csv(rows: &[EpochMetrics], out: &Path) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(COLUMNS)?;
    }
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().context("writing metrics")?;
    vit::weights::write_atomic(out, &bytes)
        .with_context(|| format!("writing metrics to {}", out.display()))
}

/// Reads metrics.csv. A missing file is an empty history (a run that has not finished an
/// epoch yet); anything unreadable is an error naming the file and line.
pub fn read_csv(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse_csv(&text).with_context(|| format!("reading {}", path.display()))
}

fn parse_csv(text: &str) -> Result<Vec<EpochMetrics>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader.headers()?.clone();
    if let Some(column) = COLUMNS.iter().find(|c| !header.iter().any(|h| h == **c)) {
        bail!("line 1: header has no `{column}` column (header: {header:?})");
    }
    reader
        .deserialize()
        .map(|row| row.map_err(|e| describe(&e, &header)))
        .collect()
}

/// A csv error as "line N: what", naming the column rather than its index.
fn describe(e: &csv::Error, header: &csv::StringRecord) -> anyhow::Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => anyhow::anyhow!("line {line}: expected {expected_len} fields, found {len}"),
        csv::ErrorKind::Deserialize { err, .. } => {
            let column = err
                .field()
                .and_then(|f| header.get(f as usize))
                .unwrap_or("?");
            anyhow::anyhow!("line {line}: `{column}`: {}", err.kind())
        }
        _ => anyhow::anyhow!("line {line}: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// Drawing basics
// ---------------------------------------------------------------------------------------

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();

const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(100, 106, 112);
const GRID_BOLD: RGBColor = RGBColor(218, 220, 224);
const GRID_LIGHT: RGBColor = RGBColor(246, 247, 248);
// Tableau colours: distinct, colour-blind tolerant, and familiar from matplotlib. Train is
// blue and test orange in both panels, so the two panels read together.
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(255, 127, 14);
const TOP5: RGBColor = RGBColor(44, 160, 44);

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Plotters' ab_glyph backend knows no fonts until one is registered; it keeps them in a
/// process-wide table, so once is enough.
fn ensure_font() {
    FONT_ONCE.call_once(|| {
        // The bytes are compiled in and known good; a failure here is a broken build.
        if register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("the embedded DejaVuSans.ttf is not a usable font");
        }
    });
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

/// Draws on a white `width` x `height` canvas and returns it encoded as PNG.
fn render(width: u32, height: u32, draw: impl FnOnce(&Area) -> Result<()>) -> Result<Vec<u8>> {
    ensure_font();
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    let img = image::RgbImage::from_raw(width, height, buf)
        .context("plot buffer does not match its size")?;
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .context("encoding PNG")?;
    Ok(png)
}

fn save_png(png: &[u8], out: &Path) -> Result<()> {
    vit::weights::write_atomic(out, png).with_context(|| format!("writing {}", out.display()))
}

fn text_width(area: &Area, s: &str, size: f64) -> Result<i32> {
    Ok(area.estimate_text_size(s, &font(size))?.0 as i32)
}

// ---------------------------------------------------------------------------------------
// Learning curves
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Confusion matrix
// ---------------------------------------------------------------------------------------

/// Classes up to which each cell carries its percentage; beyond, cells get too small.
const CELL_TEXT_MAX_CLASSES: usize = 20;

/// A heat map of `matrix[true][pred]` counts, each row normalised to 100%, with class names
/// on both axes, each class's accuracy (its recall: the diagonal) in a column at the right,
/// and a colour bar.
pub fn confusion_png(
    matrix: &[Vec<u64>],
    labels: &[String],
    title: &str,
    out: &Path,
) -> Result<()> {
    let n = matrix.len();
    if n == 0 {
        bail!("confusion matrix is empty");
    }
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != n) {
        bail!(
            "confusion matrix has {n} rows but row {i} has {} columns",
            row.len()
        );
    }
    // No labels means class indices; a wrong number of labels is a caller's mistake.
    let labels: Vec<String> = if labels.is_empty() {
        (0..n).map(|i| i.to_string()).collect()
    } else if labels.len() == n {
        labels.to_vec()
    } else {
        bail!(
            "confusion matrix has {n} classes but {} labels were given",
            labels.len()
        );
    };
    let (w, h) = confusion_size(n);
    let png = render(w, h, |root| draw_confusion(root, matrix, &labels, title))
        .context("drawing confusion matrix")?;
    save_png(&png, out)
}

fn draw_confusion(root: &Area, matrix: &[Vec<u64>], labels: &[String], title: &str) -> Result<()> {
    let n = matrix.len();
    let (w, h) = root.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let row_sums: Vec<u64> = matrix.iter().map(|r| r.iter().sum()).collect();
    let total: u64 = row_sums.iter().sum();
    let correct: u64 = (0..n).map(|i| matrix[i][i]).sum();
    let share = |i: usize, j: usize| {
        if row_sums[i] == 0 {
            0.0
        } else {
            matrix[i][j] as f64 / row_sums[i] as f64
        }
    };

    // Without numbers in the cells, the few-percent confusions that matter would be near
    // white on a linear scale; a square-root scale lifts them (the colour bar shows it).
    let written = n <= CELL_TEXT_MAX_CLASSES;
    let scale = |v: f64| if written { v } else { v.sqrt() };
    let overall = if total == 0 {
        0.0
    } else {
        correct as f64 / total as f64 * 100.0
    };
    let subtitle = format!(
        "each row (true class) sums to 100%{}  ·  overall accuracy {overall:.2}% of {} images",
        if written {
            ""
        } else {
            ", colour on a square-root scale"
        },
        group_thousands(total)
    );
    let top = layout::heading(root, title, &subtitle)? + 4;

    // Tick labels shrink with the cells; the 14 px of small matrices is the comfortable size.
    let cell_guess = (w - 330).min(h - top - 260) as f64 / n as f64;
    let tick = if written {
        14.0
    } else {
        (cell_guess * 0.85).clamp(7.0, 14.0)
    };
    let shown: Vec<String> = labels.iter().map(|l| shorten(l, 24)).collect();
    let mut label_w = 0;
    for l in &shown {
        label_w = label_w.max(text_width(root, l, tick)?);
    }
    let axis_title = 15.0;
    let pad = 16;
    let acc_w = text_width(root, "100.0%", tick)?.max(text_width(root, "accuracy", 13.0)?) + 14;
    let bar_w = 18;
    let bar_label_w = text_width(root, "100%", 13.0)? + 4;

    let left = pad + axis_title as i32 + 12 + label_w + 8;
    let right = 10 + acc_w + 18 + bar_w + 8 + bar_label_w + pad;
    let bottom = 8 + label_w + 14 + axis_title as i32 + pad;
    let avail_w = w - left - right;
    let avail_h = h - top - bottom;
    let cell = (avail_w.min(avail_h) / n as i32).max(1);
    let grid = cell * n as i32;
    // Centre the whole block (labels, grid, accuracy column, bar) in the leftover space.
    let x0 = left + (avail_w - grid) / 2;
    let y0 = top + (avail_h - grid) / 2;

    // The matrix is a chart one unit per class, whose plotting area is the grid: true
    // classes from the top down (row i spans n - i - 1..n - i), predicted ones left to
    // right. With many classes, names smaller than their cells would collide, so only
    // every `every`-th class is named.
    let every = ((tick * 1.1) / cell as f64).ceil().max(1.0) as usize;
    let named: Vec<usize> = (0..n).step_by(every).collect();
    let row_at = |i: usize| (n - i) as f64 - 0.5;
    let row_of = |y: f64| (n as f64 - 0.5 - y).round().clamp(0.0, (n - 1) as f64) as usize;
    let rows = || TicksAt::new(0.0..n as f64, named.iter().map(|&i| row_at(i)).collect());
    let columns = TicksAt::new(0.0..n as f64, Vec::new());
    let bottom_area = 8 + label_w + 14 + axis_title as i32 + 4;
    let area = root.clone().shrink(
        (pad, y0),
        (
            (x0 - pad + grid + 10 + acc_w) as u32,
            (grid + bottom_area) as u32,
        ),
    );
    let mut chart = ChartBuilder::on(&area)
        .y_label_area_size(x0 - pad)
        .x_label_area_size(bottom_area)
        .right_y_label_area_size(10 + acc_w)
        .build_cartesian_2d(columns, rows())?
        .set_secondary_coord(0f64..n as f64, rows());
    // The axes themselves are invisible: the grid has its own frame, and the ticks only
    // hold the labels 8 px off it.
    let hidden = ShapeStyle::from(TRANSPARENT);
    let class_name = |y: &f64| shown[row_of(*y)].clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(hidden)
        .set_all_tick_mark_size(4)
        .y_label_offset(layout::tick_label_shift(tick))
        .y_label_formatter(&class_name)
        .label_style(font(tick))
        .x_desc("predicted class")
        .y_desc("true class")
        .axis_desc_style(font(axis_title))
        .draw()?;
    // Each class's accuracy (its recall: the diagonal), beside its row, so it stays
    // readable when the cells are tiny.
    let accuracy = |y: &f64| {
        let i = row_of(*y);
        if row_sums[i] == 0 {
            "–".to_string()
        } else if written {
            format!("{:.1}%", share(i, i) * 100.0)
        } else {
            format!("{:.0}%", share(i, i) * 100.0)
        }
    };
    chart
        .configure_secondary_axes()
        .axis_style(hidden)
        .set_all_tick_mark_size(5)
        .y_label_offset(layout::tick_label_shift(tick))
        .y_label_formatter(&accuracy)
        .label_style(font(tick))
        .draw()?;

    let span = |i: usize, j: usize| {
        let (x, y) = (j as f64, (n - i) as f64);
        [(x, y), (x + 1.0, y - 1.0)]
    };
    chart.draw_series((0..n).flat_map(|i| {
        (0..n)
            .map(move |j| (i, j))
            .map(|(i, j)| Rectangle::new(span(i, j), heat(scale(share(i, j))).filled()))
    }))?;
    // Thin white lines separate cells while they are big enough to be told apart.
    if cell >= 8 {
        let style = WHITE.mix(0.7).stroke_width(1);
        let (size, lines) = (n as f64, (1..n).map(|k| k as f64));
        chart.draw_series(
            lines
                .clone()
                .map(|k| PathElement::new([(k, 0.0), (k, size)], style)),
        )?;
        chart.draw_series(lines.map(|k| PathElement::new([(0.0, k), (size, k)], style)))?;
    }
    chart.draw_series([Rectangle::new(
        [(0.0, 0.0), (n as f64, n as f64)],
        MUTED.stroke_width(1),
    )])?;

    // Per-cell percentages: blank for no images at all, "<1" for a few.
    if written {
        let size = (cell as f64 * 0.42).clamp(9.0, 15.0);
        // The % sign only where it fits; the colour bar and subtitle say these are percent.
        let with_sign = text_width(root, "100%", size)? <= cell - 8;
        let dy = layout::cap_shift(size, VPos::Center);
        let mut cells = Vec::new();
        for (i, row) in matrix.iter().enumerate() {
            for (j, _) in row.iter().enumerate().filter(|(_, c)| **c > 0) {
                let p = share(i, j) * 100.0;
                // Rounded half up: `{:.0}` rounds 0.5 to even, which would print a "0".
                let s = if p < 0.5 {
                    "<1".to_string()
                } else {
                    format!("{}", p.round())
                };
                let s = if with_sign { format!("{s}%") } else { s };
                let ink = if scale(share(i, j)) > 0.5 {
                    &WHITE
                } else {
                    &INK
                };
                let style = font(size).color(ink).pos(Pos::new(HPos::Center, VPos::Top));
                cells.push(
                    EmptyElement::at((j as f64 + 0.5, row_at(i))) + Text::new(s, (0, dy), style),
                );
            }
        }
        chart.draw_series(cells)?;
    }

    // Predicted classes under their columns, turned to read upwards and ending 8 px below
    // the grid (hand-placed: see layout.rs).
    for &k in &named {
        let (x, _) = chart.backend_coord(&(k as f64 + 0.5, 0.0));
        let at = (x, y0 + grid + 8);
        layout::text_up(root, &shown[k], at, font(tick), HPos::Right, VPos::Center)?;
    }
    let ax = x0 + grid + 10;
    let header = font(13.0).color(&MUTED);
    let at = (ax + acc_w / 2 - 4, y0 - 8);
    layout::text(root, "accuracy", at, header, HPos::Center, VPos::Bottom)?;

    colour_bar(
        root,
        (ax + acc_w + 18, y0),
        (bar_w, grid),
        bar_label_w,
        written,
    )
}

/// The colour scale beside the matrix, as tall as its grid, with its ticks in percent: a
/// chart whose y axis is the colour scale's position (square-root when `!linear`).
fn colour_bar(
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

/// An f64 axis whose ticks are exactly `at`. Plotters' own `with_key_points` does this too,
/// but its axes take no label formatter, and these labels are class names and percentages.
struct TicksAt {
    inner: RangedCoordf64,
    at: Vec<f64>,
}

impl TicksAt {
    fn new(range: std::ops::Range<f64>, at: Vec<f64>) -> Self {
        Self {
            inner: range.into(),
            at,
        }
    }
}

impl Ranged for TicksAt {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.at.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

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
fn heat(v: f64) -> RGBColor {
    BLUES.get_color(if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn fake_rows(epochs: usize) -> Vec<EpochMetrics> {
        (1..=epochs)
            .map(|e| {
                let t = e as f64 / epochs.max(1) as f64;
                let wiggle = ((e as f64) * 1.7).sin() * 0.01;
                EpochMetrics {
                    epoch: e,
                    train_loss: 2.3 * (-3.0 * t).exp() + 0.15 + wiggle,
                    train_acc: 0.1 + 0.85 * (1.0 - (-3.5 * t).exp()) + wiggle,
                    test_loss: 2.3 * (-2.5 * t).exp() + 0.45 + 0.2 * t * t - wiggle,
                    top1: 0.1 + 0.72 * (1.0 - (-3.0 * t).exp()) - wiggle,
                    top5: 0.5 + 0.47 * (1.0 - (-4.0 * t).exp()),
                    lr: 1e-3 * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0,
                    images_per_sec: 1234.5 + e as f64,
                    seconds: 40.25 * e as f64,
                }
            })
            .collect()
    }

    /// A deterministic matrix with a strong diagonal and a few typical confusions.
    fn fake_confusion(n: usize, per_class: u64) -> Vec<Vec<u64>> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|i| {
                let mut row = vec![0u64; n];
                let hit = per_class * (55 + next() % 40) / 100;
                row[i] = hit;
                let mut left = per_class - hit;
                // Most mistakes go to one or two neighbours, the rest scatter.
                let near = (i + 1 + (next() % 2) as usize) % n;
                let take = left * 6 / 10;
                row[near] += take;
                left -= take;
                while left > 0 {
                    let j = (next() % n as u64) as usize;
                    let k = (next() % 4 + 1).min(left);
                    row[j] += k;
                    left -= k;
                }
                row
            })
            .collect()
    }

    fn cifar10() -> Vec<String> {
        [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
        .map(String::from)
        .to_vec()
    }

    fn cifar100() -> Vec<String> {
        "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus \
         butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach \
         couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster \
         house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree \
         motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear \
         pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road \
         rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel \
         streetcar sunflower sweet_pepper table tank telephone television tiger tractor train \
         trout tulip turtle wardrobe whale willow_tree wolf woman worm"
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// Decodes a PNG and checks its size and that it has real content: a blank or
    /// text-less picture has only a handful of colours, anti-aliased plots have hundreds.
    fn check_png(path: &Path, size: (u32, u32)) {
        let img = image::open(path).expect("PNG decodes").to_rgb8();
        assert_eq!(img.dimensions(), size, "{}", path.display());
        let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(
            colours.len() > 100,
            "{} has only {} colours",
            path.display(),
            colours.len()
        );
        assert_eq!(
            std::fs::read(path).unwrap()[..8],
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]
        );
    }

    #[test]
    fn csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/metrics.csv");
        let mut rows = fake_rows(7);
        rows[3].test_loss = f64::NAN; // NaN != NaN, so compare that one by hand
        rows[4].lr = 1e-300;
        write_csv(&rows, &path).unwrap();
        let back = read_csv(&path).unwrap();
        assert_eq!(back.len(), rows.len());
        assert!(back[3].test_loss.is_nan());
        rows[3].test_loss = 0.0;
        let mut back = back;
        back[3].test_loss = 0.0;
        assert_eq!(back, rows);

        write_csv(&[], &path).unwrap();
        assert!(read_csv(&path).unwrap().is_empty());
        assert!(
            read_csv(&dir.path().join("missing.csv"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn csv_reads_columns_by_name() {
        let text = "seconds,epoch,top1,top5,lr,train_loss,train_acc,test_loss,images_per_sec,extra\n\
                    10,3,0.5,0.9,0.001,1.5,0.4,1.6,100,x\n";
        let rows = parse_csv(text).unwrap();
        assert_eq!(rows[0].epoch, 3);
        assert_eq!(rows[0].seconds, 10.0);
        assert_eq!(rows[0].top5, 0.9);
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        write_csv(&fake_rows(3), &path).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("4,0.1,0.2,oops,0.4,0.5,0.6,0.7,0.8\n");
        std::fs::write(&path, &text).unwrap();
        let err = format!("{:#}", read_csv(&path).unwrap_err());
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("test_loss"), "{err}");
        assert!(err.contains("metrics.csv"), "{err}");

        let err = format!("{:#}", parse_csv("epoch,top1\n1,2\n").unwrap_err());
        assert!(
            err.contains("line 1") && err.contains("train_loss"),
            "{err}"
        );
        let short = format!("{}\n1,2,3\n", COLUMNS.join(","));
        let err = format!("{:#}", parse_csv(&short).unwrap_err());
        assert!(
            err.contains("line 2") && err.contains("expected 9 fields"),
            "{err}"
        );
    }

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
    fn confusion_png_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion.png");
        confusion_png(
            &fake_confusion(10, 1000),
            &cifar10(),
            "CIFAR-10 test",
            &path,
        )
        .unwrap();
        check_png(&path, confusion_size(10));

        let path = dir.path().join("confusion-100.png");
        confusion_png(&fake_confusion(100, 100), &cifar100(), "CIFAR-100", &path).unwrap();
        check_png(&path, confusion_size(100));

        let bad = confusion_png(&fake_confusion(3, 10), &cifar10(), "x", &path);
        assert!(format!("{:#}", bad.unwrap_err()).contains("10 labels"));
        let ragged = vec![vec![1, 2], vec![3]];
        assert!(confusion_png(&ragged, &[], "x", &path).is_err());
    }

    /// Pixels exactly of colour `c`, as (x, y).
    fn pixels_of(img: &image::RgbImage, c: RGBColor) -> Vec<(u32, u32)> {
        img.enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [c.0, c.1, c.2])
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    fn median(mut v: Vec<u32>) -> u32 {
        v.sort_unstable();
        v[v.len() / 2]
    }

    #[test]
    fn confusion_cells_are_coloured_by_their_row_share_in_place() {
        // Nine different shares, so each cell has a colour of its own.
        let matrix = vec![vec![70, 20, 10], vec![5, 60, 35], vec![15, 30, 55]];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let labels = ["a", "b", "c"].map(String::from);
        confusion_png(&matrix, &labels, "three", &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), confusion_size(3));
        let mut centres = [[(0u32, 0u32); 3]; 3];
        for (i, row) in matrix.iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                let px = pixels_of(&img, heat(count as f64 / 100.0));
                // A cell is about 180 px square; the colour bar holds each colour in a
                // strip only a few pixels tall, and the cell's number covers a little.
                assert!(px.len() > 20_000, "cell ({i}, {j}): {} pixels", px.len());
                let xs = px.iter().map(|p| p.0).collect();
                let ys = px.iter().map(|p| p.1).collect();
                centres[i][j] = (median(xs), median(ys));
            }
        }
        for k in 0..3 {
            for m in 0..2 {
                // Predicted classes left to right, true classes top to bottom.
                assert!(centres[k][m].0 < centres[k][m + 1].0, "{centres:?}");
                assert!(centres[m][k].1 < centres[m + 1][k].1, "{centres:?}");
            }
        }
        // An empty row is drawn as zero share (the background-light end of the scale).
        let path = dir.path().join("empty.png");
        confusion_png(&[vec![0, 0], vec![0, 9]], &[], "x", &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert!(pixels_of(&img, heat(0.0)).len() > 2 * 20_000);
        assert!(pixels_of(&img, heat(1.0)).len() > 20_000);
    }

    #[test]
    fn the_colour_bar_runs_from_empty_at_the_bottom_to_full_at_the_top_of_the_grid() {
        // No cell is empty or full, so those two colours appear only in the bar.
        let matrix = vec![vec![70, 20, 10], vec![5, 60, 35], vec![15, 30, 55]];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        confusion_png(&matrix, &[], "bar", &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // A cell's colour also appears in the bar, in a band a pixel or two tall: a cell is
        // where most of its colour lies, around its median.
        let cell = |share: f64| {
            let px = pixels_of(&img, heat(share));
            let cx = median(px.iter().map(|p| p.0).collect());
            let cy = median(px.iter().map(|p| p.1).collect());
            let ys = px.iter().filter(|p| p.0.abs_diff(cx) < 20).map(|p| p.1);
            let xs = px.iter().filter(|p| p.1.abs_diff(cy) < 20).map(|p| p.0);
            (
                xs.max().unwrap(),
                ys.clone().min().unwrap(),
                ys.max().unwrap(),
            )
        };
        let (_, grid_top, _) = cell(0.7); // row 0, column 0
        let (_, _, grid_bottom) = cell(0.3); // row 2, column 1
        let (grid_right, _, _) = cell(0.35); // row 1, column 2
        // Where each colour of the scale lies on it (the first place, for repeated ones).
        let mut on_scale = std::collections::HashMap::new();
        for k in (0..=1000).rev() {
            let c = heat(k as f64 / 1000.0);
            on_scale.insert([c.0, c.1, c.2], k as f64 / 1000.0);
        }
        // The bar: the column right of the grid with the most colours of the scale.
        let scale_at = |x: u32| -> Vec<(u32, f64)> {
            (0..img.height())
                .filter_map(|y| on_scale.get(&img.get_pixel(x, y).0).map(|&v| (y, v)))
                .collect()
        };
        let bar = (grid_right + 10..img.width())
            .map(scale_at)
            .max_by_key(|c| c.len())
            .unwrap();
        let (top, bottom) = (bar[0], bar[bar.len() - 1]);
        // As tall as the grid (its frame covers a pixel at each end), full at the top, empty
        // at the bottom, and never lighter higher up.
        assert!(
            top.0.abs_diff(grid_top) <= 2,
            "bar top {top:?}, grid top {grid_top}"
        );
        assert!(
            bottom.0.abs_diff(grid_bottom) <= 2,
            "bar bottom {bottom:?}, grid bottom {grid_bottom}"
        );
        assert!(top.1 > 0.97 && bottom.1 < 0.03, "{top:?} {bottom:?}");
        assert!(bar.windows(2).all(|w| w[0].1 >= w[1].1), "{bar:?}");
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

    #[test]
    fn heat_scale_ends() {
        assert_eq!(heat(0.0), RGBColor(247, 251, 255));
        assert_eq!(heat(1.0), RGBColor(8, 48, 107));
        assert_eq!(heat(f64::NAN), heat(0.0));
        assert_eq!(group_thousands(1234567), "1,234,567");
        assert_eq!(group_thousands(999), "999");
    }
}
