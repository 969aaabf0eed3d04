//! Model pairs and weight exchange.
//!
//! A published model is two files side by side:
//! - `NAME.json`, the [`Manifest`]: config, class names, normalisation, provenance, metrics, and
//!   the weights file's name, size and SHA-256;
//! - `NAME.bpk`, the weights in burn's burnpack format.
//!
//! Loading checks the checksum first and then that every tensor fits the config, and lists
//! everything that does not. The same code loads from bytes in the browser.
//!
//! timm's state dicts are `crate::timm`'s, the page's list of models `crate::index`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{ApplyResult, BurnpackStore, FloatCastAdapter, ModuleSnapshot, ModuleStore};
use burn::tensor::DType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::VitConfig;
use crate::error::{Result, VitError};
use crate::model::VisionTransformer;
use crate::prefix::PrefixKind;
use crate::preprocess::{Normalization, Preprocess, Resize};

/// Written into every manifest so a stray JSON file is not mistaken for a model.
pub const MANIFEST_FORMAT: &str = "vitrine-model";
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsFile {
    /// File name, relative to the manifest's folder.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// Test-set figures recorded when a model is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub dataset: String,
    pub images: usize,
    pub top1: f64,
    pub top5: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Top-1 accuracy of each class, in label order.
    #[serde(default)]
    pub per_class: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub name: String,
    /// One line for people: what the model is and where it came from.
    #[serde(default)]
    pub description: String,
    pub config: VitConfig,
    pub labels: Vec<String>,
    pub normalization: Normalization,
    /// How a photo is resized and cropped (timm's eval transform); manifests written before
    /// it existed mean the default, Vitrine's own.
    #[serde(default)]
    pub resize: Resize,
    pub weights: WeightsFile,
    /// How the weights were made: `trainer train ...`, `timm import of FILE`, ...
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// The trainer's record of the run: recipe, command, device, time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
}

impl Manifest {
    /// A manifest for `config`, to be completed by [`save_pair`] with the weights entry.
    pub fn new(name: &str, config: VitConfig, labels: Vec<String>, norm: Normalization) -> Self {
        Self {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            name: name.into(),
            description: String::new(),
            config,
            labels,
            normalization: norm,
            resize: Resize::default(),
            weights: WeightsFile {
                file: format!("{name}.bpk"),
                sha256: String::new(),
                bytes: 0,
            },
            source: String::new(),
            metrics: None,
            training: None,
        }
    }

    /// Parses and checks a manifest; `origin` names it in messages (a path or a URL).
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let bad = |message: String| VitError::Manifest {
            path: origin.into(),
            message,
        };
        let m: Manifest = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(bad(format!(
                "format is '{}', expected '{MANIFEST_FORMAT}'",
                m.format
            )));
        }
        if m.version > MANIFEST_VERSION {
            return Err(bad(format!(
                "version {} is newer than this program understands ({MANIFEST_VERSION})",
                m.version
            )));
        }
        check_model_name(&m.name).map_err(|e| bad(e.to_string()))?;
        m.config.validate().map_err(|e| bad(e.to_string()))?;
        if m.labels.len() != m.config.num_classes {
            return Err(bad(format!(
                "{} labels for {} classes",
                m.labels.len(),
                m.config.num_classes
            )));
        }
        if m.normalization
            .std
            .iter()
            .any(|&s| !(s.is_finite() && s > 0.0))
        {
            return Err(bad(format!(
                "normalization std {:?} must be positive",
                m.normalization.std
            )));
        }
        m.resize.validate().map_err(|e| bad(e.to_string()))?;
        if m.weights.file.contains(['/', '\\']) || m.weights.file.starts_with('.') {
            return Err(bad(format!(
                "weights file '{}' must be a plain file name beside the manifest",
                m.weights.file
            )));
        }
        Ok(m)
    }

    /// Everything that turns a photo into this model's input.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            image_size: self.config.image_size as u32,
            resize: self.resize,
            norm: self.normalization,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serialises")
    }
}

pub use crate::error::MAX_NAME_LEN;

