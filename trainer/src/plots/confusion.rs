//! The confusion matrix, `RUN/confusion.png` and `eval --confusion`: a heat map of true against
//! predicted classes, each row normalised, with each class's accuracy beside its row and the
//! colour bar (`colour_bar.rs`) at the right.
//!
//! One picture, one job: the file runs past 500 lines with the tests that check where its cells,
//! colours and bar land.

use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{Area, INK, MUTED, font, render, save_png, text_width};
use super::colour_bar::{colour_bar, heat};
use super::layout::{self, TicksAt};

/// Size of `confusion_png`'s picture for `classes` classes: 800 px square while cells can
/// carry text, then growing so that each of many classes still gets a cell of ~12 px.
fn confusion_size(classes: usize) -> (u32, u32) {
    let side = (400 + 12 * classes as u32).clamp(800, 2400);
    // A little wider than tall: the accuracy column and colour bar sit beside the square.
    (side + 60, side)
}

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

/// The matrix as the picture shows it: each cell's share of its row, and how that share is
/// coloured and written.
struct Shares<'a> {
    matrix: &'a [Vec<u64>],
    row_sums: Vec<u64>,
    /// Whether each cell carries its percentage (few classes).
    written: bool,
}

impl<'a> Shares<'a> {
    fn new(matrix: &'a [Vec<u64>]) -> Self {
        Self {
            matrix,
            row_sums: matrix.iter().map(|r| r.iter().sum()).collect(),
            written: matrix.len() <= CELL_TEXT_MAX_CLASSES,
        }
    }

    fn n(&self) -> usize {
        self.matrix.len()
    }

    fn share(&self, i: usize, j: usize) -> f64 {
        if self.row_sums[i] == 0 {
            0.0
        } else {
            self.matrix[i][j] as f64 / self.row_sums[i] as f64
        }
    }

    /// A share's place on the colour scale. Without numbers in the cells, the few-percent
    /// confusions that matter would be near white on a linear scale; a square-root scale
    /// lifts them (the colour bar shows it).
    fn scale(&self, v: f64) -> f64 {
        if self.written { v } else { v.sqrt() }
    }

    fn subtitle(&self) -> String {
        let total: u64 = self.row_sums.iter().sum();
        let correct: u64 = (0..self.n()).map(|i| self.matrix[i][i]).sum();
        let overall = if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64 * 100.0
        };
        format!(
            "each row (true class) sums to 100%{}  ·  overall accuracy {overall:.2}% of {} images",
            if self.written {
                ""
            } else {
                ", colour on a square-root scale"
            },
            group_thousands(total)
        )
    }

    /// Class `i`'s accuracy (its recall: the diagonal), for the column beside its row.
    fn accuracy(&self, i: usize) -> String {
        if self.row_sums[i] == 0 {
            "–".to_string()
        } else if self.written {
            format!("{:.1}%", self.share(i, i) * 100.0)
        } else {
            format!("{:.0}%", self.share(i, i) * 100.0)
        }
    }

    /// A cell's text: blank (`None`) for no images at all, "<1" for a few.
    fn cell_text(&self, i: usize, j: usize, with_sign: bool) -> Option<String> {
        if self.matrix[i][j] == 0 {
            return None;
        }
        let p = self.share(i, j) * 100.0;
        // Rounded half up: `{:.0}` rounds 0.5 to even, which would print a "0".
        let s = if p < 0.5 {
            "<1".to_string()
        } else {
            format!("{}", p.round())
        };
        Some(if with_sign { format!("{s}%") } else { s })
    }
}

/// Where the parts go, in pixels: class names left of and under the grid, the accuracy
/// column and the colour bar right of it, the whole block centred below the heading.
struct Geometry {
    /// Tick label size.
    tick: f64,
    /// The widest class name shown.
    label_w: i32,
    /// The accuracy column's width.
    acc_w: i32,
    bar_label_w: i32,
    /// A cell's side, and the grid's.
    cell: i32,
    grid: i32,
    /// The grid's top left corner.
    x0: i32,
    y0: i32,
}

