//! The patch-splitting animation: photo → crop → model view → patch grid → token sequence.
//!
//! Every rectangle comes from `vit::patches` (`patch_rects` over `model_region` for the source
//! pixels, over the on-screen squares for where they are drawn) and the crop from
//! `vit::preprocess::CropBox`, so the picture is the model's own geometry, in token order.
//!
//! Time `t` is in seconds at 1× speed; drawing is a pure function of `t` and the canvas width,
//! so pausing, replaying, changing speed, resizing and reduced motion are all just a `t`.
//!
//! Over 500 lines for one job, the animation: its timeline, its layout, the stage that plays
//! it and the drawing of each of its parts.

use std::cell::RefCell;
use std::rc::Rc;

use vit::VitConfig;
use vit::patches::{PatchRect, model_region, patch_rects};
use vit::prefix::{PrefixKind, PrefixTokens};
use vit::preprocess::CropBox;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{CanvasRenderingContext2d, HtmlButtonElement, HtmlCanvasElement};

use crate::pictures::draw::{self, blit, ease, font, lerp, palette, phase, round_rect, text};
use crate::platform::dom::{set_attr, window};

/// What the stage shows: the photo (possibly downscaled for display), its crop in the same
/// coordinates, the model's view, and the model's config for the patch grid.
pub struct Scene {
    pub photo: HtmlCanvasElement,
    pub crop: CropBox,
    /// Whether the person chose the square (else it is the centre square).
    pub chosen: bool,
    /// The original's size, for the caption (the display bitmap may be smaller).
    pub original: (u32, u32),
    pub view: HtmlCanvasElement,
    pub config: VitConfig,
}

// The timeline, in seconds at 1×.
const PHOTO: (f64, f64) = (0.0, 0.7);
const FLY: (f64, f64) = (0.7, 1.0);
const GRID: (f64, f64) = (1.7, 0.8);
const LIFT: (f64, f64) = (2.5, 0.6);
const TRAVEL_START: f64 = 3.1;
const TRAVEL_LEN: f64 = 0.8;
/// All patches leave within this long, however many there are.
const TRAVEL_SPREAD: f64 = 1.8;
const CLS_LEN: f64 = 0.6;

pub struct Stage {
    canvas: HtmlCanvasElement,
    /// The play/pause button, whose label follows the animation (it also ends by itself).
    button: HtmlButtonElement,
    scene: Option<Scene>,
    pub t: f64,
    pub playing: bool,
    pub speed: f64,
    last_frame: Option<f64>,
    frame_pending: bool,
}

/// Where things go for a given canvas width.
struct Layout {
    width: f64,
    height: f64,
    photo_box: CropBox,
    view_box: CropBox,
    token: f64,
    gap: f64,
    per_row: usize,
    row_h: f64,
    tokens_x: f64,
    tokens_y: f64,
    caption_y: f64,
    seq_caption_y: f64,
}

impl Layout {
    fn new(width: f64, tokens: usize) -> Self {
        let pad = if width < 480.0 { 8.0 } else { 16.0 };
        let mid = (width * 0.08).clamp(28.0, 110.0);
        let side = ((width - 2.0 * pad - mid) / 2.0).clamp(60.0, 300.0);
        let x0 = (width - (2.0 * side + mid)) / 2.0;
        let top = 30.0;
        // Tokens: as large as reads well, small enough that the sequence takes <= 8 rows.
        let usable = width - 2.0 * pad;
        // A slot is the token plus its gap, at most a quarter of the token (see `gap`).
        let by_rows = usable / (tokens as f64 / 8.0).ceil() / 1.25;
        let token = (width / 22.0).min(by_rows).clamp(12.0, 40.0);
        let gap = (token * 0.22).round().max(3.0);
        let per_row = (((usable + gap) / (token + gap)).floor() as usize).clamp(1, tokens);
        let rows = tokens.div_ceil(per_row);
        let row_w = per_row as f64 * (token + gap) - gap;
        let label = if token >= 16.0 { 15.0 } else { 4.0 };
        let row_h = token + gap + label;
        let seq_caption_y = top + side + 40.0;
        let tokens_y = seq_caption_y + 16.0;
        Self {
            width,
            height: tokens_y + rows as f64 * row_h + pad,
            photo_box: CropBox {
                x: x0 as f32,
                y: top as f32,
                side: side as f32,
            },
            view_box: CropBox {
                x: (x0 + side + mid) as f32,
                y: top as f32,
                side: side as f32,
            },
            token,
            gap,
            per_row,
            row_h,
            tokens_x: (width - row_w) / 2.0,
            tokens_y,
            caption_y: top - 10.0,
            seq_caption_y,
        }
    }

