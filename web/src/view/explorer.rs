//! The token explorer drawn for the current result: the map (where the asked token attends,
//! which tokens attend to it, rollout, or a class's relevance, as the engine computes them with
//! `vit::explain`, the same numbers `trainer explain --json` prints), the photo's square, the
//! model's input and the token strip under it, the controls' ranges and the caption.

use vit::explain::{ModelTokens, Query, Token, TokenMap};
use vit::prefix::{PrefixKind, PrefixTokens};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use crate::app::state::App;
use crate::explorer::query::{Ask, LABEL, Layout, Shape, Square, View};
use crate::explorer::state::{Controls, Drawn};
use crate::pictures::draw::{self, blit, font, palette, text};
use crate::platform::dom::{create, set_attr, set_text};
use crate::protocol::{AnswerId, Question};

/// The question the explorer asks now (the selected token, or the one under the pointer),
/// fitted to the result's shape, in the engine's words; `None` before a result. Keeps the
/// fitted question as the selected one.
pub fn question(a: &mut App) -> Option<(AnswerId, Question)> {
    let s = a.shown.as_ref()?;
    let manifest = &a.model.as_ref()?.manifest;
    let shape = Shape {
        layers: s.layers,
        heads: s.heads_count,
        tokens: s.tokens,
        prefix: manifest.config.prefix_tokens(),
    };
    let mut ask = a.explorer.ask;
    ask.fit(shape, manifest.labels.len());
    a.explorer.ask = ask;
    let asked = Ask {
        token: a.explorer.hover.map_or(ask.token, Token::Index),
        ..ask
    };
    let class = match asked.view {
        View::Relevance(c) => Some(c),
        _ => None,
    };
    Some((s.answer, words(&asked.query(), class)))
}

/// `vit::explain`'s query in the words that cross to the engine (`trainer explain`'s).
pub fn words(q: &Query, class: Option<usize>) -> Question {
    Question {
        method: q.method.to_string(),
        layer: q.layer,
        heads: q.heads.to_string(),
        token: q.token.to_string(),
        reverse: q.reverse,
        class,
    }
}

/// Draws the explorer for the current result: the map the engine answered for the question
/// asked now, the controls' ranges, the caption. While the engine is still computing it, the
/// last map stays (a relevance says "Computing…").
pub fn render(a: &mut App) {
    let asked_now = question(a);
    let ex = &a.explorer;
    let c = &ex.controls;
    let (Some(s), Some(p), Some(model), Some((answer, words))) =
        (&a.shown, &a.picture, &a.model, asked_now)
    else {
        crate::pictures::heatmap::draw_empty(
            &c.canvas,
            200.0,
            "Ask the model about any token here",
        );
        return;
    };
    let ask = ex.ask;
    let explaining = match ask.view {
        View::Relevance(c) => Some(c),
        _ => None,
    };
    crate::view::results::mark_explained(a, explaining);
    sync_controls(c, &ask, s.layers, s.heads_count);
    let asked = Ask {
        token: ex.hover.map_or(ask.token, Token::Index),
        ..ask
    };
    let tokens = ModelTokens::of(&model.manifest.config);
    let prefix = tokens.prefix;
    let class_name = match asked.view {
        View::Relevance(c) => model.manifest.labels.get(c).map(String::as_str),
        _ => None,
    };
    let width = draw::css_width(&c.canvas);
    let layout = Layout::new(width, s.tokens, prefix);
    let map = match &ex.answered {
        Some(m) if m.answer == answer && m.question == words => TokenMap {
            values: m.values.clone(),
            prefix,
        },
        _ => {
            if matches!(asked.view, View::Relevance(_)) {
                set_text(
                    &c.what,
                    &format!("{} Computing…", asked.describe(&tokens, class_name)),
                );
            }
            return;
        }
    };
    let backend = ex.answered.as_ref().map_or(s.backend, |m| m.backend);
    let crop = (p.crop.x as f64, p.crop.y as f64, p.crop.side as f64);
    paint(&c.canvas, &layout, &p.photo, crop, &p.view, &map, &asked);
    let patches = map.patches();
    let peak = crate::pictures::heatmap::describe_peak(&patches);
    let mut chars = peak.chars();
    let peak: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    let caption = format!(
        "{} {peak}.{}",
        asked.describe(&tokens, class_name),
        register_share(&asked, &map)
    );
    set_text(&c.what, &caption);
    set_attr(&c.canvas, "aria-label", &caption);
    let drawn = Drawn {
        run: s.run,
        backend,
        ask: asked,
        values: map.values,
        layout,
    };
    a.explorer.drawn = Some(drawn);
}

