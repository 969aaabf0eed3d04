//! The squares of a photo: [`CropBox`], the region of the original a model's view shows, and
//! [`Crop`], a square a person chose (`--crop x,y,size` in the CLI, the draggable square on the
//! page), checked against the image and read from its text.

use std::str::FromStr;

use crate::error::{Result, VitError};

/// A square region of the original (oriented) image, in its pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CropBox {
    pub x: f32,
    pub y: f32,
    pub side: f32,
}

impl CropBox {
    /// The centre square that survives "shorter side, then centre crop".
    pub fn centre_square(width: u32, height: u32) -> Self {
        let side = width.min(height) as f32;
        Self {
            x: (width as f32 - side) / 2.0,
            y: (height as f32 - side) / 2.0,
            side,
        }
    }
}

/// A square a person chose, in whole pixels of the upright original: its top-left corner and
/// its side. Whole pixels, so the page and `trainer predict --crop x,y,size` name exactly the
/// same square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

impl Crop {
    /// The centre square in whole pixels (where the draggable square starts).
    pub fn centre(width: u32, height: u32) -> Self {
        let size = width.min(height);
        Self {
            x: (width - size) / 2,
            y: (height - size) / 2,
            size,
        }
    }

    /// The crop itself when it lies inside a `width` x `height` image and is not empty.
    pub fn check(self, width: u32, height: u32) -> Result<Self> {
        let fail = |why: String| {
            Err(VitError::BadCrop(format!(
                "{self} on a {width}x{height} image: {why}"
            )))
        };
        if self.size == 0 {
            return fail("the square's size must be at least 1 pixel".into());
        }
        if self.x as u64 + self.size as u64 > width as u64 {
            return fail(format!(
                "it reaches x = {} but the image is {width} pixels wide",
                self.x as u64 + self.size as u64
            ));
        }
        if self.y as u64 + self.size as u64 > height as u64 {
            return fail(format!(
                "it reaches y = {} but the image is {height} pixels tall",
                self.y as u64 + self.size as u64
            ));
        }
        Ok(self)
    }

    /// The crop moved and shrunk as little as possible to lie inside the image (what the
    /// page does with a square dragged past the edge).
    pub fn clamped(self, width: u32, height: u32) -> Self {
        let size = self.size.clamp(1, width.min(height).max(1));
        Self {
            x: self.x.min(width.saturating_sub(size)),
            y: self.y.min(height.saturating_sub(size)),
            size,
        }
    }

    pub fn as_box(self) -> CropBox {
        CropBox {
            x: self.x as f32,
            y: self.y as f32,
            side: self.size as f32,
        }
    }
}

impl std::fmt::Display for Crop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.x, self.y, self.size)
    }
}

impl FromStr for Crop {
    type Err = VitError;

    /// `x,y,size`, whole pixels.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            VitError::BadCrop(format!(
                "'{s}' {why}; write it as x,y,size in whole pixels, e.g. 40,0,120"
            ))
        };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [x, y, size] = parts.as_slice() else {
            return Err(bad("is not three numbers"));
        };
        let num = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| bad(&format!("has '{v}', which is not a whole number of pixels")))
        };
        let crop = Self {
            x: num(x)?,
            y: num(y)?,
            size: num(size)?,
        };
        if crop.size == 0 {
            return Err(bad("has size 0"));
        }
        Ok(crop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping_keeps_the_square_inside() {
        let c = Crop {
            x: 50,
            y: 7,
            size: 30,
        }
        .clamped(40, 20);
        assert_eq!(
            c,
            Crop {
                x: 20,
                y: 0,
                size: 20
            }
        );
        assert_eq!(c.check(40, 20).unwrap(), c);
        assert_eq!(
            Crop::centre(41, 20),
            Crop {
                x: 10,
                y: 0,
                size: 20
            }
        );
    }
}
