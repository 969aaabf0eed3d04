//! Attention pictures: the rollout over the photo, and the last layer's per-head maps.
//!
//! The maps themselves come from `vit::rollout`; this module only colours and places them.

use vit::rollout::Heatmap;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use crate::pictures::draw::{self, bitmap_rgba, blit, font, palette, round_rect, text};

/// The map as a grid-sized RGBA bitmap. Weak attention is also more transparent, so the photo
/// stays readable where the model did not look.
pub fn heat_bitmap(map: &Heatmap) -> HtmlCanvasElement {
    let values = map.normalized();
    let rgba: Vec<u8> = values
        .iter()
        .flat_map(|&v| {
            let [r, g, b] = vit::colormap::magma(v);
            [r, g, b, (255.0 * vit::colormap::alpha(v)).round() as u8]
        })
        .collect();
    let g = map.grid as u32;
    bitmap_rgba(&rgba, g, g)
}

/// Where a map is strongest, in words, for screen readers.
pub fn describe_peak(map: &Heatmap) -> String {
    let g = map.grid.max(1);
    let Some(index) = map.peak() else {
        return "empty".into();
    };
    let (row, col) = (index / g, index % g);
    let third = |i: usize, words: [&'static str; 3]| words[(i * 3 / g).min(2)];
    let vertical = third(row, ["top", "middle", "bottom"]);
    let horizontal = third(col, ["left", "centre", "right"]);
    let place = if vertical == "middle" && horizontal == "centre" {
        "the centre".to_string()
    } else if vertical == "middle" {
        format!("the middle {horizontal}")
    } else {
        format!("the {vertical} {horizontal}")
    };
    format!(
        "strongest on patch {} (row {} of {g}, column {}), in {place} of the image",
        index + 1,
        row + 1,
        col + 1
    )
}

/// The photo's crop with the rollout over it; `opacity` in [0, 1].
pub fn draw_rollout(
    canvas: &HtmlCanvasElement,
    photo: &HtmlCanvasElement,
    crop: (f64, f64, f64),
    map: &Heatmap,
    opacity: f64,
) {
    let side = draw::css_width(canvas).min(520.0);
    let ctx = draw::prepare(canvas, side, side);
    ctx.save();
    round_rect(&ctx, 0.0, 0.0, side, side, 10.0);
    ctx.clip();
    let (cx, cy, cs) = crop;
    blit(&ctx, photo, (cx, cy, cs, cs), (0.0, 0.0, side, side), true);
    ctx.set_global_alpha(opacity);
    // Smoothing turns the patch grid into a continuous field: the map is coarse, the photo
    // is not, and hard squares would suggest more precision than rollout has.
    let heat = heat_bitmap(map);
    let g = map.grid as f64;
    blit(&ctx, &heat, (0.0, 0.0, g, g), (0.0, 0.0, side, side), true);
    ctx.restore();
    mark_peak(&ctx, map, side);
}

fn mark_peak(ctx: &CanvasRenderingContext2d, map: &Heatmap, side: f64) {
    let Some(index) = map.peak() else {
        return;
    };
    let g = map.grid.max(1);
    let step = side / g as f64;
    let (x, y) = (
        (index % g) as f64 * step + step / 2.0,
        (index / g) as f64 * step + step / 2.0,
    );
    ctx.save();
    ctx.set_stroke_style_str("#fff");
    ctx.set_line_width(2.0);
    ctx.set_shadow_color("rgba(0,0,0,0.45)");
    ctx.set_shadow_blur(4.0);
    ctx.begin_path();
    let _ = ctx.arc(x, y, (step * 0.6).max(7.0), 0.0, std::f64::consts::TAU);
    ctx.stroke();
    ctx.restore();
}

/// Small multiples: the model's view under each head's class-token attention.
pub fn draw_heads(canvas: &HtmlCanvasElement, view: &HtmlCanvasElement, maps: &[Heatmap]) {
    let width = draw::css_width(canvas);
    let gap = 10.0;
    let n = maps.len().max(1);
    let fit = (((width + gap) / (84.0 + gap)).floor() as usize).clamp(1, n.min(8));
    // Balance the rows: 4 heads in a width for 3 read better as 2 + 2 than 3 + 1.
    let cols = n.div_ceil(n.div_ceil(fit));
    let cell = ((width - gap * (cols as f64 - 1.0)) / cols as f64).min(130.0);
    let rows = n.div_ceil(cols);
    let label = 18.0;
    let height = rows as f64 * (cell + label + gap) - gap;
    let ctx = draw::prepare(canvas, width, height.max(1.0));
    let size = view.width() as f64;
    for (h, map) in maps.iter().enumerate() {
        let (x, y) = (
            (h % cols) as f64 * (cell + gap),
            (h / cols) as f64 * (cell + label + gap),
        );
        ctx.save();
        round_rect(&ctx, x, y, cell, cell, 8.0);
        ctx.clip();
        blit(
            &ctx,
            view,
            (0.0, 0.0, size, size),
            (x, y, cell, cell),
            false,
        );
        ctx.set_global_alpha(0.8);
        let heat = heat_bitmap(map);
        let g = map.grid as f64;
        blit(&ctx, &heat, (0.0, 0.0, g, g), (x, y, cell, cell), false);
        ctx.restore();
        font(&ctx, 600, 12.0);
        text(
            &ctx,
            &format!("head {}", h + 1),
            x + cell / 2.0,
            y + cell + 14.0,
            palette::INK_2,
            "center",
        );
    }
}

/// A placeholder for canvases with nothing to show yet.
pub fn draw_empty(canvas: &HtmlCanvasElement, height: f64, message: &str) {
    let width = draw::css_width(canvas);
    let ctx = draw::prepare(canvas, width, height);
    ctx.set_fill_style_str(palette::BG);
    round_rect(&ctx, 0.0, 0.0, width, height, 10.0);
    ctx.fill();
    font(&ctx, 500, 13.0);
    text(
        &ctx,
        message,
        width / 2.0,
        height / 2.0 + 4.0,
        palette::INK_3,
        "center",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_named_by_patch_and_place() {
        let mut map = Heatmap {
            grid: 12,
            values: vec![0.0; 144],
        };
        map.values[12 * 11 + 1] = 1.0; // bottom row, second column
        assert_eq!(
            describe_peak(&map),
            "strongest on patch 134 (row 12 of 12, column 2), in the bottom left of the image"
        );
        map.values[12 * 6 + 6] = 2.0;
        assert!(describe_peak(&map).ends_with("in the centre of the image"));
        map.values[12 * 5 + 11] = 3.0;
        assert!(describe_peak(&map).ends_with("in the middle right of the image"));
        let empty = Heatmap {
            grid: 0,
            values: vec![],
        };
        assert_eq!(describe_peak(&empty), "empty");
    }
}