const PAD: i32 = 16;
const AXIS_TITLE: f64 = 15.0;
const BAR_W: i32 = 18;

impl Geometry {
    fn new(root: &Area, shares: &Shares, shown: &[String], top: i32) -> Result<Self> {
        let n = shares.n();
        let (w, h) = root.dim_in_pixel();
        let (w, h) = (w as i32, h as i32);
        // Tick labels shrink with the cells; the 14 px of small matrices is the comfortable
        // size.
        let cell_guess = (w - 330).min(h - top - 260) as f64 / n as f64;
        let tick = if shares.written {
            14.0
        } else {
            (cell_guess * 0.85).clamp(7.0, 14.0)
        };
        let mut label_w = 0;
        for l in shown {
            label_w = label_w.max(text_width(root, l, tick)?);
        }
        let acc_w = text_width(root, "100.0%", tick)?.max(text_width(root, "accuracy", 13.0)?) + 14;
        let bar_label_w = text_width(root, "100%", 13.0)? + 4;

        let left = PAD + AXIS_TITLE as i32 + 12 + label_w + 8;
        let right = 10 + acc_w + 18 + BAR_W + 8 + bar_label_w + PAD;
        let bottom = 8 + label_w + 14 + AXIS_TITLE as i32 + PAD;
        let avail_w = w - left - right;
        let avail_h = h - top - bottom;
        let cell = (avail_w.min(avail_h) / n as i32).max(1);
        let grid = cell * n as i32;
        // Centre the whole block (labels, grid, accuracy column, bar) in the leftover space.
        Ok(Self {
            tick,
            label_w,
            acc_w,
            bar_label_w,
            cell,
            grid,
            x0: left + (avail_w - grid) / 2,
            y0: top + (avail_h - grid) / 2,
        })
    }

    /// The classes whose names are shown: with many classes, names smaller than their cells
    /// would collide, so only every few classes is named.
    fn named(&self, n: usize) -> Vec<usize> {
        let every = ((self.tick * 1.1) / self.cell as f64).ceil().max(1.0) as usize;
        (0..n).step_by(every).collect()
    }

    /// The room under the grid for the turned class names and the axis title.
    fn bottom_area(&self) -> i32 {
        8 + self.label_w + 14 + AXIS_TITLE as i32 + 4
    }
}

/// The matrix is a chart one unit per class, whose plotting area is the grid: true classes
/// from the top down (row i spans n - i - 1..n - i), predicted ones left to right.
type Grid<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<TicksAt, TicksAt>>;

/// Row `i`'s centre on the chart's y axis.
fn row_at(n: usize, i: usize) -> f64 {
    (n - i) as f64 - 0.5
}

/// The row at `y` on the chart's y axis.
fn row_of(n: usize, y: f64) -> usize {
    (n as f64 - 0.5 - y).round().clamp(0.0, (n - 1) as f64) as usize
}