    /// Top-left of token slot `i` (the prefix tokens first, then the patches).
    fn slot(&self, i: usize) -> (f64, f64) {
        let (row, col) = (i / self.per_row, i % self.per_row);
        (
            self.tokens_x + col as f64 * (self.token + self.gap),
            self.tokens_y + row as f64 * self.row_h,
        )
    }
}

/// Where the photo sits inside its square box (letterboxed), as scale and offset.
fn photo_fit(scene: &Scene, b: &CropBox) -> (f64, f64, f64) {
    let (pw, ph) = (scene.photo.width() as f64, scene.photo.height() as f64);
    let side = b.side as f64;
    let s = side / pw.max(ph);
    (
        s,
        b.x as f64 + (side - pw * s) / 2.0,
        b.y as f64 + (side - ph * s) / 2.0,
    )
}

fn travel_end(patches: usize) -> f64 {
    TRAVEL_START + stagger(patches) * patches.saturating_sub(1) as f64 + TRAVEL_LEN
}

fn stagger(patches: usize) -> f64 {
    (TRAVEL_SPREAD / patches.max(1) as f64).min(0.06)
}

impl Stage {
    pub fn new(canvas: HtmlCanvasElement, button: HtmlButtonElement) -> Self {
        Self {
            canvas,
            button,
            scene: None,
            t: 0.0,
            playing: false,
            speed: 1.0,
            last_frame: None,
            frame_pending: false,
        }
    }

    /// The moment the animation is complete.
    pub fn end(&self) -> f64 {
        self.scene
            .as_ref()
            .map_or(0.0, |s| travel_end(s.config.num_patches()) + CLS_LEN)
    }

    pub fn at_end(&self) -> bool {
        self.t >= self.end()
    }

    /// `window.vitrine.animation()`: where the animation is, or `None` before an image.
    pub fn json(&self) -> Option<String> {
        self.scene.as_ref()?;
        let value = serde_json::json!({
            "t": self.t,
            "end": self.end(),
            "playing": self.playing,
            "done": !self.playing && self.at_end(),
        });
        Some(value.to_string())
    }

    /// Shows a new scene from the start, or at its end state when motion is unwanted.
    pub fn show(&mut self, scene: Scene, reduced_motion: bool) {
        self.describe(&scene);
        self.scene = Some(scene);
        self.replay(reduced_motion);
    }

    /// Swaps in the same photo with another square, where the animation is (the square is
    /// being dragged: restarting would flicker).
    pub fn update(&mut self, scene: Scene) {
        self.describe(&scene);
        self.scene = Some(scene);
    }

    pub fn replay(&mut self, reduced_motion: bool) {
        self.last_frame = None;
        if reduced_motion {
            self.t = self.end();
            self.playing = false;
        } else {
            self.t = 0.0;
            self.playing = true;
        }
        self.sync_button();
    }

    pub fn toggle(&mut self) {
        if self.playing {
            self.playing = false;
        } else {
            if self.at_end() {
                self.t = 0.0;
            }
            self.playing = true;
            self.last_frame = None;
        }
        self.sync_button();
    }

    /// The button says what pressing it does next.
    fn sync_button(&self) {
        let label = if self.playing {
            "Pause"
        } else if self.at_end() {
            "Play again"
        } else {
            "Play"
        };
        self.button.set_text_content(Some(label));
    }

    fn describe(&self, scene: &Scene) {
        let c = &scene.config;
        let (w, h) = scene.original;
        // The crop is in the display bitmap's pixels, which may be fewer than the original's.
        let side = (scene.crop.side as f64 * w as f64 / scene.photo.width().max(1) as f64).round();
        let which = if scene.chosen {
            "the square you chose, of"
        } else {
            "its centre square of"
        };
        let label = format!(
            "The photo, {w} by {h} pixels, cropped to {which} {side} pixels, resized to the model's {s} by {s} input and cut into {n} patches of {p} by {p} pixels ({g} rows of {g}). The patches are read row by row as a sequence of {t} tokens: the class token first, then patch 1 to {n}.",
            s = c.image_size,
            n = c.num_patches(),
            p = c.patch_size,
            g = c.grid_size(),
            t = c.num_tokens()
        );
        set_attr(&self.canvas, "aria-label", &label);
    }

