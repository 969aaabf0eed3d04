//! `trainer explain`: ask a published model about one image. The map of any token at any
//! layer and head (or fused heads), where it attends or which tokens attend to it, attention
//! rollout, or the class-specific relevance of Chefer et al. (`vit::explain` computes them
//! all; the page draws the same numbers). Any token: the prefix tokens (class, distillation,
//! registers, as `vit::prefix` names them) and the patches; rollout starts from the class
//! token, or from the patches' mean in a model without one, and the caption says which.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use image::{Rgb, RgbImage, imageops};
use serde::Serialize;
use vit::PrefixTokens;
use vit::explain::{
    Heads, Method, ModelTokens, Query, Relevance, Token, TokenMap, explain,
    gradient_weighted_attention,
};
use vit::inference::{Ranked, softmax, split_attention_for, stack_attention, top_k};
use vit::preprocess::{Crop, Prepared, batch_tensor};
use vit::rollout::Heatmap;
use vit::weights::Manifest;

use crate::device::{DeviceArg, resolve};
use crate::draw::outline;
use crate::model_arg::ModelArg;

/// `trainer explain`'s arguments.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The image: JPEG, PNG, WebP, GIF or BMP, any size.
    pub image: PathBuf,
    /// The model's manifest (NAME.json, with NAME.bpk beside it), or hf-hub:ORG/NAME[@REVISION].
    #[arg(long)]
    pub model: ModelArg,
    /// attention (one layer), rollout (through the layers) or relevance (for a class).
    #[arg(long, default_value = "attention")]
    pub method: Method,
    /// From 1. Attention: the layer shown; rollout and relevance: through this layer.
    /// Default: the last.
    #[arg(long)]
    pub layer: Option<usize>,
    /// A head's number from 1, or mean, max or min of all heads (relevance: mean only).
    #[arg(long, default_value = "mean")]
    pub head: Heads,
    /// The token asked about: cls (the class token), dist (the distillation token), reg1,
    /// reg2... (the registers), patchK (patch K, row by row, from 1), patches (their mean),
    /// output (what the classifier reads), or a token's number in the sequence (the prefix
    /// tokens first). Default: the class token, or the patches' mean in a model without one;
    /// output for relevance.
    #[arg(long)]
    pub token: Option<Token>,
    /// Which tokens attend to the token (its column), instead of where it attends (its row).
    #[arg(long)]
    pub reverse: bool,
    /// Relevance: the class, by index or label (default: the most probable).
    #[arg(long)]
    pub class: Option<String>,
    /// Write the heat map over the photo to this PNG.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the map as JSON: every token's value and the patch grid.
    #[arg(long)]
    pub json: bool,
    /// The square the model sees, as x,y,size in the image's pixels (as for predict).
    #[arg(long)]
    pub crop: Option<Crop>,
    /// Run the model at this input size, a multiple of its patch size (default: its own); its
    /// position embeddings are resampled as timm does (bicubic).
    #[arg(long)]
    pub image_size: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
}

#[derive(Serialize)]
struct Answer<'a> {
    file: &'a str,
    model: &'a str,
    #[serde(flatten)]
    query: Query,
    /// The class relevance is for (relevance only).
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'a Ranked>,
    /// Every token's value, the prefix tokens first.
    tokens: &'a [f32],
    /// The prefix tokens' names, in order (`cls`, `dist`, `reg1`, ...): the values before the
    /// patches' in `tokens`.
    prefix_tokens: Vec<String>,
    /// The patches' values, row by row.
    grid: Vec<&'a [f32]>,
}