/// The one rule for a model's name, which becomes `NAME.json` and `NAME.bpk`: ASCII letters,
/// digits, '-', '_' and '.', starting with a letter or digit (a leading '.' would make hidden
/// files, which [`Manifest::from_json`] refuses as weights), and not `index` (`index.json` is
/// the page's model list).
pub fn check_model_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name != "index";
    if ok {
        Ok(())
    } else {
        Err(VitError::InvalidName(
            name.chars().take(MAX_NAME_LEN).collect(),
        ))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds the model a manifest describes and fills it with burnpack `weights`.
pub fn load_model(
    manifest: &Manifest,
    weights: &[u8],
    device: &Device,
) -> Result<VisionTransformer> {
    let found = sha256_hex(weights);
    if !found.eq_ignore_ascii_case(&manifest.weights.sha256) {
        return Err(VitError::Checksum {
            file: manifest.weights.file.clone(),
            expected: manifest.weights.sha256.clone(),
            found,
        });
    }
    // The config may be absurd even when the checksum is right: compare what it implies with
    // the weights' own header before allocating a model of that size.
    check_fits(&manifest.config, &burnpack_shapes(weights)?)?;
    let mut model = manifest.config.init(device)?;
    apply_burnpack(&mut model, weights).map_err(|e| match e {
        VitError::Weights(msg) => VitError::Weights(format!("{}: {msg}", manifest.weights.file)),
        other => other,
    })?;
    Ok(model)
}

/// A checkpoint's tensor names and their shapes.
pub type Shapes = BTreeMap<String, Vec<usize>>;

/// Tensor names and shapes in a burnpack's header; no tensor data is read.
pub fn burnpack_shapes(weights: &[u8]) -> Result<Shapes> {
    let mut store =
        BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(weights.to_vec())));
    shapes_in(&mut store, "not a readable burnpack")
}

/// The tensor names and shapes a store's header lists: the one reader of a checkpoint's shapes,
/// for burnpacks here and safetensors in `crate::timm`. `origin` leads a failure's message.
pub(crate) fn shapes_in(store: &mut impl ModuleStore, origin: &str) -> Result<Shapes> {
    let tensors = store
        .get_all_tensors()
        .map_err(|e| VitError::Weights(format!("{origin}: {e}")))?;
    Ok(tensors
        .iter()
        .map(|(name, t)| (name.clone(), t.shape.to_vec()))
        .collect())
}

/// Tensors a model of `config` holds (burn's paths and layouts: linear weights are
/// `[in, out]`, LayerNorm has `gamma`/`beta`), worked out without building it.
pub fn expected_tensors(config: &VitConfig) -> Vec<(String, Vec<usize>)> {
    let (d, h, p) = (config.embed_dim, config.mlp_hidden(), config.patch_size);
    let prefix = config.prefix_tokens();
    let mut t: Vec<(String, Vec<usize>)> = vec![(
        "patch_embed.proj.weight".into(),
        vec![d, config.in_chans, p, p],
    )];
    if !config.has_norm_pre() {
        t.push(("patch_embed.proj.bias".into(), vec![d]));
    }
    for kind in PrefixKind::ALL {
        if prefix.of(kind) > 0 {
            t.push((kind.param().into(), vec![1, prefix.of(kind), d]));
        }
    }
    t.push(("pos_embed".into(), vec![1, config.pos_embed_len(), d]));
    if config.has_norm_pre() {
        t.extend([
            ("norm_pre.gamma".into(), vec![d]),
            ("norm_pre.beta".into(), vec![d]),
        ]);
    }
    let layer_scale = config.init_values.is_some();
    for i in 0..config.depth {
        let b = |rest: &str| format!("blocks.{i}.{rest}");
        t.extend([
            (b("norm1.gamma"), vec![d]),
            (b("norm1.beta"), vec![d]),
            (b("attn.qkv.weight"), vec![d, 3 * d]),
        ]);
        if config.qkv_bias {
            t.push((b("attn.qkv.bias"), vec![3 * d]));
        }
        t.extend([
            (b("attn.proj.weight"), vec![d, d]),
            (b("attn.proj.bias"), vec![d]),
            (b("norm2.gamma"), vec![d]),
            (b("norm2.beta"), vec![d]),
            (b("mlp.fc1.weight"), vec![d, h]),
            (b("mlp.fc1.bias"), vec![h]),
            (b("mlp.fc2.weight"), vec![h, d]),
            (b("mlp.fc2.bias"), vec![d]),
        ]);
        if layer_scale {
            t.extend([(b("ls1.gamma"), vec![d]), (b("ls2.gamma"), vec![d])]);
        }
    }
    t.extend([
        ("norm.gamma".into(), vec![d]),
        ("norm.beta".into(), vec![d]),
    ]);
    let c = config.num_classes;
    for head in ["head", "head_dist"].iter().take(config.num_heads_out()) {
        t.extend([
            (format!("{head}.weight"), vec![d, c]),
            (format!("{head}.bias"), vec![c]),
        ]);
    }
    t
}