    /// Advances time from the animation frame's timestamp; returns whether to keep going.
    fn tick(&mut self, now: f64) -> bool {
        if self.playing {
            if let Some(last) = self.last_frame {
                // Clamp long gaps (a hidden tab) so the animation does not jump to the end.
                let dt = ((now - last) / 1000.0).min(0.1);
                self.t = (self.t + dt * self.speed).min(self.end());
            }
            self.last_frame = Some(now);
            if self.at_end() {
                self.playing = false;
                self.sync_button();
            }
        } else {
            self.last_frame = None;
        }
        self.playing
    }

    pub fn draw(&self) {
        let width = draw::css_width(&self.canvas);
        let Some(scene) = &self.scene else {
            let ctx = draw::prepare(&self.canvas, width, 200.0);
            font(&ctx, 500, 14.0);
            text(
                &ctx,
                "Choose a photo to see it cut into patches",
                width / 2.0,
                104.0,
                palette::INK_3,
                "center",
            );
            return;
        };
        let config = &scene.config;
        let layout = Layout::new(width, config.num_tokens());
        let ctx = draw::prepare(&self.canvas, width, layout.height);
        let t = self.t;
        draw_photo(&ctx, scene, &layout, t);
        draw_view(&ctx, scene, &layout, t);
        draw_tokens(&ctx, scene, &layout, t);
    }
}

/// Requests an animation frame if none is pending; frames keep coming while playing.
pub fn kick(stage: &Rc<RefCell<Stage>>) {
    {
        let mut s = stage.borrow_mut();
        if s.frame_pending {
            return;
        }
        s.frame_pending = true;
    }
    let handle = stage.clone();
    let callback = Closure::once_into_js(move |now: f64| {
        let more = {
            let mut s = handle.borrow_mut();
            s.frame_pending = false;
            let more = s.tick(now);
            s.draw();
            more
        };
        if more {
            kick(&handle);
        }
    });
    let _ = window().request_animation_frame(callback.unchecked_ref());
}

fn draw_photo(ctx: &CanvasRenderingContext2d, scene: &Scene, l: &Layout, t: f64) {
    let b = &l.photo_box;
    let (x, y, side) = (b.x as f64, b.y as f64, b.side as f64);
    let appear = ease(phase(t, PHOTO.0, PHOTO.1));
    font(ctx, 600, 12.0);
    let (w, h) = scene.original;
    let caption = draw::fit_text(ctx, &format!("Your photo · {w}×{h}"), side);
    text(ctx, &caption, x, l.caption_y, palette::INK_2, "left");

    // A soft tile behind the photo so letterboxing reads as deliberate.
    ctx.set_fill_style_str(palette::BG);
    round_rect(ctx, x, y, side, side, 10.0);
    ctx.fill();

    let (s, ox, oy) = photo_fit(scene, b);
    let (pw, ph) = (scene.photo.width() as f64, scene.photo.height() as f64);
    ctx.save();
    ctx.set_global_alpha(appear);
    blit(
        ctx,
        &scene.photo,
        (0.0, 0.0, pw, ph),
        (ox, oy, pw * s, ph * s),
        true,
    );

    // Dim what the crop throws away, then outline the crop.
    let c = scene.crop;
    let (cx, cy, cs) = (ox + c.x as f64 * s, oy + c.y as f64 * s, c.side as f64 * s);
    let outline = ease(phase(t, PHOTO.0 + 0.25, PHOTO.1));
    ctx.set_fill_style_str(&format!("rgba(245,246,250,{:.3})", 0.72 * outline));
    ctx.fill_rect(ox, oy, pw * s, cy - oy);
    ctx.fill_rect(ox, cy + cs, pw * s, oy + ph * s - (cy + cs));
    ctx.fill_rect(ox, cy, cx - ox, cs);
    ctx.fill_rect(cx + cs, cy, ox + pw * s - (cx + cs), cs);
    ctx.set_stroke_style_str(palette::ACCENT);
    ctx.set_line_width(2.0);
    let dash = js_sys::Array::of2(&6.0.into(), &4.0.into());
    let _ = ctx.set_line_dash(&dash);
    ctx.set_global_alpha(appear * outline);
    ctx.stroke_rect(cx, cy, cs, cs);
    ctx.restore();
}

