//! `pos_embed` resampled to another grid, against timm's `resample_abs_pos_embed` on the same
//! input (tests/fixtures/make_pos_embed_reference.py wrote both).

#[path = "../../tests/support/close.rs"]
mod close;

use std::path::PathBuf;

use burn::prelude::*;
use close::{Tolerance, assert_close};
use vit::pos_embed::{Resample, resample_abs_pos_embed};

/// PyTorch sums in f32 too; what is left is the order of a few additions.
const TOL: Tolerance = Tolerance::abs(1e-5);

fn reference(name: &str) -> (Vec<usize>, Vec<f32>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pos_embed_reference.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let values = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), values)
}

#[test]
fn resampled_positions_match_timm() {
    let device = Device::flex();
    let (shape, input) = reference("input");
    assert_eq!(shape, [1, 145, 8]);
    for (name, grid) in [
        ("up_16", [16, 16]),
        ("down_8", [8, 8]),
        ("wide_5x7", [5, 7]),
    ] {
        for (suffix, mode) in [
            ("aa", Resample::BicubicAntialias),
            ("plain", Resample::Bicubic),
        ] {
            let pos =
                Tensor::<3>::from_data(TensorData::new(input.clone(), shape.clone()), &device);
            let ours = resample_abs_pos_embed(pos, [12, 12], grid, 1, mode).unwrap();
            let (want_shape, want) = reference(&format!("{name}_{suffix}"));
            assert_eq!(ours.dims().to_vec(), want_shape, "{name} {suffix}");
            let ours = ours.into_data().try_into_vec_as::<f32>().unwrap();
            assert_close(&format!("{name} {suffix}"), &want, &ours, TOL);
            assert_eq!(
                ours[..8],
                input[..8],
                "{name} {suffix}: the class token is kept"
            );
        }
    }
}