pub fn run(args: ExplainArgs) -> Result<ExitCode> {
    if args.class.is_some() && args.method != Method::Relevance {
        bail!("--class is for --method relevance (attention and rollout do not depend on a class)");
    }
    let (device, name) = resolve(args.device)?;
    crate::device::check(std::slice::from_ref(&device), &name)?;
    let (manifest, model) = args.model.load_at(&device, args.image_size)?;
    if args.method == Method::Relevance && manifest.config.num_classes == 0 {
        bail!(
            "{} has no classes (a feature model without a classifier): relevance is for a class; \
             attention and rollout apply",
            args.model
        );
    }
    let prefix = model.prefix;
    let prepared = crate::predict::read_and_prepare(&args.image, &manifest, args.crop)
        .with_context(|| format!("reading image {}", args.image.display()))?;
    let input = batch_tensor(&[&prepared.chw], manifest.config.image_size, &device);

    let (logits, layers) = model.forward_with_attention(input.clone());
    let logits = logits
        .into_data()
        .try_to_vec::<f32>()
        .context("reading logits")?;
    let stacked = stack_attention(layers);
    let dims = stacked.dims();
    let flat = stacked
        .into_data()
        .try_to_vec::<f32>()
        .context("reading attention")?;
    let maps = split_attention_for(&flat, dims, prefix).remove(0);
    let probs = softmax(&logits);

    let mut query = Query {
        method: args.method,
        layer: args.layer,
        heads: args.head,
        token: args
            .token
            .unwrap_or(Token::default_for(args.method, prefix)),
        reverse: args.reverse,
    };
    let (class, relevance) = if args.method == Method::Relevance {
        let class = pick_class(args.class.as_deref(), &manifest, &probs)?;
        let cams = gradient_weighted_attention(&model, input, class.index)?;
        let [layers, tokens, _] = cams.dims();
        let cams = cams
            .into_data()
            .try_to_vec::<f32>()
            .context("reading gradients")?;
        (
            Some(class),
            Some(Relevance {
                layers,
                tokens,
                cams,
            }),
        )
    } else {
        (None, None)
    };
    let map = explain(&maps, relevance.as_ref(), manifest.config.pooling, &query)?;
    query.layer = Some(query.layer.unwrap_or(maps.layers));

    let file = args.image.display().to_string();
    let patches = map.patches();
    if args.json {
        let answer = Answer {
            file: &file,
            model: &manifest.name,
            query,
            class: class.as_ref(),
            tokens: &map.values,
            prefix_tokens: (0..prefix.count()).map(|i| prefix.short_name(i)).collect(),
            grid: patches.values.chunks(patches.grid.max(1)).collect(),
        };
        println!("{}", serde_json::to_string(&answer)?);
    } else {
        let model_tokens = ModelTokens {
            prefix,
            pooling: manifest.config.pooling,
            patches: manifest.config.num_patches(),
            layers: maps.layers,
        };
        let class = class
            .as_ref()
            .map(|c| format!("{} ({:.1}%)", c.label, 100.0 * c.prob));
        println!("{}", query.caption(&model_tokens, class.as_deref()));
        println!("  {}", values_line(&map, &patches));
    }
    if let Some(out) = &args.out {
        let selected = selected_patch(&query, prefix, manifest.config.num_patches());
        let picture = draw(&prepared, &map, selected);
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut bytes, image::ImageFormat::Png)?;
        vit::weights::write_atomic(out, &bytes.into_inner())?;
        if !args.json {
            println!("wrote {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--class` as an index or a label; the most probable class without it.
fn pick_class(arg: Option<&str>, manifest: &Manifest, probs: &[f32]) -> Result<Ranked> {
    let labels = &manifest.labels;
    let Some(arg) = arg else {
        return Ok(top_k(probs, labels, 1).remove(0));
    };
    let index = match arg.parse::<usize>() {
        Ok(i) if i < probs.len() => i,
        Ok(i) => bail!(
            "there is no class {i}: the model has classes 0 to {}",
            probs.len() - 1
        ),
        Err(_) => labels.iter().position(|l| l == arg).with_context(|| {
            let known: Vec<&str> = labels.iter().take(12).map(String::as_str).collect();
            format!(
                "the model has no class '{arg}'; give an index or one of: {}{}",
                known.join(", "),
                if labels.len() > 12 { ", ..." } else { "" }
            )
        })?,
    };
    Ok(Ranked::of(index, probs, labels))
}

/// The prefix tokens' values and the strongest patch, in one line.
fn values_line(map: &TokenMap, patches: &Heatmap) -> String {
    let prefix: Vec<String> = map
        .prefix_values()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = map.prefix.describe(i);
            format!("{} {v:.4}", name.strip_prefix("the ").unwrap_or(&name))
        })
        .collect();
    match prefix.is_empty() {
        true => strongest(patches),
        false => format!("{}; {}", prefix.join(", "), strongest(patches)),
    }
}

fn strongest(map: &Heatmap) -> String {
    let g = map.grid.max(1);
    match map.peak() {
        Some(i) => format!(
            "strongest on patch {} (row {}, column {}) at {:.4}",
            i + 1,
            i / g + 1,
            i % g + 1,
            map.values[i]
        ),
        None => "no patches".into(),
    }
}

/// The patch (from 0) the query is about, to outline.
fn selected_patch(q: &Query, prefix: PrefixTokens, patches: usize) -> Option<usize> {
    q.token.index(prefix, patches).and_then(|i| prefix.patch(i))
}

const PANEL: u32 = 320;
const MARGIN: u32 = 12;
const OPACITY: f32 = 0.65;

/// The square the model saw with the map over it (smoothed, as the page draws it), beside the
/// model's view under the map's patches; the patch asked about outlined on both.
fn draw(prepared: &Prepared, map: &TokenMap, selected: Option<usize>) -> RgbImage {
    let heat = map.patches();
    let g = heat.grid.max(1) as u32;
    let values = heat.normalized();
    let mut sheet = RgbImage::from_pixel(MARGIN * 3 + PANEL * 2, MARGIN * 2 + PANEL, WHITE);

    // 1. The photo's square, with the map upsampled smoothly over it.
    let c = prepared.crop;
    let (w, h) = prepared.original.dimensions();
    let (x, y) = ((c.x as u32).min(w - 1), (c.y as u32).min(h - 1));
    let side = (c.side.round() as u32).clamp(1, (w - x).min(h - y));
    let square = imageops::crop_imm(&prepared.original, x, y, side, side).to_image();
    let photo = imageops::resize(&square, PANEL, PANEL, imageops::FilterType::Triangle);
    let grid = image::ImageBuffer::from_fn(g, g, |col, row| {
        image::Luma([values[(row * g + col) as usize]])
    });
    let smooth = imageops::resize(&grid, PANEL, PANEL, imageops::FilterType::Triangle);
    let over = RgbImage::from_fn(PANEL, PANEL, |px, py| {
        blend(*photo.get_pixel(px, py), smooth.get_pixel(px, py).0[0])
    });
    imageops::overlay(&mut sheet, &over, MARGIN as i64, MARGIN as i64);

    // 2. The model's view under the map, one square per patch.
    let view = imageops::resize(
        &prepared.model_view,
        PANEL,
        PANEL,
        imageops::FilterType::Nearest,
    );
    let cell = PANEL as f32 / g as f32;
    let blocks = RgbImage::from_fn(PANEL, PANEL, |px, py| {
        let (col, row) = (
            ((px as f32 / cell) as u32).min(g - 1),
            ((py as f32 / cell) as u32).min(g - 1),
        );
        blend(*view.get_pixel(px, py), values[(row * g + col) as usize])
    });
    let x1 = MARGIN * 2 + PANEL;
    imageops::overlay(&mut sheet, &blocks, x1 as i64, MARGIN as i64);

    if let Some(p) = selected {
        let (row, col) = (p as u32 / g, p as u32 % g);
        for x0 in [MARGIN, x1] {
            let (rx, ry) = (
                x0 + (col as f32 * cell) as u32,
                MARGIN + (row as f32 * cell) as u32,
            );
            let s = cell.round() as u32;
            for inset in 0..2 {
                let side = s.saturating_sub(2 * inset);
                outline(&mut sheet, rx + inset, ry + inset, side, side, WHITE);
            }
            let side = s.saturating_sub(4);
            outline(&mut sheet, rx + 2, ry + 2, side, side, INK);
        }
    }
    sheet
}

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([23, 26, 38]);

fn blend(photo: Rgb<u8>, v: f32) -> Rgb<u8> {
    let colour = vit::colormap::magma(v);
    let a = OPACITY * vit::colormap::alpha(v);
    Rgb([0, 1, 2].map(|i| (photo.0[i] as f32 * (1.0 - a) + colour[i] as f32 * a).round() as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit::preprocess::{Normalization, Preprocess, prepare_decoded};

    #[test]
    fn the_picture_shows_the_map_and_outlines_the_patch() {
        let photo = RgbImage::from_pixel(200, 100, Rgb([128, 128, 128]));
        let prepared = prepare_decoded(photo, &Preprocess::new(16, Normalization::CIFAR10));
        // A 4x4 grid, hot only on patch 6 (row 1, column 2 from 0).
        let mut values = vec![0.0; 17];
        values[1 + 6] = 0.5;
        let map = TokenMap {
            values,
            prefix: PrefixTokens::CLASS,
        };
        let sheet = draw(&prepared, &map, Some(6));
        assert_eq!(
            sheet.dimensions(),
            (MARGIN * 3 + PANEL * 2, MARGIN * 2 + PANEL)
        );
        let cell = PANEL / 4;
        let x1 = MARGIN * 2 + PANEL;
        let centre = |x0: u32, row: u32, col: u32| {
            *sheet.get_pixel(x0 + col * cell + cell / 2, MARGIN + row * cell + cell / 2)
        };
        let (hot, cold) = (centre(x1, 1, 2), centre(x1, 3, 0));
        assert_eq!(hot, blend(Rgb([128, 128, 128]), 1.0));
        assert_eq!(cold, blend(Rgb([128, 128, 128]), 0.0));
        assert_ne!(hot, cold);
        // The smoothed panel peaks there too.
        let brightness = |p: Rgb<u8>| p.0.iter().map(|&c| c as u32).sum::<u32>();
        assert!(brightness(centre(MARGIN, 1, 2)) > brightness(centre(MARGIN, 3, 0)));
        // The outline: white at the patch's corner.
        assert_eq!(*sheet.get_pixel(x1 + 2 * cell, MARGIN + cell), WHITE);
    }

    #[test]
    fn the_patch_asked_about_is_outlined() {
        // The caption itself is vit's (`Query::caption`), tested there.
        let q = Query {
            layer: Some(3),
            heads: Heads::One(2),
            token: Token::Index(5),
            reverse: true,
            ..Query::default()
        };
        assert_eq!(selected_patch(&q, PrefixTokens::CLASS, 16), Some(4));
        assert_eq!(
            selected_patch(&Query::default(), PrefixTokens::CLASS, 16),
            None
        );
        // Registers come first: token 5 of a model with four is patch 1.
        let dino = PrefixTokens {
            registers: 4,
            embedded: false,
            ..PrefixTokens::CLASS
        };
        assert_eq!(selected_patch(&q, dino, 16), Some(0), "token 5: patch 1");
    }
}