/// What the registers hold of a token's attention, as the registers paper shows it (Darcet et
/// al. 2024: high-norm tokens that take attention away from the patches); empty without them,
/// or where the map is not one token's attention (relevance, or which tokens attend to it).
fn register_share(ask: &Ask, map: &TokenMap) -> String {
    let n = map.prefix.registers;
    if n == 0 || ask.reverse || matches!(ask.view, View::Relevance(_)) {
        return String::new();
    }
    let held: f32 = (1..=n)
        .filter_map(|r| map.prefix.index(PrefixKind::Register, r))
        .filter_map(|t| map.values.get(t))
        .sum();
    let total: f32 = map.values.iter().sum();
    if !(total > 0.0 && held.is_finite()) {
        return String::new();
    }
    let share = 100.0 * held / total;
    match n {
        1 => format!(" The register holds {share:.0}% of it."),
        _ => format!(" The {n} registers hold {share:.0}% of it."),
    }
}

/// The slider's range and the head options follow the model; both show the question.
fn sync_controls(c: &Controls, ask: &Ask, depth: usize, heads: usize) {
    let max = (depth + 1).to_string();
    if c.layer.max() != max {
        c.layer.set_max(&max);
    }
    c.layer.set_value(&ask.slider(depth).to_string());
    let label = match ask.view {
        View::Layer(l) => format!("layer {l} of {depth}"),
        View::Rollout => "rollout (all layers)".into(),
        View::Relevance(_) => "relevance (all layers)".into(),
    };
    set_text(&c.layer_out, &label);
    if c.heads.length() as usize != 3 + heads {
        c.heads.set_inner_html("");
        let mut values: Vec<String> = ["mean", "max", "min"].map(String::from).to_vec();
        values.extend((1..=heads).map(|h| h.to_string()));
        for v in values {
            let option: web_sys::HtmlOptionElement = create("option");
            let label = match v.parse::<usize>() {
                Ok(h) => format!("head {h}"),
                Err(_) => format!("{v} of the heads"),
            };
            option.set_value(&v);
            option.set_text(&label);
            let _ = c.heads.append_child(&option);
        }
    }
    c.heads.set_value(&ask.heads.to_string());
    let relevance = matches!(ask.view, View::Relevance(_));
    c.heads.set_disabled(relevance);
    c.reverse.set_disabled(relevance);
    c.reverse.set_checked(ask.reverse);
}

