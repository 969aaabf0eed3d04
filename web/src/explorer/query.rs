//! The token explorer's question and geometry, pure: which token, which layer (or rollout, or a
//! class's relevance), which heads, which way; where the photo, the model's input and the token
//! strip sit on the explorer's canvas, and which token a point is on. `view::explorer` draws
//! them, `events::explorer` wires them; `vit::explain` answers.

use vit::explain::{Heads, Method, Query, Token};
use vit::rollout::HeadFusion;

/// What the map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One layer's attention, from 1.
    Layer(usize),
    /// Rollout through every layer.
    Rollout,
    /// Chefer et al.'s relevance for a class (the class's index).
    Relevance(usize),
}

/// The question the explorer asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// The selected token: 0 is the class token, `k` patch `k`.
    pub token: usize,
    pub view: View,
    pub heads: Heads,
    pub reverse: bool,
}

impl Default for Ask {
    fn default() -> Self {
        Self {
            token: 0,
            view: View::Rollout,
            heads: Heads::Fused(HeadFusion::Mean),
            reverse: false,
        }
    }
}

impl Ask {
    /// `vit::explain`'s query. Relevance is what the classifier reads, over all heads (the
    /// rule's own), whatever token and heads are selected for the other views.
    pub fn query(&self) -> Query {
        match self.view {
            View::Relevance(_) => Query {
                method: Method::Relevance,
                layer: None,
                heads: Heads::Fused(HeadFusion::Mean),
                token: Token::Output,
                reverse: false,
            },
            View::Layer(l) => Query {
                method: Method::Attention,
                layer: Some(l),
                heads: self.heads,
                token: Token::Index(self.token),
                reverse: self.reverse,
            },
            View::Rollout => Query {
                method: Method::Rollout,
                layer: None,
                heads: self.heads,
                token: Token::Index(self.token),
                reverse: self.reverse,
            },
        }
    }

    /// The layer slider runs 1..=depth, then one more step for rollout.
    pub fn slider(&self, depth: usize) -> usize {
        match self.view {
            View::Layer(l) => l.min(depth),
            View::Rollout | View::Relevance(_) => depth + 1,
        }
    }

    pub fn set_slider(&mut self, value: usize, depth: usize) {
        self.view = if (1..=depth).contains(&value) {
            View::Layer(value)
        } else {
            View::Rollout
        };
    }

    /// Keeps the question valid for a model of this shape (another model was loaded).
    pub fn fit(&mut self, depth: usize, heads: usize, tokens: usize, classes: usize) {
        if self.token >= tokens {
            self.token = 0;
        }
        match self.view {
            View::Layer(l) if l > depth || l == 0 => self.view = View::Rollout,
            View::Relevance(c) if c >= classes => self.view = View::Rollout,
            _ => {}
        }
        if let Heads::One(h) = self.heads
            && (h == 0 || h > heads)
        {
            self.heads = Heads::Fused(HeadFusion::Mean);
        }
    }

    /// Arrow keys move the selected patch on its grid (from the class token they start at the
    /// first patch); Home selects the class token. Returns whether the key was used.
    pub fn key(&mut self, key: &str, grid: usize) -> bool {
        if grid == 0 {
            return false;
        }
        if key == "Home" {
            self.token = 0;
            return true;
        }
        let (dr, dc): (isize, isize) = match key {
            "ArrowLeft" => (0, -1),
            "ArrowRight" => (0, 1),
            "ArrowUp" => (-1, 0),
            "ArrowDown" => (1, 0),
            _ => return false,
        };
        if self.token == 0 {
            self.token = 1;
            return true;
        }
        let p = self.token - 1;
        let clamp = |v: isize| v.clamp(0, grid as isize - 1) as usize;
        let (row, col) = (
            clamp((p / grid) as isize + dr),
            clamp((p % grid) as isize + dc),
        );
        self.token = 1 + row * grid + col;
        true
    }

