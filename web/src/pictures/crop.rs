//! Moving the square the model sees: pure geometry on `vit::preprocess::Crop`, in the
//! original photo's pixels, for the pointer and the keyboard. No DOM here, so it is tested
//! natively; `events.rs` feeds it and `ui.rs` places the square.

use vit::preprocess::Crop;

/// A square smaller than this is mostly interpolation once resized to the model's input.
const MIN_SIDE: u32 = 8;

/// What a pointer does to the square.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gesture {
    /// Grabbed inside: moves it.
    Move,
    /// Grabbed by the bottom-right corner: resizes it, the top-left corner staying put.
    Resize,
}

/// The smallest side the square may take on a `width` x `height` photo.
fn min_side(width: u32, height: u32) -> u32 {
    MIN_SIDE.min(width.min(height)).max(1)
}

/// The square after a drag of (`dx`, `dy`) photo pixels from where it was at `start`.
pub fn dragged(start: Crop, gesture: Gesture, dx: f64, dy: f64, width: u32, height: u32) -> Crop {
    let start = start.clamped(width, height);
    match gesture {
        Gesture::Move => {
            let x = (start.x as f64 + dx).round().max(0.0) as u32;
            let y = (start.y as f64 + dy).round().max(0.0) as u32;
            Crop { x, y, ..start }.clamped(width, height)
        }
        Gesture::Resize => {
            // The larger of the two movements, so a diagonal drag follows the pointer.
            let grow = if dx.abs() >= dy.abs() { dx } else { dy };
            let most = (width - start.x).min(height - start.y);
            let size = (start.size as f64 + grow)
                .round()
                .clamp(min_side(width, height) as f64, most as f64) as u32;
            Crop { size, ..start }
        }
    }
}

/// The square after a key press, or `None` for keys that do not move it. Arrows move it by
/// a fiftieth of the photo's shorter side (a fifth with Shift); `+`/`-` (and Page Up/Down)
/// grow and shrink it around its centre; Home puts it back in the centre, full size.
pub fn keyed(crop: Crop, key: &str, shift: bool, width: u32, height: u32) -> Option<Crop> {
    let crop = crop.clamped(width, height);
    let short = width.min(height) as f64;
    let step = (short / if shift { 5.0 } else { 50.0 }).round().max(1.0);
    let moved = |dx: f64, dy: f64| dragged(crop, Gesture::Move, dx, dy, width, height);
    Some(match key {
        "ArrowLeft" => moved(-step, 0.0),
        "ArrowRight" => moved(step, 0.0),
        "ArrowUp" => moved(0.0, -step),
        "ArrowDown" => moved(0.0, step),
        "+" | "=" | "PageUp" => around_centre(crop, step * 2.0, width, height),
        "-" | "_" | "PageDown" => around_centre(crop, -step * 2.0, width, height),
        "Home" => Crop::centre(width, height),
        _ => return None,
    })
}

/// Grows (or shrinks, for a negative `by`) the square keeping its centre where it is, as far
/// as the photo's edges allow.
fn around_centre(crop: Crop, by: f64, width: u32, height: u32) -> Crop {
    let size = (crop.size as f64 + by)
        .round()
        .clamp(min_side(width, height) as f64, width.min(height) as f64);
    let centre = (
        crop.x as f64 + crop.size as f64 / 2.0,
        crop.y as f64 + crop.size as f64 / 2.0,
    );
    Crop {
        x: (centre.0 - size / 2.0).round().max(0.0) as u32,
        y: (centre.1 - size / 2.0).round().max(0.0) as u32,
        size: size as u32,
    }
    .clamped(width, height)
}

/// The square as percentages of the photo (left, top, width, height), for CSS: the square
/// then follows the photo however the page is resized.
pub fn percent(crop: Crop, width: u32, height: u32) -> [f64; 4] {
    let (w, h) = (width.max(1) as f64, height.max(1) as f64);
    [
        100.0 * crop.x as f64 / w,
        100.0 * crop.y as f64 / h,
        100.0 * crop.size as f64 / w,
        100.0 * crop.size as f64 / h,
    ]
}