/// The crop flying to the model view, the grid drawing in, the patches lifting apart.
fn draw_view(ctx: &CanvasRenderingContext2d, scene: &Scene, l: &Layout, t: f64) {
    let config = &scene.config;
    let vb = &l.view_box;
    let (vx, vy, vs) = (vb.x as f64, vb.y as f64, vb.side as f64);
    let size = config.image_size as f64;
    let fly = ease(phase(t, FLY.0, FLY.1));
    let started_travel = t >= TRAVEL_START;

    font(ctx, 600, 12.0);
    let (size_px, g) = (config.image_size, config.grid_size());
    let caption = [
        format!("Model input · {size_px}×{size_px} px · {g}×{g} patches"),
        format!("Model input · {size_px}×{size_px} px"),
        format!("{size_px}×{size_px} px"),
    ]
    .into_iter()
    .find(|c| draw::text_width(ctx, c) <= vs)
    .unwrap_or_default();
    text(ctx, &caption, vx, l.caption_y, palette::INK_2, "left");
    ctx.set_fill_style_str(palette::BG);
    round_rect(ctx, vx, vy, vs, vs, 10.0);
    ctx.fill();
    if fly <= 0.0 {
        return;
    }

    // Arrow from photo to view.
    let pb = &l.photo_box;
    let (ax0, ax1) = (pb.x as f64 + pb.side as f64 + 8.0, vx - 8.0);
    let ay = vy + vs / 2.0;
    if ax1 - ax0 > 14.0 {
        ctx.save();
        ctx.set_global_alpha(fly);
        ctx.set_stroke_style_str(palette::INK_3);
        ctx.set_line_width(1.5);
        ctx.begin_path();
        ctx.move_to(ax0, ay);
        ctx.line_to(ax1, ay);
        ctx.move_to(ax1 - 6.0, ay - 5.0);
        ctx.line_to(ax1, ay);
        ctx.line_to(ax1 - 6.0, ay + 5.0);
        ctx.stroke();
        ctx.restore();
    }

    // The crop's square travels from the photo to the view box, sharpening into the model's
    // pixels as it lands.
    let (s, ox, oy) = photo_fit(scene, pb);
    let c = scene.crop;
    let from = (ox + c.x as f64 * s, oy + c.y as f64 * s, c.side as f64 * s);
    let (fx, fy, fs) = (
        lerp(from.0, vx, fly),
        lerp(from.1, vy, fly),
        lerp(from.2, vs, fly),
    );
    let lift = ease(phase(t, LIFT.0, LIFT.1));
    let source = patch_rects(config, model_region(config));
    let landed = patch_rects(
        config,
        CropBox {
            x: fx as f32,
            y: fy as f32,
            side: fs as f32,
        },
    );
    if lift <= 0.0 {
        ctx.save();
        let crop = (c.x as f64, c.y as f64, c.side as f64, c.side as f64);
        blit(ctx, &scene.photo, crop, (fx, fy, fs, fs), true);
        ctx.set_global_alpha(fly);
        blit(
            ctx,
            &scene.view,
            (0.0, 0.0, size, size),
            (fx, fy, fs, fs),
            false,
        );
        ctx.restore();
    } else {
        // A ghost of the view stays behind once the patches leave.
        ctx.save();
        ctx.set_global_alpha(if started_travel { 0.25 } else { 0.4 });
        blit(
            ctx,
            &scene.view,
            (0.0, 0.0, size, size),
            (vx, vy, vs, vs),
            false,
        );
        // The ghost keeps its cells, so the empty places read as "where patch n was".
        let g = config.grid_size();
        let step = vs / g as f64;
        ctx.set_global_alpha(lift);
        ctx.set_stroke_style_str("#ffffff");
        ctx.set_line_width(2.0);
        ctx.begin_path();
        for i in 1..g {
            let p = i as f64 * step;
            ctx.move_to(vx + p, vy);
            ctx.line_to(vx + p, vy + vs);
            ctx.move_to(vx, vy + p);
            ctx.line_to(vx + vs, vy + p);
        }
        ctx.stroke();
        ctx.restore();
        let patches = config.num_patches();
        for (src, dst) in source.iter().zip(&landed) {
            if t >= TRAVEL_START + src.index as f64 * stagger(patches) {
                continue; // drawn by draw_tokens while travelling
            }
            let r = lifted(dst, config, vs, lift);
            draw_patch(ctx, scene, src, r, lift);
        }
    }

    // The grid draws in line by line.
    let grid = phase(t, GRID.0, GRID.1);
    if grid > 0.0 && lift < 1.0 {
        let g = config.grid_size();
        let step = vs / g as f64;
        ctx.save();
        ctx.set_global_alpha(1.0 - lift);
        ctx.set_stroke_style_str("rgba(255,255,255,0.95)");
        ctx.set_line_width(1.5);
        ctx.begin_path();
        for i in 1..g {
            let local = ease(((grid * (g as f64 + 2.0)) - i as f64).clamp(0.0, 1.0));
            let p = i as f64 * step;
            ctx.move_to(vx + p, vy);
            ctx.line_to(vx + p, vy + vs * local);
            ctx.move_to(vx, vy + p);
            ctx.line_to(vx + vs * local, vy + p);
        }
        ctx.stroke();
        ctx.restore();
    }
}

