//! The token explorer's question and geometry, pure: which token, which layer (or rollout, or a
//! class's relevance), which heads, which way; where the photo, the model's input and the token
//! strip sit on the explorer's canvas, and which token a point is on. `view::explorer` draws
//! them, `events::explorer` wires them; `vit::explain` answers. Which tokens come before the
//! patches (class, distillation, registers, or none) is the model's [`PrefixTokens`].

use vit::explain::{Heads, Method, ModelTokens, Query, Token};
use vit::prefix::PrefixTokens;
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
    /// The selected token: one of the sequence (`Token::Index`), the mean of the patches
    /// (`Token::Patches`, where a model without a class token starts), or `Token::Class` for
    /// "where the model starts", which [`Ask::fit`] resolves.
    pub token: Token,
    pub view: View,
    pub heads: Heads,
    pub reverse: bool,
}

impl Default for Ask {
    fn default() -> Self {
        Self {
            token: Token::Class,
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
                token: self.token,
                reverse: self.reverse,
            },
            View::Rollout => Query {
                method: Method::Rollout,
                layer: None,
                heads: self.heads,
                token: self.token,
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

    /// The selected token's place in the sequence; `None` for the mean of the patches.
    pub fn selected(&self) -> Option<usize> {
        match self.token {
            Token::Index(i) => Some(i),
            _ => None,
        }
    }

    /// Keeps the question valid for a model of this shape (another model was loaded): a token
    /// the model lacks becomes where it starts.
    pub fn fit(&mut self, shape: Shape, classes: usize) {
        let kept = match self.token {
            Token::Index(i) => i < shape.tokens,
            Token::Patches => true,
            _ => false,
        };
        if !kept {
            self.token = start(shape.prefix);
        }
        let (depth, heads) = (shape.layers, shape.heads);
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

    /// Arrow keys move the selected patch on its grid (from a prefix token they start at the
    /// first patch); Home selects where the model starts (its class token, or the mean of the
    /// patches). Returns whether the key was used.
    pub fn key(&mut self, key: &str, grid: usize, prefix: PrefixTokens) -> bool {
        if grid == 0 {
            return false;
        }
        if key == "Home" {
            self.token = start(prefix);
            return true;
        }
        let (dr, dc): (isize, isize) = match key {
            "ArrowLeft" => (0, -1),
            "ArrowRight" => (0, 1),
            "ArrowUp" => (-1, 0),
            "ArrowDown" => (1, 0),
            _ => return false,
        };
        let Some(p) = self.selected().and_then(|t| prefix.patch(t)) else {
            self.token = Token::Index(prefix.token_of_patch(0));
            return true;
        };
        let clamp = |v: isize| v.clamp(0, grid as isize - 1) as usize;
        let (row, col) = (
            clamp((p / grid) as isize + dr),
            clamp((p % grid) as isize + dc),
        );
        self.token = Token::Index(prefix.token_of_patch(row * grid + col));
        true
    }

    /// The question in words, for the caption and screen readers: `vit::explain`'s caption,
    /// the one `trainer explain` prints.
    pub fn describe(&self, model: &ModelTokens, class: Option<&str>) -> String {
        format!("{}.", self.query().caption(model, class))
    }
}

/// Where the model starts (`vit`'s [`Token::start`]), by its place in the sequence where it is
/// one token, as the page selects tokens.
pub fn start(prefix: PrefixTokens) -> Token {
    let start = Token::start(prefix);
    start.index(prefix, 0).map_or(start, Token::Index)
}

/// What the explorer needs of a result's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub layers: usize,
    pub heads: usize,
    pub tokens: usize,
    pub prefix: PrefixTokens,
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
    /// The token strip: the prefix tokens, then the patches in order, `cols` a row.
    pub strip_y: f64,
    pub pitch: f64,
    pub cols: usize,
    pub tokens: usize,
    pub grid: usize,
    pub prefix: PrefixTokens,
}

const GAP: f64 = 16.0;
/// Room for the labels above the panels and the strip.
pub const LABEL: f64 = 20.0;

impl Layout {
    pub fn new(width: f64, tokens: usize, prefix: PrefixTokens) -> Self {
        let grid = prefix.grid_side(tokens).unwrap_or(0);
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
            prefix,
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
            return Some(self.prefix.token_of_patch(p));
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
    use vit::config::Pooling;

    use super::*;

    #[test]
    fn each_view_asks_its_question() {
        let mut ask = Ask {
            token: Token::Index(7),
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
        let vit = ModelTokens {
            prefix: PrefixTokens::CLASS,
            pooling: Pooling::Token,
            patches: 16,
            layers: 6,
        };
        assert!(
            ask.describe(&vit, Some("cat"))
                .starts_with("Relevance for cat")
        );
        let gap = ModelTokens {
            prefix: PrefixTokens {
                class: false,
                ..PrefixTokens::CLASS
            },
            pooling: Pooling::Mean,
            ..vit
        };
        assert!(
            ask.describe(&gap, Some("cat"))
                .contains("the model has no class token")
        );
    }

    fn registers(n: usize) -> PrefixTokens {
        PrefixTokens {
            registers: n,
            embedded: false,
            ..PrefixTokens::CLASS
        }
    }

    #[test]
    fn tokens_are_named_by_their_kind() {
        let reg = ModelTokens {
            prefix: registers(4),
            pooling: Pooling::Token,
            patches: 16,
            layers: 6,
        };
        let mut ask = Ask {
            token: Token::Index(3),
            view: View::Layer(2),
            ..Ask::default()
        };
        assert_eq!(
            ask.describe(&reg, None),
            "Attention at layer 2, the mean of the heads: where register 3 attends."
        );
        ask.token = Token::Index(5);
        assert!(ask.describe(&reg, None).contains("where patch 1 attends"));
        ask.token = Token::Patches;
        ask.view = View::Rollout;
        let gap = ModelTokens {
            prefix: PrefixTokens {
                class: false,
                ..PrefixTokens::CLASS
            },
            pooling: Pooling::Mean,
            ..reg
        };
        let caption = ask.describe(&gap, None);
        assert!(
            caption.contains("where the mean of the patch tokens attends")
                && caption.contains("the model has no class token"),
            "{caption}"
        );
    }

    #[test]
    fn arrows_walk_the_grid_and_stop_at_its_edges() {
        let class = PrefixTokens::CLASS;
        let mut ask = Ask::default();
        assert!(ask.key("ArrowRight", 4, class));
        assert_eq!(
            ask.token,
            Token::Index(1),
            "from the class token to the first patch"
        );
        ask.key("ArrowLeft", 4, class);
        ask.key("ArrowUp", 4, class);
        assert_eq!(ask.token, Token::Index(1), "the top left corner stays");
        ask.key("ArrowDown", 4, class);
        ask.key("ArrowRight", 4, class);
        assert_eq!(ask.token, Token::Index(6), "row 2, column 2 of 4");
        for _ in 0..9 {
            ask.key("ArrowDown", 4, class);
            ask.key("ArrowRight", 4, class);
        }
        assert_eq!(ask.token, Token::Index(16));
        assert!(!ask.key("a", 4, class));
        assert!(ask.key("Home", 4, class));
        assert_eq!(ask.token, Token::Index(0));

        // Four registers after the class token: the patches start at token 5.
        let reg = registers(4);
        assert!(ask.key("ArrowDown", 4, reg));
        assert_eq!(ask.token, Token::Index(5));
        ask.key("ArrowDown", 4, reg);
        assert_eq!(ask.token, Token::Index(9), "one row down");
        ask.token = Token::Index(3);
        ask.key("ArrowRight", 4, reg);
        assert_eq!(
            ask.token,
            Token::Index(5),
            "from a register to the first patch"
        );
        // Without a class token, Home is the mean of the patches.
        let gap = PrefixTokens {
            class: false,
            ..class
        };
        ask.key("Home", 4, gap);
        assert_eq!(ask.token, Token::Patches);
        ask.key("ArrowRight", 4, gap);
        assert_eq!(ask.token, Token::Index(0), "patch 1 is token 0");
    }

    #[test]
    fn another_model_keeps_only_what_exists() {
        let mut ask = Ask {
            token: Token::Index(100),
            view: View::Layer(9),
            heads: Heads::One(4),
            reverse: true,
        };
        let shape = Shape {
            layers: 6,
            heads: 3,
            tokens: 65,
            prefix: PrefixTokens::CLASS,
        };
        ask.fit(shape, 10);
        assert_eq!(
            ask,
            Ask {
                token: Token::Index(0),
                view: View::Rollout,
                heads: Heads::Fused(HeadFusion::Mean),
                reverse: true
            }
        );
        ask.view = View::Relevance(12);
        ask.fit(shape, 10);
        assert_eq!(ask.view, View::Rollout);
        // A model without a class token starts from the mean of its patches, and keeps it.
        let gap = Shape {
            tokens: 64,
            prefix: PrefixTokens {
                class: false,
                ..PrefixTokens::CLASS
            },
            ..shape
        };
        let mut fresh = Ask::default();
        fresh.fit(gap, 10);
        assert_eq!(fresh.token, Token::Patches);
        assert_eq!(fresh.selected(), None);
        fresh.fit(shape, 10);
        assert_eq!(
            fresh.token,
            Token::Patches,
            "a question every model can answer"
        );
    }

    #[test]
    fn points_find_their_tokens() {
        // 17 tokens: a 4x4 grid.
        let l = Layout::new(600.0, 17, PrefixTokens::CLASS);
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
        let big = Layout::new(600.0, 197, PrefixTokens::CLASS);
        assert_eq!((big.grid, big.pitch, big.cols), (14, 12.0, 50));
        assert_eq!(
            big.token_at(big.slot(196).0 + 1.0, big.slot(196).1 + 1.0),
            Some(196)
        );
        // A class token and 4 registers before a 4x4 grid: patch 6 is token 10.
        let reg = Layout::new(600.0, 21, registers(4));
        assert_eq!(reg.grid, 4);
        assert_eq!(reg.token_at(x, y), Some(10));
        let (sx, sy, w, _) = reg.slot(4);
        assert_eq!(
            reg.token_at(sx + w / 2.0, sy + 2.0),
            Some(4),
            "register 4's slot"
        );
    }
}
