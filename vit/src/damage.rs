//! Signs that an image file was cut off.
//!
//! Decoders, like browsers, show what they could read of a truncated file: a JPEG that ends
//! mid-scan decodes to an image whose lower part is grey. That is worth showing, but not
//! silently, since the model then classifies a picture the person never took. These checks
//! read only the container's own framing, so they cost nothing next to decoding.

/// Why `bytes` look cut off, as a sentence for the person who gave them, or `None` when the
/// file's framing is complete (or its format records no end to check).
pub fn truncation(bytes: &[u8]) -> Option<String> {
    let what = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg_is_cut(bytes).then_some("the JPEG data stops before its end-of-image marker")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        (!contains(bytes, b"IEND")).then_some("the PNG stops before its IEND chunk")
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        (declared_le32(bytes, 4)?.saturating_add(8) > bytes.len() as u64)
            .then_some("the WebP is shorter than its header says")
    } else if bytes.starts_with(b"BM") {
        (declared_le32(bytes, 2)? > bytes.len() as u64)
            .then_some("the BMP is shorter than its header says")
    } else {
        None
    }?;
    Some(format!(
        "the file is damaged ({what}): only part of the image could be read, and the prediction is of that part"
    ))
}

/// Entropy-coded data escapes every 0xFF (as FF 00), so FF DA (start of scan) and FF D9 (end
/// of image) appear only as markers. A complete file has an end marker after its last scan;
/// anything after that end (some cameras append data) does not matter.
fn jpeg_is_cut(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_end = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    match (last_scan, last_end) {
        (Some(scan), Some(end)) => end < scan,
        (Some(_), None) => true,
        // No scan at all: the decoder refuses it.
        (None, _) => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn declared_le32(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, (x * y) as u8])
        });
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn whole_files_are_not_damaged() {
        for format in [
            image::ImageFormat::Jpeg,
            image::ImageFormat::Png,
            image::ImageFormat::WebP,
            image::ImageFormat::Bmp,
            image::ImageFormat::Gif,
        ] {
            assert_eq!(truncation(&encoded(format)), None, "{format:?}");
        }
    }

    #[test]
    fn a_jpeg_with_data_after_its_end_is_whole() {
        let mut jpeg = encoded(image::ImageFormat::Jpeg);
        jpeg.extend(b"trailing bytes some cameras write");
        assert_eq!(truncation(&jpeg), None);
    }

    #[test]
    fn files_cut_short_are_named() {
        for (format, what) in [
            (
                image::ImageFormat::Jpeg,
                "(the JPEG data stops before its end-of-image marker)",
            ),
            (
                image::ImageFormat::Png,
                "(the PNG stops before its IEND chunk)",
            ),
            (
                image::ImageFormat::WebP,
                "(the WebP is shorter than its header says)",
            ),
            (
                image::ImageFormat::Bmp,
                "(the BMP is shorter than its header says)",
            ),
        ] {
            let bytes = encoded(format);
            let cut = &bytes[..bytes.len() - 20];
            let msg = truncation(cut).unwrap_or_else(|| panic!("{format:?} not flagged"));
            assert_eq!(
                msg,
                format!(
                    "the file is damaged {what}: only part of the image could be read, and the prediction is of that part"
                )
            );
        }
    }

    /// The case the check exists for: the decoder reads a JPEG that ends mid-scan without
    /// complaint, and only the framing says it is partial.
    #[test]
    fn a_jpeg_cut_mid_scan_decodes_yet_is_flagged() {
        let bytes = encoded(image::ImageFormat::Jpeg);
        let cut = &bytes[..bytes.len() * 3 / 4];
        assert!(crate::preprocess::decode_image(cut).is_ok());
        assert!(truncation(cut).is_some());
    }
}