/// How many tensors [`expected_tensors`] lists, without listing them.
fn expected_tensor_count(config: &VitConfig) -> usize {
    let per_block = 11 + config.qkv_bias as usize + 2 * config.init_values.is_some() as usize;
    let prefix = config.prefix_tokens();
    let outside = 2 // patch_embed.proj.weight, pos_embed
        + !config.has_norm_pre() as usize
        + 2 * config.has_norm_pre() as usize
        + PrefixKind::ALL.iter().filter(|&&k| prefix.of(k) > 0).count()
        + 2 // norm
        + 2 * config.num_heads_out();
    config
        .depth
        .saturating_mul(per_block)
        .saturating_add(outside)
}

/// A mismatch report lists at most this many tensors, then says how many more there are.
const MAX_LISTED: usize = 12;

/// A config implying this many more tensors than the weights hold is refused on the counts
/// alone, without listing its tensors.
const MAX_COMPARED: usize = 4096;

fn capped(mut problems: Vec<String>) -> String {
    let more = problems.len().saturating_sub(MAX_LISTED);
    problems.truncate(MAX_LISTED);
    if more > 0 {
        problems.push(format!("  ... and {more} more"));
    }
    problems.join("\n")
}

/// Checks a weights header against what `config` implies: tensor count and parameter count
/// first (cheap whatever the config says), then every name and shape. Time and memory are
/// bounded by the header, not by the config.
pub fn check_fits(config: &VitConfig, shapes: &Shapes) -> Result<()> {
    let held_params: usize = shapes
        .values()
        .map(|s| s.iter().fold(1usize, |a, &b| a.saturating_mul(b)))
        .fold(0usize, |a, b| a.saturating_add(b));
    let (want_count, want_params) = (expected_tensor_count(config), config.num_params());
    let summary = format!(
        "  the config (depth {}, embed_dim {}, {} tokens, {} classes) implies {want_count} tensors and {want_params} parameters; the weights hold {} tensors and {held_params} parameters",
        config.depth,
        config.embed_dim,
        config.num_tokens(),
        config.num_classes,
        shapes.len()
    );
    // Listing an absurd config's tensors would cost what the check exists to avoid.
    if want_count > shapes.len().saturating_add(MAX_COMPARED) {
        return Err(VitError::WeightsMismatch(summary));
    }
    let expected = expected_tensors(config);
    let mut problems = Vec::new();
    for (name, shape) in &expected {
        match shapes.get(name) {
            None => problems.push(format!("  '{name}' {shape:?} is missing from the weights")),
            Some(found) if found != shape => problems.push(format!(
                "  '{name}' has shape {found:?} in the weights, the config implies {shape:?}"
            )),
            Some(_) => {}
        }
    }
    let names: std::collections::BTreeSet<&str> =
        expected.iter().map(|(n, _)| n.as_str()).collect();
    for name in shapes.keys().filter(|n| !names.contains(n.as_str())) {
        problems.push(format!("  '{name}' is in the weights but not in the model"));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(VitError::WeightsMismatch(format!(
        "{summary}\n{}",
        capped(problems)
    )))
}

/// Fills `model` with burnpack `weights` (which also carry the parameter ids an optimizer
/// state refers to), refusing any tensor that is missing, extra or of the wrong shape.
pub fn apply_burnpack(model: &mut VisionTransformer, weights: &[u8]) -> Result<()> {
    // Weights are stored in f32; a model built in bf16 or f16 (trainer --precision) takes them
    // in its own type.
    let dtype = model.pos_embed.val().dtype();
    let mut store =
        BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(weights.to_vec())))
            .with_from_adapter(FloatCastAdapter::to(dtype))
            .validate(false)
            .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| VitError::Weights(e.to_string()))?;
    check_applied(&result)
}

