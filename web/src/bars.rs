//! The top-5 classes as horizontal bars with percentages; in grey when no class fits, so a
//! wrong class never looks like a confident answer.

use vit::inference::Ranked;
use web_sys::HtmlCanvasElement;

use crate::draw::{self, fit_text, font, palette, round_rect, text};

/// One class's row: its label and bar (the explorer finds the clicked class by it).
pub const ROW: f64 = 46.0;

pub fn draw(canvas: &HtmlCanvasElement, top: &[Ranked], muted: bool) {
    let (strong, soft) = if muted {
        (palette::INK_3, palette::LINE)
    } else {
        (palette::ACCENT, palette::ACCENT_SOFT)
    };
    let width = draw::css_width(canvas);
    let ctx = draw::prepare(canvas, width, ROW * top.len().max(1) as f64);
    for (rank, r) in top.iter().enumerate() {
        let y = rank as f64 * ROW;
        let percent = format!("{:.1}%", 100.0 * r.prob);
        font(&ctx, 700, 14.0);
        let percent_w = draw::text_width(&ctx, &percent);
        text(
            &ctx,
            &percent,
            width,
            y + 16.0,
            if rank == 0 { strong } else { palette::INK_2 },
            "right",
        );
        font(&ctx, if rank == 0 { 700 } else { 500 }, 14.0);
        let label = fit_text(&ctx, &r.label, width - percent_w - 12.0);
        text(&ctx, &label, 0.0, y + 16.0, palette::INK, "left");

        let bar_y = y + 24.0;
        ctx.set_fill_style_str(palette::BG);
        round_rect(&ctx, 0.0, bar_y, width, 10.0, 5.0);
        ctx.fill();
        let fill = (width * r.prob as f64).max(4.0);
        ctx.set_fill_style_str(if rank == 0 { strong } else { soft });
        round_rect(&ctx, 0.0, bar_y, fill, 10.0, 5.0);
        ctx.fill();
    }
}

/// What a screen reader announces for the bars.
pub fn describe(top: &[Ranked]) -> String {
    let parts: Vec<String> = top
        .iter()
        .map(|r| format!("{} {:.1}%", r.label, 100.0 * r.prob))
        .collect();
    format!("Top {} classes: {}", top.len(), parts.join(", "))
}