    /// The question in words, for the caption and screen readers.
    pub fn describe(&self, class: Option<&str>) -> String {
        let token = match self.token {
            0 => "the class token".to_string(),
            k => format!("patch {k}"),
        };
        let heads = match self.heads {
            Heads::One(h) => format!("head {h}"),
            fused => format!("the {fused} of the heads"),
        };
        let way = if self.reverse {
            format!("which tokens attend to {token}")
        } else {
            format!("where {token} attends")
        };
        match self.view {
            View::Layer(l) => format!("Layer {l}, {heads}: {way}."),
            View::Rollout => format!("Rollout through every layer, {heads}: {way}."),
            View::Relevance(c) => format!(
                "Relevance for {} (Chefer et al. 2021): the patches that made the model say it.",
                class.map_or_else(|| format!("class {c}"), str::to_string)
            ),
        }
    }
}

/// A square panel: left, top, side, in CSS pixels of the canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Square {
    pub x: f64,
    pub y: f64,
    pub side: f64,
}

impl Square {
    /// The patch (from 0) of a `grid` x `grid` split under the point, if any.
    fn patch_at(&self, x: f64, y: f64, grid: usize) -> Option<usize> {
        let (u, v) = ((x - self.x) / self.side, (y - self.y) / self.side);
        if !(0.0..1.0).contains(&u) || !(0.0..1.0).contains(&v) || grid == 0 {
            return None;
        }
        let g = grid as f64;
        Some((v * g) as usize * grid + (u * g) as usize)
    }

    /// Patch `p`'s rectangle (x, y, w, h).
    pub fn patch(&self, p: usize, grid: usize) -> (f64, f64, f64, f64) {
        let step = self.side / grid.max(1) as f64;
        let (row, col) = (p / grid.max(1), p % grid.max(1));
        (
            self.x + col as f64 * step,
            self.y + row as f64 * step,
            step,
            step,
        )
    }
}

/// Where everything sits on the explorer's canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// The photo's square under the map.
    pub photo: Square,
    /// The model's input under the map, one block per patch.
    pub input: Square,
    /// The token strip: the class token, then the patches in order, `cols` a row.
    pub strip_y: f64,
    pub pitch: f64,
    pub cols: usize,
    pub tokens: usize,
    pub grid: usize,
}

const GAP: f64 = 16.0;
/// Room for the labels above the panels and the strip.
pub const LABEL: f64 = 20.0;

impl Layout {
    pub fn new(width: f64, tokens: usize) -> Self {
        let grid = vit::patches::grid_side(tokens).unwrap_or(0);
        let side = ((width - GAP) / 2.0).clamp(40.0, 300.0).floor();
        let photo = Square {
            x: 0.0,
            y: LABEL,
            side,
        };
        let input = Square {
            x: side + GAP,
            ..photo
        };
        // Token slots between 12 and 28 px: a 65-token model gets one or two rows, a
        // 197-token one (ImageNet's ViT-Ti/16) about five, each still big enough to click.
        let pitch = (width / tokens.max(1) as f64).floor().clamp(12.0, 28.0);
        let cols = ((width / pitch).floor() as usize).max(1);
        let strip_y = LABEL + side + GAP + LABEL;
        let rows = tokens.div_ceil(cols);
        Self {
            width,
            height: strip_y + rows as f64 * pitch,
            photo,
            input,
            strip_y,
            pitch,
            cols,
            tokens,
            grid,
        }
    }

    /// Token `t`'s slot in the strip (x, y, w, h): a pitch-sized cell less a 2 px gap.
    pub fn slot(&self, t: usize) -> (f64, f64, f64, f64) {
        let (row, col) = (t / self.cols, t % self.cols);
        (
            col as f64 * self.pitch,
            self.strip_y + row as f64 * self.pitch,
            self.pitch - 2.0,
            self.pitch - 2.0,
        )
    }