/// The size to show a `width` x `height` photo at: as wide as `room` allows, at most
/// `max_height` tall, in CSS pixels.
pub fn frame_size(width: u32, height: u32, room: f64, max_height: f64) -> (f64, f64) {
    let (w, h) = (width.max(1) as f64, height.max(1) as f64);
    let scale = (room / w).min(max_height / h);
    ((w * scale).floor().max(1.0), (h * scale).floor().max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 300;
    const H: u32 = 100;

    fn centre() -> Crop {
        Crop::centre(W, H)
    }

    #[test]
    fn moving_stays_inside_the_photo() {
        let c = dragged(centre(), Gesture::Move, 30.4, 0.0, W, H);
        assert_eq!(
            c,
            Crop {
                x: 130,
                y: 0,
                size: 100
            }
        );
        let far = dragged(centre(), Gesture::Move, 1e6, -1e6, W, H);
        assert_eq!(
            far,
            Crop {
                x: 200,
                y: 0,
                size: 100
            }
        );
        let back = dragged(centre(), Gesture::Move, -1e6, 0.0, W, H);
        assert_eq!(back.x, 0);
    }

    #[test]
    fn resizing_keeps_the_corner_and_its_limits() {
        let small = dragged(centre(), Gesture::Resize, -60.0, -10.0, W, H);
        assert_eq!(
            small,
            Crop {
                x: 100,
                y: 0,
                size: 40
            }
        );
        let tiny = dragged(centre(), Gesture::Resize, -1e6, 0.0, W, H);
        assert_eq!(tiny.size, MIN_SIDE);
        // At x = 250 only 50 pixels are left to the right edge.
        let start = Crop {
            x: 250,
            y: 10,
            size: 20,
        };
        assert_eq!(dragged(start, Gesture::Resize, 500.0, 0.0, W, H).size, 50);
        assert!(
            dragged(start, Gesture::Resize, 0.0, 500.0, W, H)
                .check(W, H)
                .is_ok()
        );
    }

    #[test]
    fn keys_move_resize_and_recentre() {
        let c = centre();
        assert_eq!(keyed(c, "ArrowRight", false, W, H).unwrap().x, 102);
        assert_eq!(keyed(c, "ArrowLeft", true, W, H).unwrap().x, 80);
        let smaller = keyed(c, "-", false, W, H).unwrap();
        assert_eq!(
            smaller,
            Crop {
                x: 102,
                y: 2,
                size: 96
            }
        );
        assert_eq!(keyed(smaller, "+", false, W, H).unwrap(), c);
        assert_eq!(keyed(smaller, "Home", false, W, H).unwrap(), c);
        assert_eq!(keyed(c, "a", false, W, H), None);
        // Growing past the shorter side stops at it.
        assert_eq!(keyed(c, "PageUp", true, W, H).unwrap().size, 100);
    }

    #[test]
    fn every_result_is_a_valid_crop_even_on_a_one_pixel_photo() {
        for key in ["ArrowLeft", "ArrowDown", "+", "-", "Home"] {
            let c = keyed(
                Crop {
                    x: 0,
                    y: 0,
                    size: 1,
                },
                key,
                false,
                1,
                1,
            )
            .unwrap();
            assert_eq!(
                c.check(1, 1).unwrap(),
                Crop {
                    x: 0,
                    y: 0,
                    size: 1
                }
            );
        }
    }

    #[test]
    fn placement_in_percent_and_frame_fit() {
        assert_eq!(
            percent(centre(), W, H),
            [100.0 / 3.0, 0.0, 100.0 / 3.0, 100.0]
        );
        assert_eq!(frame_size(W, H, 600.0, 300.0), (600.0, 200.0));
        assert_eq!(frame_size(100, 400, 600.0, 300.0), (75.0, 300.0));
    }
}
