//! The top-5 classes as horizontal bars with percentages; in grey when no class fits, so a
//! wrong class never looks like a confident answer. The class whose relevance the explorer
//! shows is outlined and says "explaining".

use vit::inference::Ranked;
use web_sys::HtmlCanvasElement;

use crate::pictures::draw::{self, fit_text, font, palette, round_rect, text};

/// One class's row: its label and bar (its button in `#pred-list` is as tall).
pub const ROW: f64 = 46.0;
/// Room inside a row for the outline of the class being explained.
const PAD: f64 = 8.0;
/// What the explained class's row says beside its label.
const EXPLAINING: &str = "explaining";

/// The bars; `explaining` is the class whose relevance step 5 shows (its row is outlined).
pub fn draw(canvas: &HtmlCanvasElement, top: &[Ranked], muted: bool, explaining: Option<usize>) {
    let (strong, soft) = if muted {
        (palette::INK_3, palette::LINE)
    } else {
        (palette::ACCENT, palette::ACCENT_SOFT)
    };
    let width = draw::css_width(canvas);
    let ctx = draw::prepare(canvas, width, ROW * top.len().max(1) as f64);
    let inner = width - 2.0 * PAD;
    for (rank, r) in top.iter().enumerate() {
        let y = rank as f64 * ROW;
        let chosen = explaining == Some(r.index);
        if chosen {
            ctx.set_fill_style_str("rgba(79,70,229,0.07)");
            round_rect(&ctx, 1.0, y + 1.0, width - 2.0, ROW - 5.0, 8.0);
            ctx.fill();
            ctx.set_stroke_style_str(palette::ACCENT);
            ctx.set_line_width(2.0);
            ctx.stroke();
        }
        let percent = format!("{:.1}%", 100.0 * r.prob);
        font(&ctx, 700, 14.0);
        let percent_w = draw::text_width(&ctx, &percent);
        text(
            &ctx,
            &percent,
            PAD + inner,
            y + 18.0,
            if rank == 0 { strong } else { palette::INK_2 },
            "right",
        );
        let tag_w = if chosen {
            font(&ctx, 700, 11.0);
            draw::text_width(&ctx, EXPLAINING) + 10.0
        } else {
            0.0
        };
        font(&ctx, if rank == 0 { 700 } else { 500 }, 14.0);
        let label = fit_text(&ctx, &r.label, inner - percent_w - 12.0 - tag_w);
        let label_w = draw::text_width(&ctx, &label);
        text(&ctx, &label, PAD, y + 18.0, palette::INK, "left");
        if chosen {
            font(&ctx, 700, 11.0);
            text(
                &ctx,
                EXPLAINING,
                PAD + label_w + 10.0,
                y + 18.0,
                palette::ACCENT,
                "left",
            );
        }

        let bar_y = y + 25.0;
        ctx.set_fill_style_str(palette::BG);
        round_rect(&ctx, PAD, bar_y, inner, 10.0, 5.0);
        ctx.fill();
        let fill = (inner * r.prob as f64).max(4.0);
        ctx.set_fill_style_str(if rank == 0 { strong } else { soft });
        round_rect(&ctx, PAD, bar_y, fill, 10.0, 5.0);
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