    /// The token under a point: a patch of either panel, or a slot of the strip.
    pub fn token_at(&self, x: f64, y: f64) -> Option<usize> {
        if let Some(p) = self
            .photo
            .patch_at(x, y, self.grid)
            .or_else(|| self.input.patch_at(x, y, self.grid))
        {
            return Some(p + 1);
        }
        if y < self.strip_y || x < 0.0 {
            return None;
        }
        let (row, col) = (
            ((y - self.strip_y) / self.pitch) as usize,
            (x / self.pitch) as usize,
        );
        let t = row * self.cols + col;
        (col < self.cols && t < self.tokens).then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_view_asks_its_question() {
        let mut ask = Ask {
            token: 7,
            heads: Heads::One(2),
            reverse: true,
            ..Ask::default()
        };
        ask.set_slider(3, 6);
        let q = ask.query();
        assert_eq!(
            (q.method, q.layer, q.heads, q.token, q.reverse),
            (
                Method::Attention,
                Some(3),
                Heads::One(2),
                Token::Index(7),
                true
            )
        );
        assert_eq!(ask.slider(6), 3);
        ask.set_slider(7, 6);
        assert_eq!(ask.view, View::Rollout);
        assert_eq!(ask.query().method, Method::Rollout);
        ask.view = View::Relevance(4);
        let q = ask.query();
        assert_eq!(
            (q.method, q.token, q.heads),
            (
                Method::Relevance,
                Token::Output,
                Heads::Fused(HeadFusion::Mean)
            )
        );
        assert_eq!(ask.slider(6), 7);
        assert!(ask.describe(Some("cat")).starts_with("Relevance for cat"));
    }

    #[test]
    fn arrows_walk_the_grid_and_stop_at_its_edges() {
        let mut ask = Ask::default();
        assert!(ask.key("ArrowRight", 4));
        assert_eq!(ask.token, 1, "from the class token to the first patch");
        ask.key("ArrowLeft", 4);
        ask.key("ArrowUp", 4);
        assert_eq!(ask.token, 1, "the top left corner stays");
        ask.key("ArrowDown", 4);
        ask.key("ArrowRight", 4);
        assert_eq!(ask.token, 6, "row 2, column 2 of 4");
        for _ in 0..9 {
            ask.key("ArrowDown", 4);
            ask.key("ArrowRight", 4);
        }
        assert_eq!(ask.token, 16);
        assert!(!ask.key("a", 4));
        assert!(ask.key("Home", 4));
        assert_eq!(ask.token, 0);
    }

    #[test]
    fn another_model_keeps_only_what_exists() {
        let mut ask = Ask {
            token: 100,
            view: View::Layer(9),
            heads: Heads::One(4),
            reverse: true,
        };
        ask.fit(6, 3, 65, 10);
        assert_eq!(
            ask,
            Ask {
                token: 0,
                view: View::Rollout,
                heads: Heads::Fused(HeadFusion::Mean),
                reverse: true
            }
        );
        ask.view = View::Relevance(12);
        ask.fit(6, 3, 65, 10);
        assert_eq!(ask.view, View::Rollout);
    }

    #[test]
    fn points_find_their_tokens() {
        // 17 tokens: a 4x4 grid.
        let l = Layout::new(600.0, 17);
        assert_eq!(l.grid, 4);
        assert_eq!(l.photo.side, 292.0);
        let step = l.photo.side / 4.0;
        // Patch 6 (row 1, column 1 from 0) is token 6 on either panel.
        let (x, y) = (step * 1.5, LABEL + step * 1.5);
        assert_eq!(l.token_at(x, y), Some(6));
        assert_eq!(l.token_at(l.input.x + step * 1.5, y), Some(6));
        assert_eq!(l.token_at(l.photo.side + 8.0, y), None, "the gap");
        assert_eq!(l.photo.patch(5, 4), (step, LABEL + step, step, step));
        // The strip: 17 slots of 28 px in one row.
        assert_eq!((l.pitch, l.cols), (28.0, 21));
        let (sx, sy, w, _) = l.slot(3);
        assert_eq!(l.token_at(sx + w / 2.0, sy + 2.0), Some(3));
        assert_eq!(
            l.token_at(l.slot(16).0 + 29.0, sy + 2.0),
            None,
            "past the last"
        );
        assert_eq!(l.height, sy + 28.0);
        // 197 tokens (ViT-Ti/16 at 224 px) in 600 px: 12 px slots, 50 a row, 4 rows.
        let big = Layout::new(600.0, 197);
        assert_eq!((big.grid, big.pitch, big.cols), (14, 12.0, 50));
        assert_eq!(
            big.token_at(big.slot(196).0 + 1.0, big.slot(196).1 + 1.0),
            Some(196)
        );
    }
}
