//! `trainer predict` and `trainer patches`: a published model on image files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use vit::inference::{NoFit, Ranked, Verdict, rows, softmax, top_k, verdict};
use vit::preprocess::{Crop, Prepared, batch_tensor, is_blank, prepare_cropped};
use vit::weights::Manifest;

use crate::device::{DeviceArg, resolve};
use crate::model_arg::ModelArg;

/// Images per forward pass: large enough to use the cores, small enough for any machine.
const BATCH: usize = 32;

#[derive(Serialize)]
struct Answer<'a> {
    file: &'a str,
    logits: &'a [f32],
    probs: &'a [f32],
    top: &'a [Ranked],
    /// Whether a class fits (`vit::inference::verdict`, the page's rule too), and why not.
    #[serde(flatten)]
    verdict: Verdict,
}

#[derive(Serialize)]
struct Failure<'a> {
    file: &'a str,
    error: &'a str,
}

/// `trainer predict`'s options beside the model and the images.
pub struct PredictOptions {
    pub top: usize,
    pub json: bool,
    pub device: DeviceArg,
    pub crop: Option<Crop>,
    /// Run the model at this input size (its position embeddings resampled).
    pub image_size: Option<usize>,
}

pub fn run(model: &ModelArg, images: &[PathBuf], options: &PredictOptions) -> Result<ExitCode> {
    let PredictOptions {
        top: k,
        json,
        device,
        crop,
        image_size,
    } = *options;
    let (device, name) = resolve(device)?;
    crate::device::check(std::slice::from_ref(&device), &name)?;
    let (manifest, loaded) = model.load_at(&device, image_size)?;
    model.needs_classes(&manifest, "classify")?;
    let model = loaded;
    let size = manifest.config.image_size;
    let mut failed = 0;
    for chunk in images.chunks(BATCH) {
        // Each file is read and prepared on its own, so one bad file costs only itself.
        let mut ready: Vec<(String, Prepared)> = Vec::new();
        for path in chunk {
            let name = path.display().to_string();
            match read_and_prepare(path, &manifest, crop) {
                Ok(p) => ready.push((name, p)),
                Err(e) => {
                    failed += 1;
                    report_failure(&name, &format!("{e:#}"), json);
                }
            }
        }
        if ready.is_empty() {
            continue;
        }
        let inputs: Vec<&[f32]> = ready.iter().map(|(_, p)| p.chw.as_slice()).collect();
        let logits = model.forward(batch_tensor(&inputs, size, &device));
        let flat = logits
            .into_data()
            .try_to_vec::<f32>()
            .context("reading logits")?;
        for ((name, prepared), logits) in ready.iter().zip(rows(&flat, manifest.config.num_classes))
        {
            let probs = softmax(&logits);
            let top = top_k(&probs, &manifest.labels, k);
            let verdict = verdict(&probs, is_blank(&prepared.model_view));
            if json {
                let answer = Answer {
                    file: name,
                    logits: &logits,
                    probs: &probs,
                    top: &top,
                    verdict,
                };
                println!("{}", serde_json::to_string(&answer)?);
            } else {
                println!("{name}");
                match verdict.why_not {
                    Some(NoFit::Blank) => {
                        println!("  no class fits: the square is one flat colour; its guesses:")
                    }
                    Some(NoFit::Unsure) => println!(
                        "  no class fits: none has {:.0}% or more; its guesses:",
                        100.0 * vit::inference::MIN_TOP1
                    ),
                    None => {}
                }
                // ImageNet's names run longer than CIFAR's: the column fits the longest.
                let width = top
                    .iter()
                    .map(|r| r.label.chars().count())
                    .max()
                    .unwrap_or(0);
                let width = width.max(16);
                for (rank, r) in top.iter().enumerate() {
                    println!(
                        "  {}. {:<width$} {:6.2}%",
                        rank + 1,
                        r.label,
                        100.0 * r.prob
                    );
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} images failed", images.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn report_failure(name: &str, error: &str, json: bool) {
    eprintln!("error: {name}: {error}");
    if json {
        let f = Failure { file: name, error };
        println!(
            "{}",
            serde_json::to_string(&f).expect("plain strings serialise")
        );
    }
}

/// `crop`: the square the model sees, in the image's own pixels (`None`: the centre square).
pub(crate) fn read_and_prepare(
    path: &Path,
    manifest: &Manifest,
    crop: Option<Crop>,
) -> Result<Prepared> {
    let bytes = std::fs::read(path).context("cannot read the file")?;
    // Decoders show what a cut-off file holds, as browsers do: say so rather than classify it
    // as if it were whole.
    if let Some(why) = vit::damage::truncation(&bytes) {
        eprintln!(
            "warning: {}: {why}; the result is for the part that could be read",
            path.display()
        );
    }
    Ok(prepare_cropped(&bytes, &manifest.preprocess(), crop)?)
}

pub fn patches(image: &Path, model: &ModelArg, out: &Path, crop: Option<Crop>) -> Result<ExitCode> {
    let manifest = model.manifest()?;
    let prepared = read_and_prepare(image, &manifest, crop)
        .with_context(|| format!("reading image {}", image.display()))?;
    let png = crate::draw::patch_sheet(&prepared, &manifest.config);
    let mut bytes = std::io::Cursor::new(Vec::new());
    png.write_to(&mut bytes, image::ImageFormat::Png)?;
    vit::weights::write_atomic(out, &bytes.into_inner())?;
    println!(
        "wrote {} ({} patches of {}x{} px)",
        out.display(),
        manifest.config.num_patches(),
        manifest.config.patch_size,
        manifest.config.patch_size
    );
    Ok(ExitCode::SUCCESS)
}
