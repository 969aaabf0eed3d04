//! The GPU self-check: a small matmul through GELU on each GPU device, compared with the CPU's
//! answer by `vit::close`'s rule, so a faulty driver or shader compiler is refused before a run
//! trains or predicts on garbage.

use anyhow::{Result, bail};
use burn::prelude::Device;

/// Refuses GPU devices that compute a small matrix product wrongly, before they train or predict
/// on garbage: a driver or shader-compiler fault shows here as a clear error. Call it after
/// `--precision` has configured the devices (that must come before their first tensor).
pub fn check(devices: &[Device], name: &str) -> Result<()> {
    let flex = Device::flex();
    for (i, device) in devices.iter().enumerate() {
        if *device != flex && !devices[..i].contains(device) {
            self_check(device, name)?;
        }
    }
    Ok(())
}

fn self_check(device: &Device, name: &str) -> Result<()> {
    self_check_with(device, name, probe)
}

/// How close a device's answer to the probe must be to the CPU's: 1e-3 relative (absolute
/// below 1), by `vit::close`'s rule, so a NaN, an infinity or a short or long answer fails.
const SELF_CHECK: vit::close::Tolerance = vit::close::Tolerance::rel(1e-3);

/// The self-check with the device's answer from `answer` (the probe, except in tests, which
/// put a faulty device's answers here).
fn self_check_with(
    device: &Device,
    name: &str,
    answer: impl Fn(&Device, &str) -> Result<Vec<f32>>,
) -> Result<()> {
    let want = probe(&Device::flex(), "the CPU")?;
    let got = answer(device, name)?;
    if let Err(e) = vit::close::check(&want, &got, SELF_CHECK) {
        bail!(
            "{name} computes wrong results (a matmul + GELU against the CPU's: {e}): its \
             driver or shader compiler is at fault; use --device cpu, or the `wgpu` build (see \
             docs/gpu.md)"
        );
    }
    Ok(())
}

/// A small matrix product through GELU, summed by rows, as `device` computes it.
fn probe(device: &Device, name: &str) -> Result<Vec<f32>> {
    use burn::tensor::{Tensor, TensorData};
    let (m, k, n) = (33, 70, 17);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0)
        .collect();
    let a = Tensor::<2>::from_data(TensorData::new(a, [m, k]), device);
    let b = Tensor::<2>::from_data(TensorData::new(b, [k, n]), device);
    (burn::tensor::activation::gelu(a.matmul(b)).sum_dim(1) + 0.5)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading back from {name}: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that answers the probe as the CPU does, then spoils the answer with `fault`.
    fn faulty(fault: fn(&mut Vec<f32>)) -> impl Fn(&Device, &str) -> Result<Vec<f32>> {
        move |device, name| {
            let mut answer = probe(device, name)?;
            fault(&mut answer);
            Ok(answer)
        }
    }

    fn refused(fault: fn(&mut Vec<f32>)) -> String {
        match self_check_with(&Device::flex(), "the faulty GPU", faulty(fault)) {
            Ok(()) => panic!("a faulty answer passed the self-check"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_right_answer_passes() {
        self_check_with(&Device::flex(), "a good GPU", probe).unwrap();
        self_check_with(
            &Device::flex(),
            "a GPU off by a little",
            faulty(|a| a[3] += 1e-4),
        )
        .unwrap();
        check(&[Device::flex()], "the CPU").unwrap();
    }

    #[test]
    fn a_nan_answer_is_refused() {
        let e = refused(|a| a[5] = f32::NAN);
        assert!(e.contains("the faulty GPU computes wrong results"), "{e}");
        assert!(e.contains("index 5") && e.contains("got NaN"), "{e}");
        let e = refused(|a| a.iter_mut().for_each(|v| *v = f32::NAN));
        assert!(e.contains("33 of 33"), "{e}");
    }

    #[test]
    fn an_infinite_answer_is_refused() {
        let e = refused(|a| a[0] = f32::INFINITY);
        assert!(e.contains("got inf"), "{e}");
        let e = refused(|a| a[32] = f32::NEG_INFINITY);
        assert!(e.contains("got -inf"), "{e}");
    }

    #[test]
    fn a_short_or_long_answer_is_refused() {
        let e = refused(|a| {
            a.pop();
        });
        assert!(e.contains("32 values where 33 were expected"), "{e}");
        assert!(refused(|a| a.push(0.0)).contains("34 values where 33"));
        assert!(refused(Vec::clear).contains("0 values where 33"));
    }

    #[test]
    fn a_wrong_answer_names_the_worst_value() {
        let e = refused(|a| {
            // Ten times its bound at 9; hundreds of times at 7.
            a[9] += 0.01 * a[9].abs().max(1.0);
            a[7] += 1000.0;
        });
        assert!(e.contains("2 of 33") && e.contains("index 7"), "{e}");
    }
}
