//! Canvas basics shared by every picture on the page: sharp sizing on high-DPI screens,
//! pixels into bitmaps, rounded shapes, and the page's colours.

use image::RgbImage;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

use crate::platform::dom::{create, device_pixel_ratio};

/// Colours mirrored from www/styles/main.css, so canvas and HTML agree.
pub mod palette {
    pub const INK: &str = "#171a26";
    pub const INK_2: &str = "#4a5068";
    pub const INK_3: &str = "#7c8299";
    pub const LINE: &str = "#e3e6ef";
    pub const BG: &str = "#f5f6fa";
    pub const ACCENT: &str = "#4f46e5";
    pub const ACCENT_SOFT: &str = "#c7d2fe";
    /// The prefix tokens' frames, by kind: class, distillation, register.
    pub const CLS: &str = "#f59e0b";
    pub const DIST: &str = "#0d9488";
    pub const REG: &str = "#db2777";
    pub const FONT: &str =
        "Inter, ui-sans-serif, system-ui, -apple-system, \"Segoe UI\", Roboto, Arial, sans-serif";

    /// A prefix token's colour, by its kind, and that colour in words for legends: the
    /// explorer's strip and the animation's sequence draw each kind alike.
    pub fn prefix(kind: vit::prefix::PrefixKind) -> (&'static str, &'static str) {
        use vit::prefix::PrefixKind;
        match kind {
            PrefixKind::Class => (CLS, "amber"),
            PrefixKind::Distillation => (DIST, "teal"),
            PrefixKind::Register => (REG, "pink"),
        }
    }
}

pub fn context(canvas: &HtmlCanvasElement) -> CanvasRenderingContext2d {
    canvas
        .get_context("2d")
        .ok()
        .flatten()
        .expect("a 2D canvas context")
        .unchecked_into()
}

/// The width available to the canvas in CSS pixels: its wrapper's (index.html gives every
/// canvas an unpadded parent), so a canvas sized explicitly never feeds back into its layout.
pub fn css_width(canvas: &HtmlCanvasElement) -> f64 {
    let w = canvas
        .parent_element()
        .map_or(0.0, |p| p.client_width() as f64);
    if w > 0.0 { w } else { 320.0 }
}

/// Sizes the canvas backing store for the screen's pixel ratio and returns a context that
/// draws in CSS pixels, cleared.
pub fn prepare(canvas: &HtmlCanvasElement, width: f64, height: f64) -> CanvasRenderingContext2d {
    let dpr = device_pixel_ratio();
    let (bw, bh) = ((width * dpr).round() as u32, (height * dpr).round() as u32);
    if canvas.width() != bw || canvas.height() != bh {
        canvas.set_width(bw);
        canvas.set_height(bh);
    }
    let style = canvas.style();
    let _ = style.set_property("width", &format!("{width}px"));
    let _ = style.set_property("height", &format!("{height}px"));
    let ctx = context(canvas);
    let _ = ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
    ctx.clear_rect(0.0, 0.0, width, height);
    ctx
}

/// An off-screen canvas holding `img`, to draw (scaled, cropped) onto visible canvases.
pub fn bitmap(img: &RgbImage) -> HtmlCanvasElement {
    let (w, h) = img.dimensions();
    let rgba: Vec<u8> = img
        .pixels()
        .flat_map(|p| [p.0[0], p.0[1], p.0[2], 255])
        .collect();
    bitmap_rgba(&rgba, w, h)
}

pub fn bitmap_rgba(rgba: &[u8], w: u32, h: u32) -> HtmlCanvasElement {
    let canvas: HtmlCanvasElement = create("canvas");
    canvas.set_width(w);
    canvas.set_height(h);
    let data = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w, h)
        .expect("image data of the right length");
    let _ = context(&canvas).put_image_data(&data, 0.0, 0.0);
    canvas
}

/// Draws `src` (sx, sy, sw, sh) into (dx, dy, dw, dh); `smooth: false` keeps pixels square,
/// which is how the model's small input should look.
#[allow(clippy::too_many_arguments)]
pub fn blit(
    ctx: &CanvasRenderingContext2d,
    src: &HtmlCanvasElement,
    (sx, sy, sw, sh): (f64, f64, f64, f64),
    (dx, dy, dw, dh): (f64, f64, f64, f64),
    smooth: bool,
) {
    ctx.set_image_smoothing_enabled(smooth);
    let _ = ctx.draw_image_with_html_canvas_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
        src, sx, sy, sw, sh, dx, dy, dw, dh,
    );
}

pub fn round_rect(ctx: &CanvasRenderingContext2d, x: f64, y: f64, w: f64, h: f64, r: f64) {
    let r = r.min(w / 2.0).min(h / 2.0).max(0.0);
    ctx.begin_path();
    ctx.move_to(x + r, y);
    let _ = ctx.arc_to(x + w, y, x + w, y + h, r);
    let _ = ctx.arc_to(x + w, y + h, x, y + h, r);
    let _ = ctx.arc_to(x, y + h, x, y, r);
    let _ = ctx.arc_to(x, y, x + w, y, r);
    ctx.close_path();
}

pub fn font(ctx: &CanvasRenderingContext2d, weight: u32, px: f64) {
    ctx.set_font(&format!("{weight} {px}px {}", palette::FONT));
}

pub fn text(ctx: &CanvasRenderingContext2d, s: &str, x: f64, y: f64, colour: &str, align: &str) {
    ctx.set_fill_style_str(colour);
    ctx.set_text_align(align);
    let _ = ctx.fill_text(s, x, y);
}

pub fn text_width(ctx: &CanvasRenderingContext2d, s: &str) -> f64 {
    ctx.measure_text(s).map_or(0.0, |m| m.width())
}

/// Cuts `s` with an ellipsis so it fits `max` CSS pixels.
pub fn fit_text(ctx: &CanvasRenderingContext2d, s: &str, max: f64) -> String {
    if text_width(ctx, s) <= max {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    for n in (0..chars.len()).rev() {
        let candidate: String = chars[..n].iter().collect::<String>() + "…";
        if text_width(ctx, &candidate) <= max {
            return candidate;
        }
    }
    String::new()
}

pub fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

/// Progress of `t` through [start, start + len], clamped to [0, 1].
pub fn phase(t: f64, start: f64, len: f64) -> f64 {
    ((t - start) / len).clamp(0.0, 1.0)
}

pub fn ease(t: f64) -> f64 {
    if t < 0.5 {
        4.0 * t * t * t
    } else {
        1.0 - (-2.0 * t + 2.0).powi(3) / 2.0
    }
}