/// A patch's rectangle when lifted apart by `lift` in [0, 1]: pushed out from the centre.
fn lifted(r: &PatchRect, config: &VitConfig, side: f64, lift: f64) -> (f64, f64, f64) {
    let g = config.grid_size() as f64;
    let spread = side * 0.06 * lift;
    let centre = (g - 1.0) / 2.0;
    let shrink = 1.0 - 0.12 * lift;
    let w = r.w as f64 * shrink;
    let cx = r.x as f64 + r.w as f64 / 2.0 + (r.col as f64 - centre) * spread / centre.max(1.0);
    let cy = r.y as f64 + r.h as f64 / 2.0 + (r.row as f64 - centre) * spread / centre.max(1.0);
    (cx - w / 2.0, cy - w / 2.0, w)
}

fn draw_patch(
    ctx: &CanvasRenderingContext2d,
    scene: &Scene,
    src: &PatchRect,
    (x, y, w): (f64, f64, f64),
    shadow: f64,
) {
    ctx.save();
    if shadow > 0.0 {
        ctx.set_shadow_color(&format!("rgba(23,26,38,{:.3})", 0.22 * shadow));
        ctx.set_shadow_blur(8.0 * shadow);
        ctx.set_shadow_offset_y(3.0 * shadow);
        ctx.set_fill_style_str("#fff");
        ctx.fill_rect(x, y, w, w);
        ctx.set_shadow_color("transparent");
    }
    let src_rect = (src.x as f64, src.y as f64, src.w as f64, src.h as f64);
    blit(ctx, &scene.view, src_rect, (x, y, w, w), false);
    ctx.restore();
}