/// Turns burn-store's report into one error listing every tensor that did not fit.
pub(crate) fn check_applied(result: &ApplyResult) -> Result<()> {
    let mut problems: Vec<String> = result.errors.iter().map(|e| format!("  {e}")).collect();
    problems.extend(
        result
            .missing
            .iter()
            .map(|(path, _)| format!("  '{path}' is missing from the weights")),
    );
    problems.extend(
        result
            .unused
            .iter()
            .map(|path| format!("  '{path}' is in the weights but not in the model")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(VitError::WeightsMismatch(capped(problems)))
    }
}

/// The model's weights as burnpack bytes.
pub fn model_to_bytes(model: &VisionTransformer) -> Result<Vec<u8>> {
    // Always f32, whatever the model computed in: the page and timm read f32.
    let mut store =
        BurnpackStore::from_bytes(None).with_to_adapter(FloatCastAdapter::to(DType::F32));
    model
        .save_into(&mut store)
        .map_err(|e| VitError::Weights(e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| VitError::Weights(e.to_string()))?;
    Ok(bytes.to_vec())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| VitError::io(dir, e))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(VitError::io(path, e));
    }
    Ok(())
}

/// Writes `NAME.bpk` then `NAME.json` into `dir`, filling in `manifest.weights`; returns the
/// manifest's path.
///
/// The weights go first: until the manifest is replaced, an old manifest that meets the new
/// weights fails its checksum instead of loading the wrong numbers.
pub fn save_pair(
    dir: &Path,
    manifest: &mut Manifest,
    model: &VisionTransformer,
) -> Result<PathBuf> {
    save_pair_bytes(dir, manifest, &model_to_bytes(model)?)
}

/// As [`save_pair`], with the weights already as burnpack bytes ([`model_to_bytes`]).
pub fn save_pair_bytes(dir: &Path, manifest: &mut Manifest, bytes: &[u8]) -> Result<PathBuf> {
    manifest.weights = WeightsFile {
        file: format!("{}.bpk", manifest.name),
        sha256: sha256_hex(bytes),
        bytes: bytes.len() as u64,
    };
    write_atomic(&dir.join(&manifest.weights.file), bytes)?;
    let json_path = dir.join(format!("{}.json", manifest.name));
    write_atomic(&json_path, manifest.to_json().as_bytes())?;
    Ok(json_path)
}

/// Reads a manifest and its weights from disk.
pub fn load_pair(manifest_path: &Path, device: &Device) -> Result<(Manifest, VisionTransformer)> {
    let text =
        std::fs::read_to_string(manifest_path).map_err(|e| VitError::io(manifest_path, e))?;
    let manifest = Manifest::from_json(&text, &manifest_path.display().to_string())?;
    let weights_path = manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&manifest.weights.file);
    let weights = std::fs::read(&weights_path).map_err(|e| VitError::io(&weights_path, e))?;
    let model = load_model(&manifest, &weights, device)?;
    Ok((manifest, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tensor_count_is_the_lists_length() {
        let base = VitConfig::new().with_depth(3);
        for config in [
            base.clone(),
            base.clone().with_qkv_bias(false).with_num_classes(0),
            base.clone()
                .with_distilled(Some(true))
                .with_reg_tokens(Some(4))
                .with_init_values(Some(1e-6))
                .with_pre_norm(Some(true)),
            base.with_class_token(Some(false))
                .with_pooling(crate::config::Pooling::Mean),
        ] {
            assert_eq!(
                expected_tensor_count(&config),
                expected_tensors(&config).len(),
                "{config:?}"
            );
        }
    }
}
