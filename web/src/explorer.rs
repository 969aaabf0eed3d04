//! The token explorer, "ask the model anything": hover or click a patch on the photo or on the
//! model's input, or a slot of the token strip, and the map shows where that token attends at
//! the chosen layer and head (or fused heads), or which tokens attend to it; the layer slider's
//! last step is rollout; a click on a class's bar shows that class's relevance (Chefer et al.
//! 2021, one backward pass on the backend of the result). The maps are `vit::explain`'s, the
//! same numbers `trainer explain --json` prints.
//!
//! The question and the geometry are `query`'s (pure, tested natively); this module keeps the
//! explorer's state, draws it and wires its controls (`events::wire` calls [`wire`]).

use vit::explain::{Heads, Relevance, TokenMap, explain};
use vit::rollout::HeadFusion;
use wasm_bindgen::JsCast;
use web_sys::{
    CanvasRenderingContext2d, Event, HtmlCanvasElement, HtmlElement, HtmlInputElement,
    HtmlSelectElement, KeyboardEvent, MouseEvent, PointerEvent,
};

use crate::app::{App, Shared, spawn_task};
use crate::dom::{by_id, create, now, on, set_attr, set_text};
use crate::draw::{self, blit, font, palette, text};
use crate::model::Backend;
use crate::query::{Ask, LABEL, Layout, Square, View};

/// The explorer's elements (index.html, section "Ask the model").
pub struct Controls {
    pub canvas: HtmlCanvasElement,
    pub layer: HtmlInputElement,
    pub layer_out: HtmlElement,
    pub heads: HtmlSelectElement,
    pub reverse: HtmlInputElement,
    pub what: HtmlElement,
}

/// One class's relevance, for one result.
pub struct Explained {
    pub run: u64,
    pub class: usize,
    pub relevance: Relevance,
    pub backend: Backend,
    /// The backward pass and its read-back, in milliseconds.
    pub ms: f64,
}

/// The map on screen, as `window.vitrine.explorer()` reports it.
pub struct Drawn {
    pub run: u64,
    pub backend: Backend,
    pub ask: Ask,
    pub values: Vec<f32>,
    pub layout: Layout,
}

pub struct Explorer {
    pub controls: Controls,
    pub ask: Ask,
    /// The token under the pointer, asked about instead of the selected one while it is there.
    pub hover: Option<usize>,
    pub explained: Option<Explained>,
    /// A class whose relevance is being computed.
    pub pending: Option<usize>,
    pub drawn: Option<Drawn>,
}

impl Explorer {
    pub fn find() -> Self {
        Self {
            controls: Controls {
                canvas: by_id("explore"),
                layer: by_id("explore-layer"),
                layer_out: by_id("explore-layer-out"),
                heads: by_id("explore-heads"),
                reverse: by_id("explore-reverse"),
                what: by_id("explore-what"),
            },
            ask: Ask::default(),
            hover: None,
            explained: None,
            pending: None,
            drawn: None,
        }
    }

    /// The class whose relevance is asked for (drawn, or being computed), whose bar is marked.
    pub fn explaining(&self) -> Option<usize> {
        match self.ask.view {
            View::Relevance(c) => Some(c),
            _ => None,
        }
    }

    /// `window.vitrine.explorer()`: the map drawn and the question it answers, or null.
    pub fn json(&self) -> Option<String> {
        let d = self.drawn.as_ref()?;
        let q = d.ask.query();
        let square = |s: Square| [s.x, s.y, s.side];
        let class = match d.ask.view {
            View::Relevance(c) => Some(c),
            _ => None,
        };
        let value = serde_json::json!({
            "run": d.run,
            "backend": d.backend.id(),
            "method": q.method,
            "layer": q.layer,
            "heads": q.heads,
            "token": q.token,
            "selected": d.ask.token,
            "reverse": q.reverse,
            "class": class,
            "relevance_ms": self.explained.as_ref().map(|e| e.ms),
            "explaining": self.explaining(),
            "tokens": d.values,
            "grid": d.layout.grid,
            "photo": square(d.layout.photo),
            "input": square(d.layout.input),
            "strip": [d.layout.strip_y, d.layout.pitch, d.layout.cols as f64],
        });
        Some(value.to_string())
    }
}

