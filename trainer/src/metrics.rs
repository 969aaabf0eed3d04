//! A run's record: `RUN/metrics.csv`, one row per epoch, written after every epoch and read
//! back on `--resume` (and by the plots).

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One row of RUN/metrics.csv.
///
/// Accuracies (`train_acc`, `top1`, `top5`) are fractions in [0, 1]; the plots show them in
/// percent. Losses are mean cross-entropy per image.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub top1: f64,
    pub top5: f64,
    pub lr: f64,
    pub images_per_sec: f64,
    pub seconds: f64,
}

/// Columns metrics.csv must have (the fields of [`EpochMetrics`], in their order): a file
/// written by a later version with extra columns still reads.
const COLUMNS: [&str; 9] = [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "top1",
    "top5",
    "lr",
    "images_per_sec",
    "seconds",
];

/// Writes `rows` as metrics.csv: a header, then one line per epoch. Floats are written in
/// their shortest round-trip form, so reading the file back gives exactly the same numbers.
pub fn write_csv(rows: &[EpochMetrics], out: &Path) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(COLUMNS)?;
    }
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().context("writing metrics")?;
    vit::weights::write_atomic(out, &bytes)
        .with_context(|| format!("writing metrics to {}", out.display()))
}

/// Reads metrics.csv. A missing file is an empty history (a run that has not finished an
/// epoch yet); anything unreadable is an error naming the file and line.
pub fn read_csv(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse_csv(&text).with_context(|| format!("reading {}", path.display()))
}

fn parse_csv(text: &str) -> Result<Vec<EpochMetrics>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader.headers()?.clone();
    if let Some(column) = COLUMNS.iter().find(|c| !header.iter().any(|h| h == **c)) {
        bail!("line 1: header has no `{column}` column (header: {header:?})");
    }
    reader
        .deserialize()
        .map(|row| row.map_err(|e| describe(&e, &header)))
        .collect()
}

/// A csv error as "line N: what", naming the column rather than its index.
fn describe(e: &csv::Error, header: &csv::StringRecord) -> anyhow::Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => anyhow::anyhow!("line {line}: expected {expected_len} fields, found {len}"),
        csv::ErrorKind::Deserialize { err, .. } => {
            let column = err
                .field()
                .and_then(|f| header.get(f as usize))
                .unwrap_or("?");
            anyhow::anyhow!("line {line}: `{column}`: {}", err.kind())
        }
        _ => anyhow::anyhow!("line {line}: {e}"),
    }
}

/// Made-up rows shaped like a real run's (losses fall, accuracies rise, a little noise), for
/// this file's tests and the plots'.
#[cfg(test)]
pub(crate) fn fake_rows(epochs: usize) -> Vec<EpochMetrics> {
    (1..=epochs)
        .map(|e| {
            let t = e as f64 / epochs.max(1) as f64;
            let wiggle = ((e as f64) * 1.7).sin() * 0.01;
            EpochMetrics {
                epoch: e,
                train_loss: 2.3 * (-3.0 * t).exp() + 0.15 + wiggle,
                train_acc: 0.1 + 0.85 * (1.0 - (-3.5 * t).exp()) + wiggle,
                test_loss: 2.3 * (-2.5 * t).exp() + 0.45 + 0.2 * t * t - wiggle,
                top1: 0.1 + 0.72 * (1.0 - (-3.0 * t).exp()) - wiggle,
                top5: 0.5 + 0.47 * (1.0 - (-4.0 * t).exp()),
                lr: 1e-3 * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0,
                images_per_sec: 1234.5 + e as f64,
                seconds: 40.25 * e as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/metrics.csv");
        let mut rows = fake_rows(7);
        rows[3].test_loss = f64::NAN; // NaN != NaN, so compare that one by hand
        rows[4].lr = 1e-300;
        write_csv(&rows, &path).unwrap();
        let back = read_csv(&path).unwrap();
        assert_eq!(back.len(), rows.len());
        assert!(back[3].test_loss.is_nan());
        rows[3].test_loss = 0.0;
        let mut back = back;
        back[3].test_loss = 0.0;
        assert_eq!(back, rows);

        write_csv(&[], &path).unwrap();
        assert!(read_csv(&path).unwrap().is_empty());
        assert!(
            read_csv(&dir.path().join("missing.csv"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn csv_reads_columns_by_name() {
        let text = "seconds,epoch,top1,top5,lr,train_loss,train_acc,test_loss,images_per_sec,extra\n\
                    10,3,0.5,0.9,0.001,1.5,0.4,1.6,100,x\n";
        let rows = parse_csv(text).unwrap();
        assert_eq!(rows[0].epoch, 3);
        assert_eq!(rows[0].seconds, 10.0);
        assert_eq!(rows[0].top5, 0.9);
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        write_csv(&fake_rows(3), &path).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("4,0.1,0.2,oops,0.4,0.5,0.6,0.7,0.8\n");
        std::fs::write(&path, &text).unwrap();
        let err = format!("{:#}", read_csv(&path).unwrap_err());
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("test_loss"), "{err}");
        assert!(err.contains("metrics.csv"), "{err}");

        let err = format!("{:#}", parse_csv("epoch,top1\n1,2\n").unwrap_err());
        assert!(
            err.contains("line 1") && err.contains("train_loss"),
            "{err}"
        );
        let short = format!("{}\n1,2,3\n", COLUMNS.join(","));
        let err = format!("{:#}", parse_csv(&short).unwrap_err());
        assert!(
            err.contains("line 2") && err.contains("expected 9 fields"),
            "{err}"
        );
    }
}
