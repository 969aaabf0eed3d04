//! Drawing the last result: the top-5 bars (or, when no class fits, that in words), and the
//! attention maps over the square the model saw.

use vit::inference::{MIN_TOP1, NoFit, Ranked, Verdict};

use crate::app::state::App;
use crate::pictures::{bars, heatmap};
use crate::platform::dom::{human_ms, set_attr, set_text};

pub fn render_results(a: &App) {
    let Some(s) = &a.shown else {
        heatmap::draw_empty(&a.ui.bars, 120.0, "Predictions appear here");
        heatmap::draw_empty(&a.ui.heat, 240.0, "The attention map appears here");
        heatmap::draw_empty(&a.ui.heads, 90.0, "One map per attention head");
        return;
    };
    let classes = a.model.as_ref().map_or(0, |m| m.manifest.labels.len());
    let message = if classes == 0 {
        Some(NO_CLASSES.to_string())
    } else {
        no_fit_message(&s.verdict, &s.top, classes)
    };
    match message {
        Some(message) => {
            set_text(&a.ui.verdict, &message);
            a.ui.verdict.set_hidden(false);
        }
        None => a.ui.verdict.set_hidden(true),
    }
    match &s.damage {
        Some(why) => {
            set_text(&a.ui.damage, &damage_message(why));
            a.ui.damage.set_hidden(false);
        }
        None => a.ui.damage.set_hidden(true),
    }
    let explaining = a.explorer.explaining();
    bars::draw(&a.ui.bars, &s.top, !s.verdict.fits, explaining);
    set_attr(&a.ui.bars, "aria-label", &bars::describe(&s.top));
    // One button per bar, laid over it (www/styles/main.css, `.bar-buttons`): a click, or
    // Enter, shows the class's relevance in step 5, and the one shown is pressed.
    a.ui.pred_list.set_inner_html("");
    for r in &s.top {
        let li: web_sys::HtmlElement = crate::platform::dom::create("li");
        let button: web_sys::HtmlElement = crate::platform::dom::create("button");
        set_attr(&button, "type", "button");
        set_attr(&button, "class", "bar-button");
        set_attr(&button, "data-class", &r.index.to_string());
        set_attr(
            &button,
            "aria-pressed",
            &(explaining == Some(r.index)).to_string(),
        );
        set_text(
            &button,
            &format!(
                "{}: {:.1}%. Show what made the model say it",
                r.label,
                100.0 * r.prob
            ),
        );
        let _ = li.append_child(&button);
        let _ = a.ui.pred_list.append_child(&li);
    }
    set_text(
        &a.ui.pred_meta,
        &format!(
            "{} on {} · {} · {}",
            human_ms(s.ms),
            s.backend.label(),
            s.model,
            s.image
        ),
    );
    render_heat(a);
}

/// Marks the bar of the class the explorer explains (or none): its row outlined on the canvas,
/// its button pressed. Draws only when that changed.
pub fn mark_explained(a: &App, explaining: Option<usize>) {
    let Some(s) = &a.shown else {
        return;
    };
    let buttons = a.ui.pred_list.get_elements_by_tag_name("button");
    let mut changed = false;
    for i in 0..buttons.length() {
        let Some(b) = buttons.item(i) else { continue };
        let class = b.get_attribute("data-class").and_then(|c| c.parse().ok());
        let pressed = (class.is_some() && class == explaining).to_string();
        if b.get_attribute("aria-pressed").as_deref() != Some(pressed.as_str()) {
            set_attr(&b, "aria-pressed", &pressed);
            changed = true;
        }
    }
    if changed {
        bars::draw(&a.ui.bars, &s.top, !s.verdict.fits, explaining);
    }
}

/// What the page says when no class fits (`vit::inference::verdict`'s rule).
/// What the page says of a model without classes, in place of its top-5.
pub const NO_CLASSES: &str = "This model has no classes: it is a feature model (DINOv2, say), which answers with features, not a class. Ask it where it looks (step 5), or teach it classes of your own on top (step 6).";

pub fn no_fit_message(v: &Verdict, top: &[Ranked], classes: usize) -> Option<String> {
    let guess = top.first()?;
    Some(match v.why_not? {
        NoFit::Blank => format!(
            "This square is one flat colour, with nothing in it to recognise: it looks like none of the {classes} classes the model knows. The grey bars are what it guesses anyway."
        ),
        NoFit::Unsure => format!(
            "This looks like none of the {classes} classes the model knows, with confidence: its best guess, {}, has only {:.0}% (a class fits from {:.0}%). The grey bars are its guesses.",
            guess.label,
            100.0 * guess.prob,
            100.0 * MIN_TOP1
        ),
    })
}

/// `why` is `vit::damage::truncation`'s sentence, which the CLI prints mid-line; here it
/// stands alone above the result.
pub fn damage_message(why: &str) -> String {
    let mut chars = why.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// The heat maps from the stored attention (no model run).
pub fn render_heat(a: &App) {
    let (Some(s), Some(p)) = (&a.shown, &a.picture) else {
        return;
    };
    let crop = (p.crop.x as f64, p.crop.y as f64, p.crop.side as f64);
    heatmap::draw_rollout(&a.ui.heat, &p.photo, crop, &s.rollout, a.heat.opacity);
    set_attr(
        &a.ui.heat,
        "aria-label",
        &format!(
            "Attention rollout over the photo: {}.",
            heatmap::describe_peak(&s.rollout)
        ),
    );
    heatmap::draw_heads(&a.ui.heads, &p.view, &s.heads);
    let heads: Vec<String> = s
        .heads
        .iter()
        .enumerate()
        .map(|(h, m)| format!("head {}: {}", h + 1, heatmap::describe_peak(m)))
        .collect();
    set_attr(
        &a.ui.heads,
        "aria-label",
        &format!(
            "Last layer's class-token attention per head. {}.",
            heads.join("; ")
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit::inference::verdict;

    #[test]
    fn the_message_says_why_no_class_fits() {
        let top = vec![Ranked {
            label: "ship".into(),
            index: 8,
            prob: 0.31,
        }];
        let unsure = no_fit_message(&verdict(&[0.31, 0.3, 0.39], false), &top, 10).unwrap();
        assert!(
            unsure.contains("none of the 10 classes") && unsure.contains("ship, has only 31%"),
            "{unsure}"
        );
        let blank = no_fit_message(&verdict(&[0.9, 0.1], true), &top, 10).unwrap();
        assert!(
            blank.contains("flat colour") && blank.contains("none of the 10 classes"),
            "{blank}"
        );
        assert_eq!(no_fit_message(&verdict(&[0.9, 0.1], false), &top, 10), None);
    }

    #[test]
    fn a_cut_off_file_is_said_to_be_damaged() {
        // A PNG with no IEND chunk: the shortest file `truncation` flags.
        let why = vit::damage::truncation(b"\x89PNG\r\n\x1a\n....IHDR").unwrap();
        let message = damage_message(&why);
        assert!(
            message.starts_with("The file is damaged")
                && message.contains("the prediction is of that part")
                && message.ends_with("part."),
            "{message}"
        );
    }
}