/// Draws the explorer for the current result: the map, the controls' ranges, the caption.
pub fn render(a: &mut App) {
    let ex = &a.explorer;
    let c = &ex.controls;
    let (Some(s), Some(p), Some(model)) = (&a.shown, &a.picture, &a.model) else {
        crate::heatmap::draw_empty(&c.canvas, 200.0, "Ask the model about any token here");
        return;
    };
    let maps = &s.output.attention;
    let config = &model.manifest.config;
    let mut ask = ex.ask;
    ask.fit(
        maps.layers,
        maps.heads,
        maps.tokens,
        model.manifest.labels.len(),
    );
    let explaining = match ask.view {
        View::Relevance(c) => Some(c),
        _ => None,
    };
    crate::results::mark_explained(a, explaining);
    sync_controls(c, &ask, maps.layers, maps.heads);
    let asked = Ask {
        token: ex.hover.unwrap_or(ask.token),
        ..ask
    };
    let relevance = match (asked.view, &ex.explained) {
        (View::Relevance(class), Some(e)) if e.class == class && e.run == s.run => {
            Some(&e.relevance)
        }
        _ => None,
    };
    let class_name = match asked.view {
        View::Relevance(c) => model.manifest.labels.get(c).map(String::as_str),
        _ => None,
    };
    let width = draw::css_width(&c.canvas);
    let layout = Layout::new(width, maps.tokens);
    let map = match (asked.view, relevance) {
        (View::Relevance(_), None) => {
            set_text(
                &c.what,
                &format!("{} Computing…", asked.describe(class_name)),
            );
            a.explorer.ask = ask;
            return;
        }
        _ => explain(maps, relevance, config.pooling, &asked.query()),
    };
    let map = match map {
        Ok(m) => m,
        Err(e) => {
            set_text(&c.what, &e.to_string());
            return;
        }
    };
    let crop = (p.crop.x as f64, p.crop.y as f64, p.crop.side as f64);
    paint(
        &c.canvas,
        &layout,
        &p.photo,
        crop,
        &p.view,
        &map,
        asked.token,
        &asked,
    );
    let patches = map.patches();
    let peak = crate::heatmap::describe_peak(&patches);
    let mut chars = peak.chars();
    let peak: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    let caption = format!("{} {peak}.", asked.describe(class_name));
    set_text(&c.what, &caption);
    set_attr(&c.canvas, "aria-label", &caption);
    let drawn = Drawn {
        run: s.run,
        backend: s.output.backend,
        ask: asked,
        values: map.values,
        layout,
    };
    a.explorer.ask = ask;
    a.explorer.drawn = Some(drawn);
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
    selected: usize,
    ask: &Ask,
) {
    let ctx = draw::prepare(canvas, l.width, l.height);
    let patches = map.patches();
    let heat = crate::heatmap::heat_bitmap(&patches);
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
        "The tokens: class token, then the patches in order",
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

    // The strip, on the patches' scale (the class token's own value may exceed it).
    let max = patches.values.iter().copied().fold(0.0f32, f32::max);
    for (t, &v) in map.values.iter().enumerate() {
        let (sx, sy, w, h) = l.slot(t);
        let v = if max > 0.0 { v / max } else { 0.0 };
        let [r, gg, b] = vit::colormap::magma(v);
        ctx.set_fill_style_str(&format!("rgb({r},{gg},{b})"));
        ctx.fill_rect(sx, sy, w, h);
        if t == 0 {
            ctx.set_stroke_style_str(palette::CLS);
            ctx.set_line_width(2.0);
            ctx.stroke_rect(sx + 1.0, sy + 1.0, w - 2.0, h - 2.0);
        }
    }

    if matches!(ask.view, View::Relevance(_)) {
        return; // relevance is about the output, not a selected token
    }
    if selected >= 1 && l.grid > 0 {
        for sq in [photo_sq, input_sq] {
            let (px, py, pw, ph) = sq.patch(selected - 1, l.grid);
            outline(&ctx, px, py, pw, ph);
        }
    }
    let (sx, sy, w, h) = l.slot(selected);
    outline(&ctx, sx, sy, w, h);
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

/// Draws again after the question changed (no model run).
fn redraw(app: &Shared) {
    if let Ok(mut a) = app.try_borrow_mut() {
        render(&mut a);
    }
}

/// A click on a class's bar: its relevance, computed once per result and class.
pub fn explain_class(app: &Shared, class: usize) {
    let fresh = {
        let mut a = app.borrow_mut();
        a.explorer.ask.view = View::Relevance(class);
        let run = a.shown.as_ref().map(|s| s.run);
        let known = a
            .explorer
            .explained
            .as_ref()
            .is_some_and(|e| Some(e.run) == run && e.class == class);
        render(&mut a);
        !known && a.explorer.pending != Some(class)
    };
    if fresh {
        app.borrow_mut().explorer.pending = Some(class);
        let task = relevance(app.clone(), class);
        spawn_task(app, "Explaining the class", task);
    }
}

/// After a new result: a relevance view asks again for the new image.
pub fn after_result(app: &Shared) {
    let class = match app.borrow().explorer.ask.view {
        View::Relevance(c) => Some(c),
        _ => None,
    };
    match class {
        Some(c) => explain_class(app, c),
        None => redraw(app),
    }
}

async fn relevance(app: Shared, class: usize) -> Result<(), String> {
    let job = {
        let a = app.borrow();
        match (&a.shown, &a.picture, &a.model) {
            (Some(s), Some(p), Some(m)) => Some((
                s.run,
                s.output.backend,
                p.prepared.chw.clone(),
                m.clone(),
                a.backends.clone(),
            )),
            _ => None,
        }
    };
    let Some((run, backend, chw, model, backends)) = job else {
        app.borrow_mut().explorer.pending = None;
        return Ok(());
    };
    crate::dom::yield_now().await;
    let start = now();
    let result = crate::model::relevance(&model, &backends, backend, &chw, class).await;
    let ms = now() - start;
    let mut a = app.borrow_mut();
    a.explorer.pending = None;
    let relevance = result.map_err(|e| format!("The relevance could not be computed: {e}"))?;
    if a.shown.as_ref().map(|s| s.run) != Some(run) {
        return Ok(()); // a newer result came meanwhile; `after_result` asks again
    }
    a.explorer.explained = Some(Explained {
        run,
        class,
        relevance,
        backend,
        ms,
    });
    render(&mut a);
    Ok(())
}

/// The explorer's listeners: pointer and keys on its canvas, its slider, select and checkbox,
/// and the class bars' buttons.
pub fn wire(app: &Shared) {
    let (canvas, layer, heads, reverse, buttons) = {
        let a = app.borrow();
        let c = &a.explorer.controls;
        (
            c.canvas.clone(),
            c.layer.clone(),
            c.heads.clone(),
            c.reverse.clone(),
            a.ui.pred_list.clone(),
        )
    };
    let token_at = |app: &Shared, x: f64, y: f64| -> Option<usize> {
        let a = app.borrow();
        a.explorer.drawn.as_ref()?.layout.token_at(x, y)
    };
    {
        let app = app.clone();
        on(&canvas, "pointermove", move |e: PointerEvent| {
            let hover = token_at(&app, e.offset_x() as f64, e.offset_y() as f64);
            let changed = {
                let mut a = app.borrow_mut();
                let changed = a.explorer.hover != hover;
                a.explorer.hover = hover;
                changed && !matches!(a.explorer.ask.view, View::Relevance(_))
            };
            if changed {
                redraw(&app);
            }
        });
    }
    {
        let app = app.clone();
        on(&canvas, "pointerleave", move |_: PointerEvent| {
            app.borrow_mut().explorer.hover = None;
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        on(&canvas, "click", move |e: MouseEvent| {
            if let Some(t) = token_at(&app, e.offset_x() as f64, e.offset_y() as f64) {
                let mut a = app.borrow_mut();
                a.explorer.ask.token = t;
                if matches!(a.explorer.ask.view, View::Relevance(_)) {
                    a.explorer.ask.view = View::Rollout;
                }
            }
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        on(&canvas, "keydown", move |e: KeyboardEvent| {
            let used = {
                let mut a = app.borrow_mut();
                let grid = a.explorer.drawn.as_ref().map_or(0, |d| d.layout.grid);
                a.explorer.hover = None;
                a.explorer.ask.key(&e.key(), grid)
            };
            if used {
                e.prevent_default();
                redraw(&app);
            }
        });
    }
    {
        let app = app.clone();
        let input = layer.clone();
        on(&layer, "input", move |_: Event| {
            {
                let mut a = app.borrow_mut();
                let depth = a.shown.as_ref().map_or(1, |s| s.output.attention.layers);
                let v = input.value().parse().unwrap_or(depth + 1);
                a.explorer.ask.set_slider(v, depth);
            }
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        let select = heads.clone();
        on(&heads, "change", move |_: Event| {
            app.borrow_mut().explorer.ask.heads = select
                .value()
                .parse()
                .unwrap_or(Heads::Fused(HeadFusion::Mean));
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        let input = reverse.clone();
        on(&reverse, "change", move |_: Event| {
            app.borrow_mut().explorer.ask.reverse = input.checked();
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        on(&crate::dom::window_target(), "resize", move |_: Event| {
            redraw(&app)
        });
    }
    redraw(app); // the placeholder, until the first result
    let app = app.clone();
    // The bars' buttons (results::render_results lays one over each bar).
    on(&buttons, "click", move |e: MouseEvent| {
        let class = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|t| t.closest("button[data-class]").ok().flatten())
            .and_then(|b| b.get_attribute("data-class"))
            .and_then(|c| c.parse().ok());
        if let Some(class) = class {
            explain_class(&app, class);
        }
    });
}