/// The photo's square and the model's input under the map, the token strip, the selected token
/// outlined on all three.
#[allow(clippy::too_many_arguments)]
fn paint(
    canvas: &HtmlCanvasElement,
    l: &Layout,
    photo: &HtmlCanvasElement,
    (cx, cy, cs): (f64, f64, f64),
    view: &HtmlCanvasElement,
    map: &TokenMap,
    ask: &Ask,
) {
    let ctx = draw::prepare(canvas, l.width, l.height);
    let patches = map.patches();
    let heat = crate::pictures::heatmap::heat_bitmap(&patches);
    let g = l.grid.max(1) as f64;
    let (photo_sq, input_sq) = (l.photo, l.input);
    font(&ctx, 600, 12.0);
    let photo_label = if matches!(ask.view, View::Relevance(_)) {
        "The photo, by relevance"
    } else {
        "The photo"
    };
    text(&ctx, photo_label, 0.0, LABEL - 6.0, palette::INK_2, "left");
    text(
        &ctx,
        "The model's input, patch by patch",
        input_sq.x,
        LABEL - 6.0,
        palette::INK_2,
        "left",
    );
    text(
        &ctx,
        &strip_label(map.prefix),
        0.0,
        l.strip_y - 6.0,
        palette::INK_2,
        "left",
    );

    // The photo with the map smoothed over it, as "Where it looked" draws rollout.
    let Square { x, y, side } = photo_sq;
    blit(&ctx, photo, (cx, cy, cs, cs), (x, y, side, side), true);
    ctx.set_global_alpha(0.65);
    blit(&ctx, &heat, (0.0, 0.0, g, g), (x, y, side, side), true);
    ctx.set_global_alpha(1.0);
    // The model's input with one hard block per patch: the map's own resolution.
    let Square { x, y, side } = input_sq;
    let size = view.width() as f64;
    blit(
        &ctx,
        view,
        (0.0, 0.0, size, size),
        (x, y, side, side),
        false,
    );
    ctx.set_global_alpha(0.75);
    blit(&ctx, &heat, (0.0, 0.0, g, g), (x, y, side, side), false);
    ctx.set_global_alpha(1.0);

    // The strip, on the patches' scale (a prefix token's own value may exceed it); each
    // prefix token framed in its kind's colour.
    let max = patches.values.iter().copied().fold(0.0f32, f32::max);
    for (t, &v) in map.values.iter().enumerate() {
        let (sx, sy, w, h) = l.slot(t);
        let v = if max > 0.0 { v / max } else { 0.0 };
        let [r, gg, b] = vit::colormap::magma(v);
        ctx.set_fill_style_str(&format!("rgb({r},{gg},{b})"));
        ctx.fill_rect(sx, sy, w, h);
        if let Some((kind, _)) = map.prefix.kind(t) {
            ctx.set_stroke_style_str(palette::prefix(kind).0);
            ctx.set_line_width(2.0);
            ctx.stroke_rect(sx + 1.0, sy + 1.0, w - 2.0, h - 2.0);
        }
    }

    if matches!(ask.view, View::Relevance(_)) {
        return; // relevance is about the output, not a selected token
    }
    let Some(selected) = ask.selected() else {
        return; // the mean of the patches: no one token to frame
    };
    if let Some(p) = map.prefix.patch(selected)
        && l.grid > 0
    {
        for sq in [photo_sq, input_sq] {
            let (px, py, pw, ph) = sq.patch(p, l.grid);
            outline(&ctx, px, py, pw, ph);
        }
    }
    let (sx, sy, w, h) = l.slot(selected);
    outline(&ctx, sx, sy, w, h);
}

/// The strip's legend: its prefix tokens by kind, in their frames' colours' words.
fn strip_label(prefix: PrefixTokens) -> String {
    let mut kinds = Vec::new();
    for kind in PrefixKind::ALL {
        let (_, colour) = palette::prefix(kind);
        match (kind, prefix.of(kind)) {
            (_, 0) => {}
            (PrefixKind::Register, 1) => kinds.push(format!("1 register ({colour})")),
            (PrefixKind::Register, n) => kinds.push(format!("{n} registers ({colour})")),
            (PrefixKind::Class, _) => kinds.push(format!("class token ({colour})")),
            (PrefixKind::Distillation, _) => kinds.push(format!("distillation token ({colour})")),
        }
    }
    if kinds.is_empty() {
        "The tokens: the patches in order (no class token)".into()
    } else {
        format!(
            "The tokens: {}, then the patches in order",
            kinds.join(", ")
        )
    }
}

/// White with a dark edge: visible on light and dark parts of any map.
fn outline(ctx: &CanvasRenderingContext2d, x: f64, y: f64, w: f64, h: f64) {
    ctx.set_line_width(3.0);
    ctx.set_stroke_style_str(palette::INK);
    ctx.stroke_rect(x, y, w, h);
    ctx.set_line_width(1.5);
    ctx.set_stroke_style_str("#fff");
    ctx.stroke_rect(x, y, w, h);
}