fn draw_confusion(root: &Area, matrix: &[Vec<u64>], labels: &[String], title: &str) -> Result<()> {
    let shares = Shares::new(matrix);
    let n = shares.n();
    let top = layout::heading(root, title, &shares.subtitle())? + 4;
    let shown: Vec<String> = labels.iter().map(|l| shorten(l, 24)).collect();
    let geo = Geometry::new(root, &shares, &shown, top)?;
    let named = geo.named(n);

    let rows = || TicksAt::new(0.0..n as f64, named.iter().map(|&i| row_at(n, i)).collect());
    let columns = TicksAt::new(0.0..n as f64, Vec::new());
    let area = root.clone().shrink(
        (PAD, geo.y0),
        (
            (geo.x0 - PAD + geo.grid + 10 + geo.acc_w) as u32,
            (geo.grid + geo.bottom_area()) as u32,
        ),
    );
    let mut chart = ChartBuilder::on(&area)
        .y_label_area_size(geo.x0 - PAD)
        .x_label_area_size(geo.bottom_area())
        .right_y_label_area_size(10 + geo.acc_w)
        .build_cartesian_2d(columns, rows())?
        .set_secondary_coord(0f64..n as f64, rows());
    // The axes themselves are invisible: the grid has its own frame, and the ticks only
    // hold the labels 8 px off it.
    let hidden = ShapeStyle::from(TRANSPARENT);
    let class_name = |y: &f64| shown[row_of(n, *y)].clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(hidden)
        .set_all_tick_mark_size(4)
        .y_label_offset(layout::tick_label_shift(geo.tick))
        .y_label_formatter(&class_name)
        .label_style(font(geo.tick))
        .x_desc("predicted class")
        .y_desc("true class")
        .axis_desc_style(font(AXIS_TITLE))
        .draw()?;
    // Each class's accuracy beside its row, so it stays readable when the cells are tiny.
    let accuracy = |y: &f64| shares.accuracy(row_of(n, *y));
    chart
        .configure_secondary_axes()
        .axis_style(hidden)
        .set_all_tick_mark_size(5)
        .y_label_offset(layout::tick_label_shift(geo.tick))
        .y_label_formatter(&accuracy)
        .label_style(font(geo.tick))
        .draw()?;

    draw_cells(&mut chart, &shares, &geo)?;
    if shares.written {
        write_cells(&mut chart, root, &shares, &geo)?;
    }

    // Predicted classes under their columns, turned to read upwards and ending 8 px below
    // the grid (hand-placed: see layout.rs).
    for &k in &named {
        let (x, _) = chart.backend_coord(&(k as f64 + 0.5, 0.0));
        let at = (x, geo.y0 + geo.grid + 8);
        layout::text_up(
            root,
            &shown[k],
            at,
            font(geo.tick),
            HPos::Right,
            VPos::Center,
        )?;
    }
    let ax = geo.x0 + geo.grid + 10;
    let header = font(13.0).color(&MUTED);
    let at = (ax + geo.acc_w / 2 - 4, geo.y0 - 8);
    layout::text(root, "accuracy", at, header, HPos::Center, VPos::Bottom)?;

    colour_bar(
        root,
        (ax + geo.acc_w + 18, geo.y0),
        (BAR_W, geo.grid),
        geo.bar_label_w,
        shares.written,
    )
}

/// The cells in their colours, thin white lines between them while they are big enough to
/// be told apart, and the grid's frame.
fn draw_cells(chart: &mut Grid, shares: &Shares, geo: &Geometry) -> Result<()> {
    let n = shares.n();
    let span = |i: usize, j: usize| {
        let (x, y) = (j as f64, (n - i) as f64);
        [(x, y), (x + 1.0, y - 1.0)]
    };
    chart.draw_series((0..n).flat_map(|i| {
        (0..n).map(move |j| (i, j)).map(|(i, j)| {
            Rectangle::new(span(i, j), heat(shares.scale(shares.share(i, j))).filled())
        })
    }))?;
    if geo.cell >= 8 {
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
    Ok(())
}

/// Each cell's percentage, white on dark cells.
fn write_cells(chart: &mut Grid, root: &Area, shares: &Shares, geo: &Geometry) -> Result<()> {
    let n = shares.n();
    let size = (geo.cell as f64 * 0.42).clamp(9.0, 15.0);
    // The % sign only where it fits; the colour bar and subtitle say these are percent.
    let with_sign = text_width(root, "100%", size)? <= geo.cell - 8;
    let dy = layout::cap_shift(size, VPos::Center);
    let mut cells = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let Some(s) = shares.cell_text(i, j, with_sign) else {
                continue;
            };
            let ink = if shares.scale(shares.share(i, j)) > 0.5 {
                &WHITE
            } else {
                &INK
            };
            let style = font(size).color(ink).pos(Pos::new(HPos::Center, VPos::Top));
            cells.push(
                EmptyElement::at((j as f64 + 0.5, row_at(n, i))) + Text::new(s, (0, dy), style),
            );
        }
    }
    chart.draw_series(cells)?;
    Ok(())
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
    use super::super::canvas::checks::{check_png, median, pixels_of};
    use super::*;

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
    fn totals_are_grouped_by_thousands() {
        assert_eq!(group_thousands(1234567), "1,234,567");
        assert_eq!(group_thousands(999), "999");
    }
}
