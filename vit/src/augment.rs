//! The geometric half of training-time augmentation, on 8-bit RGB squares (`side * side * 3`
//! bytes, rows top to bottom): a shifted crop of the zero-padded image and a horizontal flip.
//! The trainer draws them per image and step (`trainer/src/augment.rs`); the page's teaching
//! computes a few fixed views per photo with them ([`crate::teach`]).

/// The crop of the zero-padded image whose top-left corner is `(pad + dx, pad + dy)`.
pub fn shift(img: &[u8], side: usize, dx: isize, dy: isize) -> Vec<u8> {
    let mut out = vec![0u8; img.len()];
    let s = side as isize;
    for y in 0..s {
        let sy = y + dy;
        if !(0..s).contains(&sy) {
            continue;
        }
        // The overlapping run of this row, copied in one go.
        let (x0, x1) = ((-dx).max(0), (s - dx).min(s));
        if x0 >= x1 {
            continue;
        }
        let dst = ((y * s + x0) * 3) as usize;
        let src = ((sy * s + x0 + dx) * 3) as usize;
        let n = ((x1 - x0) * 3) as usize;
        out[dst..dst + n].copy_from_slice(&img[src..src + n]);
    }
    out
}

/// Mirrors the image left to right, in place.
pub fn hflip(img: &mut [u8], side: usize) {
    for row in img.chunks_exact_mut(side * 3) {
        for x in 0..side / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (side - 1 - x) * 3 + c);
            }
        }
    }
}