/// Patches travelling into the sequence, their position numbers, and the prefix tokens (the
/// class token, a distilled model's distillation token, registers) in front of them.
fn draw_tokens(ctx: &CanvasRenderingContext2d, scene: &Scene, l: &Layout, t: f64) {
    let config = &scene.config;
    let patches = config.num_patches();
    let prefix = config.prefix_tokens();
    let names = prefix_names(prefix);
    // The empty sequence is there from the start, so the eye knows where the patches go.
    let appear = ease(phase(t, PHOTO.0, PHOTO.1));
    ctx.save();
    ctx.set_global_alpha(appear);
    font(ctx, 600, 12.0);
    let room = l.width - l.tokens_x;
    let mut front = String::new();
    for (n, kind) in [(prefix.class, "[CLS]"), (prefix.distillation, "[DIST]")] {
        if n {
            front += &format!("{kind} + ");
        }
    }
    match prefix.registers {
        0 => {}
        1 => front += "1 register + ",
        n => front += &format!("{n} registers + "),
    }
    let caption = [
        format!("Token sequence · {front}{patches} patches, read row by row"),
        format!("Token sequence · {front}{patches} patches"),
        format!("{front}{patches} patch tokens"),
    ]
    .into_iter()
    .find(|c| draw::text_width(ctx, c) <= room)
    .unwrap_or_default();
    text(
        ctx,
        &caption,
        l.tokens_x,
        l.seq_caption_y,
        palette::INK_2,
        "left",
    );
    ctx.set_line_width(1.0);
    for i in 0..config.num_tokens() {
        let (x, y) = l.slot(i);
        let frame = if i < prefix.count() {
            "#fcd9a0"
        } else {
            palette::LINE
        };
        ctx.set_stroke_style_str(frame);
        round_rect(ctx, x + 0.5, y + 0.5, l.token - 1.0, l.token - 1.0, 4.0);
        ctx.stroke();
    }
    ctx.restore();
    if t < TRAVEL_START {
        return;
    }
    let vb = &l.view_box;
    let landed = patch_rects(config, *vb);
    let source = patch_rects(config, model_region(config));
    let number_font = if l.token >= 24.0 { 10.0 } else { 9.0 };

    for (src, dst) in source.iter().zip(&landed) {
        let start = TRAVEL_START + src.index as f64 * stagger(patches);
        if t < start {
            continue;
        }
        let p = ease(phase(t, start, TRAVEL_LEN));
        let (x0, y0, w0) = lifted(dst, config, vb.side as f64, 1.0);
        let (x1, y1) = l.slot(prefix.token_of_patch(src.index));
        // A gentle arc: up and over, so crossing paths read as a stream.
        let arc = (p * std::f64::consts::PI).sin() * 24.0;
        let r = (lerp(x0, x1, p), lerp(y0, y1, p) - arc, lerp(w0, l.token, p));
        draw_patch(ctx, scene, src, r, 1.0 - p);
        if p >= 1.0 && l.token >= 16.0 {
            font(ctx, 500, number_font);
            text(
                ctx,
                &(src.index + 1).to_string(),
                x1 + l.token / 2.0,
                y1 + l.token + 11.0,
                palette::INK_3,
                "center",
            );
        }
    }

    // The prefix tokens drop into their slots once every patch has arrived.
    let cls = ease(phase(t, travel_end(patches), CLS_LEN));
    if cls <= 0.0 {
        return;
    }
    ctx.save();
    ctx.set_global_alpha(cls);
    for (i, name) in names.iter().enumerate() {
        let colour = prefix
            .kind(i)
            .map_or(palette::CLS, |(kind, _)| palette::prefix(kind).0);
        let (x, y) = l.slot(i);
        let y = y - (1.0 - cls) * 28.0;
        ctx.set_fill_style_str(colour);
        round_rect(ctx, x, y, l.token, l.token, 5.0);
        ctx.fill();
        font(ctx, 700, (l.token * 0.3).clamp(7.0, 11.0));
        ctx.set_text_baseline("middle");
        text(
            ctx,
            name,
            x + l.token / 2.0,
            y + l.token / 2.0 + 0.5,
            "#fff",
            "center",
        );
        ctx.set_text_baseline("alphabetic");
        if l.token >= 16.0 {
            font(ctx, 600, number_font);
            text(
                ctx,
                &i.to_string(),
                x + l.token / 2.0,
                y + l.token + 11.0,
                colour,
                "center",
            );
        }
    }
    ctx.restore();
}

/// The prefix tokens' labels in their slots: CLS, DIST, R1, R2…
fn prefix_names(prefix: PrefixTokens) -> Vec<String> {
    (0..prefix.count())
        .map(|t| match prefix.kind(t) {
            Some((PrefixKind::Class, _)) => "CLS".to_string(),
            Some((PrefixKind::Distillation, _)) => "DIST".to_string(),
            Some((PrefixKind::Register, r)) => format!("R{r}"),
            None => String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_fits_the_width_and_every_token() {
        for width in [320.0, 420.0, 800.0, 1160.0] {
            for tokens in [17, 65, 145, 197] {
                let l = Layout::new(width, tokens);
                // Photo and model view side by side, inside the canvas.
                assert!(l.photo_box.x >= 0.0 && l.photo_box.x + l.photo_box.side <= l.view_box.x);
                assert!((l.view_box.x + l.view_box.side) as f64 <= width + 1e-9);
                // Every token slot inside the canvas, the last one included, in at most 8 rows
                // when the tokens can be that small.
                let (x, y) = l.slot(tokens - 1);
                assert!(
                    x >= 0.0 && x + l.token <= width + 1e-9,
                    "{width} {tokens}: x {x}"
                );
                assert!(y + l.token <= l.height, "{width} {tokens}: y {y}");
                if l.token > 12.0 {
                    assert!(tokens.div_ceil(l.per_row) <= 8, "{width} {tokens}");
                }
            }
        }
    }

    #[test]
    fn every_patch_leaves_within_the_spread() {
        for patches in [16, 64, 144, 196] {
            let last_leaves = TRAVEL_START + stagger(patches) * (patches - 1) as f64;
            assert!(last_leaves <= TRAVEL_START + TRAVEL_SPREAD + 1e-9);
            assert_eq!(travel_end(patches), last_leaves + TRAVEL_LEN);
        }
    }
}
